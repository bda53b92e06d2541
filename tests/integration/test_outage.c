/* A NATS outage: events emitted while nats-server is down are published
 * after it comes back, and the consumer gets every one of them; a service
 * destroyed while its connection callbacks still wait in nats.c's queue is
 * not touched by them afterwards; a broker frozen for longer than the relay
 * waits for PubAcks loses and doubles nothing; a durable consumer deleted on
 * the server, or gone without a word, is made again, and so is the stream a
 * single server lost with its store. */
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

static choreo_result record(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO got(n) VALUES (%lld)", (long long)support_data_n(ev));
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

static long long stream_messages(const char *url);

struct count_arg {
    const char *dir;
    long long want;
};

static bool all_arrived(void *p)
{
    struct count_arg *a = p;
    return support_count(a->dir, "sink", "SELECT COUNT(DISTINCT n) FROM got") >= a->want;
}

/* Waits (5 s at most) for service svc's choreo_jetstream_remade_total of
 * object (stream or consumer) on the metrics endpoint at port to be want. */
static void expect_remade(int port, const char *svc, const char *object, double want)
{
    char series[160];
    snprintf(series, sizeof series,
             "choreo_jetstream_remade_total{service=\"%s\",object=\"%s\"}", svc, object);
    support_expect_metric(port, series, want, 5000);
}

/* Makes dir (256 bytes) and a server with its store there, and starts a
 * sink recording Tick events in its table got (with its metrics endpoint on
 * port, unless 0) and a source, and sees a first event (n 0) through. */
static void sink_and_source(char *dir, natsd *server, int port, choreo_service **sink,
                            choreo_service **source)
{
    support_tmpdir(dir, 256);
    support_server(server, dir, NULL, NULL);
    const char *url = server->url;
    support_exec(dir, "sink", "CREATE TABLE got(n INTEGER)");
    char addr[64] = "metrics_addr=";
    if (port)
        snprintf(addr, sizeof addr, "metrics_addr=127.0.0.1:%d", port);
    choreo_config *cfg = support_config(dir, "sink", url, addr, NULL);
    *sink = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(*sink, "Tick", record, NULL), CHOREO_OK);
    cfg = support_config(dir, "source", url, NULL);
    *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(*sink), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(*source), CHOREO_OK, "%s", choreo_last_error());
    support_emit(*source, "Tick", "before", 0, NULL);
    struct count_arg first = { dir, 1 };
    cr_assert(support_wait(all_arrived, &first, 10000));
}

Test(outage, events_emitted_while_nats_is_down_for_5s_all_arrive_afterwards, .timeout = 120)
{
    char dir[256];
    natsd server;
    choreo_service *sink, *source;
    sink_and_source(dir, &server, 0, &sink, &source);

    natsd_stop(&server, SIGTERM);
    int emitted = 0;
    for (int i = 1; i <= 50; i++) { /* 50 events over 5 s of outage */
        support_emit(source, "Tick", "during", i, NULL);
        emitted++;
        struct timespec ts = { 0, 100 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(natsd_restart(&server), 0);

    struct count_arg all = { dir, 1 + emitted };
    cr_assert(support_wait(all_arrived, &all, 60000), "only %lld of %d events arrived",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"), 1 + emitted);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), 1 + emitted,
                 "an event was applied twice");
    /* The relay marks a batch published once the next one is on the wire,
     * or at its next scan: every row is marked soon after. */
    cr_assert(support_wait_count(dir, "source",
                                 "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0,
                                 5000),
              "rows stayed unpublished after their events arrived");
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
}

/* A broker that freezes (SIGSTOP) for longer than the relay waits for a
 * round's PubAcks (5 s), until the relay gives a round up, and is then
 * killed and started again: what the relay sent meanwhile sat unread in
 * the frozen broker's socket and is gone. The relay gives each unanswered
 * round up and publishes its rows again, with the same ids, once a broker
 * answers; PubAcks of a given-up round must mark nothing of a later one.
 * The stream ends with each event once (JetStream drops repeats by id), the
 * sink applies each once, and every row is marked published. */
Test(outage, a_broker_frozen_past_the_pubacks_wait_then_killed_loses_and_doubles_nothing,
     .timeout = 120)
{
    char dir[256];
    natsd server;
    choreo_service *sink, *source;
    sink_and_source(dir, &server, 0, &sink, &source);

    cr_assert_eq(kill(server.pid, SIGSTOP), 0);
    int64_t frozen_at = support_mono_ms();
    int emitted = 0;
    for (int i = 1; i <= 20; i++) { /* rounds go out while the broker stays frozen */
        support_emit(source, "Tick", "frozen", i, NULL);
        emitted++;
        support_sleep_ms(100);
    }
    /* A round on the buffered connection waits up to 5 s for its flush's
     * PONG and then up to 5 s for its PubAcks: the broker stays frozen
     * until the relay has given one up. */
    uint64_t gave_up = 0;
    while (support_mono_ms() - frozen_at < 20000 &&
           (gave_up = support_stats(source).publish_errors) == 0)
        support_sleep_ms(50);
    natsd_stop(&server, SIGKILL);
    cr_assert_eq(natsd_restart(&server), 0);

    struct count_arg all = { dir, 1 + emitted };
    bool arrived = support_wait(all_arrived, &all, 60000);
    bool marked = support_wait_count(
        dir, "source", "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0, 20000);
    cr_assert(arrived, "only %lld of %d events arrived",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"), 1 + emitted);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), 1 + emitted,
                 "an event was applied twice");
    cr_assert(marked, "rows stayed unpublished after their events arrived");
    cr_assert_eq(stream_messages(server.url), 1 + emitted,
                 "the stream holds an event twice, or misses one");
    cr_assert(gave_up > 0, "the relay never gave a round up while the broker was frozen");
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
}

/* Holds nats.c's callback thread, which runs every connection's callbacks
 * in turn, as a slow callback of another connection of the process would. */
static void hold_the_callback_thread(natsConnection *nc, void *closure)
{
    support_sleep_ms(4000);
}

Test(outage, a_service_destroyed_while_its_reconnect_callback_waits_is_not_touched_by_it,
     .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    natsOptions *o = NULL;
    natsConnection *other = NULL;
    cr_assert_eq(natsOptions_Create(&o), NATS_OK);
    cr_assert_eq(natsOptions_SetURL(o, server.url), NATS_OK);
    cr_assert_eq(natsOptions_SetMaxReconnect(o, -1), NATS_OK);
    cr_assert_eq(natsOptions_SetDisconnectedCB(o, hold_the_callback_thread, NULL), NATS_OK);
    cr_assert_eq(natsConnection_Connect(&other, o), NATS_OK);
    choreo_config *cfg = support_config(dir, "sink", server.url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Tick", record, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    /* The outage queues the other connection's callback first; the service
     * reconnects behind it and is destroyed while its reconnected callback
     * still waits. Under the sanitizers a late callback is a use after free. */
    natsd_stop(&server, SIGTERM);
    cr_assert_eq(natsd_restart(&server), 0);
    support_sleep_ms(1000);
    choreo_service_destroy(svc);
    support_sleep_ms(4000); /* the held callbacks run now */
    natsConnection_Destroy(other);
    natsOptions_Destroy(o);
    natsd_stop(&server, SIGTERM);
}

/* Runs a sink and a source, sees a first event through, takes the sink's
 * durable consumer (and perhaps more) away with lose, emits five events,
 * and checks that all six arrive, each once, and that the sink says it
 * made its consumer again. Returns the sink's duplicates (events the inbox
 * dropped). */
static uint64_t after_losing(void (*lose)(natsd *server), const char *what)
{
    char dir[256];
    natsd server;
    choreo_service *sink, *source;
    int port = support_free_port();
    sink_and_source(dir, &server, port, &sink, &source);

    lose(&server);
    for (int i = 1; i <= 5; i++)
        support_emit(source, "Tick", "after", i, NULL);

    struct count_arg all = { dir, 6 };
    cr_assert(support_wait(all_arrived, &all, 20000), "only %lld of 6 events arrived after %s",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"), what);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), 6,
                 "an event was applied twice");
    expect_remade(port, "sink", "consumer", 1);
    uint64_t duplicates = support_stats(sink).duplicates;
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
    return duplicates;
}

static void delete_the_consumer(natsd *server)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server->url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_DeleteConsumer(js, "CHOREO", "sink_Tick", NULL, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* A durable consumer deleted on the server while its service runs (by hand,
 * by a script that cleans up) would leave its event type unread for good,
 * with the service otherwise healthy: nothing answers its pulls any more.
 * The fetch thread makes the consumer again, as a start would (from
 * consumer_start=all): every event arrives, the one applied before is
 * delivered again and dropped by the inbox. */
Test(outage, a_durable_consumer_deleted_on_the_server_is_made_again, .timeout = 60)
{
    cr_assert_geq(after_losing(delete_the_consumer, "the consumer was deleted"), 1,
                  "the event applied before was not delivered again by the new consumer");
}

/* Stops the server, removes the sink's consumer from its store, and starts
 * it again. */
static void remove_the_consumer_from_the_store(natsd *server)
{
    natsd_stop(server, SIGTERM);
    char consumer[600];
    snprintf(consumer, sizeof consumer, "%s/js/jetstream/$G/streams/CHOREO/obs/sink_Tick",
             server->dir);
    cr_assert_eq(access(consumer, F_OK), 0, "the consumer is not in the store at %s", consumer);
    natsd_remove_tree(consumer);
    cr_assert_eq(natsd_restart(server), 0);
}

/* The consumer can also go without a word to its service: deleted while
 * the service was disconnected, or between two of its pull requests, or
 * lost with a broker's store. Then no "409 Consumer Deleted" comes, and no
 * 503 either: nats-server 2.9 does not answer a pull for a consumer it
 * does not have at all. The pulls expire unanswered; that makes the fetch
 * thread look as well. Here the consumer is removed from the store while
 * nats-server is down. */
Test(outage, a_durable_consumer_gone_while_the_service_was_disconnected_is_made_again,
     .timeout = 60)
{
    after_losing(remove_the_consumer_from_the_store, "the consumer went unseen");
}

/* Stops the server, deletes its whole JetStream store (a single server's
 * disk that failed and was replaced), and starts it again: the stream and
 * every consumer are gone. */
static void lose_the_store(natsd *server)
{
    natsd_stop(server, SIGTERM);
    char store[600];
    snprintf(store, sizeof store, "%s/js", server->dir);
    natsd_remove_tree(store);
    cr_assert_eq(natsd_restart(server), 0);
}

/* A single server that lost its store has no stream any more: the relay's
 * publishes go unanswered and so do the pulls. The services make the
 * stream (the sink or the source's relay, whichever looks first) and their
 * consumers again, and go on: the events emitted after the loss all
 * arrive. (What the lost stream held and no consumer had taken is gone
 * with it: one server is one copy; a cluster with stream_replicas=3 keeps
 * it.) */
Test(outage, the_stream_lost_with_the_brokers_store_is_made_again, .timeout = 60)
{
    after_losing(lose_the_store, "the broker lost its store");
}

static long long stream_messages(const char *url)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    long long n = -1;
    if (natsConnection_ConnectTo(&nc, url) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, "CHOREO", NULL, NULL) == NATS_OK)
        n = (long long)si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

struct stream_arg {
    const char *url;
    long long want;
};

static bool stream_holds(void *p)
{
    struct stream_arg *a = p;
    return stream_messages(a->url) >= a->want;
}

/* A service that only emits (no handler, so no pulls to go unanswered)
 * has its relay make the stream again. */
Test(outage, a_relay_alone_makes_the_stream_lost_with_the_brokers_store_again, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    int port = support_free_port();
    char addr[64];
    snprintf(addr, sizeof addr, "metrics_addr=127.0.0.1:%d", port);
    choreo_config *cfg = support_config(dir, "source", server.url, addr, NULL);
    choreo_service *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(source), CHOREO_OK, "%s", choreo_last_error());
    support_emit(source, "Tick", "before", 0, NULL);
    struct stream_arg one = { server.url, 1 };
    cr_assert(support_wait(stream_holds, &one, 10000));

    lose_the_store(&server);
    for (int i = 1; i <= 5; i++)
        support_emit(source, "Tick", "after", i, NULL);
    struct stream_arg five = { server.url, 5 };
    cr_assert(support_wait(stream_holds, &five, 20000),
              "the stream holds %lld of the 5 events emitted after the broker lost its store",
              stream_messages(server.url));
    cr_assert(support_wait_count(dir, "source",
                                 "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0,
                                 5000),
              "rows stayed unpublished");
    expect_remade(port, "source", "stream", 1);
    choreo_service_destroy(source);
    natsd_stop(&server, SIGTERM);
}
