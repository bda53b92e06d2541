/* Publishes due outbox rows in seq order with js_PublishMsgAsync, Nats-Msg-Id
 * set to the event id, then marks the acknowledged rows published in one
 * transaction. Rows whose PubAck failed or timed out stay unpublished and go
 * out again with the same id, so an outage or a crash at any point can cause
 * a repeat that JetStream (or the consumer's inbox) drops, never a loss.
 * Under load, a batch's marking is deferred until the next batch is on the
 * wire, so that SQLite and the broker work at the same time; a cursor keeps
 * the acknowledged but not yet marked rows from being read again. */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "outbox.h"
#include "prune.h"
#include "status.h"

#define RELAY_BATCH 256
#define ACK_WAIT_MS 5000

enum { PENDING, ACKED, FAILED };

struct entry {
    int64_t seq;
    int64_t created_us;
    char event_id[CHOREO_ID_SIZE];
    int state;
};

struct choreo_relay {
    choreo_service *svc;
    choreo_store *st;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;      /* guards wake, the batch and its states */
    pthread_cond_t cond;
    bool wake;
    struct entry batch[RELAY_BATCH];
    int nbatch;
    int next_hint;             /* where the next ack is likely in batch */
    int outstanding;           /* acks still expected for the batch */
    char last_error[256];
    /* Relay thread only: acknowledged rows not yet marked, and the cursor
     * (highest seq handed to JetStream) that keeps them from being read again. */
    int64_t held[RELAY_BATCH];
    int nheld;
    int64_t cursor;
    int64_t cursor_since_us;
};

choreo_status choreo__relay_create(choreo_relay **out, choreo_service *svc)
{
    choreo_relay *r = calloc(1, sizeof *r);
    if (!r)
        return choreo__fail(CHOREO_ENOMEM, "out of memory creating the relay");
    /* Marking rows published is safe to lose on power failure (the row is
     * then published again and deduplicated), so the relay's connection
     * skips the fsync that synchronous=FULL would add to every batch. */
    choreo_status s = choreo__store_open(&r->st, svc->cfg->db, "normal",
                                         (int)svc->cfg->busy_timeout_ms);
    if (s != CHOREO_OK) {
        free(r);
        return s;
    }
    r->svc = svc;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    *out = r;
    return CHOREO_OK;
}

void choreo__relay_wake(choreo_relay *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->wake = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static struct entry *find_entry(choreo_relay *r, const char *id)
{
    for (int k = 0; k < r->nbatch; k++) {
        int i = (r->next_hint + k) % r->nbatch;
        if (strcmp(r->batch[i].event_id, id) == 0) {
            r->next_hint = (i + 1) % r->nbatch;
            return &r->batch[i];
        }
    }
    return NULL;
}

void choreo__relay_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    choreo_relay *r = closure;
    const char *id = NULL;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    int64_t now = choreo__now_us();
    pthread_mutex_lock(&r->lock);
    struct entry *e = id ? find_entry(r, id) : NULL;
    if (e && e->state == PENDING) {
        if (pa) {
            e->state = ACKED;
            choreo__latency_record(&r->svc->relay_latency, now - e->created_us);
        } else {
            e->state = FAILED;
            snprintf(r->last_error, sizeof r->last_error, "%s (JetStream code %d)",
                     pae && pae->ErrText ? pae->ErrText : natsStatus_GetText(pae ? pae->Err : NATS_ERR),
                     pae ? (int)pae->ErrCode : 0);
        }
        if (--r->outstanding == 0)
            pthread_cond_broadcast(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    natsMsg_Destroy(msg);
}

/* Builds the NATS message of one outbox row, headers included. */
static natsStatus make_msg(const choreo_outbox_row *row, natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, row->subject, NULL, (const char *)row->body,
                                  (int)row->body_len);
    char line[256];
    for (const char *p = row->headers; s == NATS_OK && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len < sizeof line) {
            memcpy(line, p, len);
            line[len] = '\0';
            char *colon = strstr(line, ": ");
            if (colon) {
                *colon = '\0';
                s = natsMsgHeader_Set(m, line, colon + 2);
            }
        }
        p += len + (nl ? 1 : 0);
    }
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        return s;
    }
    *out = m;
    return NATS_OK;
}

struct publish_ctx {
    choreo_relay *r;
    natsStatus err;
};

static bool publish_row(const choreo_outbox_row *row, void *user)
{
    struct publish_ctx *pc = user;
    choreo_relay *r = pc->r;
    natsMsg *m = NULL;
    natsStatus s = make_msg(row, &m);
    if (s != NATS_OK) {
        pc->err = s;
        return false;
    }
    pthread_mutex_lock(&r->lock);
    struct entry *e = &r->batch[r->nbatch++];
    e->seq = row->seq;
    e->created_us = row->created_us;
    snprintf(e->event_id, sizeof e->event_id, "%s", row->event_id);
    e->state = PENDING;
    r->outstanding++;
    pthread_mutex_unlock(&r->lock);
    s = js_PublishMsgAsync(r->svc->tp->js_pub, &m, NULL);
    if (s != NATS_OK) {
        natsMsg_Destroy(m);
        pthread_mutex_lock(&r->lock);
        e->state = FAILED;
        r->outstanding--;
        snprintf(r->last_error, sizeof r->last_error, "%s", natsStatus_GetText(s));
        pthread_mutex_unlock(&r->lock);
        pc->err = s;
        return false;
    }
    return true;
}

/* Waits for the batch's acks; takes back what is still pending after the
 * wait, so that those rows are simply sent again next round. */
static void await_acks(choreo_relay *r)
{
    pthread_mutex_lock(&r->lock);
    struct timespec until = choreo__deadline_in_ms(ACK_WAIT_MS);
    while (r->outstanding > 0)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &until) != 0)
            break;
    bool timed_out = r->outstanding > 0;
    pthread_mutex_unlock(&r->lock);
    if (!timed_out)
        return;
    natsMsgList pending = { 0 };
    if (js_PublishAsyncGetPendingList(&pending, r->svc->tp->js_pub) == NATS_OK)
        natsMsgList_Destroy(&pending);
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nbatch; i++)
        if (r->batch[i].state == PENDING)
            r->batch[i].state = FAILED;
    r->outstanding = 0;
    snprintf(r->last_error, sizeof r->last_error, "no PubAck within %d ms", ACK_WAIT_MS);
    pthread_mutex_unlock(&r->lock);
}

/* Marks the held rows published. */
static void mark_held(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    if (r->nheld == 0)
        return;
    choreo__crashpoint(&svc->crash, CP_AFTER_PUBLISH_BEFORE_MARK);
    for (int attempt = 0;; attempt++) {
        choreo_status s = choreo__outbox_mark_published(r->st, r->held, r->nheld,
                                                        choreo__now_ms(), &svc->crash);
        if (s == CHOREO_OK || atomic_load(&svc->stop) || attempt > 100)
            break;
        /* Unmarked rows would only be published again (and deduplicated),
         * but retrying keeps that rare. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay cannot mark rows published; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        choreo__sleep_ms(100);
    }
    atomic_fetch_add(&svc->stats.published, (uint64_t)r->nheld);
    r->nheld = 0;
}

/* Marks what is held and reads from the start of the outbox again, which
 * also picks up delayed rows that fell due below the cursor. */
static void rewind_cursor(choreo_relay *r)
{
    mark_held(r);
    r->cursor = 0;
    r->cursor_since_us = 0;
}

/* One round: publish up to a batch of due rows, mark the previous batch
 * while JetStream works, then wait for this batch's acks. Returns the
 * number of rows read, or -1 when publishing failed. */
static int relay_round(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    if (r->cursor && choreo__mono_us() - r->cursor_since_us > svc->cfg->relay_scan_ms * 1000)
        rewind_cursor(r);
    r->nbatch = 0;
    r->next_hint = 0;
    r->outstanding = 0;
    struct publish_ctx pc = { r, NATS_OK };
    choreo_status s = choreo__outbox_due(r->st, choreo__now_ms(), r->cursor, RELAY_BATCH,
                                         publish_row, &pc);
    if (s != CHOREO_OK)
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "relay cannot read the outbox; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
    if (r->nbatch == 0) {
        rewind_cursor(r);
        return s == CHOREO_OK ? 0 : -1;
    }
    /* Sends what the buffered connection holds now; the PONG it waits for
     * comes about when the PubAcks do. */
    natsConnection_FlushTimeout(svc->tp->nc_pub, ACK_WAIT_MS);
    mark_held(r); /* the previous batch, while JetStream stores this one */
    await_acks(r);
    int failed = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nbatch; i++) {
        if (r->batch[i].state == ACKED)
            r->held[r->nheld++] = r->batch[i].seq;
        else
            failed++;
    }
    char err[256];
    snprintf(err, sizeof err, "%s", r->last_error);
    pthread_mutex_unlock(&r->lock);
    if (failed > 0) {
        int acked = r->nheld;
        rewind_cursor(r); /* the failed rows are read again from the start */
        atomic_fetch_add(&svc->stats.publish_errors, (uint64_t)failed);
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay publish failed; will retry with the same ids",
                   "failed=%d acked=%d err=\"%s\"", failed, acked, CHOREO_SAFE(err));
        return -1;
    }
    if (!r->cursor)
        r->cursor_since_us = choreo__mono_us();
    r->cursor = r->batch[r->nbatch - 1].seq;
    return r->nbatch;
}

/* Deletes old rows when prune_interval_s has passed since the last time. */
static void maybe_prune(choreo_relay *r, int64_t *last_us)
{
    choreo_service *svc = r->svc;
    int64_t now = choreo__mono_us();
    if (*last_us && now - *last_us < svc->cfg->prune_interval_s * 1000000)
        return;
    *last_us = now;
    int64_t now_ms = choreo__now_ms(), deleted = 0;
    int64_t outbox_before = svc->cfg->outbox_retention_s ? now_ms - svc->cfg->outbox_retention_s * 1000 : 0;
    int64_t inbox_before = svc->cfg->inbox_retention_s ? now_ms - svc->cfg->inbox_retention_s * 1000 : 0;
    if (choreo__prune(r->st, outbox_before, inbox_before, &svc->stop, &deleted) != CHOREO_OK)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "pruning old rows failed; will try again",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
    else if (deleted > 0)
        CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "pruned old rows", "rows=%lld", (long long)deleted);
}

static void *relay_main(void *arg)
{
    choreo_relay *r = arg;
    choreo_service *svc = r->svc;
    int64_t backoff_ms = 0, last_prune_us = 0;
    while (!atomic_load(&svc->stop)) {
        maybe_prune(r, &last_prune_us);
        int n = relay_round(r);
        if (n < 0) {
            backoff_ms = backoff_ms ? backoff_ms * 2 : 50;
            if (backoff_ms > 2000)
                backoff_ms = 2000;
        } else {
            backoff_ms = 0;
        }
        if (n == RELAY_BATCH)
            continue; /* more may be due right now */
        int64_t wait_ms = svc->cfg->relay_scan_ms;
        int64_t next = INT64_MAX, pending = 0;
        if (choreo__outbox_next_due(r->st, &next) == CHOREO_OK && next != INT64_MAX) {
            int64_t until = next - choreo__now_ms();
            if (until < wait_ms)
                wait_ms = until < 0 ? 0 : until;
        }
        if (choreo__outbox_pending(r->st, &pending) == CHOREO_OK)
            atomic_store(&svc->stats.outbox_pending, (uint64_t)pending);
        if (backoff_ms > wait_ms || (backoff_ms && wait_ms == 0))
            wait_ms = backoff_ms;
        /* Wait for a commit, the next due row or the fallback scan, in short
         * slices so that a stop is noticed promptly. */
        pthread_mutex_lock(&r->lock);
        int64_t deadline = choreo__mono_us() + wait_ms * 1000;
        while (!r->wake && !atomic_load(&svc->stop)) {
            int64_t left_ms = (deadline - choreo__mono_us()) / 1000;
            if (left_ms <= 0)
                break;
            struct timespec until = choreo__deadline_in_ms(left_ms < 50 ? left_ms : 50);
            pthread_cond_timedwait(&r->cond, &r->lock, &until);
        }
        r->wake = false;
        pthread_mutex_unlock(&r->lock);
    }
    mark_held(r);
    return NULL;
}

choreo_status choreo__relay_start(choreo_relay *r)
{
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0)
        return choreo__fail(CHOREO_ENOMEM, "cannot start the relay thread");
    r->started = true;
    return CHOREO_OK;
}

void choreo__relay_join(choreo_relay *r)
{
    if (r && r->started) {
        choreo__relay_wake(r);
        pthread_join(r->thread, NULL);
        r->started = false;
    }
}

void choreo__relay_destroy(choreo_relay *r)
{
    if (!r)
        return;
    choreo__relay_join(r);
    choreo__store_close(r->st);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
