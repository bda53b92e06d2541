/* The metrics endpoint and its sampler. Names follow Prometheus practice:
 * base units (seconds), _total for counters, and labels that stay few
 * (consumer, type, outcome; never a saga or event id). */
#include "exporter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "dead.h"
#include "holds.h"
#include "orchestrator.h"
#include "outbox.h"
#include "status.h"
#include "tuning.h"

/* The build passes the project's version; a build that does not says so. */
#ifndef CHOREO_VERSION
#define CHOREO_VERSION "unknown"
#endif

/* ---- rendering --------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    for (int round = 0; round < 2 && !o->oom; round++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->oom = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value with \, " and newlines escaped as the text format wants;
 * choreo's names never hold them, but a value is never trusted to. */
static const char *esc(const char *v, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *v && n + 3 < cap; v++) {
        if (*v == '\\' || *v == '"' || *v == '\n') {
            buf[n++] = '\\';
            buf[n++] = *v == '\n' ? 'n' : *v;
        } else {
            buf[n++] = *v;
        }
    }
    buf[n] = '\0';
    return buf;
}

/* Writes name{labels...} with the labels given as key/value pairs, NULL
 * ending the list; the service label comes first. */
static void series(struct out *o, const choreo_service *svc, const char *name, ...)
{
    char e[300];
    put(o, "%s{service=\"%s\"", name, esc(svc->cfg->service, e, sizeof e));
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *));)
        put(o, ",%s=\"%s\"", k, esc(va_arg(ap, const char *), e, sizeof e));
    va_end(ap);
    put(o, "} ");
}

static uint64_t ld(atomic_uint_fast64_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

/* One histogram's series, with up to two labels besides le (k1 and k2
 * NULL when absent). */
static void hist(struct out *o, const choreo_service *svc, const char *name,
                 choreo_hist_kind kind, choreo_hist *h, const char *k1, const char *v1,
                 const char *k2, const char *v2)
{
    const int64_t *bounds = choreo__hist_bounds(kind);
    double scale = kind == HIST_SECONDS ? 1e6 : 1;
    char bname[128], le[32];
    uint64_t total = 0;
    snprintf(bname, sizeof bname, "%s_bucket", name);
    for (int i = 0; i <= CHOREO_HIST_BOUNDS; i++) {
        total += ld(&h->bucket[i]);
        if (i < CHOREO_HIST_BOUNDS)
            snprintf(le, sizeof le, "%g", (double)bounds[i] / scale);
        else
            snprintf(le, sizeof le, "+Inf");
        if (k2)
            series(o, svc, bname, k1, v1, k2, v2, "le", le, NULL);
        else if (k1)
            series(o, svc, bname, k1, v1, "le", le, NULL);
        else
            series(o, svc, bname, "le", le, NULL);
        put(o, "%llu\n", (unsigned long long)total);
    }
    snprintf(bname, sizeof bname, "%s_sum", name);
    series(o, svc, bname, k1, v1, k2, v2, NULL);
    put(o, "%.6f\n", (double)ld(&h->sum) / scale);
    snprintf(bname, sizeof bname, "%s_count", name);
    series(o, svc, bname, k1, v1, k2, v2, NULL);
    put(o, "%llu\n", (unsigned long long)total);
}

static const char *const outcome_names[OUT_N] = { "done", "retry", "reject", "duplicate",
                                                  "parked" };
static const char *const request_outcomes[REQ_N] = { "done", "reject", "retry" };
static const char *const saga_outcomes[CHOREO_SAGA_TIMED_OUT + 1] = { "completed", "cancelled",
                                                                       "failed", "timed_out" };

static void render_handlers(struct out *o, choreo_service *svc)
{
    family(o, "choreo_events_handled_total", "counter",
           "Deliveries taken by an event handler's consumer, by outcome: done, retry, reject "
           "(parked), duplicate (dropped by the inbox), parked (without a handler result).");
    for (int i = 0; i < svc->nroutes; i++) {
        choreo_route *rt = &svc->routes[i];
        for (int k = 0; k < OUT_N; k++) {
            series(o, svc, "choreo_events_handled_total", "consumer", rt->consumer, "type",
                   rt->type, "outcome", outcome_names[k], NULL);
            put(o, "%llu\n", (unsigned long long)ld(&rt->m.outcome[k]));
        }
    }
    family(o, "choreo_handler_duration_seconds", "histogram",
           "Time spent in an event handler.");
    for (int i = 0; i < svc->nroutes; i++)
        hist(o, svc, "choreo_handler_duration_seconds", HIST_SECONDS, &svc->routes[i].m.handler,
             "consumer", svc->routes[i].consumer, "type", svc->routes[i].type);
    family(o, "choreo_delivery_latency_seconds", "histogram",
           "Time from an event's storing in the stream (the NATS server's clock) to its "
           "consumer taking it up, first deliveries only.");
    for (int i = 0; i < svc->nroutes; i++)
        hist(o, svc, "choreo_delivery_latency_seconds", HIST_SECONDS, &svc->routes[i].m.delivery,
             "consumer", svc->routes[i].consumer, "type", svc->routes[i].type);
    family(o, "choreo_parked_total", "counter",
           "Messages parked in the dead-letter table since the process started.");
    for (int i = 0; i < svc->nroutes; i++) {
        choreo_route *rt = &svc->routes[i];
        series(o, svc, "choreo_parked_total", "consumer", rt->consumer, "type", rt->type, NULL);
        put(o, "%llu\n", (unsigned long long)(ld(&rt->m.outcome[OUT_REJECT]) +
                                              ld(&rt->m.outcome[OUT_PARKED])));
    }
    int ntypes = atomic_load_explicit(&svc->metrics.ntypes, memory_order_acquire);
    for (int i = 0; i < ntypes; i++) {
        struct choreo_type_slot *t = &svc->metrics.types[i];
        if (ld(&t->set_aside) == 0)
            continue;
        series(o, svc, "choreo_parked_total", "consumer", CHOREO_OUTBOX_CONSUMER, "type", t->name,
               NULL);
        put(o, "%llu\n", (unsigned long long)ld(&t->set_aside));
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } comp[] = {
        { "choreo_late_actions_skipped_total",
          "Actions skipped by the barrier because their compensation came first.",
          offsetof(choreo_route_metrics, late_skipped) },
        { "choreo_compensations_parked_total",
          "Messages of a compensation handler that were parked: a compensation that cannot "
          "run needs a person.",
          offsetof(choreo_route_metrics, comp_parked) },
    };
    family(o, "choreo_compensations_total", "counter",
           "Compensations through the barrier: result run (it ran) or null (no action to "
           "undo).");
    for (int i = 0; i < svc->nroutes; i++) {
        choreo_route *rt = &svc->routes[i];
        if (!atomic_load(&rt->m.compensation))
            continue;
        series(o, svc, "choreo_compensations_total", "consumer", rt->consumer, "type", rt->type,
               "result", "run", NULL);
        put(o, "%llu\n", (unsigned long long)ld(&rt->m.comp_run));
        series(o, svc, "choreo_compensations_total", "consumer", rt->consumer, "type", rt->type,
               "result", "null", NULL);
        put(o, "%llu\n", (unsigned long long)ld(&rt->m.comp_null));
    }
    for (size_t c = 0; c < sizeof comp / sizeof comp[0]; c++) {
        family(o, comp[c].name, "counter", comp[c].help);
        for (int i = 0; i < svc->nroutes; i++) {
            choreo_route *rt = &svc->routes[i];
            atomic_uint_fast64_t *v =
                (atomic_uint_fast64_t *)((char *)&rt->m + comp[c].off);
            if (!atomic_load(&rt->m.compensation) && ld(v) == 0)
                continue;
            series(o, svc, comp[c].name, "consumer", rt->consumer, "type", rt->type, NULL);
            put(o, "%llu\n", (unsigned long long)ld(v));
        }
    }
}

static void render_lag(struct out *o, choreo_service *svc)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } lag[] = {
        { "choreo_consumer_pending_messages",
          "Events in the stream not yet delivered to the consumer (JetStream NumPending).",
          offsetof(choreo_route_metrics, pending) },
        { "choreo_consumer_ack_pending_messages",
          "Events delivered to the consumer and not yet acknowledged (NumAckPending).",
          offsetof(choreo_route_metrics, ack_pending) },
        { "choreo_consumer_redelivered_messages",
          "Events delivered to the consumer more than once and not yet acknowledged "
          "(NumRedelivered).",
          offsetof(choreo_route_metrics, redelivered) },
    };
    for (size_t c = 0; c < sizeof lag / sizeof lag[0]; c++) {
        family(o, lag[c].name, "gauge", lag[c].help);
        for (int i = 0; i < svc->nroutes; i++) {
            choreo_route *rt = &svc->routes[i];
            if (!atomic_load(&rt->m.lag_known))
                continue;
            series(o, svc, lag[c].name, "consumer", rt->consumer, NULL);
            put(o, "%llu\n", (unsigned long long)ld((atomic_uint_fast64_t *)((char *)&rt->m +
                                                                           lag[c].off)));
        }
    }
}

static void render_outbox(struct out *o, choreo_service *svc)
{
    choreo_metrics *m = &svc->metrics;
    int ntypes = atomic_load_explicit(&m->ntypes, memory_order_acquire);
    family(o, "choreo_events_emitted_total", "counter",
           "Events written to the outbox, counted when their transaction commits.");
    for (int i = 0; i < ntypes; i++) {
        if (ld(&m->types[i].emitted) == 0)
            continue;
        series(o, svc, "choreo_events_emitted_total", "type", m->types[i].name, NULL);
        put(o, "%llu\n", (unsigned long long)ld(&m->types[i].emitted));
    }
    family(o, "choreo_events_published_total", "counter",
           "Outbox rows confirmed by a JetStream PubAck.");
    for (int i = 0; i < ntypes; i++) {
        if (ld(&m->types[i].published) == 0)
            continue;
        series(o, svc, "choreo_events_published_total", "type", m->types[i].name, NULL);
        put(o, "%llu\n", (unsigned long long)ld(&m->types[i].published));
    }
    family(o, "choreo_publish_failures_total", "counter",
           "PubAck errors and timeouts; the rows are published again with the same ids.");
    series(o, svc, "choreo_publish_failures_total", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&svc->stats.publish_errors));
    family(o, "choreo_relay_latency_seconds", "histogram",
           "Time from an outbox row's insert (a delayed row: its due time) to its PubAck.");
    hist(o, svc, "choreo_relay_latency_seconds", HIST_SECONDS, &m->relay, NULL, NULL, NULL, NULL);
    family(o, "choreo_relay_active", "gauge",
           "1 when this instance's relay publishes the outbox: on SQLite once the service has "
           "reached NATS; on PostgreSQL the one instance holding the relay lock, 0 on those "
           "standing by.");
    series(o, svc, "choreo_relay_active", NULL);
    put(o, "%d\n", atomic_load(&svc->stats.relay_active) ? 1 : 0);
    if (atomic_load(&m->outbox_known)) {
        int64_t oldest = atomic_load(&m->outbox_oldest_us);
        int64_t age_us = oldest ? choreo__now_us() - oldest : 0;
        family(o, "choreo_outbox_pending", "gauge",
               "Unpublished outbox rows that are due now: the relay's backlog.");
        series(o, svc, "choreo_outbox_pending", NULL);
        put(o, "%lld\n", (long long)atomic_load(&m->outbox_due));
        family(o, "choreo_outbox_delayed", "gauge",
               "Unpublished outbox rows due later (delayed events).");
        series(o, svc, "choreo_outbox_delayed", NULL);
        put(o, "%lld\n", (long long)atomic_load(&m->outbox_delayed));
        family(o, "choreo_outbox_oldest_pending_age_seconds", "gauge",
               "How long the longest-waiting due outbox row has been due (since its insert, or "
               "its publish time when delayed); 0 when there is none.");
        series(o, svc, "choreo_outbox_oldest_pending_age_seconds", NULL);
        put(o, "%.3f\n", age_us > 0 ? (double)age_us / 1e6 : 0.0);
    }
    family(o, "choreo_parked_messages", "gauge",
           "Messages parked in the dead-letter table now (status parked), waiting for a "
           "person: choreoctl dead list.");
    pthread_mutex_lock(&m->parked_lock);
    for (int i = 0; i < m->nparked; i++) {
        series(o, svc, "choreo_parked_messages", "consumer", m->parked[i].consumer, "type",
               m->parked[i].type, NULL);
        put(o, "%lld\n", (long long)m->parked[i].count);
    }
    pthread_mutex_unlock(&m->parked_lock);
}

static void render_sagas(struct out *o, choreo_service *svc)
{
    choreo_metrics *m = &svc->metrics;
    family(o, "choreo_sagas_total", "counter",
           "Sagas ended, as recorded by the service that decides them: outcome completed, "
           "cancelled, failed or timed_out, with a reason code.");
    int n = atomic_load_explicit(&m->nsagas, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        series(o, svc, "choreo_sagas_total", "outcome", saga_outcomes[m->sagas[i].outcome],
               "reason", m->sagas[i].reason, NULL);
        put(o, "%llu\n", (unsigned long long)ld(&m->sagas[i].count));
    }
    family(o, "choreo_saga_duration_seconds", "histogram",
           "Time from a saga's start (the time in its id) to its end, by outcome.");
    for (int k = 0; k <= CHOREO_SAGA_TIMED_OUT; k++) {
        bool any = false;
        for (int i = 0; i < n && !any; i++)
            any = m->sagas[i].outcome == k;
        if (any)
            hist(o, svc, "choreo_saga_duration_seconds", HIST_SECONDS, &m->saga_duration[k],
                 "outcome", saga_outcomes[k], NULL, NULL);
    }
}

static void render_holds(struct out *o, choreo_service *svc)
{
    choreo_metrics *m = &svc->metrics;
    family(o, "choreo_holds_waiting", "gauge",
           "Steps held for a person's decision that can still be decided (not decided, their "
           "expiry not passed), by kind: choreoctl review list.");
    pthread_mutex_lock(&m->parked_lock);
    for (int i = 0; i < m->nheld; i++) {
        series(o, svc, "choreo_holds_waiting", "kind", m->held[i].type, NULL);
        put(o, "%lld\n", (long long)m->held[i].count);
    }
    family(o, "choreo_saga_instances", "gauge",
           "Orchestrated saga instances that have not ended, by definition and phase "
           "(RUNNING, CONFIRMING, COMPENSATING): choreoctl sagas --state PHASE.");
    for (int i = 0; i < m->nrunning; i++) {
        series(o, svc, "choreo_saga_instances", "definition", m->running[i].consumer, "phase",
               m->running[i].type, NULL);
        put(o, "%lld\n", (long long)m->running[i].count);
    }
    pthread_mutex_unlock(&m->parked_lock);
    family(o, "choreo_hold_decisions_total", "counter",
           "Decisions on held steps that the service carried out, by kind and decision.");
    for (int i = 0; i < svc->ndecisions; i++) {
        series(o, svc, "choreo_hold_decisions_total", "kind", svc->decisions[i].kind, "decision",
               "approved", NULL);
        put(o, "%llu\n", (unsigned long long)ld(&svc->decisions[i].approved));
        series(o, svc, "choreo_hold_decisions_total", "kind", svc->decisions[i].kind, "decision",
               "rejected", NULL);
        put(o, "%llu\n", (unsigned long long)ld(&svc->decisions[i].rejected));
    }
}

static void render_rest(struct out *o, choreo_service *svc)
{
    choreo_metrics *m = &svc->metrics;
    family(o, "choreo_commit_duration_seconds", "histogram",
           "Time of one group commit of the dispatcher (COMMIT of a batch).");
    hist(o, svc, "choreo_commit_duration_seconds", HIST_SECONDS, &m->commit, NULL, NULL, NULL,
         NULL);
    family(o, "choreo_batch_messages", "histogram", "Messages applied in one group commit.");
    hist(o, svc, "choreo_batch_messages", HIST_COUNT, &m->batch, NULL, NULL, NULL, NULL);
    family(o, "choreo_requests_total", "counter",
           "Request handlers run, by outcome: done, reject (answered, work undone), retry "
           "(no answer).");
    for (int i = 0; i < svc->nrequests; i++) {
        for (int k = 0; k < REQ_N; k++) {
            series(o, svc, "choreo_requests_total", "request", svc->requests[i].name, "outcome",
                   request_outcomes[k], NULL);
            put(o, "%llu\n", (unsigned long long)ld(&svc->requests[i].m.outcome[k]));
        }
    }
    family(o, "choreo_request_duration_seconds", "histogram",
           "Time spent in a request handler.");
    for (int i = 0; i < svc->nrequests; i++)
        hist(o, svc, "choreo_request_duration_seconds", HIST_SECONDS,
             &svc->requests[i].m.duration, "request", svc->requests[i].name, NULL, NULL);
    family(o, "choreo_dispatcher_busy_seconds", "gauge",
           "How long the dispatcher has been on the work it took up last (handlers, commit, "
           "acks); 0 while it waits for work. Growing: a handler that does not return, or a "
           "database that stays locked.");
    series(o, svc, "choreo_dispatcher_busy_seconds", NULL);
    int64_t since = atomic_load_explicit(&m->busy_since_us, memory_order_relaxed);
    int64_t busy_us = since ? choreo__mono_us() - since : 0;
    put(o, "%.3f\n", busy_us > 0 ? (double)busy_us / 1e6 : 0.0);
    family(o, "choreo_nats_connected", "gauge", "1 while the service is connected to NATS.");
    series(o, svc, "choreo_nats_connected", NULL);
    put(o, "%d\n", atomic_load(&m->nats_up) && atomic_load(&m->nats_down) == 0 ? 1 : 0);
    family(o, "choreo_nats_reconnects_total", "counter",
           "Reconnections to NATS after a lost connection.");
    series(o, svc, "choreo_nats_reconnects_total", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->reconnects));
    family(o, "choreo_jetstream_remade_total", "counter",
           "JetStream objects of the service found gone from the server while it ran "
           "(deleted, or lost with a server's store) and made again: the stream, or a "
           "durable consumer. What a lost stream held and no consumer had taken is gone.");
    series(o, svc, "choreo_jetstream_remade_total", "object", "stream", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->remade[0]));
    series(o, svc, "choreo_jetstream_remade_total", "object", "consumer", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->remade[1]));
    family(o, "choreo_relay_rows_total", "counter",
           "Outbox rows the relay published: from the copies handed over at commit, read "
           "from the table, or sent by the committing thread itself while the relay awaited "
           "PubAcks or stood idle (committer).");
    series(o, svc, "choreo_relay_rows_total", "source", "commit", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->relay_rows[0]));
    series(o, svc, "choreo_relay_rows_total", "source", "table", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->relay_rows[1]));
    series(o, svc, "choreo_relay_rows_total", "source", "committer", NULL);
    put(o, "%llu\n", (unsigned long long)ld(&m->relay_rows[2]));
    family(o, "choreo_service_info", "gauge", "The service and the choreo version it runs.");
    series(o, svc, "choreo_service_info", "version", CHOREO_VERSION, NULL);
    put(o, "1\n");
}

char *choreo__metrics_render(choreo_service *svc, size_t *len)
{
    struct out o = { 0 };
    render_handlers(&o, svc);
    render_lag(&o, svc);
    render_outbox(&o, svc);
    render_sagas(&o, svc);
    render_holds(&o, svc);
    render_rest(&o, svc);
    if (o.oom || !o.buf) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}

void choreo__metrics_commit(choreo_service *svc, choreo_mlog *log)
{
    choreo_metrics *m = &svc->metrics;
    for (int i = 0; i < log->n; i++) {
        struct choreo_mlog_entry *e = &log->e[i];
        switch (e->kind) {
        case ML_EMIT:
            atomic_fetch_add_explicit(&m->types[e->slot].emitted, 1, memory_order_relaxed);
            break;
        case ML_HANDLED:
            atomic_fetch_add_explicit(&svc->routes[e->route].m.outcome[e->slot], 1,
                                      memory_order_relaxed);
            break;
        case ML_REQUEST:
            atomic_fetch_add_explicit(&svc->requests[e->route].m.outcome[e->slot], 1,
                                      memory_order_relaxed);
            break;
        case ML_COMP_PARKED:
            atomic_fetch_add_explicit(&svc->routes[e->route].m.comp_parked, 1,
                                      memory_order_relaxed);
            break;
        case ML_COMP_RUN:
            atomic_fetch_add_explicit(&svc->routes[e->route].m.comp_run, 1, memory_order_relaxed);
            break;
        case ML_COMP_NULL:
            atomic_fetch_add_explicit(&svc->routes[e->route].m.comp_null, 1,
                                      memory_order_relaxed);
            break;
        case ML_LATE_SKIP:
            atomic_fetch_add_explicit(&svc->routes[e->route].m.late_skipped, 1,
                                      memory_order_relaxed);
            break;
        case ML_DECISION:
            atomic_fetch_add_explicit(e->slot ? &svc->decisions[e->route].approved
                                              : &svc->decisions[e->route].rejected,
                                      1, memory_order_relaxed);
            break;
        case ML_SAGA:
            atomic_fetch_add_explicit(&m->sagas[e->slot].count, 1, memory_order_relaxed);
            if (e->value >= 0)
                choreo__hist_observe(&m->saga_duration[m->sagas[e->slot].outcome], HIST_SECONDS,
                                     e->value);
            break;
        }
    }
    log->n = 0;
}

/* ---- the HTTP server --------------------------------------------------- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, char *body, size_t len,
                              bool owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
                                                : "text/plain; charset=utf-8");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    (void)con_cls;
    choreo_service *svc = cls;
    static char not_get[] = "choreo's metrics endpoint answers GET and HEAD of /metrics only\n";
    static char not_found[] = "not found: choreo serves its metrics on /metrics\n";
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, not_get, sizeof not_get - 1, false);
    if (strcmp(url, "/metrics") != 0)
        return answer(c, MHD_HTTP_NOT_FOUND, not_found, sizeof not_found - 1, false);
    size_t len = 0;
    char *text = choreo__metrics_render(svc, &len);
    if (!text) {
        static char oom[] = "out of memory rendering the metrics\n";
        return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, oom, sizeof oom - 1, false);
    }
    return answer(c, MHD_HTTP_OK, text, len, true);
}

/* Splits "host:port" ("[::1]:9464" for IPv6) and opens a listening socket. */
static choreo_status listen_on(const char *addr, int *fd_out, char *bound, size_t cap)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1])
        return choreo__fail(CHOREO_ECONFIG,
                            "metrics_addr \"%s\" is not host:port, such as 127.0.0.1:9464",
                            addr);
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (host[0] == '[' && hlen > 2 && host[hlen - 1] == ']') {
        memmove(host, host + 1, hlen - 2);
        host[hlen - 2] = '\0';
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        return choreo__fail(CHOREO_ECONFIG, "metrics_addr \"%s\": cannot resolve %s: %s", addr,
                            host, gai_strerror(rc));
    int err = 0, fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return choreo__fail(CHOREO_ECONFIG,
                            "metrics_addr \"%s\": cannot listen there: %s; choose a free port "
                            "and an address of this machine, or leave metrics_addr empty",
                            addr, strerror(err));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
            port = ntohs(s6->sin6_port);
            snprintf(bound, cap, "[%s]:%d", ip, port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
            port = ntohs(s4->sin_port);
            snprintf(bound, cap, "%s:%d", ip, port);
        }
    }
    *fd_out = fd;
    return CHOREO_OK;
}

choreo_status choreo__exporter_start(choreo_service *svc)
{
    const char *addr = svc->cfg->metrics_addr;
    if (!addr || !*addr || svc->httpd)
        return CHOREO_OK;
    int fd = -1;
    char bound[300] = "";
    choreo_status s = listen_on(addr, &fd, bound, sizeof bound);
    if (s != CHOREO_OK)
        return s;
    svc->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL,
                                  on_http, svc, MHD_OPTION_LISTEN_SOCKET, fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)CHOREO_METRICS_CONNECTIONS,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CHOREO_METRICS_IDLE_S,
                                  MHD_OPTION_END);
    if (!svc->httpd) {
        close(fd);
        return choreo__fail(CHOREO_ENOMEM, "cannot start the metrics endpoint on %s", addr);
    }
    snprintf(svc->metrics_bound, sizeof svc->metrics_bound, "%s", bound);
    /* Port 0 lets the system choose: the log is the only place that says
     * which, so it is said at every level but error. */
    bool chosen = strcmp(strrchr(addr, ':'), ":0") == 0;
    CHOREO_LOG(&svc->log, chosen ? CHOREO_LOG_WARN : CHOREO_LOG_INFO,
               chosen ? "metrics endpoint listening on a port the system chose"
                      : "metrics endpoint listening",
               "url=http://%s/metrics", bound);
    return CHOREO_OK;
}

void choreo__exporter_stop(choreo_service *svc)
{
    if (svc->httpd) {
        MHD_stop_daemon(svc->httpd);
        svc->httpd = NULL;
    }
}

/* ---- the sampler ------------------------------------------------------- */

struct parked_acc {
    struct choreo_parked_row *rows;
    int n, cap;
    bool oom;
    const char *service; /* parked messages: their consumers' service */
};

static void add_parked(const char *consumer, const char *type, int64_t count, void *user)
{
    struct parked_acc *acc = user;
    if (acc->n == acc->cap) {
        int cap = acc->cap ? acc->cap * 2 : 16;
        struct choreo_parked_row *r = realloc(acc->rows, sizeof *r * (size_t)cap);
        if (!r) {
            acc->oom = true;
            return;
        }
        acc->rows = r;
        acc->cap = cap;
    }
    struct choreo_parked_row *r = &acc->rows[acc->n++];
    snprintf(r->consumer, sizeof r->consumer, "%s", consumer);
    snprintf(r->type, sizeof r->type, "%s", type);
    r->count = count;
}

/* A count of parked messages, labelled with the type their consumer
 * (<service>_<Type>) reads rather than the one their body names: a body
 * that does not decode names none, and one that names any type it likes
 * must not make a series of its own. The events the broker refused keep
 * their type, one the service emitted. */
static void add_parked_message(const char *consumer, const char *type, int64_t count,
                               void *user)
{
    struct parked_acc *acc = user;
    if (strcmp(consumer, CHOREO_OUTBOX_CONSUMER) != 0) {
        size_t sl = strlen(acc->service);
        bool own = strncmp(consumer, acc->service, sl) == 0 && consumer[sl] == '_';
        type = own ? consumer + sl + 1 : "";
    }
    struct choreo_parked_row *last = acc->n ? &acc->rows[acc->n - 1] : NULL;
    if (last && strcmp(last->consumer, consumer) == 0 && strcmp(last->type, type) == 0)
        last->count += count; /* the rows come ordered by consumer */
    else
        add_parked(consumer, type, count, user);
}

/* Swaps a freshly read list into *list under the lock, or drops it. */
static void swap_rows(choreo_metrics *m, struct parked_acc *acc, bool ok,
                      struct choreo_parked_row **list, int *n)
{
    if (!ok || acc->oom) {
        free(acc->rows);
        return;
    }
    pthread_mutex_lock(&m->parked_lock);
    struct choreo_parked_row *old = *list;
    *list = acc->rows;
    *n = acc->n;
    pthread_mutex_unlock(&m->parked_lock);
    free(old);
}

static void sample_store(choreo_service *svc)
{
    choreo_metrics *m = &svc->metrics;
    int64_t due = 0, oldest = 0, delayed = 0;
    if (choreo__outbox_backlog(svc->sampler_store, choreo__now_ms(), &due, &oldest, &delayed) ==
        CHOREO_OK) {
        atomic_store(&m->outbox_due, due);
        atomic_store(&m->outbox_oldest_us, oldest);
        atomic_store(&m->outbox_delayed, delayed);
        atomic_store(&m->outbox_known, true);
    } else {
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "metrics: cannot read the outbox backlog",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
    }
    struct parked_acc acc = { .service = svc->cfg->service }, held = { 0 }, running = { 0 };
    swap_rows(m, &acc,
              choreo__dead_parked_counts(svc->sampler_store, add_parked_message, &acc) ==
                  CHOREO_OK,
              &m->parked, &m->nparked);
    swap_rows(m, &held,
              choreo__holds_waiting(svc->sampler_store, choreo__now_ms(), add_parked, &held) ==
                  CHOREO_OK,
              &m->held, &m->nheld);
    swap_rows(m, &running,
              choreo__sagas_running(svc->sampler_store, add_parked, &running) == CHOREO_OK,
              &m->running, &m->nrunning);
}

/* Asks the broker for each consumer's lag, once the service has its
 * JetStream context (not while it waits for its broker at start); returns
 * whether it asked. */
static bool sample_lag(choreo_service *svc)
{
    jsCtx *js = atomic_load(&svc->extras.js);
    if (!js)
        return false;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = CHOREO_METRICS_JS_WAIT_MS;
    for (int i = 0; i < svc->nroutes && !atomic_load(&svc->stop); i++) {
        choreo_route *rt = &svc->routes[i];
        jsConsumerInfo *ci = NULL;
        jsErrCode jerr = 0;
        if (js_GetConsumerInfo(&ci, js, svc->cfg->stream, rt->consumer, &jo, &jerr) !=
            NATS_OK) {
            atomic_store(&rt->m.lag_known, false);
            continue;
        }
        atomic_store(&rt->m.pending, ci->NumPending);
        atomic_store(&rt->m.ack_pending, (uint64_t)ci->NumAckPending);
        atomic_store(&rt->m.redelivered, (uint64_t)ci->NumRedelivered);
        atomic_store(&rt->m.lag_known, true);
        jsConsumerInfo_Destroy(ci);
    }
    return true;
}

static void *sampler_main(void *arg)
{
    prctl(PR_SET_NAME, "choreo-sampler"); /* shown by top -H and perf */
    choreo_service *svc = arg;
    int64_t lag_due = 0;
    while (!atomic_load(&svc->stop)) {
        sample_store(svc);
        int64_t now = choreo__mono_us();
        if (now >= lag_due && sample_lag(svc))
            lag_due = now + CHOREO_METRICS_LAG_SAMPLE_MS * 1000LL;
        for (int64_t slept = 0; slept < CHOREO_METRICS_SAMPLE_MS && !atomic_load(&svc->stop);
             slept += CHOREO_STOP_SLICE_MS)
            choreo__sleep_ms(CHOREO_STOP_SLICE_MS);
    }
    return NULL;
}

choreo_status choreo__sampler_start(choreo_service *svc)
{
    if (!svc->httpd)
        return CHOREO_OK;
    if (!svc->sampler_store) {
        choreo_status s = choreo__store_open_wait(&svc->sampler_store, svc->cfg->db, "normal",
                                                  (int)svc->cfg->busy_timeout_ms,
                                                  (int)svc->cfg->db_wait_ms, 0);
        if (s != CHOREO_OK)
            return s;
    }
    if (pthread_create(&svc->sampler, NULL, sampler_main, svc) != 0)
        return choreo__fail(CHOREO_ENOMEM, "cannot start the metrics sampler thread");
    svc->sampler_started = true;
    return CHOREO_OK;
}

void choreo__sampler_join(choreo_service *svc)
{
    if (svc->sampler_started) {
        pthread_join(svc->sampler, NULL);
        svc->sampler_started = false;
    }
    for (int i = 0; i < svc->nroutes; i++)
        atomic_store(&svc->routes[i].m.lag_known, false);
}
