/* Each shop service's try step and its compensation, one service at a time
 * under the supervisor, driven by events emitted from the test: the
 * compensation gives back exactly what the step took, a compensation that
 * arrives first makes the late step a no-op (the barrier), and a service
 * killed with SIGKILL, or a broker killed under it, loses and repeats
 * nothing. With --style orchestration and tcc, the test plays the
 * orchestrator: every command and compensation is answered, also a late
 * step (with its failure) and a compensation with nothing to undo, and a
 * TCC confirm sent twice is answered twice and settles once. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shop_client.h"
#include "shop_events.h"
#include "supervisor.h"

struct rig {
    sup *s;
    int svc;
    choreo_service *drv;
    shop_client *client;
    char db[700];
    char drv_db[700]; /* the driver's: the answers it got, in table answers */
};

/* The driver's handler for the answers of a service: one row each. */
static choreo_result record_answer(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(choreo_tx_db(tx), "INSERT INTO answers(type, saga) VALUES (?1, ?2)",
                           -1, &s, NULL) != SQLITE_OK)
        return CHOREO_RETRY;
    sqlite3_bind_text(s, 1, ev->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, ev->saga, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? CHOREO_DONE : CHOREO_RETRY;
}

/* Starts the service name in style (NULL: the default) and a driver that
 * records every event of the types in answers (NULL-terminated, may be
 * NULL). */
static void rig_start_style(struct rig *r, const char *name, const char *style,
                            const char *const *answers)
{
    memset(r, 0, sizeof *r);
    sup_options o = { .fresh_name = "choreo-demo-comp", .log_level = "warn" };
    cr_assert_eq(sup_create(&r->s, &o), 0);
    char bin[600];
    snprintf(bin, sizeof bin, "%s/services/%s/shop-%s", SHOP_BUILD_DIR, name, name);
    const char *args[] = { "--synchronous", "normal", "--ack-wait-ms", "2000",
                           style ? "--style" : NULL, style, NULL };
    sup_service_spec spec = { .name = name, .binary = bin, .args = args, .ping = true };
    r->svc = sup_add_service(r->s, &spec);
    cr_assert_eq(sup_start_all(r->s), 0, "cannot start %s", name);
    snprintf(r->db, sizeof r->db, "%s", sup_db_path(r->s, r->svc));
    char *db = r->drv_db;
    snprintf(db, sizeof r->drv_db, "%s/driver.db", sup_workdir(r->s));
    choreo_config *cfg = NULL;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "service", "driver"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "nats_url", sup_url(r->s)), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "log_level", "warn"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "synchronous", "normal"), CHOREO_OK);
    cr_assert_eq(choreo_service_create(&r->drv, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
    choreo_tx *tx = NULL;
    cr_assert_eq(choreo_service_begin(r->drv, &tx), CHOREO_OK);
    cr_assert_eq(sqlite3_exec(choreo_tx_db(tx),
                              "CREATE TABLE answers(type TEXT NOT NULL, saga TEXT NOT NULL)", NULL,
                              NULL, NULL),
                 SQLITE_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
    for (const char *const *a = answers; a && *a; a++)
        cr_assert_eq(choreo_service_on(r->drv, *a, record_answer, NULL), CHOREO_OK, "%s",
                     choreo_last_error());
    cr_assert_eq(choreo_service_start(r->drv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(shop_client_create(&r->client, sup_url(r->s), NULL), CHOREO_OK);
}

static void rig_start(struct rig *r, const char *name)
{
    rig_start_style(r, name, NULL, NULL);
}

static void rig_stop(struct rig *r)
{
    shop_client_destroy(r->client);
    choreo_service_destroy(r->drv);
    sup_destroy(r->s);
}

/* One integer from the service's database (read-only), -1 on error. */
static long long db_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *s = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
            v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return v;
}

/* Waits up to 20 s for the query to give want. */
static bool wait_int(const char *path, const char *sql, long long want)
{
    for (int waited = 0; waited < 20000; waited += 20) {
        if (db_int(path, sql) == want)
            return true;
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Emits one event of the driver in its own command transaction. */
#define EMIT(r, fn, saga, value)                                                         \
    do {                                                                                 \
        choreo_tx *tx_ = NULL;                                                           \
        cr_assert_eq(choreo_service_begin((r)->drv, &tx_), CHOREO_OK);                   \
        cr_assert_eq(fn(tx_, (saga), (value), NULL), CHOREO_OK, "%s", choreo_last_error()); \
        cr_assert_eq(choreo_tx_commit(tx_), CHOREO_OK);                                  \
    } while (0)

static void cancel(struct rig *r, const char *saga)
{
    shop_order_cancelled c = { .order_id = saga, .reason = "deadline: test" };
    EMIT(r, shop_emit_order_cancelled, saga, &c);
}

/* The try step of each service, with what it must have done. */
static void points_try(struct rig *r, const char *saga)
{
    shop_payment_authorized v = { .order_id = saga, .user_id = "u1", .amount_cents = 700,
                                  .points = 7 };
    EMIT(r, shop_emit_payment_authorized, saga, &v);
}

static void inventory_try(struct rig *r, const char *saga)
{
    shop_order_created v = { .order_id = saga, .user_id = "u1", .product_id = "apple", .qty = 2,
                             .amount_cents = 240, .points = 2 };
    EMIT(r, shop_emit_order_created, saga, &v);
}

static void payment_try(struct rig *r, const char *saga)
{
    shop_stock_reserved v = { .order_id = saga, .user_id = "u1", .product_id = "apple", .qty = 2,
                              .amount_cents = 300, .points = 3 };
    EMIT(r, shop_emit_stock_reserved, saga, &v);
}

struct service_case {
    const char *name;
    void (*try_step)(struct rig *, const char *saga);
    const char *try_type;      /* event type of the try step */
    const char *row_state;     /* SELECT giving the order's row state */
    const char *held;          /* SELECT giving what the step holds (reserved, frozen, points) */
    long long held_after_try;
    const char *free_;         /* SELECT giving what is free again after the compensation */
    long long free_before;
};

static const struct service_case CASES[] = {
    { "points", points_try, "PaymentAuthorized",
      "SELECT CASE state WHEN 'AWARDED' THEN 1 WHEN 'REVOKED' THEN 2 ELSE 0 END FROM awards",
      "SELECT COALESCE(SUM(points), 0) FROM accounts", 7,
      "SELECT 0 - COALESCE(SUM(points), 0) FROM accounts", 0 },
    { "inventory", inventory_try, "OrderCreated",
      "SELECT CASE state WHEN 'RESERVED' THEN 1 WHEN 'RELEASED' THEN 2 ELSE 0 END "
      "FROM reservations",
      "SELECT reserved FROM products WHERE product_id = 'apple'", 2,
      "SELECT available FROM products WHERE product_id = 'apple'", 10 },
    { "payment", payment_try, "StockReserved",
      "SELECT CASE state WHEN 'FROZEN' THEN 1 WHEN 'RELEASED' THEN 2 ELSE 0 END FROM payments",
      "SELECT frozen FROM accounts WHERE user_id = 'u1'", 300,
      "SELECT balance FROM accounts WHERE user_id = 'u1'", 1000 },
};

static void seed(struct rig *r, const char *name)
{
    if (strcmp(name, "inventory") == 0)
        cr_assert_eq(shop_client_restock(r->client, "r1", "apple", 10), CHOREO_OK, "%s",
                     shop_client_last_error());
    if (strcmp(name, "payment") == 0)
        cr_assert_eq(shop_client_deposit(r->client, "d1", "u1", 1000, false, false), CHOREO_OK,
                     "%s", shop_client_last_error());
}

Test(compensation, gives_back_exactly_what_the_step_took, .timeout = 120)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const struct service_case *c = &CASES[i];
        struct rig r;
        rig_start(&r, c->name);
        seed(&r, c->name);
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        c->try_step(&r, saga);
        cr_assert(wait_int(r.db, c->row_state, 1), "%s: the step did not run", c->name);
        cr_assert_eq(db_int(r.db, c->held), c->held_after_try, "%s: the step holds %lld",
                     c->name, db_int(r.db, c->held));
        cancel(&r, saga);
        cr_assert(wait_int(r.db, c->row_state, 2), "%s: the compensation did not run", c->name);
        cr_assert_eq(db_int(r.db, c->held), 0, "%s: still held after the compensation", c->name);
        cr_assert_eq(db_int(r.db, c->free_), c->free_before, "%s: not all given back", c->name);
        /* The same cancellation again (a new event, same saga) changes nothing. */
        cancel(&r, saga);
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT COUNT(*) FROM choreo_inbox WHERE consumer = '%s_OrderCancelled'", c->name);
        cr_assert(wait_int(r.db, sql, 2), "%s: the second cancellation was not handled", c->name);
        cr_assert_eq(db_int(r.db, c->free_), c->free_before, "%s: compensated twice", c->name);
        rig_stop(&r);
    }
}

Test(compensation, arriving_first_makes_the_late_step_a_no_op, .timeout = 120)
{
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const struct service_case *c = &CASES[i];
        struct rig r;
        rig_start(&r, c->name);
        seed(&r, c->name);
        char saga[CHOREO_ID_SIZE], sql[200];
        choreo_saga_new(saga);
        cancel(&r, saga);
        snprintf(sql, sizeof sql,
                 "SELECT COUNT(*) FROM choreo_inbox WHERE consumer = '%s_OrderCancelled'", c->name);
        cr_assert(wait_int(r.db, sql, 1), "%s: the cancellation was not handled", c->name);
        c->try_step(&r, saga);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_inbox WHERE consumer = '%s_%s'",
                 c->name, c->try_type);
        cr_assert(wait_int(r.db, sql, 1), "%s: the late step was not handled", c->name);
        cr_assert_eq(db_int(r.db, c->row_state), -1, "%s: the late step wrote a row", c->name);
        long long held = db_int(r.db, c->held);
        cr_assert(held == 0 || held == -1, "%s: the late step holds %lld", c->name, held);
        rig_stop(&r);
    }
}

Test(compensation, nothing_lost_or_repeated_across_sigkill_of_service_and_broker, .timeout = 120)
{
    struct rig r;
    rig_start(&r, "points");
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        char saga[CHOREO_ID_SIZE];
        choreo_saga_new(saga);
        points_try(&r, saga);
        if (i == N / 3)
            cr_assert_eq(sup_restart_service(r.s, r.svc, SIGKILL), 0);
        if (i == 2 * N / 3)
            cr_assert_eq(sup_restart_broker(r.s, SIGKILL), 0);
    }
    cr_assert(wait_int(r.db, "SELECT COUNT(*) FROM awards WHERE state = 'AWARDED'", N),
              "only %lld of %d awards", db_int(r.db, "SELECT COUNT(*) FROM awards"), N);
    cr_assert_eq(db_int(r.db, "SELECT points FROM accounts WHERE user_id = 'u1'"), 7 * N);
    cr_assert_eq(sup_service_starts(r.s, r.svc), 2);
    rig_stop(&r);
}

/* ---- The orchestrated styles: the test plays the orchestrator ---- */

/* A participant's step in the orchestration or tcc style: its command, the
 * answers, its compensation and (tcc) its confirm, and what the step holds
 * and (tcc) settles, as SELECTs on the service's database. */
struct command_case {
    const char *service, *style;
    const char *command, *success, *failure;
    const char *compensate, *compensated;
    const char *confirm, *confirmed; /* NULL outside tcc */
    const char *held;
    long long held_after;
    const char *settled;             /* sold or spent: what a confirm moves */
    long long settled_after;
};

#define INV_HELD "SELECT COALESCE(SUM(reserved), 0) FROM products"
#define INV_SOLD "SELECT COALESCE(SUM(sold), 0) FROM products"
#define PAY_HELD "SELECT COALESCE(SUM(frozen), 0) FROM accounts"
#define PAY_SPENT "SELECT COALESCE(SUM(spent), 0) FROM accounts"
#define PTS_HELD "SELECT COALESCE(SUM(points), 0) FROM accounts"

static const struct command_case COMMANDS[] = {
    { "inventory", "orchestration", "ReserveStock", "StockReserved", "StockRejected",
      "ReleaseStock", "StockReleased", NULL, NULL, INV_HELD, 2, INV_SOLD, 0 },
    { "payment", "orchestration", "AuthorizePayment", "PaymentAuthorized", "PaymentRejected",
      "UnfreezePayment", "PaymentUnfrozen", NULL, NULL, PAY_HELD, 300, PAY_SPENT, 0 },
    { "points", "orchestration", "AwardPoints", "PointsAwarded", "PointsRejected",
      "RevokePoints", "PointsRevoked", NULL, NULL, PTS_HELD, 7, NULL, 0 },
    { "points", "tcc", "AwardPoints", "PointsAwarded", "PointsRejected", "RevokePoints",
      "PointsRevoked", NULL, NULL, PTS_HELD, 7, NULL, 0 },
    { "inventory", "tcc", "TryReserveStock", "StockReserved", "StockRejected", "CancelStock",
      "StockReleased", "ConfirmStock", "StockConfirmed", INV_HELD, 2, INV_SOLD, 2 },
    { "payment", "tcc", "TryFreezeFunds", "PaymentAuthorized", "PaymentRejected", "CancelFunds",
      "PaymentUnfrozen", "ConfirmFunds", "FundsConfirmed", PAY_HELD, 300, PAY_SPENT, 300 },
};

/* Sends a command of type with OrderCreated's fields, as an orchestrator
 * does: 2 apples for 300 cents and 7 points, for u1. */
static void command(struct rig *r, const char *type, const char *saga)
{
    shop_order_created v = { .order_id = saga, .user_id = "u1", .product_id = "apple", .qty = 2,
                             .amount_cents = 300, .points = 7 };
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 512);
    cr_assert_eq(shop_order_created_encode(&v, &w), CHOREO_OK);
    choreo_tx *tx = NULL;
    cr_assert_eq(choreo_service_begin(r->drv, &tx), CHOREO_OK);
    cr_assert_eq(choreo_tx_emit(tx, type, 1, saga, w.buf, w.len, NULL), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
    choreo_mp_writer_free(&w);
}

/* Waits until the driver has n answers of type for saga. */
static bool answered(struct rig *r, const char *type, const char *saga, long long n)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM answers WHERE type = '%s' AND saga = '%s'",
             type, saga);
    return wait_int(r->drv_db, sql, n);
}

Test(compensation, every_command_of_an_orchestrator_is_answered, .timeout = 180)
{
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        const struct command_case *c = &COMMANDS[i];
        const char *answers[] = { c->success, c->failure, c->compensated, c->confirmed, NULL };
        struct rig r;
        rig_start_style(&r, c->service, c->style, answers);
        seed(&r, c->service);
        const char *who = c->service;
        char a[CHOREO_ID_SIZE], b[CHOREO_ID_SIZE];
        choreo_saga_new(a);
        choreo_saga_new(b);

        /* The step, then its compensation twice: answered each time, and
         * what the step took is given back once. */
        command(&r, c->command, a);
        cr_assert(answered(&r, c->success, a, 1), "%s/%s: %s was not answered with %s", who,
                  c->style, c->command, c->success);
        cr_assert_eq(db_int(r.db, c->held), c->held_after, "%s: the step holds %lld", who,
                     db_int(r.db, c->held));
        command(&r, c->compensate, a);
        cr_assert(answered(&r, c->compensated, a, 1), "%s/%s: %s was not answered with %s", who,
                  c->style, c->compensate, c->compensated);
        cr_assert_eq(db_int(r.db, c->held), 0, "%s: still held after %s", who, c->compensate);
        command(&r, c->compensate, a);
        cr_assert(answered(&r, c->compensated, a, 2), "%s/%s: a repeated %s was not answered",
                  who, c->style, c->compensate);
        cr_assert_eq(db_int(r.db, c->held), 0, "%s: compensated twice", who);

        /* The compensation first (say after a timeout): answered although
         * there is nothing to undo; the late step is answered with its
         * failure and takes nothing. */
        command(&r, c->compensate, b);
        cr_assert(answered(&r, c->compensated, b, 1), "%s/%s: a %s with nothing to undo was not "
                  "answered", who, c->style, c->compensate);
        command(&r, c->command, b);
        cr_assert(answered(&r, c->failure, b, 1), "%s/%s: the late %s was not answered with %s",
                  who, c->style, c->command, c->failure);
        cr_assert_eq(db_int(r.db, c->held), 0, "%s: the late step holds %lld", who,
                     db_int(r.db, c->held));

        /* TCC: a confirm sent twice is answered twice and settles once. */
        if (c->confirm) {
            char k[CHOREO_ID_SIZE];
            choreo_saga_new(k);
            command(&r, c->command, k);
            cr_assert(answered(&r, c->success, k, 1), "%s: the try was not answered", who);
            command(&r, c->confirm, k);
            command(&r, c->confirm, k);
            cr_assert(answered(&r, c->confirmed, k, 2), "%s: %s twice was not answered twice",
                      who, c->confirm);
            cr_assert_eq(db_int(r.db, c->held), 0, "%s: still held after %s", who, c->confirm);
            cr_assert_eq(db_int(r.db, c->settled), c->settled_after, "%s: settled %lld, not %lld",
                         who, db_int(r.db, c->settled), c->settled_after);
        }
        rig_stop(&r);
    }
}
