/* shop-points: loyalty points of the shop demo. Its step award-points adds
 * the order's points and answers PointsAwarded, or PointsRejected when the
 * customer opted out of points or would pass the account's cap (a
 * deterministic rule, set per account with Enroll); its compensation takes
 * awarded points back, behind the saga barrier. One function each, called
 * by the handlers of the style the service runs: choreography
 * (PaymentAuthorized, OrderCancelled; the saga's last step) or orchestration
 * and tcc (AwardPoints, RevokePoints; in tcc the saga's first step). */
#include <stdio.h>
#include <string.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"
#include "shop_svc.h"

/* points of an account always equals the points of its AWARDED rows. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    "  user_id TEXT PRIMARY KEY,"
    "  points INTEGER NOT NULL CHECK (points >= 0),"
    "  cap INTEGER NOT NULL CHECK (cap >= 0),"
    "  no_points INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS awards("
    "  order_id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  points INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('AWARDED', 'REVOKED', 'REJECTED')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  updated_us INTEGER NOT NULL);";

enum { Q_OPEN, Q_ACCOUNT, Q_ADD, Q_INSERT, Q_AWARD_GET, Q_REVOKE, Q_AWARD_SET, Q_ENROLL };

struct points_svc {
    shop_stmts st;
    int64_t default_cap;
};

/* ---- The business: one function per step, the same in every style ---- */

static bool record(struct points_svc *p, shop_db db, const shop_order_ref *o,
                   const char *state, const char *reason)
{
    return shop_sql(&p->st, db, Q_INSERT,
                    "INSERT INTO awards(order_id, user_id, points, state, reason, updated_us) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    "ttitti", o->order_id, o->user_id, o->points, state, reason,
                    shop_now_us()) == SQLITE_DONE;
}

/* The business rule: no points for an account that opted out, nor beyond
 * its cap. Returns NULL when the points may be added, else why not. */
static const char *refusal(bool no_points, int64_t have, int64_t cap, int64_t add)
{
    if (no_points)
        return "the customer opted out of points";
    if (add < 0)
        return "invalid points";
    if (have > cap - add)
        return "the account's points cap would be exceeded";
    return NULL;
}

/* Step award-points: adds the order's points to the customer's account
 * (*out SHOP_OUT_DONE), or records why not (SHOP_OUT_REFUSED and *why).
 * Behind the barrier: SHOP_OUT_SKIPPED when the step already ran for this
 * saga, or when its compensation got here first. */
static choreo_result award(struct points_svc *p, choreo_tx *tx, const shop_order_ref *o,
                           shop_outcome *out, const char **why)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_AWARD, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run) {
        shop_log(SHOP_INFO, "points skipped: the order was cancelled first", "order=%s",
                 o->order_id);
        *out = SHOP_OUT_SKIPPED;
        return CHOREO_DONE;
    }
    /* Customers without an account get one with the default cap. */
    if (shop_sql(&p->st, db, Q_OPEN,
                 "INSERT INTO accounts(user_id, points, cap, no_points) "
                 "VALUES (?1, 0, ?2, 0) ON CONFLICT DO NOTHING",
                 "ti", o->user_id, p->default_cap) != SQLITE_DONE)
        return CHOREO_RETRY;
    if (shop_sql(&p->st, db, Q_ACCOUNT,
                 "SELECT points, cap, no_points FROM accounts WHERE user_id = ?1", "t",
                 o->user_id) != SQLITE_ROW)
        return CHOREO_RETRY;
    *why = refusal(shop_sql_int(&p->st, Q_ACCOUNT, 2) != 0, shop_sql_int(&p->st, Q_ACCOUNT, 0),
                   shop_sql_int(&p->st, Q_ACCOUNT, 1), o->points);
    shop_sql_reset(&p->st, Q_ACCOUNT);
    if (*why) {
        *out = SHOP_OUT_REFUSED;
        return record(p, db, o, "REJECTED", *why) ? CHOREO_DONE : CHOREO_RETRY;
    }
    if (shop_sql(&p->st, db, Q_ADD, "UPDATE accounts SET points = points + ?2 WHERE user_id = ?1",
                 "ti", o->user_id, o->points) != SQLITE_DONE ||
        !record(p, db, o, "AWARDED", ""))
        return CHOREO_RETRY;
    *out = SHOP_OUT_DONE;
    return CHOREO_DONE;
}

/* Compensation of award-points: takes awarded points back, at most once
 * and only if they were awarded; either way the compensation is done when
 * this returns CHOREO_DONE. */
static choreo_result revoke(struct points_svc *p, choreo_tx *tx, const char *order_id)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_AWARD, CHOREO_BARRIER_COMPENSATION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    int rc = shop_sql(&p->st, db, Q_AWARD_GET,
                      "SELECT user_id, points, state FROM awards WHERE order_id = ?1", "t",
                      order_id);
    if (rc == SQLITE_DONE)
        return CHOREO_DONE;
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    char user_id[80], state[16];
    snprintf(user_id, sizeof user_id, "%s", shop_sql_text(&p->st, Q_AWARD_GET, 0));
    int64_t points = shop_sql_int(&p->st, Q_AWARD_GET, 1);
    snprintf(state, sizeof state, "%s", shop_sql_text(&p->st, Q_AWARD_GET, 2));
    shop_sql_reset(&p->st, Q_AWARD_GET);
    if (strcmp(state, "AWARDED") != 0)
        return CHOREO_DONE; /* rejected: nothing was added */
    if (shop_sql(&p->st, db, Q_REVOKE,
                 "UPDATE accounts SET points = points - ?2 WHERE user_id = ?1", "ti", user_id,
                 points) != SQLITE_DONE ||
        shop_sql(&p->st, db, Q_AWARD_SET,
                 "UPDATE awards SET state = 'REVOKED', updated_us = ?2 WHERE order_id = ?1", "ti",
                 order_id, shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Awards and answers with PointsAwarded or PointsRejected, the reply of the
 * step in every style. A skipped award is answered (as rejected) only with
 * answer_skipped, for an orchestrator that waits for an answer to each
 * command it sends. */
static choreo_result award_and_answer(struct points_svc *p, choreo_tx *tx,
                                      const shop_order_ref *o, bool answer_skipped)
{
    shop_outcome out;
    const char *why = NULL;
    choreo_result r = award(p, tx, o, &out, &why);
    if (r != CHOREO_DONE || (out == SHOP_OUT_SKIPPED && !answer_skipped))
        return r;
    choreo_status s;
    if (out == SHOP_OUT_DONE) {
        shop_points_awarded yes;
        shop_points_awarded_init(&yes);
        yes.order_id = o->order_id;
        yes.user_id = o->user_id;
        yes.points = o->points;
        s = shop_emit_points_awarded(tx, NULL, &yes, NULL);
    } else {
        shop_points_rejected no;
        shop_points_rejected_init(&no);
        no.order_id = o->order_id;
        no.reason = why ? why : "the order was cancelled before its points were added";
        s = shop_emit_points_rejected(tx, NULL, &no, NULL);
    }
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* ---- Choreography: react to the events before ---- */

static choreo_result on_payment_authorized(choreo_tx *tx, const choreo_event *meta,
                                           const shop_payment_authorized *v, void *user)
{
    shop_order_ref o = { .order_id = v->order_id, .user_id = v->user_id, .product_id = "",
                         .amount_cents = v->amount_cents, .points = v->points };
    return award_and_answer(user, tx, &o, false);
}

static choreo_result on_order_cancelled(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_cancelled *v, void *user)
{
    return revoke(user, tx, v->order_id);
}

/* ---- Orchestration and TCC: the order service's commands ---- */

static choreo_result on_award_points(choreo_tx *tx, const choreo_event *meta,
                                     const shop_award_points *v, void *user)
{
    return award_and_answer(user, tx, &SHOP_ORDER_REF(v), true);
}

/* Answered with PointsRevoked, also when there was nothing to take back:
 * the orchestrator waits for every compensation's answer. */
static choreo_result on_revoke_points(choreo_tx *tx, const choreo_event *meta,
                                      const shop_revoke_points *v, void *user)
{
    choreo_result r = revoke(user, tx, v->order_id);
    if (r != CHOREO_DONE)
        return r;
    shop_points_revoked done;
    shop_points_revoked_init(&done);
    done.order_id = v->order_id;
    return shop_emit_points_revoked(tx, NULL, &done, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                        : CHOREO_RETRY;
}

/* Enroll {user_id, cap?, no_points?} -> {ok, error}: opens or updates an
 * account's rule. Setting the same values again changes nothing. */
static choreo_result enroll(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                            void *user)
{
    struct points_svc *p = user;
    char user_id[80] = "", err[200] = "";
    int64_t cap = p->default_cap;
    bool no_points = false, ok = false;
    shop_field in[] = { SHOP_FIELD_STR("user_id", user_id, true),
                        SHOP_FIELD_I64("cap", &cap, false),
                        SHOP_FIELD_BOOL("no_points", &no_points, false) };
    if (shop_msg_decode(req, len, in, 3, err, sizeof err) != CHOREO_OK) {
        /* err says why */
    } else if (!user_id[0] || cap < 0) {
        snprintf(err, sizeof err, "user_id must not be empty and cap not negative");
    } else {
        if (shop_sql(&p->st, shop_tx_db(tx), Q_ENROLL,
                     "INSERT INTO accounts(user_id, points, cap, no_points) VALUES (?1, 0, ?2, ?3) "
                     "ON CONFLICT (user_id) DO UPDATE SET cap = excluded.cap, "
                     "no_points = excluded.no_points",
                     "tii", user_id, cap, (int64_t)no_points) != SQLITE_DONE)
            return CHOREO_RETRY;
        ok = true;
    }
    shop_field out[] = { SHOP_FIELD_BOOL("ok", &ok, false), SHOP_FIELD_STR("error", err, false) };
    return shop_msg_reply(reply, out, 2);
}

static choreo_status register_handlers(choreo_service *svc, shop_style style, void *user)
{
    choreo_status s = choreo_service_on_request(svc, SHOP_RQ_ENROLL, enroll, user);
    if (s == CHOREO_OK && style == SHOP_STYLE_CHOREOGRAPHY &&
        ((s = shop_on_payment_authorized(svc, on_payment_authorized, user)) ||
         (s = shop_on_order_cancelled(svc, on_order_cancelled, user))))
        return s;
    /* The same step in both: a command and its compensation (in tcc the
     * step before the TCC group, compensated when the group is cancelled). */
    if (s == CHOREO_OK && style != SHOP_STYLE_CHOREOGRAPHY &&
        ((s = shop_on_award_points(svc, on_award_points, user)) ||
         (s = shop_on_revoke_points(svc, on_revoke_points, user))))
        return s;
    return s;
}

static int flag(int argc, char **argv, int *i, void *user)
{
    struct points_svc *p = user;
    const char *v;
    int r = shop_flag_value("--default-cap", argc, argv, i, &v);
    if (r <= 0)
        return r;
    return shop_parse_i64("--default-cap", v, 0, INT64_MAX, &p->default_cap) ? 1 : -1;
}

static void cleanup(void *user)
{
    shop_stmts_clear(&((struct points_svc *)user)->st);
}

int main(int argc, char **argv)
{
    struct points_svc p = { .default_cap = INT64_C(1000000000) };
    shop_service_def def = {
        .name = "points",
        .schema_sql = SCHEMA,
        .usage = "  --default-cap N   points cap of accounts opened by a first award "
                 "[1000000000]\n",
        .flags = (const char *const[]){ "--default-cap", NULL },
        .flag = flag,
        .register_handlers = register_handlers,
        .cleanup = cleanup,
        .user = &p,
    };
    return shop_service_main(&def, argc, argv);
}
