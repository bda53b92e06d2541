/* shop-payment: the accounts of the shop demo. Its step freeze-funds
 * freezes the order's amount (balance -> frozen) and answers
 * PaymentAuthorized or PaymentRejected; its compensation unfreezes it,
 * behind the saga barrier; its confirmation captures it (frozen -> spent).
 * One function each, called by the handlers of the style the service runs:
 * choreography (StockReserved, OrderCancelled, OrderCompleted),
 * orchestration (AuthorizePayment, UnfreezePayment, OrderCompleted) or tcc
 * (TryFreezeFunds, CancelFunds, ConfirmFunds). An account flagged for review
 * freezes the amount and holds the step for a person (choreo_tx_hold, kind
 * payment-review): an approval answers as an unreviewed payment would, a
 * rejection gives the amount back and answers PaymentRejected, and a hold
 * nobody decides ends with its saga's compensation. */
#include <stdio.h>
#include <string.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"
#include "shop_svc.h"

/* balance + frozen + spent of an account always equals the sum of its
 * deposits; frozen equals the amounts of its FROZEN and HELD payments. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    "  user_id TEXT PRIMARY KEY,"
    "  balance INTEGER NOT NULL CHECK (balance >= 0),"
    "  frozen INTEGER NOT NULL CHECK (frozen >= 0),"
    "  spent INTEGER NOT NULL CHECK (spent >= 0),"
    "  review INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS deposits("
    "  ref TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),"
    "  at_us INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS payments("
    "  order_id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  amount_cents INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('FROZEN', 'HELD', 'CAPTURED', 'RELEASED', "
    "'REJECTED')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  updated_us INTEGER NOT NULL);";

enum { Q_ACCOUNT, Q_FREEZE, Q_INSERT, Q_PAY_GET, Q_PAY_SET, Q_UNFREEZE, Q_CAPTURE, Q_DEPOSIT_REF,
       Q_DEPOSIT_ADD, Q_ACCOUNT_GET, Q_PAY_REJECT };

/* The kind of hold of a payment waiting for a person's review. */
#define REVIEW_KIND "payment-review"

struct payment_svc {
    shop_stmts st;
    shop_style style;
    /* The saga deadline the order service runs with (--deadline-ms): a
     * review can be decided until then. 0: holds do not expire on their
     * own, and only the saga's end ends them. */
    int64_t deadline_ms;
};

/* ---- The business: one function per step, the same in every style ---- */

static bool record(struct payment_svc *p, shop_db db, const shop_order_ref *o,
                   const char *state, const char *reason)
{
    return shop_sql(&p->st, db, Q_INSERT,
                    "INSERT INTO payments(order_id, user_id, amount_cents, state, reason, "
                    "updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    "ttitti", o->order_id, o->user_id, o->amount_cents, state, reason,
                    shop_now_us()) == SQLITE_DONE;
}

/* Step freeze-funds: moves the order's amount from the customer's balance to
 * frozen (*out SHOP_OUT_DONE, or SHOP_OUT_HELD when the account is flagged
 * for review: frozen, and not to be answered until a person decides), or
 * records why not
 * (SHOP_OUT_REFUSED and *why). Behind the barrier: SHOP_OUT_SKIPPED when the
 * step already ran for this saga, or when its compensation got here first. */
static choreo_result freeze(struct payment_svc *p, choreo_tx *tx, const shop_order_ref *o,
                            shop_outcome *out, const char **why)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_FREEZE, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run) {
        shop_log(SHOP_INFO, "payment skipped: the order was cancelled first", "order=%s",
                 o->order_id);
        *out = SHOP_OUT_SKIPPED;
        return CHOREO_DONE;
    }
    *out = SHOP_OUT_REFUSED;
    *why = NULL;
    int64_t balance = 0;
    bool review = false;
    if (o->amount_cents < 0) {
        *why = "invalid amount";
    } else {
        int rc = shop_sql(&p->st, db, Q_ACCOUNT,
                          "SELECT balance, review FROM accounts WHERE user_id = ?1", "t",
                          o->user_id);
        if (rc == SQLITE_DONE)
            *why = "unknown account";
        else if (rc != SQLITE_ROW)
            return CHOREO_RETRY;
        if (rc == SQLITE_ROW) {
            balance = shop_sql_int(&p->st, Q_ACCOUNT, 0);
            review = shop_sql_int(&p->st, Q_ACCOUNT, 1) != 0;
            shop_sql_reset(&p->st, Q_ACCOUNT);
            if (balance < o->amount_cents)
                *why = "insufficient funds";
        }
    }
    if (*why)
        return record(p, db, o, "REJECTED", *why) ? CHOREO_DONE : CHOREO_RETRY;
    if (shop_sql(&p->st, db, Q_FREEZE,
                 "UPDATE accounts SET balance = balance - ?2, frozen = frozen + ?2 "
                 "WHERE user_id = ?1",
                 "ti", o->user_id, o->amount_cents) != SQLITE_DONE ||
        !record(p, db, o, review ? "HELD" : "FROZEN", review ? "held for review" : ""))
        return CHOREO_RETRY;
    *out = review ? SHOP_OUT_HELD : SHOP_OUT_DONE;
    return CHOREO_DONE;
}

static int payment(struct payment_svc *p, shop_db db, const char *order_id, char user_id[80],
                   int64_t *amount, char state[16])
{
    int rc = shop_sql(&p->st, db, Q_PAY_GET,
                      "SELECT user_id, amount_cents, state FROM payments WHERE order_id = ?1",
                      "t", order_id);
    if (rc != SQLITE_ROW)
        return rc;
    snprintf(user_id, 80, "%s", shop_sql_text(&p->st, Q_PAY_GET, 0));
    *amount = shop_sql_int(&p->st, Q_PAY_GET, 1);
    snprintf(state, 16, "%s", shop_sql_text(&p->st, Q_PAY_GET, 2));
    shop_sql_reset(&p->st, Q_PAY_GET);
    return rc;
}

static bool set_state(struct payment_svc *p, shop_db db, const char *order_id, const char *state)
{
    return shop_sql(&p->st, db, Q_PAY_SET,
                    "UPDATE payments SET state = ?2, updated_us = ?3 WHERE order_id = ?1", "tti",
                    order_id, state, shop_now_us()) == SQLITE_DONE;
}

/* Moves a frozen amount back to the customer's balance. */
static bool give_back(struct payment_svc *p, shop_db db, const char *user_id, int64_t amount)
{
    return shop_sql(&p->st, db, Q_UNFREEZE,
                    "UPDATE accounts SET balance = balance + ?2, frozen = frozen - ?2 "
                    "WHERE user_id = ?1",
                    "ti", user_id, amount) == SQLITE_DONE;
}

/* Compensation of freeze-funds: unfreezes the amount (also one held for
 * review), at most once and only if it was frozen; either way the
 * compensation is done when this returns CHOREO_DONE. A review nobody
 * decided ends here with its saga (why says how), so that a decision
 * given later is refused. It ends after the barrier is asked, whatever the
 * barrier says: on a database two instances share, an action that holds
 * the step may be committing at this moment in the other instance, and
 * the barrier's claim waits for that commit, after which the hold is seen
 * (asked before, the hold was not there yet and stayed, waiting, on a
 * cancelled order). */
static choreo_result unfreeze(struct payment_svc *p, choreo_tx *tx, const char *order_id,
                              const char *why)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_FREEZE, CHOREO_BARRIER_COMPENSATION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    if (choreo_tx_hold_end(tx, order_id, REVIEW_KIND, why, NULL) != CHOREO_OK) {
        shop_log(SHOP_ERROR, "cannot end the payment's review", "order=%s err=\"%s\"", order_id,
                 choreo_last_error());
        return CHOREO_RETRY;
    }
    if (!run)
        return CHOREO_DONE;
    char user_id[80], state[16];
    int64_t amount;
    int rc = payment(p, db, order_id, user_id, &amount, state);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "REJECTED") == 0))
        return CHOREO_DONE;
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (strcmp(state, "FROZEN") != 0 && strcmp(state, "HELD") != 0) {
        return shop_reject(tx, "order %s is cancelled but its payment is %s, not FROZEN or HELD",
                           order_id, state);
    }
    if (!give_back(p, db, user_id, amount) || !set_state(p, db, order_id, "RELEASED"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Confirm: the frozen amount is captured. Capturing a captured payment
 * again changes nothing. */
static choreo_result capture(struct payment_svc *p, choreo_tx *tx, const char *order_id)
{
    shop_db db = shop_tx_db(tx);
    char user_id[80], state[16];
    int64_t amount;
    int rc = payment(p, db, order_id, user_id, &amount, state);
    if (rc == SQLITE_ROW && strcmp(state, "CAPTURED") == 0)
        return CHOREO_DONE;
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "FROZEN") != 0)) {
        return shop_reject(tx, "order %s is completed but its payment is %s, not FROZEN",
                           order_id, rc == SQLITE_ROW ? state : "missing");
    }
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (shop_sql(&p->st, db, Q_CAPTURE,
                 "UPDATE accounts SET frozen = frozen - ?2, spent = spent + ?2 "
                 "WHERE user_id = ?1",
                 "ti", user_id, amount) != SQLITE_DONE ||
        !set_state(p, db, order_id, "CAPTURED"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Answers the step with PaymentAuthorized (out SHOP_OUT_DONE) or
 * PaymentRejected (why, or that the order was cancelled first), the reply
 * of the step in every style. */
static choreo_result answer(choreo_tx *tx, const shop_order_ref *o, shop_outcome out,
                            const char *why)
{
    choreo_status s;
    if (out == SHOP_OUT_DONE) {
        shop_payment_authorized yes;
        shop_payment_authorized_init(&yes);
        yes.order_id = o->order_id;
        yes.user_id = o->user_id;
        yes.amount_cents = o->amount_cents;
        yes.points = o->points;
        s = shop_emit_payment_authorized(tx, NULL, &yes, NULL);
    } else {
        shop_payment_rejected no;
        shop_payment_rejected_init(&no);
        no.order_id = o->order_id;
        no.reason = why ? why : "the order was cancelled before its amount was frozen";
        s = shop_emit_payment_rejected(tx, NULL, &no, NULL);
    }
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* Milliseconds in a ULID's first ten characters (its time), or -1 when id
 * is not a ULID. */
static int64_t ulid_ms(const char *id)
{
    static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (!id || strlen(id) != 26)
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 10; i++) {
        const char *d = strchr(digits, id[i]);
        if (!d)
            return -1;
        ms = ms * 32 + (int64_t)(d - digits);
    }
    return ms;
}

/* When the saga stops waiting for this step, after which a decision is
 * refused. Choreographed, that is the order's deadline: deadline_ms after
 * the order was placed, which is the time in its id (the order id is the
 * saga id, a ULID made in the PlaceOrder transaction that also schedules
 * OrderDeadline). Orchestrated and tcc, the step's own timeout: deadline_ms
 * after the command was sent, its ts. 0 (never) without --deadline-ms. */
static int64_t review_expiry(const struct payment_svc *p, const choreo_event *ev)
{
    if (p->deadline_ms <= 0)
        return 0;
    int64_t placed = p->style == SHOP_STYLE_CHOREOGRAPHY ? ulid_ms(ev->saga) : -1;
    return (placed > 0 ? placed : ev->ts_ms) + p->deadline_ms;
}

/* Holds the frozen payment for a person's review, in the step's
 * transaction: the step is not answered until the decision comes (see
 * on_review_decided). */
static choreo_result hold(struct payment_svc *p, choreo_tx *tx, const choreo_event *ev,
                          const shop_order_ref *o)
{
    char why[256];
    snprintf(why, sizeof why, "account %.64s is flagged for review: %lld cents for %d x %.64s",
             o->user_id, (long long)o->amount_cents, (int)o->qty, o->product_id);
    if (choreo_tx_hold(tx, o->order_id, REVIEW_KIND, why, review_expiry(p, ev), NULL) !=
        CHOREO_OK) {
        shop_log(SHOP_ERROR, "cannot hold the payment for review", "order=%s err=\"%s\"",
                 o->order_id, choreo_last_error());
        return CHOREO_RETRY;
    }
    shop_log(SHOP_DEBUG, "payment held for review", "order=%s user=%s", o->order_id, o->user_id);
    return CHOREO_DONE;
}

/* Freezes and answers (see answer). A payment flagged for review is held
 * instead; a skipped one is answered (as rejected) only with
 * answer_skipped, for an orchestrator that waits for an answer to each
 * command it sends. */
static choreo_result freeze_and_answer(struct payment_svc *p, choreo_tx *tx,
                                       const choreo_event *ev, const shop_order_ref *o,
                                       bool answer_skipped)
{
    shop_outcome out;
    const char *why = NULL;
    choreo_result r = freeze(p, tx, o, &out, &why);
    if (r != CHOREO_DONE || (out == SHOP_OUT_SKIPPED && !answer_skipped))
        return r;
    return out == SHOP_OUT_HELD ? hold(p, tx, ev, o) : answer(tx, o, out, why);
}

/* A person decided a held payment (choreoctl review approve|reject, or the
 * demo's reviewer); choreo runs this once per hold, in a transaction. The
 * step carries on as an unreviewed one would: approved, the amount stays
 * frozen and the step answers PaymentAuthorized; rejected, the amount goes
 * back to the balance, the payment is REJECTED and the step answers
 * PaymentRejected. Only a payment still HELD carries on: when the saga's
 * compensation got here between the decision and this call (a decision
 * does not wait for the service), the amount was given back (RELEASED) and
 * the saga has moved on, so the decision changes nothing. */
static choreo_result on_review_decided(choreo_tx *tx, const choreo_hold_decision *d, void *user)
{
    struct payment_svc *p = user;
    shop_db db = shop_tx_db(tx);
    char order_id[80] = "", user_id[80] = "", product_id[80] = "", err[200];
    int64_t qty = 0, amount = 0, points = 0;
    shop_field f[] = { SHOP_FIELD_STR("order_id", order_id, true),
                       SHOP_FIELD_STR("user_id", user_id, true),
                       SHOP_FIELD_STR("product_id", product_id, false),
                       SHOP_FIELD_I64("qty", &qty, false),
                       SHOP_FIELD_I64("amount_cents", &amount, true),
                       SHOP_FIELD_I64("points", &points, true) };
    if (!d->data || shop_msg_decode(d->data, d->data_len, f, 6, err, sizeof err) != CHOREO_OK)
        return shop_reject(tx, "review %lld of order %s: the held %s cannot be read (%s)",
                           (long long)d->id, d->saga, d->event_type,
                           d->data ? err : "no data");
    char pay_user[80], state[16];
    int64_t pay_amount;
    int rc = payment(p, db, order_id, pay_user, &pay_amount, state);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return CHOREO_RETRY;
    if (rc == SQLITE_DONE || strcmp(state, "HELD") != 0) {
        shop_log(SHOP_INFO, "review decided after the order's compensation; nothing to carry on",
                 "order=%s hold=%lld decision=%s payment=%s", order_id, (long long)d->id,
                 d->approved ? "approved" : "rejected", rc == SQLITE_ROW ? state : "missing");
        return CHOREO_DONE;
    }
    shop_order_ref o = { .order_id = order_id, .user_id = pay_user, .product_id = product_id,
                         .qty = (int32_t)qty, .amount_cents = pay_amount, .points = points };
    if (d->approved)
        return set_state(p, db, order_id, "FROZEN") ? answer(tx, &o, SHOP_OUT_DONE, NULL)
                                                    : CHOREO_RETRY;
    char why[256];
    snprintf(why, sizeof why, "rejected by review (%.64s: %.160s)", d->by,
             d->note && d->note[0] ? d->note : "no note");
    if (!give_back(p, db, pay_user, pay_amount) ||
        shop_sql(&p->st, db, Q_PAY_REJECT,
                 "UPDATE payments SET state = 'REJECTED', reason = ?2, updated_us = ?3 "
                 "WHERE order_id = ?1",
                 "tti", order_id, why, shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    return answer(tx, &o, SHOP_OUT_REFUSED, why);
}

/* Unfreezes and answers with PaymentUnfrozen, also when there was nothing
 * to unfreeze: the orchestrator waits for every compensation's answer. */
static choreo_result unfreeze_and_answer(struct payment_svc *p, choreo_tx *tx,
                                         const char *order_id, const char *why)
{
    choreo_result r = unfreeze(p, tx, order_id, why);
    if (r != CHOREO_DONE)
        return r;
    shop_payment_unfrozen done;
    shop_payment_unfrozen_init(&done);
    done.order_id = order_id;
    return shop_emit_payment_unfrozen(tx, NULL, &done, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                          : CHOREO_RETRY;
}

/* ---- Choreography: react to the events before and after ---- */

static choreo_result on_stock_reserved(choreo_tx *tx, const choreo_event *meta,
                                       const shop_stock_reserved *v, void *user)
{
    return freeze_and_answer(user, tx, meta, &SHOP_ORDER_REF(v), false);
}

static choreo_result on_order_cancelled(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_cancelled *v, void *user)
{
    char why[256];
    snprintf(why, sizeof why, "the order was cancelled first (%.200s)", v->reason);
    return unfreeze(user, tx, v->order_id, why);
}

/* Also the orchestrated style's settlement: the order service emits
 * OrderCompleted when its saga completes. */
static choreo_result on_order_completed(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_completed *v, void *user)
{
    return capture(user, tx, v->order_id);
}

/* ---- Orchestration: the order service's commands ---- */

static choreo_result on_authorize_payment(choreo_tx *tx, const choreo_event *meta,
                                          const shop_authorize_payment *v, void *user)
{
    return freeze_and_answer(user, tx, meta, &SHOP_ORDER_REF(v), true);
}

static choreo_result on_unfreeze_payment(choreo_tx *tx, const choreo_event *meta,
                                         const shop_unfreeze_payment *v, void *user)
{
    return unfreeze_and_answer(user, tx, v->order_id,
                               "the order's saga compensated the payment first");
}

/* ---- TCC: try, confirm, cancel ---- */

static choreo_result on_try_freeze_funds(choreo_tx *tx, const choreo_event *meta,
                                         const shop_try_freeze_funds *v, void *user)
{
    return freeze_and_answer(user, tx, meta, &SHOP_ORDER_REF(v), true);
}

/* The confirm is sent again until answered, so it is answered every time,
 * and captures once (its own barrier step). */
static choreo_result on_confirm_funds(choreo_tx *tx, const choreo_event *meta,
                                      const shop_confirm_funds *v, void *user)
{
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_FREEZE_CONFIRM, CHOREO_BARRIER_ACTION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    choreo_result r = run ? capture(user, tx, v->order_id) : CHOREO_DONE;
    if (r != CHOREO_DONE)
        return r;
    shop_funds_confirmed done;
    shop_funds_confirmed_init(&done);
    done.order_id = v->order_id;
    return shop_emit_funds_confirmed(tx, NULL, &done, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                         : CHOREO_RETRY;
}

static choreo_result on_cancel_funds(choreo_tx *tx, const choreo_event *meta,
                                     const shop_cancel_funds *v, void *user)
{
    return unfreeze_and_answer(user, tx, v->order_id,
                               "the order's saga cancelled the payment's try first");
}

/* Deposit {ref, user_id, amount_cents, review?} -> {ok, balance, error}:
 * credits an account (opening it), once per ref. review, when present, sets
 * the account's review flag. */
static choreo_result deposit(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    struct payment_svc *p = user;
    shop_db db = shop_tx_db(tx);
    char ref[80] = "", user_id[80] = "", err[200] = "";
    int64_t amount = 0, balance = 0;
    bool review = false, ok = false;
    shop_field in[] = { SHOP_FIELD_STR("ref", ref, true), SHOP_FIELD_STR("user_id", user_id, true),
                        SHOP_FIELD_I64("amount_cents", &amount, true),
                        SHOP_FIELD_BOOL("review", &review, false) };
    if (shop_msg_decode(req, len, in, 4, err, sizeof err) != CHOREO_OK) {
        /* err says why */
    } else if (!ref[0] || !user_id[0] || amount < 0 || amount > INT64_C(1000000000000)) {
        snprintf(err, sizeof err, "ref and user_id must not be empty, amount_cents 0 to 10^12");
    } else {
        int rc = shop_sql(&p->st, db, Q_DEPOSIT_REF,
                          "INSERT INTO deposits(ref, user_id, amount_cents, at_us) "
                          "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                          "ttii", ref, user_id, amount, shop_now_us());
        if (rc != SQLITE_DONE)
            return CHOREO_RETRY;
        if (shop_sql_changes(&p->st) == 1 &&
            shop_sql(&p->st, db, Q_DEPOSIT_ADD,
                     "INSERT INTO accounts(user_id, balance, frozen, spent, review) "
                     "VALUES (?1, ?2, 0, 0, ?3) ON CONFLICT (user_id) "
                     "DO UPDATE SET balance = accounts.balance + excluded.balance, "
                     "review = CASE WHEN ?4 = 1 THEN excluded.review ELSE accounts.review END",
                     "tiii", user_id, amount, (int64_t)review, (int64_t)in[3].seen) != SQLITE_DONE)
            return CHOREO_RETRY;
        rc = shop_sql(&p->st, db, Q_ACCOUNT_GET, "SELECT balance FROM accounts WHERE user_id = ?1",
                      "t", user_id);
        if (rc == SQLITE_ROW) {
            balance = shop_sql_int(&p->st, Q_ACCOUNT_GET, 0);
            shop_sql_reset(&p->st, Q_ACCOUNT_GET);
            ok = true;
        } else {
            snprintf(err, sizeof err, "ref %s was already used for another account", ref);
        }
    }
    shop_field out[] = { SHOP_FIELD_BOOL("ok", &ok, false),
                         SHOP_FIELD_I64("balance", &balance, false),
                         SHOP_FIELD_STR("error", err, false) };
    return shop_msg_reply(reply, out, 3);
}

static choreo_status register_handlers(choreo_service *svc, shop_style style, void *user)
{
    ((struct payment_svc *)user)->style = style;
    choreo_status s = choreo_service_on_request(svc, SHOP_RQ_DEPOSIT, deposit, user);
    if (s == CHOREO_OK)
        s = choreo_service_on_decision(svc, REVIEW_KIND, on_review_decided, user);
    if (s == CHOREO_OK && style == SHOP_STYLE_CHOREOGRAPHY &&
        ((s = shop_on_stock_reserved(svc, on_stock_reserved, user)) ||
         (s = shop_on_order_cancelled(svc, on_order_cancelled, user)) ||
         (s = shop_on_order_completed(svc, on_order_completed, user))))
        return s;
    /* The orchestrator has compensated before the order is cancelled, so
     * OrderCancelled is not handled here: only OrderCompleted settles. */
    if (s == CHOREO_OK && style == SHOP_STYLE_ORCHESTRATION &&
        ((s = shop_on_authorize_payment(svc, on_authorize_payment, user)) ||
         (s = shop_on_unfreeze_payment(svc, on_unfreeze_payment, user)) ||
         (s = shop_on_order_completed(svc, on_order_completed, user))))
        return s;
    /* The confirm settles, the cancel compensates: neither OrderCompleted
     * nor OrderCancelled is handled here. */
    if (s == CHOREO_OK && style == SHOP_STYLE_TCC &&
        ((s = shop_on_try_freeze_funds(svc, on_try_freeze_funds, user)) ||
         (s = shop_on_confirm_funds(svc, on_confirm_funds, user)) ||
         (s = shop_on_cancel_funds(svc, on_cancel_funds, user))))
        return s;
    return s;
}

static int flag(int argc, char **argv, int *i, void *user)
{
    struct payment_svc *p = user;
    const char *v;
    int r = shop_flag_value("--deadline-ms", argc, argv, i, &v);
    if (r <= 0)
        return r;
    return shop_parse_i64("--deadline-ms", v, 0, INT64_C(86400000), &p->deadline_ms) ? 1 : -1;
}

static void cleanup(void *user)
{
    shop_stmts_clear(&((struct payment_svc *)user)->st);
}

int main(int argc, char **argv)
{
    struct payment_svc p = { 0 };
    shop_service_def def = {
        .name = "payment",
        .schema_sql = SCHEMA,
        .usage = "  --deadline-ms N   the order service's --deadline-ms: a payment held for\n"
                 "                    review can be decided until the saga stops waiting for\n"
                 "                    it (choreography: N ms after the order was placed;\n"
                 "                    orchestration and tcc: N ms after the step's command);\n"
                 "                    0: until its saga ends [0]\n",
        .flags = (const char *const[]){ "--deadline-ms", NULL },
        .flag = flag,
        .register_handlers = register_handlers,
        .cleanup = cleanup,
        .user = &p,
    };
    return shop_service_main(&def, argc, argv);
}
