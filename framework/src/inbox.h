/* The idempotent inbox: which events each consumer has already applied,
 * and how far the deliveries of those it has not applied yet went. */
#ifndef CHOREO_INBOX_H
#define CHOREO_INBOX_H

#include "store.h"

/* Records (consumer, event_id) with the event's digest in the current
 * transaction. *fresh is true when it was not there before, false for a
 * duplicate delivery. For a fresh one, *retried gets the highest delivery
 * on which its handler asked for a retry (choreo__inbox_retried), 0 when
 * none, and *parked (may be NULL) whether the event is parked for this
 * consumer in choreo_dead, or was dropped there. */
choreo_status choreo__inbox_mark(choreo_store *st, const char *consumer, const char *event_id,
                                 int64_t digest, int64_t now_ms, bool *fresh, int64_t *retried,
                                 bool *parked);

/* The digest a mark keeps of its event: type, saga and data, so that a
 * later delivery under the same id can be told from another event that
 * reuses the id. */
int64_t choreo__inbox_digest(const char *type, const char *saga, const uint8_t *data,
                             size_t len);

/* The digest kept with (consumer, event_id)'s mark; *known is false when
 * there is no mark or it was written before digests were kept. */
choreo_status choreo__inbox_digest_of(choreo_store *st, const char *consumer,
                                      const char *event_id, int64_t *digest, bool *known);

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
