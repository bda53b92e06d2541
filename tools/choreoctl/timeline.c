/* Reads a saga's timeline. The stream gives the events (every event of a
 * saga has a subject <prefix>.<Type>.<saga>); each service's database adds
 * its inbox marks (consumer <service>_<Type>, looked up by primary key), its
 * parked messages and its barrier rows, and the database of the service
 * that orchestrates the saga its instance and transitions. Nothing here
 * writes anywhere: the consumer is ephemeral, the databases are opened
 * read-only, and the admin API reads the instance only from a database
 * that already has the orchestrator's tables, so opening it migrates
 * nothing. */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cli.h"
#include "mpjson.h"

/* Most msgpack data bytes kept for the JSON output; events past it keep
 * their fields but not their data. */
#define DATA_BYTES_MAX ((size_t)64 << 20)
/* Messages asked for per pull request, and how long one may take. */
#define FETCH_BATCH 256
#define FETCH_WAIT_MS 5000
/* The server drops the ephemeral consumer this long after its reader is
 * gone, should choreoctl die before deleting it. */
#define INACTIVE_NS ((int64_t)30 * 1000 * 1000 * 1000)
/* A barrier mark belongs to an application that marked its inbox at most
 * this long before it, in the same transaction. */
#define MARK_WINDOW_MS 1000

bool ctl_saga_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CHOREO_SAGA_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

void ctl_timeline_init(ctl_timeline *t, const char *saga, const char *stream,
                       const char *prefix, size_t limit)
{
    memset(t, 0, sizeof *t);
    snprintf(t->saga, sizeof t->saga, "%s", saga);
    snprintf(t->stream, sizeof t->stream, "%s", stream);
    snprintf(t->filter, sizeof t->filter, "%s.*.%s", prefix, saga);
    t->limit = limit;
}

static void copy_field(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* The type token of a subject <prefix>.<Type>.<saga>. */
static void type_of_subject(const char *subject, size_t prefix_len, char *out, size_t cap)
{
    const char *type = subject + prefix_len + 1;
    const char *dot = strrchr(subject, '.');
    if (strlen(subject) <= prefix_len + 1 || !dot || dot < type)
        copy_field(out, cap, "?", 1);
    else
        copy_field(out, cap, type, (size_t)(dot - type));
}

static void fill_envelope(ctl_timeline *t, ctl_tl_event *e, const ctl_envelope *env)
{
    e->decoded = true;
    copy_field(e->id, sizeof e->id, env->id, env->id_len);
    copy_field(e->type, sizeof e->type, env->type, env->type_len);
    copy_field(e->src, sizeof e->src, env->src, env->src_len);
    e->has_cause = env->has_cause;
    if (env->has_cause)
        copy_field(e->cause, sizeof e->cause, env->cause, env->cause_len);
    e->version = env->version;
    e->ts_ms = env->ts_ms;
    if (env->data_len > DATA_BYTES_MAX - t->data_bytes) {
        t->data_dropped = true;
        return;
    }
    e->data = malloc(env->data_len ? env->data_len : 1);
    if (e->data) {
        memcpy(e->data, env->data, env->data_len);
        e->data_len = env->data_len;
        t->data_bytes += env->data_len;
    } else {
        t->data_dropped = true;
    }
}

/* Appends one message and tells how many are left after it; false when
 * out of memory. */
static bool add_message(ctl_timeline *t, natsMsg *m, size_t prefix_len, uint64_t *pending)
{
    ctl_tl_event *grown = realloc(t->ev, (t->n + 1) * sizeof *t->ev);
    if (!grown)
        return false;
    t->ev = grown;
    ctl_tl_event *e = &t->ev[t->n];
    memset(e, 0, sizeof *e);
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        e->seq = meta->Sequence.Stream;
        e->stored_ms = meta->Timestamp / 1000000;
        *pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
    }
    snprintf(e->subject, sizeof e->subject, "%s", natsMsg_GetSubject(m));
    const char *retry_for = NULL;
    if (natsMsgHeader_Get(m, "Choreo-Retry-For", &retry_for) == NATS_OK && retry_for)
        snprintf(e->retry_for, sizeof e->retry_for, "%s", retry_for);
    ctl_envelope env;
    const uint8_t *body = (const uint8_t *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    if (ctl_envelope_read(body, len, &env, e->why, sizeof e->why)) {
        fill_envelope(t, e, &env);
    } else {
        type_of_subject(e->subject, prefix_len, e->type, sizeof e->type);
        e->ts_ms = e->stored_ms;
    }
    t->n++;
    return true;
}

/* Fetches until want messages arrived or the last one says none is left. */
static int fetch_all(ctl_timeline *t, ctl_nats *n, natsSubscription *sub, size_t want)
{
    size_t prefix_len = strlen(t->filter) - strlen(t->saga) - 3;
    bool more = true;
    while (more && t->n < want) {
        natsMsgList list = { 0 };
        jsErrCode jerr = 0;
        size_t left = want - t->n;
        natsStatus st = natsSubscription_Fetch(&list, sub, left < FETCH_BATCH ? (int)left
                                                                              : FETCH_BATCH,
                                               FETCH_WAIT_MS, &jerr);
        if (st != NATS_OK) {
            ctl_error("saga: reading %s from stream %s on NATS at %s stopped after %zu of %zu "
                      "events: %s", t->filter, t->stream, n->urls, t->n, want,
                      ctl_nats_detail(st));
            return CTL_EXIT_FAIL;
        }
        for (int i = 0; i < list.Count; i++) {
            uint64_t pending = 1;
            if (!add_message(t, list.Msgs[i], prefix_len, &pending)) {
                natsMsgList_Destroy(&list);
                ctl_error("saga: out of memory after %zu events", t->n);
                return CTL_EXIT_FAIL;
            }
            more = pending > 0;
        }
        natsMsgList_Destroy(&list);
    }
    return CTL_EXIT_OK;
}

int ctl_timeline_read_stream(ctl_timeline *t, ctl_nats *n)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = t->stream;
    so.Config.AckPolicy = js_AckNone;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.InactiveThreshold = INACTIVE_NS;
    so.Config.MemoryStorage = true;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_PullSubscribe(&sub, n->js, t->filter, NULL, NULL, &so, &jerr);
    if (st != NATS_OK) {
        ctl_error("saga: cannot read %s from stream %s on NATS at %s: %s", t->filter, t->stream,
                  n->urls, ctl_nats_detail(st));
        return CTL_EXIT_FAIL;
    }
    jsConsumerInfo *ci = NULL;
    st = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
    int rc = CTL_EXIT_OK;
    if (st != NATS_OK) {
        ctl_error("saga: cannot count the events of %s in stream %s on NATS at %s: %s",
                  t->filter, t->stream, n->urls, ctl_nats_detail(st));
        rc = CTL_EXIT_FAIL;
    } else {
        t->in_stream = ci->NumPending;
        jsConsumerInfo_Destroy(ci);
        t->truncated = t->in_stream > t->limit;
        size_t want = t->truncated ? t->limit : (size_t)t->in_stream;
        if (want > 0)
            rc = fetch_all(t, n, sub, want);
    }
    /* Deletes the ephemeral consumer now rather than after its threshold. */
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return rc;
}

/* ---- databases ---------------------------------------------------------- */

static void stem_of(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".db") == 0)
        len -= 3;
    copy_field(out, cap, base, len);
}

/* The service that last started on the database, or its file name's stem. */
static void service_of(sqlite3 *h, const char *path, char *out, size_t cap)
{
    sqlite3_stmt *q = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(h, "SELECT service FROM choreo_consumers ORDER BY registered_at DESC "
                              "LIMIT 1", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (!out[0])
        stem_of(path, out, cap);
}

/* An entry of the index of the events by id. */
struct ctl_id_ref {
    const char *id;
    int64_t stored_ms;
    size_t index;
};

static int by_id(const void *a, const void *b)
{
    const struct ctl_id_ref *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    if (x->stored_ms != y->stored_ms)
        return x->stored_ms < y->stored_ms ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Indexes the events read, which stay where they are until
 * ctl_timeline_finish sorts them and drops the index. */
static bool build_index(ctl_timeline *t)
{
    if (t->by_id || t->n == 0)
        return true;
    t->by_id = malloc(t->n * sizeof *t->by_id);
    if (!t->by_id)
        return false;
    for (size_t i = 0; i < t->n; i++)
        t->by_id[i] = (struct ctl_id_ref){ t->ev[i].id, t->ev[i].stored_ms, i };
    qsort(t->by_id, t->n, sizeof *t->by_id, by_id);
    return true;
}

/* The event a record of event id at time at_ms belongs to: the message with
 * that id stored last at or before at_ms (a `dead retry` stores the same id
 * again), else the first one. -1 when the saga has no such event. */
static long event_for(const ctl_timeline *t, const char *id, int64_t at_ms)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) { /* the first index entry whose id is not below id */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->by_id[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    long best = -1, first = -1;
    for (size_t k = lo; k < t->n && strcmp(t->by_id[k].id, id) == 0; k++) {
        size_t i = t->by_id[k].index;
        if (!t->ev[i].decoded)
            continue;
        if (first < 0)
            first = (long)i;
        if (t->ev[i].stored_ms <= at_ms)
            best = (long)i;
    }
    return best >= 0 ? best : first;
}

static bool push_apply(ctl_tl_event *e, const ctl_apply *a)
{
    for (size_t i = 0; i < e->napplied; i++)
        if (strcmp(e->applied[i].consumer, a->consumer) == 0 && e->applied[i].db == a->db)
            return true;
    ctl_apply *grown = realloc(e->applied, (e->napplied + 1) * sizeof *grown);
    if (!grown)
        return false;
    e->applied = grown;
    e->applied[e->napplied++] = *a;
    return true;
}

static int db_error(sqlite3 *h, const char *path, const char *what)
{
    ctl_error("saga: cannot read %s from %s: %s", what, path, sqlite3_errmsg(h));
    return CTL_EXIT_FAIL;
}

/* Inbox marks: one primary-key lookup per event, for the consumer
 * <service>_<Type> that would have applied it. */
static int read_inbox(ctl_timeline *t, sqlite3 *h, const ctl_db *db)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h, "SELECT processed_at FROM choreo_inbox WHERE consumer = ?1 AND "
                              "event_id = ?2", -1, &q, NULL) != SQLITE_OK)
        return db_error(h, db->path, "the inbox");
    size_t n = t->n;
    for (size_t i = 0; i < n; i++) {
        const ctl_tl_event *e = &t->ev[i];
        /* A repeated id (a retry) is looked up once, for its first message. */
        if (!e->decoded || event_for(t, e->id, INT64_MIN) != (long)i)
            continue;
        ctl_apply a;
        memset(&a, 0, sizeof a);
        snprintf(a.consumer, sizeof a.consumer, "%s_%s", db->service, e->type);
        a.db = db;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, a.consumer, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, e->id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            a.at_ms = sqlite3_column_int64(q, 0);
            if (!push_apply(&t->ev[event_for(t, e->id, a.at_ms)], &a)) {
                sqlite3_finalize(q);
                ctl_error("saga: out of memory");
                return CTL_EXIT_FAIL;
            }
        } else if (rc != SQLITE_DONE) {
            sqlite3_finalize(q);
            return db_error(h, db->path, "the inbox");
        }
    }
    sqlite3_finalize(q);
    return CTL_EXIT_OK;
}

static const char *column_text(sqlite3_stmt *q, int col)
{
    const unsigned char *s = sqlite3_column_text(q, col);
    return s ? (const char *)s : "";
}

/* Parked messages: choreo_dead has no index on event_id, so it is read once. */
static int read_dead(ctl_timeline *t, sqlite3 *h, const ctl_db *db)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h, "SELECT id, consumer, event_id, reason, attempts, parked_at, status"
                              " FROM choreo_dead WHERE event_id IS NOT NULL ORDER BY id", -1, &q,
                           NULL) != SQLITE_OK)
        return db_error(h, db->path, "the parked messages");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t at = sqlite3_column_int64(q, 5);
        long i = event_for(t, column_text(q, 2), at);
        if (i < 0)
            continue;
        ctl_tl_event *e = &t->ev[i];
        ctl_park *grown = realloc(e->parked, (e->nparked + 1) * sizeof *grown);
        if (!grown) {
            sqlite3_finalize(q);
            ctl_error("saga: out of memory");
            return CTL_EXIT_FAIL;
        }
        e->parked = grown;
        ctl_park *p = &e->parked[e->nparked++];
        memset(p, 0, sizeof *p);
        p->id = sqlite3_column_int64(q, 0);
        snprintf(p->consumer, sizeof p->consumer, "%s", column_text(q, 1));
        p->db = db;
        snprintf(p->reason, sizeof p->reason, "%s", column_text(q, 3));
        p->attempts = sqlite3_column_int64(q, 4);
        p->at_ms = at;
        snprintf(p->status, sizeof p->status, "%s", column_text(q, 6));
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? CTL_EXIT_OK : db_error(h, db->path, "the parked messages");
}

static int read_barrier(ctl_timeline *t, sqlite3 *h, const ctl_db *db)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h, "SELECT step, op, created_at FROM choreo_barrier WHERE saga = ?1 "
                              "ORDER BY created_at, op", -1, &q, NULL) != SQLITE_OK)
        return db_error(h, db->path, "the barrier");
    sqlite3_bind_text(q, 1, t->saga, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        ctl_mark *grown = realloc(t->marks, (t->nmarks + 1) * sizeof *grown);
        if (!grown) {
            sqlite3_finalize(q);
            ctl_error("saga: out of memory");
            return CTL_EXIT_FAIL;
        }
        t->marks = grown;
        ctl_mark *m = &t->marks[t->nmarks++];
        memset(m, 0, sizeof *m);
        m->db = db;
        snprintf(m->step, sizeof m->step, "%s", column_text(q, 0));
        snprintf(m->op, sizeof m->op, "%s", column_text(q, 1));
        m->at_ms = sqlite3_column_int64(q, 2);
        m->event = m->apply = -1;
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? CTL_EXIT_OK : db_error(h, db->path, "the barrier");
}

/* Whether the database holds an orchestrated instance of the saga. A
 * database a choreo older than orchestration last opened has no table
 * choreo_saga_instances; that is not an error, and such a database must not
 * reach choreo_admin_open, which would migrate it. */
static int probe_instance(ctl_timeline *t, sqlite3 *h, ctl_db *db)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                              "'choreo_saga_instances'", -1, &q, NULL) != SQLITE_OK)
        return db_error(h, db->path, "the orchestrated sagas");
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE)
        return CTL_EXIT_OK;
    if (rc != SQLITE_ROW ||
        sqlite3_prepare_v2(h, "SELECT 1 FROM choreo_saga_instances WHERE saga = ?1", -1, &q,
                           NULL) != SQLITE_OK)
        return db_error(h, db->path, "the orchestrated sagas");
    sqlite3_bind_text(q, 1, t->saga, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_finalize(q);
    db->orchestrates = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CTL_EXIT_OK
                                                 : db_error(h, db->path, "the orchestrated sagas");
}

int ctl_timeline_read_db(ctl_timeline *t, const char *path)
{
    if (t->ndbs >= sizeof t->dbs / sizeof t->dbs[0]) {
        ctl_error("saga: more than %zu databases", sizeof t->dbs / sizeof t->dbs[0]);
        return CTL_EXIT_USAGE;
    }
    sqlite3 *h = NULL;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        ctl_error("saga: cannot open database %s: %s", path,
                  h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return CTL_EXIT_FAIL;
    }
    sqlite3_busy_timeout(h, 5000);
    if (!build_index(t)) {
        sqlite3_close(h);
        ctl_error("saga: out of memory");
        return CTL_EXIT_FAIL;
    }
    ctl_db *db = &t->dbs[t->ndbs++];
    db->path = path;
    service_of(h, path, db->service, sizeof db->service);
    int rc = read_inbox(t, h, db);
    if (rc == CTL_EXIT_OK)
        rc = read_dead(t, h, db);
    if (rc == CTL_EXIT_OK)
        rc = read_barrier(t, h, db);
    if (rc == CTL_EXIT_OK)
        rc = probe_instance(t, h, db);
    sqlite3_close(h);
    return rc;
}

int ctl_timeline_read_orchestration(ctl_timeline *t, choreo_config *cfg)
{
    const ctl_db *db = NULL;
    for (size_t d = 0; d < t->ndbs && !db; d++)
        if (t->dbs[d].orchestrates)
            db = &t->dbs[d];
    if (!db)
        return CTL_EXIT_OK;
    choreo_admin *adm = NULL;
    choreo_status st = choreo_config_set(cfg, "db", db->path);
    if (st == CHOREO_OK)
        st = choreo_admin_open(&adm, cfg);
    if (st == CHOREO_OK)
        st = choreo_admin_saga(adm, t->saga, &t->orch.entry, &t->orch.trans, &t->orch.ntrans);
    choreo_admin_close(adm);
    if (st == CHOREO_ENOTFOUND)
        return CTL_EXIT_OK; /* gone since the probe */
    if (st != CHOREO_OK) {
        ctl_error("saga: cannot read the orchestrated instance from %s: %s", db->path,
                  choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    t->orch.db = db;
    return CTL_EXIT_OK;
}

/* ---- ordering and attribution ------------------------------------------- */

static int by_time(const void *a, const void *b)
{
    const ctl_tl_event *x = a, *y = b;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int apply_by_time(const void *a, const void *b)
{
    const ctl_apply *x = a, *y = b;
    if (x->at_ms != y->at_ms)
        return x->at_ms < y->at_ms ? -1 : 1;
    return strcmp(x->consumer, y->consumer);
}

static void attribute(ctl_timeline *t, ctl_mark *m)
{
    long best_e = -1, best_a = -1;
    bool tie = false;
    for (size_t i = 0; i < t->n; i++) {
        for (size_t a = 0; a < t->ev[i].napplied; a++) {
            const ctl_apply *ap = &t->ev[i].applied[a];
            if (ap->db != m->db || ap->at_ms > m->at_ms || m->at_ms - ap->at_ms > MARK_WINDOW_MS)
                continue;
            int64_t best_at = best_e >= 0 ? t->ev[best_e].applied[best_a].at_ms : INT64_MIN;
            if (ap->at_ms == best_at) {
                tie = true;
            } else if (ap->at_ms > best_at) {
                best_e = (long)i;
                best_a = (long)a;
                tie = false;
            }
        }
    }
    if (!tie) {
        m->event = best_e;
        m->apply = best_a;
    }
}

static int mark_by_time(const void *a, const void *b)
{
    const ctl_mark *x = a, *y = b;
    if (x->at_ms != y->at_ms)
        return x->at_ms < y->at_ms ? -1 : 1;
    int c = strcmp(x->db->service, y->db->service);
    if (c == 0)
        c = strcmp(x->step, y->step);
    return c != 0 ? c : strcmp(x->op, y->op);
}

void ctl_timeline_finish(ctl_timeline *t)
{
    free(t->by_id); /* the sort below moves the events it points to */
    t->by_id = NULL;
    if (t->n > 0)
        qsort(t->ev, t->n, sizeof *t->ev, by_time);
    t->t0 = t->n > 0 ? t->ev[0].ts_ms : 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->ev[i].napplied > 1)
            qsort(t->ev[i].applied, t->ev[i].napplied, sizeof *t->ev[i].applied, apply_by_time);
    if (t->nmarks > 1)
        qsort(t->marks, t->nmarks, sizeof *t->marks, mark_by_time);
    for (size_t k = 0; k < t->nmarks; k++)
        attribute(t, &t->marks[k]);
}

const ctl_mark *ctl_timeline_next_mark(const ctl_timeline *t, size_t i, size_t a, size_t *cursor)
{
    for (; *cursor < t->nmarks; (*cursor)++) {
        const ctl_mark *m = &t->marks[*cursor];
        if (m->event == (long)i && m->apply == (long)a) {
            (*cursor)++;
            return m;
        }
    }
    return NULL;
}

ctl_kind ctl_timeline_kind(const ctl_timeline *t, size_t i)
{
    const ctl_tl_event *e = &t->ev[i];
    if (e->nparked > 0 || !e->decoded)
        return CTL_KIND_FAILURE;
    for (size_t k = 0; k < t->nmarks; k++)
        if (t->marks[k].event == (long)i && strcmp(t->marks[k].op, "compensation") == 0)
            return CTL_KIND_COMPENSATION;
    if (strstr(e->type, "Cancelled") || strstr(e->type, "Canceled") ||
        strstr(e->type, "Compensat"))
        return CTL_KIND_COMPENSATION;
    if (strstr(e->type, "Rejected") || strstr(e->type, "Failed"))
        return CTL_KIND_FAILURE;
    return CTL_KIND_NORMAL;
}

const char *ctl_kind_name(ctl_kind k)
{
    switch (k) {
    case CTL_KIND_FAILURE:
        return "failure";
    case CTL_KIND_COMPENSATION:
        return "compensation";
    case CTL_KIND_NORMAL:
        break;
    }
    return "normal";
}

void ctl_timeline_free(ctl_timeline *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->ev[i].data);
        free(t->ev[i].applied);
        free(t->ev[i].parked);
    }
    free(t->ev);
    free(t->marks);
    free(t->by_id);
    free(t->orch.trans);
    t->orch.trans = NULL;
    t->orch.db = NULL;
    t->by_id = NULL;
    t->ev = NULL;
    t->marks = NULL;
    t->n = t->nmarks = 0;
}
