/* The service object: configuration, handler registration, start and stop
 * of the relay, fetch and dispatcher threads, and statistics. */
#include "service.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

#include "clock.h"
#include "consumers.h"
#include "dispatch.h"
#include "envelope.h"
#include "exporter.h"
#include "orchestrator.h"
#include "relay.h"
#include "status.h"
#include "tuning.h"

/* Reads the database's identity. A PostgreSQL server that restarts just
 * then drops the connection: the read is tried again (on the connection
 * made again) for db_wait_ms, as the open was. */
static choreo_status read_identity(choreo_service *svc)
{
    int64_t until = choreo__mono_us() + svc->cfg->db_wait_ms * 1000;
    for (;;) {
        choreo_status s = choreo__store_identity(svc->store, &svc->db_id);
        if (!choreo__store_retry_away(svc->store, s, until))
            return s;
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "cannot read the database's identity; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
    }
}

choreo_status choreo_service_create(choreo_service **out, const choreo_config *cfg)
{
    if (!out || !cfg)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_create: out and cfg must not be NULL");
    choreo_status s = choreo_config_validate(cfg);
    if (s != CHOREO_OK)
        return s;
    choreo_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return choreo__fail(CHOREO_ENOMEM, "out of memory creating a service");
    pthread_mutex_init(&svc->cmd_lock, NULL);
    choreo__metrics_init(&svc->metrics);
    svc->watch = (choreo_nats_watch){ &svc->log, &svc->metrics, false };
    svc->cfg = choreo__config_clone(cfg);
    if (!svc->cfg) {
        s = choreo__fail(CHOREO_ENOMEM, "out of memory copying the configuration");
        goto fail;
    }
    choreo__log_level_parse(svc->cfg->log_level, &svc->log.level);
    snprintf(svc->log.service, sizeof svc->log.service, "%s", svc->cfg->service);
    s = choreo__extras_init(&svc->extras, svc->cfg, &svc->log);
    if (s != CHOREO_OK)
        goto fail;
    svc->jitter_state = (uint64_t)choreo__now_us() ^ (uint64_t)(uintptr_t)svc;
    s = choreo__queue_init(&svc->queue, CHOREO_QUEUE_CAP);
    if (s != CHOREO_OK)
        goto fail;
    int busy = choreo__config_lock_wait_ms(svc->cfg);
    /* A SQLite file belongs to one process; a PostgreSQL database is shared
     * by every instance of the service. */
    bool shared = choreo__store_is_postgres(svc->cfg->db);
    s = shared ? CHOREO_OK : choreo__dblock_acquire(&svc->dblock, svc->cfg->db, svc->cfg->service);
    /* On PostgreSQL, a frozen instance's open transaction would hold its
     * rows (and the inbox marks of the events it was applying, which the
     * other instances get again after ack_wait_ms) until it resumes: the
     * server ends it after twice that. */
    int idle_tx = (int)(2 * svc->cfg->ack_wait_ms);
    if (s == CHOREO_OK)
        s = choreo__store_open_wait(&svc->store, svc->cfg->db, svc->cfg->synchronous, busy,
                                    (int)svc->cfg->db_wait_ms, idle_tx);
    if (s == CHOREO_OK)
        s = choreo__store_open_wait(&svc->cmd_store, svc->cfg->db, svc->cfg->synchronous, busy,
                                    (int)svc->cfg->db_wait_ms, idle_tx);
    if (s == CHOREO_OK)
        s = read_identity(svc);
    if (s == CHOREO_OK)
        s = choreo__relay_create(&svc->relay, svc);
    if (s != CHOREO_OK)
        goto fail;
    struct stat db_stat;
    if (!shared && stat(svc->cfg->db, &db_stat) == 0 && (db_stat.st_mode & 077))
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "the database is open to other users of this machine (its group or others "
                   "have a permission on it); it holds the business rows and every event: "
                   "chmod 600 it (choreo creates new ones so)",
                   "db=%s mode=%04o", svc->cfg->db, (unsigned)(db_stat.st_mode & 07777));
    *out = svc;
    return CHOREO_OK;
fail:
    choreo_service_destroy(svc);
    return s;
}

const char *choreo_service_name(const choreo_service *svc)
{
    return svc ? svc->cfg->service : NULL;
}

choreo_status choreo_service_on(choreo_service *svc, const char *type, choreo_handler_fn fn,
                                void *user)
{
    if (!svc || !type || !fn)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_on: svc, type and fn must not be NULL");
    if (svc->started)
        return choreo__fail(CHOREO_ESTATE, "choreo_service_on(%s): register handlers before start",
                            type);
    if (!choreo__type_valid(type, strlen(type)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_on: \"%s\" is not a valid event type: use UpperCamel "
                            "ASCII letters and digits, at most %d characters",
                            type, CHOREO_TYPE_MAX);
    for (int i = 0; i < svc->nroutes; i++) {
        if (strcmp(svc->routes[i].type, type) != 0)
            continue;
        const char *saga = svc->routes[i].fn == choreo__saga_on_event
                               ? choreo__saga_owner_of(svc, type) : NULL;
        if (saga)
            return choreo__fail(CHOREO_EDUPLICATE,
                                "choreo_service_on: %s is a reply of the orchestrated saga %s "
                                "in service %s, which handles it",
                                type, saga, svc->cfg->service);
        return choreo__fail(CHOREO_EDUPLICATE,
                            "choreo_service_on: %s already has a handler in service %s", type,
                            svc->cfg->service);
    }
    choreo_route *routes = realloc(svc->routes, sizeof *routes * (size_t)(svc->nroutes + 1));
    if (!routes)
        return choreo__fail(CHOREO_ENOMEM, "out of memory registering a handler");
    svc->routes = routes;
    choreo_route *rt = &routes[svc->nroutes++];
    memset(rt, 0, sizeof *rt);
    snprintf(rt->type, sizeof rt->type, "%s", type);
    snprintf(rt->consumer, sizeof rt->consumer, "%s_%s", svc->cfg->service, type);
    snprintf(rt->filter, sizeof rt->filter, "%s.%s.*", svc->cfg->prefix, type);
    rt->fn = fn;
    rt->user = user;
    rt->min_version = 1;
    rt->max_version = 65535;
    for (int i = 0; i < svc->nroutes; i++)
        svc->routes[i].svc = svc;
    return CHOREO_OK;
}

choreo_status choreo_service_accept_versions(choreo_service *svc, const char *type,
                                             uint32_t min_version, uint32_t max_version)
{
    if (!svc || !type)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_accept_versions: NULL argument");
    if (svc->started)
        return choreo__fail(CHOREO_ESTATE, "choreo_service_accept_versions(%s): before start only",
                            type);
    if (min_version < 1 || max_version > 65535 || min_version > max_version)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_accept_versions(%s): %u..%u is not a range within "
                            "1..65535",
                            type, min_version, max_version);
    for (int i = 0; i < svc->nroutes; i++) {
        if (strcmp(svc->routes[i].type, type) == 0) {
            svc->routes[i].min_version = min_version;
            svc->routes[i].max_version = max_version;
            return CHOREO_OK;
        }
    }
    return choreo__fail(CHOREO_ENOTFOUND,
                        "choreo_service_accept_versions: %s has no handler; register it with "
                        "choreo_service_on first",
                        type);
}

choreo_status choreo_service_on_request(choreo_service *svc, const char *name,
                                        choreo_request_fn fn, void *user)
{
    if (!svc || !name || !fn)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_on_request: svc, name and fn must not be NULL");
    if (svc->started)
        return choreo__fail(CHOREO_ESTATE,
                            "choreo_service_on_request(%s): register handlers before start", name);
    if (!choreo__name_valid(name, CHOREO_TYPE_MAX))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_service_on_request: \"%s\" is not a valid request name: use "
                            "A-Z a-z 0-9 _ -",
                            name);
    for (int i = 0; i < svc->nrequests; i++)
        if (strcmp(svc->requests[i].name, name) == 0)
            return choreo__fail(CHOREO_EDUPLICATE,
                                "choreo_service_on_request: %s is already registered", name);
    choreo_request_route *rqs = realloc(svc->requests, sizeof *rqs * (size_t)(svc->nrequests + 1));
    if (!rqs)
        return choreo__fail(CHOREO_ENOMEM, "out of memory registering a request handler");
    svc->requests = rqs;
    choreo_request_route *rq = &rqs[svc->nrequests++];
    memset(rq, 0, sizeof *rq);
    snprintf(rq->name, sizeof rq->name, "%s", name);
    snprintf(rq->subject, sizeof rq->subject, "%s-rpc.%s.%s", svc->cfg->prefix,
             svc->cfg->service, name);
    rq->fn = fn;
    rq->user = user;
    for (int i = 0; i < svc->nrequests; i++)
        svc->requests[i].svc = svc;
    return CHOREO_OK;
}

/* Joins whatever threads exist and closes the connections; safe after a
 * partial start. Owner thread only. */
static void shut_down(choreo_service *svc)
{
    choreo__dispatch_join(svc);
    choreo__relay_join(svc->relay);
    choreo__sampler_join(svc);
    svc->started = false;
    atomic_store(&svc->extras.js, NULL);
    atomic_store(&svc->metrics.nats_up, false);
    if (svc->tp) {
        choreo__transport_close(svc->tp);
        svc->tp = NULL;
    }
    choreo__dispatch_free_subs(svc);
}

/* Connects and sets up everything start needs, in order. */
static choreo_status set_up(choreo_service *svc)
{
    /* The database's gauges (the outbox waiting, parked messages) while
     * the service still waits for its broker, too. */
    choreo_status s = choreo__sampler_start(svc);
    if (s == CHOREO_OK)
        s = choreo__transport_connect(&svc->tp, svc->cfg, &svc->watch, &svc->stop, true);
    if (s == CHOREO_OK) {
        atomic_store(&svc->metrics.nats_down, 0);
        atomic_store(&svc->metrics.nats_up, true);
        choreo__transport_bind(svc->tp, svc->db_id);
        s = choreo__transport_ensure_stream(svc->tp, svc->cfg, NULL);
    }
    /* The consumers before the relay publishes anything from this database:
     * one bound to another means another database runs under this name. */
    if (s == CHOREO_OK)
        s = choreo__dispatch_subscribe(svc);
    if (s == CHOREO_OK) {
        atomic_store(&svc->max_payload, natsConnection_GetMaxPayload(svc->tp->nc_pub));
        atomic_store(&svc->extras.js, svc->tp->js);
        s = choreo__relay_start(svc->relay);
    }
    if (s == CHOREO_OK)
        s = choreo__dispatch_start(svc);
    return s;
}

/* Records the handlers the code registered. A PostgreSQL server that
 * restarts just then drops the connection: the record is tried again (on
 * the connection made again) for db_wait_ms, as the open was. */
static choreo_status record_handlers(choreo_service *svc)
{
    int64_t until = choreo__mono_us() + svc->cfg->db_wait_ms * 1000;
    for (;;) {
        choreo_status s = choreo__consumers_record(svc->store, svc->cfg, svc->routes,
                                                   svc->nroutes, choreo__now_ms());
        if (atomic_load(&svc->stop) || !choreo__store_retry_away(svc->store, s, until))
            return s;
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "cannot record the handlers in the database; retrying", "err=\"%s\"",
                   CHOREO_SAFE(choreo_last_error()));
    }
}

choreo_status choreo_service_start(choreo_service *svc)
{
    choreo__clear_error();
    if (!svc)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_start: svc is NULL");
    if (svc->started || svc->tp)
        return choreo__fail(CHOREO_ESTATE,
                            "service %s is already started: call choreo_service_stop and "
                            "choreo_service_wait before starting it again",
                            svc->cfg->service);
    /* Starting writes to the database, which this thread's own open command
     * holds: it would wait busy_timeout_ms on itself. */
    if (choreo__command_open_here(svc))
        return choreo__fail(CHOREO_ESTATE,
                            "choreo_service_start: this thread has a command of service %s "
                            "open (choreo_service_begin); commit or roll it back before "
                            "starting",
                            svc->cfg->service);
    /* What the code registers, for choreoctl consumers to tell a stale
     * consumer (a handler renamed or removed) from a live one. */
    choreo_status rec = record_handlers(svc);
    if (rec != CHOREO_OK)
        return rec;
    /* Up before NATS, so that a service waiting for its broker shows it. */
    choreo_status up = choreo__exporter_start(svc);
    if (up != CHOREO_OK) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "start failed", "err=\"%s\"",
                   CHOREO_SAFE(choreo_last_error()));
        return up;
    }
    atomic_store(&svc->stop_requested, false);
    atomic_store(&svc->stop, false);
    atomic_store(&svc->failed, CHOREO_OK);
    int64_t began = choreo__mono_us();
    for (int attempt = 1;; attempt++) {
        choreo_status s = set_up(svc);
        if (s == CHOREO_OK)
            break;
        /* A JetStream call the user may not make only times out: waiting
         * would not help, so say which one was refused. */
        if (s == CHOREO_ETIMEOUT || s == CHOREO_ENATS) {
            choreo_status refused = choreo__transport_refused(svc->tp);
            if (refused != CHOREO_OK)
                s = refused;
        }
        /* Undo exactly what was started: only threads that exist are joined. */
        char detail[1024];
        snprintf(detail, sizeof detail, "%s", choreo_last_error());
        bool stopping = atomic_load(&svc->stop_requested);
        atomic_store(&svc->stop, true);
        shut_down(svc);
        /* A broker that goes away in the middle of the set-up (a restart, a
         * cluster election) is waited for, as one that is not there yet is. */
        int64_t waited_ms = (choreo__mono_us() - began) / 1000;
        bool transient = s == CHOREO_ENOSERVER || s == CHOREO_ETIMEOUT;
        if (!transient || stopping ||
            (svc->cfg->connect_wait_ms > 0 && waited_ms >= svc->cfg->connect_wait_ms)) {
            if (stopping && transient) /* asked to stop: not a failure of its own */
                CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "stopped while starting",
                           "err=\"%s\"", CHOREO_SAFE(detail));
            else
                CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "start failed", "err=\"%s\"",
                           CHOREO_SAFE(detail));
            choreo__exporter_stop(svc);
            return choreo__fail(s, "%s", detail);
        }
        if (attempt == 1 || attempt % 10 == 0)
            CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "NATS failed while starting; trying again",
                       "attempt=%d err=\"%s\"", attempt, CHOREO_SAFE(detail));
        /* A stop that came meanwhile stays in stop_requested. */
        atomic_store(&svc->stop, atomic_load(&svc->stop_requested));
        for (int64_t slept = 0;
             slept < CHOREO_CONNECT_RETRY_MS && !atomic_load(&svc->stop_requested);
             slept += CHOREO_STOP_SLICE_MS)
            choreo__sleep_ms(CHOREO_STOP_SLICE_MS);
        if (atomic_load(&svc->stop_requested)) {
            choreo__exporter_stop(svc);
            return choreo__fail(s, "stopped while starting: %s", detail);
        }
    }
    svc->started = true;
    char shown[1024];
    choreo__store_display(svc->cfg->db, shown, sizeof shown);
    CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "service started",
               "handlers=%d requests=%d db=%s stream=%s", svc->nroutes, svc->nrequests, shown,
               svc->cfg->stream);
    return CHOREO_OK;
}

void choreo__service_fail(choreo_service *svc, choreo_status why)
{
    int none = CHOREO_OK;
    if (atomic_compare_exchange_strong(&svc->failed, &none, (int)why))
        snprintf(svc->failed_text, sizeof svc->failed_text, "%s",
                 CHOREO_SAFE(choreo_last_error()));
    atomic_store(&svc->stop, true);
}

void choreo_service_stop(choreo_service *svc)
{
    if (svc) {
        atomic_store(&svc->stop_requested, true);
        atomic_store(&svc->stop, true);
    }
}

/* choreo_service_wait without its status, leaving the thread's error text
 * alone (destroy must not replace the error of the call before it). */
static void wait_threads(choreo_service *svc)
{
    bool was_started = svc->started;
    shut_down(svc);
    choreo__exporter_stop(svc);
    if (was_started)
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "service stopped", NULL);
}

choreo_status choreo_service_wait(choreo_service *svc)
{
    choreo__clear_error();
    if (!svc)
        return CHOREO_OK;
    wait_threads(svc);
    /* The threads are joined: failed_text is theirs no more. */
    int failed = atomic_load(&svc->failed);
    if (failed != CHOREO_OK)
        return choreo__fail((choreo_status)failed, "%s", svc->failed_text);
    return CHOREO_OK;
}

/* The signal watcher of choreo_service_run: SIGINT and SIGTERM are blocked
 * in every thread, and this one takes them, so that a signal that comes
 * while the service is still connecting, or a second one while it is
 * stopping, is answered and never kills the process before its cleanup. */
struct watcher {
    choreo_service *svc;
    sigset_t set;
    atomic_bool done;
    atomic_int signals;
};

static void *watch_main(void *arg)
{
    struct watcher *w = arg;
    struct timespec slice = { 0, CHOREO_STOP_SLICE_MS * 1000000L };
    while (!atomic_load(&w->done)) {
        int sig = sigtimedwait(&w->set, NULL, &slice);
        if (sig != SIGINT && sig != SIGTERM)
            continue;
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        if (atomic_fetch_add(&w->signals, 1) == 0)
            CHOREO_LOG(&w->svc->log, CHOREO_LOG_INFO, "signal received; stopping", "signal=%s",
                       name);
        else
            CHOREO_LOG(&w->svc->log, CHOREO_LOG_INFO,
                       "signal received while stopping; still finishing the work in hand",
                       "signal=%s", name);
        choreo_service_stop(w->svc);
    }
    return NULL;
}

choreo_status choreo_service_run(choreo_service *svc)
{
    choreo__clear_error();
    if (!svc)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_run: svc is NULL");
    if (svc->started || svc->tp)
        return choreo__fail(CHOREO_ESTATE, "choreo_service_run: service %s is already running",
                            svc->cfg->service);
    /* Block the signals before any thread exists, so that every thread
     * (nats.c's included) inherits the mask and only the watcher takes them. */
    struct watcher w = { .svc = svc };
    sigemptyset(&w.set);
    sigaddset(&w.set, SIGINT);
    sigaddset(&w.set, SIGTERM);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &w.set, &old);
    pthread_t watcher;
    if (pthread_create(&watcher, NULL, watch_main, &w) != 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return choreo__fail(CHOREO_ENOMEM, "cannot start the signal watcher thread");
    }
    choreo_status s = choreo_service_start(svc);
    if (s == CHOREO_OK) {
        while (!atomic_load(&svc->stop) && !atomic_load(&svc->dispatcher_done))
            choreo__sleep_ms(CHOREO_STOP_SLICE_MS);
        choreo_service_stop(svc);
        s = choreo_service_wait(svc);
    } else if (atomic_load(&w.signals) > 0) {
        /* Asked to stop before it could start: a clean stop, not a failure. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "stopped before the service started", NULL);
        choreo__clear_error();
        s = CHOREO_OK;
    }
    atomic_store(&w.done, true);
    pthread_join(watcher, NULL);
    /* SIGINT and SIGTERM stay blocked: one that comes from now on (a
     * supervisor's second SIGTERM, say) must not end the process in the
     * middle of the caller's cleanup; the service has stopped, which is all
     * such a signal asks for. Signals already pending are consumed. */
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&w.set, NULL, &zero) > 0) {
    }
    (void)old;
    return s;
}

void choreo_service_destroy(choreo_service *svc)
{
    if (!svc)
        return;
    choreo_service_stop(svc);
    wait_threads(svc);
    choreo__relay_destroy(svc->relay);
    choreo__store_close(svc->store);
    choreo__store_close(svc->cmd_store);
    choreo__store_close(svc->sampler_store);
    choreo__dblock_release(&svc->dblock);
    choreo__queue_destroy(&svc->queue);
    choreo__extras_free(&svc->extras);
    free(svc->routes);
    free(svc->requests);
    choreo__sagas_free(svc);
    free(svc->decisions);
    choreo_config_destroy(svc->cfg);
    choreo__mlog_free(&svc->batch_mlog);
    choreo__outbox_copies_free(&svc->batch_copies);
    choreo__metrics_free(&svc->metrics);
    pthread_mutex_destroy(&svc->cmd_lock);
    free(svc);
}

void choreo_service_stats(choreo_service *svc, choreo_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!svc)
        return;
    out->handled = atomic_load(&svc->stats.handled);
    out->duplicates = atomic_load(&svc->stats.duplicates);
    out->retried = atomic_load(&svc->stats.retried);
    out->parked = atomic_load(&svc->stats.parked);
    out->published = atomic_load(&svc->stats.published);
    out->publish_errors = atomic_load(&svc->stats.publish_errors);
    out->batches = atomic_load(&svc->stats.batches);
    out->outbox_pending = atomic_load(&svc->stats.outbox_pending);
    out->relay_p50_us = choreo__latency_quantile(&svc->relay_latency, 0.50);
    out->relay_p99_us = choreo__latency_quantile(&svc->relay_latency, 0.99);
}
