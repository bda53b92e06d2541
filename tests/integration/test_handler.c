/* Handler results against a real nats-server: RETRY rolls back and is
 * redelivered, REJECT rolls back and parks, malformed messages are parked
 * without stopping the consumer. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <nats/nats.h>

#include "support.h"

static atomic_int calls;

/* Writes a row and emits, then asks for a retry on the first two attempts. */
static choreo_result flaky(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&calls, 1);
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO applied(n) VALUES (1)", NULL, NULL, NULL);
    if (choreo_tx_emit(tx, "Applied", 1, NULL, NULL, 0, NULL) != CHOREO_OK)
        return CHOREO_REJECT;
    return ev->attempt <= 2 ? CHOREO_RETRY : CHOREO_DONE;
}

/* Writes a row and emits, then rejects: none of it may survive. */
static choreo_result rejecting(choreo_tx *tx, const choreo_event *ev, void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO applied(n) VALUES (2)", NULL, NULL, NULL);
    if (choreo_tx_emit(tx, "Applied", 1, NULL, NULL, 0, NULL) != CHOREO_OK)
        return CHOREO_RETRY;
    return CHOREO_REJECT;
}

static choreo_result counting(choreo_tx *tx, const choreo_event *ev, void *user)
{
    sqlite3_exec(choreo_tx_db(tx), "INSERT INTO applied(n) VALUES (3)", NULL, NULL, NULL);
    return CHOREO_DONE;
}

/* Runs a statement on a table that does not exist, then rejects without
 * giving a reason. */
static choreo_result missing_table(choreo_tx *tx, const choreo_event *ev, void *user)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(choreo_tx_db(tx), "UPDATE nosuch SET n = 1", -1, &st, NULL) !=
        SQLITE_OK)
        return CHOREO_REJECT;
    sqlite3_finalize(st);
    return CHOREO_DONE;
}

struct stat_arg {
    choreo_service *svc;
    int which; /* 0 handled, 1 parked */
    uint64_t want;
};

static bool stat_reaches(void *p)
{
    struct stat_arg *a = p;
    choreo_stats s;
    choreo_service_stats(a->svc, &s);
    return (a->which == 0 ? s.handled : s.parked) >= a->want;
}

static choreo_service *start_worker(const char *dir, const char *url, const char *type,
                                    choreo_handler_fn fn)
{
    support_exec(dir, "worker", "CREATE TABLE IF NOT EXISTS applied(n INTEGER)");
    choreo_config *cfg = support_config(dir, "worker", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, type, fn, NULL), CHOREO_OK);
    if (strcmp(type, "Good") != 0)
        cr_assert_eq(choreo_service_on(svc, "Good", counting, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

Test(handler, retry_twice_then_done_is_applied_exactly_once, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url, "Flaky", flaky);
    support_emit(svc, "Flaky", "s1", 1, NULL);
    struct stat_arg a = { svc, 0, 1 };
    cr_assert(support_wait(stat_reaches, &a, 15000), "never handled");
    cr_assert_eq(atomic_load(&calls), 3);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied"), 1);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_outbox WHERE subject LIKE 'choreo.Applied.%'"), 1);
    choreo_stats s;
    choreo_service_stats(svc, &s);
    cr_assert_eq(s.retried, 2);
    cr_assert_eq(s.handled, 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(handler, reject_rolls_back_everything_and_parks_the_message, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url, "Doomed", rejecting);
    char id[CHOREO_ID_SIZE];
    support_emit(svc, "Doomed", "s2", 1, id);
    support_emit(svc, "Good", "s3", 1, NULL);
    struct stat_arg parked = { svc, 1, 1 };
    cr_assert(support_wait(stat_reaches, &parked, 15000), "never parked");
    struct stat_arg good = { svc, 0, 1 };
    cr_assert(support_wait(stat_reaches, &good, 15000), "the consumer stopped after a rejection");
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied WHERE n = 2"), 0);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_outbox WHERE subject LIKE 'choreo.Applied.%'"), 0);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_inbox WHERE consumer = 'worker_Doomed'"), 0);
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_dead WHERE event_id = '%s' AND reason LIKE '%%REJECT%%'", id);
    cr_assert_eq(support_count(dir, "worker", sql), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(handler, malformed_messages_are_parked_with_a_reason_and_the_queue_moves_on, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url, "Good", counting);
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    const char *garbage[] = { "not msgpack at all", "\x93\x01\x02\x03", "" };
    for (int i = 0; i < 3; i++) {
        jsPubAck *pa = NULL;
        cr_assert_eq(js_Publish(&pa, js, "choreo.Good.s9", garbage[i], (int)strlen(garbage[i]),
                                NULL, NULL), NATS_OK);
        jsPubAck_Destroy(pa);
    }
    /* An empty event with the headers of a pull request's status: an
     * event all the same (it has an ack subject), parked like the rest, not
     * dropped as if the server had said its request expired. */
    natsMsg *status_like = NULL;
    cr_assert_eq(natsMsg_Create(&status_like, "choreo.Good.s9", NULL, NULL, 0), NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(status_like, "Status", "408"), NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(status_like, "Description", "Request Timeout"), NATS_OK);
    jsPubAck *pa = NULL;
    cr_assert_eq(js_PublishMsg(&pa, js, status_like, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(status_like);
    char good_id[CHOREO_ID_SIZE];
    support_emit(svc, "Good", "s4", 1, good_id);
    struct stat_arg parked = { svc, 1, 4 };
    cr_assert(support_wait(stat_reaches, &parked, 15000), "malformed messages were not parked");
    struct stat_arg good = { svc, 0, 1 };
    cr_assert(support_wait(stat_reaches, &good, 15000), "the good event was held up");
    /* A valid envelope of saga s4 on the subject of saga s10: choreoctl saga
     * would show it under s10, the handler and the barrier under s4. */
    char path[300];
    snprintf(path, sizeof path, "%s/worker.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT body FROM choreo_outbox WHERE event_id = ?1", -1,
                                    &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, good_id, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    natsMsg *moved = NULL;
    cr_assert_eq(natsMsg_Create(&moved, "choreo.Good.s10", NULL, sqlite3_column_blob(st, 0),
                                sqlite3_column_bytes(st, 0)), NATS_OK);
    sqlite3_finalize(st);
    sqlite3_close(db);
    support_js_publish(server.url, moved);
    parked.want = 5;
    cr_assert(support_wait(stat_reaches, &parked, 15000), "an event of another saga was applied");
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE reason = 'envelope saga s4 "
                               "does not match the subject''s saga s10'"), 1);
    struct stat_arg once = { svc, 0, 2 };
    cr_assert_not(support_wait(stat_reaches, &once, 500), "the moved event was applied");
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE reason LIKE '%msgpack map%'"), 2);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE reason LIKE '%empty%'"), 2);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* A handler that gives no reason after a failed statement: the parked
 * message says what the database said; one whose statements all worked
 * says only what the handler returned. */
Test(handler, a_reasonless_failure_after_a_failed_statement_names_the_error, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "worker", "CREATE TABLE applied(n INTEGER)");
    choreo_config *cfg = support_config(dir, "worker", server.url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Missing", missing_table, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Doomed", rejecting, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Missing", "s1", 1, NULL);
    support_emit(svc, "Doomed", "s2", 1, NULL);
    struct stat_arg parked = { svc, 1, 2 };
    cr_assert(support_wait(stat_reaches, &parked, 15000), "never parked");
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE reason = 'handler returned "
                               "REJECT: no reason given; the database''s last error: no such "
                               "table: nosuch'"), 1);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE reason = "
                               "'handler returned REJECT'"), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

static void start_worker_round(const char *dir, const char *url, const char *a, const char *b)
{
    choreo_config *cfg = support_config(dir, "worker", url, a, b, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Good", counting, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(svc);
}

/* The server's MaxDeliver stays unlimited whatever max_deliver says: choreo
 * parks on the max_deliver-th delivery itself, so that a crash or a failed
 * commit on that delivery cannot leave the event neither applied nor parked.
 * A consumer left with a server limit (by an older choreo, or by hand) is
 * brought back to unlimited at start. */
Test(handler, changed_consumer_settings_are_applied_at_restart, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    start_worker_round(dir, server.url, "max_deliver=5", "ack_wait_ms=3000");
    start_worker_round(dir, server.url, "max_deliver=7", "ack_wait_ms=4000");
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsConsumerInfo *ci = NULL;
    cr_assert_eq(js_GetConsumerInfo(&ci, js, "CHOREO", "worker_Good", NULL, NULL), NATS_OK);
    cr_assert_eq(ci->Config->MaxDeliver, -1);
    cr_assert_eq(ci->Config->AckWait, 4000 * 1000000LL);
    jsConsumerConfig cc = *ci->Config;
    cc.MaxDeliver = 7;
    jsConsumerInfo *updated = NULL;
    cr_assert_eq(js_UpdateConsumer(&updated, js, "CHOREO", &cc, NULL, NULL), NATS_OK);
    jsConsumerInfo_Destroy(updated);
    jsConsumerInfo_Destroy(ci);

    start_worker_round(dir, server.url, "max_deliver=7", "ack_wait_ms=4000");
    cr_assert_eq(js_GetConsumerInfo(&ci, js, "CHOREO", "worker_Good", NULL, NULL), NATS_OK);
    cr_assert_eq(ci->Config->MaxDeliver, -1, "a server limit was left in place");
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsd_stop(&server, SIGTERM);
}

/* choreo_tx_prepare: what the handler below saw, per event. */
#define PREPARED_EVENTS 20
static sqlite3_stmt *prepared_insert[PREPARED_EVENTS + 1];
static atomic_int prepared_bad; /* a check inside the handler failed */

/* Inserts n through a kept statement, leaves a SELECT unfinished (which
 * must not hold the commit), checks that a statement asked for again comes
 * back reset without its bindings, and asks for a retry on each event's
 * first attempt after its insert, which must be rolled back. */
static choreo_result prepared(choreo_tx *tx, const choreo_event *ev, void *user)
{
    int64_t n = support_data_n(ev);
    sqlite3_stmt *ins, *sel, *again, *param;
    if (n < 1 || n > PREPARED_EVENTS ||
        choreo_tx_prepare(tx, "INSERT INTO applied(n) VALUES (?1)", &ins) != CHOREO_OK ||
        choreo_tx_prepare(tx, "SELECT n FROM applied ORDER BY n", &sel) != CHOREO_OK ||
        choreo_tx_prepare(tx, "SELECT ?1", &param) != CHOREO_OK) {
        atomic_fetch_add(&prepared_bad, 1);
        return CHOREO_REJECT;
    }
    /* Bound earlier (7 below, in a former event): cleared on the way out. */
    if (sqlite3_step(param) != SQLITE_ROW || sqlite3_column_type(param, 0) != SQLITE_NULL)
        atomic_fetch_add(&prepared_bad, 1);
    sqlite3_reset(param);
    sqlite3_bind_int(param, 1, 7);
    sqlite3_bind_int64(ins, 1, n);
    if (sqlite3_step(ins) != SQLITE_DONE)
        atomic_fetch_add(&prepared_bad, 1);
    if (choreo_tx_prepare(tx, "INSERT INTO applied(n) VALUES (?1)", &again) != CHOREO_OK ||
        again != ins)
        atomic_fetch_add(&prepared_bad, 1);
    int rc = sqlite3_step(sel); /* one row read, the rest left */
    if (rc != SQLITE_ROW)
        atomic_fetch_add(&prepared_bad, 1);
    prepared_insert[n] = ins;
    return ev->attempt == 1 ? CHOREO_RETRY : CHOREO_DONE;
}

Test(handler, prepared_statements_are_kept_reset_and_rolled_back_with_the_event, .timeout = 90)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url, "Prepared", prepared);
    for (int n = 1; n <= PREPARED_EVENTS; n++)
        support_emit(svc, "Prepared", "s1", n, NULL);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM applied",
                                 PREPARED_EVENTS, 30000),
              "applied %lld of %d", support_count(dir, "worker", "SELECT COUNT(*) FROM applied"),
              PREPARED_EVENTS);
    struct stat_arg a = { svc, 0, PREPARED_EVENTS };
    cr_assert(support_wait(stat_reaches, &a, 15000), "not all handled");
    cr_assert_eq(atomic_load(&prepared_bad), 0);
    /* Each event once (its first attempt's insert rolled back), none parked. */
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(DISTINCT n) FROM applied"),
                 PREPARED_EVENTS);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"), 0);
    for (int n = 2; n <= PREPARED_EVENTS; n++)
        cr_assert_eq(prepared_insert[n], prepared_insert[1], "event %d got another statement", n);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(handler, prepare_refuses_bad_sql_and_keeps_more_texts_than_it_caches, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url, "Good", counting);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    sqlite3_stmt *s = (sqlite3_stmt *)&s;
    cr_assert_eq(choreo_tx_prepare(tx, "SELEKT 1", &s), CHOREO_EINVAL);
    cr_assert_null(s);
    cr_assert(strstr(choreo_last_error(), "syntax error") && strstr(choreo_last_error(), "SELEKT"),
              "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_prepare(tx, "SELECT 1; SELECT 2", &s), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "exactly one"), "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_prepare(tx, "  ", &s), CHOREO_EINVAL);
    cr_assert_eq(choreo_tx_prepare(tx, NULL, &s), CHOREO_EINVAL);
    cr_assert_eq(choreo_tx_prepare(tx, "SELECT 1;", NULL), CHOREO_EINVAL);
    /* More texts in one transaction than are kept: every one stays usable. */
    enum { MANY = 80 };
    sqlite3_stmt *got[MANY];
    for (int i = 0; i < MANY; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        cr_assert_eq(choreo_tx_prepare(tx, sql, &got[i]), CHOREO_OK, "%s", choreo_last_error());
    }
    for (int i = 0; i < MANY; i++) {
        cr_assert_eq(sqlite3_step(got[i]), SQLITE_ROW);
        cr_assert_eq(sqlite3_column_int(got[i], 0), i);
    }
    cr_assert_eq(choreo_tx_prepare(tx, "INSERT INTO applied(n) VALUES (42)", &s), CHOREO_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    /* The next transaction: new texts take the places of unused ones, the
     * kept ones still answer. */
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    for (int i = 0; i < 2 * MANY; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d + 1000", i % 3 == 0 ? i / 3 : MANY + i);
        cr_assert_eq(choreo_tx_prepare(tx, sql, &s), CHOREO_OK, "%s", choreo_last_error());
        cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
        cr_assert_eq(sqlite3_column_int(s, 0), (i % 3 == 0 ? i / 3 : MANY + i) + 1000);
    }
    choreo_tx_rollback(tx);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied WHERE n = 42"), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* Returns a value that is not a choreo_result after writing a row and
 * emitting: event n = 1 on every delivery, n = 2 only on its first, as a
 * handler fixed and deployed again would. */
static atomic_int bogus_calls;

static choreo_result bogus(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&bogus_calls, 1);
    int64_t n = support_data_n(ev);
    sqlite3_exec(choreo_tx_db(tx), n == 1 ? "INSERT INTO applied(n) VALUES (1)"
                                          : "INSERT INTO applied(n) VALUES (2)",
                 NULL, NULL, NULL);
    if (choreo_tx_emit(tx, "Applied", 1, NULL, NULL, 0, NULL) != CHOREO_OK)
        return CHOREO_REJECT;
    return n == 1 || ev->attempt == 1 ? (choreo_result)42 : CHOREO_DONE;
}

/* A value other than DONE, RETRY or REJECT is a bug in the handler: said at
 * error level with the value, undone and retried as a RETRY is (a fixed
 * handler then applies the event once), and parked after max_deliver with
 * a reason that names the value. */
Test(handler, an_unknown_result_is_logged_as_an_error_retried_and_parked_naming_it, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "worker", "CREATE TABLE applied(n INTEGER)");
    choreo_config *cfg = support_config(dir, "worker", server.url, "max_deliver=3",
                                        "retry_base_ms=50", "retry_cap_ms=50", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Bogus", bogus, NULL), CHOREO_OK);
    char log[600], text[65536];
    snprintf(log, sizeof log, "%s/worker.log", dir);
    int saved = support_stderr_to(log);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    char stuck[CHOREO_ID_SIZE], fixed[CHOREO_ID_SIZE];
    support_emit(svc, "Bogus", "s1", 1, stuck);
    support_emit(svc, "Bogus", "s2", 2, fixed);
    struct stat_arg parked = { svc, 1, 1 }, handled = { svc, 0, 1 };
    bool was_parked = support_wait(stat_reaches, &parked, 15000);
    bool was_handled = support_wait(stat_reaches, &handled, 15000);
    choreo_stats s = support_stats(svc);
    choreo_service_destroy(svc);
    support_stderr_back(saved);
    support_slurp(log, text, sizeof text);
    cr_assert(was_parked && was_handled, "parked %d, handled %d: %s", was_parked, was_handled,
              text);

    const char *said = "handler returned 42, which is not CHOREO_DONE, CHOREO_RETRY or "
                       "CHOREO_REJECT";
    char line[2048];
    support_line_with(text, said, line, sizeof line);
    cr_assert(strstr(line, "level=error"), "no error line names the value: %s", text);
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_dead WHERE event_id = '%s' AND reason LIKE '%%%s%%'",
             stuck, said);
    cr_assert_eq(support_count(dir, "worker", sql), 1, "the parked reason does not name 42: %s",
                 text);
    /* The stuck one ran on each delivery but the last, and none of its work
     * was kept; the fixed one's work was kept once. */
    cr_assert_eq(atomic_load(&bogus_calls), 2 + 2);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied WHERE n = 1"), 0);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied WHERE n = 2"), 1);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_outbox WHERE subject LIKE "
                               "'choreo.Applied.%'"), 1);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_dead WHERE event_id = '%s'", fixed);
    cr_assert_eq(support_count(dir, "worker", sql), 0);
    cr_assert_eq(s.parked, 1);
    cr_assert_eq(s.handled, 1);
    cr_assert_eq(s.retried, 3);
    natsd_stop(&server, SIGTERM);
}
