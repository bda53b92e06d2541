/* The core promise end to end, against a real nats-server: a handler's
 * business row, emitted event and inbox mark commit together and the event
 * reaches the next service; duplicates are applied once; a crash between
 * commit and publish loses nothing. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

/* inventory: OrderCreated -> reserve row + StockReserved */
static choreo_result on_order_created(choreo_tx *tx, const choreo_event *ev, void *user)
{
    sqlite3 *db = choreo_tx_db(tx);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO reserved(n) VALUES (%lld)", (long long)support_data_n(ev));
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return CHOREO_RETRY;
    if (choreo_tx_emit(tx, "StockReserved", 1, NULL, ev->data, ev->data_len, NULL) != CHOREO_OK)
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* order: StockReserved -> done row */
static choreo_result on_stock_reserved(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO done(n, cause) VALUES (%lld, '%s')",
             (long long)support_data_n(ev), ev->cause);
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

struct world {
    char dir[256];
    natsd server;
    choreo_service *inv, *ord;
};

static void setup_tables(struct world *w)
{
    support_exec(w->dir, "inv", "CREATE TABLE IF NOT EXISTS reserved(n INTEGER)");
    support_exec(w->dir, "ord", "CREATE TABLE IF NOT EXISTS done(n INTEGER, cause TEXT)");
}

static choreo_service *make_inv(struct world *w, const char *extra)
{
    choreo_config *cfg = support_config(w->dir, "inv", w->server.url, extra, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "OrderCreated", on_order_created, NULL), CHOREO_OK);
    return svc;
}

static choreo_service *make_ord(struct world *w, const char *extra)
{
    choreo_config *cfg = support_config(w->dir, "ord", w->server.url, extra, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "StockReserved", on_stock_reserved, NULL), CHOREO_OK);
    return svc;
}

static void world_up(struct world *w)
{
    memset(w, 0, sizeof *w); /* a service a test does not make stays NULL for world_down */
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    setup_tables(w);
}

/* The world with both services made (logging warnings) and started. */
static void world_running(struct world *w)
{
    world_up(w);
    w->inv = make_inv(w, "log_level=warn");
    w->ord = make_ord(w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w->inv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w->ord), CHOREO_OK, "%s", choreo_last_error());
}

static void world_down(struct world *w)
{
    choreo_service_destroy(w->inv);
    choreo_service_destroy(w->ord);
    natsd_stop(&w->server, SIGTERM);
}

struct count_arg {
    const char *dir, *name, *sql;
    long long want;
};

static bool count_reaches(void *p)
{
    struct count_arg *a = p;
    return support_count(a->dir, a->name, a->sql) >= a->want;
}

struct stat_arg {
    choreo_service *svc;
    uint64_t want;
};

static bool duplicates_reach(void *p)
{
    struct stat_arg *a = p;
    return support_stats(a->svc).duplicates >= a->want;
}

/* The relay counts rows published after their mark commits, so a reader of
 * the database can see the mark a moment before the count. */
static bool published_counted(void *p)
{
    struct stat_arg *a = p;
    return support_stats(a->svc).published >= a->want;
}

Test(pipeline, business_row_event_and_inbox_mark_commit_together_and_the_event_travels,
     .timeout = 60)
{
    struct world w;
    world_running(&w);

    char saga[CHOREO_ID_SIZE], id[CHOREO_ID_SIZE];
    choreo_saga_new(saga);
    support_emit(w.ord, "OrderCreated", saga, 42, id);

    struct count_arg done = { w.dir, "ord", "SELECT COUNT(*) FROM done", 1 };
    cr_assert(support_wait(count_reaches, &done, 15000), "StockReserved never reached order");
    cr_assert_eq(support_count(w.dir, "ord", "SELECT n FROM done"), 42);
    /* inventory committed its row, its outbox row and its inbox mark, all
     * for this one event */
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved WHERE n = 42"), 1);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_inbox WHERE consumer = 'inv_OrderCreated' AND event_id = '%s'", id);
    cr_assert_eq(support_count(w.dir, "inv", sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_outbox WHERE subject = 'choreo.StockReserved.%s'", saga);
    cr_assert_eq(support_count(w.dir, "inv", sql), 1);
    /* the emitted event names the event that caused it */
    sqlite3 *db;
    char path[600];
    snprintf(path, sizeof path, "%s/ord.db", w.dir);
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT cause FROM done", -1, &st, NULL);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), id);
    sqlite3_finalize(st);
    sqlite3_close(db);
    struct count_arg marked = { w.dir, "inv",
        "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NOT NULL", 1 };
    cr_assert(support_wait(count_reaches, &marked, 5000), "outbox row never marked published");
    struct stat_arg counted = { w.inv, 1 };
    cr_assert(support_wait(published_counted, &counted, 5000), "the mark was never counted");
    cr_assert_eq(support_stats(w.inv).handled, 1);
    cr_assert_eq(support_stats(w.inv).published, 1);
    world_down(&w);
}

Test(pipeline, a_redelivery_after_a_kill_before_the_ack_is_applied_once, .timeout = 90)
{
    struct world w;
    world_up(&w);
    /* The first inventory process dies right after its first commit, before
     * acking: JetStream redelivers to the next process, whose inbox must
     * recognise the event. */
    pid_t child = support_fork();
    if (child == 0) {
        setenv("CHOREO_CRASHPOINTS", "after_commit_before_ack", 1);
        choreo_service *inv = make_inv(&w, "log_level=error");
        if (choreo_service_start(inv) != CHOREO_OK)
            _exit(3);
        sleep(30);
        _exit(4); /* the crash point never fired */
    }
    w.ord = make_ord(&w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    char saga[CHOREO_ID_SIZE];
    choreo_saga_new(saga);
    support_emit(w.ord, "OrderCreated", saga, 7, NULL);
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the first inventory process should have died by its crash point (status %d)", status);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 1,
                 "the killed process had committed");

    w.inv = make_inv(&w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    struct stat_arg d = { w.inv, 1 };
    cr_assert(support_wait(duplicates_reach, &d, 20000), "the redelivery never came");
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 1);
    choreo_stats s;
    choreo_service_stats(w.inv, &s);
    cr_assert_eq(s.handled, 0, "the handler must not run again");
    struct count_arg done = { w.dir, "ord", "SELECT COUNT(*) FROM done", 1 };
    cr_assert(support_wait(count_reaches, &done, 15000));
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM choreo_outbox"), 1,
                 "StockReserved must be emitted once");
    world_down(&w);
}

Test(pipeline, a_republish_with_the_same_event_id_is_applied_once, .timeout = 60)
{
    struct world w;
    world_running(&w);
    char saga[CHOREO_ID_SIZE];
    choreo_saga_new(saga);
    support_emit(w.ord, "OrderCreated", saga, 9, NULL);
    struct count_arg done = { w.dir, "ord", "SELECT COUNT(*) FROM done", 1 };
    cr_assert(support_wait(count_reaches, &done, 15000));

    /* Same body (same event id) under another broker msg id: JetStream keeps
     * it, the inbox must drop it. */
    support_republish(w.server.url, w.dir, "ord", NULL, NULL, "some-other-msg-id");
    struct stat_arg d = { w.inv, 1 };
    cr_assert(support_wait(duplicates_reach, &d, 15000), "the republished event never arrived");
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 1);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM choreo_outbox"), 1);
    choreo_stats s;
    choreo_service_stats(w.inv, &s);
    cr_assert_eq(s.handled, 1);
    world_down(&w);
}

static bool parked_reaches(void *p)
{
    struct stat_arg *a = p;
    return support_stats(a->svc).parked >= a->want;
}

/* A producer that reuses an applied event's id for another event (other
 * saga and data): the inbox used to drop it as a duplicate, and it was
 * lost without a word. It is parked, saying why, and the event applied
 * under that id stays applied once; a true repeat is still a duplicate. */
Test(pipeline, another_event_under_an_applied_id_is_parked_not_dropped, .timeout = 60)
{
    struct world w;
    world_running(&w);
    char saga1[CHOREO_ID_SIZE], saga2[CHOREO_ID_SIZE], id1[CHOREO_ID_SIZE], id2[CHOREO_ID_SIZE];
    choreo_saga_new(saga1);
    choreo_saga_new(saga2);
    support_emit(w.ord, "OrderCreated", saga1, 9, id1);
    support_emit(w.ord, "OrderCreated", saga2, 10, id2);
    struct count_arg done = { w.dir, "ord", "SELECT COUNT(*) FROM done", 2 };
    cr_assert(support_wait(count_reaches, &done, 15000));

    support_republish(w.server.url, w.dir, "ord", id2, id1, "reused-id");
    struct stat_arg parked = { w.inv, 1 };
    cr_assert(support_wait(parked_reaches, &parked, 15000),
              "the event under a reused id was not parked (duplicates %llu)",
              (unsigned long long)support_stats(w.inv).duplicates);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_dead WHERE event_id = '%s'"
             " AND reason LIKE 'event id reused:%%' AND status = 'parked'", id1);
    cr_assert_eq(support_count(w.dir, "inv", sql), 1);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 2);

    /* A third event under the same id is not the one parked: a row of its
     * own, not taken for a repeat of the parked one. */
    char saga3[CHOREO_ID_SIZE], id3[CHOREO_ID_SIZE];
    choreo_saga_new(saga3);
    support_emit(w.ord, "OrderCreated", saga3, 11, id3);
    done.want = 3;
    cr_assert(support_wait(count_reaches, &done, 15000));
    support_republish(w.server.url, w.dir, "ord", id3, id1, "reused-id-again");
    parked.want = 2;
    cr_assert(support_wait(parked_reaches, &parked, 15000),
              "a second event under the reused id was not parked (parked %llu)",
              (unsigned long long)support_stats(w.inv).parked);
    cr_assert_eq(support_count(w.dir, "inv", sql), 2);

    support_republish(w.server.url, w.dir, "ord", id1, NULL, "a-true-repeat");
    struct stat_arg d = { w.inv, 1 };
    cr_assert(support_wait(duplicates_reach, &d, 15000), "the repeat never arrived");
    choreo_stats s = support_stats(w.inv);
    cr_assert_eq(s.parked, 2, "a true repeat was parked");
    cr_assert_eq(s.handled, 3);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 3);
    world_down(&w);
}

Test(pipeline, a_service_killed_after_commit_before_publish_publishes_at_restart, .timeout = 90)
{
    struct world w;
    world_up(&w);
    pid_t child = support_fork();
    if (child == 0) {
        /* A long scan period keeps the relay from racing the crash point. */
        setenv("CHOREO_CRASHPOINTS", "after_commit_before_publish", 1);
        choreo_service *ord = make_ord(&w, "relay_scan_ms=60000");
        if (choreo_service_start(ord) != CHOREO_OK)
            _exit(3);
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        support_emit(ord, "OrderCreated", saga, 1, NULL);
        _exit(4); /* the crash point never fired */
    }
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
    cr_assert_eq(support_count(w.dir, "ord",
                               "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL"), 1,
                 "the committed event must be waiting in the outbox");

    w.inv = make_inv(&w, "log_level=warn");
    w.ord = make_ord(&w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    struct count_arg reserved = { w.dir, "inv", "SELECT COUNT(*) FROM reserved", 1 };
    cr_assert(support_wait(count_reaches, &reserved, 15000), "the pending event was never published");
    struct count_arg marked = { w.dir, "ord",
        "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NOT NULL", 1 };
    cr_assert(support_wait(count_reaches, &marked, 5000));
    world_down(&w);
}

static bool published_reaches(void *p)
{
    struct count_arg *a = p;
    return support_count(a->dir, a->name,
                         "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NOT NULL") >=
           a->want;
}

/* Emits n events of type, each of a new saga with data {"n": i} in its own
 * transaction, apart_ms apart. */
static void emit_apart(choreo_service *svc, const char *type, int n, int apart_ms)
{
    for (int i = 0; i < n; i++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        support_emit(svc, type, saga, i, NULL);
        support_sleep_ms(apart_ms);
    }
}

/* Rows that come a few at a time are marked published together, a moment
 * after their PubAcks; the relay wakes for that by itself, without a commit
 * or its periodic scan (60 s here) to wake it. */
Test(pipeline, rows_published_a_few_at_a_time_are_marked_without_waiting_for_a_scan,
     .timeout = 60)
{
    struct world w;
    world_up(&w);
    w.ord = make_ord(&w, "relay_scan_ms=60000");
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    emit_apart(w.ord, "OrderCreated", 5, 10);
    struct count_arg marked = { w.dir, "ord", NULL, 5 };
    cr_assert(support_wait(published_reaches, &marked, 5000),
              "%lld of 5 rows marked published 5 s after their emits",
              support_count(w.dir, "ord",
                            "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NOT NULL"));
    struct stat_arg counted = { w.ord, 5 };
    cr_assert(support_wait(published_counted, &counted, 5000), "the marks were never counted");
    cr_assert_eq(support_stats(w.ord).published, 5);
    world_down(&w);
}

/* A plain subscriber to subject on w's server, on a connection of its own
 * (*nc), in place when this returns. */
static natsSubscription *watch(struct world *w, natsConnection **nc, const char *subject)
{
    natsSubscription *sub;
    cr_assert_eq(natsConnection_ConnectTo(nc, w->server.url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&sub, *nc, subject), NATS_OK);
    cr_assert_eq(natsConnection_Flush(*nc), NATS_OK);
    return sub;
}

/* Waits until want events are in ord's done table (at most timeout_ms),
 * then counts the pull requests for ord's consumer that a plain subscriber
 * has seen since the last count (and in up to a second more). */
static int pulls_until_done(struct world *w, natsSubscription *sub, long long want,
                            int timeout_ms)
{
    support_wait_count(w->dir, "ord", "SELECT COUNT(*) FROM done", want, timeout_ms);
    int pulls = 0;
    natsMsg *m = NULL;
    for (int64_t end = support_mono_ms() + 1000;
         support_mono_ms() < end && natsSubscription_NextMsg(&m, sub, 200) == NATS_OK;) {
        pulls++;
        natsMsg_Destroy(m);
    }
    return pulls;
}

/* A fetch thread keeps a pull request open at the server, which delivers
 * events as they come, and asks again only as it runs out or expires: a
 * pull request per fetch call (nats.c's Fetch, which the server ends once
 * it has delivered what was there) cost the broker a request and a 408
 * for every event or two of a trickle. And a request that delivered all
 * it asked for is replaced at once: a burst larger than any one request
 * goes through too. */
Test(pipeline, events_that_come_one_by_one_share_a_pull_request, .timeout = 90)
{
    struct world w;
    world_up(&w);
    natsConnection *nc;
    natsSubscription *sub = watch(&w, &nc, "$JS.API.CONSUMER.MSG.NEXT.*.ord_StockReserved");
    w.ord = make_ord(&w, NULL);
    w.inv = make_inv(&w, NULL);
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    /* 100 events about 10 ms apart: the old fetch loop sent a pull request
     * for each. The count includes the requests of the wait at start. */
    emit_apart(w.inv, "StockReserved", 100, 10);
    int pulls = pulls_until_done(&w, sub, 100, 30000);
    long long done = support_count(w.dir, "ord", "SELECT COUNT(*) FROM done");
    cr_assert_eq(done, 100, "%lld of 100 events handled", done);
    cr_expect_leq(pulls, 20, "%d pull requests for 100 events that came one by one", pulls);
    /* 1,000 in one transaction: eight requests' worth. */
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w.inv, &tx), CHOREO_OK);
    for (int i = 0; i < 1000; i++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        support_tx_emit(tx, "StockReserved", saga, 100 + i, NULL);
    }
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    pulls = pulls_until_done(&w, sub, 1100, 60000);
    done = support_count(w.dir, "ord", "SELECT COUNT(*) FROM done");
    cr_assert_eq(done, 1100, "%lld of 1,100 events handled", done);
    cr_expect_leq(pulls, 40, "%d pull requests for a burst of 1,000 events", pulls);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    world_down(&w);
}

/* Waits until ord has n done rows, then a moment more for a phantom, and
 * asserts that each n is done once: an event published from a rolled-back
 * transaction would be a second row for its n. */
static void expect_done_once(struct world *w, long long n, int timeout_ms)
{
    cr_assert(support_wait_count(w->dir, "ord", "SELECT COUNT(*) FROM done", n, timeout_ms),
              "%lld of %lld sagas done", support_count(w->dir, "ord", "SELECT COUNT(*) FROM done"),
              n);
    support_sleep_ms(500);
    cr_assert_eq(support_count(w->dir, "ord", "SELECT COUNT(*) FROM done"), n);
    cr_assert_eq(support_count(w->dir, "ord", "SELECT COUNT(DISTINCT n) FROM done"), n);
}

/* inventory, for the copies test: emits StockReserved, then asks for a
 * retry on the first delivery of every odd n, so that the emit is rolled
 * back with its savepoint and made again on the second. */
static choreo_result on_order_created_retry_odd(choreo_tx *tx, const choreo_event *ev, void *user)
{
    choreo_result r = on_order_created(tx, ev, user);
    if (r == CHOREO_DONE && ev->attempt == 1 && support_data_n(ev) % 2)
        return CHOREO_RETRY;
    return r;
}

/* The relay publishes the rows a commit wrote from the copies handed to it
 * at the commit, without reading them back from the table: and never the
 * copy of a row that did not commit (a rolled-back command transaction, a
 * handler's emit undone with its savepoint). A copy published that should
 * not be would show as a second done row for its n. */
Test(pipeline, committed_rows_go_out_from_their_copies_and_rolled_back_ones_never,
     .timeout = 90)
{
    struct world w;
    world_up(&w);
    int port = support_free_port();
    char metrics[64];
    snprintf(metrics, sizeof metrics, "metrics_addr=127.0.0.1:%d", port);
    choreo_config *cfg = support_config(w.dir, "inv", w.server.url, metrics, "retry_base_ms=20",
                                        NULL);
    w.inv = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(w.inv, "OrderCreated", on_order_created_retry_odd, NULL),
                 CHOREO_OK);
    w.ord = make_ord(&w, NULL);
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    for (int i = 0; i < 40; i++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        support_emit(w.inv, "OrderCreated", saga, i, NULL);
        choreo_tx *tx; /* written, then rolled back: its copy must go nowhere */
        cr_assert_eq(choreo_service_begin(w.inv, &tx), CHOREO_OK);
        support_tx_emit(tx, "StockReserved", saga, 1000 + i, NULL);
        choreo_tx_rollback(tx);
        support_sleep_ms(5);
    }
    expect_done_once(&w, 40, 30000);
    cr_assert_eq(support_count(w.dir, "ord", "SELECT MAX(n) FROM done"), 39);
    char text[1 << 16];
    cr_assert_eq(support_http(port, "GET", "/metrics", text, sizeof text), 200);
    double copies = support_metric(text, "choreo_relay_rows_total{service=\"inv\",source=\"commit\"}");
    double table = support_metric(text, "choreo_relay_rows_total{service=\"inv\",source=\"table\"}");
    double sent = support_metric(text,
                                 "choreo_relay_rows_total{service=\"inv\",source=\"committer\"}");
    cr_assert_eq(copies + table + sent, 80,
                 "%.0f from copies, %.0f read and %.0f sent by committers: 80 rows published",
                 copies, table, sent);
    cr_expect_geq(copies + sent, 40, "only %.0f of 80 rows published from their copies",
                  copies + sent);
    /* Commits 5 ms apart find the relay idle or awaiting PubAcks: most of
     * their rows go out through its window, sent by the committing thread. */
    cr_expect_geq(sent, 20, "only %.0f of 80 rows sent by their committers", sent);
    world_down(&w);
}

/* A service killed right after a committing thread sent its row through
 * the relay's window, before the relay read the PubAck: the row is not
 * marked, so the next process sends it again with the same id, and the
 * repeat is dropped (by JetStream, or the consumer's inbox). The child
 * emits every 2 ms until the crash point fires: its first event goes out
 * by the relay, which then opens the window for the next. */
Test(pipeline, a_service_killed_right_after_a_committer_sent_its_row_sends_it_again,
     .timeout = 90)
{
    struct world w;
    world_up(&w);
    pid_t child = support_fork(); /* before any service's threads start here */
    if (child == 0) {
        setenv("CHOREO_CRASHPOINTS", "after_committer_send", 1);
        choreo_service *ord = make_ord(&w, "log_level=error");
        if (choreo_service_start(ord) != CHOREO_OK)
            _exit(3);
        for (int i = 0; i < 5000; i++) {
            char saga[CHOREO_ID_SIZE];
            choreo_saga_new(saga);
            support_emit(ord, "OrderCreated", saga, i, NULL);
            support_sleep_ms(2);
        }
        _exit(4); /* the crash point never fired */
    }
    w.inv = make_inv(&w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the first order process should have died by its crash point (status %d)", status);
    long long n = support_count(w.dir, "ord", "SELECT COUNT(*) FROM choreo_outbox");
    cr_assert_geq(n, 2, "only %lld events committed before the crash", n);
    cr_assert_geq(support_count(w.dir, "ord",
                                "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL"),
                  1, "the row sent at the crash must be unmarked");
    w.ord = make_ord(&w, "log_level=warn");
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    expect_done_once(&w, n, 30000);
    struct count_arg marked = { w.dir, "ord",
        "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NOT NULL", n };
    cr_assert(support_wait(count_reaches, &marked, 10000), "rows left unmarked");
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM choreo_outbox"), n,
                 "each OrderCreated applied once, so one StockReserved each");
    world_down(&w);
}

/* A row that another connection writes between two of the service's own
 * commits (an operator's tool, say) sits between their seqs: the copies of
 * the later commit do not follow the cursor, so the relay reads the table
 * and publishes the three in seq order. */
Test(pipeline, a_row_written_by_another_connection_goes_out_in_seq_order, .timeout = 90)
{
    struct world w;
    world_up(&w);
    natsConnection *nc;
    natsSubscription *sub = watch(&w, &nc, "choreo.*.*");
    w.inv = make_inv(&w, NULL);
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    for (int i = 0; i < 20; i++) {
        char saga[CHOREO_ID_SIZE], sql[512];
        choreo_saga_new(saga);
        support_emit(w.inv, "First", saga, i, NULL);
        natsMsg *m = NULL;
        cr_assert_eq(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK, "round %d: no First", i);
        snprintf(sql, sizeof sql, "choreo.First.%s", saga);
        cr_assert_str_eq(natsMsg_GetSubject(m), sql, "round %d", i);
        natsMsg_Destroy(m);
        snprintf(sql, sizeof sql,
                 "INSERT INTO choreo_outbox(event_id, subject, headers, body, created_at,"
                 " publish_at) VALUES ('RAW%023d', 'choreo.Between.%s', 'Nats-Msg-Id: RAW%023d\n',"
                 " x'80', 0, 0)",
                 i, saga, i);
        support_exec(w.dir, "inv", sql);
        support_emit(w.inv, "Last", saga, i, NULL);
        const char *want[] = { "Between", "Last" };
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK, "round %d: no %s", i,
                         want[k]);
            char subject[128];
            snprintf(subject, sizeof subject, "choreo.%s.%s", want[k], saga);
            cr_assert_str_eq(natsMsg_GetSubject(m), subject, "round %d: %s came out of order", i,
                             natsMsg_GetSubject(m));
            natsMsg_Destroy(m);
        }
    }
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    world_down(&w);
}

/* A batch whose commit fails leaves nothing behind for the next one: the
 * copies of its rows are dropped with it, so the relay never publishes a
 * row that did not commit (a phantom, seen as a second done row) nor takes
 * a dropped copy for the row that later got its seq (a loss). inventory's
 * commits fail one time in three (injected, one commit at a time). */
Test(pipeline, a_failed_commit_hands_the_relay_none_of_its_rows, .timeout = 120)
{
    struct world w;
    world_up(&w);
    w.ord = make_ord(&w, NULL);
    setenv("CHOREO_FAULTS", "disk_full=0.3,disk_full_ms=0", 1);
    w.inv = make_inv(&w, "retry_base_ms=20");
    unsetenv("CHOREO_FAULTS");
    cr_assert_eq(choreo_service_start(w.inv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w.ord), CHOREO_OK, "%s", choreo_last_error());
    emit_apart(w.ord, "OrderCreated", 60, 3);
    expect_done_once(&w, 60, 60000);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT COUNT(*) FROM reserved"), 60);
    world_down(&w);
}
