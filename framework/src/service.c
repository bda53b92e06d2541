/* The service object: configuration, handler registration, start and stop
 * of the relay, fetch and dispatcher threads, and statistics. */
#include "service.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "clock.h"
#include "dispatch.h"
#include "envelope.h"
#include "relay.h"
#include "status.h"

#define QUEUE_CAP 1024

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
    svc->cfg = choreo__config_clone(cfg);
    if (!svc->cfg) {
        s = choreo__fail(CHOREO_ENOMEM, "out of memory copying the configuration");
        goto fail;
    }
    choreo__log_level_parse(svc->cfg->log_level, &svc->log.level);
    snprintf(svc->log.service, sizeof svc->log.service, "%s", svc->cfg->service);
    svc->naive = strcmp(svc->cfg->delivery, "naive") == 0;
    svc->audit = strcmp(svc->cfg->audit, "on") == 0;
    if (svc->naive)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "delivery=naive: events are published after commit without outbox or inbox; "
                   "they can be lost or applied twice (demonstration only)", NULL);
    s = choreo__crashpoints_load(&svc->crash);
    if (s != CHOREO_OK)
        goto fail;
    if (svc->crash.any)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "crash points are on (testing only)",
                   "spec=\"%s\" seed=%llu", CHOREO_SAFE(getenv("CHOREO_CRASHPOINTS")),
                   (unsigned long long)svc->crash.seed);
    svc->jitter_state = (uint64_t)choreo__now_us() ^ (uint64_t)(uintptr_t)svc;
    s = choreo__queue_init(&svc->queue, QUEUE_CAP);
    if (s != CHOREO_OK)
        goto fail;
    int busy = (int)svc->cfg->busy_timeout_ms;
    s = choreo__store_open(&svc->store, svc->cfg->db, svc->cfg->synchronous, busy);
    if (s == CHOREO_OK)
        s = choreo__store_open(&svc->cmd_store, svc->cfg->db, svc->cfg->synchronous, busy);
    if (s == CHOREO_OK)
        s = choreo__relay_create(&svc->relay, svc);
    if (s != CHOREO_OK)
        goto fail;
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
    for (int i = 0; i < svc->nroutes; i++)
        if (strcmp(svc->routes[i].type, type) == 0)
            return choreo__fail(CHOREO_EDUPLICATE,
                                "choreo_service_on: %s already has a handler in service %s",
                                type, svc->cfg->service);
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

choreo_status choreo_service_start(choreo_service *svc)
{
    if (!svc)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_start: svc is NULL");
    if (svc->started || svc->tp)
        return choreo__fail(CHOREO_ESTATE, "service %s was already started", svc->cfg->service);
    atomic_store(&svc->stop, false);
    choreo_status s = choreo__transport_connect(&svc->tp, svc->cfg, &svc->log, &svc->stop,
                                                choreo__relay_on_ack, svc->relay);
    if (s == CHOREO_OK)
        s = choreo__transport_ensure_stream(svc->tp, svc->cfg);
    if (s == CHOREO_OK)
        s = choreo__relay_start(svc->relay);
    if (s == CHOREO_OK) {
        svc->started = true;
        s = choreo__dispatch_start(svc);
    }
    if (s != CHOREO_OK) {
        choreo_status keep = s;
        char detail[1024];
        snprintf(detail, sizeof detail, "%s", choreo_last_error());
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "start failed", "err=\"%s\"", CHOREO_SAFE(detail));
        choreo_service_stop(svc);
        choreo_service_wait(svc);
        return choreo__fail(keep, "%s", detail);
    }
    CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "service started",
               "handlers=%d requests=%d db=%s stream=%s", svc->nroutes, svc->nrequests,
               svc->cfg->db, svc->cfg->stream);
    return CHOREO_OK;
}

void choreo_service_stop(choreo_service *svc)
{
    if (svc)
        atomic_store(&svc->stop, true);
}

void choreo_service_wait(choreo_service *svc)
{
    if (!svc)
        return;
    if (svc->started) {
        choreo__dispatch_join(svc);
        choreo__relay_join(svc->relay);
        svc->started = false;
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "service stopped", NULL);
    }
    if (svc->tp) {
        choreo__transport_close(svc->tp);
        svc->tp = NULL;
    }
}

choreo_status choreo_service_run(choreo_service *svc)
{
    if (!svc)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_run: svc is NULL");
    /* Block the signals before any thread exists, so that every thread
     * (nats.c's included) inherits the mask and only sigtimedwait below
     * receives them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    choreo_status s = choreo_service_start(svc);
    if (s == CHOREO_OK) {
        struct timespec slice = { 0, 100 * 1000000 };
        while (!atomic_load(&svc->stop) && !atomic_load(&svc->dispatcher_done)) {
            int sig = sigtimedwait(&set, NULL, &slice);
            if (sig == SIGINT || sig == SIGTERM) {
                CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "signal received; stopping",
                           "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
                break;
            }
        }
        choreo_service_stop(svc);
        choreo_service_wait(svc);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return s;
}

void choreo_service_destroy(choreo_service *svc)
{
    if (!svc)
        return;
    choreo_service_stop(svc);
    choreo_service_wait(svc);
    choreo__relay_destroy(svc->relay);
    choreo__store_close(svc->store);
    choreo__store_close(svc->cmd_store);
    choreo__queue_destroy(&svc->queue);
    choreo__naive_free(&svc->naive_batch);
    free(svc->routes);
    free(svc->requests);
    choreo_config_destroy(svc->cfg);
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
