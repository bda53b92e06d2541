/* Reading a service's database without changing it, for choreoctl status
 * and saga, on SQLite and PostgreSQL alike: a handle that neither creates
 * nor migrates, the numbers status shows (read in one read transaction),
 * inbox marks and barrier rows. Older schemas are read for what they have:
 * the schema version says which tables exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "status.h"
#include "store.h"

bool choreo_db_is_postgres(const char *db)
{
    return choreo__store_is_postgres(db);
}

void choreo_db_display(const char *db, char *out, size_t cap)
{
    if (out)
        choreo__store_display(db, out, cap);
}

choreo_status choreo_admin_open_readonly(choreo_admin **out, const choreo_config *cfg)
{
    if (!out || !cfg)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_admin_open_readonly: out and cfg must not be NULL");
    if (!cfg->db)
        return choreo__fail(CHOREO_ECONFIG, "setting db is required: pass --db FILE or "
                            "--db postgresql://USER@HOST:PORT/DBNAME");
    choreo_admin *adm = NULL;
    choreo_status s = choreo__admin_new(cfg, &adm);
    if (s != CHOREO_OK)
        return s;
    adm->readonly = true;
    s = choreo__store_open_readonly(&adm->st, adm->cfg->db, (int)adm->cfg->busy_timeout_ms,
                                    &adm->schema);
    if (s == CHOREO_OK && adm->schema == 0) {
        char shown[512];
        choreo__store_display(adm->cfg->db, shown, sizeof shown);
        s = choreo__fail(CHOREO_ENOTFOUND,
                         "%s is not a choreo service's database (it holds none of choreo's "
                         "tables): pass the service's db setting with --db",
                         shown);
    }
    if (s != CHOREO_OK) {
        choreo_admin_close(adm);
        return s;
    }
    *out = adm;
    return CHOREO_OK;
}

/* ---- status ------------------------------------------------------------- */

typedef void (*row_fn)(choreo_q *q, choreo_db_status *d);

static void row_due(choreo_q *q, choreo_db_status *d)
{
    d->pending = choreo__q_int64(q, 0);
    d->oldest_due_ms = choreo__q_int64(q, 1); /* NULL, read as 0, when none */
}

static void row_delayed(choreo_q *q, choreo_db_status *d)
{
    d->delayed = choreo__q_int64(q, 0);
    d->next_delayed_ms = choreo__q_int64(q, 1);
}

static void row_published(choreo_q *q, choreo_db_status *d)
{
    d->last_published_ms = choreo__q_int64(q, 0);
}

static void row_parked(choreo_q *q, choreo_db_status *d)
{
    int64_t count = choreo__q_int64(q, 2);
    d->parked += count;
    if (d->nparked_by == CHOREO_DB_GROUPS_MAX) {
        d->parked_by_cut = true;
        return;
    }
    choreo_parked_group *g = &d->parked_by[d->nparked_by++];
    choreo__admin_copy_text(g->consumer, sizeof g->consumer, q, 0);
    choreo__admin_copy_text(g->event_type, sizeof g->event_type, q, 1);
    g->count = count;
}

static void row_last(choreo_q *q, choreo_db_status *d)
{
    choreo_dead_entry *e = &d->last;
    d->has_last = true;
    e->id = choreo__q_int64(q, 0);
    choreo__admin_copy_text(e->consumer, sizeof e->consumer, q, 1);
    choreo__admin_copy_text(e->event_id, sizeof e->event_id, q, 2);
    choreo__admin_copy_text(e->event_type, sizeof e->event_type, q, 3);
    choreo__admin_copy_text(e->reason, sizeof e->reason, q, 4);
    e->attempts = choreo__q_int64(q, 5);
    e->parked_at_ms = choreo__q_int64(q, 6);
    snprintf(e->status, sizeof e->status, "parked");
}

static void row_service(choreo_q *q, choreo_db_status *d)
{
    choreo__admin_copy_text(d->service, sizeof d->service, q, 0);
}

static void row_held(choreo_q *q, choreo_db_status *d)
{
    int64_t count = choreo__q_int64(q, 1);
    d->held += count;
    d->held_expired += choreo__q_int64(q, 2);
    if (d->nheld_by == CHOREO_DB_GROUPS_MAX) {
        d->held_by_cut = true;
        return;
    }
    choreo_held_group *k = &d->held_by[d->nheld_by++];
    choreo__admin_copy_text(k->kind, sizeof k->kind, q, 0);
    k->count = count;
}

/* The queries, in the order they run, each on databases from schema
 * version `since` on; ?1, where a query has it, is the time of the read.
 * The outbox ones use its partial indexes of unpublished and of published
 * rows. Past its expiry a hold still reads "held", but a decision is
 * refused from that millisecond on (choreo_admin_hold_decide). */
static const struct status_query {
    const char *what;
    int since;
    bool now;
    const char *sql;
    row_fn fn;
} status_queries[] = {
    { "the outbox", 1, true, "SELECT COUNT(*), MIN(publish_at) FROM choreo_outbox"
                             " WHERE published_at IS NULL AND publish_at <= ?1", row_due },
    { "the outbox", 1, true, "SELECT COUNT(*), MIN(publish_at) FROM choreo_outbox"
                             " WHERE published_at IS NULL AND publish_at > ?1", row_delayed },
    { "the outbox", 1, false, "SELECT MAX(published_at) FROM choreo_outbox"
                              " WHERE published_at IS NOT NULL", row_published },
    { "the parked messages", 1, false, "SELECT consumer, COALESCE(event_type, ''), COUNT(*)"
                                       " FROM choreo_dead WHERE status = 'parked'"
                                       " GROUP BY 1, 2 ORDER BY 1, 2", row_parked },
    { "the parked messages", 1, false, "SELECT id, consumer, COALESCE(event_id, ''),"
                                       " COALESCE(event_type, ''), reason, attempts, parked_at"
                                       " FROM choreo_dead WHERE status = 'parked'"
                                       " ORDER BY id DESC LIMIT 1", row_last },
    { "the registered handlers", CHOREO_SCHEMA_HANDLERS, false,
      "SELECT service FROM choreo_consumers ORDER BY registered_at DESC LIMIT 1", row_service },
    { "the held steps", CHOREO_SCHEMA_HOLDS, true,
      "SELECT kind, COUNT(*), SUM(CASE WHEN expires_at > 0 AND expires_at <= ?1 THEN 1"
      " ELSE 0 END) FROM choreo_holds WHERE state = 'held' GROUP BY kind ORDER BY kind",
      row_held },
};

static choreo_status run_query(choreo_admin *adm, const struct status_query *sq,
                               choreo_db_status *d)
{
    char what[64];
    snprintf(what, sizeof what, "reading %s", sq->what);
    choreo_q *q;
    int rc = choreo__q_prepare(adm->st, sq->sql, &q);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, what);
    if (sq->now)
        choreo__q_bind_int64(q, 1, d->now_ms);
    while ((rc = choreo__q_step(q)) == SQLITE_ROW)
        sq->fn(q, d);
    choreo__q_finalize(q);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(adm->st, rc, what);
}

choreo_status choreo_admin_status(choreo_admin *adm, choreo_db_status *out)
{
    if (!adm || !out)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_status: NULL argument");
    choreo_db_status *d = calloc(1, sizeof *d);
    if (!d)
        return choreo__fail(CHOREO_ENOMEM, "out of memory reading the database's status");
    d->records_handlers = adm->schema >= CHOREO_SCHEMA_HANDLERS;
    d->records_holds = adm->schema >= CHOREO_SCHEMA_HOLDS;
    choreo_status s = choreo__store_begin_read(adm->st);
    d->now_ms = choreo__now_ms();
    size_t nq = sizeof status_queries / sizeof status_queries[0];
    for (size_t i = 0; s == CHOREO_OK && i < nq; i++)
        if (adm->schema >= status_queries[i].since)
            s = run_query(adm, &status_queries[i], d);
    choreo__store_rollback(adm->st); /* it only read */
    if (s == CHOREO_OK)
        *out = *d;
    free(d);
    return s;
}

choreo_status choreo_admin_service(choreo_admin *adm, char *out, size_t cap)
{
    if (!adm || !out || cap == 0)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_service: NULL argument");
    if (adm->schema < CHOREO_SCHEMA_HANDLERS) {
        out[0] = '\0';
        return CHOREO_OK;
    }
    choreo_q *q;
    int rc = choreo__q_prepare(adm->st, "SELECT service FROM choreo_consumers"
                               " ORDER BY registered_at DESC LIMIT 1", &q);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading the registered handlers");
    rc = choreo__q_step(q);
    if (rc == SQLITE_ROW)
        choreo__admin_copy_text(out, cap, q, 0);
    else if (rc == SQLITE_DONE)
        out[0] = '\0';
    choreo__q_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return choreo__store_error(adm->st, rc, "reading the registered handlers");
    return CHOREO_OK;
}

/* ---- saga timelines ----------------------------------------------------- */

choreo_status choreo_admin_inbox_marks(choreo_admin *adm, size_t n, const char *const *consumer,
                                       const char *const *event_id, int64_t *at_ms)
{
    if (!adm || (n > 0 && (!consumer || !event_id || !at_ms)))
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_inbox_marks: NULL argument");
    int64_t *found = calloc(n ? n : 1, sizeof *found);
    if (!found)
        return choreo__fail(CHOREO_ENOMEM, "out of memory reading %zu inbox marks", n);
    choreo_q *q;
    int rc = choreo__q_prepare(adm->st, "SELECT processed_at FROM choreo_inbox"
                               " WHERE consumer = ?1 AND event_id = ?2", &q);
    for (size_t i = 0; rc == SQLITE_OK && i < n; i++) {
        choreo__q_reset(q);
        choreo__q_bind_text(q, 1, consumer[i], -1);
        choreo__q_bind_text(q, 2, event_id[i], -1);
        rc = choreo__q_step(q);
        if (rc == SQLITE_ROW)
            found[i] = choreo__q_int64(q, 0);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    choreo__q_finalize(q);
    if (rc != SQLITE_OK) {
        free(found);
        return choreo__store_error(adm->st, rc, "reading the inbox");
    }
    if (n)
        memcpy(at_ms, found, n * sizeof *found);
    free(found);
    return CHOREO_OK;
}

choreo_status choreo_admin_barrier(choreo_admin *adm, const char *saga, choreo_barrier_mark **out,
                                   size_t *n)
{
    if (!adm || !saga || !out || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_barrier: NULL argument");
    choreo_q *q;
    int rc = choreo__q_prepare(adm->st, "SELECT step, op, created_at FROM choreo_barrier"
                               " WHERE saga = ?1 ORDER BY created_at, op", &q);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading the barrier");
    choreo__q_bind_text(q, 1, saga, -1);
    choreo_barrier_mark *list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = choreo__q_step(q)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            choreo_barrier_mark *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                rc = SQLITE_NOMEM;
                break;
            }
            list = grown;
        }
        choreo_barrier_mark *m = &list[count++];
        choreo__admin_copy_text(m->step, sizeof m->step, q, 0);
        choreo__admin_copy_text(m->op, sizeof m->op, q, 1);
        m->at_ms = choreo__q_int64(q, 2);
    }
    choreo__q_finalize(q);
    if (rc != SQLITE_DONE) {
        free(list);
        return rc == SQLITE_NOMEM ? choreo__fail(CHOREO_ENOMEM, "out of memory reading the barrier")
                                  : choreo__store_error(adm->st, rc, "reading the barrier");
    }
    *out = list;
    *n = count;
    return CHOREO_OK;
}
