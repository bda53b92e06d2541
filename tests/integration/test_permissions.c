/* The NATS permissions that choreo-gen writes from events/shop.services and
 * events/shop.events, in force on a real nats-server: choreo services do
 * all their work under them (stream, consumers, fetch, ack, PubAck,
 * requests and replies), and the broker refuses what a user was not given:
 * an event another service owns, another service's requests, a login
 * without credentials. The tighter variant (--private-inboxes) and the
 * variables used with users of one's own (--no-users) are checked too.
 *
 * choreo-gen is $CHOREO_GEN, or else tools/choreo-gen/choreo-gen in the
 * build directory this test was built in; the schemas are found from this
 * file's path ($CHOREO_SOURCE_ROOT overrides). */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

/* The users of shop.services and of the test's own description, whose
 * passwords the server takes from its environment (NAME_PASSWORD, quoted:
 * nats-server parses the value). */
static const char *const users[] = {"order", "inventory", "payment", "points", "shop",
                                    "choreoctl", "audit"};

/* ------------------------------------------------------------------------ */
/* Where things are */

/* snprintf for paths: a path that does not fit fails the test. */
static void path_fmt(char *out, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void path_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < cap, "path too long: %s", out);
}

/* The build directory: this program is <build>/tests/integration/NAME. */
static void build_root(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0, "cannot find this test program's path");
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(exe, '/');
        cr_assert_not_null(slash);
        *slash = '\0';
    }
    path_fmt(out, cap, "%s", exe);
}

static void choreo_gen_path(char *out, size_t cap)
{
    const char *env = getenv("CHOREO_GEN");
    if (env && *env) {
        path_fmt(out, cap, "%s", env);
        return;
    }
    char root[PATH_MAX];
    build_root(root, sizeof root);
    path_fmt(out, cap, "%s/tools/choreo-gen/choreo-gen", root);
}

/* A file of the source tree, such as "events/shop.events". meson compiles
 * this file by a path relative to the build directory. */
static void source_path(char *out, size_t cap, const char *rel)
{
    const char *env = getenv("CHOREO_SOURCE_ROOT");
    if (env && *env) {
        path_fmt(out, cap, "%s/%s", env, rel);
        return;
    }
    char here[PATH_MAX];
    if (__FILE__[0] == '/') {
        path_fmt(here, sizeof here, "%s", __FILE__);
    } else {
        char root[PATH_MAX];
        build_root(root, sizeof root);
        path_fmt(here, sizeof here, "%s/%s", root, __FILE__);
    }
    char *slash = strrchr(here, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    path_fmt(out, cap, "%s/../../%s", here, rel);
}

static void slurp(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* ------------------------------------------------------------------------ */
/* A server with the generated permissions */

/* Runs choreo-gen --nats-permissions on the services file (NULL: the
 * shop's) and the shop's events into dir/file, with the extra option opt
 * (or NULL). */
static void generate_from(const char *dir, const char *file, const char *services_file,
                          const char *opt)
{
    char gen[PATH_MAX], services[PATH_MAX], events[PATH_MAX], out[600], err[600];
    choreo_gen_path(gen, sizeof gen);
    if (services_file)
        path_fmt(services, sizeof services, "%s", services_file);
    else
        source_path(services, sizeof services, "events/shop.services");
    source_path(events, sizeof events, "events/shop.events");
    path_fmt(out, sizeof out, "%s/%s", dir, file);
    path_fmt(err, sizeof err, "%s/choreo-gen.err", dir);
    char *argv[] = {gen, "--nats-permissions", services, events, "-o", out, (char *)opt, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    extern char **environ;
    cr_assert_eq(posix_spawn(&pid, gen, &fa, NULL, argv, environ), 0, "cannot run %s", gen);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    char text[4096];
    slurp(err, text, sizeof text);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s failed: %s", gen, text);
}

static void generate(const char *dir, const char *file, const char *opt)
{
    generate_from(dir, file, NULL, opt);
}

/* Writes dir/server.conf (an include of the generated file, then `more`),
 * puts every user's password into the environment the server inherits,
 * and starts the server. */
static void start_server(natsd *d, const char *dir, const char *generated, const char *more)
{
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        char var[64], value[64];
        snprintf(var, sizeof var, "%s_PASSWORD", users[i]);
        for (char *p = var; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        snprintf(value, sizeof value, "\"pw-%s\"", users[i]);
        cr_assert_eq(setenv(var, value, 1), 0);
    }
    char conf[600], store[600];
    snprintf(conf, sizeof conf, "%s/server.conf", dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "include \"%s\"\n%s", generated, more ? more : "");
    fclose(f);
    snprintf(store, sizeof store, "%s/nats", dir);
    cr_assert_eq(natsd_start_config(d, store, 0, conf), 0,
                 "nats-server refused the generated permissions: see %s/nats-server.log", store);
}

/* A choreo service logged in as user (its password is pw-<user>). */
static choreo_service *service_as(const char *dir, const char *name, const char *url,
                                  const char *user, const char *more)
{
    char u[80], p[80];
    snprintf(u, sizeof u, "nats_user=%s", user);
    snprintf(p, sizeof p, "nats_password=pw-%s", user);
    choreo_config *cfg = support_config(dir, name, url, u, p, more ? more : "log_level=warn",
                                        NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    return svc;
}

/* ------------------------------------------------------------------------ */
/* Plain nats.c connections, and the errors the server sends them */

static pthread_mutex_t errs_mu = PTHREAD_MUTEX_INITIALIZER;
static char errs[8192];

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
                           void *closure)
{
    (void)sub;
    (void)closure;
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);
    pthread_mutex_lock(&errs_mu);
    size_t n = strlen(errs);
    snprintf(errs + n, sizeof errs - n, "%s\n", text ? text : natsStatus_GetText(err));
    pthread_mutex_unlock(&errs_mu);
}

/* A copy of the errors so far, for failure messages. */
static const char *errs_text(void)
{
    static char copy[sizeof errs];
    pthread_mutex_lock(&errs_mu);
    memcpy(copy, errs, sizeof copy);
    pthread_mutex_unlock(&errs_mu);
    return copy;
}

struct needle {
    const char *a, *b;
};

static bool errs_hold(void *p)
{
    const struct needle *n = p;
    pthread_mutex_lock(&errs_mu);
    bool found = false;
    for (const char *line = errs; line && *line && !found;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char one[512];
        snprintf(one, sizeof one, "%.*s", (int)len, line);
        found = strstr(one, n->a) && (!n->b || strstr(one, n->b));
        line = end ? end + 1 : NULL;
    }
    pthread_mutex_unlock(&errs_mu);
    return found;
}

/* True once the server has sent an error holding both a and b. */
static bool server_refused(const char *a, const char *b)
{
    struct needle n = {a, b};
    return support_wait(errs_hold, &n, 5000);
}

/* Connects as user with password pass (NULL: no credentials); inbox is
 * the inbox prefix, NULL for nats.c's default _INBOX. */
static natsStatus connect_as(natsConnection **nc, const char *url, const char *user,
                             const char *pass, const char *inbox)
{
    natsOptions *o = NULL;
    cr_assert_eq(natsOptions_Create(&o), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(o, url), NATS_OK);
    cr_assert_eq(natsOptions_SetErrorHandler(o, on_async_error, NULL), NATS_OK);
    cr_assert_eq(natsOptions_SetMaxReconnect(o, 0), NATS_OK);
    if (user)
        cr_assert_eq(natsOptions_SetUserInfo(o, user, pass), NATS_OK);
    if (inbox)
        cr_assert_eq(natsOptions_SetCustomInboxPrefix(o, inbox), NATS_OK);
    natsStatus s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

static natsConnection *login(const char *url, const char *user, const char *inbox)
{
    char pass[64];
    snprintf(pass, sizeof pass, "pw-%s", user);
    natsConnection *nc = NULL;
    natsStatus s = connect_as(&nc, url, user, pass, inbox);
    cr_assert_eq(s, NATS_OK, "%s cannot log in: %s", user, natsStatus_GetText(s));
    return nc;
}

static jsCtx *jetstream(natsConnection *nc, int64_t wait_ms)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = wait_ms;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_JetStream(&js, nc, &jo), NATS_OK);
    return js;
}

static void hang_up(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Close(nc);
    natsConnection_Destroy(nc);
}

/* ------------------------------------------------------------------------ */
/* Handlers */

static atomic_int handled_payment_authorized, handled_points_awarded, handled_other;

/* Records the event in "seen", and answers with StockReserved, which
 * inventory may emit. */
static choreo_result reserve(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    if (sqlite3_exec(choreo_tx_db(tx), "INSERT INTO seen(n) VALUES (1)", NULL, NULL, NULL) !=
        SQLITE_OK)
        return CHOREO_RETRY;
    return choreo_tx_emit(tx, "StockReserved", 1, NULL, ev->data, ev->data_len, NULL) ==
                   CHOREO_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

static choreo_result count(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)tx;
    (void)ev;
    atomic_fetch_add((atomic_int *)user, 1);
    return CHOREO_DONE;
}

static choreo_result pong(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                          void *user)
{
    (void)tx;
    (void)req;
    (void)len;
    (void)user;
    return choreo_reply_set(reply, "pong", 4) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

struct consumer_state {
    natsConnection *nc;
    jsCtx *js;
    const char *name;
    uint64_t delivered, ack_pending, pending;
    int64_t ack_wait_ms;
};

/* Looks the consumer up as the operator, choreoctl. */
static bool consumer_settled(void *p)
{
    struct consumer_state *c = p;
    jsConsumerInfo *ci = NULL;
    if (js_GetConsumerInfo(&ci, c->js, "CHOREO", c->name, NULL, NULL) != NATS_OK)
        return false;
    c->delivered = ci->Delivered.Consumer;
    c->ack_pending = (uint64_t)ci->NumAckPending;
    c->pending = ci->NumPending;
    c->ack_wait_ms = ci->Config->AckWait / 1000000;
    jsConsumerInfo_Destroy(ci);
    return c->delivered >= 1 && c->ack_pending == 0 && c->pending == 0;
}

static uint64_t stream_messages(jsCtx *js)
{
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_GetStreamInfo(&si, js, "CHOREO", NULL, NULL), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* ------------------------------------------------------------------------ */

Test(permissions, services_emit_handle_and_ack_under_the_generated_permissions, .timeout = 90)
{
    char dir[256], log[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    snprintf(log, sizeof log, "%s/services.log", dir);
    int saved = support_stderr_to(log);

    /* inventory creates the stream and its consumer, fetches, acks and
     * emits; order emits. */
    support_exec(dir, "inventory", "CREATE TABLE seen(n INTEGER)");
    choreo_service *inventory = service_as(dir, "inventory", server.url, "inventory", NULL);
    choreo_service *order = service_as(dir, "order", server.url, "order", NULL);
    cr_assert_eq(choreo_service_on(inventory, "OrderCreated", reserve, NULL), CHOREO_OK);
    choreo_status st_inv = choreo_service_start(inventory);
    choreo_status st_ord = st_inv == CHOREO_OK ? choreo_service_start(order) : st_inv;
    if (st_inv != CHOREO_OK || st_ord != CHOREO_OK)
        support_stderr_back(saved);
    cr_assert_eq(st_inv, CHOREO_OK, "inventory: %s", choreo_last_error());
    cr_assert_eq(st_ord, CHOREO_OK, "order: %s", choreo_last_error());
    support_emit(order, "OrderCreated", "s1", 7, NULL);
    bool handled = support_wait_count(dir, "inventory", "SELECT COUNT(*) FROM seen", 1, 10000);
    bool relayed = handled && support_wait_count(dir, "inventory",
                                                 "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                                 "published_at IS NULL",
                                                 0, 10000);

    /* The operator sees the delivery acknowledged, and both events stored
     * (OrderCreated, and inventory's StockReserved, acknowledged by a PubAck). */
    natsConnection *ctl = login(server.url, "choreoctl", NULL);
    jsCtx *js = jetstream(ctl, 2000);
    struct consumer_state c = {ctl, js, "inventory_OrderCreated", 0, 0, 0, 0};
    bool acked = support_wait(consumer_settled, &c, 10000);
    uint64_t msgs = stream_messages(js);

    /* A restart with another ack wait updates the consumer. */
    choreo_service_destroy(inventory);
    inventory = service_as(dir, "inventory", server.url, "inventory", "ack_wait_ms=3000");
    cr_assert_eq(choreo_service_on(inventory, "OrderCreated", reserve, NULL), CHOREO_OK);
    choreo_status st_again = choreo_service_start(inventory);
    consumer_settled(&c);
    choreo_service_destroy(inventory);
    choreo_service_destroy(order);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);

    cr_assert(handled, "inventory never handled OrderCreated; log:\n%s", text);
    cr_assert(relayed, "inventory's StockReserved was never acknowledged; log:\n%s", text);
    cr_assert(acked, "the delivery was not acknowledged: delivered %llu, ack pending %llu, "
              "pending %llu; log:\n%s", (unsigned long long)c.delivered,
              (unsigned long long)c.ack_pending, (unsigned long long)c.pending, text);
    cr_assert_eq(msgs, 2, "the stream holds %llu events, not OrderCreated and StockReserved",
                 (unsigned long long)msgs);
    cr_assert_eq(st_again, CHOREO_OK, "restart: %s", choreo_last_error());
    cr_assert_eq(c.ack_wait_ms, 3000, "the consumer was not updated");
    cr_assert_null(strstr(text, "Permissions Violation"), "a permission is missing:\n%s", text);
    hang_up(ctl, js);
    natsd_stop(&server, SIGTERM);
}

/* A service that serves no requests has no allow_responses, which would
 * otherwise let its acks through as replies: its own $JS.ACK subjects must. */
Test(permissions, a_service_without_requests_acks_through_its_own_subjects, .timeout = 90)
{
    char dir[256], services[600], log[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    path_fmt(services, sizeof services, "%s/audit.services", dir);
    FILE *f = fopen(services, "w");
    cr_assert_not_null(f);
    fputs("service audit {\n  handles OrderCreated\n}\n"
          "service order {\n  emits OrderCreated\n}\n"
          "operator choreoctl\n",
          f);
    fclose(f);
    generate_from(dir, "permissions.conf", services, NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    snprintf(log, sizeof log, "%s/services.log", dir);
    int saved = support_stderr_to(log);
    choreo_service *audit = service_as(dir, "audit", server.url, "audit", NULL);
    choreo_service *order = service_as(dir, "order", server.url, "order", NULL);
    cr_assert_eq(choreo_service_on(audit, "OrderCreated", count, &handled_other), CHOREO_OK);
    choreo_status st = choreo_service_start(audit);
    if (st == CHOREO_OK)
        st = choreo_service_start(order);
    if (st != CHOREO_OK)
        support_stderr_back(saved);
    cr_assert_eq(st, CHOREO_OK, "%s", choreo_last_error());
    support_emit(order, "OrderCreated", "s1", 1, NULL);
    natsConnection *ctl = login(server.url, "choreoctl", NULL);
    jsCtx *js = jetstream(ctl, 2000);
    struct consumer_state c = {ctl, js, "audit_OrderCreated", 0, 0, 0, 0};
    bool acked = support_wait(consumer_settled, &c, 10000);
    choreo_service_destroy(audit);
    choreo_service_destroy(order);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);
    cr_assert(acked, "not acknowledged: delivered %llu, ack pending %llu; log:\n%s",
              (unsigned long long)c.delivered, (unsigned long long)c.ack_pending, text);
    cr_assert_null(strstr(text, "Permissions Violation"), "%s", text);
    hang_up(ctl, js);
    natsd_stop(&server, SIGTERM);
}

static bool points_awarded_handled(void *p)
{
    (void)p;
    return atomic_load(&handled_points_awarded) >= 1;
}

struct log_arg {
    const char *path;
};

static bool log_has_refusal(void *p)
{
    const struct log_arg *a = p;
    char text[65536];
    slurp(a->path, text, sizeof text);
    return strstr(text, "Permissions Violation for Publish") &&
           strstr(text, "choreo.PaymentAuthorized.s1");
}

Test(permissions, a_service_cannot_emit_an_event_another_service_owns, .timeout = 90)
{
    char dir[256], log[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    snprintf(log, sizeof log, "%s/services.log", dir);
    int saved = support_stderr_to(log);

    /* points handles PaymentAuthorized, but only payment may emit it. */
    choreo_service *points = service_as(dir, "points", server.url, "points", NULL);
    choreo_service *order = service_as(dir, "order", server.url, "order", NULL);
    cr_assert_eq(choreo_service_on(points, "PaymentAuthorized", count, &handled_payment_authorized),
                 CHOREO_OK);
    cr_assert_eq(choreo_service_on(order, "PointsAwarded", count, &handled_points_awarded),
                 CHOREO_OK);
    choreo_status st = choreo_service_start(points);
    if (st == CHOREO_OK)
        st = choreo_service_start(order);
    if (st != CHOREO_OK)
        support_stderr_back(saved);
    cr_assert_eq(st, CHOREO_OK, "%s", choreo_last_error());
    /* One transaction, so that the relay sends both in one batch: it waits
     * for the PubAcks of a batch, and a refused publish never gets one. */
    choreo_tx *tx = NULL;
    cr_assert_eq(choreo_service_begin(points, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_emit(tx, "PaymentAuthorized", 1, "s1", NULL, 0, NULL), CHOREO_OK);
    cr_assert_eq(choreo_tx_emit(tx, "PointsAwarded", 1, "s2", NULL, 0, NULL), CHOREO_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());

    /* The event points may emit goes through; the other one is refused,
     * logged, and stays in the outbox. */
    bool allowed_one_arrived = support_wait(points_awarded_handled, NULL, 10000);
    struct log_arg la = {log};
    bool logged = support_wait(log_has_refusal, &la, 10000);
    support_sleep_ms(500);
    long long unpublished = support_count(dir, "points",
                                          "SELECT COUNT(*) FROM choreo_outbox WHERE subject = "
                                          "'choreo.PaymentAuthorized.s1' AND published_at IS NULL");
    natsConnection *ctl = login(server.url, "choreoctl", NULL);
    jsCtx *js = jetstream(ctl, 2000);
    uint64_t msgs = stream_messages(js);
    choreo_service_destroy(points);
    choreo_service_destroy(order);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);

    cr_assert(allowed_one_arrived, "PointsAwarded, which points may emit, never arrived:\n%s",
              text);
    cr_assert_eq(atomic_load(&handled_payment_authorized), 0,
                 "points published PaymentAuthorized, which it does not own");
    cr_assert_eq(msgs, 1, "the stream holds %llu events; only PointsAwarded may be there",
                 (unsigned long long)msgs);
    cr_assert_eq(unpublished, 1, "the refused event left the outbox");
    cr_assert(logged, "no clear error in the log:\n%s", text);
    cr_assert(strstr(text, "level=error"), "the refusal is not logged as an error:\n%s", text);
    hang_up(ctl, js);
    natsd_stop(&server, SIGTERM);
}

static void answer(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    (void)closure;
    natsConnection_Publish(nc, natsMsg_GetReply(msg), "enrolled", 8);
    natsMsg_Destroy(msg);
}

Test(permissions, requests_go_only_where_the_description_says, .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);

    /* order serves Ping through choreo; shop calls it. */
    choreo_service *order = service_as(dir, "order", server.url, "order", NULL);
    cr_assert_eq(choreo_service_on_request(order, "Ping", pong, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(order), CHOREO_OK, "%s", choreo_last_error());
    natsConnection *shop = login(server.url, "shop", NULL);
    natsMsg *reply = NULL;
    natsStatus s = natsConnection_Request(&reply, shop, "choreo-rpc.order.Ping", "", 0, 5000);
    cr_assert_eq(s, NATS_OK, "shop.Ping: %s", natsStatus_GetText(s));
    cr_assert_eq(natsMsg_GetDataLength(reply), 4);
    cr_assert(memcmp(natsMsg_GetData(reply), "pong", 4) == 0);
    natsMsg_Destroy(reply);

    /* points serves Enroll (a plain subscription standing in for the
     * service) and may answer; it may not listen to order's requests. */
    natsConnection *points = login(server.url, "points", NULL);
    natsSubscription *own = NULL, *theirs = NULL;
    cr_assert_eq(natsConnection_Subscribe(&own, points, "choreo-rpc.points.Enroll", answer, NULL),
                 NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&theirs, points, "choreo-rpc.order.>"), NATS_OK);
    natsConnection_Flush(points);
    cr_assert(server_refused("Permissions Violation for Subscription", "choreo-rpc.order.>"),
              "points was let subscribe to order's requests:\n%s", errs_text());
    s = natsConnection_Request(&reply, shop, "choreo-rpc.points.Enroll", "{}", 2, 5000);
    cr_assert_eq(s, NATS_OK, "points.Enroll: %s", natsStatus_GetText(s));
    cr_assert_eq(natsMsg_GetDataLength(reply), 8);
    natsMsg_Destroy(reply);
    s = natsConnection_Request(&reply, shop, "choreo-rpc.order.GetOrder", "{}", 2, 300);
    cr_assert_neq(s, NATS_OK, "nobody serves GetOrder here, yet it was answered");
    natsMsg *stolen = NULL;
    cr_assert_neq(natsSubscription_NextMsg(&stolen, theirs, 200), NATS_OK,
                  "points received a request meant for order");

    /* shop calls the requests it was given, and sends nothing else:
     * neither another request nor an event. One at a time: nats.c hands the
     * error handler only the connection's last error. */
    cr_assert_eq(natsConnection_PublishString(shop, "choreo-rpc.order.Restock", "{}"), NATS_OK);
    natsConnection_Flush(shop);
    cr_assert(server_refused("Permissions Violation for Publish", "choreo-rpc.order.Restock"),
              "%s", errs_text());
    cr_assert_eq(natsConnection_PublishString(shop, "choreo.OrderCreated.s9", "{}"), NATS_OK);
    natsConnection_Flush(shop);
    cr_assert(server_refused("Permissions Violation for Publish", "choreo.OrderCreated.s9"),
              "%s", errs_text());

    natsSubscription_Destroy(own);
    natsSubscription_Destroy(theirs);
    hang_up(points, NULL);
    hang_up(shop, NULL);
    choreo_service_destroy(order);
    natsd_stop(&server, SIGTERM);
}

Test(permissions, only_the_listed_users_with_their_passwords_get_in, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);

    natsConnection *nc = NULL;
    natsStatus s = connect_as(&nc, server.url, NULL, NULL, NULL);
    cr_assert_eq(s, NATS_CONNECTION_AUTH_FAILED, "no credentials: %s", natsStatus_GetText(s));
    s = connect_as(&nc, server.url, "points", "pw-order", NULL);
    cr_assert_eq(s, NATS_CONNECTION_AUTH_FAILED, "another user's password: %s",
                 natsStatus_GetText(s));
    s = connect_as(&nc, server.url, "shipping", "pw-shipping", NULL);
    cr_assert_eq(s, NATS_CONNECTION_AUTH_FAILED, "a user not in the description: %s",
                 natsStatus_GetText(s));
    /* The quotes around the value in the environment are the server's
     * syntax: the password is what they enclose. */
    hang_up(login(server.url, "points", NULL), NULL);

    choreo_config *cfg = support_config(dir, "inventory", server.url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_EAUTH, "%s", choreo_last_error());
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(permissions, the_operator_manages_consumers_republishes_and_reads_through_its_own,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    choreo_service *payment = service_as(dir, "payment", server.url, "payment", NULL);
    cr_assert_eq(choreo_service_on(payment, "StockReserved", count, &handled_other),
                 CHOREO_OK);
    cr_assert_eq(choreo_service_start(payment), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(payment);

    /* What choreoctl does: list and delete consumers, publish a parked
     * event again on its own subject (any type). */
    natsConnection *ctl = login(server.url, "choreoctl", NULL);
    jsCtx *js = jetstream(ctl, 1000);
    jsConsumerInfoList *list = NULL;
    cr_assert_eq(js_Consumers(&list, js, "CHOREO", NULL, NULL), NATS_OK);
    cr_assert_eq(list->Count, 1);
    cr_assert_str_eq(list->List[0]->Name, "payment_StockReserved");
    jsConsumerInfoList_Destroy(list);
    jsPubAck *pa = NULL;
    cr_assert_eq(js_Publish(&pa, js, "choreo.StockReserved.s1", "x", 1, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    cr_assert_eq(js_DeleteConsumer(js, "CHOREO", "payment_StockReserved", NULL, NULL), NATS_OK);

    /* It reads the stream as choreoctl saga does, through a pull consumer
     * of its own that is not durable. */
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "CHOREO";
    natsSubscription *reader = NULL;
    cr_assert_eq(js_PullSubscribe(&reader, js, "choreo.*.s1", NULL, NULL, &so, NULL), NATS_OK,
                 "%s", errs_text());
    natsMsgList got = { 0 };
    cr_assert_eq(natsSubscription_FetchRequest(&got, reader,
                                               &(jsFetchRequest){ .Batch = 1,
                                                                  .Expires = 2000000000 }),
                 NATS_OK);
    cr_assert_eq(got.Count, 1);
    natsMsgList_Destroy(&got);
    natsSubscription_Destroy(reader);

    /* It cannot make a durable consumer (one a service's could be), nor
     * listen to events as they pass. */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "spy";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    cr_assert_neq(js_AddConsumer(&ci, js, "CHOREO", &cc, NULL, NULL), NATS_OK);
    natsSubscription *sub = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&sub, ctl, "choreo.>"), NATS_OK);
    natsConnection_Flush(ctl);
    cr_assert(server_refused("Permissions Violation for Publish", "CONSUMER.DURABLE.CREATE"),
              "%s", errs_text());
    cr_assert(server_refused("Permissions Violation for Subscription", "choreo.>"), "%s", errs_text());
    natsSubscription_Destroy(sub);
    hang_up(ctl, js);
    natsd_stop(&server, SIGTERM);
}

/* A reload (SIGHUP) after the permissions changed keeps JetStream on: the
 * launcher puts JetStream in the configuration, since nats-server 2.9
 * reloading a file without it shuts JetStream down. And choreoctl, run as a
 * user that may not read the stream, names the refusal instead of a
 * timeout. */
Test(permissions, a_reload_keeps_jetstream_and_choreoctl_names_a_refusal, .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    cr_assert_eq(kill(server.pid, SIGHUP), 0);
    support_sleep_ms(500);
    choreo_service *payment = service_as(dir, "payment", server.url, "payment", NULL);
    cr_assert_eq(choreo_service_on(payment, "StockReserved", count, &handled_other),
                 CHOREO_OK);
    cr_assert_eq(choreo_service_start(payment), CHOREO_OK, "after a reload: %s",
                 choreo_last_error());
    choreo_service_destroy(payment);

    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char *envp[260];
    char *const login[] = { "CHOREO_NATS_USER=shop", "CHOREO_NATS_PASSWORD=pw-shop", NULL };
    support_env_with(envp, 260, login);
    char *argv[] = { (char *)bin, "--nats-url", server.url, "tail", NULL };
    cr_assert_eq(support_run(dir, "tail", argv, envp), 1);
    char err[4096], path[600];
    path_fmt(path, sizeof path, "%s/tail.err", dir);
    support_slurp(path, err, sizeof err);
    cr_assert(strstr(err, "the server refused this NATS user an operation") &&
                  strstr(err, "give the user that permission"),
              "%s", err);
    natsd_stop(&server, SIGTERM);
}

/* The tighter variant: each user receives replies on _INBOX_<name>.> only.
 * nats.c 3.4.1's JetStream calls, PubAcks and fetches all use the
 * connection's inbox prefix, so a program that sets it works; one that
 * keeps _INBOX, or listens to another user's inbox, is refused. */
Test(permissions, private_inboxes_work_with_the_inbox_prefix_and_keep_replies_private,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", "--private-inboxes");
    start_server(&server, dir, "permissions.conf", NULL);

    natsConnection *pay = login(server.url, "payment", "_INBOX_payment");
    jsCtx *pay_js = jetstream(pay, 2000);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"choreo.>"};
    sc.Name = "CHOREO";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_AddStream(&si, pay_js, &sc, NULL, NULL), NATS_OK, "%s", errs_text());
    jsStreamInfo_Destroy(si);
    jsPubAck *pa = NULL;
    cr_assert_eq(js_Publish(&pa, pay_js, "choreo.PaymentAuthorized.s1", "x", 1, NULL, NULL),
                 NATS_OK, "%s", errs_text());
    jsPubAck_Destroy(pa);

    natsConnection *pts = login(server.url, "points", "_INBOX_points");
    jsCtx *pts_js = jetstream(pts, 2000);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "points_PaymentAuthorized";
    cc.FilterSubject = "choreo.PaymentAuthorized.*";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    cr_assert_eq(js_AddConsumer(&ci, pts_js, "CHOREO", &cc, NULL, NULL), NATS_OK, "%s", errs_text());
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "CHOREO";
    so.Consumer = "points_PaymentAuthorized";
    natsSubscription *sub = NULL;
    cr_assert_eq(js_PullSubscribe(&sub, pts_js, "choreo.PaymentAuthorized.*",
                                  "points_PaymentAuthorized", NULL, &so, NULL),
                 NATS_OK, "%s", errs_text());
    natsMsgList list = {0};
    cr_assert_eq(natsSubscription_Fetch(&list, sub, 1, 5000, NULL), NATS_OK, "%s", errs_text());
    cr_assert_eq(list.Count, 1);
    cr_assert_eq(natsMsg_Ack(list.Msgs[0], NULL), NATS_OK);
    natsMsgList_Destroy(&list);
    natsConnection_Flush(pts);
    struct consumer_state c = {pts, pts_js, "points_PaymentAuthorized", 0, 0, 0, 0};
    cr_assert(support_wait(consumer_settled, &c, 5000), "the ack did not arrive");
    natsSubscription_Destroy(sub);

    /* Without the prefix, or at another user's inbox: refused. */
    natsConnection *plain = login(server.url, "points", NULL);
    jsCtx *plain_js = jetstream(plain, 500);
    si = NULL;
    cr_assert_neq(js_GetStreamInfo(&si, plain_js, "CHOREO", NULL, NULL), NATS_OK);
    cr_assert(server_refused("Permissions Violation for Subscription", "_INBOX."), "%s", errs_text());
    natsSubscription *spy = NULL;
    cr_assert_eq(natsConnection_SubscribeSync(&spy, pts, "_INBOX_payment.>"), NATS_OK);
    natsConnection_Flush(pts);
    cr_assert(server_refused("Permissions Violation for Subscription", "_INBOX_payment.>"), "%s",
              errs_text());
    natsSubscription_Destroy(spy);
    hang_up(plain, plain_js);
    hang_up(pts, pts_js);
    hang_up(pay, pay_js);
    natsd_stop(&server, SIGTERM);
}

/* With --no-users the file holds the variables only; users of one's own
 * (nkeys, or as here a user named otherwise) take them. */
Test(permissions, the_variables_serve_users_of_ones_own, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "variables.conf", "--no-users");
    char path[600], conf[16384];
    snprintf(path, sizeof path, "%s/variables.conf", dir);
    slurp(path, conf, sizeof conf);
    cr_assert_null(strstr(conf, "authorization"), "--no-users wrote users:\n%s", conf);
    /* nats-server 2.9.10 refuses a variable it never uses ("unknown
     * field"): every one goes to a user. */
    start_server(&server, dir, "variables.conf",
                 "authorization {\n"
                 "  users = [\n"
                 "    { user: \"inv-1\", password: \"s3cret\", permissions: "
                 "$INVENTORY_PERMISSIONS }\n"
                 "    { user: \"o\", password: \"o-pw\", permissions: $ORDER_PERMISSIONS }\n"
                 "    { user: \"pa\", password: \"pa-pw\", permissions: $PAYMENT_PERMISSIONS }\n"
                 "    { user: \"po\", password: \"po-pw\", permissions: $POINTS_PERMISSIONS }\n"
                 "    { user: \"s\", password: \"s-pw\", permissions: $SHOP_PERMISSIONS }\n"
                 "    { user: \"c\", password: \"c-pw\", permissions: $CHOREOCTL_PERMISSIONS }\n"
                 "  ]\n"
                 "}\n");
    char log[600], text[65536];
    snprintf(log, sizeof log, "%s/services.log", dir);
    int saved = support_stderr_to(log);
    choreo_config *cfg = support_config(dir, "inventory", server.url, "nats_user=inv-1",
                                        "nats_password=s3cret", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "OrderCreated", count, &handled_other),
                 CHOREO_OK);
    choreo_status st = choreo_service_start(svc);
    if (st == CHOREO_OK)
        support_emit(svc, "StockRejected", "s1", 1, NULL);
    bool relayed = st == CHOREO_OK &&
                   support_wait_count(dir, "inventory",
                                      "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS "
                                      "NULL",
                                      0, 10000);
    choreo_service_destroy(svc);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);
    cr_assert_eq(st, CHOREO_OK, "%s", choreo_last_error());
    cr_assert(relayed, "StockRejected was not published:\n%s", text);
    cr_assert_null(strstr(text, "Permissions Violation"), "%s", text);
    natsd_stop(&server, SIGTERM);
}

/* Real services with an inbox prefix of their own each (nats_inbox_prefix)
 * under --private-inboxes: the saga step works, and no violation is logged. */
Test(permissions, services_work_with_private_inboxes, .timeout = 90)
{
    char dir[256], log[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    generate(dir, "permissions.conf", "--private-inboxes");
    start_server(&server, dir, "permissions.conf", NULL);
    snprintf(log, sizeof log, "%s/services.log", dir);
    int saved = support_stderr_to(log);
    support_exec(dir, "inventory", "CREATE TABLE seen(n INTEGER)");
    choreo_service *inventory = service_as(dir, "inventory", server.url, "inventory",
                                           "nats_inbox_prefix=_INBOX_inventory");
    choreo_service *order = service_as(dir, "order", server.url, "order",
                                       "nats_inbox_prefix=_INBOX_order");
    cr_assert_eq(choreo_service_on(inventory, "OrderCreated", reserve, NULL), CHOREO_OK);
    choreo_status st_inv = choreo_service_start(inventory);
    choreo_status st_ord = st_inv == CHOREO_OK ? choreo_service_start(order) : st_inv;
    bool handled = false;
    if (st_inv == CHOREO_OK && st_ord == CHOREO_OK) {
        support_emit(order, "OrderCreated", "s1", 7, NULL);
        handled = support_wait_count(dir, "inventory", "SELECT COUNT(*) FROM seen", 1, 10000);
    }
    choreo_service_destroy(inventory);
    choreo_service_destroy(order);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);
    cr_assert_eq(st_inv, CHOREO_OK, "inventory did not start; log:\n%s", text);
    cr_assert_eq(st_ord, CHOREO_OK, "order did not start; log:\n%s", text);
    cr_assert(handled, "OrderCreated was not handled; log:\n%s", text);
    cr_assert_null(strstr(text, "Permissions Violation"), "a permission is missing:\n%s", text);
    natsd_stop(&server, SIGTERM);
}

/* A handler the services file does not list: its consumer's JetStream calls
 * are refused, which nats.c sees only as timeouts. The start must fail at
 * once with CHOREO_EAUTH naming the refused subject, not wait forever. */
Test(permissions, a_permission_missing_at_start_fails_the_start_naming_it, .timeout = 90)
{
    char dir[256], services[600];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    snprintf(services, sizeof services, "%s/narrow.services", dir);
    support_write_file(services,
                       "service order {\n  emits OrderCreated\n  serves Ping\n}\n"
                       "service inventory {\n  emits StockReserved\n  handles OrderCancelled\n}\n"
                       "service payment {\n  emits PaymentAuthorized\n}\n"
                       "service points {\n  emits PointsAwarded\n}\n"
                       "client shop {\n  calls order.*\n}\n"
                       "operator choreoctl\n");
    generate_from(dir, "permissions.conf", services, NULL);
    start_server(&server, dir, "permissions.conf", NULL);
    /* inventory's code also handles OrderCreated, which the file forgot. */
    choreo_service *inventory = service_as(dir, "inventory", server.url, "inventory",
                                           "log_level=error");
    cr_assert_eq(choreo_service_on(inventory, "OrderCancelled", reserve, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(inventory, "OrderCreated", reserve, NULL), CHOREO_OK);
    int64_t t0 = support_mono_ms();
    choreo_status st = choreo_service_start(inventory);
    int64_t took = support_mono_ms() - t0;
    cr_assert_eq(st, CHOREO_EAUTH, "start gave %d: %s", (int)st, choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "Permissions Violation") &&
                  strstr(choreo_last_error(), "inventory_OrderCreated"),
              "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "lacks that permission"), "%s", choreo_last_error());
    cr_assert_lt(took, 30000, "start took %lld ms", (long long)took);
    choreo_service_destroy(inventory);
    natsd_stop(&server, SIGTERM);
}
