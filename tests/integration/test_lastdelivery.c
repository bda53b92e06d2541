/* The last delivery against a real nats-server: whatever happens around the
 * delivery on which choreo parks a message (a batch handed back because the
 * database stays locked, a SIGKILL, a graceful stop), the event ends parked,
 * never neither applied nor parked. A delivery count the server sends lower
 * than before gives the handler no extra run. And batches of slow handlers
 * that together outlast ack_wait_ms are not redelivered while they run. An
 * operator's retry parked again keeps an entry in the parked list. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <sqlite3.h>

#include "support.h"

/* Holds the database's write lock from the test, as another process or a
 * stuck transaction would. */
static sqlite3 *lock_db(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(db));
    return db;
}

static void unlock_db(sqlite3 *db)
{
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
}

static long long parked(const char *dir)
{
    return support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead");
}

/* ---- the batch holding the last delivery is handed back ---- */

static atomic_int runs;

static choreo_result always_retry(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&runs, 1);
    return CHOREO_RETRY;
}

static bool ran_twice(void *p)
{
    return atomic_load(&runs) >= 2;
}

Test(lastdelivery, a_last_delivery_handed_back_by_a_locked_database_is_parked_later,
     .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_config *cfg = support_config(dir, "worker", server.url, "max_deliver=3",
                                        "retry_base_ms=1500", "retry_cap_ms=1500",
                                        "busy_timeout_ms=100", "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Job", always_retry, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Job", "s1", 1, NULL);
    cr_assert(support_wait(ran_twice, NULL, 20000), "the handler did not run twice");
    /* The third delivery (max_deliver) comes while the database is locked:
     * its batch cannot begin and is handed back to the server. */
    sqlite3 *lock = lock_db(dir, "worker");
    support_sleep_ms(7000);
    cr_assert_eq(parked(dir), 0);
    unlock_db(lock);
    support_wait_count(dir, "worker", "SELECT COUNT(*) > 0 FROM choreo_dead", 1, 20000);
    cr_assert_eq(parked(dir), 1, "the event was neither applied nor parked");
    cr_assert_eq(atomic_load(&runs), 2, "the handler ran on the last delivery");
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- the process dies or stops with the last delivery in hand ---- */

/* The worker in a child process: counts handler runs in a file (outside
 * any transaction, so that a RETRY does not undo the count). */
static char runs_path[600];

static choreo_result retry_and_count(choreo_tx *tx, const choreo_event *ev, void *user)
{
    int fd = open(runs_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd >= 0) {
        (void)!write(fd, "x", 1);
        close(fd);
    }
    return CHOREO_RETRY;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static pid_t spawn_worker(const char *dir, const char *url, bool emit)
{
    pid_t pid = support_fork();
    if (pid != 0)
        return pid;
    /* A 3 s retry delay leaves the test time to lock the database between
     * the second run and the third delivery even on a busy machine. */
    choreo_config *cfg = support_config(dir, "worker", url, "max_deliver=3",
                                        "retry_base_ms=3000", "retry_cap_ms=3000",
                                        "busy_timeout_ms=100", "log_level=error", NULL);
    choreo_service *svc = NULL;
    if (choreo_service_create(&svc, cfg) != CHOREO_OK ||
        choreo_service_on(svc, "Job", retry_and_count, NULL) != CHOREO_OK)
        _exit(3);
    choreo_config_destroy(cfg);
    if (emit)
        support_emit(svc, "Job", "s1", 1, NULL);
    choreo_status s = choreo_service_run(svc);
    choreo_service_destroy(svc);
    _exit(s == CHOREO_OK ? 0 : 4);
}

static void last_delivery_in_hand(int sig)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(runs_path, sizeof runs_path, "%s/runs", dir);
    pid_t pid = spawn_worker(dir, server.url, true);
    int64_t until = support_mono_ms() + 20000;
    while (file_size(runs_path) < 2 && support_mono_ms() < until)
        support_sleep_ms(20);
    cr_assert_eq(file_size(runs_path), 2, "the handler did not run twice");
    /* The third delivery arrives (after 2.25 to 3 s) and waits in a batch
     * that cannot begin; then the process is killed or stopped. */
    sqlite3 *lock = lock_db(dir, "worker");
    support_sleep_ms(4000);
    kill(pid, sig);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    if (sig == SIGTERM)
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    unlock_db(lock);
    pid = spawn_worker(dir, server.url, false);
    support_wait_count(dir, "worker", "SELECT COUNT(*) > 0 FROM choreo_dead", 1, 20000);
    cr_assert_eq(parked(dir), 1, "the event was neither applied nor parked");
    cr_assert_eq(file_size(runs_path), 2, "the handler ran on the last delivery");
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    natsd_stop(&server, SIGTERM);
}

Test(lastdelivery, a_sigkill_with_the_last_delivery_fetched_still_ends_parked, .timeout = 90)
{
    last_delivery_in_hand(SIGKILL);
}

Test(lastdelivery, a_graceful_stop_that_hands_back_the_last_delivery_still_ends_parked,
     .timeout = 90)
{
    last_delivery_in_hand(SIGTERM);
}

/* ---- the server's delivery count goes back ---- */

static bool retried_twice(void *p)
{
    return support_stats(p).retried >= 2;
}

/* Leaves a pull request at the consumer whose reader has gone: subscribed
 * while the server takes the request in, unsubscribed afterwards, as a
 * service that stopped or was killed leaves its open requests behind. */
static void leave_a_stale_pull_request(const char *url)
{
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    char inbox[64] = "_INBOX.stale.request";
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, inbox), NATS_OK);
    cr_assert_eq(natsConnection_PublishRequestString(
                     nc, "$JS.API.CONSUMER.MSG.NEXT.CHOREO.worker_Job", inbox,
                     "{\"batch\":1,\"expires\":20000000000}"),
                 NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    support_sleep_ms(300); /* the consumer has looked at its requests */
    cr_assert_eq(natsSubscription_Unsubscribe(sub), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
}

/* nats-server before 2.10.14 (Debian 12 has 2.9.10) sends a message whose
 * redelivery came due while only a gone reader's request was waiting as if
 * it were new, with a delivery count of 1. Here the handler has asked for a
 * retry on deliveries 1 and 2 of max_deliver 3; the next delivery is the last
 * and must park the event without a third run, whatever count it carries.
 * On a server without that defect the count is simply 3. */
Test(lastdelivery, a_delivery_count_the_server_sends_lower_gives_the_handler_no_extra_run,
     .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&runs, 0);
    choreo_config *cfg = support_config(dir, "worker", server.url, "max_deliver=3",
                                        "retry_base_ms=2000", "retry_cap_ms=4000",
                                        "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    cr_assert_eq(choreo_service_on(svc, "Job", always_retry, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Job", "s1", 1, NULL);
    cr_assert(support_wait(retried_twice, svc, 30000), "the handler did not retry twice");
    int64_t second_retry = support_mono_ms();
    /* The second retry's delay is 3 to 4 s: the service stops and a gone
     * reader's request waits at the consumer when it comes due. */
    choreo_service_destroy(svc);
    leave_a_stale_pull_request(server.url);
    support_sleep_ms(second_retry + 5000 - support_mono_ms());
    svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Job", always_retry, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_wait_count(dir, "worker", "SELECT COUNT(*) > 0 FROM choreo_dead", 1, 20000);
    support_sleep_ms(500);
    cr_assert_eq(atomic_load(&runs), 2, "the handler ran %d times with max_deliver 3",
                 atomic_load(&runs));
    cr_assert_eq(parked(dir), 1);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_retries"), 0,
                 "the retried delivery's count outlived the parked event");
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- a parked event that comes again ---- */

/* The copy was taken: dropped, or run. */
static bool copy_taken(void *p)
{
    return support_stats(p).duplicates >= 1 || atomic_load(&runs) >= 2;
}

/* Rejects an event the first time it runs, applies it after. */
static choreo_result reject_once(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return atomic_fetch_add(&runs, 1) == 0 ? CHOREO_REJECT : CHOREO_DONE;
}

/* The stream can carry a parked event again: its Term lost to a crash, a
 * copy resent with a count that went back (as above), a producer's repeat
 * past the duplicate window. Parking rolls back the inbox mark, so before
 * the copy ran the handler as if it were new (with a handler that no longer
 * rejects, the event was applied while it still showed as parked). Only an
 * operator's retry runs a parked event again. */
Test(lastdelivery, a_parked_event_that_comes_again_runs_only_when_an_operator_retries_it,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&runs, 0);
    choreo_config *cfg = support_config(dir, "worker", server.url, "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    cr_assert_eq(choreo_service_on(svc, "Job", reject_once, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    char id[CHOREO_ID_SIZE];
    support_emit(svc, "Job", "s1", 1, id);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead", 1, 10000),
              "the rejected event was not parked");
    support_republish(server.url, dir, "worker", id, NULL, "the-same-event-again");
    cr_assert(support_wait(copy_taken, svc, 10000), "the copy never reached the service");
    cr_assert_eq(atomic_load(&runs), 1, "the handler ran on a copy of a parked event");
    cr_assert_eq(support_stats(svc).duplicates, 1);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_inbox"), 0);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"
                                              " WHERE status = 'parked'"), 1);

    /* The operator retries it: now it runs, and is applied once. */
    choreo_admin *adm = NULL;
    cr_assert_eq(choreo_admin_open(&adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    long long dead_id = support_count(dir, "worker", "SELECT id FROM choreo_dead");
    cr_assert_eq(choreo_admin_dead_retry(adm, dead_id), CHOREO_OK, "%s", choreo_last_error());
    choreo_admin_close(adm);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_inbox", 1, 10000),
              "the operator's retry was not applied");
    cr_assert_eq(atomic_load(&runs), 2);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"
                                              " WHERE status = 'retried'"), 1);
    choreo_config_destroy(cfg);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- an operator's retry parked again before its entry is marked ---- */

static choreo_result always_reject(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&runs, 1);
    return CHOREO_REJECT;
}

/* The first step of choreoctl dead retry, without the second (marking the
 * entry retried): publishes parked entry id again for the worker with the
 * headers such a retry carries (for the consumer that parked it). */
static void publish_retry(const char *url, const char *dir, long long id, const char *msg_id)
{
    char path[600];
    snprintf(path, sizeof path, "%s/worker.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT subject, body, event_id, consumer FROM choreo_dead"
                                        " WHERE id = ?1", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no parked entry %lld", id);
    natsMsg *m;
    char row[24];
    snprintf(row, sizeof row, "%lld", id);
    cr_assert_eq(natsMsg_Create(&m, (const char *)sqlite3_column_text(st, 0), NULL,
                                sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1)), NATS_OK);
    natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    natsMsgHeader_Set(m, "Choreo-Retry-Of", (const char *)sqlite3_column_text(st, 2));
    natsMsgHeader_Set(m, "Choreo-Retry-For", (const char *)sqlite3_column_text(st, 3));
    natsMsgHeader_Set(m, "Choreo-Retry-Row", row);
    support_js_publish(url, m);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static bool ran_three_times(void *p)
{
    (void)p;
    return atomic_load(&runs) >= 3;
}

/* choreoctl dead retry publishes the event, then marks its entry retried.
 * When the consumer parks the retry again in between, the old entry still
 * says parked; before, the new park took that for a repeat of itself and
 * wrote no entry, and the mark then left the event neither applied nor in
 * the parked list. A repeat of the retry message still parks nothing twice. */
Test(lastdelivery, a_retry_parked_again_before_its_entry_is_marked_keeps_an_entry,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&runs, 0);
    choreo_config *cfg = support_config(dir, "worker", server.url, "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Job", always_reject, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Job", "s1", 1, NULL);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead", 1, 10000),
              "the rejected event was not parked");
    long long first = support_count(dir, "worker", "SELECT id FROM choreo_dead");

    publish_retry(server.url, dir, first, "retry-1");
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead", 2, 10000),
              "the retry, parked again, has no entry of its own (handler runs: %d)",
              atomic_load(&runs));
    support_exec(dir, "worker", "UPDATE choreo_dead SET status = 'retried' WHERE id = (SELECT"
                                " MIN(id) FROM choreo_dead)");
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"
                                              " WHERE status = 'parked'"), 1);

    /* The same retry again (its Term lost, say): run, rejected, and
     * recognised as parked already. */
    publish_retry(server.url, dir, first, "retry-1-again");
    cr_assert(support_wait(ran_three_times, svc, 10000), "the repeated retry did not run");
    support_sleep_ms(500); /* its park, had it written one */
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"), 2);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"
                                              " WHERE status = 'parked'"), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- a batch of slow handlers outlasting ack_wait_ms ---- */

static atomic_int slow_runs, redelivered;

static choreo_result slow(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&slow_runs, 1);
    if (ev->attempt > 1)
        atomic_fetch_add(&redelivered, 1);
    support_sleep_ms(300);
    return CHOREO_DONE;
}

static bool twelve_done(void *p)
{
    return support_stats(p).handled >= 12;
}

Test(lastdelivery, slow_batches_longer_than_ack_wait_are_not_redelivered_while_they_run,
     .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_config *cfg = support_config(dir, "worker", server.url, "ack_wait_ms=2000",
                                        "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Slow", slow, NULL), CHOREO_OK);
    /* Twelve events published at once: one fetch, one dispatch batch of
     * 3.6 s of handlers against an AckWait of 2 s. */
    for (int i = 0; i < 12; i++) {
        char saga[16];
        snprintf(saga, sizeof saga, "s%d", i);
        support_emit(svc, "Slow", saga, i, NULL);
    }
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(support_wait(twelve_done, svc, 30000), "not all handled");
    support_sleep_ms(2500); /* a late redelivery would show now */
    choreo_stats st = support_stats(svc);
    cr_assert_eq(atomic_load(&redelivered), 0, "%d deliveries were repeated while the batch ran",
                 atomic_load(&redelivered));
    cr_assert_eq(st.duplicates, 0);
    cr_assert_eq(atomic_load(&slow_runs), 12);
    cr_assert_gt(st.batches, 2, "the batch was not cut by time");
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}
