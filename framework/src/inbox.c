/* Inbox marks are written inside the handler's savepoint, before the handler
 * runs: if the handler's work rolls back, so does the mark, and if it
 * commits, a later delivery of the same event id finds the mark and is
 * acknowledged without running the handler again. */
#include "inbox.h"

#include "status.h"

choreo_status choreo__inbox_mark(choreo_store *st, const char *consumer, const char *event_id,
                                 int64_t now_ms, bool *fresh)
{
    choreo_q *s = choreo__store_stmt(st, STMT_INBOX_MARK,
        "INSERT INTO choreo_inbox(consumer, event_id, processed_at)"
        " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    choreo__q_bind_int64(s, 3, now_ms);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "writing an inbox mark");
    *fresh = choreo__store_changes(st) == 1;
    return CHOREO_OK;
}
