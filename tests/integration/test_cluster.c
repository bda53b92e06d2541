/* A three-node NATS cluster: a service with stream_replicas=3 creates an R3
 * stream, and a steady flow of events rides out a SIGKILL of the stream's
 * leader (an election) and the node's return: every event is applied once,
 * none stays unpublished, and the relay says what it waits for. A service
 * started while two of the three nodes are gone waits for them instead of
 * failing on JetStream's "temporarily unavailable". Services on a node that
 * freezes move to another one and go on. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

#define EVENTS 2000
#define EMIT_EVERY_MS 5

static choreo_result record(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO got(n) VALUES (%lld)", (long long)support_data_n(ev));
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

/* The command thread: EVENTS events, one command each, EMIT_EVERY_MS
 * apart. It never asserts (criterion's asserts belong to the test's own
 * thread): it counts what it could not emit. */
struct flow {
    choreo_service *svc;
    atomic_int emitted;
    atomic_int failed;
};

static void *emit_main(void *arg)
{
    struct flow *f = arg;
    for (int i = 1; i <= EVENTS; i++) {
        choreo_mp_writer w;
        choreo_mp_writer_init(&w, 0);
        choreo_mp_write_map(&w, 1);
        choreo_mp_write_cstr(&w, "n");
        choreo_mp_write_int(&w, i);
        choreo_tx *tx;
        bool ok = choreo_service_begin(f->svc, &tx) == CHOREO_OK;
        if (ok && choreo_tx_emit(tx, "Tick", 1, "flow", w.buf, w.len, NULL) != CHOREO_OK) {
            choreo_tx_rollback(tx);
            ok = false;
        }
        ok = ok && choreo_tx_commit(tx) == CHOREO_OK;
        choreo_mp_writer_free(&w);
        atomic_fetch_add(ok ? &f->emitted : &f->failed, 1);
        support_sleep_ms(EMIT_EVERY_MS);
    }
    return NULL;
}

/* The stream's replica count as the cluster reports it. */
static int stream_replicas(const natsd_cluster *c, const char *stream)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    int replicas = -1;
    if (natsConnection_ConnectTo(&nc, c->urls) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK)
        replicas = (int)si->Config->Replicas;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return replicas;
}

static bool file_has(const char *path, const char *text)
{
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    support_slurp(path, buf, cap);
    bool has = strstr(buf, text) != NULL;
    free(buf);
    return has;
}

/* Starts a three-node cluster in a new temporary dir, with the services'
 * log lines going to logs, dir/services.log; returns what
 * support_stderr_back takes. */
static int cluster_up(natsd_cluster *cl, char *dir, size_t dir_cap, char *logs, size_t logs_cap)
{
    support_tmpdir(dir, dir_cap);
    cr_assert_eq(natsd_cluster_start(cl, dir), 0, "the three-node cluster did not start");
    snprintf(logs, logs_cap, "%s/services.log", dir);
    return support_stderr_to(logs);
}

Test(cluster, a_flow_of_events_survives_a_sigkill_of_the_stream_leader_exactly_once,
     .timeout = 240)
{
    char dir[256], logs[300];
    natsd_cluster cl;
    int saved = cluster_up(&cl, dir, sizeof dir, logs, sizeof logs);

    support_exec(dir, "sink", "CREATE TABLE got(n INTEGER)");
    choreo_config *cfg = support_config(dir, "sink", cl.urls, "stream_replicas=3", NULL);
    choreo_service *sink = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(sink, "Tick", record, NULL), CHOREO_OK);
    cfg = support_config(dir, "source", cl.urls, "stream_replicas=3", NULL);
    choreo_service *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(source), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(stream_replicas(&cl, "CHOREO"), 3, "the stream is not replicated three times");

    int leader = -1;
    for (int waited = 0; leader < 0 && waited < 10000; waited += 100) {
        leader = natsd_cluster_stream_leader(&cl, "CHOREO");
        if (leader < 0)
            support_sleep_ms(100);
    }
    cr_assert_geq(leader, 0, "no node reports a leader for the stream");

    struct flow f = { .svc = source };
    pthread_t emitter;
    cr_assert_eq(pthread_create(&emitter, NULL, emit_main, &f), 0);
    /* A third of the flow in, the leader dies without a word; it comes
     * back four seconds later, while events still flow. */
    while (atomic_load(&f.emitted) + atomic_load(&f.failed) < EVENTS / 3)
        support_sleep_ms(20);
    long long applied_before = support_count(dir, "sink", "SELECT COUNT(*) FROM got");
    natsd_cluster_stop_node(&cl, leader, SIGKILL);
    support_sleep_ms(4000);
    int restarted = natsd_cluster_restart_node(&cl, leader, 30000);
    pthread_join(emitter, NULL);
    cr_assert_eq(restarted, 0, "the killed node did not come back");
    cr_assert_eq(atomic_load(&f.failed), 0, "%d commands failed", atomic_load(&f.failed));
    cr_assert_lt(applied_before, EVENTS, "the kill came after the flow had ended");

    bool all = support_wait_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got", EVENTS,
                                  90000);
    bool marked = support_wait_count(
        dir, "source", "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0, 10000);
    long long pause_ms = support_count(
        dir, "source", "SELECT MAX(published_at - created_at / 1000) FROM choreo_outbox");
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    support_stderr_back(saved);
    fprintf(stderr, "cluster: leader n%d killed; longest wait from commit to publish %lld ms\n",
            leader + 1, pause_ms);

    cr_assert(all, "only %lld of %d events were applied",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"), EVENTS);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), EVENTS,
                 "an event was applied twice");
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM choreo_inbox"), EVENTS,
                 "the inbox does not hold one mark per event");
    cr_assert(marked, "rows stayed unpublished");
    cr_assert_geq(pause_ms, 1000, "publishing never paused: the kill missed the stream's leader");
    /* Publishes sent during the election either wait for their PubAck
     * until the new leader answers (a slow machine, well within the
     * relay's 5 s), or fail at once with no responders; when the relay
     * reports a failure, it names the election. */
    cr_assert(!file_has(logs, "relay publish failed") ||
                  file_has(logs, "the stream has no leader right now"),
              "the relay's failures do not say it waits for the stream's new leader (see %s)",
              logs);
    natsd_cluster_stop(&cl, SIGTERM);
}

static choreo_result ignore(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)tx;
    (void)ev;
    (void)user;
    return CHOREO_DONE;
}

/* A service that starts while the cluster has lost its quorum (two of
 * three nodes gone, as in a rolling restart gone wrong or the moment of an
 * election) gets "JetStream system temporarily unavailable" (code 10008)
 * for its consumers from the node that is left. That is a broker on its
 * way back, like one that does not answer yet: the service waits for it
 * instead of failing to start. */
Test(cluster, a_service_started_while_the_cluster_has_no_quorum_waits_for_it, .timeout = 180)
{
    char dir[256], logs[300];
    natsd_cluster cl;
    int saved = cluster_up(&cl, dir, sizeof dir, logs, sizeof logs);

    /* The stream exists, made by another service. */
    choreo_config *cfg = support_config(dir, "maker", cl.urls, "stream_replicas=3", NULL);
    choreo_service *maker = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(maker), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(maker);

    natsd_cluster_stop_node(&cl, 1, SIGKILL);
    natsd_cluster_stop_node(&cl, 2, SIGKILL);
    support_exec(dir, "late", "CREATE TABLE IF NOT EXISTS t(x)");
    cfg = support_config(dir, "late", cl.urls, "stream_replicas=3", NULL);
    choreo_service *late = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(late, "Tick", ignore, NULL), CHOREO_OK);
    support_start st;
    support_start_begin(&st, late);
    support_sleep_ms(6000);
    cr_assert_eq(atomic_load(&st.result), -1, "start returned while the cluster had no quorum");
    int back = natsd_cluster_restart_nodes(&cl, (const int[]){ 1, 2 }, 2, 30000);
    choreo_status started = support_start_join(&st);
    support_stderr_back(saved);
    cr_assert_eq(back, 0, "nodes n2 and n3 did not come back");
    cr_assert_eq(started, CHOREO_OK, "start failed while the cluster had no quorum: %s",
                 st.error);
    choreo_service_destroy(late);
    natsd_cluster_stop(&cl, SIGTERM);
}

/* A node that freezes (SIGSTOP: a host that hangs, or a network that drops
 * its packets) closes nothing: its kernel keeps the connections open, so no
 * client sees an error, and nats.c's default of a PING every two minutes
 * would leave the services on it for minutes. The services ping every
 * nats_ping_interval_ms (here 1 s, for a short test; 5 s by default) and
 * leave a node that misses two PONGs: here they know only the frozen node's
 * URL (the others come from the cluster's gossip), and every event still
 * arrives while it stays frozen. */
Test(cluster, services_on_a_node_that_freezes_move_to_another_and_go_on, .timeout = 240)
{
    char dir[256], logs[300];
    natsd_cluster cl;
    int saved = cluster_up(&cl, dir, sizeof dir, logs, sizeof logs);

    support_exec(dir, "sink", "CREATE TABLE got(n INTEGER)");
    choreo_config *cfg = support_config(dir, "sink", cl.node[0].url, "stream_replicas=3",
                                        "nats_ping_interval_ms=1000", NULL);
    choreo_service *sink = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(sink, "Tick", record, NULL), CHOREO_OK);
    cfg = support_config(dir, "source", cl.node[0].url, "stream_replicas=3",
                         "nats_ping_interval_ms=1000", NULL);
    choreo_service *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(source), CHOREO_OK, "%s", choreo_last_error());
    for (int i = 1; i <= 100; i++)
        support_emit(source, "Tick", "before", i, NULL);
    cr_assert(support_wait_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got", 100, 30000),
              "the flow did not start");

    cr_assert_eq(kill(cl.node[0].pid, SIGSTOP), 0);
    int64_t frozen_at = support_mono_ms();
    for (int i = 101; i <= 300; i++) {
        support_emit(source, "Tick", "frozen", i, NULL);
        support_sleep_ms(20);
    }
    bool all = support_wait_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got", 300,
                                  (int)(60000 - (support_mono_ms() - frozen_at)));
    int64_t took_ms = support_mono_ms() - frozen_at;
    kill(cl.node[0].pid, SIGCONT);

    bool marked = support_wait_count(
        dir, "source", "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0, 20000);
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    /* A connection's reconnect thread may still be waiting on the node that
     * was frozen: the process waits for nats.c's threads before it ends, or
     * the leak checker finds the connection they still hold. */
    nats_CloseAndWait(10000);
    support_stderr_back(saved);
    fprintf(stderr, "cluster: node n1 frozen; every event applied %lld ms after the freeze\n",
            (long long)took_ms);
    cr_assert(all, "only %lld of 300 events were applied in the 60 s node n1 stayed frozen",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"));
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), 300,
                 "an event was applied twice");
    cr_assert(marked, "rows stayed unpublished");
    natsd_cluster_stop(&cl, SIGTERM);
}
