/* Emitting events: an event becomes an envelope plus an outbox row in the
 * caller's transaction, so it is published exactly when the business writes
 * commit. Also the commands API (begin, commit, rollback from outside a
 * handler) on the service's command connection. */
#include "tx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "envelope.h"
#include "exporter.h"
#include "extras.h"
#include "outbox.h"
#include "relay.h"
#include "status.h"
#include "trace.h"
#include "ulid.h"

sqlite3 *choreo_tx_db(choreo_tx *tx)
{
    if (tx && tx->st->engine != ENGINE_SQLITE) {
        choreo__fail(CHOREO_EINVAL, "choreo_tx_db: this service's store is PostgreSQL (db is "
                                    "a postgresql:// URL): use choreo_tx_pg for its connection");
        return NULL;
    }
    return tx ? tx->st->db : NULL;
}

choreo_status choreo_tx_prepare(choreo_tx *tx, const char *sql, sqlite3_stmt **out)
{
    if (out)
        *out = NULL;
    if (!tx || !sql || !out)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_prepare: tx, sql and out must not be NULL");
    if (tx->st->engine != ENGINE_SQLITE)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_prepare: this service's store is PostgreSQL: prepare on "
                            "choreo_tx_pg's connection (PQprepare) instead");
    return choreo__store_user_stmt(tx->st, sql, out);
}

struct pg_conn *choreo_tx_pg(choreo_tx *tx)
{
    if (tx && tx->st->engine != ENGINE_POSTGRES) {
        choreo__fail(CHOREO_EINVAL, "choreo_tx_pg: this service's store is the SQLite file %s: "
                                    "use choreo_tx_db for its connection",
                     tx->svc && tx->svc->cfg ? tx->svc->cfg->db : "");
        return NULL;
    }
    return tx ? choreo__store_pgconn(tx->st) : NULL;
}

void choreo_tx_set_reason(choreo_tx *tx, const char *reason)
{
    if (tx)
        snprintf(tx->reason, sizeof tx->reason, "%s", reason ? reason : "");
}

const choreo_event *choreo_tx_event(const choreo_tx *tx)
{
    return tx ? tx->ev : NULL;
}

/* Published at the unix time at_ms, or delay_ms after the event's own
 * timestamp, whichever is later (both 0: now). */
static choreo_status emit(choreo_tx *tx, int64_t at_ms, int64_t delay_ms, const char *type,
                          uint32_t version, const char *saga, const void *data, size_t data_len,
                          char id_out[CHOREO_ID_SIZE])
{
    choreo__clear_error();
    if (!tx || !type)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_emit: tx and type must not be NULL");
    if (!choreo__type_valid(type, strlen(type)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_emit: \"%s\" is not a valid event type: use UpperCamel "
                            "ASCII letters and digits, at most %d characters",
                            type, CHOREO_TYPE_MAX);
    if (version < 1 || version > 65535)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_emit: version %u of %s is outside 1..65535",
                            version, type);
    if (!saga)
        saga = tx->ev ? tx->ev->saga : NULL;
    if (!saga)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_emit: %s needs a saga id outside a handler: make one "
                            "with choreo_saga_new",
                            type);
    if (!choreo__saga_valid(saga, strlen(saga)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_emit: saga id \"%.64s\" is not 1 to 64 characters of "
                            "A-Z a-z 0-9 _ -",
                            saga);
    if (data_len > 0 && !data)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_emit: data is NULL but data_len is %zu",
                            data_len);

    choreo_service *svc = tx->svc;
    choreo_envelope env;
    memset(&env, 0, sizeof env);
    choreo__ulid_new(env.id);
    snprintf(env.type, sizeof env.type, "%s", type);
    env.version = version;
    snprintf(env.saga, sizeof env.saga, "%s", saga);
    if (tx->ev)
        snprintf(env.cause, sizeof env.cause, "%s", tx->ev->id);
    snprintf(env.src, sizeof env.src, "%s", svc->cfg->service);
    env.ts_ms = choreo__now_ms();
    env.data = data;
    env.data_len = data_len;

    choreo_mp_writer w;
    choreo_mp_writer_init(&w, (size_t)svc->cfg->max_event_bytes);
    choreo_status s = choreo__envelope_encode(&env, &w);
    if (s != CHOREO_OK) {
        choreo_mp_writer_free(&w);
        if (s == CHOREO_ETOOBIG)
            return choreo__fail(s,
                                "choreo_tx_emit: %s with %zu bytes of data is over the service's "
                                "max_event_bytes of %lld as an envelope: send less data, or "
                                "raise max_event_bytes (at most %d)",
                                type, data_len, (long long)svc->cfg->max_event_bytes,
                                CHOREO_EVENT_BYTES_LIMIT);
        return s;
    }
    /* The event's trace: the handled event's, or one per transaction
     * outside a handler (a saga's start). */
    char trace[CHOREO_TRACEPARENT_SIZE];
    if (tx->ev && tx->ev->traceparent && tx->ev->traceparent[0]) {
        choreo__traceparent_child(tx->ev->traceparent, trace);
    } else {
        if (!tx->trace[0])
            choreo__traceparent_child(NULL, tx->trace);
        choreo__traceparent_child(tx->trace, trace);
    }
    char subject[256], headers[512];
    snprintf(subject, sizeof subject, "%s.%s.%s", svc->cfg->prefix, type, saga);
    int hlen = choreo__outbox_headers(headers, sizeof headers, env.id, type, saga,
                                      svc->cfg->service, trace);
    /* What the relay will put on the wire: the body plus the headers as NATS
     * encodes them ("NATS/1.0\r\n", one "Key: value\r\n" each, "\r\n"). */
    int64_t wire = (int64_t)w.len + 12 + hlen + 4;
    int64_t limit = atomic_load(&svc->max_payload);
    if (limit > 0 && wire > limit) {
        choreo_mp_writer_free(&w);
        return choreo__fail(CHOREO_ETOOBIG,
                            "choreo_tx_emit: %s would be %lld bytes on the wire with its "
                            "headers, over the NATS server's max_payload of %lld: send less "
                            "data, or raise max_payload in the server's configuration",
                            type, (long long)wire, (long long)limit);
    }
    choreo_outbox_row row = {
        .event_id = env.id,
        .subject = subject,
        .headers = headers,
        .body = w.buf,
        .body_len = w.len,
        .created_us = choreo__now_us(),
    };
    /* A delay past what an int64 of ms holds is kept as the end of time. */
    int64_t after = delay_ms > INT64_MAX - env.ts_ms ? INT64_MAX : env.ts_ms + delay_ms;
    row.publish_at = at_ms > after ? at_ms : after;
    bool taken = false;
    s = choreo__extras_emit(&svc->extras, tx->naive, tx->st, env.id, type, saga, subject, w.buf,
                            w.len, env.ts_ms, row.publish_at <= env.ts_ms, &taken);
    if (s == CHOREO_OK && !taken)
        s = choreo__outbox_insert(tx->st, &row, &row.seq);
    if (s == CHOREO_OK && row.seq > 0 && tx->copies)
        choreo__outbox_copy(tx->copies, &row);
    choreo_mp_writer_free(&w);
    if (s != CHOREO_OK)
        return s;
    tx->emitted++;
    choreo__mlog_add(tx->mlog, ML_EMIT, -1, choreo__metrics_type(&svc->metrics, type), 0);
    if (id_out)
        memcpy(id_out, env.id, CHOREO_ID_SIZE);
    return CHOREO_OK;
}

int choreo__outbox_headers(char *out, size_t cap, const char *id, const char *type,
                           const char *saga, const char *source, const char *trace)
{
    return snprintf(out, cap,
                    "Nats-Msg-Id: %s\nChoreo-Type: %s\nChoreo-Saga: %s\nChoreo-Source: %s\n"
                    CHOREO_HDR_TRACEPARENT ": %s\n",
                    id, type, saga, source, trace);
}

choreo_status choreo_tx_emit(choreo_tx *tx, const char *type, uint32_t version, const char *saga,
                             const void *data, size_t data_len, char id_out[CHOREO_ID_SIZE])
{
    return emit(tx, 0, 0, type, version, saga, data, data_len, id_out);
}

choreo_status choreo_tx_emit_after(choreo_tx *tx, int64_t delay_ms, const char *type,
                                   uint32_t version, const char *saga, const void *data,
                                   size_t data_len, char id_out[CHOREO_ID_SIZE])
{
    return emit(tx, 0, delay_ms > 0 ? delay_ms : 0, type, version, saga, data, data_len, id_out);
}

choreo_status choreo_tx_emit_at(choreo_tx *tx, int64_t at_ms, const char *type, uint32_t version,
                                const char *saga, const void *data, size_t data_len,
                                char id_out[CHOREO_ID_SIZE])
{
    return emit(tx, at_ms, 0, type, version, saga, data, data_len, id_out);
}

choreo_tx_mark choreo__tx_mark(const choreo_tx *tx)
{
    return (choreo_tx_mark){
        .naive = tx->naive ? tx->naive->n : 0,
        .mlog = tx->mlog ? tx->mlog->n : 0,
        .copies = tx->copies ? tx->copies->n : 0,
        .emitted = tx->emitted,
        .copies_incomplete = tx->copies && tx->copies->incomplete,
    };
}

void choreo__tx_undo(choreo_tx *tx, choreo_tx_mark m)
{
    choreo__extras_rolled_back(tx->naive, m.naive);
    if (tx->mlog)
        choreo__mlog_truncate(tx->mlog, m.mlog);
    if (tx->copies) {
        choreo__outbox_copies_truncate(tx->copies, m.copies);
        /* Truncating to none forgets that a copy was lost before the mark;
         * the relay must still read that row from the table. */
        tx->copies->incomplete = tx->copies->incomplete || m.copies_incomplete;
    }
    tx->emitted = m.emitted;
}

/* The unix milliseconds in a ULID saga id (choreo_saga_new), or -1. */
static int64_t saga_start_ms(const char *saga)
{
    static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (strlen(saga) != 26 || !choreo__ulid_valid(saga, 26))
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 10; i++) {
        const char *d = strchr(digits, saga[i]);
        if (!d)
            return -1;
        ms = ms * 32 + (d - digits);
    }
    return ms;
}

choreo_status choreo_tx_saga_end(choreo_tx *tx, const char *saga, choreo_saga_outcome outcome,
                                 const char *reason)
{
    choreo__clear_error();
    if (!tx)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_saga_end: tx must not be NULL");
    if (!saga)
        saga = tx->ev ? tx->ev->saga : NULL;
    if (!saga || !choreo__saga_valid(saga, strlen(saga)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_saga_end: a valid saga id is needed (outside a handler, "
                            "pass it explicitly)");
    if ((unsigned)outcome > CHOREO_SAGA_TIMED_OUT)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_saga_end: unknown outcome %d",
                            (int)outcome);
    if (!reason)
        reason = "";
    size_t n = strlen(reason);
    bool ok = n <= CHOREO_SAGA_REASON_MAX;
    for (size_t i = 0; i < n && ok; i++)
        ok = (reason[i] >= 'a' && reason[i] <= 'z') || (reason[i] >= '0' && reason[i] <= '9') ||
             reason[i] == '_';
    if (!ok)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_saga_end: reason \"%.40s\" is not a short code of a-z "
                            "0-9 _ (at most %d characters); it becomes a metric label, so "
                            "keep the set small and put details in your own tables",
                            reason, CHOREO_SAGA_REASON_MAX);
    choreo_service *svc = tx->svc;
    int64_t started = saga_start_ms(saga);
    int64_t took_us = started >= 0 ? (choreo__now_ms() - started) * 1000 : -1;
    choreo__mlog_add(tx->mlog, ML_SAGA, -1,
                     choreo__metrics_saga(&svc->metrics, outcome, reason),
                     took_us < 0 ? -1 : took_us);
    CHOREO_LOG(&svc->log, CHOREO_LOG_DEBUG, "saga ended", "saga=%s outcome=%s reason=%s", saga,
               outcome == CHOREO_SAGA_COMPLETED   ? "completed"
               : outcome == CHOREO_SAGA_CANCELLED ? "cancelled"
               : outcome == CHOREO_SAGA_FAILED    ? "failed"
                                                  : "timed_out",
               reason[0] ? reason : "-");
    return CHOREO_OK;
}

choreo_status choreo_service_begin(choreo_service *svc, choreo_tx **out)
{
    if (!svc || !out)
        return choreo__fail(CHOREO_EINVAL, "choreo_service_begin: svc and out must not be NULL");
    choreo__clear_error();
    if (choreo__dispatch_on_dispatcher(svc))
        return choreo__fail(CHOREO_ESTATE,
                            "choreo_service_begin called on the dispatcher thread: a handler "
                            "already has a transaction, use the tx it was given");
    if (choreo__command_open_here(svc))
        return choreo__fail(CHOREO_ESTATE,
                            "choreo_service_begin: this thread already has a command open on "
                            "service %s; commit or roll it back first (one command at a time "
                            "per thread)",
                            svc->cfg->service);
    choreo_tx *tx = calloc(1, sizeof *tx);
    if (!tx)
        return choreo__fail(CHOREO_ENOMEM, "out of memory beginning a command");
    pthread_mutex_lock(&svc->cmd_lock);
    /* A PostgreSQL server that restarted dropped the command connection:
     * BEGIN makes it again, and is tried again for db_wait_ms while the
     * server is still away. */
    int64_t until = choreo__mono_us() + svc->cfg->db_wait_ms * 1000;
    choreo_status s = choreo__store_begin(svc->cmd_store);
    while (choreo__store_retry_away(svc->cmd_store, s, until))
        s = choreo__store_begin(svc->cmd_store);
    if (s != CHOREO_OK) {
        pthread_mutex_unlock(&svc->cmd_lock);
        free(tx);
        return s;
    }
    atomic_store(&svc->cmd_owner, (uintptr_t)pthread_self());
    tx->svc = svc;
    tx->st = svc->cmd_store;
    tx->command = true;
    tx->naive = &tx->naive_own;
    tx->copies = &tx->copies_own;
    tx->route = -1;
    tx->mlog = &tx->mlog_own;
    *out = tx;
    return CHOREO_OK;
}

choreo_status choreo_tx_commit(choreo_tx *tx)
{
    if (!tx || !tx->command)
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_commit takes a tx from choreo_service_begin; handler "
                            "transactions are committed by the dispatcher");
    choreo__clear_error();
    choreo_service *svc = tx->svc;
    choreo_status s = choreo__extras_commit(&svc->extras, tx->st);
    atomic_store(&svc->cmd_owner, 0);
    pthread_mutex_unlock(&svc->cmd_lock);
    if (s == CHOREO_OK)
        choreo__metrics_commit(svc, &tx->mlog_own);
    if (s == CHOREO_OK && tx->emitted > 0) {
        choreo__extras_crash(&svc->extras, CP_AFTER_COMMIT_BEFORE_PUBLISH);
        choreo__extras_committed(&svc->extras, &tx->naive_own);
        choreo__relay_hand(svc->relay, &tx->copies_own);
    }
    choreo__outbox_copies_free(&tx->copies_own);
    choreo__naive_free(&tx->naive_own);
    choreo__mlog_free(&tx->mlog_own);
    free(tx);
    return s;
}

void choreo_tx_rollback(choreo_tx *tx)
{
    if (!tx || !tx->command)
        return;
    choreo__store_rollback(tx->st);
    atomic_store(&tx->svc->cmd_owner, 0);
    pthread_mutex_unlock(&tx->svc->cmd_lock);
    choreo__outbox_copies_free(&tx->copies_own);
    choreo__naive_free(&tx->naive_own);
    choreo__mlog_free(&tx->mlog_own);
    free(tx);
}

choreo_status choreo_reply_set(choreo_reply *reply, const void *data, size_t len)
{
    if (!reply || (len > 0 && !data))
        return choreo__fail(CHOREO_EINVAL, "choreo_reply_set: reply is NULL or data is missing");
    /* Refused here, where the handler can still answer with something
     * smaller: after the commit a reply the client refuses is only lost. */
    if (reply->max_len > 0 && (uint64_t)len > (uint64_t)reply->max_len)
        return choreo__fail(CHOREO_ETOOBIG,
                            "choreo_reply_set: a reply of %zu bytes is over the NATS server's "
                            "max_payload of %lld: reply with less (a short error answer, or "
                            "what the requester needs to fetch the rest), or raise max_payload "
                            "in the server's configuration",
                            len, (long long)reply->max_len);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return choreo__fail(CHOREO_ENOMEM, "out of memory setting a reply");
    if (len)
        memcpy(copy, data, len);
    free(reply->data);
    reply->data = copy;
    reply->len = len;
    return CHOREO_OK;
}
