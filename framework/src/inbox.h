/* The idempotent inbox: which events each consumer has already applied. */
#ifndef CHOREO_INBOX_H
#define CHOREO_INBOX_H

#include "store.h"

/* Records (consumer, event_id) in the current transaction. *fresh is true
 * when it was not there before, false for a duplicate delivery. */
choreo_status choreo__inbox_mark(choreo_store *st, const char *consumer, const char *event_id,
                                 int64_t now_ms, bool *fresh);

#endif
