/* Deleting old outbox, inbox and barrier rows in small batches. */
#ifndef CHOREO_PRUNE_H
#define CHOREO_PRUNE_H

#include <stdatomic.h>

#include "store.h"

#define CHOREO_PRUNE_BATCH 500

/* Deletes published outbox rows published before outbox_before_ms, and
 * inbox marks processed and barrier rows created before inbox_before_ms (a
 * value <= 0 skips those tables), CHOREO_PRUNE_BATCH rows per transaction so
 * that the write lock is only ever held briefly. A redelivery that could
 * need a barrier row cannot arrive later than one that needs an inbox mark;
 * the barrier rows of a saga with a parked message, or a message retried
 * since inbox_before_ms, are kept. Orchestrated saga instances that ended
 * before inbox_before_ms go with their transitions; running ones stay.
 * Parked messages are never pruned.
 * *deleted counts the rows removed. Stops early when *stop becomes true. */
choreo_status choreo__prune(choreo_store *st, int64_t outbox_before_ms, int64_t inbox_before_ms,
                            const atomic_bool *stop, int64_t *deleted);

#endif
