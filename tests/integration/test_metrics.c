/* The metrics endpoint (metrics_addr) against a real nats-server: the
 * counters equal what the handlers did (done, retry, reject, duplicate,
 * compensations, late actions, saga ends, requests, emits, publishes), the
 * sampler's gauges show the parked rows, the delayed rows and the
 * consumers' lag (not asked of the broker every 2 s), promtool accepts
 * the output, NATS connected follows a broker outage (also while start
 * still waits for its broker), and a bad or taken address fails with an
 * error that names it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

/* ---- the handlers ----------------------------------------------------- */

/* Work {n}: the barrier's action on its saga, then by n % 4: 0 rejects,
 * 1 asks to retry once, 2 completes its saga, 3 cancels it. */
static choreo_result on_work(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    bool run = false;
    if (choreo_tx_barrier(tx, NULL, "step", CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE; /* late: its compensation came first */
    int64_t n = support_data_n(ev);
    if (n % 4 == 0) {
        choreo_tx_set_reason(tx, "n is a multiple of 4");
        return CHOREO_REJECT;
    }
    if (n % 4 == 1)
        return ev->attempt == 1 ? CHOREO_RETRY : CHOREO_DONE;
    choreo_status s = n % 4 == 2 ? choreo_tx_saga_end(tx, NULL, CHOREO_SAGA_COMPLETED, NULL)
                                 : choreo_tx_saga_end(tx, NULL, CHOREO_SAGA_CANCELLED, "no_stock");
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_REJECT;
}

static choreo_result on_undo(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    bool run = false;
    return choreo_tx_barrier(tx, NULL, "step", CHOREO_BARRIER_COMPENSATION, &run) == CHOREO_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

static choreo_result on_echo(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    (void)tx;
    (void)user;
    (void)reply;
    return len == 2 && memcmp(req, "ok", 2) == 0 ? CHOREO_DONE : CHOREO_REJECT;
}

/* A service named name whose metrics listen on port, with one more setting
 * (NULL: none). */
static choreo_service *with_metrics(const char *dir, const char *url, const char *name, int port,
                                    const char *setting)
{
    char addr[64];
    snprintf(addr, sizeof addr, "metrics_addr=127.0.0.1:%d", port);
    choreo_config *cfg = support_config(dir, name, url, addr, "log_level=error", setting, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    return svc;
}

static choreo_service *metered(const char *dir, const char *url, int port)
{
    choreo_service *svc = with_metrics(dir, url, "m", port, "retry_base_ms=50");
    cr_assert_eq(choreo_service_on(svc, "Work", on_work, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Undo", on_undo, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_request(svc, "Echo", on_echo, NULL), CHOREO_OK);
    return svc;
}

static void request(const char *url, const char *body)
{
    natsConnection *nc;
    natsMsg *reply = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    cr_assert_eq(natsConnection_RequestString(&reply, nc, "choreo-rpc.m.Echo", body, 5000),
                 NATS_OK);
    natsMsg_Destroy(reply);
    natsConnection_Destroy(nc);
}

#define H(consumer, type, outcome)                                                           \
    "choreo_events_handled_total{service=\"m\",consumer=\"" consumer "\",type=\"" type       \
    "\",outcome=\"" outcome "\"}"

Test(metrics, the_counters_and_gauges_equal_what_the_service_did, .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    int port = support_free_port();
    choreo_service *svc = metered(dir, server.url, port);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());

    char sagas[8][CHOREO_ID_SIZE], ids[8][CHOREO_ID_SIZE];
    for (int n = 0; n < 8; n++) {
        choreo_saga_new(sagas[n]);
        support_emit(svc, "Work", sagas[n], n, ids[n]);
    }
    support_expect_metric(port, H("m_Work", "Work", "done"), 6, 20000);
    support_expect_metric(port, H("m_Work", "Work", "retry"), 2, 5000);
    support_expect_metric(port, H("m_Work", "Work", "reject"), 2, 5000);
    /* Compensations: two whose action ran, and one for a saga whose action
     * never came (null), whose late action is then skipped. */
    char fresh[CHOREO_ID_SIZE];
    choreo_saga_new(fresh);
    support_emit(svc, "Undo", sagas[2], 0, NULL);
    support_emit(svc, "Undo", sagas[3], 0, NULL);
    support_emit(svc, "Undo", fresh, 0, NULL);
    support_expect_metric(port, H("m_Undo", "Undo", "done"), 3, 20000);
    support_emit(svc, "Work", fresh, 2, NULL);
    support_expect_metric(port, H("m_Work", "Work", "done"), 7, 20000);
    support_republish(server.url, dir, "m", ids[2], NULL, "another-msg-id");
    support_expect_metric(port, H("m_Work", "Work", "duplicate"), 1, 20000);
    request(server.url, "ok");
    request(server.url, "no");
    /* A delayed event, due in an hour, and an event nobody handles. */
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    cr_assert_eq(choreo_tx_emit_after(tx, 3600000, "Later", 1, fresh, NULL, 0, NULL), CHOREO_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);

    support_expect_metric(port, "choreo_outbox_delayed{service=\"m\"}", 1, 10000);
    support_expect_metric(port, "choreo_parked_messages{service=\"m\",consumer=\"m_Work\",type=\"Work\"}", 2,
           10000);
    support_expect_metric(port, "choreo_outbox_pending{service=\"m\"}", 0, 10000);
    /* The lag is read from JetStream every 15 s: a value read while an
     * event was still on its way may stand that long. */
    support_expect_metric(port, "choreo_consumer_pending_messages{service=\"m\",consumer=\"m_Work\"}", 0,
           20000);
    support_expect_metric(port, "choreo_consumer_ack_pending_messages{service=\"m\",consumer=\"m_Undo\"}", 0,
           20000);
    support_expect_metric(port, "choreo_requests_total{service=\"m\",request=\"Echo\",outcome=\"reject\"}", 1,
           5000);

    static char text[131072];
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    struct {
        const char *series;
        double want;
    } want[] = {
        { H("m_Work", "Work", "done"), 7 },
        { H("m_Work", "Work", "retry"), 2 },
        { H("m_Work", "Work", "reject"), 2 },
        { H("m_Work", "Work", "duplicate"), 1 },
        { H("m_Work", "Work", "parked"), 0 },
        { H("m_Undo", "Undo", "done"), 3 },
        { "choreo_parked_total{service=\"m\",consumer=\"m_Work\",type=\"Work\"}", 2 },
        { "choreo_compensations_total{service=\"m\",consumer=\"m_Undo\",type=\"Undo\","
          "result=\"run\"}", 2 },
        { "choreo_compensations_total{service=\"m\",consumer=\"m_Undo\",type=\"Undo\","
          "result=\"null\"}", 1 },
        { "choreo_late_actions_skipped_total{service=\"m\",consumer=\"m_Work\",type=\"Work\"}", 1 },
        { "choreo_compensations_parked_total{service=\"m\",consumer=\"m_Undo\",type=\"Undo\"}", 0 },
        { "choreo_sagas_total{service=\"m\",outcome=\"completed\",reason=\"\"}", 2 },
        { "choreo_sagas_total{service=\"m\",outcome=\"cancelled\",reason=\"no_stock\"}", 2 },
        { "choreo_saga_duration_seconds_count{service=\"m\",outcome=\"completed\"}", 2 },
        { "choreo_events_emitted_total{service=\"m\",type=\"Work\"}", 9 },
        { "choreo_events_emitted_total{service=\"m\",type=\"Undo\"}", 3 },
        { "choreo_events_emitted_total{service=\"m\",type=\"Later\"}", 1 },
        { "choreo_events_published_total{service=\"m\",type=\"Work\"}", 9 },
        { "choreo_events_published_total{service=\"m\",type=\"Later\"}", -1 },
        { "choreo_requests_total{service=\"m\",request=\"Echo\",outcome=\"done\"}", 1 },
        { "choreo_requests_total{service=\"m\",request=\"Echo\",outcome=\"reject\"}", 1 },
        { "choreo_request_duration_seconds_count{service=\"m\",request=\"Echo\"}", 2 },
        { "choreo_handler_duration_seconds_count{service=\"m\",consumer=\"m_Work\","
          "type=\"Work\"}", 11 },
        /* First deliveries only: the nine emitted and the one republished,
         * not the redeliveries of the two retried. */
        { "choreo_delivery_latency_seconds_count{service=\"m\",consumer=\"m_Work\","
          "type=\"Work\"}", 10 },
        { "choreo_delivery_latency_seconds_count{service=\"m\",consumer=\"m_Undo\","
          "type=\"Undo\"}", 3 },
        { "choreo_nats_connected{service=\"m\"}", 1 },
        { "choreo_relay_active{service=\"m\"}", 1 },
        { "choreo_publish_failures_total{service=\"m\"}", 0 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_eq(support_metric(text, want[i].series), want[i].want, "%s is %g, not %g",
                     want[i].series, support_metric(text, want[i].series), want[i].want);
    cr_expect(strstr(text, "\nchoreo_service_info{service=\"m\",version=\""), "%s", text);
    /* A histogram's buckets are cumulative and end at its count. */
    double inf = support_metric(text, "choreo_relay_latency_seconds_bucket{service=\"m\",le=\"+Inf\"}");
    cr_expect_eq(inf, support_metric(text, "choreo_relay_latency_seconds_count{service=\"m\"}"));
    cr_expect_eq(inf, 12, "12 events were published: the relay latency counts %g", inf);
    /* Stored to taken up on one machine: well under a second each, in
     * seconds (not the server's nanoseconds). */
    double waited = support_metric(
        text, "choreo_delivery_latency_seconds_sum{service=\"m\",consumer=\"m_Work\",type=\"Work\"}");
    cr_expect(waited >= 0 && waited < 10, "the ten deliveries waited %g s in all", waited);
    cr_expect_eq(support_metric(text, "choreo_delivery_latency_seconds_bucket{service=\"m\","
                                      "consumer=\"m_Work\",type=\"Work\",le=\"+Inf\"}"),
                 10);

    /* A body that does not decode is parked under its consumer's type, as
     * the counter counts it: the body names no type, or any it likes. */
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    cr_assert_eq(natsConnection_PublishString(nc, "choreo.Work.not-msgpack", "\xc1junk"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    natsConnection_Destroy(nc);
    support_expect_metric(port, "choreo_parked_messages{service=\"m\",consumer=\"m_Work\",type=\"Work\"}", 3,
           10000);
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);

    /* promtool, Prometheus's own checker, finds nothing to say. */
    char path[600], cmd[1200], out[4096];
    snprintf(path, sizeof path, "%s/metrics.txt", dir);
    support_write_file(path, text);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s > %s/promtool.out 2>&1", path, dir);
    int rc = system(cmd);
    snprintf(path, sizeof path, "%s/promtool.out", dir);
    support_slurp(path, out, sizeof out);
    cr_expect(rc == 0 && out[0] == '\0',
              "promtool check metrics (exit %d; install the Debian package prometheus if it is "
              "missing) says:\n%s", rc, out);

    /* Clients that connect and never finish their request take a
     * connection each, not the endpoint: a scrape still gets its answer. */
    int idle[8];
    for (int i = 0; i < 8; i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        cr_assert_eq(connect(idle[i], (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(write(idle[i], "GET /metr", 9), 9);
    }
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    for (int i = 0; i < 8; i++)
        close(idle[i]);

    /* Anything but GET /metrics gets an answer that says where to look. */
    cr_assert_eq(support_http(port, "GET", "/", text, sizeof text), 404);
    cr_assert(strstr(text, "/metrics"), "%s", text);
    cr_assert_eq(support_http(port, "POST", "/metrics", text, sizeof text), 405);
    cr_assert(strstr(text, "GET and HEAD"), "%s", text);
    choreo_service_destroy(svc);
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), -1,
                 "the endpoint outlived its service");
    natsd_stop(&server, SIGTERM);
}

static choreo_result on_tick(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)tx, (void)ev, (void)user;
    return CHOREO_DONE;
}

/* A prefix may have dots of its own: the published events are counted under
 * their type (the subject's token before the saga), not a word of the
 * prefix. */
Test(metrics, events_under_a_prefix_with_dots_are_counted_by_their_type, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    int port = support_free_port();
    choreo_service *svc = with_metrics(dir, server.url, "d", port, "prefix=acme.shop");
    cr_assert_eq(choreo_service_on(svc, "Tick", on_tick, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    for (int n = 0; n < 3; n++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        support_emit(svc, "Tick", saga, n, NULL);
    }
    support_expect_metric(port, "choreo_events_handled_total{service=\"d\",consumer=\"d_Tick\","
                          "type=\"Tick\",outcome=\"done\"}", 3, 20000);
    support_expect_metric(port, "choreo_events_published_total{service=\"d\",type=\"Tick\"}", 3,
                          5000);
    static char text[131072];
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    cr_assert_null(strstr(text, "type=\"shop\""), "a word of the prefix taken for a type:\n%s",
                   text);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(metrics, a_bad_or_taken_address_is_refused_with_its_name, .timeout = 60)
{
    choreo_config *cfg;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    const char *bad[] = { "9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:94x4", ":9464" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(choreo_config_set(cfg, "metrics_addr", bad[i]), CHOREO_ECONFIG, "%s", bad[i]);
        cr_assert(strstr(choreo_last_error(), "host:port"), "%s", choreo_last_error());
    }
    cr_assert_eq(choreo_config_set(cfg, "metrics_addr", ""), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "metrics_addr", "[::1]:9464"), CHOREO_OK);
    choreo_config_destroy(cfg);

    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    /* Someone else listens on the port. */
    int port = support_free_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 4), 0);
    choreo_service *svc = metered(dir, server.url, port);
    cr_assert_eq(choreo_service_start(svc), CHOREO_ECONFIG);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%d", port);
    cr_assert(strstr(choreo_last_error(), "metrics_addr") && strstr(choreo_last_error(), want) &&
                  strstr(choreo_last_error(), strerror(EADDRINUSE)),
              "%s", choreo_last_error());
    /* Once the port is free the same service starts. */
    close(fd);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    static char text[65536];
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    choreo_service_destroy(svc);

    /* An address of no interface of this machine. */
    choreo_config *c2 = support_config(dir, "m2", server.url, "metrics_addr=192.0.2.1:9464",
                                       "log_level=error", NULL);
    choreo_service *s2 = support_service(c2);
    choreo_config_destroy(c2);
    cr_assert_eq(choreo_service_start(s2), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "192.0.2.1:9464"), "%s", choreo_last_error());
    choreo_service_destroy(s2);

    /* Port 0: the system chooses, and the log says which even at warn. */
    char log[600], said[65536], line[2048];
    snprintf(log, sizeof log, "%s/m3.log", dir);
    c2 = support_config(dir, "m3", server.url, "metrics_addr=127.0.0.1:0", NULL);
    s2 = support_service(c2);
    choreo_config_destroy(c2);
    int saved = support_stderr_to(log);
    choreo_status started = choreo_service_start(s2);
    support_stderr_back(saved);
    cr_assert_eq(started, CHOREO_OK, "%s", choreo_last_error());
    support_slurp(log, said, sizeof said);
    support_line_with(said, "a port the system chose", line, sizeof line);
    int chosen = 0;
    const char *url = strstr(line, "url=http://127.0.0.1:");
    cr_assert(url && sscanf(url, "url=http://127.0.0.1:%d/metrics", &chosen) == 1 && chosen > 0,
              "no warn line names the port: %s", said);
    cr_assert_eq(support_http(chosen, "GET", "/metrics", text, sizeof text), 200);
    choreo_service_destroy(s2);
    natsd_stop(&server, SIGTERM);
}

/* Counts the consumer info requests for this service's consumers that a
 * plain subscriber sees during ms milliseconds. */
static int consumer_infos_during(natsSubscription *sub, int64_t ms)
{
    int n = 0;
    for (int64_t end = support_mono_ms() + ms, left; (left = end - support_mono_ms()) > 0;) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, left) == NATS_OK) {
            const char *subject = natsMsg_GetSubject(m);
            n += strstr(subject, ".m_Work") || strstr(subject, ".m_Undo");
            natsMsg_Destroy(m);
        }
    }
    return n;
}

/* The lag gauges come from JetStream consumer info requests, which cost
 * nats-server a count over every subject of the stream's newest blocks
 * (one per saga and type) while it holds the stream's store: read every
 * 2 s, they raised the shop demo's p99 at 500 sagas/s from 47 to 76 ms. The
 * sampler reads them at start and then every 15 s, while the backlog and
 * the parked rows stay at 2 s. */
Test(metrics, the_consumers_lag_is_not_asked_of_the_broker_every_two_seconds, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    natsConnection *nc;
    natsSubscription *sub;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "$JS.API.CONSUMER.INFO.>"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    int port = support_free_port();
    choreo_service *svc = metered(dir, server.url, port);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_expect_metric(port,
                          "choreo_consumer_pending_messages{service=\"m\",consumer=\"m_Work\"}",
                          0, 10000);
    support_expect_metric(port,
                          "choreo_consumer_pending_messages{service=\"m\",consumer=\"m_Undo\"}",
                          0, 10000);
    consumer_infos_during(sub, 500); /* the first sample's, and start's own */
    /* Three of the 2 s rounds: the backlog is read again (a delayed event
     * shows up in its gauge), the lag is not. */
    choreo_tx *tx;
    char saga[CHOREO_ID_SIZE];
    choreo_saga_new(saga);
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    cr_assert_eq(choreo_tx_emit_after(tx, 3600000, "Later", 1, saga, NULL, 0, NULL), CHOREO_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
    int64_t from = support_mono_ms();
    support_expect_metric(port, "choreo_outbox_delayed{service=\"m\"}", 1, 5000);
    int later = consumer_infos_during(sub, 6500 - (support_mono_ms() - from));
    cr_expect_eq(later, 0, "%d consumer info requests in 6.5 s after the first lag sample", later);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(metrics, nats_connected_follows_the_broker, .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    natsd_stop(&server, SIGTERM);
    /* The endpoint is up while start still waits for its broker. */
    int port = support_free_port();
    support_start st;
    support_start_begin(&st, metered(dir, server.url, port));
    support_expect_metric(port, "choreo_nats_connected{service=\"m\"}", 0, 10000);
    /* The database's gauges too, for an outbox that waits for the broker. */
    support_expect_metric(port, "choreo_outbox_pending{service=\"m\"}", 0, 5000);
    cr_assert_eq(atomic_load(&st.result), -1, "start returned with no broker");
    cr_assert_eq(natsd_restart(&server), 0);
    cr_assert_eq(support_start_join(&st), CHOREO_OK, "%s", st.error);
    support_expect_metric(port, "choreo_nats_connected{service=\"m\"}", 1, 5000);
    support_expect_metric(port, "choreo_nats_reconnects_total{service=\"m\"}", 0, 1000);
    /* An outage and the way back. */
    natsd_stop(&server, SIGKILL);
    support_expect_metric(port, "choreo_nats_connected{service=\"m\"}", 0, 10000);
    cr_assert_eq(natsd_restart(&server), 0);
    support_expect_metric(port, "choreo_nats_connected{service=\"m\"}", 1, 20000);
    static char text[65536];
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    /* One outage is one reconnection, though the relay has a connection of
     * its own. */
    cr_assert_eq(support_metric(text, "choreo_nats_reconnects_total{service=\"m\"}"), 1, "%s", text);
    choreo_service_destroy(st.svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- a handler that hangs ---- */

static atomic_bool hang_released;

static choreo_result hang(choreo_tx *tx, const choreo_event *ev, void *user)
{
    while (!atomic_load(&hang_released))
        support_sleep_ms(20);
    return CHOREO_DONE;
}

struct busy_probe {
    int port;
    double seconds;
};

static bool busy_over_two_seconds(void *p)
{
    struct busy_probe *b = p;
    static char text[65536];
    if (support_http(b->port, "GET", "/metrics", text, sizeof text) != 200)
        return false;
    b->seconds = support_metric(text, "choreo_dispatcher_busy_seconds{service=\"h\"}");
    return b->seconds >= 2;
}

/* choreo_dispatcher_busy_seconds is 0 while the dispatcher waits for work,
 * grows while a handler does not return, and is 0 again once it has. */
Test(metrics, dispatcher_busy_seconds_grows_while_a_handler_hangs, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    int port = support_free_port();
    choreo_service *svc = with_metrics(dir, server.url, "h", port, NULL);
    atomic_store(&hang_released, false);
    cr_assert_eq(choreo_service_on(svc, "Hang", hang, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_expect_metric(port, "choreo_dispatcher_busy_seconds{service=\"h\"}", 0, 5000);
    support_emit(svc, "Hang", "s1", 1, NULL);
    struct busy_probe b = { port, 0 };
    bool grew = support_wait(busy_over_two_seconds, &b, 15000);
    atomic_store(&hang_released, true);
    cr_assert(grew, "choreo_dispatcher_busy_seconds is %g while a handler hangs", b.seconds);
    cr_assert_lt(b.seconds, 15, "%g s: more than the test has run", b.seconds);
    support_expect_metric(port, "choreo_dispatcher_busy_seconds{service=\"h\"}", 0, 5000);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}
