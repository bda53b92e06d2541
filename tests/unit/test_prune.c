/* Pruning barrier rows: old ones go in batches, recent ones stay, and so do
 * those of a saga whose message is parked or was retried lately; ended
 * orchestrated instances go with their transitions, old counts of retried
 * deliveries, and holds that ended; holds that wait for a decision, or for
 * theirs to be applied, stay. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "inbox.h"
#include "prune.h"
#include "unit_db.h"

#define NOW 10000000  /* unix ms in these tests */
#define CUTOFF 9000000

static atomic_bool running;

/* n barrier rows of saga, three ops each step, created at `at`. */
static void barrier_rows(choreo_store *st, const char *saga, int steps, int64_t at)
{
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    for (int i = 0; i < steps; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "INSERT INTO choreo_barrier VALUES ('%s', 'step%d', 'action', %lld),"
                 " ('%s', 'step%d', 'compensation', %lld)",
                 saga, i, (long long)at, saga, i, (long long)at);
        cr_assert_eq(choreo__store_exec(st, sql), CHOREO_OK, "%s", choreo_last_error());
    }
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
}

static long long saga_rows(choreo_store *st, const char *saga)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_barrier WHERE saga = '%s'", saga);
    return unit_db_count(st, sql);
}

static void dead_row(choreo_store *st, const char *subject, const char *status, int64_t updated)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO choreo_dead(consumer, event_id, event_type, subject, body, reason,"
             " attempts, parked_at, status, updated_at) VALUES ('inv_OrderCreated', 'e',"
             " 'OrderCreated', '%s', " UNIT_BLOB80 ", 'handler returned REJECT', 1, 1, '%s', %lld)",
             subject, status, (long long)updated);
    cr_assert_eq(choreo__store_exec(st, sql), CHOREO_OK, "%s", choreo_last_error());
}

Test(prune, barrier_rows_older_than_the_inbox_retention_go_in_batches)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    barrier_rows(st, "old", 700, CUTOFF - 1);   /* 1,400 rows: three batches */
    barrier_rows(st, "new", 5, CUTOFF);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(deleted, 1400);
    cr_assert_eq(saga_rows(st, "old"), 0);
    cr_assert_eq(saga_rows(st, "new"), 10);
    choreo__store_close(st);
}

Test(prune, keeping_inbox_marks_forever_keeps_barrier_rows_too)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    barrier_rows(st, "old", 3, 1);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, NOW, 0, &running, &deleted), CHOREO_OK);
    cr_assert_eq(deleted, 0);
    cr_assert_eq(saga_rows(st, "old"), 6);
    choreo__store_close(st);
}

/* A parked message may be retried any time; a retried one may still be on
 * its way for as long as an inbox mark is kept. Their sagas' barrier rows
 * must be there when they arrive. */
Test(prune, barrier_rows_of_a_saga_with_a_parked_or_recent_retry_stay)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    static const struct {
        const char *saga, *status;
        int64_t updated;
        bool kept;
    } cases[] = {
        { "parked-saga", "parked", 0, true },
        { "retried-lately", "retried", CUTOFF + 5, true },
        { "retried-long-ago", "retried", CUTOFF - 5, false },
        { "dropped-saga", "dropped", CUTOFF + 5, false },
        { "no-message", NULL, 0, false },
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        barrier_rows(st, cases[i].saga, 2, 1);
        if (cases[i].status) {
            char subject[128];
            snprintf(subject, sizeof subject, "shop.OrderCreated.%s", cases[i].saga);
            dead_row(st, subject, cases[i].status, cases[i].updated);
        }
    }
    /* A saga id that is a suffix of a parked one's is not protected by it. */
    barrier_rows(st, "saga", 1, 1);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK, "%s",
                 choreo_last_error());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(saga_rows(st, cases[i].saga), cases[i].kept ? 4 : 0, "%s: %s",
                     cases[i].saga, cases[i].kept ? "pruned" : "kept");
    cr_assert_eq(saga_rows(st, "saga"), 0);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_dead"), 4);
    choreo__store_close(st);
}

#ifndef UNIT_PG /* SQLite's query plan */
Test(prune, finding_old_barrier_rows_uses_their_index)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    barrier_rows(st, "old", 1, 1);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK);
    char eqp[2048];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sqlite3_sql(choreo__q_sqlite(st->stmt[STMT_PRUNE_BARRIER])));
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(st->db, eqp, -1, &s, NULL), SQLITE_OK);
    bool by_age = false;
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        cr_assert(strncmp(d, "SCAN choreo_barrier", 19) != 0, "%s", d);
        by_age |= strstr(d, "choreo_barrier_age (created_at<?)") != NULL;
    }
    sqlite3_finalize(s);
    cr_assert(by_age, "old barrier rows are not found through choreo_barrier_age");
    choreo__store_close(st);
}

#endif

Test(prune, a_stop_request_ends_pruning_early)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    barrier_rows(st, "old", 10, 1);
    atomic_bool stop = true;
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, NOW, CUTOFF, &stop, &deleted), CHOREO_OK);
    cr_assert_eq(deleted, 0);
    cr_assert_eq(saga_rows(st, "old"), 20);
    choreo__store_close(st);
}

/* An orchestrated instance in phase, last changed at `at`, with three
 * transitions. */
static void instance(choreo_store *st, const char *saga, const char *phase, int64_t at)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "INSERT INTO choreo_saga_instances(saga, definition, state, phase, pos, steps,"
             " epoch, data, started_at, updated_at) VALUES ('%s', 'order', '%s', '%s', 0, 'D',"
             " 1, " UNIT_BLOB80 ", %lld, %lld);"
             "INSERT INTO choreo_saga_transitions(saga, at, event_id, event_type, from_state,"
             " to_state, note) VALUES ('%s', 1, '', '', '', 'S', 'started'), ('%s', 2, 'e',"
             " 'T', 'S', 'A', 'a done'), ('%s', 3, 'e2', 'T', 'A', '%s', 'b done')",
             saga, phase, phase, (long long)at, (long long)at, saga, saga, saga, phase);
    cr_assert_eq(choreo__store_exec(st, sql), CHOREO_OK, "%s", choreo_last_error());
}

Test(prune, ended_saga_instances_go_with_their_transitions_and_running_ones_stay)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    instance(st, "done-old", "COMPLETED", CUTOFF - 1);
    instance(st, "failed-old", "FAILED", CUTOFF - 1);
    instance(st, "running-old", "COMPENSATING", CUTOFF - 1);
    instance(st, "done-new", "COMPLETED", CUTOFF);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(deleted, 8, "two instances and their six transitions, not %lld",
                 (long long)deleted);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_saga_instances"), 2);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga IN"
                                   " ('running-old', 'done-new')"), 2);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_saga_transitions"), 6);
    choreo__store_close(st);
}

/* The count of a retried delivery whose event never came back goes with
 * the inbox marks of its age; a recent one stays. */
Test(prune, counts_of_retried_deliveries_older_than_the_inbox_retention_go)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(choreo__inbox_retried(st, "a", "old", 2, CUTOFF - 1, NULL), CHOREO_OK);
    cr_assert_eq(choreo__inbox_retried(st, "a", "new", 2, CUTOFF, ""), CHOREO_OK);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(deleted, 1);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_retries WHERE event_id = 'new'"),
                 1);
    choreo__store_close(st);
}

/* A hold of saga in state, decided at `decided`, expiring at `expires`. */
static void hold(choreo_store *st, const char *saga, const char *state, int applied,
                 int64_t decided, int64_t expires)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "INSERT INTO choreo_holds(saga, kind, reason, service, subject, event_id,"
             " event_type, data, held_at, expires_at, state, decided_at, applied) VALUES"
             " ('%s', 'refund', 'big', 'payment', 'choreo.ChoreoHoldDecided.%s', 'e', 'T',"
             " " UNIT_BLOB80 ", 1, %lld, '%s', %lld, %d)",
             saga, saga, (long long)expires, state, (long long)decided, applied);
    cr_assert_eq(choreo__store_exec(st, sql), CHOREO_OK, "%s", choreo_last_error());
}

Test(prune, holds_that_ended_go_and_holds_waiting_for_a_decision_or_its_apply_stay)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    hold(st, "approved-applied-old", "approved", 1, CUTOFF - 1, 0);
    hold(st, "rejected-applied-old", "rejected", 1, CUTOFF - 1, 0);
    hold(st, "ended-old", "expired", 0, CUTOFF - 1, 0);
    hold(st, "expiry-passed-old", "held", 0, 0, CUTOFF - 1);
    hold(st, "approved-unapplied-old", "approved", 0, CUTOFF - 1, 0);
    hold(st, "waiting-old", "held", 0, 0, 0);
    hold(st, "expiry-to-come", "held", 0, 0, NOW + 1);
    hold(st, "expiry-passed-new", "held", 0, 0, CUTOFF);
    hold(st, "approved-applied-new", "approved", 1, CUTOFF, 0);
    hold(st, "ended-new", "expired", 0, CUTOFF, 0);
    int64_t deleted = 0;
    cr_assert_eq(choreo__prune(st, 0, CUTOFF, &running, &deleted), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(deleted, 4, "four ended holds, not %lld", (long long)deleted);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_holds WHERE saga LIKE '%-old'"
                                   " AND saga NOT IN ('approved-unapplied-old', 'waiting-old')"),
                 0);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_holds"), 6);
    choreo__store_close(st);
}
