/* The barrier through real deliveries: a Reserve event (the action) and a
 * Release event (its compensation) for the same saga, arriving in every
 * order and more than once, against a real nats-server. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "support.h"

static choreo_result step(choreo_tx *tx, choreo_barrier_op op)
{
    bool run = false;
    if (choreo_tx_barrier(tx, NULL, "reserve", op, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    const char *sql = op == CHOREO_BARRIER_ACTION
        ? "UPDATE stock SET available = available - 1, reserved = reserved + 1"
        : "UPDATE stock SET available = available + 1, reserved = reserved - 1";
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

static choreo_result on_reserve(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return step(tx, CHOREO_BARRIER_ACTION);
}

static choreo_result on_release(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return step(tx, CHOREO_BARRIER_COMPENSATION);
}

struct world {
    char dir[256];
    natsd server;
    choreo_service *inv, *client;
};

static long long handled(struct world *w)
{
    return (long long)support_stats(w->inv).handled;
}

/* Emits type for saga and waits until the inventory handled one more event. */
static void deliver(struct world *w, const char *type, const char *saga)
{
    long long before = handled(w);
    support_emit(w->client, type, saga, 0, NULL);
    for (int i = 0; i < 1000 && handled(w) <= before; i++)
        usleep(10000);
    cr_assert_gt(handled(w), before, "%s for %s was never handled", type, saga);
}

static long long reserved(struct world *w)
{
    cr_assert_eq(support_count(w->dir, "inv", "SELECT available + reserved FROM stock"), 100,
                 "stock must be conserved");
    return support_count(w->dir, "inv", "SELECT reserved FROM stock");
}

static void up(struct world *w)
{
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    support_exec(w->dir, "inv", "CREATE TABLE stock(available INTEGER, reserved INTEGER);"
                                "INSERT INTO stock VALUES (100, 0);");
    choreo_config *cfg = support_config(w->dir, "inv", w->server.url, NULL);
    w->inv = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(w->inv, "Reserve", on_reserve, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(w->inv, "Release", on_release, NULL), CHOREO_OK);
    cfg = support_config(w->dir, "client", w->server.url, NULL);
    w->client = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(w->inv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w->client), CHOREO_OK, "%s", choreo_last_error());
}

static void down(struct world *w)
{
    choreo_service_destroy(w->client);
    choreo_service_destroy(w->inv);
    natsd_stop(&w->server, SIGTERM);
}

Test(barrier_flow, action_then_compensation_gives_the_stock_back, .timeout = 60)
{
    struct world w;
    up(&w);
    deliver(&w, "Reserve", "s1");
    cr_assert_eq(reserved(&w), 1);
    deliver(&w, "Release", "s1");
    cr_assert_eq(reserved(&w), 0);
    down(&w);
}

Test(barrier_flow, a_compensation_before_its_action_is_null_and_the_late_action_skipped,
     .timeout = 60)
{
    struct world w;
    up(&w);
    deliver(&w, "Release", "s2");
    cr_assert_eq(reserved(&w), 0, "nothing to give back");
    deliver(&w, "Reserve", "s2");
    cr_assert_eq(reserved(&w), 0, "the late action must not hang a reservation");
    down(&w);
}

Test(barrier_flow, a_compensation_twice_gives_back_once, .timeout = 60)
{
    struct world w;
    up(&w);
    deliver(&w, "Reserve", "s3");
    deliver(&w, "Release", "s3");
    deliver(&w, "Release", "s3");
    cr_assert_eq(reserved(&w), 0);
    cr_assert_eq(support_count(w.dir, "inv", "SELECT available FROM stock"), 100);
    down(&w);
}

Test(barrier_flow, an_action_twice_reserves_once, .timeout = 60)
{
    struct world w;
    up(&w);
    deliver(&w, "Reserve", "s4");
    deliver(&w, "Reserve", "s4");
    cr_assert_eq(reserved(&w), 1);
    down(&w);
}
