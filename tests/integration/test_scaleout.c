/* Several instances of one service on one PostgreSQL database (run under
 * tests/pg/with-postgres, which provides CHOREO_TEST_PG): the instances
 * share the durable consumer and the outbox, every event is applied exactly
 * once across them, one relay publishes at a time, and when the instance
 * whose relay is active is SIGKILLed mid-flow and started again, or frozen
 * with SIGSTOP, another takes over and nothing stays unpublished. */
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "support_pg.h"

#define EVENTS 5000
#define PER_TX 100

/* A new database on the test server; its URL goes to out. */
static void create_db(const char *name, char *out, size_t cap)
{
    const char *admin = getenv("CHOREO_TEST_PG");
    cr_assert_not_null(admin, "CHOREO_TEST_PG is not set: run under tests/pg/with-postgres");
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    support_pg_exec(admin, sql);
    const char *slash = strrchr(admin, '/');
    snprintf(out, cap, "%.*s/%s", (int)(slash - admin), admin, name);
}

/* With SCALEOUT_STALL set to "N:PATH", the first worker to apply event N
 * creates PATH, writes its pid there and sleeps in the handler, its batch's
 * transaction open with the event's inbox mark and its row. */
static void maybe_stall(long long n)
{
    const char *stall = getenv("SCALEOUT_STALL");
    char *path = NULL;
    if (!stall || strtoll(stall, &path, 10) != n || *path != ':')
        return;
    int fd = open(path + 1, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return; /* another instance, or this one before: apply it now */
    char pid[24];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    bool written = write(fd, pid, (size_t)len) == len;
    close(fd);
    if (written)
        support_sleep_ms(5000);
}

/* worker: Work -> a row in applied (event, n, this process) + Done */
static choreo_result on_work(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char n[24], pid[24];
    snprintf(n, sizeof n, "%lld", (long long)support_data_n(ev));
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *params[3] = { ev->id, n, pid };
    PGresult *r = PQexecParams(choreo_tx_pg(tx),
                               "INSERT INTO applied(event_id, n, pid) VALUES ($1, $2, $3)", 3,
                               NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return CHOREO_RETRY;
    maybe_stall(support_data_n(ev));
    return choreo_tx_emit(tx, "Done", 1, NULL, ev->data, ev->data_len, NULL) == CHOREO_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

/* source: Done -> a row in done (SQLite) */
static choreo_result on_done(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO done(n) VALUES (%lld)", (long long)support_data_n(ev));
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

/* One worker instance as a process of its own, logging to dir/<tag>.log.
 * With go_fd >= 0 it waits for a byte on it before it starts: forked while
 * this process has no threads yet (ThreadSanitizer cannot follow a fork of
 * a threaded process), and started later. */
static pid_t spawn_worker_with(const char *dir, const char *nats_url, const char *db,
                               const char *tag, int go_fd, const char *extra1,
                               const char *extra2)
{
    char log[600];
    snprintf(log, sizeof log, "%s/%s.log", dir, tag);
    pid_t pid = support_fork();
    if (pid == 0) {
        char go;
        if (go_fd >= 0 && read(go_fd, &go, 1) != 1)
            _exit(4);
        FILE *f = freopen(log, "a", stderr);
        if (!f)
            _exit(5);
        setvbuf(stderr, NULL, _IOLBF, 0);
        char dbset[512];
        snprintf(dbset, sizeof dbset, "db=%s", db);
        choreo_config *cfg = support_config(dir, "worker", nats_url, dbset, "log_level=info",
                                            extra1, extra2, NULL);
        choreo_service *svc = NULL;
        if (choreo_service_create(&svc, cfg) != CHOREO_OK ||
            choreo_service_on(svc, "Work", on_work, NULL) != CHOREO_OK ||
            choreo_service_start(svc) != CHOREO_OK) {
            fprintf(stderr, "worker failed: %s\n", choreo_last_error());
            _exit(3);
        }
        for (;;)
            pause();
    }
    return pid;
}

static pid_t spawn_worker_on(const char *dir, const char *nats_url, const char *db,
                             const char *tag, int go_fd)
{
    return spawn_worker_with(dir, nats_url, db, tag, go_fd, NULL, NULL);
}

static pid_t spawn_worker(const char *dir, const char *nats_url, const char *db, const char *tag)
{
    return spawn_worker_on(dir, nats_url, db, tag, -1);
}

static bool log_says(const char *dir, const char *tag, const char *what)
{
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", dir, tag);
    FILE *f = fopen(path, "r"); /* not there until the process opened it */
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Instances write a sanitizer's report into their log and die or carry on:
 * either fails the test. */
static void no_sanitizer_report(const char *dir, const char *tag)
{
    static const char *const reports[] = { "ThreadSanitizer", "AddressSanitizer",
                                           "LeakSanitizer", "runtime error" };
    for (int i = 0; i < 4; i++)
        cr_assert_not(log_says(dir, tag, reports[i]), "%s/%s.log has a %s report", dir, tag,
                      reports[i]);
}

struct log_arg {
    const char *dir, *tag, *what;
};

static bool log_cond(void *p)
{
    struct log_arg *a = p;
    return log_says(a->dir, a->tag, a->what);
}

/* Whether instance a or b logged what. */
static bool standby_cond(void *p)
{
    struct log_arg *a = p;
    return log_says(a->dir, "a", a->what) || log_says(a->dir, "b", a->what);
}

struct pg_arg {
    const char *url, *sql;
    long long want;
};

static bool pg_reaches(void *p)
{
    struct pg_arg *a = p;
    return support_pg_count(a->url, a->sql) >= a->want;
}

struct world {
    char dir[256], db[512];
    natsd server;
    choreo_service *src;
};

static void world_up(struct world *w, const char *tag)
{
    char name[64];
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    snprintf(name, sizeof name, "%s_%d", tag, (int)getpid());
    create_db(name, w->db, sizeof w->db);
    support_pg_exec(w->db, "CREATE TABLE applied(event_id TEXT NOT NULL, n BIGINT NOT NULL,"
                   " pid INTEGER NOT NULL)");
    support_exec(w->dir, "source", "CREATE TABLE done(n INTEGER)");
}

static void source_up(struct world *w)
{
    choreo_config *cfg = support_config(w->dir, "source", w->server.url, NULL);
    w->src = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(w->src, "Done", on_done, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(w->src), CHOREO_OK, "%s", choreo_last_error());
}

/* Emits Work events first..first+PER_TX-1 in one command transaction. */
static void emit_work(struct world *w, int first)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w->src, &tx), CHOREO_OK, "%s", choreo_last_error());
    for (int k = first; k < first + PER_TX; k++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        uint8_t data[6] = { 0x81, 0xa1, 'n', 0xcd, (uint8_t)(k >> 8), (uint8_t)k };
        cr_assert_eq(choreo_tx_emit(tx, "Work", 1, saga, data, sizeof data, NULL), CHOREO_OK,
                     "%s", choreo_last_error());
    }
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

/* Every one of n events applied exactly once across the instances, every
 * Done back at the source once, and nothing left unpublished. */
static void expect_exactly_once(struct world *w, int n)
{
    struct pg_arg applied = { w->db, "SELECT COUNT(DISTINCT event_id) FROM applied", n };
    cr_assert(support_wait(pg_reaches, &applied, 120000), "only %lld of %d events applied",
              support_pg_count(w->db, "SELECT COUNT(DISTINCT event_id) FROM applied"), n);
    cr_assert(support_wait_count(w->dir, "source", "SELECT COUNT(DISTINCT n) FROM done", n,
                                 60000),
              "only %lld of %d Done events came back",
              support_count(w->dir, "source", "SELECT COUNT(DISTINCT n) FROM done"), n);
    struct pg_arg unpublished = {
        w->db, "SELECT CASE WHEN COUNT(*) = 0 THEN 1 ELSE 0 END FROM choreo_outbox"
               " WHERE published_at IS NULL", 1
    };
    cr_assert(support_wait(pg_reaches, &unpublished, 15000), "%lld outbox rows unpublished",
              support_pg_count(w->db, "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL"));
    support_sleep_ms(3000); /* any late redelivery would land by now */
    cr_assert_eq(support_pg_count(w->db, "SELECT COUNT(*) FROM applied"), n,
                 "events applied more than once across the instances");
    cr_assert_eq(support_pg_count(w->db, "SELECT COUNT(DISTINCT n) FROM applied"), n);
    cr_assert_eq(support_count(w->dir, "source", "SELECT COUNT(*) FROM done"), n);
}

/* All n events applied and their Done events back at the source while
 * what (a condition, for the message) holds. */
static void all_through_while(struct world *w, int n, const char *what)
{
    struct pg_arg applied = { w->db, "SELECT COUNT(DISTINCT event_id) FROM applied", n };
    cr_assert(support_wait(pg_reaches, &applied, 90000),
              "with %s, only %lld of %d events were applied", what,
              support_pg_count(w->db, "SELECT COUNT(DISTINCT event_id) FROM applied"), n);
    cr_assert(support_wait_count(w->dir, "source", "SELECT COUNT(DISTINCT n) FROM done", n,
                                 60000),
              "with %s, only %lld of %d Done events came back", what,
              support_count(w->dir, "source", "SELECT COUNT(DISTINCT n) FROM done"), n);
}

/* Instances a and b are still running, their logs hold no sanitizer
 * report; then they, the source and the server are stopped. */
static void both_ran_clean_then_down(struct world *w, pid_t a, pid_t b)
{
    cr_assert_eq(waitpid(a, NULL, WNOHANG), 0, "instance a exited");
    cr_assert_eq(waitpid(b, NULL, WNOHANG), 0, "instance b exited");
    no_sanitizer_report(w->dir, "a");
    no_sanitizer_report(w->dir, "b");
    kill(a, SIGKILL);
    kill(b, SIGKILL);
    waitpid(a, NULL, 0);
    waitpid(b, NULL, 0);
    choreo_service_destroy(w->src);
    natsd_stop(&w->server, SIGTERM);
}

Test(scaleout, two_instances_apply_5000_events_once_through_a_kill_and_the_relay_fails_over,
     .timeout = 240)
{
    struct world w;
    world_up(&w, "kill");
    const char *dir = w.dir, *db = w.db;
    pid_t a = spawn_worker(dir, w.server.url, db, "a");
    struct log_arg a_active = { dir, "a", "relay active" };
    cr_assert(support_wait(log_cond, &a_active, 15000), "instance a never became the relay");
    pid_t b = spawn_worker(dir, w.server.url, db, "b");
    struct log_arg b_standby = { dir, "b", "relay standing by" };
    cr_assert(support_wait(log_cond, &b_standby, 15000),
              "instance b did not stand by while a held the relay lock");
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t again = spawn_worker_on(dir, w.server.url, db, "a2", go[0]); /* a, restarted */
    bool restarted = false;
    source_up(&w);

    for (int i = 0; i < EVENTS; i += PER_TX) {
        emit_work(&w, i);
        /* Mid-flow, the instance whose relay is active dies, and comes back. */
        if (!restarted && (support_pg_count(db, "SELECT COUNT(*) FROM applied") >= EVENTS / 4 ||
                           i + PER_TX >= EVENTS)) {
            cr_assert_eq(kill(a, SIGKILL), 0);
            waitpid(a, NULL, 0);
            support_sleep_ms(500);
            cr_assert_eq(write(go[1], "g", 1), 1);
            restarted = true;
        }
        support_sleep_ms(30);
    }
    close(go[0]);
    close(go[1]);
    struct log_arg b_active = { dir, "b", "relay active" };
    cr_assert(support_wait(log_cond, &b_active, 15000),
              "no instance took the relay over from the killed one");
    expect_exactly_once(&w, EVENTS);
    long long pids = support_pg_count(db, "SELECT COUNT(DISTINCT pid) FROM applied");
    cr_assert_geq(pids, 2, "one instance did all the work (%lld)", pids);
    char sql[3][96];
    pid_t who[3] = { a, b, again };
    for (int i = 0; i < 3; i++)
        snprintf(sql[i], sizeof sql[i], "SELECT COUNT(*) FROM applied WHERE pid = %d", (int)who[i]);
    cr_log_info("applied by a %lld, b %lld, a after its restart %lld", support_pg_count(db, sql[0]),
                support_pg_count(db, sql[1]), support_pg_count(db, sql[2]));
    cr_assert_eq(waitpid(again, NULL, WNOHANG), 0, "the restarted instance exited");
    cr_assert_eq(waitpid(b, NULL, WNOHANG), 0, "instance b exited");
    cr_assert_not(log_says(dir, "a2", "start failed"));
    no_sanitizer_report(dir, "a");
    no_sanitizer_report(dir, "b");
    no_sanitizer_report(dir, "a2");
    kill(b, SIGKILL);
    kill(again, SIGKILL);
    waitpid(b, NULL, 0);
    waitpid(again, NULL, 0);
    choreo_service_destroy(w.src);
    natsd_stop(&w.server, SIGTERM);
}

/* The database drops every connection of the instances three times while
 * events flow (as a server restart or failover does to its clients):
 * batches open at that moment fail to commit and come back, the relay
 * takes its lock again, and nothing is lost or applied twice. */
Test(scaleout, connections_the_database_drops_mid_flow_lose_and_double_nothing, .timeout = 240)
{
    struct world w;
    world_up(&w, "drop");
    pid_t a = spawn_worker(w.dir, w.server.url, w.db, "a");
    pid_t b = spawn_worker(w.dir, w.server.url, w.db, "b");
    struct log_arg up = { w.dir, NULL, "relay standing by" };
    cr_assert(support_wait(standby_cond, &up, 15000), "neither instance stands by");
    source_up(&w);
    int drops = 0;
    for (int i = 0; i < 3000; i += PER_TX) {
        emit_work(&w, i);
        if (i % 900 == 400) {
            /* The instances connect again when they next need the database:
             * on a loaded machine the last drop's may not be back yet. */
            struct pg_arg back = { w.db, "SELECT COUNT(*) FROM pg_stat_activity WHERE"
                                         " application_name = 'choreo'"
                                         " AND datname = current_database()", 1 };
            cr_assert(support_wait(pg_reaches, &back, 15000),
                      "the instances did not connect again within 15 s of drop %d", drops);
            long long n = support_pg_count(w.db, "SELECT COUNT(pg_terminate_backend(pid)) FROM"
                                         " pg_stat_activity WHERE application_name = 'choreo'"
                                         " AND datname = current_database()"
                                         " AND pid <> pg_backend_pid()");
            cr_assert_gt(n, 0, "no connection to drop: %lld of %lld", n,
                         support_pg_count(w.db, "SELECT COUNT(*) FROM pg_stat_activity"));
            drops++;
        }
        support_sleep_ms(30);
    }
    cr_assert_eq(drops, 3);
    expect_exactly_once(&w, 3000);
    both_ran_clean_then_down(&w, a, b);
}

/* The instance whose relay is active is frozen (SIGSTOP, as a paused host)
 * mid-flow, with a batch open more often than not. Its session keeps the
 * relay lock while its machine answers, so the server ends that session
 * once it has been silent for relay_lease_ms, and the transaction it left
 * open after twice ack_wait_ms: the other instance takes the relay over,
 * applies what the frozen one held and publishes the outbox rows either
 * committed, all while the first is still frozen. Continued, the first
 * finds its session gone, stands by, and nothing was applied twice. */
Test(scaleout, a_frozen_active_instance_loses_the_relay_and_its_rows_to_the_other, .timeout = 240)
{
    enum { N = 2000 };
    struct world w;
    world_up(&w, "freeze");
    const char *dir = w.dir, *db = w.db;
    const char *lease = "relay_lease_ms=2000", *ack = "ack_wait_ms=3000";
    pid_t a = spawn_worker_with(dir, w.server.url, db, "a", -1, lease, ack);
    struct log_arg a_active = { dir, "a", "relay active" };
    cr_assert(support_wait(log_cond, &a_active, 15000), "instance a never became the relay");
    pid_t b = spawn_worker_with(dir, w.server.url, db, "b", -1, lease, ack);
    struct log_arg b_standby = { dir, "b", "relay standing by" };
    cr_assert(support_wait(log_cond, &b_standby, 15000),
              "instance b did not stand by while a held the relay lock");
    source_up(&w);
    bool frozen = false;
    for (int i = 0; i < N; i += PER_TX) {
        emit_work(&w, i);
        if (!frozen && (support_pg_count(db, "SELECT COUNT(*) FROM applied") >= N / 5 ||
                        i + PER_TX >= N)) {
            cr_assert_eq(kill(a, SIGSTOP), 0);
            frozen = true;
        }
        support_sleep_ms(30);
    }
    struct log_arg b_active = { dir, "b", "relay active" };
    cr_assert(support_wait(log_cond, &b_active, 15000),
              "instance b did not take the relay over from the frozen instance");
    /* Everything, while a is still frozen: the Done events of rows either
     * instance committed reach the source only through b's relay now. */
    all_through_while(&w, N, "a frozen");
    cr_assert_eq(kill(a, SIGCONT), 0);
    struct log_arg a_lost = { dir, "a", "relay lost its database connection" };
    cr_assert(support_wait(log_cond, &a_lost, 15000),
              "instance a, continued, did not find its relay session ended");
    expect_exactly_once(&w, N);
    char sql[2][96];
    pid_t who[2] = { a, b };
    for (int i = 0; i < 2; i++)
        snprintf(sql[i], sizeof sql[i], "SELECT COUNT(*) FROM applied WHERE pid = %d", (int)who[i]);
    cr_log_info("applied by a %lld, b %lld", support_pg_count(db, sql[0]),
                support_pg_count(db, sql[1]));
    both_ran_clean_then_down(&w, a, b);
}

/* An instance is frozen in the middle of a batch: its handler of one event
 * waits with the transaction open, which holds that event's inbox mark and
 * the marks of the batch's events before it. The other instance gets those
 * events again after ack_wait_ms, and its marks would wait for the frozen
 * transaction for as long as the freeze lasts (its events retried until
 * parked); the server ends that transaction after twice ack_wait_ms, and
 * every event is applied while the first is still frozen, once. */
Test(scaleout, a_batch_a_frozen_instance_left_open_is_ended_and_applied_by_the_other,
     .timeout = 240)
{
    enum { N = 1000 };
    struct world w;
    world_up(&w, "stall");
    const char *dir = w.dir, *db = w.db;
    char stall[600], pidfile[400];
    snprintf(pidfile, sizeof pidfile, "%s/stalled.pid", dir);
    snprintf(stall, sizeof stall, "%d:%s", N / 2, pidfile);
    cr_assert_eq(setenv("SCALEOUT_STALL", stall, 1), 0);
    const char *lease = "relay_lease_ms=2000", *ack = "ack_wait_ms=3000";
    pid_t a = spawn_worker_with(dir, w.server.url, db, "a", -1, lease, ack);
    pid_t b = spawn_worker_with(dir, w.server.url, db, "b", -1, lease, ack);
    unsetenv("SCALEOUT_STALL");
    struct log_arg up = { dir, NULL, "relay standing by" };
    cr_assert(support_wait(standby_cond, &up, 15000), "neither instance stands by");
    source_up(&w);
    for (int i = 0; i < N; i += PER_TX) {
        emit_work(&w, i);
        support_sleep_ms(30);
    }
    pid_t stalled = 0;
    for (int64_t t = 0; stalled == 0 && t < 60000; t += 50) {
        FILE *f = fopen(pidfile, "r");
        int pid = 0;
        if (f && fscanf(f, "%d", &pid) == 1)
            stalled = pid;
        if (f)
            fclose(f);
        if (stalled == 0)
            support_sleep_ms(50);
    }
    cr_assert(stalled == a || stalled == b, "no instance began event %d (pid %d)", N / 2,
              (int)stalled);
    cr_assert_eq(kill(stalled, SIGSTOP), 0);
    all_through_while(&w, N, "an instance frozen mid-batch");
    cr_assert_eq(kill(stalled, SIGCONT), 0);
    expect_exactly_once(&w, N);
    both_ran_clean_then_down(&w, a, b);
}
