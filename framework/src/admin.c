/* Repair of parked messages for operators: list, show, retry and drop the
 * rows of choreo_dead in a service's database. A retry publishes the original
 * body on the original subject, so the event keeps its id, with a header
 * Choreo-Retry-For naming the consumer that parked it: every other consumer
 * of that type acks it without applying it. Their inbox marks alone could not
 * be trusted to, since they are pruned after inbox_retention_s and a retry
 * may come later than that. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "envelope.h"
#include "log.h"
#include "status.h"
#include "tuning.h"
#include "store.h"
#include "transport.h"


choreo_status choreo__admin_new(const choreo_config *cfg, choreo_admin **out)
{
    choreo_admin *adm = calloc(1, sizeof *adm);
    if (!adm)
        return choreo__fail(CHOREO_ENOMEM, "out of memory opening a database");
    adm->cfg = choreo__config_clone(cfg);
    if (!adm->cfg) {
        free(adm);
        return choreo__fail(CHOREO_ENOMEM, "out of memory copying the configuration");
    }
    choreo__log_level_parse(adm->cfg->log_level, &adm->log.level);
    snprintf(adm->log.service, sizeof adm->log.service, "%s",
             adm->cfg->service ? adm->cfg->service : "choreoctl");
    choreo_status s = choreo__crashpoints_load(&adm->crash);
    if (s != CHOREO_OK) {
        choreo_admin_close(adm);
        return s;
    }
    if (adm->crash.any)
        CHOREO_LOG(&adm->log, CHOREO_LOG_WARN, "crash points are on (testing only)",
                   "spec=\"%s\"", CHOREO_SAFE(getenv("CHOREO_CRASHPOINTS")));
    *out = adm;
    return CHOREO_OK;
}

choreo_status choreo__admin_writable(const choreo_admin *adm, const char *what)
{
    if (!adm->readonly)
        return CHOREO_OK;
    return choreo__fail(CHOREO_ESTATE, "%s: the database was opened to be read only "
                        "(choreo_admin_open_readonly); open it with choreo_admin_open", what);
}

choreo_status choreo_admin_open(choreo_admin **out, const choreo_config *cfg)
{
    if (!out || !cfg)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_open: out and cfg must not be NULL");
    if (!cfg->db)
        return choreo__fail(CHOREO_ECONFIG, "setting db is required: pass --db FILE");
    choreo_admin *adm = NULL;
    choreo_status s = choreo__admin_new(cfg, &adm);
    if (s != CHOREO_OK)
        return s;
    s = choreo__store_open(&adm->st, adm->cfg->db, adm->cfg->synchronous,
                           (int)adm->cfg->busy_timeout_ms);
    if (s != CHOREO_OK) {
        choreo_admin_close(adm);
        return s;
    }
    adm->schema = CHOREO_SCHEMA_VERSION;
    *out = adm;
    return CHOREO_OK;
}

choreo_status choreo__admin_connect(choreo_admin *adm, choreo_transport **out)
{
    if (adm->cfg->connect_wait_ms == 0)
        adm->cfg->connect_wait_ms = 5000; /* an operator's command should not wait forever */
    atomic_bool never = false;
    adm->watch = (choreo_nats_watch){ &adm->log, NULL, false };
    return choreo__transport_connect(out, adm->cfg, &adm->watch, &never, false);
}

void choreo_admin_close(choreo_admin *adm)
{
    if (!adm)
        return;
    choreo__store_close(adm->st);
    choreo_config_destroy(adm->cfg);
    free(adm);
}

#define COLUMNS "id, consumer, event_id, event_type, subject, reason, attempts, parked_at," \
                " updated_at, status, length(body)"

void choreo__admin_copy_text(char *dst, size_t cap, choreo_q *s, int col)
{
    const unsigned char *t = choreo__q_text(s, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void read_entry(choreo_q *s, choreo_dead_entry *e)
{
    memset(e, 0, sizeof *e);
    e->id = choreo__q_int64(s, 0);
    choreo__admin_copy_text(e->consumer, sizeof e->consumer, s, 1);
    choreo__admin_copy_text(e->event_id, sizeof e->event_id, s, 2);
    choreo__admin_copy_text(e->event_type, sizeof e->event_type, s, 3);
    choreo__admin_copy_text(e->subject, sizeof e->subject, s, 4);
    choreo__admin_copy_text(e->reason, sizeof e->reason, s, 5);
    e->attempts = choreo__q_int64(s, 6);
    e->parked_at_ms = choreo__q_int64(s, 7);
    e->updated_at_ms = choreo__q_int64(s, 8);
    choreo__admin_copy_text(e->status, sizeof e->status, s, 9);
    e->body_len = (size_t)choreo__q_int64(s, 10);
}

choreo_status choreo_admin_dead_list(choreo_admin *adm, const char *status,
                                     choreo_dead_entry **out, size_t *n)
{
    if (!adm || !out || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_dead_list: NULL argument");
    if (status && strcmp(status, "parked") && strcmp(status, "retried") && strcmp(status, "dropped"))
        return choreo__fail(CHOREO_EINVAL,
                            "unknown status \"%s\": use parked, retried or dropped", status);
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "SELECT " COLUMNS " FROM choreo_dead"
                                " WHERE CAST(?1 AS TEXT) IS NULL OR status = ?1 ORDER BY id", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "listing parked messages");
    choreo__q_bind_text(s, 1, status, -1);
    choreo_dead_entry *list = NULL;
    size_t count = 0, cap = 0;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            choreo_dead_entry *grown = realloc(list, cap * sizeof *list);
            if (!grown) {
                free(list);
                choreo__q_finalize(s);
                return choreo__fail(CHOREO_ENOMEM, "out of memory listing parked messages");
            }
            list = grown;
        }
        read_entry(s, &list[count++]);
    }
    choreo__q_finalize(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return choreo__store_error(adm->st, rc, "listing parked messages");
    }
    *out = list;
    *n = count;
    return CHOREO_OK;
}

choreo_status choreo_admin_dead_get(choreo_admin *adm, int64_t id, choreo_dead_entry *out,
                                    uint8_t **body, size_t *body_len)
{
    if (!adm || !out)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_dead_get: NULL argument");
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "SELECT " COLUMNS ", body FROM choreo_dead WHERE id = ?1", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading a parked message");
    choreo__q_bind_int64(s, 1, id);
    rc = choreo__q_step(s);
    if (rc != SQLITE_ROW) {
        choreo__q_finalize(s);
        char shown[1024];
        choreo__store_display(adm->cfg->db, shown, sizeof shown);
        if (rc == SQLITE_DONE)
            return choreo__fail(CHOREO_ENOTFOUND,
                                "no parked message with id %lld in %s: see choreoctl dead list",
                                (long long)id, shown);
        return choreo__store_error(adm->st, rc, "reading a parked message");
    }
    /* Everything that can fail comes first: the out-parameters are written
     * only on success. */
    uint8_t *copy = NULL;
    size_t len = 0;
    if (body) {
        len = (size_t)choreo__q_bytes(s, 11);
        copy = malloc(len ? len : 1);
        if (!copy) {
            choreo__q_finalize(s);
            return choreo__fail(CHOREO_ENOMEM, "out of memory reading a parked message");
        }
        if (len)
            memcpy(copy, choreo__q_blob(s, 11), len);
    }
    read_entry(s, out);
    if (body) {
        *body = copy;
        if (body_len)
            *body_len = len;
    }
    choreo__q_finalize(s);
    return CHOREO_OK;
}

static choreo_status set_status(choreo_admin *adm, int64_t id, const char *status)
{
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "UPDATE choreo_dead SET status = ?1, updated_at = ?2"
                                " WHERE id = ?3 AND status = 'parked'", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "updating a parked message");
    choreo__q_bind_text(s, 1, status, -1);
    choreo__q_bind_int64(s, 2, choreo__now_ms());
    choreo__q_bind_int64(s, 3, id);
    rc = choreo__q_step(s);
    choreo__q_finalize(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(adm->st, rc, "updating a parked message");
    if (choreo__store_changes(adm->st) != 1)
        return choreo__fail(CHOREO_ESTATE, "message %lld is no longer parked", (long long)id);
    return CHOREO_OK;
}

static choreo_status require_parked(choreo_admin *adm, int64_t id, choreo_dead_entry *e,
                                    uint8_t **body, size_t *len)
{
    choreo_status s = choreo_admin_dead_get(adm, id, e, body, len);
    if (s != CHOREO_OK)
        return s;
    if (strcmp(e->status, "parked") != 0) {
        if (body)
            free(*body);
        return choreo__fail(CHOREO_ESTATE, "message %lld is %s, not parked: nothing to do",
                            (long long)id, e->status);
    }
    return CHOREO_OK;
}

choreo_status choreo_admin_dead_drop(choreo_admin *adm, int64_t id)
{
    if (!adm)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_dead_drop: adm is NULL");
    choreo_status s = choreo__admin_writable(adm, "dropping a parked message");
    if (s != CHOREO_OK)
        return s;
    choreo_dead_entry e;
    s = require_parked(adm, id, &e, NULL, NULL);
    return s == CHOREO_OK ? set_status(adm, id, "dropped") : s;
}

/* Sets the headers of a retry: a fresh broker msg id (the original may still
 * be in the duplicate window, and then JetStream would drop the retry), the
 * original event's type, saga and source as the emitter set them (the saga
 * and source from the envelope, when the body is one), the original id in
 * Choreo-Retry-Of, in Choreo-Retry-For the one consumer meant to handle it,
 * and in Choreo-Retry-Row the parked row it retries. */
static natsStatus retry_headers(natsMsg *m, const choreo_dead_entry *e, const uint8_t *body,
                                size_t len, size_t max_bytes)
{
    /* A row the relay set aside never reached the stream: it goes to every
     * consumer, under its own id, so that repeating the retry is dropped by
     * the broker's duplicate window. */
    bool from_outbox = strcmp(e->consumer, CHOREO_OUTBOX_CONSUMER) == 0 && e->event_id[0];
    char msg_id[96];
    if (from_outbox)
        snprintf(msg_id, sizeof msg_id, "%s", e->event_id);
    else
        snprintf(msg_id, sizeof msg_id, "%s-retry-%lld-%lld",
                 e->event_id[0] ? e->event_id : "raw", (long long)e->id,
                 (long long)choreo__now_ms());
    natsStatus ns = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    if (ns == NATS_OK && e->event_type[0])
        ns = natsMsgHeader_Set(m, "Choreo-Type", e->event_type);
    choreo_envelope env;
    if (ns == NATS_OK && choreo__envelope_decode(&env, body, len, max_bytes) == CHOREO_OK) {
        ns = natsMsgHeader_Set(m, "Choreo-Saga", env.saga);
        if (ns == NATS_OK)
            ns = natsMsgHeader_Set(m, "Choreo-Source", env.src);
    }
    if (from_outbox)
        return ns;
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, "Choreo-Retry-Of", e->event_id[0] ? e->event_id : "-");
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, CHOREO_HDR_RETRY_FOR, e->consumer);
    char row[24];
    snprintf(row, sizeof row, "%lld", (long long)e->id);
    if (ns == NATS_OK)
        ns = natsMsgHeader_Set(m, CHOREO_HDR_RETRY_ROW, row);
    return ns;
}

/* Refuses a retry that would go to another system than the one the
 * database belongs to: the consumer that parked the message must be on the
 * stream of the server it is about to be published to, bound to this
 * database. A row the relay set aside has no consumer; its stream must be
 * there. */
static choreo_status check_target(choreo_admin *adm, choreo_transport *tp,
                                  const choreo_dead_entry *e)
{
    if (strcmp(e->consumer, CHOREO_OUTBOX_CONSUMER) == 0)
        return choreo__transport_stream_check(tp, adm->cfg);
    int64_t db_id = 0;
    choreo_status s = choreo__store_identity(adm->st, &db_id);
    if (s != CHOREO_OK)
        return s;
    choreo__transport_bind(tp, db_id);
    bool exists = false;
    char other[32];
    s = choreo__transport_consumer_binding(tp, adm->cfg, e->consumer, &exists, other,
                                           sizeof other);
    if (s != CHOREO_OK)
        return s;
    /* Messages name the server and the database without their passwords. */
    char urls[1024], shown[1024];
    choreo__redact_urls(adm->cfg->nats_url, urls, sizeof urls);
    choreo__store_display(adm->cfg->db, shown, sizeof shown);
    if (!exists)
        return choreo__fail(CHOREO_ENOTFOUND,
                            "the consumer %s that parked message %lld is not on stream %s of "
                            "the NATS server at %s, so nothing there would apply the retry: "
                            "pass the service's own server (--nats-url) and stream (--stream); "
                            "if the consumer was deleted, start the service, which makes it "
                            "again, then retry",
                            e->consumer, (long long)e->id, adm->cfg->stream, urls);
    if (other[0])
        return choreo__fail(CHOREO_ELOCKED,
                            "the consumer %s on stream %s of the NATS server at %s belongs to "
                            "another database (identity %s) than %s: the retry would be "
                            "applied there, not here. Pass the server of the service whose "
                            "database this is (--nats-url)",
                            e->consumer, adm->cfg->stream, urls, other, shown);
    return CHOREO_OK;
}

/* Publishes body on subject, for the consumer that parked it only, and
 * waits for the PubAck. */
static choreo_status republish(choreo_admin *adm, choreo_transport *tp,
                               const choreo_dead_entry *e, const uint8_t *body, size_t len)
{
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, e->subject, NULL, (const char *)body, (int)len);
    if (ns == NATS_OK)
        ns = retry_headers(m, e, body, len, (size_t)adm->cfg->max_event_bytes);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (ns == NATS_OK)
        ns = js_PublishMsg(&pa, tp->js, m, NULL, &jerr);
    choreo_status s = CHOREO_OK;
    if (ns != NATS_OK)
        s = choreo__nats_error(ns, "publishing the parked message again");
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    return s;
}

/* The row is marked retried in a transaction that stays open until the
 * PubAck: a second retry of the same row at the same moment waits for it
 * and then finds the row no longer parked, instead of publishing too; a
 * database that cannot be written refuses before anything is published.
 * A crash after the publish leaves the row parked: a second retry is then
 * dropped by the consumer's inbox. */
choreo_status choreo_admin_dead_retry(choreo_admin *adm, int64_t id)
{
    if (!adm)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_dead_retry: adm is NULL");
    choreo_status s = choreo__admin_writable(adm, "retrying a parked message");
    if (s != CHOREO_OK)
        return s;
    choreo_dead_entry e;
    s = require_parked(adm, id, &e, NULL, NULL); /* a wrong id is told before NATS */
    if (s != CHOREO_OK)
        return s;
    choreo_transport *tp = NULL;
    s = choreo__admin_connect(adm, &tp);
    if (s != CHOREO_OK)
        return s;
    uint8_t *body = NULL;
    size_t len = 0;
    s = choreo__store_begin(adm->st);
    if (s == CHOREO_OK)
        s = choreo__store_patient(adm->st);
    bool open = s == CHOREO_OK;
    if (s == CHOREO_OK)
        s = require_parked(adm, id, &e, &body, &len);
    if (s == CHOREO_OK) {
        s = set_status(adm, id, "retried");
        if (s == CHOREO_OK)
            s = check_target(adm, tp, &e);
        if (s == CHOREO_OK)
            s = republish(adm, tp, &e, body, len);
        free(body);
    }
    if (s == CHOREO_OK)
        choreo__crashpoint(&adm->crash, CP_RETRY_AFTER_PUBLISH);
    if (s == CHOREO_OK) {
        s = choreo__store_commit(adm->st);
        if (s != CHOREO_OK)
            s = choreo__fail(s, "message %lld was published again, but could not be marked "
                             "retried (%s): it still shows as parked; a second retry is "
                             "dropped by the consumer's inbox once the first is applied",
                             (long long)id, choreo_last_error());
    } else if (open) {
        choreo__store_rollback(adm->st);
    }
    choreo__transport_close(tp);
    return s;
}
