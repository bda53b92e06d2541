/* Held steps: the decision functions a service registered, and the handler
 * of the decision events. */
#ifndef CHOREO_HOLDS_H
#define CHOREO_HOLDS_H

#include <stdatomic.h>

#include "choreo.h"
#include "store.h"

/* The event a person's decision puts into the service's outbox. */
#define CHOREO_HOLD_DECIDED_TYPE "ChoreoHoldDecided"

typedef struct choreo_decision_route {
    char kind[65];
    choreo_decision_fn fn;
    void *user;
    atomic_uint_fast64_t approved, rejected; /* decisions applied */
} choreo_decision_route;

/* The handler of ChoreoHoldDecided (user: the service). */
choreo_result choreo__hold_on_event(choreo_tx *tx, const choreo_event *ev, void *user);

/* Calls fn for each kind with holds that can still be decided at now_ms
 * (undecided, their expiry not passed), in its second text (the first is
 * ""), with their count. */
choreo_status choreo__holds_waiting(choreo_store *st, int64_t now_ms,
                                    void (*fn)(const char *unused, const char *kind,
                                               int64_t count, void *user),
                                    void *user);

#endif
