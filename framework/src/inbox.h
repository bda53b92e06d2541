/* The idempotent inbox: which events each consumer has already applied,
 * and how far the deliveries of those it has not applied yet went. */
#ifndef CHOREO_INBOX_H
#define CHOREO_INBOX_H

#include "store.h"

/* Records (consumer, event_id) in the current transaction. *fresh is true
 * when it was not there before, false for a duplicate delivery. For a fresh
 * one, *retried gets the highest delivery on which its handler asked for a
 * retry (choreo__inbox_retried), 0 when none, and *parked (may be NULL)
 * whether the event is parked for this consumer in choreo_dead, or was
 * dropped there. */
choreo_status choreo__inbox_mark(choreo_store *st, const char *consumer, const char *event_id,
                                 int64_t now_ms, bool *fresh, int64_t *retried, bool *parked);

/* Keeps attempt as the highest delivery of the event on which its handler
 * asked for a retry, and the reason it gave ("" or NULL: none), in the
 * current transaction. */
choreo_status choreo__inbox_retried(choreo_store *st, const char *consumer, const char *event_id,
                                    int64_t attempt, int64_t now_ms, const char *reason);

/* The reason kept with the last retry of the event into out ("" when none
 * was given or no retry was kept). */
choreo_status choreo__inbox_retry_reason(choreo_store *st, const char *consumer,
                                         const char *event_id, char *out, size_t cap);

/* Forgets what choreo__inbox_retried kept: the event is applied or parked. */
choreo_status choreo__inbox_settled(choreo_store *st, const char *consumer, const char *event_id);

#endif
