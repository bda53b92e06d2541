/* shop-order: the order service of the shop demo. It takes PlaceOrder
 * requests (idempotent by the client's key), starts one saga per order and
 * ends each saga exactly once: COMPLETED when every step is done, CANCELLED
 * on any rejection or when the order ran out of time. How it starts and
 * follows the saga depends on the style (--style):
 *   choreography   it emits OrderCreated and a delayed OrderDeadline, and
 *                  listens for the rejections, PointsAwarded and the
 *                  deadline; "exactly once" comes from the order's own
 *                  state: only a PENDING order moves
 *   orchestration  it starts an instance of the saga "order" (three steps,
 *   tcc            or the points step and a TCC group of stock and payment),
 *                  which the framework drives; the saga's end function
 *                  writes the order's outcome
 * In every style the outcome is announced with OrderCompleted or
 * OrderCancelled. */
#include <stdio.h>
#include <string.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"
#include "shop_svc.h"

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS orders("
    "  order_id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  product_id TEXT NOT NULL,"
    "  qty INTEGER NOT NULL CHECK (qty > 0),"
    "  amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),"
    "  points INTEGER NOT NULL CHECK (points >= 0),"
    "  state TEXT NOT NULL CHECK (state IN ('PENDING', 'COMPLETED', 'CANCELLED')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  detail TEXT NOT NULL DEFAULT '',"
    "  created_us INTEGER NOT NULL,"
    "  finished_us INTEGER);"
    "CREATE INDEX IF NOT EXISTS orders_by_state ON orders(state);"
    "CREATE TABLE IF NOT EXISTS order_keys("
    "  idempotency_key TEXT PRIMARY KEY,"
    "  order_id TEXT NOT NULL REFERENCES orders(order_id));";

enum { Q_BY_KEY, Q_INSERT_ORDER, Q_INSERT_KEY, Q_FINISH, Q_STATE, Q_GET };

struct order_svc {
    shop_stmts st;
    int64_t deadline_ms;  /* the saga's deadline; each step's timeout when orchestrated */
    shop_style style;
};

static choreo_result reply_with(choreo_reply *reply, const char *order_id, const char *status,
                                const char *error)
{
    shop_place_order_reply r;
    shop_place_order_reply_init(&r);
    r.order_id = order_id;
    r.status = status;
    r.error = error;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 4096);
    choreo_status s = shop_place_order_reply_encode(&r, &w);
    if (s == CHOREO_OK)
        s = choreo_reply_set(reply, w.buf, w.len);
    choreo_mp_writer_free(&w);
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

static const char *invalid_order(const shop_place_order *in)
{
    if (!in->idempotency_key[0])
        return "idempotency_key must not be empty";
    if (!in->user_id[0] || !in->product_id[0])
        return "user_id and product_id must not be empty";
    if (in->qty < 1 || in->qty > 1000000)
        return "qty must be 1 to 1000000";
    if (in->amount_cents < 0 || in->amount_cents > INT64_C(1000000000000))
        return "amount_cents must be 0 to 10^12";
    return NULL;
}

/* A retried request (same key) gets the first order back, in its current
 * state. The same key with a different order is refused. Returns -1 when
 * the key is new, else the handler's result. */
static int replay(struct order_svc *o, shop_db db, const shop_place_order *in,
                  choreo_reply *reply)
{
    int rc = shop_sql(&o->st, db, Q_BY_KEY,
                      "SELECT o.order_id, o.state, o.user_id, o.product_id, o.qty, o.amount_cents "
                      "FROM order_keys k JOIN orders o USING (order_id) "
                      "WHERE k.idempotency_key = ?1",
                      "t", in->idempotency_key);
    if (rc == SQLITE_DONE)
        return -1;
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    char id[80], state[20];
    snprintf(id, sizeof id, "%s", shop_sql_text(&o->st, Q_BY_KEY, 0));
    snprintf(state, sizeof state, "%s", shop_sql_text(&o->st, Q_BY_KEY, 1));
    bool same = strcmp(shop_sql_text(&o->st, Q_BY_KEY, 2), in->user_id) == 0 &&
                strcmp(shop_sql_text(&o->st, Q_BY_KEY, 3), in->product_id) == 0 &&
                shop_sql_int(&o->st, Q_BY_KEY, 4) == in->qty &&
                shop_sql_int(&o->st, Q_BY_KEY, 5) == in->amount_cents;
    shop_sql_reset(&o->st, Q_BY_KEY);
    if (!same)
        return reply_with(reply, "", SHOP_REFUSED,
                          "this idempotency_key was already used for a different order");
    return reply_with(reply, id, state, "");
}

/* Starts the saga of a new order in the PlaceOrder transaction. In
 * choreography: OrderCreated and the delayed OrderDeadline. Orchestrated:
 * an instance of the saga, whose commands carry OrderCreated's fields (the
 * participants decode them with the generated decoders) and whose steps
 * time out after deadline_ms. */
static choreo_status start_saga(struct order_svc *o, choreo_tx *tx, const shop_order_created *ev)
{
    if (o->style == SHOP_STYLE_CHOREOGRAPHY) {
        shop_order_deadline dl;
        shop_order_deadline_init(&dl);
        dl.order_id = ev->order_id;
        choreo_status s = shop_emit_order_created(tx, ev->order_id, ev, NULL);
        return s != CHOREO_OK ? s
                              : shop_emit_order_deadline_after(tx, o->deadline_ms, ev->order_id,
                                                               &dl, NULL);
    }
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 1024);
    choreo_status s = shop_order_created_encode(ev, &w);
    if (s == CHOREO_OK)
        s = choreo_tx_saga_start(tx, SHOP_SAGA, ev->order_id, w.buf, w.len);
    choreo_mp_writer_free(&w);
    return s;
}

static choreo_result place_order(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                                 void *user)
{
    struct order_svc *o = user;
    shop_db db = shop_tx_db(tx);
    shop_place_order in;
    char err[256];
    if (shop_place_order_decode(&in, req, len, err, sizeof err) != CHOREO_OK)
        return reply_with(reply, "", SHOP_REFUSED, err);
    choreo_result res;
    const char *bad = invalid_order(&in);
    if (bad) {
        res = reply_with(reply, "", SHOP_REFUSED, bad);
        goto out;
    }
    int r = replay(o, db, &in, reply);
    if (r >= 0) {
        res = (choreo_result)r;
        goto out;
    }
    /* The order id is the saga id: every event of this order carries it. */
    char order_id[CHOREO_ID_SIZE];
    choreo_saga_new(order_id);
    int64_t points = in.amount_cents / 100;
    res = CHOREO_RETRY;
    if (shop_sql(&o->st, db, Q_INSERT_ORDER,
                 "INSERT INTO orders(order_id, user_id, product_id, qty, amount_cents, points, "
                 "state, created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', ?7)",
                 "tttiiii", order_id, in.user_id, in.product_id, (int64_t)in.qty, in.amount_cents,
                 points, shop_now_us()) != SQLITE_DONE ||
        shop_sql(&o->st, db, Q_INSERT_KEY,
                 "INSERT INTO order_keys(idempotency_key, order_id) VALUES (?1, ?2)", "tt",
                 in.idempotency_key, order_id) != SQLITE_DONE)
        goto out;
    shop_order_created ev;
    shop_order_created_init(&ev);
    ev.order_id = order_id;
    ev.user_id = in.user_id;
    ev.product_id = in.product_id;
    ev.qty = in.qty;
    ev.amount_cents = in.amount_cents;
    ev.points = points;
    if (start_saga(o, tx, &ev) != CHOREO_OK) {
        shop_log(SHOP_ERROR, "cannot start the saga", "order=%s err=\"%s\"", order_id,
                 choreo_last_error());
        goto out;
    }
    res = reply_with(reply, order_id, SHOP_PENDING, "");
out:
    shop_place_order_free(&in);
    return res;
}

/* Moves a PENDING order to its final state and emits the event that tells
 * the other services (the order id is the saga id); an order already final
 * is left alone, so that of several failure events (or a failure and the
 * deadline) only the first one cancels. */
static choreo_result finish(struct order_svc *o, choreo_tx *tx, const char *order_id,
                            bool completed, shop_reason reason, const char *detail)
{
    shop_db db = shop_tx_db(tx);
    const char *code = completed ? "" : shop_reason_name(reason);
    if (shop_sql(&o->st, db, Q_FINISH,
                 "UPDATE orders SET state = ?2, reason = ?3, detail = ?4, finished_us = ?5 "
                 "WHERE order_id = ?1 AND state = 'PENDING'",
                 "tttti", order_id,
                 completed ? SHOP_COMPLETED : SHOP_CANCELLED, code, detail,
                 shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    if (shop_sql_changes(&o->st) == 0) {
        int rc = shop_sql(&o->st, db, Q_STATE, "SELECT state FROM orders WHERE order_id = ?1",
                          "t", order_id);
        if (rc == SQLITE_ROW) {
            shop_log(SHOP_DEBUG, "order already final; event ignored", "order=%s state=%s",
                     order_id, shop_sql_text(&o->st, Q_STATE, 0));
            shop_sql_reset(&o->st, Q_STATE);
            return CHOREO_DONE;
        }
        if (rc != SQLITE_DONE)
            return CHOREO_RETRY;
        return shop_reject(tx, "no order %s in this service", order_id);
    }
    /* The saga's outcome for the metrics, counted when this commits. */
    choreo_status s = choreo_tx_saga_end(tx, order_id,
                                         completed                        ? CHOREO_SAGA_COMPLETED
                                         : reason == SHOP_REASON_DEADLINE ? CHOREO_SAGA_TIMED_OUT
                                                                          : CHOREO_SAGA_CANCELLED,
                                         code);
    if (s != CHOREO_OK) {
        shop_log(SHOP_ERROR, "cannot record the saga's end", "order=%s err=\"%s\"", order_id,
                 choreo_last_error());
        return CHOREO_RETRY;
    }
    if (completed) {
        shop_order_completed ev;
        shop_order_completed_init(&ev);
        ev.order_id = order_id;
        s = shop_emit_order_completed(tx, order_id, &ev, NULL);
    } else {
        char why[256];
        snprintf(why, sizeof why, "%s: %.200s", code, detail);
        shop_order_cancelled ev;
        shop_order_cancelled_init(&ev);
        ev.order_id = order_id;
        ev.reason = why;
        s = shop_emit_order_cancelled(tx, order_id, &ev, NULL);
    }
    if (s != CHOREO_OK) {
        shop_log(SHOP_ERROR, "cannot emit", "order=%s err=\"%s\"", order_id, choreo_last_error());
        return CHOREO_RETRY;
    }
    return CHOREO_DONE;
}

static choreo_result on_stock_rejected(choreo_tx *tx, const choreo_event *meta,
                                       const shop_stock_rejected *v, void *user)
{
    return finish(user, tx, v->order_id, false, SHOP_REASON_STOCK, v->reason);
}

static choreo_result on_payment_rejected(choreo_tx *tx, const choreo_event *meta,
                                         const shop_payment_rejected *v, void *user)
{
    return finish(user, tx, v->order_id, false, SHOP_REASON_PAYMENT, v->reason);
}

static choreo_result on_points_rejected(choreo_tx *tx, const choreo_event *meta,
                                        const shop_points_rejected *v, void *user)
{
    return finish(user, tx, v->order_id, false, SHOP_REASON_POINTS, v->reason);
}

static choreo_result on_deadline(choreo_tx *tx, const choreo_event *meta,
                                 const shop_order_deadline *v, void *user)
{
    return finish(user, tx, v->order_id, false, SHOP_REASON_DEADLINE,
                  "the saga did not finish before its deadline");
}

static choreo_result on_points_awarded(choreo_tx *tx, const choreo_event *meta,
                                       const shop_points_awarded *v, void *user)
{
    return finish(user, tx, v->order_id, true, SHOP_REASON_COUNT, "");
}

/* The end of an orchestrated order saga, in the transaction that ends its
 * instance: the order's outcome, from the reply that failed a step or from
 * the step's timeout. The orchestrator has already run the compensations,
 * so OrderCancelled only announces the outcome here: no participant of
 * these styles handles it (and were one to, the barrier would make its
 * second compensation a no-op). OrderCompleted settles the stock and the
 * payment in the orchestrated style; in tcc the confirms have settled
 * them and it only announces the outcome too. */
static choreo_result on_saga_end(choreo_tx *tx, const choreo_saga_info *info, void *user)
{
    static const struct {
        const char *type;
        shop_reason reason;
    } failures[] = { { SHOP_STOCK_REJECTED_TYPE, SHOP_REASON_STOCK },
                     { SHOP_PAYMENT_REJECTED_TYPE, SHOP_REASON_PAYMENT },
                     { SHOP_POINTS_REJECTED_TYPE, SHOP_REASON_POINTS } };
    if (info->completed)
        return finish(user, tx, info->saga, true, SHOP_REASON_COUNT, "");
    char detail[300] = "";
    if (info->timed_out) {
        snprintf(detail, sizeof detail, "step %s had no answer in time",
                 info->failed_step ? info->failed_step : "?");
        return finish(user, tx, info->saga, false, SHOP_REASON_DEADLINE, detail);
    }
    for (size_t i = 0; i < sizeof failures / sizeof failures[0]; i++) {
        if (strcmp(info->failure_type, failures[i].type) != 0)
            continue;
        /* Every rejection carries {order_id, reason}. */
        char err[200];
        shop_field f[] = { SHOP_FIELD_STR("reason", detail, false) };
        if (shop_msg_decode(info->failure_data, info->failure_len, f, 1, err, sizeof err) !=
            CHOREO_OK)
            snprintf(detail, sizeof detail, "(the reason could not be read: %s)", err);
        return finish(user, tx, info->saga, false, failures[i].reason, detail);
    }
    return shop_reject(tx, "saga %s failed on %s with %s, which is no rejection of the shop",
                       info->saga, info->failed_step ? info->failed_step : "?",
                       info->failure_type);
}

/* GetOrder {order_id} or {idempotency_key} -> {found, order_id, state,
 * reason, detail}: for clients and people, not used by the saga. */
static choreo_result get_order(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                               void *user)
{
    struct order_svc *o = user;
    char id[80] = "", key[80] = "", err[200];
    shop_field in[] = { SHOP_FIELD_STR("order_id", id, false),
                        SHOP_FIELD_STR("idempotency_key", key, false) };
    char state[20] = "", reason[40] = "", detail[300] = "";
    bool found = false;
    if (shop_msg_decode(req, len, in, 2, err, sizeof err) == CHOREO_OK) {
        int rc = shop_sql(&o->st, shop_tx_db(tx), Q_GET,
                          "SELECT order_id, state, reason, detail FROM orders "
                          "WHERE order_id = ?1 OR order_id = "
                          "(SELECT order_id FROM order_keys WHERE idempotency_key = ?2)",
                          "tt", id, key);
        if (rc == SQLITE_ROW) {
            found = true;
            snprintf(id, sizeof id, "%s", shop_sql_text(&o->st, Q_GET, 0));
            snprintf(state, sizeof state, "%s", shop_sql_text(&o->st, Q_GET, 1));
            snprintf(reason, sizeof reason, "%s", shop_sql_text(&o->st, Q_GET, 2));
            snprintf(detail, sizeof detail, "%s", shop_sql_text(&o->st, Q_GET, 3));
            shop_sql_reset(&o->st, Q_GET);
        } else if (rc != SQLITE_DONE) {
            return CHOREO_RETRY;
        }
    } else {
        snprintf(detail, sizeof detail, "%s", err);
    }
    shop_field out[] = { SHOP_FIELD_BOOL("found", &found, false),
                         SHOP_FIELD_STR("order_id", id, false),
                         SHOP_FIELD_STR("state", state, false),
                         SHOP_FIELD_STR("reason", reason, false),
                         SHOP_FIELD_STR("detail", detail, false) };
    return shop_msg_reply(reply, out, 5);
}

/* The saga "order", orchestrated: stock, then payment, then points, each
 * compensated in reverse order when a later one fails or times out. */
static choreo_status define_orchestration(choreo_saga_def *def, int64_t timeout_ms)
{
    const choreo_saga_step_spec steps[] = {
        { .name = SHOP_STEP_RESERVE, .state = SHOP_STATE_STOCK,
          .command = SHOP_RESERVE_STOCK_TYPE, .success = SHOP_STOCK_RESERVED_TYPE,
          .failure = SHOP_STOCK_REJECTED_TYPE, .timeout_ms = timeout_ms,
          .compensate = SHOP_RELEASE_STOCK_TYPE, .compensated = SHOP_STOCK_RELEASED_TYPE },
        { .name = SHOP_STEP_FREEZE, .state = SHOP_STATE_PAYMENT,
          .command = SHOP_AUTHORIZE_PAYMENT_TYPE, .success = SHOP_PAYMENT_AUTHORIZED_TYPE,
          .failure = SHOP_PAYMENT_REJECTED_TYPE, .timeout_ms = timeout_ms,
          .compensate = SHOP_UNFREEZE_PAYMENT_TYPE, .compensated = SHOP_PAYMENT_UNFROZEN_TYPE },
        { .name = SHOP_STEP_AWARD, .state = SHOP_STATE_POINTS,
          .command = SHOP_AWARD_POINTS_TYPE, .success = SHOP_POINTS_AWARDED_TYPE,
          .failure = SHOP_POINTS_REJECTED_TYPE, .timeout_ms = timeout_ms,
          .compensate = SHOP_REVOKE_POINTS_TYPE, .compensated = SHOP_POINTS_REVOKED_TYPE },
    };
    choreo_status s = CHOREO_OK;
    for (size_t i = 0; s == CHOREO_OK && i < sizeof steps / sizeof steps[0]; i++)
        s = choreo_saga_step(def, &steps[i]);
    return s;
}

/* The saga "order" in TCC: the points first (a compensable step, so that a
 * customer without points is refused before anything is held), then the
 * stock and the payment tried at once, and confirmed together (sold,
 * captured) or cancelled together (released, unfrozen, points revoked). */
static choreo_status define_tcc(choreo_saga_def *def, int64_t timeout_ms)
{
    const choreo_saga_step_spec points = {
        .name = SHOP_STEP_AWARD, .state = SHOP_STATE_POINTS, .command = SHOP_AWARD_POINTS_TYPE,
        .success = SHOP_POINTS_AWARDED_TYPE, .failure = SHOP_POINTS_REJECTED_TYPE,
        .timeout_ms = timeout_ms, .compensate = SHOP_REVOKE_POINTS_TYPE,
        .compensated = SHOP_POINTS_REVOKED_TYPE
    };
    const choreo_saga_step_spec group[] = {
        { .name = SHOP_STEP_RESERVE, .state = SHOP_STATE_TCC_STOCK,
          .command = SHOP_TRY_RESERVE_STOCK_TYPE, .success = SHOP_STOCK_RESERVED_TYPE,
          .failure = SHOP_STOCK_REJECTED_TYPE, .timeout_ms = timeout_ms,
          .compensate = SHOP_CANCEL_STOCK_TYPE, .compensated = SHOP_STOCK_RELEASED_TYPE,
          .confirm = SHOP_CONFIRM_STOCK_TYPE, .confirmed = SHOP_STOCK_CONFIRMED_TYPE },
        { .name = SHOP_STEP_FREEZE, .state = SHOP_STATE_TCC_FUNDS,
          .command = SHOP_TRY_FREEZE_FUNDS_TYPE, .success = SHOP_PAYMENT_AUTHORIZED_TYPE,
          .failure = SHOP_PAYMENT_REJECTED_TYPE, .timeout_ms = timeout_ms,
          .compensate = SHOP_CANCEL_FUNDS_TYPE, .compensated = SHOP_PAYMENT_UNFROZEN_TYPE,
          .confirm = SHOP_CONFIRM_FUNDS_TYPE, .confirmed = SHOP_FUNDS_CONFIRMED_TYPE },
    };
    choreo_status s = choreo_saga_step(def, &points);
    return s != CHOREO_OK ? s : choreo_saga_tcc(def, SHOP_STATE_CONFIRMED, group, 2);
}

static choreo_status register_handlers(choreo_service *svc, shop_style style, void *user)
{
    struct order_svc *o = user;
    o->style = style;
    choreo_status s;
    if ((s = choreo_service_on_request(svc, SHOP_RQ_PLACE_ORDER, place_order, user)) ||
        (s = choreo_service_on_request(svc, SHOP_RQ_GET_ORDER, get_order, user)))
        return s;
    if (style == SHOP_STYLE_CHOREOGRAPHY) {
        if ((s = shop_on_stock_rejected(svc, on_stock_rejected, user)) ||
            (s = shop_on_payment_rejected(svc, on_payment_rejected, user)) ||
            (s = shop_on_points_rejected(svc, on_points_rejected, user)) ||
            (s = shop_on_points_awarded(svc, on_points_awarded, user)) ||
            (s = shop_on_order_deadline(svc, on_deadline, user)))
            return s;
        return CHOREO_OK;
    }
    /* Orchestrated: the framework handles the replies and the timeouts of
     * the saga's definition, and calls on_saga_end. */
    choreo_saga_def *def = NULL;
    if ((s = choreo_service_saga(svc, SHOP_SAGA, SHOP_STATE_CREATED, on_saga_end, user, &def)))
        return s;
    return style == SHOP_STYLE_TCC ? define_tcc(def, o->deadline_ms)
                                   : define_orchestration(def, o->deadline_ms);
}

static int flag(int argc, char **argv, int *i, void *user)
{
    struct order_svc *o = user;
    const char *v;
    int r = shop_flag_value("--deadline-ms", argc, argv, i, &v);
    if (r <= 0)
        return r;
    return shop_parse_i64("--deadline-ms", v, 1, INT64_C(86400000), &o->deadline_ms) ? 1 : -1;
}

static void cleanup(void *user)
{
    shop_stmts_clear(&((struct order_svc *)user)->st);
}

int main(int argc, char **argv)
{
    struct order_svc o = { .deadline_ms = 30000 };
    shop_service_def def = {
        .name = "order",
        .schema_sql = SCHEMA,
        .usage = "  --deadline-ms N   choreography: an order still PENDING N ms after it was\n"
                 "                    placed is cancelled; orchestration and tcc: a step\n"
                 "                    unanswered for N ms is compensated [30000]\n",
        .flags = (const char *const[]){ "--deadline-ms", NULL },
        .flag = flag,
        .register_handlers = register_handlers,
        .cleanup = cleanup,
        .user = &o,
    };
    return shop_service_main(&def, argc, argv);
}
