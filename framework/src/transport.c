/* Connects to NATS with the settings a saga framework needs (reconnect
 * forever, no publish batching delay, credentials from the configuration,
 * never logged), and sets up the stream and durable consumers. nats.c
 * callbacks here only log: user code never runs on NATS threads. */
#include "transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "nats_auth.h"
#include "store.h"
#include "status.h"
#include "tuning.h"

choreo_status choreo__nats_error(natsStatus s, const char *what)
{
    const char *detail = choreo__nats_detail(s);
    switch (s) {
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return choreo__fail(CHOREO_EAUTH,
                            "%s: NATS refused the credentials (%s); check nats_user/"
                            "nats_password, nats_token, nats_nkey/nats_nkey_seed or nats_creds",
                            what, detail);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_NO_RESPONDERS:
        return choreo__fail(CHOREO_ENOSERVER,
                            "%s: the NATS server went away or its JetStream is not answering "
                            "(%s): it may be restarting or electing a leader; if it lasts, "
                            "check that nats-server runs with JetStream (-js)",
                            what, detail);
    case NATS_NO_SERVER:
        return choreo__fail(CHOREO_ENOSERVER,
                            "%s: no NATS server reachable (%s); start nats-server with "
                            "JetStream (-js) or fix nats_url",
                            what, detail);
    case NATS_TIMEOUT:
        return choreo__fail(CHOREO_ETIMEOUT, "%s: timed out (%s)", what, detail);
    case NATS_NO_MEMORY:
        return choreo__fail(CHOREO_ENOMEM, "%s: out of memory in nats.c", what);
    default:
        return choreo__fail(CHOREO_ENATS, "%s: %s", what, detail);
    }
}

bool choreo__nats_transient(natsStatus s)
{
    switch (s) {
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_NO_RESPONDERS:
    case NATS_TIMEOUT:
        return true;
    default:
        return false;
    }
}

/* JetStream's answers of a cluster that is electing a leader or has lost
 * the majority of its nodes: like a broker on its way back, something to
 * wait for, not a refusal. */
static bool js_unavailable(jsErrCode code)
{
    switch ((int)code) {
    case 10007: /* JetStream cluster not assigned to this server */
    case 10008: /* JetStream system temporarily unavailable */
    case 10009: /* JetStream cluster can not handle request */
    case 10118: /* stream is offline */
    case 10119: /* consumer is offline */
        return true;
    default:
        return false;
    }
}

/* choreo__nats_error for a JetStream API call that answered with code. */
static choreo_status js_error(natsStatus s, jsErrCode code, const char *what)
{
    if (js_unavailable(code))
        return choreo__fail(CHOREO_ENOSERVER,
                            "%s: JetStream is not available right now (%s): the cluster is "
                            "electing a leader or has lost most of its nodes; choreo tries "
                            "again; if it lasts, bring the cluster's nodes back",
                            what, choreo__nats_detail(s));
    return choreo__nats_error(s, what);
}

bool choreo__nats_electing(natsStatus s, const choreo_config *cfg)
{
    return (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS) && strchr(cfg->nats_url, ',') != NULL;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    const choreo_nats_watch *w = closure;
    if (natsConnection_IsClosed(nc))
        return; /* our own close at stop, not an outage */
    if (w->metrics)
        atomic_fetch_add(&w->metrics->nats_down, 1);
    CHOREO_LOG(w->log, w->second ? CHOREO_LOG_DEBUG : CHOREO_LOG_WARN,
               w->second ? "the relay's connection to NATS was lost; reconnecting"
                         : "disconnected from NATS; reconnecting",
               NULL);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    const choreo_nats_watch *w = closure;
    const choreo_logger *log = w->log;
    if (w->metrics) {
        if (!w->second)
            atomic_fetch_add(&w->metrics->reconnects, 1);
        if (atomic_fetch_sub(&w->metrics->nats_down, 1) <= 0)
            atomic_store(&w->metrics->nats_down, 0);
    }
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    char safe[256];
    choreo__redact_urls(url, safe, sizeof safe);
    CHOREO_LOG(log, w->second ? CHOREO_LOG_DEBUG : CHOREO_LOG_INFO,
               w->second ? "the relay's connection to NATS is back" : "reconnected to NATS",
               "url=%s", safe);
}

static void on_closed(natsConnection *nc, void *closure)
{
    choreo_transport *tp = closure;
    pthread_mutex_lock(&tp->closed_lock);
    tp->closed++;
    pthread_cond_broadcast(&tp->closed_cond);
    pthread_mutex_unlock(&tp->closed_lock);
}

/* Waits until the closed callbacks of n connections have run (bounded, in
 * case one never comes). */
static void wait_closed(choreo_transport *tp, int n)
{
    struct timespec until = choreo__deadline_in_ms(CHOREO_NATS_CLOSE_WAIT_MS);
    pthread_mutex_lock(&tp->closed_lock);
    while (tp->closed < n &&
           pthread_cond_timedwait(&tp->closed_cond, &tp->closed_lock, &until) == 0)
        ;
    bool missing = tp->closed < n;
    pthread_mutex_unlock(&tp->closed_lock);
    if (missing)
        CHOREO_LOG(tp->log, CHOREO_LOG_WARN, "a NATS connection's closed callback did not come",
                   "waited_ms=%d", CHOREO_NATS_CLOSE_WAIT_MS);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    const choreo_logger *log = ((const choreo_nats_watch *)closure)->log;
    const char *detail = NULL;
    natsConnection_GetLastError(nc, &detail);
    if (err == NATS_NOT_PERMITTED) {
        /* The server's -ERR text names the operation and the subject. A
         * refused publish leaves its outbox row unpublished: the relay
         * tries it again until the permissions allow it. */
        CHOREO_LOG(log, CHOREO_LOG_ERROR,
                   "NATS refused an operation this service's user is not permitted; check the "
                   "user's permissions in the server configuration",
                   "detail=\"%s\"", CHOREO_SAFE(detail ? detail : natsStatus_GetText(err)));
        return;
    }
    CHOREO_LOG(log, CHOREO_LOG_WARN, "NATS asynchronous error", "err=\"%s\" detail=\"%s\"",
               CHOREO_SAFE(natsStatus_GetText(err)), CHOREO_SAFE(detail ? detail : ""));
}

/* Splits the comma-separated list into the array nats.c wants. */
static natsStatus set_servers(natsOptions *o, const char *urls)
{
    char *copy = strdup(urls);
    if (!copy)
        return NATS_NO_MEMORY;
    const char *list[32];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < 32;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            list[n++] = tok;
    }
    natsStatus s = n ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
    free(copy);
    return s;
}

static choreo_status build_options(choreo_transport *tp, const choreo_config *cfg)
{
    natsOptions *o = NULL;
    /* nats.c spins up to 2,000 times on a taken lock by default before it
     * sleeps. With the service's threads, the broker and the rest of the
     * machine sharing a few cores, the spinning takes a core from the thread
     * that holds the lock: open the library without it. Only the first open
     * of a process counts, so an application that opened nats.c itself keeps
     * its own count; a failure here is reported by natsOptions_Create. */
    nats_Open(0);
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, cfg->nats_url);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, cfg->service);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, CHOREO_NATS_RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, CHOREO_NATS_RECONNECT_BUF);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, CHOREO_NATS_TIMEOUT_MS);
    /* A server that hangs, or a network that drops its packets, leaves the
     * socket open: only unanswered PINGs tell (nats.c's default is one
     * every two minutes). */
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, cfg->nats_ping_interval_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, CHOREO_NATS_MAX_PINGS_OUT);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, (void *)tp->watch);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, (void *)tp->watch);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, (void *)tp->watch);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, tp);
    if (s == NATS_OK && strcmp(cfg->nats_inbox_prefix, "_INBOX") != 0)
        s = natsOptions_SetCustomInboxPrefix(o, cfg->nats_inbox_prefix);
    choreo_status st = s == NATS_OK ? CHOREO_OK
                                    : choreo__nats_error(s, "setting up the NATS connection "
                                                            "options (nats_url, "
                                                            "nats_inbox_prefix)");
    if (st == CHOREO_OK)
        st = choreo__nats_set_credentials(o, cfg);
    if (st == CHOREO_OK)
        st = choreo__nats_set_tls(o, cfg);
    if (st != CHOREO_OK) {
        natsOptions_Destroy(o);
        return st;
    }
    tp->opts = o;
    return CHOREO_OK;
}

choreo_status choreo__transport_connect(choreo_transport **out, const choreo_config *cfg,
                                        const choreo_nats_watch *watch, const atomic_bool *stop,
                                        bool relay)
{
    choreo_transport *tp = calloc(1, sizeof *tp);
    if (!tp)
        return choreo__fail(CHOREO_ENOMEM, "out of memory connecting to NATS");
    const choreo_logger *log = watch->log;
    tp->log = log;
    tp->watch = watch;
    pthread_mutex_init(&tp->closed_lock, NULL);
    choreo__cond_init(&tp->closed_cond);
    choreo_status st = build_options(tp, cfg);
    if (st != CHOREO_OK)
        goto fail;
    char urls[512];
    choreo__redact_urls(cfg->nats_url, urls, sizeof urls);
    int64_t began = choreo__mono_us();
    for (int attempt = 1;; attempt++) {
        /* Each attempt within what is left of connect_wait_ms: a server
         * that takes the connection and never speaks would hold an attempt
         * for the whole connect timeout, past the limit. */
        if (cfg->connect_wait_ms > 0) {
            int64_t left = cfg->connect_wait_ms - (choreo__mono_us() - began) / 1000;
            if (left > CHOREO_NATS_TIMEOUT_MS)
                left = CHOREO_NATS_TIMEOUT_MS;
            natsOptions_SetTimeout(tp->opts, left < 1 ? 1 : left);
        }
        natsStatus s = choreo__nats_connect(&tp->nc, tp->opts, cfg);
        if (s == NATS_OK)
            break;
        if (choreo__nats_auth_failure(s)) {
            st = choreo__fail(CHOREO_EAUTH, "NATS at %s refused the credentials (%s): %s", urls,
                              choreo__nats_detail(s), choreo__nats_credentials_hint(cfg));
            goto fail;
        }
        if ((st = choreo__nats_tls_failure(s, cfg, urls)) != CHOREO_OK)
            goto fail;
        if (!choreo__nats_transient(s)) {
            st = choreo__nats_error(s, "connecting to NATS");
            goto fail;
        }
        int64_t waited_ms = (choreo__mono_us() - began) / 1000;
        if (cfg->connect_wait_ms > 0 && waited_ms >= cfg->connect_wait_ms) {
            st = choreo__fail(CHOREO_ENOSERVER,
                              "no NATS server reachable at %s after %lld ms: start nats-server "
                              "with JetStream (-js) or fix nats_url",
                              urls, (long long)waited_ms);
            goto fail;
        }
        if (attempt == 1 || attempt % 10 == 0)
            CHOREO_LOG(log, CHOREO_LOG_WARN, "NATS not reachable; retrying every second",
                       "url=%s attempt=%d hint=\"start nats-server -js or fix nats_url\" "
                       "err=\"%s\"",
                       urls, attempt, CHOREO_SAFE(choreo__nats_detail(s)));
        int64_t pause_ms = CHOREO_CONNECT_RETRY_MS;
        if (cfg->connect_wait_ms > 0 && cfg->connect_wait_ms - waited_ms < pause_ms)
            pause_ms = cfg->connect_wait_ms - waited_ms;
        for (int64_t slept = 0; slept < pause_ms && !atomic_load(stop); slept += CHOREO_STOP_SLICE_MS)
            choreo__sleep_ms(CHOREO_STOP_SLICE_MS);
        if (atomic_load(stop)) {
            st = choreo__fail(CHOREO_ENOSERVER,
                              "stopped while waiting for a NATS server at %s", urls);
            goto fail;
        }
    }
    /* The next connection (the relay's) and the reconnects wait as usual. */
    natsOptions_SetTimeout(tp->opts, CHOREO_NATS_TIMEOUT_MS);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = CHOREO_JS_API_WAIT_MS;
    natsStatus s = natsConnection_JetStream(&tp->js, tp->nc, &jo);
    if (s == NATS_OK && relay) {
        /* The relay publishes in batches: on a connection without SendAsap,
         * nats.c packs a batch into a few large writes instead of one
         * system call per event, and the relay flushes at the end of each
         * batch, so nothing waits for the library's flush timer. That
         * flush is a PING and its PONG, which cost a round of a row or two
         * more than the writes they save: those rounds go out on nc, where
         * every write is sent at once. */
        tp->pub_watch = *tp->watch;
        tp->pub_watch.second = true;
        natsOptions_SetSendAsap(tp->opts, false);
        natsOptions_SetDisconnectedCB(tp->opts, on_disconnected, &tp->pub_watch);
        natsOptions_SetReconnectedCB(tp->opts, on_reconnected, &tp->pub_watch);
        s = choreo__nats_connect(&tp->nc_pub, tp->opts, cfg);
        natsOptions_SetSendAsap(tp->opts, true);
        natsOptions_SetDisconnectedCB(tp->opts, on_disconnected, (void *)tp->watch);
        natsOptions_SetReconnectedCB(tp->opts, on_reconnected, (void *)tp->watch);
    }
    if (s != NATS_OK) {
        st = choreo__nats_error(s, "opening a JetStream context");
        goto fail;
    }
    CHOREO_LOG(log, CHOREO_LOG_INFO, "connected to NATS", "url=%s", urls);
    *out = tp;
    return CHOREO_OK;
fail:
    choreo__transport_close(tp);
    return st;
}

static bool covers(jsStreamInfo *si, const char *want)
{
    for (int i = 0; i < si->Config->SubjectsLen; i++) {
        const char *s = si->Config->Subjects[i];
        if (strcmp(s, want) == 0 || strcmp(s, ">") == 0)
            return true;
    }
    return false;
}

/* The inbox retention must outlive the stream's real max age, not only the
 * configured one (which applies only when this service creates the stream):
 * a mark pruned while its event is still in the stream lets a redelivery,
 * or a consumer recreated with DeliverAll, apply that event a second time. */
static choreo_status check_retention(const jsStreamInfo *si, const choreo_config *cfg)
{
    int64_t max_age_ns = si->Config->MaxAge, keep_s = cfg->inbox_retention_s;
    long long max_age_s = (long long)(max_age_ns / 1000000000LL);
    if (keep_s == 0)
        return CHOREO_OK; /* inbox marks are kept forever */
    if (max_age_ns <= 0)
        return choreo__fail(CHOREO_ECONFIG,
                            "stream %s keeps its messages forever (max age unlimited), but "
                            "inbox_retention_s=%lld forgets inbox marks after that many seconds: "
                            "an event still in the stream would then be applied twice; set "
                            "inbox_retention_s=0 to keep the marks, or give the stream a max age "
                            "below %lld s",
                            cfg->stream, (long long)keep_s, (long long)keep_s);
    if (keep_s * 1000000000LL <= max_age_ns)
        return choreo__fail(CHOREO_ECONFIG,
                            "stream %s keeps its messages for %lld s (its max age), but "
                            "inbox_retention_s=%lld forgets inbox marks no later: an event still "
                            "in the stream would then be applied twice; set inbox_retention_s "
                            "above %lld (or 0 to keep the marks), or lower the stream's max age "
                            "(stream_max_age_s applies only when a service creates the stream)",
                            cfg->stream, max_age_s, (long long)keep_s, max_age_s);
    return CHOREO_OK;
}

choreo_status choreo__transport_ensure_stream(choreo_transport *tp, const choreo_config *cfg,
                                             bool *made)
{
    if (made)
        *made = false;
    char subject[64];
    snprintf(subject, sizeof subject, "%s.>", cfg->prefix);
    for (int attempt = 0; attempt < 3; attempt++) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetStreamInfo(&si, tp->js, cfg->stream, NULL, &jerr);
        if (s == NATS_OK) {
            bool ok = covers(si, subject);
            choreo_status st = ok ? check_retention(si, cfg) : CHOREO_OK;
            if (st == CHOREO_OK && si->Config->MaxAge != cfg->stream_max_age_s * 1000000000LL)
                CHOREO_LOG(tp->log, CHOREO_LOG_INFO,
                           "the stream's own max age applies, not stream_max_age_s",
                           "stream=%s max_age_s=%lld stream_max_age_s=%lld", cfg->stream,
                           (long long)(si->Config->MaxAge / 1000000000LL),
                           (long long)cfg->stream_max_age_s);
            jsStreamInfo_Destroy(si);
            if (!ok)
                return choreo__fail(CHOREO_ESTREAM,
                                    "stream %s exists but does not cover subjects %s; choreo "
                                    "never changes an existing stream: pick another stream "
                                    "or prefix setting, or add the subject to the stream",
                                    cfg->stream, subject);
            return st;
        }
        if (s != NATS_NOT_FOUND)
            return js_error(s, jerr, "looking up the JetStream stream (is JetStream "
                                     "enabled on the server? start it with -js)");
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subjects[] = { subject };
        sc.Name = cfg->stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.MaxAge = cfg->stream_max_age_s * 1000000000LL;
        sc.Duplicates = cfg->stream_dup_window_s * 1000000000LL;
        sc.Replicas = cfg->stream_replicas;
        s = js_AddStream(&si, tp->js, &sc, NULL, &jerr);
        if (s == NATS_OK) {
            choreo_status st = check_retention(si, cfg);
            jsStreamInfo_Destroy(si);
            CHOREO_LOG(tp->log, CHOREO_LOG_INFO, "created stream", "stream=%s subjects=%s",
                       cfg->stream, subject);
            if (made)
                *made = true;
            return st;
        }
        if (js_unavailable(jerr))
            return js_error(s, jerr, "creating the JetStream stream");
        if (jerr == JSStreamReplicasNotSupportedErr)
            return choreo__fail(CHOREO_ECONFIG,
                                "cannot create stream %s with setting stream_replicas=%d: the "
                                "server runs alone, not in a cluster, and keeps one copy; set "
                                "stream_replicas=1, or give nats_url the servers of a cluster",
                                cfg->stream, (int)cfg->stream_replicas);
        if (jerr == JSStreamSubjectOverlapErr)
            return choreo__fail(CHOREO_ESTREAM,
                                "cannot create stream %s: another stream of the server already "
                                "takes subjects %s; set stream to that stream's name (the "
                                "services of one system share one stream), or pick another "
                                "prefix",
                                cfg->stream, subject);
        /* Another service may have created it meanwhile: look again. */
    }
    return choreo__nats_error(NATS_ERR, "creating the JetStream stream");
}

/* A consumer that has pull requests waiting is read by some process. The
 * requests of one that died are dropped as the server finds their
 * subscription gone (a consumer info looks), or expire: three looks tell a
 * live reader (requests on at least two) from a dead one. */
static bool consumer_idle(choreo_transport *tp, const choreo_config *cfg, const char *durable)
{
    /* A live reader sends its next pull request before the open one
     * expires, but one look can still fall in a moment without any (its
     * queue full, a request lost); the pull requests of a process that
     * died stay gone. Two looks without any say idle. */
    int idle = 0;
    for (int look = 0; look < 3 && idle < 2; look++) {
        choreo__sleep_ms(CHOREO_PULL_RENEW_MS + 100);
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, tp->js, cfg->stream, durable, NULL, NULL) != NATS_OK)
            return true;
        idle += ci->NumWaiting == 0;
        jsConsumerInfo_Destroy(ci);
    }
    return idle >= 2;
}

#define BINDING_PREFIX "choreo database "

void choreo__transport_bind(choreo_transport *tp, int64_t db_id)
{
    snprintf(tp->binding, sizeof tp->binding, BINDING_PREFIX "%016llx", (long long)db_id);
    tp->max_waiting = CHOREO_MAX_WAITING_BASE + (int)(db_id % CHOREO_MAX_WAITING_SPREAD);
}

/* The identity of the other database a consumer's description binds it
 * to, or NULL when it is bound to this one or to none. */
static const char *bound_elsewhere(const choreo_transport *tp, const char *description)
{
    const char *have = description ? description : "";
    if (!tp->binding[0] || strncmp(have, BINDING_PREFIX, strlen(BINDING_PREFIX)) != 0 ||
        strcmp(have, tp->binding) == 0)
        return NULL;
    return have + strlen(BINDING_PREFIX);
}

/* An existing durable consumer whose description binds it to another
 * database is refused, unless take_over_consumers is on (then logged, and
 * ensure_consumer binds it here); one that is not bound passes. */
static choreo_status check_binding(choreo_transport *tp, const choreo_config *cfg,
                                   const char *durable, const char *description)
{
    const char *other = bound_elsewhere(tp, description);
    if (!other)
        return CHOREO_OK;
    const char *mine = tp->binding + strlen(BINDING_PREFIX);
    char db[256];
    choreo__store_display(cfg->db, db, sizeof db);
    if (strcmp(cfg->take_over_consumers, "on") == 0) {
        CHOREO_LOG(tp->log, CHOREO_LOG_WARN,
                   "took over a durable consumer bound to another database "
                   "(take_over_consumers=on): events it acked there are not delivered here; "
                   "remove the setting once started",
                   "consumer=%s from_database=%s to_database=%s db=%s", durable, other, mine, db);
        return CHOREO_OK;
    }
    return choreo__fail(CHOREO_ELOCKED,
                        "the durable consumer %s is bound to another database (identity %s) "
                        "than this service's %s (identity %s): service %s ran on another "
                        "database file. Two databases under one service name would each apply "
                        "part of its events. Use that database; or, if it is lost for good and "
                        "this one replaces it, start once with take_over_consumers=on "
                        "(--take-over-consumers on)",
                        durable, other, db, mine, cfg->service);
}

choreo_status choreo__transport_still_bound(choreo_transport *tp, const choreo_config *cfg,
                                           const char *durable)
{
    bool exists = false;
    char other[64];
    choreo_status st = choreo__transport_consumer_binding(tp, cfg, durable, &exists, other,
                                                          sizeof other);
    if (st == CHOREO_OK && !exists)
        st = choreo__fail(CHOREO_ENOTFOUND, "the durable consumer %s is not on stream %s",
                          durable, cfg->stream);
    if (st != CHOREO_OK || !other[0])
        return st;
    char db[256];
    choreo__store_display(cfg->db, db, sizeof db);
    return choreo__fail(CHOREO_ELOCKED,
                        "the durable consumer %s was bound to another database (identity %s) "
                        "while service %s ran on %s (identity %s): a service on that "
                        "database took it over (take_over_consumers=on). Two databases would "
                        "each apply part of its events, so this one stops; run the service "
                        "on that database from now on",
                        durable, other, cfg->service, db, tp->binding + strlen(BINDING_PREFIX));
}

choreo_status choreo__transport_no_stream(const choreo_config *cfg)
{
    char urls[1024];
    choreo__redact_urls(cfg->nats_url, urls, sizeof urls);
    return choreo__fail(CHOREO_ENOTFOUND,
                        "no stream %s on the NATS server at %s: is that the service's server "
                        "(--nats-url) and stream (--stream)?",
                        cfg->stream, urls);
}

choreo_status choreo__transport_stream_check(choreo_transport *tp, const choreo_config *cfg)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, tp->js, cfg->stream, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    if (s != NATS_OK && jerr == JSStreamNotFoundErr)
        return choreo__transport_no_stream(cfg);
    return s == NATS_OK ? CHOREO_OK : choreo__nats_error(s, "reading the stream");
}

choreo_status choreo__transport_consumer_binding(choreo_transport *tp, const choreo_config *cfg,
                                                const char *durable, bool *exists, char *other,
                                                size_t cap)
{
    *exists = false;
    other[0] = '\0';
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, tp->js, cfg->stream, durable, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNotFoundErr)
        return choreo__transport_no_stream(cfg);
    if (s != NATS_OK && jerr == JSConsumerNotFoundErr)
        return CHOREO_OK;
    if (s != NATS_OK) {
        char what[256];
        snprintf(what, sizeof what, "reading the durable consumer %s", durable);
        return choreo__nats_error(s, what);
    }
    *exists = true;
    const char *elsewhere = bound_elsewhere(tp, ci->Config->Description);
    if (elsewhere)
        snprintf(other, cap, "%s", elsewhere);
    jsConsumerInfo_Destroy(ci);
    return CHOREO_OK;
}

/* The configuration of a durable consumer of this service. */
static void consumer_config(jsConsumerConfig *out, const choreo_transport *tp,
                            const choreo_config *cfg, const char *filter, const char *durable)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    /* The database the consumer's events are applied to. A create of a
     * durable consumer that exists already updates it on nats-server 2.9,
     * description and all, so of two instances on two databases that start
     * at once and both find it missing, the later create would rebind it
     * and both would run. Its MaxWaiting is the one setting an update
     * must keep, and it is made from the database's identity: the later
     * create is refused then, and looks again (find_or_create). */
    cc.Description = tp->binding[0] ? tp->binding : NULL;
    cc.MaxWaiting = tp->max_waiting;
    cc.AckPolicy = js_AckExplicit;
    /* Where a new consumer starts; an existing one keeps its position (the
     * server refuses to change a consumer's start). */
    if (cfg->consumer_start_ns == CHOREO_START_NEW) {
        cc.DeliverPolicy = js_DeliverNew;
    } else if (cfg->consumer_start_ns > 0) {
        /* nats.c 3.4.1 writes the fraction of a second without its leading
         * zeros (.016 goes out as .16, .000000005 as .5), which would start
         * the consumer late and skip events. A fraction below 0.1 s is
         * dropped: the consumer may begin up to 0.1 s early, never late. */
        int64_t frac = cfg->consumer_start_ns % 1000000000;
        cc.DeliverPolicy = js_DeliverByStartTime;
        cc.OptStartTime = cfg->consumer_start_ns - (frac < 100000000 ? frac : 0);
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    /* No limit on the server: choreo parks a message itself on its
     * max_deliver-th delivery, inside a transaction. With a server limit, a
     * crash or a failed commit on the last delivery would leave the event
     * neither applied nor parked, since the server never sends it again. */
    cc.MaxDeliver = -1;
    cc.AckWait = cfg->ack_wait_ms * 1000000LL;
    cc.MaxAckPending = cfg->max_ack_pending;
    cc.FilterSubject = filter;
    *out = cc;
}

/* Looks the durable consumer of cc up, and creates it when the server has
 * none: then *created is true and *existing NULL; else *existing is its
 * info (free it), also when a create failed because another process made
 * the consumer meanwhile. *action names the step that failed, for
 * consumer_error. */
static natsStatus find_or_create(choreo_transport *tp, const choreo_config *cfg,
                                 jsConsumerConfig *cc, jsConsumerInfo **existing,
                                 bool *created, jsErrCode *jerr, const char **action)
{
    *created = false;
    *action = "looking up";
    natsStatus s = js_GetConsumerInfo(existing, tp->js, cfg->stream, cc->Durable, NULL, jerr);
    if (s != NATS_NOT_FOUND)
        return s;
    *action = "creating";
    jsConsumerInfo *ci = NULL;
    s = js_AddConsumer(&ci, tp->js, cfg->stream, cc, NULL, jerr);
    jsConsumerInfo_Destroy(ci);
    *created = s == NATS_OK;
    if (s == NATS_OK || *jerr == 0)
        return s;
    /* Made by someone else since the look-up: take it as found. */
    natsStatus again = js_GetConsumerInfo(existing, tp->js, cfg->stream, cc->Durable, NULL, NULL);
    if (again != NATS_OK)
        return s;
    *action = "looking up";
    *jerr = 0;
    return NATS_OK;
}

static choreo_status consumer_error(natsStatus s, jsErrCode jerr, const char *action,
                                    const char *durable, const char *filter)
{
    char what[256];
    snprintf(what, sizeof what, "%s the durable consumer %s on %s (JetStream code %d)", action,
             durable, filter, (int)jerr);
    return js_error(s, jerr, what);
}

/* Brings an existing durable consumer in line with the configuration
 * (MaxDeliver, AckWait and MaxAckPending may change between deployments;
 * JetStream would otherwise refuse to bind with new values) after checking
 * its binding; with make, creates it when the server has none, and without,
 * sets *missing then and makes nothing. */
static choreo_status ensure_consumer(choreo_transport *tp, const choreo_config *cfg,
                                     const char *filter, const char *durable, bool make,
                                     bool *missing)
{
    jsConsumerConfig cc;
    consumer_config(&cc, tp, cfg, filter, durable);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    const char *action = "looking up";
    bool creating = false;
    natsStatus s;
    if (make) {
        s = find_or_create(tp, cfg, &cc, &ci, &creating, &jerr, &action);
    } else {
        s = js_GetConsumerInfo(&ci, tp->js, cfg->stream, durable, NULL, &jerr);
        if (s == NATS_NOT_FOUND) {
            *missing = true;
            return CHOREO_OK;
        }
    }
    if (s == NATS_OK && !creating) {
        choreo_status bound = check_binding(tp, cfg, durable, ci->Config->Description);
        if (bound != CHOREO_OK) {
            jsConsumerInfo_Destroy(ci);
            return bound;
        }
        /* Instances of a service on a shared PostgreSQL database read one
         * durable consumer together; on SQLite a reader is another process. */
        if (!choreo__store_is_postgres(cfg->db) && ci->NumWaiting > 0 &&
            !consumer_idle(tp, cfg, durable)) {
            jsConsumerInfo_Destroy(ci);
            return choreo__fail(CHOREO_ELOCKED,
                                "the durable consumer %s is being read by another process: "
                                "another instance of service %s is running, perhaps with "
                                "another database file; with SQLite a service runs as one "
                                "process: stop the other one, or give this one another "
                                "service name",
                                durable, cfg->service);
        }
        jsConsumerConfig *have = ci->Config;
        /* A consumer made before bindings, or bound elsewhere and taken
         * over (check_binding refused it otherwise), is bound here. */
        bool same = have->MaxDeliver == cc.MaxDeliver && have->AckWait == cc.AckWait &&
                    have->MaxAckPending == cc.MaxAckPending &&
                    strcmp(have->Description ? have->Description : "",
                           cc.Description ? cc.Description : "") == 0;
        cc.DeliverPolicy = have->DeliverPolicy;
        cc.OptStartTime = have->OptStartTime;
        cc.MaxWaiting = have->MaxWaiting;
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        if (!same) {
            action = "updating";
            s = js_UpdateConsumer(&ci, tp->js, cfg->stream, &cc, NULL, &jerr);
            if (s == NATS_OK)
                CHOREO_LOG(tp->log, CHOREO_LOG_INFO, "updated consumer settings",
                           "consumer=%s server_max_deliver=unlimited ack_wait_ms=%lld "
                           "max_ack_pending=%lld description=\"%s\"",
                           durable, (long long)cfg->ack_wait_ms,
                           (long long)cfg->max_ack_pending, CHOREO_SAFE(cc.Description));
        }
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return consumer_error(s, jerr, action, durable, filter);
    if (creating)
        CHOREO_LOG(tp->log, CHOREO_LOG_INFO, "created consumer", "consumer=%s start=%s",
                   durable, cfg->consumer_start);
    return CHOREO_OK;
}

/* Counts a JetStream object found gone and made again (object: 0 the
 * stream, 1 a durable consumer), where the service keeps metrics. */
static void count_remade(choreo_transport *tp, int object)
{
    if (tp->watch->metrics)
        atomic_fetch_add(&tp->watch->metrics->remade[object], 1);
}

choreo_status choreo__transport_consumer_restore(choreo_transport *tp, const choreo_config *cfg,
                                                const char *filter, const char *durable,
                                                bool *made)
{
    jsConsumerConfig cc;
    consumer_config(&cc, tp, cfg, filter, durable);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    const char *action;
    natsStatus s = find_or_create(tp, cfg, &cc, &ci, made, &jerr, &action);
    jsConsumerInfo_Destroy(ci);
    ci = NULL;
    if (s != NATS_OK && jerr == JSStreamNotFoundErr) {
        /* The stream went with it (deleted, or lost with a single
         * server's store): make it again, then the consumer. */
        choreo_status st = choreo__transport_stream_restore(tp, cfg);
        if (st != CHOREO_OK)
            return st;
        jerr = 0;
        s = find_or_create(tp, cfg, &cc, &ci, made, &jerr, &action);
        jsConsumerInfo_Destroy(ci);
    }
    if (s != NATS_OK)
        return consumer_error(s, jerr, action, durable, filter);
    if (*made) {
        count_remade(tp, 1);
        CHOREO_LOG(tp->log, CHOREO_LOG_ERROR,
                   "the durable consumer was gone from the server (deleted, or lost with the "
                   "broker's store); made it again from consumer_start: events still in the "
                   "stream come again, and the inbox drops those already applied",
                   "consumer=%s start=%s", durable, cfg->consumer_start);
    }
    return CHOREO_OK;
}

choreo_status choreo__transport_stream_restore(choreo_transport *tp, const choreo_config *cfg)
{
    bool made = false;
    choreo_status st = choreo__transport_ensure_stream(tp, cfg, &made);
    if (st == CHOREO_OK && made) {
        count_remade(tp, 0);
        CHOREO_LOG(tp->log, CHOREO_LOG_ERROR,
                   "the stream was gone from the server (deleted, or lost with a single "
                   "server's store); made it again: new events flow, but the events it held "
                   "that a consumer had not taken yet are gone (stream_replicas=3 on a cluster "
                   "keeps them)",
                   "stream=%s", cfg->stream);
    }
    return st;
}

/* A handler whose type has no event in the stream is most often a typo
 * (OrderComplete for OrderCompleted): say so once at start. It is only a
 * note, since the first such event may simply not have happened yet. */
static void note_if_no_events(choreo_transport *tp, const choreo_config *cfg,
                              const char *filter, const char *durable)
{
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&last, tp->js, cfg->stream, filter, NULL, &jerr);
    natsMsg_Destroy(last);
    if (s != NATS_NOT_FOUND)
        return;
    const char *type = filter + strlen(cfg->prefix) + 1;
    int len = (int)strcspn(type, ".");
    CHOREO_LOG(tp->log, CHOREO_LOG_INFO,
               "no event of this handler's type in the stream yet; if the type is misspelt, "
               "none will ever arrive",
               "type=%.*s consumer=%s stream=%s subjects=%s", len, type, durable, cfg->stream,
               filter);
}

/* Subscribes *sub (a plain, synchronous subscription) on nc to <inbox>.*,
 * where inbox is a new unique subject under nats_inbox_prefix. */
static natsStatus subscribe_inbox(natsConnection *nc, const choreo_config *cfg,
                                  natsSubscription **sub, char *inbox, size_t cap)
{
    natsInbox *unique = NULL;
    natsStatus s = natsInbox_Create(&unique);
    if (s == NATS_OK) {
        const char *id = strchr(unique, '.');
        snprintf(inbox, cap, "%s.%s", cfg->nats_inbox_prefix, id ? id + 1 : unique);
        char all[160];
        snprintf(all, sizeof all, "%s.*", inbox);
        s = natsConnection_SubscribeSync(sub, nc, all);
    }
    natsInbox_Destroy(unique);
    return s;
}

choreo_status choreo__transport_consumer_settle(choreo_transport *tp, const choreo_config *cfg,
                                                const char *filter, const char *durable,
                                                choreo_puller *out)
{
    out->missing = false;
    return ensure_consumer(tp, cfg, filter, durable, false, &out->missing);
}

choreo_status choreo__transport_pull_subscribe(choreo_transport *tp, const choreo_config *cfg,
                                               const char *filter, const char *durable,
                                               choreo_puller *out)
{
    choreo_status st =
        out->missing ? ensure_consumer(tp, cfg, filter, durable, true, NULL) : CHOREO_OK;
    if (st != CHOREO_OK)
        return st;
    note_if_no_events(tp, cfg, filter, durable);
    /* A plain subscription, not nats.c's pull subscription: its Fetch sends
     * a pull request per call, ended by the server once the messages there
     * are delivered, so at a trickle every event or two cost a request and
     * a 408 besides. The fetch thread keeps one request open instead. */
    snprintf(out->next_subject, sizeof out->next_subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             cfg->stream, durable);
    natsStatus s = subscribe_inbox(tp->nc, cfg, &out->sub, out->inbox, sizeof out->inbox);
    if (s != NATS_OK) {
        char what[256];
        snprintf(what, sizeof what, "subscribing to the answers of the durable consumer %s",
                 durable);
        return choreo__nats_error(s, what);
    }
    return CHOREO_OK;
}

choreo_status choreo__transport_ack_subscribe(choreo_transport *tp, const choreo_config *cfg,
                                              natsSubscription **sub, char *inbox, size_t cap)
{
    natsStatus s = subscribe_inbox(tp->nc_pub, cfg, sub, inbox, cap);
    /* nc_pub buffers: the subscription must be at the server before the
     * first publish whose PubAck it is to receive. */
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(tp->nc_pub, CHOREO_NATS_TIMEOUT_MS);
    if (s != NATS_OK) {
        natsSubscription_Destroy(*sub);
        *sub = NULL;
        return choreo__nats_error(s, "subscribing to the relay's PubAcks");
    }
    return CHOREO_OK;
}

natsStatus choreo__transport_pull(choreo_transport *tp, const choreo_puller *p, int64_t id,
                                  int batch, int64_t expires_ms)
{
    char reply[128], body[96];
    snprintf(reply, sizeof reply, "%s.%lld", p->inbox, (long long)id);
    int len = snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld}", batch,
                       (long long)expires_ms * 1000000LL);
    return natsConnection_PublishRequest(tp->nc, p->next_subject, reply, body, len);
}

void choreo__transport_answer(choreo_transport *tp, natsMsg *msg, enum choreo_js_answer a,
                              int64_t delay_ms)
{
    const char *reply = natsMsg_GetReply(msg);
    if (!reply || !*reply)
        return;
    char body[64];
    const char *what = a == JS_ACK           ? "+ACK"
                       : a == JS_IN_PROGRESS ? "+WPI"
                       : a == JS_TERM        ? "+TERM"
                                             : "-NAK";
    int len;
    if (a == JS_NAK && delay_ms > 0)
        len = snprintf(body, sizeof body, "-NAK {\"delay\":%lld}",
                       (long long)delay_ms * 1000000LL);
    else
        len = snprintf(body, sizeof body, "%s", what);
    /* An ack holds nothing up, so it goes out on the buffered connection,
     * where the acks of a batch leave in one write instead of a system call
     * each (the broker then reads them in one too). An ack that never
     * arrives, as a crash before the write, only brings the event again,
     * and the inbox takes it as a duplicate. */
    natsConnection *nc = a == JS_ACK && tp->nc_pub ? tp->nc_pub : tp->nc;
    natsConnection_Publish(nc, reply, body, len);
}

choreo_status choreo__transport_refused(choreo_transport *tp)
{
    natsConnection *conns[2] = { tp ? tp->nc : NULL, tp ? tp->nc_pub : NULL };
    for (int i = 0; i < 2; i++) {
        const char *detail = NULL;
        if (conns[i] && natsConnection_GetLastError(conns[i], &detail) == NATS_NOT_PERMITTED)
            return choreo__fail(CHOREO_EAUTH,
                                "NATS refused an operation this service needs: %s; the service's "
                                "NATS user lacks that permission: add it to the user's "
                                "permissions in the server's configuration (choreo-gen "
                                "--nats-permissions lists what each service needs)",
                                detail ? detail : "permissions violation");
    }
    return CHOREO_OK;
}

void choreo__transport_close(choreo_transport *tp)
{
    if (!tp)
        return;
    int connections = 0;
    if (tp->nc_pub) {
        natsConnection_Close(tp->nc_pub);
        connections++;
    }
    jsCtx_Destroy(tp->js);
    if (tp->nc) {
        natsConnection_Close(tp->nc);
        connections++;
    }
    wait_closed(tp, connections);
    natsConnection_Destroy(tp->nc_pub);
    natsConnection_Destroy(tp->nc);
    natsOptions_Destroy(tp->opts);
    pthread_cond_destroy(&tp->closed_cond);
    pthread_mutex_destroy(&tp->closed_lock);
    free(tp);
}
