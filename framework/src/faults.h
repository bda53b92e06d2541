/* Crash points and injected faults, for tests and the chaos harness only.
 * Crash points are places at dangerous boundaries where the process dies at
 * once, as under SIGKILL (CHOREO_CRASHPOINTS). Faults make the process
 * misbehave the way a full disk or a slow or failing handler would
 * (CHOREO_FAULTS). Both are off unless those environment variables name
 * them; the normal path reaches them only through extras.h, and the admin
 * handle's retry through its own copy. */
#ifndef CHOREO_FAULTS_H
#define CHOREO_FAULTS_H

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
    CP_LAST_DELIVERY,                /* dispatcher: before the commit of a batch holding an
                                      * event on one of its last two deliveries */
    CP_ORCH_AFTER_REPLY,             /* orchestrator: a reply moved an instance on, its next
                                      * command not yet written */
    CP_ORCH_BETWEEN_COMPENSATIONS,   /* orchestrator: a compensation answered, the next one
                                      * written, not yet committed */
    CP_AFTER_COMMITTER_SEND,         /* committing thread: rows sent through the relay's
                                      * window, their PubAcks not read, rows not marked */
    CP_RETRY_AFTER_PUBLISH,          /* choreoctl dead retry: the message published again,
                                      * its row not yet marked retried */
    CP_COUNT
} choreo_crashpoint_id;

typedef struct choreo_crashpoints {
    double probability[CP_COUNT];
    uint64_t seed;
    atomic_uint_fast64_t draws;
    bool any;
} choreo_crashpoints;

typedef struct choreo_faults {
    double disk_full;              /* probability per commit that an episode starts */
    int64_t disk_full_ms;          /* how long an episode lasts (one in two: one commit) */
    double slow_handler;           /* probability per handler call */
    int64_t slow_handler_ms;       /* how long a slow handler sleeps first */
    double retry_until_last;       /* share of events that get RETRY until their last run */
    double mark_fail;              /* probability per inbox mark that it fails */
    atomic_int_fast64_t disk_full_until_us; /* monotonic end of the current episode */
    uint64_t seed;
    uint64_t pick_seed;            /* which events retry_until_last picks */
    atomic_uint_fast64_t draws;
    bool any;
} choreo_faults;

/* Parses CHOREO_CRASHPOINTS ("name=probability,...", or "name" for 1.0)
 * and CHOREO_CRASH_SEED. Unknown names are an error naming the valid ones. */
choreo_status choreo__crashpoints_load(choreo_crashpoints *cp);

/* Dies at once (SIGKILL to itself) when the point fires. */
void choreo__crashpoint(choreo_crashpoints *cp, choreo_crashpoint_id id);

/* The point's name, e.g. "after_commit_before_ack". */
const char *choreo__crashpoint_name(choreo_crashpoint_id id);

/* Parses CHOREO_FAULTS: "disk_full=P,disk_full_ms=MS,slow_handler=P,
 * slow_handler_ms=MS,retry_until_last=P", seeded by CHOREO_CRASH_SEED. */
choreo_status choreo__faults_load(choreo_faults *f);

/* At a commit: true when the commit must fail as on a full disk (an
 * episode is under way, or one starts now). Any thread. */
bool choreo__fault_disk_full(choreo_faults *f);

/* At an event's inbox mark: true when the mark must fail while the batch
 * goes on and commits, as a revoked privilege or a full disk under
 * PostgreSQL fail a statement. Dispatcher thread. */
bool choreo__fault_mark_fail(choreo_faults *f);

/* Before a handler runs: sleeps slow_handler_ms when that fault fires. */
void choreo__fault_slow_handler(choreo_faults *f);

/* True when the event (chosen from its id, so that every delivery agrees)
 * must get RETRY instead of its handler on this delivery: every delivery
 * before attempt max_deliver - 1, the last on which a handler runs. */
bool choreo__fault_retry_until_last(choreo_faults *f, const char *event_id, int64_t attempt,
                                    int64_t max_deliver);

#endif
