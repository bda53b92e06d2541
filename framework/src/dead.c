/* Parking: a message the framework cannot or must not apply (rejected by its
 * handler, undecodable, too large) is copied here with the reason, so that it
 * is acknowledged and the consumer moves on, while nothing is lost. */
#include "dead.h"

#include "status.h"

choreo_status choreo__dead_insert(choreo_store *st, const choreo_dead_row *row, int64_t now_ms)
{
    choreo_q *s = choreo__store_stmt(st, STMT_DEAD_INSERT,
        "INSERT INTO choreo_dead(consumer, event_id, event_type, subject, body, reason,"
        " attempts, parked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, row->consumer, -1);
    choreo__q_bind_text(s, 2, row->event_id, -1);
    choreo__q_bind_text(s, 3, row->event_type, -1);
    choreo__q_bind_text(s, 4, row->subject, -1);
    choreo__q_bind_blob(s, 5, row->body ? (const void *)row->body : "", (int)row->body_len);
    choreo__q_bind_text(s, 6, row->reason, -1);
    choreo__q_bind_int64(s, 7, row->attempts);
    choreo__q_bind_int64(s, 8, now_ms);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, "parking a message");
}

choreo_status choreo__dead_is_parked(choreo_store *st, const char *consumer, const char *event_id,
                                     const void *body, size_t body_len, int64_t except_id,
                                     bool *out)
{
    *out = false;
    if (!event_id)
        return CHOREO_OK;
    choreo_q *s = choreo__store_stmt(st, STMT_DEAD_IS_PARKED,
        "SELECT 1 FROM choreo_dead WHERE event_id = ?1 AND consumer = ?2 AND status = 'parked'"
        " AND id <> ?3 AND body = ?4");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, event_id, -1);
    choreo__q_bind_text(s, 2, consumer, -1);
    choreo__q_bind_int64(s, 3, except_id);
    choreo__q_bind_blob(s, 4, body ? body : "", (int)body_len);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc == SQLITE_ROW)
        *out = true;
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? CHOREO_OK
               : choreo__store_error(st, rc, "looking for a parked message");
}

choreo_status choreo__dead_settle(choreo_store *st, const char *consumer, const char *event_id,
                                  int64_t now_ms)
{
    choreo_q *s = NULL;
    int rc = choreo__q_prepare(st, "UPDATE choreo_dead SET status = 'retried', updated_at = ?1"
                                   " WHERE consumer = ?2 AND event_id = ?3 AND status = 'parked'",
                               &s);
    if (rc == SQLITE_OK) {
        choreo__q_bind_int64(s, 1, now_ms);
        choreo__q_bind_text(s, 2, consumer, -1);
        choreo__q_bind_text(s, 3, event_id, -1);
        rc = choreo__q_step(s);
    }
    choreo__q_finalize(s);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(st, rc, "marking a retried message");
}

choreo_status choreo__dead_insert_from_outbox(choreo_store *st, int64_t seq, const char *consumer,
                                              const char *event_type, const char *reason,
                                              int64_t now_ms)
{
    choreo_q *s = choreo__store_stmt(st, STMT_DEAD_FROM_OUTBOX,
        "INSERT INTO choreo_dead(consumer, event_id, event_type, subject, body, reason,"
        " attempts, parked_at) SELECT ?1, event_id, ?2, subject, body, ?3, attempts + 1, ?4"
        " FROM choreo_outbox WHERE seq = ?5 AND published_at IS NULL");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_type, -1);
    choreo__q_bind_text(s, 3, reason, -1);
    choreo__q_bind_int64(s, 4, now_ms);
    choreo__q_bind_int64(s, 5, seq);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(st, rc, "parking an outbox row");
}

choreo_status choreo__dead_parked_counts(choreo_store *st,
                                         void (*fn)(const char *consumer, const char *type,
                                                    int64_t count, void *user),
                                         void *user)
{
    return choreo__store_counts(st, STMT_DEAD_PARKED_COUNTS,
                                "SELECT consumer, event_type, COUNT(*) FROM choreo_dead"
                                " WHERE status = 'parked' GROUP BY 1, 2 ORDER BY 1, 2",
                                NULL, fn, user, "counting parked messages");
}
