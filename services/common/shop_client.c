/* The shop client: NATS requests to "<prefix>-rpc.<service>.<name>" with
 * msgpack bodies, retried on timeouts and missing responders. Retrying is
 * safe because every request the shop services take is idempotent: orders
 * by their key, restocks and deposits by their ref, enrollments by value. */
#include "shop_client.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"

struct shop_client {
    natsConnection *nc;
    char prefix[64];
    atomic_bool cancelled;
};

static _Thread_local char last_error[512];

const char *shop_client_last_error(void)
{
    return last_error;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static choreo_status fail(choreo_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

choreo_status shop_client_create(shop_client **out, const char *url, const char *prefix)
{
    return shop_client_create_secure(out, url, prefix, NULL, NULL, NULL, NULL);
}

/* url may list several servers, comma-separated (a cluster): nats.c takes
 * a list through natsOptions_SetServers. */
static natsStatus set_servers(natsOptions *o, const char *url)
{
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", url);
    const char *list[16];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < 16;
         tok = strtok_r(NULL, ",", &save))
        if (*tok)
            list[n++] = tok;
    return n ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
}

choreo_status shop_client_create_secure(shop_client **out, const char *url, const char *prefix,
                                        const char *user, const char *password,
                                        const char *tls_ca, const char *inbox_prefix)
{
    shop_client *c = calloc(1, sizeof *c);
    if (!c)
        return fail(CHOREO_ENOMEM, "out of memory creating a shop client");
    snprintf(c->prefix, sizeof c->prefix, "%s", prefix && *prefix ? prefix : "choreo");
    atomic_init(&c->cancelled, false);
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 100);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 5000);
    if (s == NATS_OK && user)
        s = natsOptions_SetUserInfo(o, user, password);
    if (s == NATS_OK && tls_ca)
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && tls_ca)
        s = natsOptions_LoadCATrustedCertificates(o, tls_ca);
    if (s == NATS_OK && inbox_prefix)
        s = natsOptions_SetCustomInboxPrefix(o, inbox_prefix);
    if (s == NATS_OK)
        s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        free(c);
        if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
            return fail(CHOREO_EAUTH, "NATS at %s refused the shop client's credentials: %s",
                        url, natsStatus_GetText(s));
        return fail(CHOREO_ENOSERVER, "cannot connect to NATS at %s: %s", url,
                    natsStatus_GetText(s));
    }
    *out = c;
    return CHOREO_OK;
}

void shop_client_cancel(shop_client *c)
{
    atomic_store(&c->cancelled, true);
    natsConnection_Close(c->nc);
}

void shop_client_destroy(shop_client *c)
{
    if (!c)
        return;
    natsConnection_Destroy(c->nc);
    free(c);
}

/* Sends a request until a non-empty reply comes or attempts run out. A
 * service answers with an empty body when its handler asked to retry. */
static choreo_status request(shop_client *c, const char *service, const char *name,
                             const void *data, size_t len, int timeout_ms, int attempts,
                             natsMsg **reply, int *sent)
{
    char subject[200];
    snprintf(subject, sizeof subject, "%s-rpc.%s.%s", c->prefix, service, name);
    natsStatus last = NATS_OK;
    for (int i = 0; i < attempts; i++) {
        if (atomic_load(&c->cancelled))
            return fail(CHOREO_ESTATE, "%s: the client was cancelled", subject);
        natsMsg *m = NULL;
        if (sent)
            *sent = i + 1;
        last = natsConnection_Request(&m, c->nc, subject, data, (int)len, timeout_ms);
        if (last == NATS_OK && natsMsg_GetDataLength(m) > 0) {
            *reply = m;
            return CHOREO_OK;
        }
        natsMsg_Destroy(m);
        /* No responder: the service is (re)starting; give it a moment. A
         * timeout already waited. */
        if (last != NATS_TIMEOUT)
            sleep_ms(i < 5 ? 50 : 200);
    }
    return fail(CHOREO_ETIMEOUT, "%s got no answer after %d attempts (last: %s); is the %s "
                "service running?", subject, attempts,
                last == NATS_OK ? "empty reply" : natsStatus_GetText(last), service);
}

choreo_status shop_client_place(shop_client *c, const char *idempotency_key, const char *user_id,
                                const char *product_id, int32_t qty, int64_t amount_cents,
                                int timeout_ms, int attempts, shop_placed *out)
{
    memset(out, 0, sizeof *out);
    shop_place_order req;
    shop_place_order_init(&req);
    req.idempotency_key = idempotency_key;
    req.user_id = user_id;
    req.product_id = product_id;
    req.qty = qty;
    req.amount_cents = amount_cents;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 4096);
    char err[256];
    if (shop_place_order_check(&req, err, sizeof err) != CHOREO_OK) {
        choreo_mp_writer_free(&w);
        return fail(CHOREO_EINVAL, "%s", err);
    }
    choreo_status s = shop_place_order_encode(&req, &w);
    natsMsg *m = NULL;
    if (s == CHOREO_OK)
        s = request(c, "order", SHOP_RQ_PLACE_ORDER, w.buf, w.len, timeout_ms, attempts, &m,
                    &out->attempts);
    choreo_mp_writer_free(&w);
    if (s != CHOREO_OK)
        return s;
    shop_place_order_reply rep;
    s = shop_place_order_reply_decode(&rep, (const uint8_t *)natsMsg_GetData(m),
                                      (size_t)natsMsg_GetDataLength(m), err, sizeof err);
    natsMsg_Destroy(m);
    if (s != CHOREO_OK)
        return fail(s, "the PlaceOrder reply does not decode: %s", err);
    snprintf(out->order_id, sizeof out->order_id, "%s", rep.order_id);
    snprintf(out->status, sizeof out->status, "%s", rep.status);
    snprintf(out->error, sizeof out->error, "%s", rep.error);
    shop_place_order_reply_free(&rep);
    return CHOREO_OK;
}

/* Sends a small map request whose reply is {ok, error, ...}. */
static choreo_status seed(shop_client *c, const char *service, const char *name,
                          const shop_field *fields, size_t n)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 4096);
    shop_msg_encode(&w, fields, n);
    natsMsg *m = NULL;
    choreo_status s = choreo_mp_writer_status(&w);
    if (s == CHOREO_OK)
        s = request(c, service, name, w.buf, w.len, 2000, 10, &m, NULL);
    choreo_mp_writer_free(&w);
    if (s != CHOREO_OK)
        return s;
    bool ok = false;
    char error[260] = "", err[200];
    shop_field out[] = { SHOP_FIELD_BOOL("ok", &ok, true), SHOP_FIELD_STR("error", error, false) };
    s = shop_msg_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), out, 2, err,
                        sizeof err);
    natsMsg_Destroy(m);
    if (s != CHOREO_OK)
        return fail(s, "the %s reply of %s does not decode: %s", name, service, err);
    if (!ok)
        return fail(CHOREO_EINVAL, "%s refused %s: %s", service, name, error);
    return CHOREO_OK;
}

choreo_status shop_client_restock(shop_client *c, const char *ref, const char *product_id,
                                  int64_t qty)
{
    shop_field f[] = { SHOP_FIELD_STR("ref", (char *)ref, false),
                       SHOP_FIELD_STR("product_id", (char *)product_id, false),
                       SHOP_FIELD_I64("qty", &qty, false) };
    return seed(c, "inventory", SHOP_RQ_RESTOCK, f, 3);
}

choreo_status shop_client_deposit(shop_client *c, const char *ref, const char *user_id,
                                  int64_t amount_cents, bool set_review, bool review)
{
    shop_field f[] = { SHOP_FIELD_STR("ref", (char *)ref, false),
                       SHOP_FIELD_STR("user_id", (char *)user_id, false),
                       SHOP_FIELD_I64("amount_cents", &amount_cents, false),
                       SHOP_FIELD_BOOL("review", &review, false) };
    return seed(c, "payment", SHOP_RQ_DEPOSIT, f, set_review ? 4 : 3);
}

choreo_status shop_client_enroll(shop_client *c, const char *user_id, int64_t cap, bool no_points)
{
    shop_field f[] = { SHOP_FIELD_STR("user_id", (char *)user_id, false),
                       SHOP_FIELD_I64("cap", &cap, false),
                       SHOP_FIELD_BOOL("no_points", &no_points, false) };
    return seed(c, "points", SHOP_RQ_ENROLL, f, 3);
}

choreo_status shop_client_get_order(shop_client *c, const char *order_id, const char *key,
                                    shop_order_status *out)
{
    memset(out, 0, sizeof *out);
    shop_field f[] = { SHOP_FIELD_STR(order_id ? "order_id" : "idempotency_key",
                                      (char *)(order_id ? order_id : key), false) };
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 4096);
    shop_msg_encode(&w, f, 1);
    natsMsg *m = NULL;
    choreo_status s = choreo_mp_writer_status(&w);
    if (s == CHOREO_OK)
        s = request(c, "order", SHOP_RQ_GET_ORDER, w.buf, w.len, 2000, 5, &m, NULL);
    choreo_mp_writer_free(&w);
    if (s != CHOREO_OK)
        return s;
    char err[200];
    shop_field r[] = { SHOP_FIELD_BOOL("found", &out->found, false),
                       SHOP_FIELD_STR("order_id", out->order_id, false),
                       SHOP_FIELD_STR("state", out->state, false),
                       SHOP_FIELD_STR("reason", out->reason, false),
                       SHOP_FIELD_STR("detail", out->detail, false) };
    s = shop_msg_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), r, 5, err,
                        sizeof err);
    natsMsg_Destroy(m);
    return s == CHOREO_OK ? CHOREO_OK : fail(s, "the GetOrder reply does not decode: %s", err);
}

choreo_status shop_client_ping(shop_client *c, const char *service, int timeout_ms)
{
    natsMsg *m = NULL;
    int attempts = timeout_ms / 100 > 0 ? timeout_ms / 100 : 1;
    choreo_status s = request(c, service, SHOP_RQ_PING, "", 0, 100, attempts, &m, NULL);
    natsMsg_Destroy(m);
    return s;
}
