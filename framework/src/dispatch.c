/* The dispatcher: one thread runs all user code. It takes whatever messages
 * are queued (up to batch_max) and applies them in one SQLite transaction, a
 * SAVEPOINT per message, so one fsync covers the whole batch; acks and
 * replies go out only after the COMMIT. Fetch threads (one per durable pull
 * consumer) and request callbacks only enqueue. */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "audit.h"
#include "dead.h"
#include "envelope.h"
#include "inbox.h"
#include "relay.h"
#include "status.h"
#include "tx.h"

#define FETCH_MAX 128
#define FETCH_WAIT_MS 200
#define RETRY_DELAY_MS 100

enum action { ACT_ACK, ACT_NAK, ACT_TERM, ACT_REPLY, ACT_NONE };

/* Counts of one batch, added to the service's statistics only once the
 * batch has committed, so that a counter never runs ahead of the database. */
struct tally {
    uint64_t handled, duplicates, retried, parked;
    int emitted;
};

struct outcome {
    enum action act;
    int64_t nak_delay_ms;
    choreo_reply reply;
};

static void *fetch_main(void *arg)
{
    choreo_route *rt = arg;
    choreo_service *svc = rt->svc;
    int64_t last_warn = 0;
    while (!atomic_load(&svc->stop)) {
        int want = choreo__queue_space(&svc->queue);
        if (want > FETCH_MAX)
            want = FETCH_MAX;
        if (want == 0) {
            choreo__sleep_ms(5);
            continue;
        }
        natsMsgList list = { 0 };
        natsStatus s = natsSubscription_Fetch(&list, rt->sub, want, FETCH_WAIT_MS, NULL);
        if (s != NATS_OK && s != NATS_TIMEOUT) {
            int64_t now = choreo__mono_us();
            if (now - last_warn > 5000000) {
                const char *detail = nats_GetLastError(NULL);
                CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "fetch failed; retrying",
                           "consumer=%s err=\"%s\"", rt->consumer,
                           CHOREO_SAFE(detail && *detail ? detail : natsStatus_GetText(s)));
                last_warn = now;
            }
            choreo__sleep_ms(100);
        }
        if (list.Count > 0)
            choreo__crashpoint(&svc->crash, CP_BETWEEN_FETCH_AND_DISPATCH);
        choreo_item items[FETCH_MAX];
        int64_t now = choreo__mono_us();
        for (int i = 0; i < list.Count; i++)
            items[i] = (choreo_item){ list.Msgs[i], ITEM_EVENT, (int)(rt - svc->routes), now };
        int taken = choreo__queue_push_many(&svc->queue, items, list.Count, &svc->stop);
        for (int i = 0; i < list.Count; i++) {
            if (i < taken)
                list.Msgs[i] = NULL; /* the queue owns it now */
            else
                natsMsg_Nak(list.Msgs[i], NULL); /* stopping: hand it back */
        }
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    choreo_request_route *rq = closure;
    choreo_service *svc = rq->svc;
    choreo_item it = { msg, ITEM_REQUEST, (int)(rq - svc->requests), choreo__mono_us() };
    if (!choreo__queue_push(&svc->queue, &it, &svc->stop))
        natsMsg_Destroy(msg); /* stopping: the requester times out and retries */
}

/* Exponential backoff for RETRY: base * 2^(attempt-1), capped, then reduced
 * by up to 25% at random so that retries of many messages spread out. */
static int64_t retry_delay_ms(choreo_service *svc, int64_t attempt)
{
    int64_t d = svc->cfg->retry_base_ms;
    for (int64_t i = 1; i < attempt && d < svc->cfg->retry_cap_ms; i++)
        d *= 2;
    if (d > svc->cfg->retry_cap_ms)
        d = svc->cfg->retry_cap_ms;
    uint64_t x = svc->jitter_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    svc->jitter_state = x;
    return d - (int64_t)(x % (uint64_t)(d / 4 + 1));
}

/* Parks a message inside the batch transaction, in its own savepoint. */
static enum action park(choreo_service *svc, const choreo_route *rt, natsMsg *msg,
                        const choreo_envelope *env, const char *reason, int64_t attempts,
                        struct tally *t)
{
    choreo_dead_row row = {
        .consumer = rt->consumer,
        .event_id = env && env->id[0] ? env->id : NULL,
        .event_type = env && env->type[0] ? env->type : NULL,
        .subject = natsMsg_GetSubject(msg),
        .body = (const uint8_t *)natsMsg_GetData(msg),
        .body_len = (size_t)natsMsg_GetDataLength(msg),
        .reason = reason,
        .attempts = attempts,
    };
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return ACT_NAK;
    if (choreo__dead_insert(svc->store, &row, choreo__now_ms()) != CHOREO_OK) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "cannot park a message; it will be redelivered",
                   "consumer=%s err=\"%s\"", rt->consumer, CHOREO_SAFE(choreo_last_error()));
        choreo__store_rollback_to(svc->store);
        return ACT_NAK;
    }
    if (choreo__store_release(svc->store) != CHOREO_OK)
        return ACT_NAK;
    t->parked++;
    CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "parked a message", "consumer=%s event=%s reason=\"%s\"",
               rt->consumer, row.event_id ? row.event_id : "-", CHOREO_SAFE(reason));
    return ACT_TERM;
}

/* Applies one event inside the open batch transaction. */
static enum action apply_event(choreo_service *svc, natsMsg *msg, const choreo_route *rt,
                               int64_t *nak_delay_ms, struct tally *t)
{
    jsMsgMetaData *meta = NULL;
    int64_t attempt = 1;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        attempt = (int64_t)meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    choreo_envelope env;
    const uint8_t *body = (const uint8_t *)natsMsg_GetData(msg);
    size_t len = (size_t)natsMsg_GetDataLength(msg);
    if (choreo__envelope_decode(&env, body, len, (size_t)svc->cfg->max_event_bytes) != CHOREO_OK)
        return park(svc, rt, msg, NULL, choreo_last_error(), attempt, t);
    if (strcmp(env.type, rt->type) != 0) {
        char reason[256];
        snprintf(reason, sizeof reason,
                 "envelope type %s does not match the subject's type %s", env.type, rt->type);
        return park(svc, rt, msg, &env, reason, attempt, t);
    }
    if (env.version < rt->min_version || env.version > rt->max_version) {
        char reason[200];
        snprintf(reason, sizeof reason,
                 "schema version %u of %s is not supported by this handler (it accepts %u..%u)",
                 env.version, env.type, rt->min_version, rt->max_version);
        return park(svc, rt, msg, &env, reason, attempt, t);
    }
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return ACT_NAK;
    bool fresh = svc->naive; /* naive mode has no inbox */
    if (!svc->naive &&
        choreo__inbox_mark(svc->store, rt->consumer, env.id, choreo__now_ms(), &fresh) != CHOREO_OK) {
        choreo__store_rollback_to(svc->store);
        return ACT_NAK;
    }
    if (!fresh) {
        choreo__store_release(svc->store);
        t->duplicates++;
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "duplicate delivery dropped by the inbox",
                   "consumer=%s event=%s saga=%s", rt->consumer, env.id, env.saga);
        return ACT_ACK;
    }
    if (attempt >= svc->cfg->max_deliver) {
        /* The last delivery JetStream will make: park it without running the
         * handler, so that a handler that crashes the process on this
         * message cannot crash-loop the service. */
        choreo__store_rollback_to(svc->store);
        char reason[160];
        snprintf(reason, sizeof reason,
                 "delivered %lld times without success (max_deliver); the handler was not "
                 "run on this last delivery",
                 (long long)attempt);
        return park(svc, rt, msg, &env, reason, attempt, t);
    }
    choreo_event ev = {
        .id = env.id, .type = env.type, .version = env.version, .saga = env.saga,
        .cause = env.cause, .source = env.src, .ts_ms = env.ts_ms,
        .data = env.data, .data_len = env.data_len, .attempt = (uint32_t)attempt,
    };
    choreo_tx tx = { .svc = svc, .st = svc->store, .ev = &ev,
                     .naive = svc->naive ? &svc->naive_batch : NULL };
    int naive_mark = svc->naive_batch.n;
    choreo_result res = rt->fn(&tx, &ev, rt->user);
    if (res == CHOREO_DONE && svc->audit &&
        choreo__audit_applied(svc->store, rt->consumer, env.type, env.id, env.saga,
                              choreo__now_ms()) != CHOREO_OK)
        res = CHOREO_RETRY;
    if (res == CHOREO_DONE && choreo__store_release(svc->store) != CHOREO_OK)
        res = CHOREO_RETRY; /* could not keep the work: roll it back, redeliver */
    if (res != CHOREO_DONE)
        choreo__naive_truncate(&svc->naive_batch, naive_mark);
    if (res == CHOREO_DONE) {
        t->emitted += tx.emitted;
        t->handled++;
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "handled", "consumer=%s event=%s saga=%s",
                   rt->consumer, env.id, env.saga);
        return ACT_ACK;
    }
    choreo__store_rollback_to(svc->store);
    if (res == CHOREO_RETRY) {
        t->retried++;
        *nak_delay_ms = retry_delay_ms(svc, attempt);
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO, "handler asked to retry",
                   "consumer=%s event=%s saga=%s attempt=%lld delay_ms=%lld reason=\"%s\"",
                   rt->consumer, env.id, env.saga, (long long)attempt, (long long)*nak_delay_ms,
                   CHOREO_SAFE(tx.reason));
        return ACT_NAK;
    }
    char reason[300];
    snprintf(reason, sizeof reason, "handler returned REJECT%s%s", tx.reason[0] ? ": " : "",
             tx.reason);
    return park(svc, rt, msg, &env, reason, attempt, t);
}

/* Runs one request handler inside the open batch transaction. */
static void apply_request(choreo_service *svc, natsMsg *msg, const choreo_request_route *rq,
                          struct outcome *out, struct tally *t)
{
    out->act = natsMsg_GetReply(msg) ? ACT_REPLY : ACT_NONE;
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return;
    choreo_tx tx = { .svc = svc, .st = svc->store,
                     .naive = svc->naive ? &svc->naive_batch : NULL };
    int naive_mark = svc->naive_batch.n;
    choreo_result res = rq->fn(&tx, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                               &out->reply, rq->user);
    if (res == CHOREO_DONE && choreo__store_release(svc->store) == CHOREO_OK) {
        t->emitted += tx.emitted;
        return;
    }
    choreo__naive_truncate(&svc->naive_batch, naive_mark);
    choreo__store_rollback_to(svc->store);
}

static void finish(choreo_service *svc, choreo_item *it, struct outcome *o, bool committed)
{
    natsMsg *msg = it->msg;
    if (it->kind == ITEM_REQUEST) {
        /* After a failed commit no reply is sent: the requester times out and
         * retries with its idempotency key. */
        if (committed && o->act == ACT_REPLY)
            natsConnection_Publish(svc->tp->nc, natsMsg_GetReply(msg), o->reply.data,
                                   (int)o->reply.len);
        free(o->reply.data);
    } else if (!committed) {
        natsMsg_NakWithDelay(msg, RETRY_DELAY_MS, NULL);
    } else if (o->act == ACT_ACK) {
        natsMsg_Ack(msg, NULL);
    } else if (o->act == ACT_TERM) {
        natsMsg_Term(msg, NULL);
    } else if (o->act == ACT_NAK) {
        natsMsg_NakWithDelay(msg, o->nak_delay_ms, NULL);
    }
    natsMsg_Destroy(msg);
}

static void run_batch(choreo_service *svc, choreo_item *items, struct outcome *out, int n)
{
    memset(out, 0, sizeof *out * (size_t)n);
    choreo_status s;
    for (int attempt = 0;; attempt++) {
        s = choreo__store_begin(svc->store);
        if (s == CHOREO_OK || atomic_load(&svc->stop) || attempt >= 20)
            break;
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "cannot begin a transaction; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        choreo__sleep_ms(100);
    }
    struct tally t = { 0 };
    if (s == CHOREO_OK) {
        for (int i = 0; i < n; i++) {
            if (i > 0)
                choreo__crashpoint(&svc->crash, CP_INSIDE_BATCH);
            out[i].nak_delay_ms = RETRY_DELAY_MS;
            if (items[i].kind == ITEM_EVENT)
                out[i].act = apply_event(svc, items[i].msg, &svc->routes[items[i].route],
                                         &out[i].nak_delay_ms, &t);
            else
                apply_request(svc, items[i].msg, &svc->requests[items[i].route], &out[i], &t);
        }
        s = choreo__store_commit(svc->store);
        if (s != CHOREO_OK)
            CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                       "commit failed; the batch will be redelivered", "n=%d err=\"%s\"", n,
                       CHOREO_SAFE(choreo_last_error()));
    } else {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "cannot begin a transaction; batch handed back",
                   "n=%d err=\"%s\"", n, CHOREO_SAFE(choreo_last_error()));
    }
    bool committed = s == CHOREO_OK;
    if (!committed)
        choreo__naive_truncate(&svc->naive_batch, 0);
    if (committed) {
        atomic_fetch_add(&svc->stats.batches, 1);
        atomic_fetch_add(&svc->stats.handled, t.handled);
        atomic_fetch_add(&svc->stats.duplicates, t.duplicates);
        atomic_fetch_add(&svc->stats.retried, t.retried);
        atomic_fetch_add(&svc->stats.parked, t.parked);
        choreo__crashpoint(&svc->crash, CP_AFTER_COMMIT_BEFORE_ACK);
        if (t.emitted > 0) {
            choreo__crashpoint(&svc->crash, CP_AFTER_COMMIT_BEFORE_PUBLISH);
            if (svc->naive_batch.n > 0 &&
                choreo__naive_publish(&svc->naive_batch, svc->tp->js) > 0)
                CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                           "naive delivery: publishing after commit failed; those events are lost",
                           NULL);
            choreo__relay_wake(svc->relay);
        }
    }
    for (int i = 0; i < n; i++)
        finish(svc, &items[i], &out[i], committed);
}

static void *dispatch_main(void *arg)
{
    choreo_service *svc = arg;
    int max = (int)svc->cfg->batch_max;
    choreo_item *items = calloc((size_t)max, sizeof *items);
    struct outcome *out = calloc((size_t)max, sizeof *out);
    if (!items || !out) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "out of memory starting the dispatcher", NULL);
        atomic_store(&svc->stop, true);
    }
    while (items && out && !atomic_load(&svc->stop)) {
        int n = choreo__queue_pop(&svc->queue, items, max, 50);
        if (n > 0)
            run_batch(svc, items, out, n);
    }
    free(items);
    free(out);
    atomic_store(&svc->dispatcher_done, true);
    return NULL;
}

choreo_status choreo__dispatch_start(choreo_service *svc)
{
    choreo_status s;
    for (int i = 0; i < svc->nroutes; i++) {
        choreo_route *rt = &svc->routes[i];
        s = choreo__transport_pull_subscribe(svc->tp, svc->cfg, rt->filter, rt->consumer, &rt->sub);
        if (s != CHOREO_OK)
            return s;
    }
    for (int i = 0; i < svc->nrequests; i++) {
        choreo_request_route *rq = &svc->requests[i];
        natsStatus ns = natsConnection_QueueSubscribe(&rq->sub, svc->tp->nc, rq->subject,
                                                      svc->cfg->service, on_request, rq);
        if (ns != NATS_OK)
            return choreo__nats_error(ns, "subscribing to a request subject");
    }
    if (pthread_create(&svc->dispatcher, NULL, dispatch_main, svc) != 0)
        return choreo__fail(CHOREO_ENOMEM, "cannot start the dispatcher thread");
    for (int i = 0; i < svc->nroutes; i++) {
        if (pthread_create(&svc->routes[i].fetcher, NULL, fetch_main, &svc->routes[i]) != 0) {
            atomic_store(&svc->stop, true);
            return choreo__fail(CHOREO_ENOMEM, "cannot start a fetch thread");
        }
        svc->routes[i].fetcher_started = true;
    }
    return CHOREO_OK;
}

void choreo__dispatch_join(choreo_service *svc)
{
    for (int i = 0; i < svc->nrequests; i++) {
        if (svc->requests[i].sub) {
            natsSubscription_Unsubscribe(svc->requests[i].sub);
            natsSubscription_Destroy(svc->requests[i].sub);
            svc->requests[i].sub = NULL;
        }
    }
    for (int i = 0; i < svc->nroutes; i++) {
        if (svc->routes[i].fetcher_started) {
            pthread_join(svc->routes[i].fetcher, NULL);
            svc->routes[i].fetcher_started = false;
        }
    }
    pthread_join(svc->dispatcher, NULL);
    /* Hand back what was fetched but not dispatched, for prompt redelivery. */
    choreo_item it;
    while (choreo__queue_pop(&svc->queue, &it, 1, 0) == 1) {
        if (it.kind == ITEM_EVENT)
            natsMsg_Nak(it.msg, NULL);
        natsMsg_Destroy(it.msg);
    }
    for (int i = 0; i < svc->nroutes; i++) {
        if (svc->routes[i].sub) {
            natsSubscription_Destroy(svc->routes[i].sub);
            svc->routes[i].sub = NULL;
        }
    }
}
