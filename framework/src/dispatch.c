/* The dispatcher: one thread runs all user code. It takes whatever messages
 * are queued (up to batch_max) and applies them in one SQLite transaction, a
 * SAVEPOINT per message, so one fsync covers the whole batch; acks and
 * replies go out only after the COMMIT. Fetch threads (one per durable pull
 * consumer) and request callbacks only enqueue.
 *
 * Who decides that a message is given up: choreo, not the server. The
 * durable consumers have no MaxDeliver on the server; the dispatcher parks
 * a message on its max_deliver-th delivery, in the batch transaction. When
 * that commit fails or the process dies first, the server simply delivers
 * the message again, so an event always ends applied or parked. */
#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "clock.h"
#include "dead.h"
#include "envelope.h"
#include "exporter.h"
#include "extras.h"
#include "inbox.h"
#include "nats_auth.h"
#include "relay.h"
#include "status.h"
#include "trace.h"
#include "tuning.h"
#include "tx.h"

enum action { ACT_ACK, ACT_NAK, ACT_TERM, ACT_REPLY, ACT_NONE };

/* Counts of one batch, added to the service's statistics only once the
 * batch has committed, so that a counter never runs ahead of the database. */
struct tally {
    uint64_t handled, duplicates, retried, parked;
    int emitted;
    bool last_delivery; /* an event on one of its last two deliveries */
};

struct outcome {
    enum action act;
    int64_t nak_delay_ms;
    choreo_reply reply;
};

/* One event being applied: what was read from the message, and the reason
 * text when it is parked. */
struct delivery {
    choreo_route *rt;
    natsMsg *msg;
    int64_t attempt;
    uint64_t stream_seq; /* its sequence in the stream, 0 when unknown */
    int64_t retried; /* the highest earlier delivery whose handler asked for a retry */
    bool operator_retry; /* published again by choreoctl dead retry for this consumer */
    int64_t retry_row;   /* then the choreo_dead row it retries, when it says (else 0) */
    bool decoded;
    choreo_envelope env;
    char trace[CHOREO_TRACEPARENT_SIZE]; /* its traceparent header, or "" */
    char reason[CHOREO_REASON_MAX];
};

/* The service whose dispatcher runs on this thread, if any. */
static _Thread_local const choreo_service *dispatcher_of;

bool choreo__dispatch_on_dispatcher(const choreo_service *svc)
{
    return dispatcher_of == svc;
}

/* A pull request of a fetch thread. Its statuses come on <inbox>.id; its
 * events carry their own subject, so which request brought an event is
 * not known, only how many all of them still owe. */
struct pull {
    int64_t id;      /* 0: none */
    int asked;
    int64_t ends_us; /* monotonic: when the server lets it expire */
};

/* What a fetch thread knows of its open pull requests. */
struct puller_state {
    struct pull req[CHOREO_PULL_OPEN_MAX];
    int owed;            /* events asked for and not yet come, over all requests */
    int64_t next_id;
    uint64_t reconnects; /* the service's count when the requests were sent */
    int64_t last_warn_us;
    int64_t look_at_us;  /* an answer said the consumer may be gone: when to look (0: no) */
    int64_t bound_at_us; /* when to read the consumer's binding next */
    uint64_t bound_reconnects; /* the service's count when it was last read */
};

/* Plans a look for the consumer CHOREO_CONSUMER_CHECK_MS from now, unless
 * one is planned already (look_for_consumer). */
static void plan_look(struct puller_state *ps, int64_t now)
{
    if (ps->look_at_us == 0)
        ps->look_at_us = now + CHOREO_CONSUMER_CHECK_MS * 1000;
}

static int pulls_open(const struct puller_state *ps)
{
    int open = 0;
    for (int i = 0; i < CHOREO_PULL_OPEN_MAX; i++)
        open += ps->req[i].id != 0;
    return open;
}

/* Ends request p: what it still owed (pending) will not come. */
static void pull_end(struct puller_state *ps, struct pull *p, int pending)
{
    p->id = 0;
    ps->owed -= pending;
    if (ps->owed < 0 || pulls_open(ps) == 0)
        ps->owed = 0;
}

static struct pull *pull_of(struct puller_state *ps, const choreo_route *rt, const natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    size_t n = strlen(rt->pull.inbox);
    if (strncmp(subj, rt->pull.inbox, n) != 0 || subj[n] != '.')
        return NULL;
    int64_t id = strtoll(subj + n + 1, NULL, 10);
    for (int i = 0; i < CHOREO_PULL_OPEN_MAX; i++)
        if (id > 0 && ps->req[i].id == id)
            return &ps->req[i];
    return NULL;
}

/* The status of a message that is an answer of the server about a pull
 * request rather than an event (no ack subject, no data, a Status header):
 * "408" when the request expired, "409" when it ended otherwise (its
 * consumer's leader changed, the consumer was deleted), "503" when nothing
 * answered it. NULL for an event, however odd its headers: every delivered
 * event has an ack subject, so none is taken for a status and left
 * unanswered. */
static const char *pull_status(natsMsg *m, const char **description)
{
    const char *status = NULL;
    const char *reply = natsMsg_GetReply(m);
    if ((reply && *reply) || natsMsg_GetDataLength(m) > 0 ||
        natsMsgHeader_Get(m, "Status", &status) != NATS_OK)
        return NULL;
    *description = NULL;
    natsMsgHeader_Get(m, "Description", description);
    return status;
}

/* Says (at most every CHOREO_FETCH_WARN_EVERY_US) that pulling failed;
 * electing when a cluster is most likely choosing the consumer's leader. */
static void warn_pull(choreo_service *svc, choreo_route *rt, struct puller_state *ps,
                      const char *detail, bool electing)
{
    int64_t now = choreo__mono_us();
    if (now - ps->last_warn_us <= CHOREO_FETCH_WARN_EVERY_US)
        return;
    CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
               electing ? "fetch failed: the consumer's leader changed or is being elected "
                          "(after a node's loss); retrying"
                        : "fetch failed; retrying",
               "consumer=%s err=\"%s\"", rt->consumer, detail);
    ps->last_warn_us = now;
}

/* Sends the next pull request when none is open, or the open ones owe
 * fewer than half a batch or are about to expire, and the queue has room
 * for what it asks. Returns false when it would have asked but the queue
 * had no room. */
static bool renew_pull(choreo_service *svc, choreo_route *rt, struct puller_state *ps,
                       int64_t now)
{
    uint64_t reconnects = atomic_load(&svc->metrics.reconnects);
    if (reconnects != ps->reconnects) {
        /* The server forgot the requests of the broken connection. */
        ps->reconnects = reconnects;
        memset(ps->req, 0, sizeof ps->req);
        ps->owed = 0;
    }
    struct pull *newest = NULL, *free_slot = NULL;
    for (int i = 0; i < CHOREO_PULL_OPEN_MAX; i++) {
        struct pull *p = &ps->req[i];
        if (p->id && ps->owed == 0)
            pull_end(ps, p, 0); /* served in full */
        else if (p->id && now > p->ends_us + CHOREO_PULL_GRACE_MS * 1000) {
            pull_end(ps, p, p->asked); /* lost: neither served nor ended; ask again */
            /* The consumer may be gone: nats-server answers nothing at
             * all to a pull for a consumer it does not have (deleted
             * while the service was disconnected or had no pull open, or
             * lost with the broker's store). Look for it too. */
            plan_look(ps, now);
        }
        if (!p->id)
            free_slot = p;
        else if (!newest || p->id > newest->id)
            newest = p;
    }
    if (!free_slot || (newest && newest->ends_us - now > CHOREO_PULL_RENEW_MS * 1000 &&
                       ps->owed >= CHOREO_FETCH_MAX / 2))
        return true;
    int waiting = 0, waiting_bytes = 0;
    natsSubscription_GetPending(rt->pull.sub, &waiting, &waiting_bytes);
    int want = choreo__queue_space(&svc->queue) - ps->owed - waiting;
    if (want > CHOREO_FETCH_MAX)
        want = CHOREO_FETCH_MAX;
    if (want < (newest ? CHOREO_FETCH_MAX / 4 : 1))
        return false; /* the dispatcher is behind: leave the events on the server */
    int64_t id = ++ps->next_id;
    natsStatus s = choreo__transport_pull(svc->tp, &rt->pull, id, want, CHOREO_PULL_EXPIRES_MS);
    if (s != NATS_OK) {
        warn_pull(svc, rt, ps, natsStatus_GetText(s), choreo__nats_electing(s, svc->cfg));
        return true;
    }
    *free_slot = (struct pull){ id, want, now + CHOREO_PULL_EXPIRES_MS * 1000 };
    ps->owed += want;
    return true;
}

/* Gives a fetched event back to the server at a stop, for the next
 * instance (CHOREO_HAND_BACK_DELAY_MS says why not at once). */
static void hand_back(choreo_service *svc, natsMsg *msg)
{
    choreo__transport_answer(svc->tp, msg, JS_NAK, CHOREO_HAND_BACK_DELAY_MS);
}

/* Queues the events in msgs; what the queue does not take (stopping) is
 * handed back. */
static void enqueue(choreo_service *svc, choreo_route *rt, natsMsg **msgs, int n)
{
    choreo_item items[CHOREO_FETCH_MAX];
    int64_t now = choreo__mono_us();
    for (int i = 0; i < n; i++)
        items[i] = (choreo_item){ msgs[i], ITEM_EVENT, (int)(rt - svc->routes), now };
    int taken = choreo__queue_push_many(&svc->queue, items, n, &svc->stop);
    for (int i = taken; i < n; i++) {
        hand_back(svc, msgs[i]);
        natsMsg_Destroy(msgs[i]);
    }
}

/* Takes one answer off the subscription: an event goes into msgs, a
 * status ends its request. Returns 1 for an event, 0 otherwise. */
static int take(choreo_service *svc, choreo_route *rt, struct puller_state *ps, natsMsg *m,
                natsMsg **msgs, int n)
{
    const char *description = NULL;
    const char *status = pull_status(m, &description);
    if (!status) {
        if (ps->owed > 0)
            ps->owed--;
        msgs[n] = m;
        return 1;
    }
    /* Every status ends its request (choreo asks for no heartbeats). An
     * expired or ended request says what it still owed; one that nothing
     * answered brought nothing. */
    struct pull *p = pull_of(ps, rt, m);
    if (p) {
        const char *pending = NULL;
        int owed = p->asked;
        if (natsMsgHeader_Get(m, "Nats-Pending-Messages", &pending) == NATS_OK)
            owed = atoi(pending);
        pull_end(ps, p, owed);
    }
    if (strncmp(status, "408", 3) != 0) {
        char detail[200];
        snprintf(detail, sizeof detail, "%s %s", status, description ? description : "");
        /* A consumer's new leader ends the requests its old one held with
         * "409 Leadership Change"; a request nothing answers gets a 503. */
        bool unanswered = strncmp(status, "503", 3) == 0;
        bool electing = strstr(detail, "Leadership Change") != NULL ||
                        (unanswered && choreo__nats_electing(NATS_NO_RESPONDERS, svc->cfg));
        /* A consumer deleted under an open pull ends it with "409
         * Consumer Deleted"; a 503 says nothing took the pull. */
        if (unanswered || strstr(detail, "Consumer Deleted"))
            plan_look(ps, choreo__mono_us());
        warn_pull(svc, rt, ps, detail, electing);
        if (strncmp(status, "409", 3) != 0)
            choreo__sleep_ms(CHOREO_FETCH_ERROR_PAUSE_MS); /* no leader, no consumer */
    }
    natsMsg_Destroy(m);
    return 0;
}

/* The durable consumer deleted on the server while the service runs would
 * leave its type unread for good, the service otherwise healthy. So a pull
 * answered as if the consumer were gone makes the fetch thread look, and
 * make it again as a start would (from consumer_start: the events still in
 * the stream come again and the inbox drops those already applied). It
 * looks a while after the answer, not at once: nats-server 2.9 answers the
 * pulls before it has finished the deletion, and once, under load, a
 * consumer of the same name made 3 ms after that answer made the deletion
 * report a failure. A 503 during a cluster's election finds the consumer
 * there and changes nothing. A consumer that went while no pull was open
 * gets no answer at all: the pulls that expire unanswered make it look as
 * well (renew_pull). */
static void look_for_consumer(choreo_service *svc, choreo_route *rt, struct puller_state *ps,
                              int64_t now)
{
    if (ps->look_at_us == 0 || now < ps->look_at_us)
        return;
    ps->look_at_us = 0;
    bool made = false;
    if (choreo__transport_consumer_restore(svc->tp, svc->cfg, rt->filter, rt->consumer,
                                           &made) != CHOREO_OK) {
        plan_look(ps, now); /* look again later */
        warn_pull(svc, rt, ps, CHOREO_SAFE(choreo_last_error()),
                  choreo__nats_electing(NATS_NO_RESPONDERS, svc->cfg));
        return;
    }
    if (made) {
        memset(ps->req, 0, sizeof ps->req); /* the old consumer's requests died with it */
        ps->owed = 0;
    }
}

/* When to read a consumer's binding next after a read at now (0: only
 * after a reconnect). */
static int64_t next_binding_read(const choreo_service *svc, int64_t now)
{
    return svc->cfg->binding_check_s > 0 ? now + svc->cfg->binding_check_s * 1000000LL : 0;
}

/* Reads the consumer's binding every binding_check_s and after each
 * reconnect. A service on another database may have taken the consumer
 * over while this one ran (take_over_consumers=on there); both would then
 * apply part of its events, each into its own inbox, so this service stops
 * itself: choreo_service_run returns CHOREO_ELOCKED. A binding that cannot
 * be read just now is read again CHOREO_CONSUMER_CHECK_MS later. */
static void check_bound(choreo_service *svc, choreo_route *rt, struct puller_state *ps,
                        int64_t now)
{
    uint64_t reconnects = atomic_load(&svc->metrics.reconnects);
    if (reconnects == ps->bound_reconnects && (ps->bound_at_us == 0 || now < ps->bound_at_us))
        return;
    ps->bound_reconnects = reconnects;
    ps->bound_at_us = next_binding_read(svc, now);
    choreo_status s = choreo__transport_still_bound(svc->tp, svc->cfg, rt->consumer);
    if (s == CHOREO_ELOCKED) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                   "stopping: a durable consumer of this service was taken over by a service "
                   "on another database",
                   "consumer=%s err=\"%s\"", rt->consumer, CHOREO_SAFE(choreo_last_error()));
        choreo__service_fail(svc, s);
    } else if (s != CHOREO_OK) {
        ps->bound_at_us = now + CHOREO_CONSUMER_CHECK_MS * 1000;
    }
}

/* Stopping: hands back what arrived and was not queued. The pull requests
 * still open at the server would go on taking events until the connection
 * closes, and those would wait out their AckWait before the next instance
 * saw them; so the subscription is drained first: once the server has its
 * UNSUB it sends them nothing more, and what it sent before comes ahead of
 * the flush's answer. With the broker away nothing can be handed back. */
static void hand_back_in_flight(choreo_service *svc, choreo_route *rt)
{
    bool draining = natsConnection_Status(svc->tp->nc) == NATS_CONN_STATUS_CONNECTED &&
                    natsSubscription_DrainTimeout(rt->pull.sub, CHOREO_STOP_DRAIN_MS) == NATS_OK;
    int64_t until = choreo__mono_us() + CHOREO_STOP_DRAIN_MS * 1000;
    for (;;) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, rt->pull.sub,
                                                draining ? CHOREO_STOP_SLICE_MS : 0);
        if (s == NATS_OK) {
            const char *description = NULL;
            if (!pull_status(m, &description))
                hand_back(svc, m);
            natsMsg_Destroy(m);
            continue;
        }
        if (!draining || !natsSubscription_IsValid(rt->pull.sub) || choreo__mono_us() >= until)
            return;
    }
}

/* Keeps a pull request open at the consumer and queues the events that
 * answer it, the ones that arrived together in one go. */
static void *fetch_main(void *arg)
{
    prctl(PR_SET_NAME, "choreo-fetch"); /* shown by top -H and perf */
    choreo_route *rt = arg;
    choreo_service *svc = rt->svc;
    struct puller_state ps = { .reconnects = atomic_load(&svc->metrics.reconnects) };
    ps.bound_reconnects = ps.reconnects; /* start has just read the binding */
    ps.bound_at_us = next_binding_read(svc, choreo__mono_us());
    natsMsg *msgs[CHOREO_FETCH_MAX];
    while (!atomic_load(&svc->stop)) {
        int64_t now = choreo__mono_us();
        look_for_consumer(svc, rt, &ps, now);
        check_bound(svc, rt, &ps, now);
        if (!renew_pull(svc, rt, &ps, now) && ps.owed == 0) {
            /* Nothing is on its way and the queue is full: wait for the
             * dispatcher to take from it, not for an answer. */
            choreo__queue_wait_space(&svc->queue, CHOREO_FETCH_MAX / 4, CHOREO_STOP_SLICE_MS);
            continue;
        }
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, rt->pull.sub, CHOREO_STOP_SLICE_MS);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            warn_pull(svc, rt, &ps, natsStatus_GetText(s), choreo__nats_electing(s, svc->cfg));
            choreo__sleep_ms(CHOREO_FETCH_ERROR_PAUSE_MS);
            continue;
        }
        int n = take(svc, rt, &ps, m, msgs, 0);
        while (n < CHOREO_FETCH_MAX &&
               natsSubscription_NextMsg(&m, rt->pull.sub, 0) == NATS_OK)
            n += take(svc, rt, &ps, m, msgs, n);
        if (n > 0) {
            choreo__extras_crash(&svc->extras, CP_BETWEEN_FETCH_AND_DISPATCH);
            enqueue(svc, rt, msgs, n);
        }
    }
    hand_back_in_flight(svc, rt);
    return NULL;
}

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    choreo_request_route *rq = closure;
    choreo_service *svc = rq->svc;
    choreo_item it = { msg, ITEM_REQUEST, (int)(rq - svc->requests), choreo__mono_us() };
    if (atomic_load(&svc->stop) || !choreo__queue_push(&svc->queue, &it, &svc->stop))
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

/* Parks the delivery with d->reason, inside the batch transaction in its
 * own savepoint. When the row cannot be written the message is handed back
 * and parked on a later delivery. */
static enum action park(choreo_service *svc, struct delivery *d, enum choreo_outcome why,
                        struct tally *t)
{
    const choreo_envelope *env = d->decoded ? &d->env : NULL;
    choreo_dead_row row = {
        .consumer = d->rt->consumer,
        .event_id = env && env->id[0] ? env->id : NULL,
        .event_type = env && env->type[0] ? env->type : NULL,
        .subject = natsMsg_GetSubject(d->msg),
        .body = (const uint8_t *)natsMsg_GetData(d->msg),
        .body_len = (size_t)natsMsg_GetDataLength(d->msg),
        .reason = d->reason,
        .attempts = d->attempt,
    };
    /* The row an operator's retry retries may still say parked: the retry
     * is published before its row is marked retried. Parked again, the
     * event needs a row of its own, or it would show as retried. */
    bool already = false;
    if (choreo__dead_is_parked(svc->store, row.consumer, row.event_id, row.body, row.body_len,
                               d->retry_row, &already) != CHOREO_OK)
        return ACT_NAK;
    if (already)
        return ACT_TERM; /* parked before; its Term was lost to a crash or a stop */
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return ACT_NAK;
    if (choreo__dead_insert(svc->store, &row, choreo__now_ms()) != CHOREO_OK ||
        (d->retried > 0 &&
         choreo__inbox_settled(svc->store, row.consumer, row.event_id) != CHOREO_OK)) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "cannot park a message; it will be redelivered",
                   "consumer=%s err=\"%s\"", d->rt->consumer, CHOREO_SAFE(choreo_last_error()));
        choreo__store_rollback_to(svc->store);
        return ACT_NAK;
    }
    if (choreo__store_release(svc->store) != CHOREO_OK)
        return ACT_NAK;
    t->parked++;
    int route = (int)(d->rt - svc->routes);
    choreo__mlog_add(&svc->batch_mlog, ML_HANDLED, route, why, 0);
    if (atomic_load_explicit(&d->rt->m.compensation, memory_order_relaxed))
        choreo__mlog_add(&svc->batch_mlog, ML_COMP_PARKED, route, 0, 0);
    CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "parked a message",
               "consumer=%s event=%s stream_seq=%llu subject=\"%s\" trace=%.32s reason=\"%s\"",
               d->rt->consumer, row.event_id ? row.event_id : "-",
               (unsigned long long)d->stream_seq, CHOREO_SAFE(row.subject),
               d->trace[0] ? d->trace + 3 : "-", CHOREO_SAFE(d->reason));
    return ACT_TERM;
}

/* Whether a delivery whose id the inbox has applied carries another event
 * than the one applied (its type, saga or data differ): a producer that
 * reused the id. Dropped as a duplicate, that event would be lost without a
 * word; d->reason says why it is parked instead. A mark from before digests
 * were kept, or a digest that cannot be read, counts as the same event. */
static bool reused_id(choreo_service *svc, struct delivery *d, int64_t digest)
{
    int64_t applied = 0;
    bool known = false;
    if (choreo__inbox_digest_of(svc->store, d->rt->consumer, d->env.id, &applied, &known) !=
            CHOREO_OK ||
        !known || applied == digest)
        return false;
    snprintf(d->reason, sizeof d->reason,
             "event id reused: this consumer already applied another event (a different type, "
             "saga or data) under id %s, so this one cannot be applied; give every event a "
             "new id in its producer, then drop this message (choreoctl dead drop)",
             d->env.id);
    return true;
}

enum verdict { GO, PARK, SKIP };

/* A batch that did not commit forgets everything its handlers added
 * besides rows: naive events, metric notes and outbox copies. (A single
 * handler's work is undone to its tx's mark: choreo__tx_undo.) */
static void forget_batch(choreo_service *svc)
{
    choreo__extras_rolled_back(&svc->extras.batch, 0);
    choreo__mlog_truncate(&svc->batch_mlog, 0);
    choreo__outbox_copies_truncate(&svc->batch_copies, 0);
}

/* Stage 1: reads the delivery count and the envelope, and checks that this
 * handler may take the event. */
static enum verdict read_delivery(choreo_service *svc, struct delivery *d)
{
    jsMsgMetaData *meta = NULL;
    d->attempt = 1;
    if (natsMsg_GetMetaData(&meta, d->msg) == NATS_OK) {
        d->attempt = (int64_t)meta->NumDelivered;
        d->stream_seq = meta->Sequence.Stream;
        /* The stream's timestamp is the server's clock: a redelivery would
         * add its wait, and hosts whose clocks differ their difference. */
        if (d->attempt == 1) {
            int64_t waited_us = choreo__now_us() - meta->Timestamp / 1000;
            choreo__hist_observe(&d->rt->m.delivery, HIST_SECONDS, waited_us > 0 ? waited_us : 0);
        }
        jsMsgMetaData_Destroy(meta);
    }
    const char *retry_for = NULL;
    if (natsMsgHeader_Get(d->msg, CHOREO_HDR_RETRY_FOR, &retry_for) == NATS_OK && retry_for) {
        if (strcmp(retry_for, d->rt->consumer) != 0) {
            /* Meant for another consumer; one named for another type than
             * the subject's never gets it, so no one would apply it. */
            size_t n = strlen(retry_for), t = strlen(d->rt->type);
            if (n <= t || retry_for[n - t - 1] != '_' || strcmp(retry_for + n - t, d->rt->type))
                CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                           "a retry names a consumer that cannot receive its type; no consumer "
                           "applies it",
                           "consumer=%s retry_for=\"%s\" subject=\"%s\"", d->rt->consumer,
                           CHOREO_SAFE(retry_for), CHOREO_SAFE(natsMsg_GetSubject(d->msg)));
            return SKIP;
        }
        d->operator_retry = true;
        const char *row = NULL;
        if (natsMsgHeader_Get(d->msg, CHOREO_HDR_RETRY_ROW, &row) == NATS_OK && row)
            d->retry_row = strtoll(row, NULL, 10);
    }
    const char *trace = NULL;
    if (natsMsgHeader_Get(d->msg, CHOREO_HDR_TRACEPARENT, &trace) == NATS_OK &&
        choreo__traceparent_valid(trace))
        snprintf(d->trace, sizeof d->trace, "%s", trace);
    const uint8_t *body = (const uint8_t *)natsMsg_GetData(d->msg);
    size_t len = (size_t)natsMsg_GetDataLength(d->msg);
    if (choreo__envelope_decode(&d->env, body, len, (size_t)svc->cfg->max_event_bytes) !=
        CHOREO_OK) {
        snprintf(d->reason, sizeof d->reason, "%s", choreo_last_error());
        return PARK;
    }
    d->decoded = true;
    if (strcmp(d->env.type, d->rt->type) != 0) {
        snprintf(d->reason, sizeof d->reason,
                 "envelope type %s does not match the subject's type %s", d->env.type,
                 d->rt->type);
        return PARK;
    }
    /* The subject is <prefix>.<Type>.<saga>: choreoctl saga finds a saga's
     * events by their subjects, the barrier and the handler by the
     * envelope, so the two must agree. */
    const char *subject = natsMsg_GetSubject(d->msg);
    const char *dot = subject ? strrchr(subject, '.') : NULL;
    if (!dot || strcmp(dot + 1, d->env.saga) != 0) {
        snprintf(d->reason, sizeof d->reason,
                 "envelope saga %s does not match the subject's saga %.64s", d->env.saga,
                 dot ? dot + 1 : "(none)");
        return PARK;
    }
    if (d->env.version < d->rt->min_version || d->env.version > d->rt->max_version) {
        snprintf(d->reason, sizeof d->reason,
                 "schema version %u of %s is not supported by this handler (it accepts %u..%u)",
                 d->env.version, d->env.type, d->rt->min_version, d->rt->max_version);
        return PARK;
    }
    return GO;
}

/* Whether res is one of the three results a handler may return. */
static bool known_result(choreo_result res)
{
    return res == CHOREO_DONE || res == CHOREO_RETRY || res == CHOREO_REJECT;
}

/* Stage 3: runs the handler in the open savepoint and keeps or undoes its
 * work. Returns the handler's result, RETRY when its work could not be kept;
 * a value that is none of the three comes back as it was, undone as a RETRY
 * is, with a reason that names it. */
static choreo_result run_handler(choreo_service *svc, struct delivery *d, struct tally *t)
{
    const choreo_envelope *env = &d->env;
    choreo_event ev = {
        .id = env->id, .type = env->type, .version = env->version, .saga = env->saga,
        .cause = env->cause, .source = env->src, .ts_ms = env->ts_ms,
        .data = env->data, .data_len = env->data_len, .attempt = (uint32_t)d->attempt,
        .traceparent = d->trace,
    };
    choreo_route *rt = d->rt;
    choreo_tx tx = { .svc = svc, .st = svc->store, .ev = &ev, .naive = &svc->extras.batch,
                     .route = (int)(rt - svc->routes), .mlog = &svc->batch_mlog,
                     .copies = &svc->batch_copies };
    choreo_tx_mark mark = choreo__tx_mark(&tx);
    choreo_result res;
    if (choreo__extras_before_handler(&svc->extras, env->id, d->attempt, svc->cfg->max_deliver)) {
        res = CHOREO_RETRY;
        snprintf(tx.reason, sizeof tx.reason, "a fault injected for testing (retry_until_last)");
    } else {
        int64_t began = choreo__mono_us();
        res = rt->fn(&tx, &ev, rt->user);
        choreo__hist_observe(&rt->m.handler, HIST_SECONDS, choreo__mono_us() - began);
    }
    if (res == CHOREO_DONE &&
        (choreo__extras_applied(&svc->extras, svc->store, d->rt->consumer, &ev) != CHOREO_OK ||
         choreo__store_release(svc->store) != CHOREO_OK))
        res = CHOREO_RETRY; /* could not keep the work: roll it back, redeliver */
    if (res == CHOREO_DONE) {
        t->emitted += tx.emitted;
        return res;
    }
    /* A handler that gives no reason often returns after a statement that
     * failed (a missing table): that error says why. */
    const char *failure = tx.reason[0] ? NULL : choreo__store_last_failure(svc->store);
    if (failure)
        snprintf(tx.reason, sizeof tx.reason, "no reason given; the database's last error: %s",
                 failure);
    choreo__tx_undo(&tx, mark);
    choreo__store_rollback_to(svc->store);
    if (res == CHOREO_REJECT)
        snprintf(d->reason, sizeof d->reason, "handler returned REJECT%s%s",
                 tx.reason[0] ? ": " : "", tx.reason);
    else if (!known_result(res))
        snprintf(d->reason, sizeof d->reason,
                 "handler returned %d, which is not CHOREO_DONE, CHOREO_RETRY or CHOREO_REJECT%s%s",
                 (int)res, tx.reason[0] ? ": " : "", tx.reason);
    else
        snprintf(d->reason, sizeof d->reason, "%s", tx.reason);
    return res;
}

/* Keeps the count of a delivery whose handler asked for a retry, in its own
 * savepoint of the batch. Without it (a full disk) the server's count is
 * still there, so the retry goes ahead either way. */
static void keep_retried(choreo_service *svc, const struct delivery *d)
{
    if (choreo__extras_skip_inbox(&svc->extras))
        return;
    choreo_status s = choreo__store_savepoint(svc->store);
    if (s == CHOREO_OK) {
        s = choreo__inbox_retried(svc->store, d->rt->consumer, d->env.id, d->attempt,
                                  choreo__now_ms(), d->reason);
        if (s == CHOREO_OK)
            s = choreo__store_release(svc->store);
        else
            choreo__store_rollback_to(svc->store);
    }
    if (s != CHOREO_OK)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "cannot keep the count of a retried delivery",
                   "consumer=%s event=%s err=\"%s\"", d->rt->consumer, d->env.id,
                   CHOREO_SAFE(choreo_last_error()));
}

/* The reason of a park on the max_deliver-th delivery, where the handler
 * does not run: with the reason the handler gave when it last asked for a
 * retry, which is what an operator needs to fix. */
static void last_retry_reason(choreo_service *svc, struct delivery *d)
{
    char last[CHOREO_REASON_MAX] = "";
    if (d->retried > 0 &&
        choreo__inbox_retry_reason(svc->store, d->rt->consumer, d->env.id, last, sizeof last) !=
            CHOREO_OK)
        snprintf(last, sizeof last, "(cannot read it: %s)", CHOREO_SAFE(choreo_last_error()));
    const char *why = d->retried == 0 ? "; no delivery before it ended in a retry (the process "
                                        "stopped, the database failed the event's writes, or "
                                        "the batch could not commit, each time: the log says "
                                        "which)"
                      : last[0]    ? "; the handler's last retry said: "
                                   : "; the handler's last retry gave no reason";
    snprintf(d->reason, sizeof d->reason,
             "delivered %lld times without success (max_deliver); the handler was not run on "
             "this last delivery%s%.200s",
             (long long)d->attempt, why, d->retried > 0 ? last : "");
}

/* A write of choreo's own for this event failed while the batch goes on (a
 * revoked privilege, or on PostgreSQL a full disk, which fails the
 * statement rather than the commit): said in the log, undone with the
 * event's savepoint when one is open, and the event comes back after the
 * retry backoff of its delivery, as from a batch that could not commit,
 * instead of at once, which spent max_deliver in seconds. */
static enum action store_failed(choreo_service *svc, const struct delivery *d, const char *what,
                                bool in_savepoint, int64_t *nak_delay_ms)
{
    *nak_delay_ms = retry_delay_ms(svc, d->attempt);
    CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "cannot write what choreo keeps of an event; it comes "
               "back later", "consumer=%s event=%s saga=%s writing=\"%s\" attempt=%lld "
               "delay_ms=%lld err=\"%s\"", d->rt->consumer, d->env.id, d->env.saga, what,
               (long long)d->attempt, (long long)*nak_delay_ms, CHOREO_SAFE(choreo_last_error()));
    if (in_savepoint)
        choreo__store_rollback_to(svc->store);
    return ACT_NAK;
}

/* Applies one event inside the open batch transaction: read it, claim it in
 * the inbox, park it on its last delivery, or run its handler. */
static enum action apply_event(choreo_service *svc, natsMsg *msg, choreo_route *rt,
                               int64_t *nak_delay_ms, struct tally *t)
{
    struct delivery d = { .rt = rt, .msg = msg };
    enum verdict v = read_delivery(svc, &d);
    if (d.attempt >= svc->cfg->max_deliver - 1)
        t->last_delivery = true;
    if (v == SKIP)
        return ACT_ACK;
    if (v == PARK)
        return park(svc, &d, OUT_PARKED, t);

    /* Stage 2: the inbox. A duplicate is acked without running anything;
     * another event under an applied one's id is parked. */
    int64_t digest = choreo__inbox_digest(d.env.type, d.env.saga, d.env.data, d.env.data_len);
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return store_failed(svc, &d, "a savepoint", false, nak_delay_ms);
    bool fresh = true, parked = false;
    if (!choreo__extras_skip_inbox(&svc->extras) &&
        (choreo__extras_mark_fail(&svc->extras) != CHOREO_OK ||
         choreo__inbox_mark(svc->store, rt->consumer, d.env.id, digest, choreo__now_ms(),
                            &fresh, &d.retried, &parked) != CHOREO_OK))
        return store_failed(svc, &d, "its inbox mark", true, nak_delay_ms);
    int route = (int)(rt - svc->routes);
    if (!fresh && reused_id(svc, &d, digest)) {
        choreo__store_release(svc->store);
        return park(svc, &d, OUT_PARKED, t);
    }
    if (!fresh) {
        choreo__store_release(svc->store);
        t->duplicates++;
        choreo__mlog_add(&svc->batch_mlog, ML_HANDLED, route, OUT_DUPLICATE, 0);
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "duplicate delivery dropped by the inbox",
                   "consumer=%s event=%s saga=%s", rt->consumer, d.env.id, d.env.saga);
        return ACT_ACK;
    }
    if (parked && !d.operator_retry) {
        /* Parked for this consumer already (or dropped after): a copy the
         * server sent again, after a Term lost to a crash or with a count
         * that went back. Only choreoctl dead retry runs the handler on it
         * again. */
        choreo__store_rollback_to(svc->store);
        t->duplicates++;
        choreo__mlog_add(&svc->batch_mlog, ML_HANDLED, route, OUT_DUPLICATE, 0);
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO,
                   "a delivery of an event parked (or dropped) for this consumer; "
                   "terminated without running the handler (choreoctl dead retry runs it)",
                   "consumer=%s event=%s saga=%s server_count=%lld", rt->consumer, d.env.id,
                   d.env.saga, (long long)d.attempt);
        return ACT_TERM;
    }
    if (d.retried >= d.attempt) {
        /* The server counts this delivery lower than one whose handler
         * already ran (see inbox.c): count on from that one instead. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO,
                   "the server's delivery count went back; counting on from choreo's own",
                   "consumer=%s event=%s saga=%s server_count=%lld attempt=%lld", rt->consumer,
                   d.env.id, d.env.saga, (long long)d.attempt, (long long)d.retried + 1);
        d.attempt = d.retried + 1;
        if (d.attempt >= svc->cfg->max_deliver - 1)
            t->last_delivery = true;
    }
    if (d.attempt >= svc->cfg->max_deliver) {
        /* Parked without running the handler, so that a handler that
         * crashes the process on this message cannot crash-loop the service. */
        choreo__store_rollback_to(svc->store);
        last_retry_reason(svc, &d);
        return park(svc, &d, OUT_PARKED, t);
    }
    /* Forgotten with the mark's savepoint: undone when the handler retries. */
    if (d.retried > 0 && choreo__inbox_settled(svc->store, rt->consumer, d.env.id) != CHOREO_OK)
        return store_failed(svc, &d, "its retry count", true, nak_delay_ms);

    /* A retry published without choreoctl (or whose row choreoctl could not
     * mark) leaves no row saying parked once applied: undone with the
     * savepoint when the handler does not finish. */
    if (parked && choreo__dead_settle(svc->store, rt->consumer, d.env.id,
                                      choreo__now_ms()) != CHOREO_OK)
        return store_failed(svc, &d, "its parked row's status", true, nak_delay_ms);

    choreo_result res = run_handler(svc, &d, t);
    if (res == CHOREO_DONE) {
        t->handled++;
        choreo__mlog_add(&svc->batch_mlog, ML_HANDLED, route, OUT_DONE, 0);
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "handled",
                   "consumer=%s event=%s saga=%s trace=%.32s", rt->consumer, d.env.id,
                   d.env.saga, d.trace[0] ? d.trace + 3 : "-");
        return ACT_ACK;
    }
    if (res == CHOREO_REJECT)
        return park(svc, &d, OUT_REJECT, t);
    /* Any other value is a bug in the handler. It is retried as a RETRY
     * is, so that nothing is lost and a fixed handler, once deployed,
     * applies the event; until then it ends parked with the reason. */
    bool bug = res != CHOREO_RETRY;
    t->retried++;
    keep_retried(svc, &d);
    choreo__mlog_add(&svc->batch_mlog, ML_HANDLED, route, OUT_RETRY, 0);
    *nak_delay_ms = retry_delay_ms(svc, d.attempt);
    CHOREO_LOG(&svc->log, bug ? CHOREO_LOG_ERROR : CHOREO_LOG_INFO,
               bug ? "handler returned an unknown result; its work is rolled back and the event "
                     "retried: fix the handler"
                   : "handler asked to retry",
               "consumer=%s event=%s saga=%s trace=%.32s attempt=%lld delay_ms=%lld "
               "reason=\"%s\"",
               rt->consumer, d.env.id, d.env.saga, d.trace[0] ? d.trace + 3 : "-",
               (long long)d.attempt,
               (long long)*nak_delay_ms, CHOREO_SAFE(d.reason));
    return ACT_NAK;
}

/* Runs one request handler inside the open batch transaction. */
static void apply_request(choreo_service *svc, natsMsg *msg, const choreo_request_route *rq,
                          struct outcome *out, struct tally *t)
{
    /* Without its savepoint the handler does not run: no reply, so that the
     * requester times out and asks again rather than read an empty reply as
     * done. */
    out->act = ACT_NONE;
    if (choreo__store_savepoint(svc->store) != CHOREO_OK)
        return;
    out->act = natsMsg_GetReply(msg) ? ACT_REPLY : ACT_NONE;
    int route = (int)(rq - svc->requests);
    choreo_tx tx = { .svc = svc, .st = svc->store, .naive = &svc->extras.batch, .route = -1,
                     .mlog = &svc->batch_mlog, .copies = &svc->batch_copies };
    /* The limit choreo_reply_set holds the reply to, the one choreo_tx_emit
     * holds events to: both connections go to the same servers. */
    out->reply.max_len = atomic_load(&svc->max_payload);
    choreo_tx_mark mark = choreo__tx_mark(&tx);
    int64_t began = choreo__mono_us();
    choreo_result res = rq->fn(&tx, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg),
                               &out->reply, rq->user);
    choreo__hist_observe(&svc->requests[route].m.duration, HIST_SECONDS,
                         choreo__mono_us() - began);
    bool bug = !known_result(res);
    if (bug) {
        /* A bug in the handler: handled as a RETRY, which loses nothing. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                   "request handler returned an unknown result; its work is rolled back and "
                   "no reply is sent: fix the handler",
                   "request=%s reason=\"handler returned %d, which is not CHOREO_DONE, "
                   "CHOREO_RETRY or CHOREO_REJECT\"",
                   natsMsg_GetSubject(msg), (int)res);
        res = CHOREO_RETRY;
    }
    bool kept = res == CHOREO_DONE && choreo__store_release(svc->store) == CHOREO_OK;
    if (kept) {
        t->emitted += tx.emitted;
        choreo__mlog_add(&svc->batch_mlog, ML_REQUEST, route, REQ_DONE, 0);
        return;
    }
    if (res == CHOREO_DONE)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "a request's work could not be kept; it is rolled back and no reply is "
                   "sent: the requester times out and asks again",
                   "request=%s err=\"%s\"", natsMsg_GetSubject(msg),
                   CHOREO_SAFE(choreo_last_error()));
    else if (res == CHOREO_RETRY && !bug)
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO,
                   "request handler asked to retry; its work is rolled back and no reply is "
                   "sent: the requester times out and asks again",
                   "request=%s reason=\"%s\"", natsMsg_GetSubject(msg), tx.reason);
    else if (res == CHOREO_REJECT)
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "request rejected; its work is rolled back",
                   "request=%s reason=\"%s\"", natsMsg_GetSubject(msg), tx.reason);
    choreo__tx_undo(&tx, mark);
    choreo__store_rollback_to(svc->store);
    choreo__mlog_add(&svc->batch_mlog, ML_REQUEST, route,
                     res == CHOREO_REJECT ? REQ_REJECT : REQ_RETRY, 0);
    if (res != CHOREO_REJECT)
        out->act = ACT_NONE; /* RETRY: no reply, the requester times out and asks again */
}

/* The delay before a message of a batch that could not begin or commit
 * comes back: the RETRY backoff of its delivery count, so that a database
 * that stays locked or a disk that stays full for a while uses up few of
 * the max_deliver deliveries before the handler ever ran. */
static int64_t redeliver_delay_ms(choreo_service *svc, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return CHOREO_REDELIVER_DELAY_MS;
    int64_t attempt = (int64_t)meta->NumDelivered;
    jsMsgMetaData_Destroy(meta);
    return retry_delay_ms(svc, attempt);
}

/* Publishes a request's reply after the commit. choreo_reply_set refused a
 * reply over max_payload, but a reconnect to a server with a lower limit,
 * or a closed connection, can still refuse it here: the handler's work is
 * committed and the requester will only time out, so it is said. */
static void send_reply(choreo_service *svc, natsMsg *msg, const choreo_reply *reply)
{
    natsStatus ns = natsConnection_Publish(svc->tp->nc, natsMsg_GetReply(msg), reply->data,
                                           (int)reply->len);
    if (ns != NATS_OK)
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                   "cannot send a request's reply; the handler's work is committed and the "
                   "requester will time out",
                   "request=%s reply_bytes=%zu err=\"%s\"", natsMsg_GetSubject(msg), reply->len,
                   CHOREO_SAFE(choreo__nats_detail(ns)));
}

static void finish(choreo_service *svc, choreo_item *it, struct outcome *o, bool committed)
{
    natsMsg *msg = it->msg;
    if (it->kind == ITEM_REQUEST) {
        /* After a failed commit no reply is sent: the requester times out and
         * retries with its idempotency key. */
        if (committed && o->act == ACT_REPLY)
            send_reply(svc, msg, &o->reply);
        free(o->reply.data);
        o->reply.data = NULL;
    } else if (!committed) {
        choreo__transport_answer(svc->tp, msg, JS_NAK, redeliver_delay_ms(svc, msg));
    } else if (o->act == ACT_ACK) {
        choreo__transport_answer(svc->tp, msg, JS_ACK, 0);
    } else if (o->act == ACT_TERM) {
        choreo__transport_answer(svc->tp, msg, JS_TERM, 0);
    } else if (o->act == ACT_NAK) {
        choreo__transport_answer(svc->tp, msg, JS_NAK, o->nak_delay_ms);
    }
    natsMsg_Destroy(msg);
}

/* BEGIN, retried while the database stays locked. */
static choreo_status begin_batch(choreo_service *svc)
{
    choreo_status s;
    for (int attempt = 1;; attempt++) {
        s = choreo__store_begin(svc->store);
        if (s == CHOREO_OK || atomic_load(&svc->stop) || attempt >= CHOREO_BEGIN_ATTEMPTS)
            return s;
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "cannot begin a transaction; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        choreo__sleep_ms(CHOREO_BEGIN_PAUSE_MS);
    }
}

/* Tells the server that a message which has waited a share of its AckWait
 * in this batch is still being worked on, so that its AckWait starts again. */
static void keep_alive(choreo_service *svc, choreo_item *it, int64_t now_us)
{
    if (it->kind == ITEM_EVENT &&
        now_us - it->queued_us > svc->cfg->ack_wait_ms * 1000 / CHOREO_KEEP_ALIVE_DIVISOR) {
        choreo__transport_answer(svc->tp, it->msg, JS_IN_PROGRESS, 0);
        it->queued_us = now_us;
    }
}

static void in_progress(choreo_item *it, void *arg)
{
    choreo_service *svc = arg;
    if (it->kind == ITEM_EVENT)
        choreo__transport_answer(svc->tp, it->msg, JS_IN_PROGRESS, 0);
}

/* The events still waiting in the queue behind a long batch get the same
 * signal as the batch's own, at most every eighth of the AckWait, so that
 * a queue held up by slow handlers does not outlive its messages'
 * AckWait either. Dispatcher thread only. */
static void keep_queue_alive(choreo_service *svc, int64_t now_us)
{
    int64_t share = svc->cfg->ack_wait_ms * 1000 / CHOREO_KEEP_ALIVE_DIVISOR;
    if (now_us - svc->queue_touched_us < share / 2)
        return;
    svc->queue_touched_us = now_us;
    choreo__queue_touch(&svc->queue, now_us, share, in_progress, svc);
}

/* Applies items in one transaction until they are done or the part has run
 * for its time budget; commits, then acks. Returns how many items it took. */
static int run_part(choreo_service *svc, choreo_item *items, struct outcome *out, int n)
{
    int64_t budget_us = svc->cfg->ack_wait_ms * 1000 / CHOREO_BATCH_CUT_DIVISOR;
    if (budget_us > CHOREO_BATCH_CUT_MAX_MS * 1000)
        budget_us = CHOREO_BATCH_CUT_MAX_MS * 1000;
    memset(out, 0, sizeof *out * (size_t)n);
    struct tally t = { 0 };
    int taken = n;
    choreo_status s = begin_batch(svc);
    if (s == CHOREO_OK) {
        int64_t began = choreo__mono_us();
        for (int i = 0; i < n; i++) {
            int64_t now = choreo__mono_us();
            if (i > 0 && now - began > budget_us) {
                taken = i; /* the rest go into the next transaction */
                break;
            }
            if (i > 0)
                choreo__extras_crash(&svc->extras, CP_INSIDE_BATCH);
            for (int k = i; k < n; k++)
                keep_alive(svc, &items[k], now);
            keep_queue_alive(svc, now);
            out[i].nak_delay_ms = CHOREO_REDELIVER_DELAY_MS;
            if (items[i].kind == ITEM_EVENT)
                out[i].act = apply_event(svc, items[i].msg, &svc->routes[items[i].route],
                                         &out[i].nak_delay_ms, &t);
            else
                apply_request(svc, items[i].msg, &svc->requests[items[i].route], &out[i], &t);
        }
        if (t.last_delivery)
            choreo__extras_crash(&svc->extras, CP_LAST_DELIVERY);
        int64_t commit_began = choreo__mono_us();
        s = choreo__extras_commit(&svc->extras, svc->store);
        if (s == CHOREO_OK) {
            choreo__hist_observe(&svc->metrics.commit, HIST_SECONDS,
                                 choreo__mono_us() - commit_began);
            choreo__hist_observe(&svc->metrics.batch, HIST_COUNT, taken);
        }
        if (s != CHOREO_OK)
            CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                       "commit failed; the batch will be redelivered", "n=%d err=\"%s\"", taken,
                       CHOREO_SAFE(choreo_last_error()));
    } else {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "cannot begin a transaction; batch handed back",
                   "n=%d err=\"%s\"", n, CHOREO_SAFE(choreo_last_error()));
    }
    bool committed = s == CHOREO_OK;
    if (!committed)
        forget_batch(svc);
    if (committed) {
        choreo__metrics_commit(svc, &svc->batch_mlog);
        atomic_fetch_add(&svc->stats.batches, 1);
        atomic_fetch_add(&svc->stats.handled, t.handled);
        atomic_fetch_add(&svc->stats.duplicates, t.duplicates);
        atomic_fetch_add(&svc->stats.retried, t.retried);
        atomic_fetch_add(&svc->stats.parked, t.parked);
        choreo__extras_crash(&svc->extras, CP_AFTER_COMMIT_BEFORE_ACK);
        if (t.emitted > 0) {
            choreo__extras_crash(&svc->extras, CP_AFTER_COMMIT_BEFORE_PUBLISH);
            if (choreo__extras_committed(&svc->extras, &svc->extras.batch) > 0)
                CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                           "naive delivery: publishing after commit failed; those events are lost",
                           NULL);
            choreo__relay_hand(svc->relay, &svc->batch_copies);
        }
    }
    for (int i = 0; i < taken; i++)
        finish(svc, &items[i], &out[i], committed);
    return taken;
}

static void *dispatch_main(void *arg)
{
    prctl(PR_SET_NAME, "choreo-dispatch"); /* shown by top -H and perf */
    choreo_service *svc = arg;
    dispatcher_of = svc;
    int max = (int)svc->cfg->batch_max;
    choreo_item *items = calloc((size_t)max, sizeof *items);
    struct outcome *out = calloc((size_t)max, sizeof *out);
    if (!items || !out) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "out of memory starting the dispatcher", NULL);
        atomic_store(&svc->stop, true);
    }
    while (items && out && !atomic_load(&svc->stop)) {
        int n = choreo__queue_pop(&svc->queue, items, max, CHOREO_STOP_SLICE_MS);
        if (n == 0)
            continue;
        atomic_store_explicit(&svc->metrics.busy_since_us, choreo__mono_us(),
                              memory_order_relaxed);
        for (int done = 0; done < n;)
            done += run_part(svc, items + done, out + done, n - done);
        atomic_store_explicit(&svc->metrics.busy_since_us, 0, memory_order_relaxed);
    }
    free(items);
    free(out);
    dispatcher_of = NULL;
    atomic_store(&svc->dispatcher_done, true);
    return NULL;
}

/* Calls step for the durable consumer of every route, in order; stops at
 * the first failure. */
static choreo_status each_consumer(choreo_service *svc,
                                   choreo_status (*step)(choreo_transport *, const choreo_config *,
                                                         const char *, const char *,
                                                         choreo_puller *))
{
    for (int i = 0; i < svc->nroutes; i++) {
        choreo_route *rt = &svc->routes[i];
        choreo_status s = step(svc->tp, svc->cfg, rt->filter, rt->consumer, &rt->pull);
        if (s != CHOREO_OK)
            return s;
    }
    return CHOREO_OK;
}

choreo_status choreo__dispatch_subscribe(choreo_service *svc)
{
    /* Every existing consumer is settled (its binding read) before any
     * missing one is made: a start refused for one consumer bound to
     * another database must not leave behind another it made meanwhile
     * (one deleted on the server, say), bound to its own database, which
     * would then refuse the right one. */
    choreo_status s = each_consumer(svc, choreo__transport_consumer_settle);
    return s == CHOREO_OK ? each_consumer(svc, choreo__transport_pull_subscribe) : s;
}

choreo_status choreo__dispatch_start(choreo_service *svc)
{
    for (int i = 0; i < svc->nrequests; i++) {
        choreo_request_route *rq = &svc->requests[i];
        natsStatus ns = natsConnection_QueueSubscribe(&rq->sub, svc->tp->nc, rq->subject,
                                                      svc->cfg->service, on_request, rq);
        if (ns != NATS_OK)
            return choreo__nats_error(ns, "subscribing to a request subject");
    }
    atomic_store(&svc->dispatcher_done, false);
    if (pthread_create(&svc->dispatcher, NULL, dispatch_main, svc) != 0)
        return choreo__fail(CHOREO_ENOMEM, "cannot start the dispatcher thread");
    svc->dispatcher_started = true;
    for (int i = 0; i < svc->nroutes; i++) {
        if (pthread_create(&svc->routes[i].fetcher, NULL, fetch_main, &svc->routes[i]) != 0)
            return choreo__fail(CHOREO_ENOMEM, "cannot start a fetch thread");
        svc->routes[i].fetcher_started = true;
    }
    return CHOREO_OK;
}

void choreo__dispatch_join(choreo_service *svc)
{
    for (int i = 0; i < svc->nrequests; i++)
        if (svc->requests[i].sub)
            natsSubscription_Unsubscribe(svc->requests[i].sub);
    for (int i = 0; i < svc->nroutes; i++) {
        if (svc->routes[i].fetcher_started) {
            pthread_join(svc->routes[i].fetcher, NULL);
            svc->routes[i].fetcher_started = false;
        }
    }
    if (svc->dispatcher_started) {
        pthread_join(svc->dispatcher, NULL);
        svc->dispatcher_started = false;
    }
    /* Hand back what was fetched but not dispatched, for the next instance
     * (the server has no MaxDeliver, so a handed-back last delivery comes
     * back and is parked then). */
    choreo_item it;
    while (choreo__queue_pop(&svc->queue, &it, 1, 0) == 1) {
        if (it.kind == ITEM_EVENT)
            hand_back(svc, it.msg);
        natsMsg_Destroy(it.msg);
    }
}

void choreo__dispatch_free_subs(choreo_service *svc)
{
    for (int i = 0; i < svc->nrequests; i++) {
        natsSubscription_Destroy(svc->requests[i].sub);
        svc->requests[i].sub = NULL;
    }
    for (int i = 0; i < svc->nroutes; i++) {
        natsSubscription_Destroy(svc->routes[i].pull.sub);
        svc->routes[i].pull.sub = NULL;
    }
}
