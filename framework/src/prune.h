/* Deleting old outbox and inbox rows in small batches. */
#ifndef CHOREO_PRUNE_H
#define CHOREO_PRUNE_H

#include <stdatomic.h>

#include "store.h"

#define CHOREO_PRUNE_BATCH 500

/* Deletes published outbox rows published before outbox_before_ms and inbox
 * marks processed before inbox_before_ms (a value <= 0 skips that table),
 * CHOREO_PRUNE_BATCH rows per transaction so that the write lock is only
 * ever held briefly. Parked messages are never pruned. *deleted counts the
 * rows removed. Stops early when *stop becomes true. */
choreo_status choreo__prune(choreo_store *st, int64_t outbox_before_ms, int64_t inbox_before_ms,
                            const atomic_bool *stop, int64_t *deleted);

#endif
