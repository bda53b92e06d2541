/* Request/reply commands: the handler runs in a transaction on the
 * dispatcher thread, and the reply is sent only after the commit. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "support.h"

struct ctx {
    char dir[256];
};

static choreo_result place_order(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                                 void *user)
{
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO orders(body) VALUES ('%.*s')", (int)len, (const char *)req);
    if (sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) != SQLITE_OK)
        return CHOREO_REJECT;
    char saga[CHOREO_ID_SIZE], id[CHOREO_ID_SIZE];
    choreo_saga_new(saga);
    if (choreo_tx_emit(tx, "OrderCreated", 1, saga, NULL, 0, id) != CHOREO_OK)
        return CHOREO_REJECT;
    char text[80];
    snprintf(text, sizeof text, "accepted %s", id);
    if (choreo_reply_set(reply, text, strlen(text)) != CHOREO_OK)
        return CHOREO_REJECT;
    return CHOREO_DONE;
}

static choreo_result refuse(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                            void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO orders(body) VALUES ('refused')", NULL, NULL, NULL);
    if (choreo_reply_set(reply, "no", 2) != CHOREO_OK)
        return CHOREO_RETRY;
    return CHOREO_REJECT;
}

static choreo_result not_now(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO orders(body) VALUES ('later')", NULL, NULL, NULL);
    (void)!choreo_reply_set(reply, "half", 4);
    choreo_tx_set_reason(tx, "stock count in progress");
    return CHOREO_RETRY;
}

static choreo_result on_created(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return sqlite3_exec(choreo_tx_db(tx), "INSERT INTO seen(x) VALUES (1)", NULL, NULL, NULL) == SQLITE_OK
               ? CHOREO_DONE : CHOREO_RETRY;
}

static bool seen_one(void *p)
{
    return support_count(p, "inv", "SELECT COUNT(*) FROM seen") >= 1;
}

Test(request, a_command_commits_emits_and_replies_after_the_commit, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "ord", "CREATE TABLE orders(body TEXT)");
    support_exec(dir, "inv", "CREATE TABLE seen(x)");
    choreo_config *cfg = support_config(dir, "ord", server.url, NULL);
    cr_assert_eq(choreo_config_set(cfg, "log_level", "info"), CHOREO_OK);
    choreo_service *ord = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on_request(ord, "PlaceOrder", place_order, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_request(ord, "Refuse", refuse, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_request(ord, "NotNow", not_now, NULL), CHOREO_OK);
    cfg = support_config(dir, "inv", server.url, NULL);
    choreo_service *inv = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(inv, "OrderCreated", on_created, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(ord), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(inv), CHOREO_OK, "%s", choreo_last_error());

    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    natsMsg *reply = NULL;
    cr_assert_eq(natsConnection_RequestString(&reply, nc, "choreo-rpc.ord.PlaceOrder", "apple", 5000),
                 NATS_OK, "no reply to PlaceOrder");
    /* The reply is sent after the commit: the row and the event are already
     * in the database when the client reads the reply. */
    cr_assert_eq(strncmp(natsMsg_GetData(reply), "accepted ", 9), 0);
    cr_assert_eq(support_count(dir, "ord", "SELECT COUNT(*) FROM orders WHERE body = 'apple'"), 1);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_outbox WHERE event_id = '%s'",
             natsMsg_GetData(reply) + 9);
    cr_assert_eq(support_count(dir, "ord", sql), 1);
    natsMsg_Destroy(reply);
    cr_assert(support_wait(seen_one, dir, 15000), "the emitted event never reached inventory");

    /* A rejected command rolls back but still answers. */
    reply = NULL;
    cr_assert_eq(natsConnection_RequestString(&reply, nc, "choreo-rpc.ord.Refuse", "x", 5000), NATS_OK);
    cr_assert_eq(natsMsg_GetDataLength(reply), 2);
    cr_assert_eq(support_count(dir, "ord", "SELECT COUNT(*) FROM orders WHERE body = 'refused'"), 0);
    natsMsg_Destroy(reply);

    /* A command that asks to be retried rolls back and does not answer:
     * the requester times out and asks again. The service says so, with
     * the handler's reason. */
    char log[600], text[65536], line[2048];
    snprintf(log, sizeof log, "%s/ord.log", dir);
    int saved = support_stderr_to(log);
    reply = NULL;
    natsStatus ns = natsConnection_RequestString(&reply, nc, "choreo-rpc.ord.NotNow", "x", 1000);
    natsConnection_Destroy(nc);
    choreo_service_destroy(inv);
    choreo_service_destroy(ord);
    support_stderr_back(saved);
    cr_assert_eq(ns, NATS_TIMEOUT, "a RETRY was answered");
    cr_assert_eq(support_count(dir, "ord", "SELECT COUNT(*) FROM orders WHERE body = 'later'"), 0);
    support_slurp(log, text, sizeof text);
    support_line_with(text, "request handler asked to retry", line, sizeof line);
    cr_assert(strstr(line, "level=info") && strstr(line, "request=choreo-rpc.ord.NotNow") &&
                  strstr(line, "reason=\"stock count in progress\""),
              "no line says the request asked to retry, with its reason: %s", text);
    natsd_stop(&server, SIGTERM);
}

/* A reply over the server's max_payload (1 MiB by default) cannot be sent
 * after the commit: choreo_reply_set refuses it while the handler can still
 * answer with a short error instead. */
/* The service "ord" (its table orders made first) with one request
 * handler, not started. */
static choreo_service *orders_service(const char *dir, const char *url, const char *request,
                                      choreo_request_fn fn)
{
    support_exec(dir, "ord", "CREATE TABLE orders(body TEXT)");
    choreo_config *cfg = support_config(dir, "ord", url, NULL);
    choreo_service *ord = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on_request(ord, request, fn, NULL), CHOREO_OK);
    return ord;
}

static atomic_int big_status = -1;
static char big_error[512];

static choreo_result big_answer(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                                void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO orders(body) VALUES ('big')", NULL, NULL, NULL);
    size_t big = 2 * 1024 * 1024;
    char *body = calloc(1, big);
    if (!body)
        return CHOREO_RETRY;
    choreo_status s = choreo_reply_set(reply, body, big);
    free(body);
    snprintf(big_error, sizeof big_error, "%s", s == CHOREO_OK ? "" : choreo_last_error());
    atomic_store(&big_status, (int)s);
    if (s == CHOREO_ETOOBIG && choreo_reply_set(reply, "too big", 7) != CHOREO_OK)
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

Test(request, a_reply_over_max_payload_is_refused_and_a_short_one_is_sent_instead, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *ord = orders_service(dir, server.url, "Big", big_answer);
    cr_assert_eq(choreo_service_start(ord), CHOREO_OK, "%s", choreo_last_error());

    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    natsMsg *reply = NULL;
    natsStatus ns = natsConnection_RequestString(&reply, nc, "choreo-rpc.ord.Big", "x", 5000);
    cr_assert_eq(atomic_load(&big_status), CHOREO_ETOOBIG, "choreo_reply_set gave %d",
                 atomic_load(&big_status));
    cr_assert(strstr(big_error, "2097152 bytes") && strstr(big_error, "max_payload of 1048576"),
              "the error names neither the size nor the limit: %s", big_error);
    cr_assert_eq(ns, NATS_OK, "the short reply never came");
    cr_assert_eq(natsMsg_GetDataLength(reply), 7);
    cr_assert_eq(memcmp(natsMsg_GetData(reply), "too big", 7), 0);
    cr_assert_eq(support_count(dir, "ord", "SELECT COUNT(*) FROM orders WHERE body = 'big'"), 1);
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
    choreo_service_destroy(ord);
    natsd_stop(&server, SIGTERM);
}

/* A request handler that returns a value that is not a choreo_result: a bug
 * in it, handled as a RETRY (rolled back, no reply) and said at error level
 * with the value. */
static choreo_result bogus_answer(choreo_tx *tx, const void *req, size_t len,
                                  choreo_reply *reply, void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO orders(body) VALUES ('bogus')", NULL, NULL, NULL);
    (void)!choreo_reply_set(reply, "half", 4);
    return (choreo_result)42;
}

Test(request, an_unknown_result_is_logged_as_an_error_and_rolled_back_without_a_reply,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *ord = orders_service(dir, server.url, "Bogus", bogus_answer);
    char log[600], text[65536];
    snprintf(log, sizeof log, "%s/ord.log", dir);
    int saved = support_stderr_to(log);
    cr_assert_eq(choreo_service_start(ord), CHOREO_OK, "%s", choreo_last_error());
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    natsMsg *reply = NULL;
    natsStatus ns = natsConnection_RequestString(&reply, nc, "choreo-rpc.ord.Bogus", "x", 1000);
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
    choreo_service_destroy(ord);
    support_stderr_back(saved);
    support_slurp(log, text, sizeof text);
    cr_assert_eq(ns, NATS_TIMEOUT, "an unknown result was answered");
    cr_assert_eq(support_count(dir, "ord", "SELECT COUNT(*) FROM orders WHERE body = 'bogus'"), 0);
    const char *said = "handler returned 42, which is not CHOREO_DONE, CHOREO_RETRY or "
                       "CHOREO_REJECT";
    char line[2048];
    support_line_with(text, said, line, sizeof line);
    cr_assert(strstr(line, "level=error") && strstr(line, "request=choreo-rpc.ord.Bogus"),
              "no error line names the value and the request: %s", text);
    natsd_stop(&server, SIGTERM);
}
