/* Pruning keeps the framework tables bounded: published outbox rows and old
 * inbox marks go in batches of a few hundred rows, each batch its own short
 * transaction, so that handlers and the relay never wait long for the write
 * lock. The inbox retention is validated to outlive the stream's max age, so
 * a mark is only forgotten once its event can no longer be delivered. */
#include "prune.h"

#include "status.h"

static choreo_status prune_table(choreo_store *st, enum choreo_stmt id, const char *sql,
                                 int64_t before, const atomic_bool *stop, int64_t *deleted)
{
    for (;;) {
        if (atomic_load(stop))
            return CHOREO_OK;
        sqlite3_stmt *s = choreo__store_stmt(st, id, sql);
        if (!s)
            return CHOREO_ESTORE;
        sqlite3_bind_int64(s, 1, before);
        sqlite3_bind_int(s, 2, CHOREO_PRUNE_BATCH);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return choreo__store_error(st->db, rc, "pruning old rows");
        int n = sqlite3_changes(st->db);
        *deleted += n;
        if (n < CHOREO_PRUNE_BATCH)
            return CHOREO_OK;
    }
}

choreo_status choreo__prune(choreo_store *st, int64_t outbox_before_ms, int64_t inbox_before_ms,
                            const atomic_bool *stop, int64_t *deleted)
{
    choreo_status s = CHOREO_OK;
    if (outbox_before_ms > 0)
        s = prune_table(st, STMT_PRUNE_OUTBOX,
                        "DELETE FROM choreo_outbox WHERE seq IN (SELECT seq FROM choreo_outbox"
                        " WHERE published_at IS NOT NULL AND published_at < ?1 LIMIT ?2)",
                        outbox_before_ms, stop, deleted);
    if (s == CHOREO_OK && inbox_before_ms > 0)
        s = prune_table(st, STMT_PRUNE_INBOX,
                        "DELETE FROM choreo_inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id"
                        " FROM choreo_inbox"
                        " WHERE processed_at < ?1 LIMIT ?2)",
                        inbox_before_ms, stop, deleted);
    return s;
}
