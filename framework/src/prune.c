/* Pruning keeps the framework tables bounded: published outbox rows, old
 * inbox marks, old barrier rows, ended orchestrated sagas and ended holds go
 * in batches of a few hundred rows, each batch its own short transaction, so
 * that handlers and the relay never wait long for the write lock. The inbox
 * retention is checked against the stream's real max age, so a mark or a
 * barrier row is only forgotten once no delivery of an event that could need
 * it can arrive. */
#include "prune.h"

#include "status.h"

static choreo_status prune_table(choreo_store *st, enum choreo_stmt id, const char *sql,
                                 int64_t before, const atomic_bool *stop, int64_t *deleted)
{
    for (;;) {
        if (atomic_load(stop))
            return CHOREO_OK;
        choreo_q *s = choreo__store_stmt(st, id, sql);
        if (!s)
            return CHOREO_ESTORE;
        choreo__q_bind_int64(s, 1, before);
        choreo__q_bind_int(s, 2, CHOREO_PRUNE_BATCH);
        int rc = choreo__q_step(s);
        choreo__q_reset(s);
        if (rc != SQLITE_DONE)
            return choreo__store_error(st, rc, "pruning old rows");
        int n = choreo__store_changes(st);
        *deleted += n;
        if (n < CHOREO_PRUNE_BATCH)
            return CHOREO_OK;
    }
}

/* What goes, in this order: each statement deletes up to ?2 rows older than
 * ?1, the outbox's by outbox_retention_s, the others by inbox_retention_s. */
static const struct prune_step {
    enum choreo_stmt id;
    bool outbox;
    const char *sql;
} steps[] = {
    { STMT_PRUNE_OUTBOX, true,
      "DELETE FROM choreo_outbox WHERE seq IN (SELECT seq FROM choreo_outbox"
      " WHERE published_at IS NOT NULL AND published_at < ?1 LIMIT ?2)" },
    { STMT_PRUNE_INBOX, false,
      "DELETE FROM choreo_inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id"
      " FROM choreo_inbox WHERE processed_at < ?1 LIMIT ?2)" },
    /* The counts of retried deliveries whose event never came back. */
    { STMT_PRUNE_RETRIES, false,
      "DELETE FROM choreo_retries WHERE (consumer, event_id) IN (SELECT"
      " consumer, event_id FROM choreo_retries WHERE at < ?1 LIMIT ?2)" },
    /* A parked message can be retried long after that, and a retried one
     * may still be on its way: the barrier rows of their sagas stay (the
     * saga is the subject's last token) until the retry is that old too. */
    { STMT_PRUNE_BARRIER, false,
      "DELETE FROM choreo_barrier WHERE (saga, step, op) IN ("
      " SELECT saga, step, op FROM choreo_barrier WHERE created_at < ?1"
      " AND saga NOT IN (SELECT substr(subject,"
      "   length(rtrim(subject, replace(subject, '.', ''))) + 1)"
      "   FROM choreo_dead WHERE status = 'parked'"
      "   OR (status = 'retried' AND updated_at >= ?1))"
      " LIMIT ?2)" },
    /* Orchestrated instances that ended that long ago, and their
     * transitions: a late reply for one finds no instance and is ignored. */
    { STMT_PRUNE_SAGA_TRANSITIONS, false,
      "DELETE FROM choreo_saga_transitions WHERE id IN (SELECT t.id FROM"
      " choreo_saga_transitions t JOIN choreo_saga_instances i ON i.saga = t.saga"
      " WHERE i.phase IN ('COMPLETED', 'FAILED') AND i.updated_at < ?1 LIMIT ?2)" },
    { STMT_PRUNE_SAGAS, false,
      "DELETE FROM choreo_saga_instances WHERE saga IN (SELECT saga FROM"
      " choreo_saga_instances WHERE phase IN ('COMPLETED', 'FAILED')"
      " AND updated_at < ?1 LIMIT ?2)" },
    /* Held steps that ended that long ago: decided and applied, ended with
     * their saga, or past an expiry after which no decision is taken. A
     * hold that waits for a decision stays, however old, and so does one
     * decided and not yet applied; a decision event that comes later finds
     * no hold and is ignored. */
    { STMT_PRUNE_HOLDS, false,
      "DELETE FROM choreo_holds WHERE id IN (SELECT id FROM choreo_holds"
      " WHERE (state = 'expired' AND decided_at < ?1)"
      " OR (state IN ('approved', 'rejected') AND applied = 1 AND decided_at < ?1)"
      " OR (state = 'held' AND expires_at > 0 AND expires_at < ?1) LIMIT ?2)" },
};

choreo_status choreo__prune(choreo_store *st, int64_t outbox_before_ms, int64_t inbox_before_ms,
                            const atomic_bool *stop, int64_t *deleted)
{
    choreo_status s = CHOREO_OK;
    for (size_t i = 0; s == CHOREO_OK && i < sizeof steps / sizeof steps[0]; i++) {
        int64_t before = steps[i].outbox ? outbox_before_ms : inbox_before_ms;
        if (before > 0)
            s = prune_table(st, steps[i].id, steps[i].sql, before, stop, deleted);
    }
    return s;
}
