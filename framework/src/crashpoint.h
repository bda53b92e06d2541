/* Crash points: places at dangerous boundaries where a test or the chaos
 * harness can make the process die at once, as under SIGKILL. Off unless
 * the environment variable CHOREO_CRASHPOINTS lists points. */
#ifndef CHOREO_CRASHPOINT_H
#define CHOREO_CRASHPOINT_H

#include <stdatomic.h>
#include <stdint.h>

#include "choreo.h"

typedef enum choreo_crashpoint_id {
    CP_AFTER_COMMIT_BEFORE_ACK,      /* dispatcher: batch committed, no ack sent */
    CP_AFTER_COMMIT_BEFORE_PUBLISH,  /* command/dispatcher: outbox committed, relay not woken */
    CP_AFTER_PUBLISH_BEFORE_MARK,    /* relay: PubAcks received, rows not marked */
    CP_INSIDE_BATCH,                 /* dispatcher: between two messages of a batch */
    CP_INSIDE_MARK,                  /* relay: inside the marking transaction */
    CP_BETWEEN_FETCH_AND_DISPATCH,   /* fetch thread: fetched, not yet queued */
    CP_COUNT
} choreo_crashpoint_id;

typedef struct choreo_crashpoints {
    double probability[CP_COUNT];
    uint64_t seed;
    atomic_uint_fast64_t draws;
    bool any;
} choreo_crashpoints;

/* Parses CHOREO_CRASHPOINTS ("name=probability,...", or "name" for 1.0)
 * and CHOREO_CRASH_SEED. Unknown names are an error naming the valid ones. */
choreo_status choreo__crashpoints_load(choreo_crashpoints *cp);

/* Dies at once (SIGKILL to itself) when the point fires. */
void choreo__crashpoint(choreo_crashpoints *cp, choreo_crashpoint_id id);

/* The point's name, e.g. "after_commit_before_ack". */
const char *choreo__crashpoint_name(choreo_crashpoint_id id);

#endif
