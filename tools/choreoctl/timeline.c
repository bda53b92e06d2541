/* Reads a saga's timeline. The stream gives the events (every event of a
 * saga has a subject <prefix>.<Type>.<saga>); each service's database adds
 * its inbox marks (consumer <service>_<Type>, looked up by primary key), its
 * parked messages and its barrier rows, and the database of the service
 * that orchestrates the saga its instance and transitions. Nothing here
 * writes anywhere: the consumer is ephemeral, and the databases (SQLite
 * files or PostgreSQL URLs) are read through the admin API's read-only
 * handles, which neither create nor migrate anything. */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (st != NATS_OK && jerr == JSConsumerFilterNotSubsetErr) {
        ctl_error("saga: no events of saga %s in stream %s: the stream takes no subjects %s; "
                  "check --prefix (and --stream) against the services' settings",
                  t->saga, t->stream, t->filter);
        return CTL_EXIT_FAIL;
    }
    if (st != NATS_OK) {
        ctl_error("saga: cannot read %s from stream %s on NATS at %s: %s", t->filter, t->stream,
                  n->urls, ctl_nats_why(n, st));
        return CTL_EXIT_FAIL;
    }
    jsConsumerInfo *ci = NULL;
    st = natsSubscription_GetConsumerInfo(&ci, sub, NULL, &jerr);
    int rc = CTL_EXIT_OK;
    if (st != NATS_OK) {
        ctl_error("saga: cannot count the events of %s in stream %s on NATS at %s: %s",
                  t->filter, t->stream, n->urls, ctl_nats_why(n, st));
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

/* The service that last started on the database, or its name's stem. */
static int service_of(choreo_admin *adm, ctl_db *db)
{
    if (choreo_admin_service(adm, db->service, sizeof db->service) != CHOREO_OK) {
        ctl_error("saga: cannot read the registered handlers from %s: %s", db->shown,
                  choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    if (!db->service[0])
        stem_of(db->shown, db->service, sizeof db->service);
    return CTL_EXIT_OK;
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

static int db_error(const ctl_db *db, const char *what)
{
    ctl_error("saga: cannot read %s from %s: %s", what, db->shown, choreo_last_error());
    return CTL_EXIT_FAIL;
}

/* The events whose inbox marks are looked up: each decoded event once,
 * a repeated id (a retry) for its first message. */
static size_t inbox_lookups(const ctl_timeline *t, size_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->ev[i].decoded && event_for(t, t->ev[i].id, INT64_MIN) == (long)i)
            idx[n++] = i;
    return n;
}

/* Inbox marks: one primary-key lookup per event, for the consumer
 * <service>_<Type> that would have applied it. */
static int read_inbox(ctl_timeline *t, choreo_admin *adm, const ctl_db *db)
{
    size_t cap = t->n ? t->n : 1;
    size_t *idx = malloc(cap * sizeof *idx);
    char (*consumer)[160] = malloc(cap * sizeof *consumer);
    const char **cons = malloc(cap * sizeof *cons);
    const char **ids = malloc(cap * sizeof *ids);
    int64_t *at = malloc(cap * sizeof *at);
    int rc = CTL_EXIT_OK;
    if (!idx || !consumer || !cons || !ids || !at) {
        ctl_error("saga: out of memory");
        rc = CTL_EXIT_FAIL;
    }
    size_t n = rc == CTL_EXIT_OK ? inbox_lookups(t, idx) : 0;
    for (size_t k = 0; k < n; k++) {
        const ctl_tl_event *e = &t->ev[idx[k]];
        snprintf(consumer[k], sizeof consumer[k], "%s_%s", db->service, e->type);
        cons[k] = consumer[k];
        ids[k] = e->id;
    }
    if (rc == CTL_EXIT_OK && choreo_admin_inbox_marks(adm, n, cons, ids, at) != CHOREO_OK)
        rc = db_error(db, "the inbox");
    for (size_t k = 0; rc == CTL_EXIT_OK && k < n; k++) {
        if (at[k] == 0)
            continue;
        const char *id = t->ev[idx[k]].id;
        ctl_apply a;
        memset(&a, 0, sizeof a);
        snprintf(a.consumer, sizeof a.consumer, "%s", consumer[k]);
        a.db = db;
        a.at_ms = at[k];
        if (!push_apply(&t->ev[event_for(t, id, a.at_ms)], &a)) {
            ctl_error("saga: out of memory");
            rc = CTL_EXIT_FAIL;
        }
    }
    free(idx);
    free(consumer);
    free(cons);
    free(ids);
    free(at);
    return rc;
}

static bool push_park(ctl_tl_event *e, const choreo_dead_entry *d, const ctl_db *db)
{
    ctl_park *grown = realloc(e->parked, (e->nparked + 1) * sizeof *grown);
    if (!grown)
        return false;
    e->parked = grown;
    ctl_park *p = &e->parked[e->nparked++];
    memset(p, 0, sizeof *p);
    p->id = d->id;
    snprintf(p->consumer, sizeof p->consumer, "%s", d->consumer);
    p->db = db;
    snprintf(p->reason, sizeof p->reason, "%s", d->reason);
    p->attempts = d->attempts;
    p->at_ms = d->parked_at_ms;
    snprintf(p->status, sizeof p->status, "%s", d->status);
    return true;
}

/* Parked messages: choreo_dead has no index on event_id, so it is read once. */
static int read_dead(ctl_timeline *t, choreo_admin *adm, const ctl_db *db)
{
    choreo_dead_entry *list = NULL;
    size_t n = 0;
    if (choreo_admin_dead_list(adm, NULL, &list, &n) != CHOREO_OK)
        return db_error(db, "the parked messages");
    int rc = CTL_EXIT_OK;
    for (size_t k = 0; k < n && rc == CTL_EXIT_OK; k++) {
        if (!list[k].event_id[0])
            continue; /* not a choreo envelope: it names no event */
        long i = event_for(t, list[k].event_id, list[k].parked_at_ms);
        if (i >= 0 && !push_park(&t->ev[i], &list[k], db)) {
            ctl_error("saga: out of memory");
            rc = CTL_EXIT_FAIL;
        }
    }
    free(list);
    return rc;
}

static int read_barrier(ctl_timeline *t, choreo_admin *adm, const ctl_db *db)
{
    choreo_barrier_mark *list = NULL;
    size_t n = 0;
    if (choreo_admin_barrier(adm, t->saga, &list, &n) != CHOREO_OK)
        return db_error(db, "the barrier");
    ctl_mark *grown = n ? realloc(t->marks, (t->nmarks + n) * sizeof *grown) : t->marks;
    if (n && !grown) {
        free(list);
        ctl_error("saga: out of memory");
        return CTL_EXIT_FAIL;
    }
    t->marks = grown;
    for (size_t k = 0; k < n; k++) {
        ctl_mark *m = &t->marks[t->nmarks++];
        memset(m, 0, sizeof *m);
        m->db = db;
        snprintf(m->step, sizeof m->step, "%s", list[k].step);
        snprintf(m->op, sizeof m->op, "%s", list[k].op);
        m->at_ms = list[k].at_ms;
        m->event = m->apply = -1;
    }
    free(list);
    return CTL_EXIT_OK;
}

/* The orchestrated instance of the saga, when the database holds one: the
 * first database that does gives t->orch. A database from before
 * orchestration has none. */
static int read_instance(ctl_timeline *t, choreo_admin *adm, ctl_db *db)
{
    choreo_saga_entry entry;
    choreo_saga_transition *trans = NULL;
    size_t n = 0;
    choreo_status st = choreo_admin_saga(adm, t->saga, &entry, &trans, &n);
    if (st == CHOREO_ENOTFOUND)
        return CTL_EXIT_OK;
    if (st != CHOREO_OK) {
        ctl_error("saga: cannot read the orchestrated instance from %s: %s", db->shown,
                  choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    db->orchestrates = true;
    if (t->orch.db) {
        free(trans);
        return CTL_EXIT_OK;
    }
    t->orch.db = db;
    t->orch.entry = entry;
    t->orch.trans = trans;
    t->orch.ntrans = n;
    return CTL_EXIT_OK;
}

int ctl_timeline_read_db(ctl_timeline *t, const ctl_settings *s, const char *path)
{
    if (t->ndbs >= sizeof t->dbs / sizeof t->dbs[0]) {
        ctl_error("saga: more than %zu databases", sizeof t->dbs / sizeof t->dbs[0]);
        return CTL_EXIT_USAGE;
    }
    if (!build_index(t)) {
        ctl_error("saga: out of memory");
        return CTL_EXIT_FAIL;
    }
    ctl_db *db = &t->dbs[t->ndbs];
    memset(db, 0, sizeof *db);
    db->path = path;
    if ((db->shown = ctl_db_shown(path)) == NULL) {
        ctl_error("saga: out of memory");
        return CTL_EXIT_FAIL;
    }
    t->ndbs++;
    choreo_admin *adm = NULL;
    choreo_status st = ctl_open_readonly(s, path, &adm);
    if (st != CHOREO_OK) {
        ctl_error("saga: %s", choreo_last_error());
        return ctl_exit_of(st);
    }
    int rc = service_of(adm, db);
    if (rc == CTL_EXIT_OK)
        rc = read_inbox(t, adm, db);
    if (rc == CTL_EXIT_OK)
        rc = read_dead(t, adm, db);
    if (rc == CTL_EXIT_OK)
        rc = read_barrier(t, adm, db);
    if (rc == CTL_EXIT_OK)
        rc = read_instance(t, adm, db);
    choreo_admin_close(adm);
    return rc;
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
    for (size_t d = 0; d < t->ndbs; d++)
        free(t->dbs[d].shown);
    t->ndbs = 0;
    free(t->orch.trans);
    t->orch.trans = NULL;
    t->orch.db = NULL;
    t->by_id = NULL;
    t->ev = NULL;
    t->marks = NULL;
    t->n = t->nmarks = 0;
}
