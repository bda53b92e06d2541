/* The saga barrier, through command transactions on a service's database:
 * action then compensation, compensation before a late action, repeated
 * compensations and repeated actions, each with its business effect. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "choreo.h"
#include "unit_db.h"

static choreo_service *svc;

/* Business SQL on the transaction's connection, on either store. */
static void biz_exec(choreo_tx *tx, const char *sql)
{
#ifdef UNIT_PG
    PGresult *r = PQexec(choreo_tx_pg(tx), sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
#else
    cr_assert_eq(sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL), SQLITE_OK, "%s", sql);
#endif
}

static void setup(void)
{
    char db[256];
    unit_db_path(db, sizeof db);
    choreo_config *cfg;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "service", "inv"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    biz_exec(tx, "CREATE TABLE stock(available INTEGER, reserved INTEGER);"
                 "INSERT INTO stock VALUES (10, 0);");
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
}

static void teardown(void)
{
    choreo_service_destroy(svc);
}

/* One step of the saga: reserve (action) or release (compensation) one unit,
 * behind the barrier. Returns whether the business work ran. */
static bool step(const char *saga, choreo_barrier_op op)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    bool run = false;
    cr_assert_eq(choreo_tx_barrier(tx, saga, "reserve", op, &run), CHOREO_OK, "%s",
                 choreo_last_error());
    if (run) {
        const char *sql = op == CHOREO_BARRIER_ACTION
            ? "UPDATE stock SET available = available - 1, reserved = reserved + 1"
            : "UPDATE stock SET available = available + 1, reserved = reserved - 1";
        biz_exec(tx, sql);
    }
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
    return run;
}

static long long reserved(void)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
#ifdef UNIT_PG
    PGresult *res = PQexec(choreo_tx_pg(tx), "SELECT reserved, available FROM stock");
    cr_assert_eq(PQntuples(res), 1);
    long long r = atoll(PQgetvalue(res, 0, 0));
    cr_assert_eq(r + atoll(PQgetvalue(res, 0, 1)), 10, "stock must be conserved");
    PQclear(res);
#else
    sqlite3_stmt *s;
    sqlite3_prepare_v2(choreo_tx_db(tx), "SELECT reserved, available FROM stock", -1, &s, NULL);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    long long r = sqlite3_column_int64(s, 0);
    cr_assert_eq(r + sqlite3_column_int64(s, 1), 10, "stock must be conserved");
    sqlite3_finalize(s);
#endif
    choreo_tx_rollback(tx);
    return r;
}

TestSuite(barrier, .init = setup, .fini = teardown);

Test(barrier, action_then_compensation_undoes_the_action)
{
    cr_assert(step("s1", CHOREO_BARRIER_ACTION));
    cr_assert_eq(reserved(), 1);
    cr_assert(step("s1", CHOREO_BARRIER_COMPENSATION));
    cr_assert_eq(reserved(), 0);
}

Test(barrier, compensation_first_is_null_and_the_late_action_is_skipped)
{
    cr_assert_not(step("s2", CHOREO_BARRIER_COMPENSATION), "null compensation must not run");
    cr_assert_eq(reserved(), 0);
    cr_assert_not(step("s2", CHOREO_BARRIER_ACTION), "a late action must not hang a reservation");
    cr_assert_eq(reserved(), 0);
}

Test(barrier, compensation_twice_runs_once)
{
    cr_assert(step("s3", CHOREO_BARRIER_ACTION));
    cr_assert(step("s3", CHOREO_BARRIER_COMPENSATION));
    cr_assert_not(step("s3", CHOREO_BARRIER_COMPENSATION));
    cr_assert_eq(reserved(), 0);
}

Test(barrier, action_twice_runs_once)
{
    cr_assert(step("s4", CHOREO_BARRIER_ACTION));
    cr_assert_not(step("s4", CHOREO_BARRIER_ACTION));
    cr_assert_eq(reserved(), 1);
}

Test(barrier, sagas_and_steps_are_independent)
{
    cr_assert(step("s5", CHOREO_BARRIER_ACTION));
    cr_assert(step("s6", CHOREO_BARRIER_ACTION));
    cr_assert_eq(reserved(), 2);
    cr_assert(step("s5", CHOREO_BARRIER_COMPENSATION));
    cr_assert_eq(reserved(), 1);
}

Test(barrier, a_rolled_back_barrier_leaves_no_trace)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    bool run;
    cr_assert_eq(choreo_tx_barrier(tx, "s7", "reserve", CHOREO_BARRIER_ACTION, &run), CHOREO_OK);
    cr_assert(run);
    choreo_tx_rollback(tx);
    cr_assert(step("s7", CHOREO_BARRIER_ACTION), "the action must run after a rollback");
}

Test(barrier, bad_arguments_are_refused)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    bool run;
    cr_assert_eq(choreo_tx_barrier(tx, NULL, "reserve", CHOREO_BARRIER_ACTION, &run), CHOREO_EINVAL,
                 "outside a handler the saga must be given");
    cr_assert_eq(choreo_tx_barrier(tx, "bad saga", "reserve", CHOREO_BARRIER_ACTION, &run),
                 CHOREO_EINVAL);
    cr_assert_eq(choreo_tx_barrier(tx, "s8", "", CHOREO_BARRIER_ACTION, &run), CHOREO_EINVAL);
    choreo_tx_rollback(tx);
}
