/* Held steps. A hold is a row of choreo_holds written in the handler's
 * transaction; a person's decision changes its state and writes a
 * ChoreoHoldDecided event into the service's outbox in one transaction of
 * the admin's connection; the service consumes that event like any other
 * and runs the kind's decision function in the same transaction that marks
 * the hold applied, so the function runs once. A hold ends undecided when
 * its saga ends (choreo_tx_hold_end) or its expiry passes; the state change
 * and the decision are both writes of the one database, so exactly one of
 * them wins. */
#include "holds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "envelope.h"
#include "outbox.h"
#include "status.h"
#include "tx.h"
#include "ulid.h"

static bool kind_ok(const char *kind)
{
    return kind && choreo__name_valid(kind, 64);
}

choreo_status choreo_tx_hold(choreo_tx *tx, const char *saga, const char *kind,
                             const char *reason, int64_t expires_at_ms, int64_t *id_out)
{
    choreo__clear_error();
    if (!tx || !reason)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_hold: tx and reason must not be NULL");
    if (!kind_ok(kind))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_hold: kind must be 1 to 64 characters of A-Z a-z 0-9 _ -");
    if (!saga)
        saga = tx->ev ? tx->ev->saga : NULL;
    if (!saga || !choreo__saga_valid(saga, strlen(saga)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_hold: a valid saga id is needed (outside a handler, pass "
                            "it explicitly)");
    if (strlen(reason) > 255)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_hold: the reason is %zu bytes, more "
                            "than 255", strlen(reason));
    /* An expiry already passed is kept: a handler that holds until its
     * event's time plus a while may run after that, and its saga's own
     * deadline ends the step then. */
    if (expires_at_ms < 0)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_hold: the expiry %lld is not a unix time in ms (0 for "
                            "never)", (long long)expires_at_ms);
    /* Its decision runs in this service: without a function for the kind
     * the hold could be decided and never carried on. */
    bool known = false;
    for (int i = 0; i < tx->svc->ndecisions && !known; i++)
        known = strcmp(tx->svc->decisions[i].kind, kind) == 0;
    if (!known)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_hold: service %s has no decision function for holds of "
                            "kind %s: register one with choreo_service_on_decision before start",
                            tx->svc->cfg->service, kind);
    /* A step is held once: two holds of it would carry it on twice. In a
     * handler the event's inbox mark keeps a second copy of it out until
     * this transaction ends; outside one, on PostgreSQL, two instances could
     * both find no hold and both write one, so they take turns. */
    const choreo_event *ev = tx->ev;
    if (!ev) {
        choreo_status ls = choreo__store_xact_lock(tx->st, CHOREO_PG_LOCK_HOLDS,
                                                   "waiting for another hold of a step");
        if (ls != CHOREO_OK)
            return ls;
    }
    choreo_q *dup = choreo__store_stmt(tx->st, STMT_HOLD_DUPLICATE,
        "SELECT id FROM choreo_holds WHERE saga = ?1 AND kind = ?2 AND event_id = ?3"
        " AND state = 'held'");
    if (!dup)
        return CHOREO_ESTORE;
    choreo__q_bind_text(dup, 1, saga, -1);
    choreo__q_bind_text(dup, 2, kind, -1);
    choreo__q_bind_text(dup, 3, ev ? ev->id : "", -1);
    int found = choreo__q_step(dup);
    int64_t held = found == SQLITE_ROW ? choreo__q_int64(dup, 0) : 0;
    choreo__q_reset(dup);
    if (found != SQLITE_ROW && found != SQLITE_DONE)
        return choreo__store_error(tx->st, found, "looking for a hold of this step");
    if (held)
        return choreo__fail(CHOREO_EDUPLICATE,
                            "choreo_tx_hold: this step of saga %s is held already (hold %lld, "
                            "kind %s), waiting for a decision",
                            saga, (long long)held, kind);
    const choreo_config *cfg = tx->svc->cfg;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s.%s", cfg->prefix, CHOREO_HOLD_DECIDED_TYPE, saga);
    choreo_q *s = choreo__store_stmt(tx->st, STMT_HOLD_INSERT,
        "INSERT INTO choreo_holds(saga, kind, reason, service, subject, event_id, event_type,"
        " data, held_at, expires_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
        " 'held') RETURNING id");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, saga, -1);
    choreo__q_bind_text(s, 2, kind, -1);
    choreo__q_bind_text(s, 3, reason, -1);
    choreo__q_bind_text(s, 4, cfg->service, -1);
    choreo__q_bind_text(s, 5, subject, -1);
    choreo__q_bind_text(s, 6, ev ? ev->id : "", -1);
    choreo__q_bind_text(s, 7, ev ? ev->type : "", -1);
    if (ev)
        choreo__q_bind_blob(s, 8, ev->data_len ? (const void *)ev->data : "", (int)ev->data_len);
    choreo__q_bind_int64(s, 9, choreo__now_ms());
    choreo__q_bind_int64(s, 10, expires_at_ms);
    int rc = choreo__q_step(s);
    if (rc == SQLITE_ROW && id_out)
        *id_out = choreo__q_int64(s, 0);
    choreo__q_reset(s);
    if (rc != SQLITE_ROW)
        return choreo__store_error(tx->st, rc, "writing a hold");
    return CHOREO_OK;
}

choreo_status choreo_tx_hold_end(choreo_tx *tx, const char *saga, const char *kind,
                                 const char *why, int *ended)
{
    choreo__clear_error();
    if (!tx)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_hold_end: tx must not be NULL");
    if (!saga)
        saga = tx->ev ? tx->ev->saga : NULL;
    if (!saga)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_hold_end: a saga id is needed outside a handler");
    if (kind && !kind_ok(kind))
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_hold_end: \"%s\" is not a kind", kind);
    if (why && strlen(why) > 255)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_hold_end: why is %zu bytes, more than 255",
                            strlen(why));
    choreo_q *s = choreo__store_stmt(tx->st, STMT_HOLD_END,
        "UPDATE choreo_holds SET state = 'expired', decided_at = ?3, note = ?4"
        " WHERE saga = ?1 AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2) AND state = 'held'");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, saga, -1);
    choreo__q_bind_text(s, 2, kind, -1);
    choreo__q_bind_int64(s, 3, choreo__now_ms());
    choreo__q_bind_text(s, 4, why ? why : "the saga ended first", -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(tx->st, rc, "ending holds");
    if (ended)
        *ended = choreo__store_changes(tx->st);
    return CHOREO_OK;
}

choreo_status choreo_service_on_decision(choreo_service *svc, const char *kind,
                                         choreo_decision_fn fn, void *user)
{
    choreo__clear_error();
    if (!svc || !fn)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_on_decision: svc and fn must not be NULL");
    if (!kind_ok(kind))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_on_decision: kind must be 1 to 64 characters of "
                            "A-Z a-z 0-9 _ -");
    if (svc->started)
        return choreo__fail(CHOREO_ESTATE,
                            "choreo_service_on_decision(%s): register before start", kind);
    for (int i = 0; i < svc->ndecisions; i++)
        if (strcmp(svc->decisions[i].kind, kind) == 0)
            return choreo__fail(CHOREO_EDUPLICATE,
                                "choreo_service_on_decision: %s already has a function", kind);
    if (svc->ndecisions == 0) {
        choreo_status s = choreo_service_on(svc, CHOREO_HOLD_DECIDED_TYPE,
                                            choreo__hold_on_event, svc);
        if (s != CHOREO_OK)
            return s;
    }
    choreo_decision_route *d = realloc(svc->decisions, sizeof *d * (size_t)(svc->ndecisions + 1));
    if (!d)
        return choreo__fail(CHOREO_ENOMEM, "out of memory registering a decision function");
    svc->decisions = d;
    d = &d[svc->ndecisions++];
    memset(d, 0, sizeof *d);
    snprintf(d->kind, sizeof d->kind, "%s", kind);
    d->fn = fn;
    d->user = user;
    return CHOREO_OK;
}

choreo_status choreo__holds_waiting(choreo_store *st, int64_t now_ms,
                                    void (*fn)(const char *unused, const char *kind,
                                               int64_t count, void *user),
                                    void *user)
{
    /* A hold whose expiry passed can no longer be decided
     * (choreo_admin_hold_decide): it waits for nobody. */
    return choreo__store_counts(st, STMT_HOLD_COUNTS,
                                "SELECT '', kind, COUNT(*) FROM choreo_holds WHERE state = 'held'"
                                " AND (expires_at = 0 OR expires_at > ?1)"
                                " GROUP BY kind ORDER BY kind",
                                &now_ms, fn, user, "counting holds");
}

/* ---- the decision event ------------------------------------------------ */

struct hold_row {
    int64_t id;
    char saga[CHOREO_SAGA_MAX + 1], kind[65], reason[256], service[65], subject[256];
    char event_type[CHOREO_TYPE_MAX + 1], state[16], by[65], note[256];
    int64_t held_ms, expires_ms, decided_ms;
    bool applied;
    uint8_t *data;
    size_t data_len;
};

static const char HOLD_COLUMNS[] =
    "id, saga, kind, reason, service, subject, event_type, state, decided_by, note, held_at,"
    " expires_at, decided_at, applied, data";

static void read_row(choreo_q *s, struct hold_row *h, bool with_data)
{
    memset(h, 0, sizeof *h);
    h->id = choreo__q_int64(s, 0);
    choreo__admin_copy_text(h->saga, sizeof h->saga, s, 1);
    choreo__admin_copy_text(h->kind, sizeof h->kind, s, 2);
    choreo__admin_copy_text(h->reason, sizeof h->reason, s, 3);
    choreo__admin_copy_text(h->service, sizeof h->service, s, 4);
    choreo__admin_copy_text(h->subject, sizeof h->subject, s, 5);
    choreo__admin_copy_text(h->event_type, sizeof h->event_type, s, 6);
    choreo__admin_copy_text(h->state, sizeof h->state, s, 7);
    choreo__admin_copy_text(h->by, sizeof h->by, s, 8);
    choreo__admin_copy_text(h->note, sizeof h->note, s, 9);
    h->held_ms = choreo__q_int64(s, 10);
    h->expires_ms = choreo__q_int64(s, 11);
    h->decided_ms = choreo__q_int64(s, 12);
    h->applied = choreo__q_int(s, 13) != 0;
    const void *b = choreo__q_blob(s, 14);
    size_t n = (size_t)choreo__q_bytes(s, 14);
    if (with_data && b) {
        h->data = malloc(n ? n : 1);
        if (h->data) {
            memcpy(h->data, b, n);
            h->data_len = n;
        }
    }
}

/* Reads hold id through st's cached statement; *found false when absent.
 * On PostgreSQL the row stays locked until the transaction ends: a person's
 * decision, the saga's end and the decision's apply (in any instance of
 * the service) each wait for the one before to commit and read what it
 * wrote. SQLite has one writer at a time from BEGIN on. */
static choreo_status load(choreo_store *st, int64_t id, struct hold_row *h, bool *found)
{
    char sql[320];
    snprintf(sql, sizeof sql, "SELECT %s FROM choreo_holds WHERE id = ?1%s", HOLD_COLUMNS,
             st->engine == ENGINE_POSTGRES ? " FOR UPDATE" : "");
    choreo_q *s = choreo__store_stmt(st, STMT_HOLD_GET, sql);
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_int64(s, 1, id);
    int rc = choreo__q_step(s);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        read_row(s, h, true);
    choreo__q_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "reading a hold");
    return CHOREO_OK;
}

/* The decision event's data: {"service", "hold", "decision"}. */
static bool read_decision(const choreo_event *ev, char *service, size_t cap, int64_t *hold)
{
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, ev->data, ev->data_len);
    uint32_t n;
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK)
        return false;
    *hold = -1;
    service[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        uint32_t klen, vlen;
        if (choreo_mp_read_str(&r, &k, &klen) != CHOREO_OK)
            return false;
        if (klen == 7 && memcmp(k, "service", 7) == 0) {
            if (choreo_mp_read_str(&r, &v, &vlen) != CHOREO_OK || vlen >= cap)
                return false;
            memcpy(service, v, vlen);
            service[vlen] = '\0';
        } else if (klen == 4 && memcmp(k, "hold", 4) == 0) {
            if (choreo_mp_read_int(&r, hold) != CHOREO_OK)
                return false;
        } else if (choreo_mp_skip(&r, 4) != CHOREO_OK) {
            return false;
        }
    }
    return *hold > 0 && service[0];
}

choreo_result choreo__hold_on_event(choreo_tx *tx, const choreo_event *ev, void *user)
{
    choreo_service *svc = user;
    char service[65];
    int64_t id;
    if (!read_decision(ev, service, sizeof service, &id)) {
        choreo_tx_set_reason(tx, "a ChoreoHoldDecided event without service and hold");
        return CHOREO_REJECT;
    }
    if (strcmp(service, svc->cfg->service) != 0)
        return CHOREO_DONE; /* another service's decision */
    struct hold_row h = { 0 };
    bool found = false;
    if (load(tx->st, id, &h, &found) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!found || h.applied || (strcmp(h.state, "approved") && strcmp(h.state, "rejected"))) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "hold decision already applied or void; ignored",
                   "hold=%lld state=%s", (long long)id, found ? h.state : "missing");
        free(h.data);
        return CHOREO_DONE;
    }
    int route = -1;
    for (int i = 0; i < svc->ndecisions && route < 0; i++)
        if (strcmp(svc->decisions[i].kind, h.kind) == 0)
            route = i;
    if (route < 0) {
        char why[200];
        snprintf(why, sizeof why, "no decision function for holds of kind %s "
                 "(choreo_service_on_decision)", h.kind);
        choreo_tx_set_reason(tx, why);
        free(h.data);
        return CHOREO_REJECT;
    }
    bool approved = strcmp(h.state, "approved") == 0;
    choreo_hold_decision d = {
        .id = h.id, .kind = h.kind, .saga = h.saga, .reason = h.reason, .approved = approved,
        .note = h.note, .by = h.by, .held_ms = h.held_ms, .decided_ms = h.decided_ms,
        .event_type = h.event_type, .data = h.data, .data_len = h.data_len,
    };
    choreo_result res = svc->decisions[route].fn(tx, &d, svc->decisions[route].user);
    free(h.data);
    if (res != CHOREO_DONE)
        return res;
    choreo_q *s = choreo__store_stmt(tx->st, STMT_HOLD_APPLIED,
                                     "UPDATE choreo_holds SET applied = 1 WHERE id = ?1");
    if (!s)
        return CHOREO_RETRY;
    choreo__q_bind_int64(s, 1, id);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return CHOREO_RETRY;
    choreo__mlog_add(tx->mlog, ML_DECISION, route, approved ? 1 : 0, 0);
    return CHOREO_DONE;
}

/* ---- choreoctl review -------------------------------------------------- */

static void to_entry(const struct hold_row *h, choreo_hold_entry *e)
{
    memset(e, 0, sizeof *e);
    e->id = h->id;
    snprintf(e->saga, sizeof e->saga, "%s", h->saga);
    snprintf(e->kind, sizeof e->kind, "%s", h->kind);
    snprintf(e->reason, sizeof e->reason, "%s", h->reason);
    snprintf(e->service, sizeof e->service, "%s", h->service);
    snprintf(e->event_type, sizeof e->event_type, "%s", h->event_type);
    snprintf(e->state, sizeof e->state, "%s", h->state);
    snprintf(e->decided_by, sizeof e->decided_by, "%s", h->by);
    snprintf(e->note, sizeof e->note, "%s", h->note);
    e->held_ms = h->held_ms;
    e->expires_ms = h->expires_ms;
    e->decided_ms = h->decided_ms;
    e->applied = h->applied;
}

choreo_status choreo_admin_holds(choreo_admin *adm, const char *state, choreo_hold_entry **out,
                                 size_t *n)
{
    if (!adm || !out || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_holds: NULL argument");
    if (state && strcmp(state, "held") && strcmp(state, "approved") && strcmp(state, "rejected") &&
        strcmp(state, "expired"))
        return choreo__fail(CHOREO_EINVAL,
                            "unknown hold state \"%s\": use held, approved, rejected or expired",
                            state);
    if (adm->schema < CHOREO_SCHEMA_HOLDS) {
        *out = NULL; /* read-only, from before held steps: none */
        *n = 0;
        return CHOREO_OK;
    }
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM choreo_holds WHERE CAST(?1 AS TEXT) IS NULL OR state = ?1"
             " ORDER BY id",
             HOLD_COLUMNS);
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, sql, &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "listing holds");
    choreo__q_bind_text(s, 1, state, -1);
    choreo_hold_entry *list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            choreo_hold_entry *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                choreo__q_finalize(s);
                return choreo__fail(CHOREO_ENOMEM, "out of memory listing holds");
            }
            list = grown;
        }
        struct hold_row h;
        read_row(s, &h, false);
        to_entry(&h, &list[count++]);
    }
    choreo__q_finalize(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return choreo__store_error(adm->st, rc, "listing holds");
    }
    *out = list;
    *n = count;
    return CHOREO_OK;
}

/* Writes the decision event of hold h into the outbox, in the open
 * transaction. */
static choreo_status announce(choreo_store *st, const struct hold_row *h, bool approve,
                              size_t max_bytes)
{
    uint8_t buf[256];
    choreo_mp_writer data = { .buf = buf, .cap = sizeof buf, .max = sizeof buf };
    choreo_mp_write_map(&data, 3);
    choreo_mp_write_cstr(&data, "service");
    choreo_mp_write_cstr(&data, h->service);
    choreo_mp_write_cstr(&data, "hold");
    choreo_mp_write_int(&data, h->id);
    choreo_mp_write_cstr(&data, "decision");
    choreo_mp_write_cstr(&data, approve ? "approved" : "rejected");
    choreo_envelope env;
    memset(&env, 0, sizeof env);
    choreo__ulid_new(env.id);
    snprintf(env.type, sizeof env.type, "%s", CHOREO_HOLD_DECIDED_TYPE);
    env.version = 1;
    snprintf(env.saga, sizeof env.saga, "%s", h->saga);
    snprintf(env.src, sizeof env.src, "%s", h->service);
    env.ts_ms = choreo__now_ms();
    env.data = data.buf;
    env.data_len = data.len;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, max_bytes);
    choreo_status s = choreo_mp_writer_status(&data);
    if (s == CHOREO_OK)
        s = choreo__envelope_encode(&env, &w);
    char headers[512], trace[CHOREO_TRACEPARENT_SIZE];
    choreo__traceparent_child(NULL, trace);
    choreo__outbox_headers(headers, sizeof headers, env.id, env.type, env.saga, env.src, trace);
    choreo_outbox_row row = {
        .event_id = env.id, .subject = h->subject, .headers = headers, .body = w.buf,
        .body_len = w.len, .created_us = choreo__now_us(), .publish_at = env.ts_ms,
    };
    if (s == CHOREO_OK)
        s = choreo__outbox_insert(st, &row, NULL);
    choreo_mp_writer_free(&w);
    return s;
}

static void when(int64_t ms, char *out, size_t cap)
{
    choreo__format_rfc3339(ms, out, cap);
}

choreo_status choreo_admin_hold_decide(choreo_admin *adm, int64_t id, bool approve,
                                       const char *note, const char *by, choreo_hold_entry *out)
{
    choreo__clear_error();
    if (!adm || !by || !*by || strlen(by) > 64 || (note && strlen(note) > 255))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_admin_hold_decide: who decides (1 to 64 characters) is "
                            "needed, and a note has at most 255 bytes");
    choreo_status s = choreo__admin_writable(adm, "deciding a held step");
    if (s == CHOREO_OK)
        s = choreo__store_begin(adm->st);
    if (s != CHOREO_OK)
        return s;
    /* A transaction of the service that holds the row (ending the saga's
     * holds) is waited for, not failed on. */
    s = choreo__store_patient(adm->st);
    if (s != CHOREO_OK) {
        choreo__store_rollback(adm->st);
        return s;
    }
    struct hold_row h = { 0 };
    bool found = false;
    s = load(adm->st, id, &h, &found);
    if (s == CHOREO_OK && !found)
        s = choreo__fail(CHOREO_ENOTFOUND, "no hold %lld in this database (choreoctl review "
                         "list shows them)", (long long)id);
    int64_t now = choreo__now_ms();
    const char *want = approve ? "approved" : "rejected";
    char at[40];
    if (s == CHOREO_OK && strcmp(h.state, "held") != 0) {
        when(h.decided_ms, at, sizeof at);
        if (strcmp(h.state, want) == 0)
            s = choreo__fail(CHOREO_EDUPLICATE, "hold %lld was already %s by %s at %s; nothing "
                             "changed", (long long)id, want, h.by, at);
        else if (strcmp(h.state, "expired") == 0)
            s = choreo__fail(CHOREO_ESTATE, "hold %lld can no longer be decided: it ended at %s "
                             "(%s)", (long long)id, at, h.note);
        else
            s = choreo__fail(CHOREO_ESTATE, "hold %lld was already %s by %s at %s; a decision "
                             "cannot be changed", (long long)id, h.state, h.by, at);
    } else if (s == CHOREO_OK && h.expires_ms > 0 && now >= h.expires_ms) {
        when(h.expires_ms, at, sizeof at);
        s = choreo__fail(CHOREO_ESTATE, "hold %lld can no longer be decided: it expired at %s, "
                         "its saga's deadline", (long long)id, at);
    }
    if (s == CHOREO_OK) {
        choreo_q *u;
        int rc = choreo__q_prepare(adm->st, "UPDATE choreo_holds SET state = ?2, decided_at = ?3,"
                                    " decided_by = ?4, note = ?5 WHERE id = ?1 AND state = 'held'", &u);
        if (rc == SQLITE_OK) {
            choreo__q_bind_int64(u, 1, id);
            choreo__q_bind_text(u, 2, want, -1);
            choreo__q_bind_int64(u, 3, now);
            choreo__q_bind_text(u, 4, by, -1);
            choreo__q_bind_text(u, 5, note ? note : "", -1);
            rc = choreo__q_step(u);
            choreo__q_finalize(u);
        }
        s = rc == SQLITE_DONE ? announce(adm->st, &h, approve, (size_t)adm->cfg->max_event_bytes)
                              : choreo__store_error(adm->st, rc, "deciding a hold");
    }
    if (s == CHOREO_OK) {
        s = choreo__store_commit(adm->st);
        snprintf(h.state, sizeof h.state, "%s", want);
        snprintf(h.by, sizeof h.by, "%s", by);
        snprintf(h.note, sizeof h.note, "%s", note ? note : "");
        h.decided_ms = now;
    } else {
        choreo__store_rollback(adm->st);
    }
    if (out && found && (s == CHOREO_OK || s == CHOREO_EDUPLICATE))
        to_entry(&h, out);
    free(h.data);
    return s;
}
