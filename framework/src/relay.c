/* Publishes due outbox rows in seq order to JetStream, Nats-Msg-Id set to
 * the event id, each with a reply subject of its own on which the relay
 * thread reads its PubAck (a plain subscription, not nats.c's asynchronous
 * publishing: that hands each PubAck from the connection's reader thread to
 * a delivery thread of its own and only then to the relay), then marks the
 * acknowledged rows published in one transaction. Rows whose PubAck failed
 * or timed out stay unpublished and go out again with the same id, so an
 * outage or a crash at any point can cause a repeat that JetStream (or the
 * consumer's inbox) drops, never a loss.
 * A row the broker refuses for good (larger than its max_payload, or a
 * stream limit) is set aside into choreo_dead, where choreoctl shows it, and
 * the relay goes on with the rows after it.
 *
 * State and invariants:
 * - Relay thread only: cursor, cursor_since_us, held[], nheld, aside[],
 *   naside. held are seqs whose PubAck arrived but which are not yet marked
 *   published; every held seq is <= cursor, and rows with seq <= cursor are
 *   not read again until the cursor rewinds (to 0), which first marks held.
 *   So a row is in flight, held, or read afresh: never two at once.
 * - Relay thread only: taken (the copies of this round), from_table (this
 *   round read the table), next_due_ms (the earliest due time the relay
 *   knows of, read after rounds that read the table); batch[], nbatch,
 *   outstanding (the batch entries still PENDING), last_error, and the
 *   tokens. Each publish has a token of its own, never used again, and its
 *   reply subject is <inbox>.<token>: a PubAck that comes after its round
 *   gave up waiting matches no entry of a later round and is dropped.
 * - Under lock (with the committing threads): wake, handed, direct,
 *   awaiting, direct_next; and while direct, batch[], nbatch, outstanding
 *   and next_token, which committing threads then add to.
 * - A full batch's marking is deferred until the next batch is on the
 *   wire, so that SQLite and the broker work at the same time. Short ones
 *   (the outbox drained) are held for up to CHOREO_RELAY_MARK_DELAY_MS and
 *   marked together: under a trickle of commits a mark transaction per
 *   round would take the write lock as often as the dispatcher does. held
 *   has room for two batches: rounds mark once it holds a batch's worth.
 *
 * Rows committed by this process come to the relay twice: in the table, and
 * as copies handed over right after their commit (choreo__relay_hand). A
 * round publishes the copies without reading the table when they are
 * exactly what a read would return first: the first seq is cursor + 1 and
 * each next one follows the one before. SQLite gives seqs in commit order
 * and never twice, so no row of another writer can sit between them. Any
 * other round (a rewound cursor, a gap, too many copies) reads the table,
 * which holds every committed row, and drops the copies. A copy is handed
 * only after its commit, so the relay never publishes an uncommitted row;
 * a copy lost to a crash or a stop is read from the table. On PostgreSQL
 * no copies are made (seqs do not follow commit order there), and the
 * cursor rewinds every round anyway.
 *
 * The window spares a committed row the hand-over to the relay thread.
 * After a round, and while a round waits for its PubAcks, the relay opens
 * it at direct_next, the seq after the last row it read or handed; a
 * committing thread whose copies begin there, with no gap, sends them
 * itself on the unbuffered connection (send_direct) and adds them to the
 * batch, its PubAcks pending, and direct_next moves past them. Anything
 * else (a gap, a delayed row, more than CHOREO_RELAY_ASAP_MAX rows, a full
 * batch, a closed window) is handed over as before. The relay closes the
 * window under the lock before it reads the table or takes copies, and
 * when a round's answers are all in: so a row is sent by a committer or
 * by the relay, never both, and in seq order on one connection (a round on
 * the buffered connection is flushed before its window opens). Rows sent
 * through the window since the last round make the next round, which only
 * reads their PubAcks; its cursor becomes direct_next - 1. A failed round
 * rewinds as any other; a crash after such a send is a crash after
 * publish, before marking (the row goes out again, deduplicated).
 *
 * On PostgreSQL several instances share the outbox and one relay publishes
 * at a time: the one whose connection holds the advisory lock
 * CHOREO_PG_LOCK_RELAY. The others stand by and try for it every
 * CHOREO_RELAY_STANDBY_MS; the server frees it when the holder's connection
 * ends, so another instance takes over within that time of a crash. Any
 * instance's commit of outbox rows NOTIFYs the active relay, which also
 * still scans every relay_scan_ms. Rows of several writers commit out of seq
 * order, so there the cursor is rewound every round (a row below it is
 * never skipped). */
#include "relay.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "dead.h"
#include "envelope.h"
#include "extras.h"
#include "outbox.h"
#include "prune.h"
#include "status.h"
#include "tuning.h"

/* JetStream's error code for a message larger than the stream allows. */
#define JS_ERR_MESSAGE_TOO_BIG 10054

enum { PENDING, ACKED, FAILED, REFUSED };

struct entry {
    int64_t seq;
    int64_t due_us; /* the row's insert, or its publish time when delayed */
    char type[CHOREO_TYPE_MAX + 1];
    int64_t token; /* its reply subject is <inbox>.<token> */
    int state;
    bool by_committer; /* sent through the window by a committing thread */
    char why[160]; /* REFUSED: the broker's reason */
};

/* A row to set aside, with the reason. */
struct aside {
    int64_t seq;
    char type[CHOREO_TYPE_MAX + 1];
    char reason[CHOREO_REASON_MAX];
};

struct choreo_relay {
    choreo_service *svc;
    choreo_store *st;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool wake;
    struct entry batch[CHOREO_RELAY_BATCH];
    int nbatch;
    int outstanding;
    /* The window (under lock): while direct, a committing thread sends the
     * copies of its rows itself when they begin at direct_next; awaiting
     * says the relay thread is reading PubAcks and sees them come. */
    bool direct;
    bool awaiting;
    int64_t direct_next;
    natsSubscription *acks; /* <inbox>.*, on nc_pub */
    char inbox[96];
    int64_t next_token;
    char last_error[256];
    natsStatus last_status; /* the failure last_error tells of */
    int64_t stream_look_at_us; /* publishes go unanswered: when to look for the stream */
    int64_t held[2 * CHOREO_RELAY_BATCH];
    int nheld;
    int64_t held_since_us; /* when the oldest held row was acknowledged */
    struct aside aside[CHOREO_RELAY_BATCH];
    int naside;
    int64_t cursor;
    int64_t cursor_since_us;
    choreo_outbox_copies handed, taken;
    bool from_table;
    int64_t next_due_ms;
    /* PostgreSQL: the relay thread's view of its lock and LISTEN, for the
     * store session they were taken in; wake_fd is written by wakes. */
    bool shared;
    bool active;
    bool said_standby;
    bool said_no_lease;
    int claimed_in;
    int wake_fd;
};

choreo_status choreo__relay_create(choreo_relay **out, choreo_service *svc)
{
    choreo_relay *r = calloc(1, sizeof *r);
    if (!r)
        return choreo__fail(CHOREO_ENOMEM, "out of memory creating the relay");
    /* Marking rows published is safe to lose on power failure (the row is
     * then published again and deduplicated), so the relay's connection
     * skips the fsync that synchronous=FULL would add to every batch. On
     * PostgreSQL, a frozen relay's transaction (a marking) would keep its
     * session, and the relay lock, past relay_lease_ms (see relay_lease). */
    choreo_status s = choreo__store_open_wait(&r->st, svc->cfg->db, "normal",
                                              choreo__config_lock_wait_ms(svc->cfg),
                                              (int)svc->cfg->db_wait_ms,
                                              (int)svc->cfg->relay_lease_ms);
    if (s != CHOREO_OK) {
        free(r);
        return s;
    }
    r->svc = svc;
    r->wake_fd = -1;
    r->claimed_in = -1;
    r->shared = r->st->engine == ENGINE_POSTGRES;
    if (r->shared) {
        r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (r->wake_fd < 0) {
            choreo__store_close(r->st);
            free(r);
            return choreo__fail(CHOREO_ENOMEM, "cannot create the relay's wake-up descriptor");
        }
    }
    pthread_mutex_init(&r->lock, NULL);
    choreo__cond_init(&r->cond);
    *out = r;
    return CHOREO_OK;
}

static void wake_with(choreo_relay *r, choreo_outbox_copies *rows)
{
    pthread_mutex_lock(&r->lock);
    if (rows)
        choreo__outbox_copies_move(&r->handed, rows);
    r->wake = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    if (r->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(r->wake_fd, &one, sizeof one);
        (void)n; /* a full counter already wakes the relay */
    }
}

void choreo__relay_wake(choreo_relay *r)
{
    if (r)
        wake_with(r, NULL);
}

static bool send_direct(choreo_relay *r, choreo_outbox_copies *rows);

void choreo__relay_hand(choreo_relay *r, choreo_outbox_copies *rows)
{
    if (!r)
        choreo__outbox_copies_truncate(rows, 0);
    else if (!send_direct(r, rows))
        wake_with(r, rows);
}

/* The batch entry of a PubAck's token (tokens rise along the batch), or
 * NULL: an answer to an earlier round. */
static struct entry *find_entry(choreo_relay *r, int64_t token)
{
    int lo = 0, hi = r->nbatch - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->batch[mid].token == token)
            return &r->batch[mid];
        if (r->batch[mid].token < token)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

/* Records a failure of the round, for its log line and metrics. */
static void round_failed(choreo_relay *r, natsStatus why, const char *text)
{
    snprintf(r->last_error, sizeof r->last_error, "%s", text);
    r->last_status = why;
}

/* The whole number after "key": in a PubAck's JSON, or 0. */
static long long json_int(const char *json, const char *key)
{
    const char *p = strstr(json, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : 0;
}

/* Takes one PubAck into its batch entry: {"stream":..,"seq":..} (with
 * "duplicate":true when the broker had the id already), or {"error":{..}}
 * when JetStream refused it. */
static void take_ack(choreo_relay *r, natsMsg *m)
{
    const char *dot = strrchr(natsMsg_GetSubject(m), '.');
    struct entry *e = dot ? find_entry(r, strtoll(dot + 1, NULL, 10)) : NULL;
    if (!e || e->state != PENDING)
        return;
    r->outstanding--;
    char body[512];
    int len = natsMsg_GetDataLength(m);
    if (len >= (int)sizeof body)
        len = (int)sizeof body - 1;
    memcpy(body, natsMsg_GetData(m), (size_t)len);
    body[len] = '\0';
    if (strstr(body, "\"error\"")) {
        int code = (int)json_int(body, "\"err_code\":");
        const char *d = strstr(body, "\"description\":\"");
        d = d ? d + strlen("\"description\":\"") : "no description";
        e->state = code == JS_ERR_MESSAGE_TOO_BIG ? REFUSED : FAILED;
        snprintf(e->why, sizeof e->why, "%.*s (JetStream code %d)", (int)strcspn(d, "\""), d,
                 code);
        round_failed(r, NATS_ERR, e->why);
        return;
    }
    if (json_int(body, "\"seq\":") <= 0) {
        e->state = FAILED;
        snprintf(e->why, sizeof e->why, "an answer that is no PubAck: %.100s", body);
        round_failed(r, NATS_ERR, e->why);
        return;
    }
    e->state = ACKED;
    int64_t waited = choreo__now_us() - e->due_us;
    choreo__latency_record(&r->svc->relay_latency, waited);
    choreo__hist_observe(&r->svc->metrics.relay, HIST_SECONDS, waited);
}

/* Builds the NATS message of one outbox row, headers included. */
static natsStatus make_msg(const choreo_outbox_row *row, const char *reply, natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, row->subject, reply, (const char *)row->body,
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

/* The event type from a subject "<prefix>.<Type>.<saga>": the token before
 * the last, since the prefix may have dots of its own and the type and the
 * saga have none. */
static void type_of(const char *subject, char *out, size_t cap)
{
    const char *end = strrchr(subject, '.');
    if (!end)
        end = subject + strlen(subject);
    const char *start = end;
    while (start > subject && start[-1] != '.')
        start--;
    size_t len = (size_t)(end - start);
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), start);
}

static void plan_aside(choreo_relay *r, int64_t seq, const char *type, const char *why)
{
    struct aside *a = &r->aside[r->naside++];
    a->seq = seq;
    snprintf(a->type, sizeof a->type, "%s", type);
    snprintf(a->reason, sizeof a->reason,
             "the broker refuses this event for good: %s; raise the limit (max_payload, the "
             "stream's max_msg_size) and retry it, or drop it",
             why);
}

/* Adds a published row to the batch, its PubAck pending. */
static void add_entry(choreo_relay *r, const choreo_outbox_row *row, int64_t token,
                      bool by_committer)
{
    struct entry *e = &r->batch[r->nbatch++];
    e->seq = row->seq;
    e->due_us = row->publish_at * 1000 > row->created_us ? row->publish_at * 1000
                                                         : row->created_us;
    type_of(row->subject, e->type, sizeof e->type);
    e->token = token;
    e->state = PENDING;
    e->by_committer = by_committer;
    r->outstanding++;
}

/* Publishes one row with a reply subject of its own, on nc, and adds it to
 * the batch on success. */
static natsStatus send_row(choreo_relay *r, natsConnection *nc, const choreo_outbox_row *row,
                           bool by_committer)
{
    natsMsg *m = NULL;
    int64_t token = r->next_token++;
    char reply[128];
    snprintf(reply, sizeof reply, "%s.%lld", r->inbox, (long long)token);
    natsStatus s = make_msg(row, reply, &m);
    if (s == NATS_OK)
        s = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    if (s == NATS_OK)
        add_entry(r, row, token, by_committer);
    return s;
}

struct publish_ctx {
    choreo_relay *r;
    natsConnection *nc; /* nc_pub (flushed at the end of the round) or nc */
    natsStatus err;     /* a transient failure that ends the round */
};

static bool publish_row(const choreo_outbox_row *row, void *user)
{
    struct publish_ctx *pc = user;
    choreo_relay *r = pc->r;
    natsStatus s = send_row(r, pc->nc, row, false);
    if (s == NATS_OK)
        return true;
    char why[256];
    const char *detail = nats_GetLastError(NULL);
    snprintf(why, sizeof why, "%s", detail && *detail ? detail : natsStatus_GetText(s));
    if (s == NATS_MAX_PAYLOAD || s == NATS_INVALID_ARG || s == NATS_INVALID_SUBJECT) {
        char type[CHOREO_TYPE_MAX + 1];
        type_of(row->subject, type, sizeof type);
        plan_aside(r, row->seq, type, why);
        return r->naside < CHOREO_RELAY_BATCH;
    }
    round_failed(r, s, why);
    pc->err = s;
    return false;
}

/* A committing thread sends the copies of its commit's rows itself, on the
 * unbuffered connection, when the window is open and they begin at
 * direct_next without a gap, none is delayed, there are at most
 * CHOREO_RELAY_ASAP_MAX of them and the batch has room: the relay thread
 * then only reads their PubAcks and marks them. Returns false when the
 * rows are to be handed over as before; a row nats.c refuses closes the
 * window, and all of them are handed over (the relay skips those sent). */
static bool send_direct(choreo_relay *r, choreo_outbox_copies *rows)
{
    if (rows->incomplete || rows->n == 0 || rows->n > CHOREO_RELAY_ASAP_MAX)
        return false;
    int64_t now_ms = choreo__now_ms();
    pthread_mutex_lock(&r->lock);
    bool ok = r->direct && r->nbatch + rows->n <= CHOREO_RELAY_BATCH;
    for (int i = 0; ok && i < rows->n; i++)
        ok = rows->v[i].seq == r->direct_next + i && rows->v[i].publish_at <= now_ms;
    int sent = 0;
    for (; ok && sent < rows->n; sent++) {
        if (send_row(r, r->svc->tp->nc, &rows->v[sent], true) != NATS_OK) {
            r->direct = false;
            break;
        }
        r->direct_next++;
    }
    if (sent > 0 && !r->awaiting) {
        r->wake = true;
        pthread_cond_signal(&r->cond);
    }
    pthread_mutex_unlock(&r->lock);
    if (sent > 0)
        choreo__extras_crash(&r->svc->extras, CP_AFTER_COMMITTER_SEND);
    if (!ok || sent < rows->n)
        return false;
    choreo__outbox_copies_truncate(rows, 0);
    return true;
}

static int by_seq(const void *a, const void *b)
{
    int64_t x = ((const choreo_outbox_row *)a)->seq, y = ((const choreo_outbox_row *)b)->seq;
    return x < y ? -1 : x > y;
}

/* Takes the copies handed over since the last round and, when they follow
 * the cursor without a gap, publishes them as a read would have returned
 * them (delayed ones are left to the scans, as a read leaves them). Sets
 * *upto to the last seq taken and returns true then; returns false when
 * the round must read the table. Copies after a gap are dropped and the
 * relay woken again, so that the next round reads them. */
static bool publish_handed(choreo_relay *r, struct publish_ctx *pc, int64_t *upto)
{
    choreo_outbox_copies *t = &r->taken;
    pthread_mutex_lock(&r->lock);
    choreo_outbox_copies swap = r->handed;
    r->handed = *t;
    *t = swap;
    pthread_mutex_unlock(&r->lock);
    if (t->incomplete || t->n == 0 || r->cursor == 0) {
        choreo__outbox_copies_truncate(t, 0);
        return false;
    }
    /* Commits of two threads may hand their rows over out of order, and a
     * read may have taken rows before their copies came: those are at or
     * below the cursor, and skipped. */
    qsort(t->v, (size_t)t->n, sizeof *t->v, by_seq);
    int i = 0;
    while (i < t->n && t->v[i].seq <= r->cursor)
        i++;
    if (i == t->n || t->v[i].seq != r->cursor + 1) {
        choreo__outbox_copies_truncate(t, 0);
        return false;
    }
    int run = 1;
    while (i + run < t->n && t->v[i + run].seq == t->v[i].seq + run)
        run++;
    if (run <= CHOREO_RELAY_ASAP_MAX)
        pc->nc = r->svc->tp->nc;
    int64_t now_ms = choreo__now_ms(), last = r->cursor;
    for (; i < t->n && t->v[i].seq == last + 1; i++) {
        const choreo_outbox_row *row = &t->v[i];
        if (row->publish_at > now_ms) {
            if (row->publish_at < r->next_due_ms)
                r->next_due_ms = row->publish_at;
        } else if (!publish_row(row, pc)) {
            break;
        }
        last = row->seq;
    }
    if (i < t->n) {
        pthread_mutex_lock(&r->lock);
        r->wake = true;
        pthread_mutex_unlock(&r->lock);
    }
    choreo__outbox_copies_truncate(t, 0);
    *upto = last;
    return true;
}

/* Reads the batch's PubAcks until each publish has its answer or
 * CHOREO_RELAY_ACK_WAIT_MS passed; the rows still pending then count as
 * failed, and are simply sent again (with the same ids) in a later round.
 * A publish that nothing answers (no stream takes the subject, or in a
 * cluster it has no leader just now) gets a status 503, which nats.c gives
 * as NATS_NO_RESPONDERS without the message, so without saying whose it
 * was: it answers one pending row, which one is not known, and the round
 * fails. While the window is open, rows committing threads send join the
 * batch; it closes when every answer is in, or after
 * CHOREO_RELAY_WINDOW_MS so that the round ends. */
static void await_acks(choreo_relay *r)
{
    int64_t began = choreo__mono_us();
    int64_t deadline = began + CHOREO_RELAY_ACK_WAIT_MS * 1000LL;
    natsStatus s = NATS_OK;
    int nobody = 0; /* publishes answered by no responders */
    pthread_mutex_lock(&r->lock);
    r->awaiting = true;
    while (r->outstanding > nobody) {
        int64_t now = choreo__mono_us();
        if (now - began > CHOREO_RELAY_WINDOW_MS * 1000LL)
            r->direct = false;
        int64_t left_ms = (deadline - now + 999) / 1000;
        if (left_ms <= 0) {
            s = NATS_TIMEOUT;
            break;
        }
        pthread_mutex_unlock(&r->lock);
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, r->acks, left_ms);
        pthread_mutex_lock(&r->lock);
        if (s == NATS_OK)
            take_ack(r, m);
        else if (s == NATS_NO_RESPONDERS)
            nobody++;
        natsMsg_Destroy(m);
        if (s != NATS_OK && s != NATS_NO_RESPONDERS && s != NATS_SLOW_CONSUMER)
            break; /* NATS_SLOW_CONSUMER only says some were dropped */
    }
    r->direct = false;
    r->awaiting = false;
    pthread_mutex_unlock(&r->lock);
    if (r->outstanding == 0)
        return;
    for (int i = 0; i < r->nbatch; i++)
        if (r->batch[i].state == PENDING)
            r->batch[i].state = FAILED;
    r->outstanding = 0;
    char why[256];
    if (nobody > 0) {
        s = NATS_NO_RESPONDERS;
        snprintf(why, sizeof why, "no stream answered %d publish%s (no responders): none takes "
                 "the subject, or it has no leader just now", nobody, nobody == 1 ? "" : "es");
    } else if (s == NATS_TIMEOUT) {
        snprintf(why, sizeof why, "no PubAck within %d ms", CHOREO_RELAY_ACK_WAIT_MS);
    } else {
        snprintf(why, sizeof why, "reading PubAcks: %s", natsStatus_GetText(s));
    }
    round_failed(r, s, why);
}

/* Drops the answers left over from rounds that gave up waiting for them,
 * so that none of them is taken for an answer to this round's publishes. */
static void drop_late_acks(choreo_relay *r)
{
    natsMsg *m = NULL;
    natsStatus s;
    while ((s = natsSubscription_NextMsg(&m, r->acks, 0)) == NATS_OK ||
           s == NATS_NO_RESPONDERS || s == NATS_SLOW_CONSUMER) {
        natsMsg_Destroy(m);
        m = NULL;
    }
}

/* How long until the held rows are due to be marked (0 or less: now);
 * only meaningful while some are held. */
static int64_t mark_in_us(const choreo_relay *r)
{
    return r->held_since_us + CHOREO_RELAY_MARK_DELAY_MS * 1000 - choreo__mono_us();
}

/* Whether held rows have waited long enough to be marked. */
static bool mark_due(const choreo_relay *r)
{
    return r->nheld > 0 && mark_in_us(r) <= 0;
}

/* Marks the held rows published. */
static void mark_held(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    if (r->nheld == 0)
        return;
    choreo__extras_crash(&svc->extras, CP_AFTER_PUBLISH_BEFORE_MARK);
    for (int attempt = 1;; attempt++) {
        choreo_status s = choreo__extras_disk_full(&svc->extras);
        if (s == CHOREO_OK)
            s = choreo__outbox_mark_published(r->st, r->held, r->nheld, choreo__now_ms(),
                                              &svc->extras.crash);
        if (s == CHOREO_OK || atomic_load(&svc->stop) || attempt >= CHOREO_RELAY_MARK_ATTEMPTS)
            break;
        /* Unmarked rows would only be published again (and deduplicated),
         * but retrying keeps that rare. */
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay cannot mark rows published; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        choreo__sleep_ms(CHOREO_BEGIN_PAUSE_MS);
    }
    atomic_fetch_add(&svc->stats.published, (uint64_t)r->nheld);
    r->nheld = 0;
}

/* Marks the held rows when a round's worth are held or they have waited
 * long enough; a mark leaves none held, so a second call in the same round
 * does nothing. */
static void mark_held_if_due(choreo_relay *r)
{
    if (r->nheld >= CHOREO_RELAY_BATCH || mark_due(r))
        mark_held(r);
}

/* Moves one refused row from the outbox to choreo_dead in one transaction;
 * *moved false when it was gone already: a relay that froze past its lease
 * and woke on a new session may finish a round the active relay also read,
 * and only one of them moves the row. */
static choreo_status set_aside_one(choreo_relay *r, const struct aside *a, bool *moved)
{
    *moved = false;
    choreo_status s = choreo__store_begin(r->st);
    if (s != CHOREO_OK)
        return s;
    s = choreo__dead_insert_from_outbox(r->st, a->seq, CHOREO_OUTBOX_CONSUMER, a->type, a->reason,
                                        choreo__now_ms());
    if (s == CHOREO_OK)
        s = choreo__outbox_delete(r->st, a->seq);
    if (s != CHOREO_OK || choreo__store_changes(r->st) != 1) {
        choreo__store_rollback(r->st);
        return s;
    }
    s = choreo__store_commit(r->st);
    *moved = s == CHOREO_OK;
    return s;
}

/* Sets aside the rows planned this round. A row that cannot be moved now is
 * simply read and refused again next round. */
static void set_aside(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    for (int i = 0; i < r->naside; i++) {
        bool moved = false;
        if (set_aside_one(r, &r->aside[i], &moved) != CHOREO_OK) {
            CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay cannot set aside a refused row; "
                       "will try again", "seq=%lld err=\"%s\"", (long long)r->aside[i].seq,
                       CHOREO_SAFE(choreo_last_error()));
            continue;
        }
        if (!moved)
            continue;
        atomic_fetch_add(&svc->stats.parked, 1);
        atomic_fetch_add_explicit(
            &svc->metrics.types[choreo__metrics_type(&svc->metrics, r->aside[i].type)].set_aside,
            1, memory_order_relaxed);
        CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR,
                   "the broker refuses an outbox row for good; it is set aside in choreo_dead "
                   "(see choreoctl dead list) and the relay goes on",
                   "seq=%lld type=%s reason=\"%s\"", (long long)r->aside[i].seq,
                   r->aside[i].type, CHOREO_SAFE(r->aside[i].reason));
    }
    r->naside = 0;
}

/* Marks what is held and reads from the start of the outbox again, which
 * also picks up delayed rows that fell due below the cursor. */
static void rewind_cursor(choreo_relay *r)
{
    mark_held(r);
    r->cursor = 0;
    r->cursor_since_us = 0;
}

/* A publish that nothing answers means, in a cluster, most often an
 * election; on one server, that no stream takes the subject any more (it
 * was deleted, or lost with the server's store), which no retry mends. So
 * when publishes keep going unanswered, the relay looks for the stream
 * CHOREO_CONSUMER_CHECK_MS after the first, and as often at most, and makes
 * it again when it is gone (an election finds it there). */
static void look_for_stream(choreo_relay *r, natsStatus cause)
{
    int64_t now = choreo__mono_us();
    if (cause != NATS_NO_RESPONDERS) {
        r->stream_look_at_us = 0;
        return;
    }
    if (r->stream_look_at_us == 0)
        r->stream_look_at_us = now + CHOREO_CONSUMER_CHECK_MS * 1000;
    if (now < r->stream_look_at_us)
        return;
    r->stream_look_at_us = now + CHOREO_CONSUMER_CHECK_MS * 1000;
    if (choreo__transport_stream_restore(r->svc->tp, r->svc->cfg) != CHOREO_OK)
        CHOREO_LOG(&r->svc->log, CHOREO_LOG_DEBUG, "cannot look for the stream just now",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
}

/* Under lock: lets committing threads send the rows after seq `after`
 * themselves (send_direct). Only a SQLite outbox, whose seqs follow commit
 * order, and only while the service runs. */
static void open_window(choreo_relay *r, int64_t after)
{
    if (!r->shared && after > 0 && !atomic_load(&r->svc->stop)) {
        r->direct_next = after + 1;
        r->direct = true;
    }
}

/* Ends a round: the batch is spent, and the window opens after `after`
 * (0: stays closed). */
static void end_round(choreo_relay *r, int64_t after)
{
    pthread_mutex_lock(&r->lock);
    r->nbatch = 0;
    r->outstanding = 0;
    open_window(r, after);
    pthread_mutex_unlock(&r->lock);
}

/* One round: publish up to a batch of due rows, mark the previous batch
 * while JetStream works, then wait for this batch's acks; rows committing
 * threads sent through the window since the last round make a round of
 * their own. Returns the number of rows read or sent, or -1 when
 * publishing failed. */
static int relay_round(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    pthread_mutex_lock(&r->lock);
    bool sent_by_commits = r->nbatch > 0;
    if (!sent_by_commits)
        r->direct = false;
    pthread_mutex_unlock(&r->lock);
    struct publish_ctx pc = { r, svc->tp->nc_pub, NATS_OK };
    choreo_status s = CHOREO_OK;
    int64_t handed_upto = 0;
    bool windowed = sent_by_commits;
    int read = 0;
    if (sent_by_commits) {
        r->from_table = false;
    } else {
        if (r->cursor &&
            (r->shared || choreo__mono_us() - r->cursor_since_us > svc->cfg->relay_scan_ms * 1000))
            rewind_cursor(r);
        drop_late_acks(r);
        r->from_table = !publish_handed(r, &pc, &handed_upto);
        if (r->from_table)
            s = choreo__outbox_due(r->st, choreo__now_ms(), r->cursor, CHOREO_RELAY_BATCH,
                                   publish_row, &pc);
        if (s != CHOREO_OK)
            CHOREO_LOG(&svc->log, CHOREO_LOG_ERROR, "relay cannot read the outbox; retrying",
                       "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        read = r->nbatch + r->naside;
        if (r->nbatch == 0 && handed_upto && pc.err == NATS_OK) {
            set_aside(r);
            r->cursor = handed_upto; /* only delayed or refused rows were handed over */
            end_round(r, r->cursor);
            return read;
        }
        if (r->nbatch == 0) {
            set_aside(r);
            bool ok = s == CHOREO_OK && pc.err == NATS_OK;
            /* Nothing new: start from the top again, once what is held is due
             * to be marked (rewinding marks it). */
            if (!ok || r->nheld == 0 || mark_due(r))
                rewind_cursor(r);
            end_round(r, ok ? r->cursor : 0);
            return ok ? read : -1;
        }
        /* Earlier rounds' rows are marked while the broker stores what
         * this round wrote so far (nats.c writes the buffer out whenever it
         * fills, and its flusher thread the rest within a millisecond):
         * marked after the flush, they waited for the broker's whole batch.
         * Then the flush sends what the buffered connection still holds;
         * the PONG it waits for comes about when the PubAcks do. A round
         * on nc is on the wire. Rows sent through the window come after it
         * on nc: in seq order. */
        mark_held_if_due(r);
        if (pc.nc == svc->tp->nc_pub)
            natsConnection_FlushTimeout(svc->tp->nc_pub, CHOREO_RELAY_ACK_WAIT_MS);
        if (s == CHOREO_OK && pc.err == NATS_OK) {
            pthread_mutex_lock(&r->lock);
            open_window(r, handed_upto ? handed_upto : r->batch[r->nbatch - 1].seq);
            windowed = r->direct;
            pthread_mutex_unlock(&r->lock);
        }
    }
    mark_held_if_due(r); /* earlier rounds' rows, while JetStream stores this batch */
    await_acks(r); /* closes the window */
    if (sent_by_commits)
        read = r->nbatch;
    int failed = 0, by_committers = 0;
    int64_t last_seq = 0;
    for (int i = 0; i < r->nbatch; i++) {
        struct entry *e = &r->batch[i];
        by_committers += e->by_committer;
        if (e->state == ACKED) {
            if (r->nheld == 0)
                r->held_since_us = choreo__mono_us();
            r->held[r->nheld++] = e->seq;
            int slot = choreo__metrics_type(&svc->metrics, e->type);
            atomic_fetch_add_explicit(&svc->metrics.types[slot].published, 1,
                                      memory_order_relaxed);
        }
        else if (e->state == REFUSED)
            plan_aside(r, e->seq, e->type, e->why);
        else
            failed++;
        last_seq = e->seq;
    }
    natsStatus cause = r->last_status;
    set_aside(r);
    if (failed > 0 || pc.err != NATS_OK) {
        int acked = r->nheld;
        rewind_cursor(r); /* the failed rows are read again from the start */
        end_round(r, 0);
        atomic_fetch_add(&svc->stats.publish_errors, (uint64_t)(failed ? failed : 1));
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   choreo__nats_electing(cause, svc->cfg)
                       ? "relay publish failed: the stream has no leader right now (an "
                         "election after a node's loss); retrying with the same ids"
                       : "relay publish failed; will retry with the same ids",
                   "failed=%d acked=%d err=\"%s\"", failed, acked, CHOREO_SAFE(r->last_error));
        look_for_stream(r, failed ? cause : pc.err);
        return -1;
    }
    r->stream_look_at_us = 0;
    atomic_fetch_add_explicit(&svc->metrics.relay_rows[r->from_table],
                              (uint64_t)(r->nbatch - by_committers), memory_order_relaxed);
    atomic_fetch_add_explicit(&svc->metrics.relay_rows[2], (uint64_t)by_committers,
                              memory_order_relaxed);
    if (!r->cursor)
        r->cursor_since_us = choreo__mono_us();
    /* The window's rows follow the last one read or handed, without a gap. */
    r->cursor = windowed ? r->direct_next - 1 : handed_upto ? handed_upto : last_seq;
    /* A short batch drained the outbox: what is held is marked once due,
     * here or when the relay wakes for it (relay_main). */
    if (read < CHOREO_RELAY_BATCH && mark_due(r))
        mark_held(r);
    end_round(r, r->cursor);
    return read;
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

/* PostgreSQL: the lock lives as long as this relay's session, and a
 * process that is frozen (stopped, or its host paused) keeps the session
 * open while its machine answers. The session is therefore ended by the
 * server once it has been silent for relay_lease_ms: an active relay runs
 * a statement at least every relay_scan_ms (and every retry backoff), so
 * only a stalled one goes that long. Its rows published but not marked are
 * published again by the next relay and deduplicated; a frozen relay that
 * resumes finds its session gone at its next statement and stands by. */
static void relay_lease(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    bool supported = false;
    if (choreo__store_idle_limit(r->st, svc->cfg->relay_lease_ms, &supported) != CHOREO_OK)
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "relay cannot limit its session's idle time: if this instance freezes, the "
                   "others wait for it to resume or die", "err=\"%s\"",
                   CHOREO_SAFE(choreo_last_error()));
    else if (!supported && !r->said_no_lease) {
        r->said_no_lease = true;
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                   "the PostgreSQL server is older than 14 and cannot end a silent session: if "
                   "this instance freezes, the other instances' outbox waits until it resumes or "
                   "is killed", "pid=%d", (int)getpid());
    }
}

/* PostgreSQL: whether this instance's relay is the active one, taking the
 * lock (and listening) when it can. Logs each change. */
static bool relay_claim(choreo_relay *r)
{
    choreo_service *svc = r->svc;
    int session = choreo__store_session(r->st);
    if (r->claimed_in != session) { /* a new connection: lock and LISTEN are gone */
        if (r->active)
            CHOREO_LOG(&svc->log, CHOREO_LOG_WARN,
                       "relay lost its database connection and with it the relay lock; "
                       "another instance may publish now", "pid=%d", (int)getpid());
        r->active = false;
        atomic_store(&svc->stats.relay_active, false);
        r->nheld = 0; /* unmarked: published again by whichever relay, and deduplicated */
        r->cursor = 0;
        if (choreo__store_listen(r->st, CHOREO_PG_OUTBOX_CHANNEL) != CHOREO_OK) {
            CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay cannot listen for commits; retrying",
                       "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
            return false;
        }
        r->claimed_in = choreo__store_session(r->st);
    }
    if (r->active)
        return true;
    bool got = false;
    if (choreo__store_try_lock(r->st, CHOREO_PG_LOCK_RELAY, &got) != CHOREO_OK) {
        CHOREO_LOG(&svc->log, CHOREO_LOG_WARN, "relay cannot ask for the relay lock; retrying",
                   "err=\"%s\"", CHOREO_SAFE(choreo_last_error()));
        return false;
    }
    if (got) {
        r->active = true;
        atomic_store(&svc->stats.relay_active, true);
        r->said_standby = false;
        r->cursor = 0;
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO,
                   "relay active: this instance publishes the shared outbox", "pid=%d", (int)getpid());
        relay_lease(r);
    } else if (!r->said_standby) {
        r->said_standby = true;
        CHOREO_LOG(&svc->log, CHOREO_LOG_INFO,
                   "relay standing by: another instance publishes the shared outbox; this one "
                   "takes over if that one stops", "pid=%d", (int)getpid());
    }
    return got;
}

/* PostgreSQL: sleeps on the wake descriptor and the connection's socket (a
 * NOTIFY from any instance's commit) as relay_sleep does on its condition. */
static void relay_poll(choreo_relay *r, int64_t wait_ms, bool heed_wake)
{
    int64_t deadline = choreo__mono_us() + wait_ms * 1000;
    while (!atomic_load(&r->svc->stop)) {
        if (choreo__store_notified(r->st) && heed_wake)
            break;
        int64_t left_ms = (deadline - choreo__mono_us()) / 1000;
        if (left_ms <= 0)
            break;
        struct pollfd p[2] = { { .fd = r->wake_fd, .events = POLLIN },
                               { .fd = choreo__store_socket(r->st), .events = POLLIN } };
        int n = poll(p, p[1].fd >= 0 ? 2 : 1,
                     (int)(left_ms < CHOREO_STOP_SLICE_MS ? left_ms : CHOREO_STOP_SLICE_MS));
        if (n > 0 && (p[0].revents & POLLIN)) {
            uint64_t count;
            ssize_t got = read(r->wake_fd, &count, sizeof count);
            (void)got;
            if (heed_wake)
                break;
        }
    }
    pthread_mutex_lock(&r->lock);
    r->wake = false;
    pthread_mutex_unlock(&r->lock);
}

/* Sleeps until a commit wakes the relay (when heed_wake), wait_ms pass, or
 * the service stops, in short slices so that a stop is noticed promptly. */
static void relay_sleep(choreo_relay *r, int64_t wait_ms, bool heed_wake)
{
    if (r->shared) {
        relay_poll(r, wait_ms, heed_wake);
        return;
    }
    pthread_mutex_lock(&r->lock);
    int64_t deadline = choreo__mono_us() + wait_ms * 1000;
    while (!(heed_wake && r->wake) && !atomic_load(&r->svc->stop)) {
        int64_t left_ms = (deadline - choreo__mono_us()) / 1000;
        if (left_ms <= 0)
            break;
        struct timespec until =
            choreo__deadline_in_ms(left_ms < CHOREO_STOP_SLICE_MS ? left_ms : CHOREO_STOP_SLICE_MS);
        pthread_cond_timedwait(&r->cond, &r->lock, &until);
    }
    r->wake = false;
    pthread_mutex_unlock(&r->lock);
}

static void *relay_main(void *arg)
{
    prctl(PR_SET_NAME, "choreo-relay"); /* shown by top -H and perf */
    choreo_relay *r = arg;
    choreo_service *svc = r->svc;
    int64_t backoff_ms = 0, last_prune_us = 0, last_count_us = 0;
    if (!r->shared)
        atomic_store(&svc->stats.relay_active, true); /* a SQLite outbox has one relay */
    while (!atomic_load(&svc->stop)) {
        if (r->shared && !relay_claim(r)) {
            relay_sleep(r, CHOREO_RELAY_STANDBY_MS, false);
            continue;
        }
        maybe_prune(r, &last_prune_us); /* on a shared database, by the active relay only */
        int n = relay_round(r);
        if (n < 0) {
            backoff_ms = backoff_ms ? backoff_ms * 2 : CHOREO_RELAY_BACKOFF_FIRST_MS;
            if (backoff_ms > CHOREO_RELAY_BACKOFF_MAX_MS)
                backoff_ms = CHOREO_RELAY_BACKOFF_MAX_MS;
        } else {
            backoff_ms = 0;
        }
        if (n >= CHOREO_RELAY_BATCH)
            continue; /* more may be due right now */
        int64_t wait_ms = svc->cfg->relay_scan_ms;
        int64_t pending = 0;
        /* A round of handed copies read nothing: what it could have changed
         * of the earliest due time, publish_handed noted. */
        if (r->from_table && choreo__outbox_next_due(r->st, &r->next_due_ms) != CHOREO_OK)
            r->next_due_ms = INT64_MAX;
        int64_t next = r->next_due_ms;
        if (next != INT64_MAX) {
            int64_t until = next - choreo__now_ms();
            /* Held rows are due and still unpublished in the table: with
             * any held, a row due now is most likely one of them, and the
             * wait ends for their marking anyway (below). */
            if (until <= 0 && r->nheld > 0)
                until = wait_ms;
            if (until < wait_ms)
                wait_ms = until < 0 ? 0 : until;
        }
        /* Counting walks an index of every pending row: at most once a scan. */
        int64_t now_us = choreo__mono_us();
        if (now_us - last_count_us >= svc->cfg->relay_scan_ms * 1000) {
            last_count_us = now_us;
            if (choreo__outbox_pending(r->st, &pending) == CHOREO_OK)
                atomic_store(&svc->stats.outbox_pending, (uint64_t)pending);
        }
        /* After a failed round the backoff holds even when commits wake the
         * relay: a cluster electing a stream leader answers no responders at
         * once, and a retry per commit would only flood it and the log. */
        if (backoff_ms)
            wait_ms = backoff_ms;
        if (r->nheld > 0) {
            int64_t mark_in = (mark_in_us(r) + 999) / 1000; /* rounded up: not before due */
            if (mark_in < wait_ms)
                wait_ms = mark_in < 0 ? 0 : mark_in;
        }
        relay_sleep(r, wait_ms, backoff_ms == 0);
    }
    /* Closes the window; what committing threads sent through it is
     * answered and marked before the relay ends. */
    pthread_mutex_lock(&r->lock);
    r->direct = false;
    bool sent = r->nbatch > 0;
    pthread_mutex_unlock(&r->lock);
    if (sent)
        relay_round(r);
    if (!r->shared || r->active)
        mark_held(r);
    atomic_store(&svc->stats.relay_active, false);
    return NULL;
}

choreo_status choreo__relay_start(choreo_relay *r)
{
    choreo_status s = choreo__transport_ack_subscribe(r->svc->tp, r->svc->cfg, &r->acks,
                                                      r->inbox, sizeof r->inbox);
    if (s != CHOREO_OK)
        return s;
    r->from_table = true;
    r->next_due_ms = INT64_MAX;
    r->cursor = 0;
    r->cursor_since_us = 0;
    r->nheld = 0;
    r->naside = 0;
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
    if (r) {
        natsSubscription_Destroy(r->acks); /* before the transport closes */
        r->acks = NULL;
    }
}

void choreo__relay_destroy(choreo_relay *r)
{
    if (!r)
        return;
    choreo__relay_join(r);
    choreo__outbox_copies_free(&r->handed);
    choreo__outbox_copies_free(&r->taken);
    choreo__store_close(r->st);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
