/* A service's durable consumers: the record of the handlers its code
 * registered at its last start (table choreo_consumers), and the operator's
 * view that sets it against the consumers on the server, so that a consumer
 * left behind by a renamed or removed handler can be found and deleted. */
#include "consumers.h"

#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "clock.h"
#include "envelope.h"
#include "status.h"

/* A database holds one service's outbox, inbox and business rows. A service
 * started on another's database (a mistyped db setting) would relay that
 * service's events as its own and take its record over, so it is refused
 * while the record names another service. */
static choreo_status refuse_other_owner(choreo_store *st, const choreo_config *cfg)
{
    choreo_q *q = NULL;
    int rc = choreo__q_prepare(st, "SELECT service FROM choreo_consumers WHERE service <> ?1"
                                   " LIMIT 1", &q);
    if (rc == SQLITE_OK) {
        choreo__q_bind_text(q, 1, cfg->service, -1);
        rc = choreo__q_step(q);
    }
    choreo_status s = CHOREO_OK;
    if (rc == SQLITE_ROW) {
        const char *owner = (const char *)choreo__q_text(q, 0);
        char db[512];
        choreo__store_display(cfg->db, db, sizeof db);
        s = choreo__fail(CHOREO_ECONFIG,
                         "database %s belongs to service %s (its handlers are recorded there): "
                         "two services on one database would mix their outboxes, inboxes and "
                         "consumers. Give service %s a database of its own; to rename service "
                         "%s to %s on this database, remove the old name's record first: "
                         "DELETE FROM choreo_consumers WHERE service = '%s'",
                         db, owner, cfg->service, owner, cfg->service, owner);
    } else if (rc != SQLITE_DONE) {
        s = choreo__store_error(st, rc, "reading which service the database belongs to");
    }
    choreo__q_finalize(q);
    return s;
}

choreo_status choreo__consumers_record(choreo_store *st, const choreo_config *cfg,
                                       const choreo_route *routes, int n, int64_t now_ms)
{
    /* Upserted, then the rows this start did not write go: instances of a
     * service on a shared database may start at the same moment. */
    choreo_status s = choreo__store_begin(st);
    if (s == CHOREO_OK)
        s = choreo__store_patient(st);
    /* Two services started at once on one PostgreSQL database would each
     * find no other's record and both start: one records at a time. */
    if (s == CHOREO_OK)
        s = choreo__store_xact_lock(st, CHOREO_PG_LOCK_CONSUMERS,
                                    "waiting for another start's record of its handlers");
    if (s != CHOREO_OK) {
        choreo__store_rollback(st);
        return s;
    }
    s = refuse_other_owner(st, cfg);
    if (s != CHOREO_OK) {
        choreo__store_rollback(st);
        return s;
    }
    choreo_q *ins = NULL;
    int rc = choreo__q_prepare(st, "INSERT INTO choreo_consumers(consumer, service, type,"
                                " subjects, stream, registered_at)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (consumer) DO UPDATE"
                                " SET service = excluded.service, type = excluded.type,"
                                " subjects = excluded.subjects, stream = excluded.stream,"
                                " registered_at = excluded.registered_at", &ins);
    if (rc != SQLITE_OK)
        s = choreo__store_error(st, rc, "recording the registered handlers");
    for (int i = 0; s == CHOREO_OK && i < n; i++) {
        choreo__q_bind_text(ins, 1, routes[i].consumer, -1);
        choreo__q_bind_text(ins, 2, cfg->service, -1);
        choreo__q_bind_text(ins, 3, routes[i].type, -1);
        choreo__q_bind_text(ins, 4, routes[i].filter, -1);
        choreo__q_bind_text(ins, 5, cfg->stream, -1);
        choreo__q_bind_int64(ins, 6, now_ms);
        rc = choreo__q_step(ins);
        choreo__q_reset(ins);
        if (rc != SQLITE_DONE)
            s = choreo__store_error(st, rc, "recording the registered handlers");
    }
    choreo__q_finalize(ins);
    choreo_q *stale = NULL;
    if (s == CHOREO_OK) {
        rc = choreo__q_prepare(st, "DELETE FROM choreo_consumers WHERE registered_at < ?1", &stale);
        if (rc == SQLITE_OK) {
            choreo__q_bind_int64(stale, 1, now_ms);
            rc = choreo__q_step(stale);
        }
        if (rc != SQLITE_DONE)
            s = choreo__store_error(st, rc, "forgetting handlers no longer registered");
        choreo__q_finalize(stale);
    }
    if (s == CHOREO_OK)
        return choreo__store_commit(st);
    choreo__store_rollback(st);
    return s;
}

struct list {
    choreo_consumer_entry *v;
    size_t n, cap;
};

/* The entry named name, added when absent; NULL when out of memory. */
static choreo_consumer_entry *entry(struct list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        choreo_consumer_entry *grown = realloc(l->v, cap * sizeof *grown);
        if (!grown)
            return NULL;
        l->v = grown;
        l->cap = cap;
    }
    choreo_consumer_entry *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

/* The service the database belongs to, into name (size cap): the one
 * recorded at its last start. A service given must be that one: set
 * against another service's record, every consumer of the given service
 * would show as stale (none of its handlers is in this record) and could be
 * deleted, losing its position. Given on a database that records none (from
 * before the record, or no handler registered yet), it is taken as it is. */
static choreo_status service_of(choreo_admin *adm, const char *service, char *name, size_t cap)
{
    char recorded[64];
    choreo_status s = choreo_admin_service(adm, recorded, sizeof recorded);
    if (s != CHOREO_OK)
        return s;
    char shown[512];
    choreo__store_display(adm->cfg->db, shown, sizeof shown);
    if (service && recorded[0] && strcmp(service, recorded) != 0)
        return choreo__fail(CHOREO_ECONFIG,
                            "service %s was given, but database %s belongs to service %s (the "
                            "handlers its code registered at its last start): pass service %s's "
                            "database, or leave the service out",
                            service, shown, recorded, service);
    if (service) {
        snprintf(name, cap, "%s", service);
        return CHOREO_OK;
    }
    if (recorded[0]) {
        snprintf(name, cap, "%s", recorded);
        return CHOREO_OK;
    }
    return choreo__fail(CHOREO_ENOTFOUND,
                        "database %s records no registered handlers (no choreo service with "
                        "handlers has started on it since choreo 0.1 recorded them): name the "
                        "service with --service NAME",
                        shown);
}

/* Adds the handlers the service registered at its last start. */
static choreo_status add_registered(choreo_admin *adm, const char *service, struct list *l)
{
    if (adm->schema < CHOREO_SCHEMA_HANDLERS)
        return CHOREO_OK; /* read-only, from before the record: none */
    choreo_q *s;
    int rc = choreo__q_prepare(adm->st, "SELECT consumer, type, subjects, registered_at"
                                " FROM choreo_consumers WHERE service = ?1", &s);
    if (rc != SQLITE_OK)
        return choreo__store_error(adm->st, rc, "reading the registered handlers");
    choreo__q_bind_text(s, 1, service, -1);
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        choreo_consumer_entry *e = entry(l, (const char *)choreo__q_text(s, 0));
        if (!e) {
            choreo__q_finalize(s);
            return choreo__fail(CHOREO_ENOMEM, "out of memory listing consumers");
        }
        choreo__admin_copy_text(e->type, sizeof e->type, s, 1);
        choreo__admin_copy_text(e->subjects, sizeof e->subjects, s, 2);
        e->registered = true;
        e->registered_at_ms = choreo__q_int64(s, 3);
    }
    choreo__q_finalize(s);
    return rc == SQLITE_DONE ? CHOREO_OK
                             : choreo__store_error(adm->st, rc, "reading the registered handlers");
}

/* The type of a consumer of service, when its name is <service>_<Type>;
 * NULL otherwise. Its subjects are not looked at: a consumer of the
 * service's name with a filter choreo never gives (one made by hand, or by
 * a user of the service's NATS login reading other types) is listed too,
 * with that filter, for the operator to see. */
static const char *type_of(const char *service, const char *name)
{
    size_t sl = strlen(service);
    if (strncmp(name, service, sl) != 0 || name[sl] != '_')
        return NULL;
    const char *type = name + sl + 1;
    return choreo__type_valid(type, strlen(type)) ? type : NULL;
}

/* Adds the service's consumers on the server. */
static choreo_status add_on_server(choreo_transport *tp, const choreo_config *cfg,
                                   const char *service, struct list *l)
{
    jsConsumerInfoList *infos = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Consumers(&infos, tp->js, cfg->stream, NULL, &jerr);
    /* A wrong stream would show every registered consumer missing. */
    if (ns != NATS_OK && jerr == JSStreamNotFoundErr)
        return choreo__transport_no_stream(cfg);
    if (ns == NATS_NOT_FOUND)
        return CHOREO_OK; /* no consumer at all on the stream */
    if (ns != NATS_OK)
        return choreo__nats_error(ns, "listing the stream's consumers");
    choreo_status s = CHOREO_OK;
    for (int i = 0; s == CHOREO_OK && i < infos->Count; i++) {
        jsConsumerInfo *ci = infos->List[i];
        const char *name = ci->Name, *subjects = ci->Config->FilterSubject;
        const char *type = name ? type_of(service, name) : NULL;
        if (!type)
            continue;
        choreo_consumer_entry *e = entry(l, name);
        if (!e) {
            s = choreo__fail(CHOREO_ENOMEM, "out of memory listing consumers");
            break;
        }
        snprintf(e->type, sizeof e->type, "%s", type);
        snprintf(e->subjects, sizeof e->subjects, "%s", subjects ? subjects : "");
        e->on_server = true;
        e->created_ms = ci->Created / 1000000;
        e->pending = ci->NumPending;
        e->ack_pending = (uint64_t)ci->NumAckPending;
        e->redelivered = (uint64_t)ci->NumRedelivered;
        e->delivered = ci->Delivered.Consumer;
        e->waiting = ci->NumWaiting;
    }
    jsConsumerInfoList_Destroy(infos);
    return s;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const choreo_consumer_entry *)a)->name,
                  ((const choreo_consumer_entry *)b)->name);
}

/* Connects (*tp, to close by the caller, also on failure) and fills l with
 * the consumers of service (NULL: the one recorded in the database);
 * writes its name into name (size cap). */
static choreo_status collect(choreo_admin *adm, const char *service, char *name, size_t cap,
                             choreo_transport **tp, struct list *l)
{
    choreo_status s = service_of(adm, service, name, cap);
    if (s == CHOREO_OK)
        s = add_registered(adm, name, l);
    if (s == CHOREO_OK)
        s = choreo__admin_connect(adm, tp);
    if (s == CHOREO_OK)
        s = add_on_server(*tp, adm->cfg, name, l);
    if (s != CHOREO_OK) {
        free(l->v);
        l->v = NULL;
        l->n = 0;
        return s;
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, by_name);
    return CHOREO_OK;
}

choreo_status choreo_admin_consumers(choreo_admin *adm, const char *service,
                                     choreo_consumer_entry **out, size_t *n)
{
    choreo__clear_error();
    if (!adm || !out || !n)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_consumers: NULL argument");
    struct list l = { 0 };
    char name[64];
    choreo_transport *tp = NULL;
    choreo_status s = collect(adm, service, name, sizeof name, &tp, &l);
    choreo__transport_close(tp);
    if (s != CHOREO_OK)
        return s;
    *out = l.v; /* NULL when empty: entry() allocates only to add one */
    *n = l.n;
    return CHOREO_OK;
}

/* Deletes e, the consumer named consumer of service name, when allowed. */
static choreo_status delete_one(choreo_admin *adm, choreo_transport *tp, const char *name,
                                const char *consumer, const choreo_consumer_entry *e, bool force)
{
    if (!e->on_server)
        return choreo__fail(CHOREO_ENOTFOUND,
                            "service %s has no consumer %s on stream %s: choreoctl consumers list "
                            "shows its consumers",
                            name, consumer, adm->cfg->stream);
    if (e->registered && !force)
        return choreo__fail(CHOREO_ESTATE,
                            "consumer %s belongs to the handler for %s that service %s registered "
                            "at its last start: the service would create it again at its next "
                            "start, from consumer_start; remove the handler first, or force it",
                            consumer, e->type, name);
    if (e->waiting > 0 && !force)
        return choreo__fail(CHOREO_ESTATE,
                            "consumer %s is being read by a running process (%lld pull "
                            "requests waiting): stop that process first, or force it",
                            consumer, (long long)e->waiting);
    jsErrCode jerr = 0;
    natsStatus ns = js_DeleteConsumer(tp->js, adm->cfg->stream, consumer, NULL, &jerr);
    if (ns != NATS_OK)
        return choreo__nats_error(ns, "deleting the consumer");
    CHOREO_LOG(&adm->log, CHOREO_LOG_INFO, "deleted consumer", "consumer=%s stream=%s",
               consumer, adm->cfg->stream);
    return CHOREO_OK;
}

choreo_status choreo_admin_consumer_delete(choreo_admin *adm, const char *service,
                                           const char *consumer, bool force)
{
    choreo__clear_error();
    if (!adm || !consumer)
        return choreo__fail(CHOREO_EINVAL, "choreo_admin_consumer_delete: NULL argument");
    struct list l = { 0 };
    char name[64];
    choreo_transport *tp = NULL;
    choreo_status s = collect(adm, service, name, sizeof name, &tp, &l);
    choreo_consumer_entry e = { .on_server = false };
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.v[i].name, consumer) == 0)
            e = l.v[i];
    free(l.v);
    if (s == CHOREO_OK)
        s = delete_one(adm, tp, name, consumer, &e, force);
    choreo__transport_close(tp);
    return s;
}
