/* Inbox marks are written inside the handler's savepoint, before the handler
 * runs: if the handler's work rolls back, so does the mark, and if it
 * commits, a later delivery of the same event id finds the mark and is
 * acknowledged without running the handler again.
 *
 * The delivery count comes from the server, which can send it lower than
 * before: nats-server before 2.10.14 restarts it at 1 when a redelivery
 * comes due while the only pull requests waiting belong to a reader that
 * has gone (a process stopped or killed less than a second before). So the
 * highest delivery on which a handler asked for a retry is kept beside the
 * marks, and a fresh mark reads it back: a handler never runs more
 * than max_deliver - 1 times, whatever count the server sends.
 *
 * A parked event has no mark (its savepoint rolled back), so a fresh mark
 * also reads whether the event is parked for the consumer, or was
 * dropped by an operator: a copy that comes again after the park (its Term
 * lost to a crash, or resent with a count that went back) is then not run
 * as if it were new. */
#include "inbox.h"

#include <stdio.h>
#include <string.h>

#include "status.h"

int64_t choreo__inbox_digest(const char *type, const char *saga, const uint8_t *data,
                             size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, 64 bits */
    const uint8_t *parts[3] = { (const uint8_t *)type, (const uint8_t *)saga, data };
    size_t lens[3] = { strlen(type) + 1, strlen(saga) + 1, len }; /* with the NULs between */
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < lens[p]; i++) {
            h ^= parts[p][i];
            h *= 0x100000001b3ULL;
        }
    return (int64_t)h;
}

#define MARK_SQL                                                                    \
    "INSERT INTO choreo_inbox(consumer, event_id, processed_at, digest)"            \
    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"
/* What a fresh mark reads back: the highest delivery that asked for a retry,
 * and whether the event is parked or dropped for the consumer. */
#define MARK_CHECKS_SQL                                                             \
    "(SELECT attempt FROM choreo_retries WHERE consumer = ?1 AND event_id = ?2),"   \
    " CASE WHEN EXISTS (SELECT 1 FROM choreo_dead"                                  \
    "  WHERE event_id = ?2 AND consumer = ?1 AND status IN ('parked', 'dropped'))"  \
    " THEN 1 ELSE 0 END"

/* On SQLite, a statement with RETURNING keeps the rows it returns in a
 * temporary table of its own on every run, which made up a third of the
 * mark's time: the insert goes alone, and the checks run as a query of their
 * own when it inserted. On PostgreSQL, where each statement is a round trip
 * to the server, the insert returns them. */
choreo_status choreo__inbox_mark(choreo_store *st, const char *consumer, const char *event_id,
                                 int64_t digest, int64_t now_ms, bool *fresh, int64_t *retried,
                                 bool *parked)
{
    bool returning = st->engine == ENGINE_POSTGRES;
    choreo_q *s = choreo__store_stmt(st, STMT_INBOX_MARK,
                                     returning ? MARK_SQL " RETURNING " MARK_CHECKS_SQL
                                               : MARK_SQL);
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    choreo__q_bind_int64(s, 3, now_ms);
    choreo__q_bind_int64(s, 4, digest);
    int rc = choreo__q_step(s);
    *fresh = returning ? rc == SQLITE_ROW /* a row comes back only when it was inserted */
                       : rc == SQLITE_DONE && choreo__store_changes(st) == 1;
    *retried = 0;
    if (parked)
        *parked = false;
    if (!returning && *fresh) {
        choreo__q_reset(s);
        s = choreo__store_stmt(st, STMT_INBOX_MARK_CHECK, "SELECT " MARK_CHECKS_SQL);
        if (!s)
            return CHOREO_ESTORE;
        choreo__q_bind_text(s, 1, consumer, -1);
        choreo__q_bind_text(s, 2, event_id, -1);
        rc = choreo__q_step(s);
    }
    if (rc == SQLITE_ROW) { /* only a fresh mark's checks return a row */
        *retried = choreo__q_is_null(s, 0) ? 0 : choreo__q_int64(s, 0);
        if (parked)
            *parked = choreo__q_int64(s, 1) != 0;
        rc = choreo__q_step(s);
    }
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "writing an inbox mark");
    return CHOREO_OK;
}

choreo_status choreo__inbox_digest_of(choreo_store *st, const char *consumer,
                                      const char *event_id, int64_t *digest, bool *known)
{
    choreo_q *s = choreo__store_stmt(st, STMT_INBOX_DIGEST,
        "SELECT digest FROM choreo_inbox WHERE consumer = ?1 AND event_id = ?2");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    int rc = choreo__q_step(s);
    *known = rc == SQLITE_ROW && !choreo__q_is_null(s, 0);
    *digest = *known ? choreo__q_int64(s, 0) : 0;
    if (rc == SQLITE_ROW)
        rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "reading an inbox mark's digest");
    return CHOREO_OK;
}

choreo_status choreo__inbox_retried(choreo_store *st, const char *consumer, const char *event_id,
                                    int64_t attempt, int64_t now_ms, const char *reason)
{
    choreo_q *s = choreo__store_stmt(st, STMT_RETRY_KEEP,
        "INSERT INTO choreo_retries(consumer, event_id, attempt, at, reason)"
        " VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (consumer, event_id) DO UPDATE SET attempt = excluded.attempt,"
        " at = excluded.at, reason = excluded.reason");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    choreo__q_bind_int64(s, 3, attempt);
    choreo__q_bind_int64(s, 4, now_ms);
    choreo__q_bind_text(s, 5, reason ? reason : "", -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "keeping a retried delivery's count");
    return CHOREO_OK;
}

choreo_status choreo__inbox_settled(choreo_store *st, const char *consumer, const char *event_id)
{
    choreo_q *s = choreo__store_stmt(st, STMT_RETRY_FORGET,
        "DELETE FROM choreo_retries WHERE consumer = ?1 AND event_id = ?2");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "forgetting a retried delivery's count");
    return CHOREO_OK;
}

choreo_status choreo__inbox_retry_reason(choreo_store *st, const char *consumer,
                                         const char *event_id, char *out, size_t cap)
{
    out[0] = '\0';
    choreo_q *s = choreo__store_stmt(st, STMT_RETRY_REASON,
        "SELECT reason FROM choreo_retries WHERE consumer = ?1 AND event_id = ?2");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, consumer, -1);
    choreo__q_bind_text(s, 2, event_id, -1);
    int rc = choreo__q_step(s);
    if (rc == SQLITE_ROW) {
        const char *reason = (const char *)choreo__q_text(s, 0);
        snprintf(out, cap, "%s", reason ? reason : "");
        rc = choreo__q_step(s);
    }
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "reading a retried delivery's reason");
    return CHOREO_OK;
}
