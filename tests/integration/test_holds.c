/* Held steps against a real nats-server: a payment service holds a large
 * charge for a person's review; an approval or a rejection, given through
 * the admin API as choreoctl review does, resumes the step once (also when
 * given twice, and when given while the service is stopped); a decision
 * after the saga ended or after the hold's expiry is refused with the
 * reason; holds that ended are pruned with the inbox marks, and a hold that
 * waits stays. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* Charge {n}: above 100 it is held for review; otherwise charged. */
static choreo_result on_charge(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    int64_t n = support_data_n(ev);
    if (n <= 100)
        return choreo_tx_emit(tx, "Charged", 1, NULL, ev->data, ev->data_len, NULL) == CHOREO_OK
                   ? CHOREO_DONE : CHOREO_RETRY;
    /* n 1000 and up: a hold that expires 300 ms from now. */
    int64_t expires = n >= 1000 ? ev->ts_ms + 300 : 0;
    return choreo_tx_hold(tx, NULL, "payment-review", "amount above the review limit", expires,
                          NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* Cancel: the saga ended; its holds end with it. */
static choreo_result on_cancel(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    int ended = 0;
    return choreo_tx_hold_end(tx, NULL, NULL, "the order was cancelled by its deadline",
                              &ended) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

static choreo_result on_decided(choreo_tx *tx, const choreo_hold_decision *d, void *user)
{
    (void)user;
    char sql[300];
    snprintf(sql, sizeof sql,
             "INSERT INTO decided(hold, saga, approved, note, by_whom, type, data_len) VALUES "
             "(%lld, '%s', %d, '%s', '%s', '%s', %zu)",
             (long long)d->id, d->saga, d->approved, d->note, d->by, d->event_type, d->data_len);
    if (sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) != SQLITE_OK)
        return CHOREO_RETRY;
    return choreo_tx_emit(tx, d->approved ? "Charged" : "ChargeRejected", 1, d->saga, d->data,
                          d->data_len, NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

struct world {
    char dir[256];
    natsd server;
    int port; /* the service's metrics endpoint */
    choreo_service *pay;
    choreo_admin *adm;
    const char *const *settings; /* four more, NULL after the last, or NULL */
};

static choreo_service *payment(struct world *w)
{
    char addr[64];
    snprintf(addr, sizeof addr, "metrics_addr=127.0.0.1:%d", w->port);
    static const char *const none[4];
    const char *const *more = w->settings ? w->settings : none;
    choreo_config *cfg = support_config(w->dir, "pay", w->server.url, addr, more[0], more[1],
                                        more[2], more[3], NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Charge", on_charge, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Cancel", on_cancel, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_decision(svc, "payment-review", on_decided, NULL), CHOREO_OK,
                 "%s", choreo_last_error());
    return svc;
}

static void up_with(struct world *w, const char *const *settings)
{
    w->settings = settings;
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    w->port = support_free_port();
    support_exec(w->dir, "pay",
                 "CREATE TABLE decided(hold INT, saga TEXT, approved INT, note TEXT, by_whom TEXT,"
                 " type TEXT, data_len INT)");
    w->pay = payment(w);
    cr_assert_eq(choreo_service_start(w->pay), CHOREO_OK, "%s", choreo_last_error());
    choreo_config *cfg = support_config(w->dir, "pay", w->server.url, NULL);
    cr_assert_eq(choreo_admin_open(&w->adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
}

static void up(struct world *w)
{
    up_with(w, NULL);
}

static void down(struct world *w)
{
    choreo_admin_close(w->adm);
    choreo_service_destroy(w->pay);
    natsd_stop(&w->server, SIGTERM);
}

/* Emits Charge {n} for saga from the service itself and waits for its hold. */
static int64_t held(struct world *w, const char *saga, int64_t n)
{
    support_emit(w->pay, "Charge", saga, n, NULL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_holds WHERE saga = '%s'", saga);
    cr_assert(support_wait_count(w->dir, "pay", sql, 1, 10000), "%s was never held", saga);
    snprintf(sql, sizeof sql, "SELECT id FROM choreo_holds WHERE saga = '%s'", saga);
    return support_count(w->dir, "pay", sql);
}

static long long outbox_of(struct world *w, const char *type, const char *saga)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_outbox WHERE subject = 'choreo.%s.%s'", type, saga);
    return support_count(w->dir, "pay", sql);
}

Test(holds, an_approval_resumes_the_step_once_even_when_given_twice, .timeout = 60)
{
    struct world w;
    up(&w);
    int64_t id = held(&w, "order-1", 500);
    choreo_hold_entry *list;
    size_t n;
    cr_assert_eq(choreo_admin_holds(w.adm, "held", &list, &n), CHOREO_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(list[0].kind, "payment-review");
    cr_assert_str_eq(list[0].reason, "amount above the review limit");
    cr_assert_str_eq(list[0].event_type, "Charge");
    cr_assert_str_eq(list[0].service, "pay");
    free(list);
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 0, "charged before anybody decided");
    support_expect_metric(w.port, "choreo_holds_waiting{service=\"pay\",kind=\"payment-review\"}",
                          1, 10000);

    choreo_hold_entry e;
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, true, "known customer", "alice", &e),
                 CHOREO_OK, "%s", choreo_last_error());
    cr_assert_str_eq(e.state, "approved");
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided", 1, 10000),
              "the approval never reached the service");
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                               " applied = 1", 1, 5000));
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided WHERE approved = 1 AND"
                                             " note = 'known customer' AND by_whom = 'alice' AND"
                                             " type = 'Charge' AND data_len > 0"), 1);
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 1);
    support_expect_metric(w.port, "choreo_hold_decisions_total{service=\"pay\","
                          "kind=\"payment-review\",decision=\"approved\"}", 1, 5000);

    /* The same decision again changes nothing; the other one is refused. */
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, true, NULL, "bob", &e), CHOREO_EDUPLICATE);
    cr_assert(strstr(choreo_last_error(), "already approved by alice"), "%s",
              choreo_last_error());
    cr_assert_str_eq(e.decided_by, "alice");
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, false, NULL, "bob", NULL), CHOREO_ESTATE);
    cr_assert(strstr(choreo_last_error(), "cannot be changed"), "%s", choreo_last_error());
    support_sleep_ms(1000);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 1);
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 1);
    cr_assert_eq(choreo_admin_hold_decide(w.adm, 999, true, NULL, "bob", NULL), CHOREO_ENOTFOUND);
    down(&w);
}

Test(holds, a_rejection_resumes_the_step_with_its_failure, .timeout = 60)
{
    struct world w;
    up(&w);
    int64_t id = held(&w, "order-2", 700);
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, false, "stolen card", "carol", NULL),
                 CHOREO_OK, "%s", choreo_last_error());
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided WHERE approved = 0",
                                 1, 10000));
    cr_assert_eq(outbox_of(&w, "ChargeRejected", "order-2"), 1);
    cr_assert_eq(outbox_of(&w, "Charged", "order-2"), 0);
    down(&w);
}

Test(holds, a_decision_after_the_saga_ended_or_the_hold_expired_is_refused, .timeout = 60)
{
    struct world w;
    up(&w);
    int64_t id = held(&w, "order-3", 500);
    support_emit(w.pay, "Cancel", "order-3", 0, NULL);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                               " state = 'expired'", 1, 10000));
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, true, NULL, "dave", NULL), CHOREO_ESTATE);
    cr_assert(strstr(choreo_last_error(), "can no longer be decided") &&
                  strstr(choreo_last_error(), "the order was cancelled by its deadline"),
              "%s", choreo_last_error());

    int64_t late = held(&w, "order-4", 1000); /* expires 300 ms after its event */
    support_sleep_ms(400);
    cr_assert_eq(choreo_admin_hold_decide(w.adm, late, true, NULL, "dave", NULL), CHOREO_ESTATE);
    cr_assert(strstr(choreo_last_error(), "expired at"), "%s", choreo_last_error());
    support_sleep_ms(500);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 0);
    /* Of the three holds, only one can still be decided, and the gauge of
     * those waiting counts it alone once the sampler (every 2 s) saw it. */
    held(&w, "order-6", 500);
    support_sleep_ms(2500);
    support_expect_metric(w.port, "choreo_holds_waiting{service=\"pay\",kind=\"payment-review\"}",
                          1, 10000);
    down(&w);
}

Test(holds, a_decision_given_while_the_service_is_stopped_is_carried_out_at_its_start,
     .timeout = 60)
{
    struct world w;
    up(&w);
    int64_t id = held(&w, "order-5", 500);
    choreo_service_destroy(w.pay);
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, true, NULL, "erin", NULL), CHOREO_OK, "%s",
                 choreo_last_error());
    w.pay = payment(&w);
    cr_assert_eq(choreo_service_start(w.pay), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided", 1, 10000),
              "the decision given while it was down was never carried out");
    cr_assert_eq(outbox_of(&w, "Charged", "order-5"), 1);
    down(&w);
}

/* A step is held once: a second hold of it while the first waits would
 * carry it on twice. A kind without a decision function, a reason or a why
 * over 255 bytes and a negative expiry are refused, each by name. */
Test(holds, a_step_is_held_once_and_a_hold_needs_its_decision_function, .timeout = 60)
{
    struct world w;
    up(&w);
    choreo_tx *tx = NULL;
    cr_assert_eq(choreo_service_begin(w.pay, &tx), CHOREO_OK, "%s", choreo_last_error());
    int64_t first = 0, second = 0;
    cr_assert_eq(choreo_tx_hold(tx, "order-9", "payment-review", "first", 0, &first), CHOREO_OK,
                 "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_hold(tx, "order-9", "payment-review", "again", 0, &second),
                 CHOREO_EDUPLICATE);
    cr_assert(strstr(choreo_last_error(), "is held already"), "%s", choreo_last_error());
    cr_assert_eq(second, 0);
    cr_assert_eq(choreo_tx_hold(tx, "order-9", "unregistered", "r", 0, NULL), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "no decision function for holds of kind unregistered"),
              "%s", choreo_last_error());
    char longer[300];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cr_assert_eq(choreo_tx_hold(tx, "order-10", "payment-review", longer, 0, NULL),
                 CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "the reason is 299 bytes"), "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_hold(tx, "order-10", "payment-review", "r", -1, NULL), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "the expiry -1 is not"), "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_hold_end(tx, "order-9", NULL, longer, NULL), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "why is 299 bytes"), "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds"), 1);
    /* Once decided, the step may be held again. */
    cr_assert_eq(choreo_admin_hold_decide(w.adm, first, false, NULL, "dave", NULL), CHOREO_OK,
                 "%s", choreo_last_error());
    cr_assert_eq(choreo_service_begin(w.pay, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_hold(tx, "order-9", "payment-review", "later", 0, &second), CHOREO_OK,
                 "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_neq(second, first);
    down(&w);
}

/* With a short retention, the service's pruning deletes the holds that
 * ended (carried on, ended with their saga, past their expiry) and keeps the
 * one that waits for a person; the decision was carried out once. */
Test(holds, ended_holds_are_pruned_and_a_waiting_one_stays, .timeout = 60)
{
    static const char *const retention[4] = { "stream_max_age_s=2", "inbox_retention_s=3",
                                              "prune_interval_s=1", "stream_dup_window_s=1" };
    struct world w;
    up_with(&w, retention);
    int64_t id = held(&w, "order-11", 500);
    cr_assert_eq(choreo_admin_hold_decide(w.adm, id, true, NULL, "frank", NULL), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                               " applied = 1", 1, 10000));
    held(&w, "order-12", 500);  /* waits for a person */
    held(&w, "order-13", 1000); /* expires 300 ms after its event */
    held(&w, "order-14", 500);
    support_emit(w.pay, "Cancel", "order-14", 0, NULL);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                               " state = 'expired'", 1, 10000));
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds", 1, 20000),
              "the holds that ended were not pruned (%lld rows left)",
              support_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds"));
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                             " saga = 'order-12' AND state = 'held'"), 1);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 1);
    cr_assert_eq(outbox_of(&w, "Charged", "order-11"), 1);
    down(&w);
}
