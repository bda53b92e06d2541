/* Audit rows are written inside the transaction that emits or applies an
 * event, so they are exactly as durable as the effect they record: after a
 * chaos run, an emitted event that some consumer never applied is a lost
 * event, and one applied twice by the same consumer is a doubled one,
 * whatever the business tables happen to show. Off by default: it costs a
 * row per event. */
#include "audit.h"

#include "status.h"

static choreo_status insert(choreo_store *st, enum choreo_stmt id, const char *sql,
                            const char *const *text, int ntext, int64_t now_ms)
{
    choreo_q *s = choreo__store_stmt(st, id, sql);
    if (!s)
        return CHOREO_ESTORE;
    for (int i = 0; i < ntext; i++)
        choreo__q_bind_text(s, i + 1, text[i], -1);
    choreo__q_bind_int64(s, ntext + 1, now_ms);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, "writing an audit row");
}

choreo_status choreo__audit_emitted(choreo_store *st, const char *event_id, const char *type,
                                    const char *saga, int64_t now_ms)
{
    const char *text[] = { event_id, type, saga };
    return insert(st, STMT_AUDIT_EMITTED,
                  "INSERT INTO choreo_audit_emitted(event_id, type, saga, emitted_at)"
                  " VALUES (?1, ?2, ?3, ?4)",
                  text, 3, now_ms);
}

choreo_status choreo__audit_applied(choreo_store *st, const char *consumer, const char *type,
                                    const char *event_id, const char *saga, int64_t now_ms)
{
    const char *text[] = { consumer, type, event_id, saga };
    return insert(st, STMT_AUDIT_APPLIED,
                  "INSERT INTO choreo_audit_applied(consumer, type, event_id, saga, applied_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5)",
                  text, 4, now_ms);
}
