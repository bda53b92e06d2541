/* shop-inventory: the stock of the shop demo. Its step reserve-stock
 * reserves stock (available -> reserved) and answers StockReserved or
 * StockRejected; its compensation releases the reservation, behind the saga
 * barrier so that a cancellation arriving before the reservation makes the
 * late reservation a no-op; its confirmation sells (reserved -> sold). One
 * function each, called by the handlers of the style the service runs:
 * choreography (OrderCreated, OrderCancelled, OrderCompleted), orchestration
 * (ReserveStock, ReleaseStock, OrderCompleted) or tcc (TryReserveStock,
 * CancelStock, ConfirmStock). */
#include <stdio.h>
#include <string.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"
#include "shop_svc.h"

/* available + reserved + sold of a product always equals the sum of its
 * restocks; reserved equals the qty of its RESERVED reservations. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS products("
    "  product_id TEXT PRIMARY KEY,"
    "  available INTEGER NOT NULL CHECK (available >= 0),"
    "  reserved INTEGER NOT NULL CHECK (reserved >= 0),"
    "  sold INTEGER NOT NULL CHECK (sold >= 0));"
    "CREATE TABLE IF NOT EXISTS restocks("
    "  ref TEXT PRIMARY KEY,"
    "  product_id TEXT NOT NULL,"
    "  qty INTEGER NOT NULL CHECK (qty > 0),"
    "  at_us INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS reservations("
    "  order_id TEXT PRIMARY KEY,"
    "  product_id TEXT NOT NULL,"
    "  qty INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('RESERVED', 'SOLD', 'RELEASED', 'REJECTED')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  updated_us INTEGER NOT NULL);";

enum { Q_PRODUCT, Q_RESERVE, Q_INSERT, Q_RES_GET, Q_RES_SET, Q_RELEASE, Q_SELL, Q_RESTOCK_REF,
       Q_RESTOCK_ADD, Q_RESTOCK_PRODUCT };

struct inventory_svc {
    shop_stmts st;
};

/* ---- The business: one function per step, the same in every style ---- */

static bool record(struct inventory_svc *inv, shop_db db, const shop_order_ref *o,
                   const char *state, const char *reason)
{
    return shop_sql(&inv->st, db, Q_INSERT,
                    "INSERT INTO reservations(order_id, product_id, qty, state, reason, "
                    "updated_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    "ttitti", o->order_id, o->product_id, (int64_t)o->qty, state, reason,
                    shop_now_us()) == SQLITE_DONE;
}

/* Step reserve-stock: moves qty of the product from available to reserved
 * for the order (*out SHOP_OUT_DONE), or records why not (SHOP_OUT_REFUSED
 * and *why). Behind the barrier: SHOP_OUT_SKIPPED when the step already ran
 * for this saga, or when its compensation got here first. */
static choreo_result reserve(struct inventory_svc *inv, choreo_tx *tx, const shop_order_ref *o,
                             shop_outcome *out, const char **why)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_RESERVE, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run) {
        shop_log(SHOP_INFO, "reservation skipped: the order was cancelled first",
                 "order=%s", o->order_id);
        *out = SHOP_OUT_SKIPPED;
        return CHOREO_DONE;
    }
    *out = SHOP_OUT_REFUSED;
    *why = NULL;
    int64_t available = 0;
    if (o->qty < 1) {
        *why = "invalid quantity";
    } else {
        int rc = shop_sql(&inv->st, db, Q_PRODUCT,
                          "SELECT available FROM products WHERE product_id = ?1", "t",
                          o->product_id);
        if (rc == SQLITE_DONE)
            *why = "unknown product";
        else if (rc != SQLITE_ROW)
            return CHOREO_RETRY;
        else
            available = shop_sql_int(&inv->st, Q_PRODUCT, 0);
        shop_sql_reset(&inv->st, Q_PRODUCT);
        if (!*why && available < o->qty)
            *why = "out of stock";
    }
    if (*why)
        return record(inv, db, o, "REJECTED", *why) ? CHOREO_DONE : CHOREO_RETRY;
    if (shop_sql(&inv->st, db, Q_RESERVE,
                 "UPDATE products SET available = available - ?2, reserved = reserved + ?2 "
                 "WHERE product_id = ?1",
                 "ti", o->product_id, (int64_t)o->qty) != SQLITE_DONE ||
        !record(inv, db, o, "RESERVED", ""))
        return CHOREO_RETRY;
    *out = SHOP_OUT_DONE;
    return CHOREO_DONE;
}

/* Reads the order's reservation. Returns SQLITE_ROW with product, qty and
 * state filled, SQLITE_DONE when there is none, or an error. */
static int reservation(struct inventory_svc *inv, shop_db db, const char *order_id,
                       char product[80], int64_t *qty, char state[16])
{
    int rc = shop_sql(&inv->st, db, Q_RES_GET,
                      "SELECT product_id, qty, state FROM reservations WHERE order_id = ?1", "t",
                      order_id);
    if (rc != SQLITE_ROW)
        return rc;
    snprintf(product, 80, "%s", shop_sql_text(&inv->st, Q_RES_GET, 0));
    *qty = shop_sql_int(&inv->st, Q_RES_GET, 1);
    snprintf(state, 16, "%s", shop_sql_text(&inv->st, Q_RES_GET, 2));
    shop_sql_reset(&inv->st, Q_RES_GET);
    return rc;
}

static bool set_state(struct inventory_svc *inv, shop_db db, const char *order_id,
                      const char *state)
{
    return shop_sql(&inv->st, db, Q_RES_SET,
                    "UPDATE reservations SET state = ?2, updated_us = ?3 WHERE order_id = ?1",
                    "tti", order_id, state, shop_now_us()) == SQLITE_DONE;
}

/* Compensation of reserve-stock: gives the reserved stock back. The barrier
 * makes this run at most once, and not at all when the reservation never
 * ran; either way the compensation is done when this returns CHOREO_DONE. */
static choreo_result release(struct inventory_svc *inv, choreo_tx *tx, const char *order_id)
{
    shop_db db = shop_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_RESERVE, CHOREO_BARRIER_COMPENSATION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    char product[80], state[16];
    int64_t qty;
    int rc = reservation(inv, db, order_id, product, &qty, state);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "REJECTED") == 0))
        return CHOREO_DONE; /* nothing was reserved */
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (strcmp(state, "RESERVED") != 0) {
        return shop_reject(tx, "order %s is cancelled but its reservation is %s, not RESERVED",
                           order_id, state);
    }
    if (shop_sql(&inv->st, db, Q_RELEASE,
                 "UPDATE products SET available = available + ?2, reserved = reserved - ?2 "
                 "WHERE product_id = ?1",
                 "ti", product, qty) != SQLITE_DONE ||
        !set_state(inv, db, order_id, "RELEASED"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Confirm: the reserved stock is sold. Selling a sold reservation again
 * changes nothing. */
static choreo_result sell(struct inventory_svc *inv, choreo_tx *tx, const char *order_id)
{
    shop_db db = shop_tx_db(tx);
    char product[80], state[16];
    int64_t qty;
    int rc = reservation(inv, db, order_id, product, &qty, state);
    if (rc == SQLITE_ROW && strcmp(state, "SOLD") == 0)
        return CHOREO_DONE;
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "RESERVED") != 0)) {
        return shop_reject(tx, "order %s is completed but its reservation is %s, not RESERVED",
                           order_id, rc == SQLITE_ROW ? state : "missing");
    }
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (shop_sql(&inv->st, db, Q_SELL,
                 "UPDATE products SET reserved = reserved - ?2, sold = sold + ?2 "
                 "WHERE product_id = ?1",
                 "ti", product, qty) != SQLITE_DONE ||
        !set_state(inv, db, order_id, "SOLD"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Reserves and answers with StockReserved or StockRejected, the reply of
 * the step in every style. A skipped reservation is answered (as rejected)
 * only with answer_skipped: an orchestrator waits for an answer to each
 * command it sends, while in choreography nobody waits for a step the
 * cancellation overtook. */
static choreo_result reserve_and_answer(struct inventory_svc *inv, choreo_tx *tx,
                                        const shop_order_ref *o, bool answer_skipped)
{
    shop_outcome out;
    const char *why = NULL;
    choreo_result r = reserve(inv, tx, o, &out, &why);
    if (r != CHOREO_DONE || (out == SHOP_OUT_SKIPPED && !answer_skipped))
        return r;
    choreo_status s;
    if (out == SHOP_OUT_DONE) {
        shop_stock_reserved yes;
        shop_stock_reserved_init(&yes);
        yes.order_id = o->order_id;
        yes.user_id = o->user_id;
        yes.product_id = o->product_id;
        yes.qty = o->qty;
        yes.amount_cents = o->amount_cents;
        yes.points = o->points;
        s = shop_emit_stock_reserved(tx, NULL, &yes, NULL);
    } else {
        shop_stock_rejected no;
        shop_stock_rejected_init(&no);
        no.order_id = o->order_id;
        no.reason = why ? why : "the order was cancelled before its stock was reserved";
        s = shop_emit_stock_rejected(tx, NULL, &no, NULL);
    }
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* Releases and answers with StockReleased, also when there was nothing to
 * release: the orchestrator waits for every compensation's answer. */
static choreo_result release_and_answer(struct inventory_svc *inv, choreo_tx *tx,
                                        const char *order_id)
{
    choreo_result r = release(inv, tx, order_id);
    if (r != CHOREO_DONE)
        return r;
    shop_stock_released done;
    shop_stock_released_init(&done);
    done.order_id = order_id;
    return shop_emit_stock_released(tx, NULL, &done, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                        : CHOREO_RETRY;
}

/* ---- Choreography: react to the order's events ---- */

static choreo_result on_order_created(choreo_tx *tx, const choreo_event *meta,
                                      const shop_order_created *v, void *user)
{
    return reserve_and_answer(user, tx, &SHOP_ORDER_REF(v), false);
}

static choreo_result on_order_cancelled(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_cancelled *v, void *user)
{
    return release(user, tx, v->order_id);
}

/* Also the orchestrated style's settlement: the order service emits
 * OrderCompleted when its saga completes. */
static choreo_result on_order_completed(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_completed *v, void *user)
{
    return sell(user, tx, v->order_id);
}

/* ---- Orchestration: the order service's commands ---- */

static choreo_result on_reserve_stock(choreo_tx *tx, const choreo_event *meta,
                                      const shop_reserve_stock *v, void *user)
{
    return reserve_and_answer(user, tx, &SHOP_ORDER_REF(v), true);
}

static choreo_result on_release_stock(choreo_tx *tx, const choreo_event *meta,
                                      const shop_release_stock *v, void *user)
{
    return release_and_answer(user, tx, v->order_id);
}

/* ---- TCC: try, confirm, cancel ---- */

static choreo_result on_try_reserve_stock(choreo_tx *tx, const choreo_event *meta,
                                          const shop_try_reserve_stock *v, void *user)
{
    return reserve_and_answer(user, tx, &SHOP_ORDER_REF(v), true);
}

/* The confirm is sent again until answered, so it is answered every time,
 * and sells once (its own barrier step). */
static choreo_result on_confirm_stock(choreo_tx *tx, const choreo_event *meta,
                                      const shop_confirm_stock *v, void *user)
{
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_RESERVE_CONFIRM, CHOREO_BARRIER_ACTION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    choreo_result r = run ? sell(user, tx, v->order_id) : CHOREO_DONE;
    if (r != CHOREO_DONE)
        return r;
    shop_stock_confirmed done;
    shop_stock_confirmed_init(&done);
    done.order_id = v->order_id;
    return shop_emit_stock_confirmed(tx, NULL, &done, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                         : CHOREO_RETRY;
}

static choreo_result on_cancel_stock(choreo_tx *tx, const choreo_event *meta,
                                     const shop_cancel_stock *v, void *user)
{
    return release_and_answer(user, tx, v->order_id);
}

/* Restock {ref, product_id, qty} -> {ok, available, error}: adds stock,
 * once per ref (a retried request with the same ref changes nothing). */
static choreo_result restock(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    struct inventory_svc *inv = user;
    shop_db db = shop_tx_db(tx);
    char ref[80] = "", product[80] = "", err[200] = "";
    int64_t qty = 0, available = 0;
    shop_field in[] = { SHOP_FIELD_STR("ref", ref, true),
                        SHOP_FIELD_STR("product_id", product, true),
                        SHOP_FIELD_I64("qty", &qty, true) };
    bool ok = false;
    if (shop_msg_decode(req, len, in, 3, err, sizeof err) != CHOREO_OK) {
        /* err says why */
    } else if (!ref[0] || !product[0] || qty < 1 || qty > INT64_C(1000000000)) {
        snprintf(err, sizeof err, "ref and product_id must not be empty, qty 1 to 10^9");
    } else {
        int rc = shop_sql(&inv->st, db, Q_RESTOCK_REF,
                          "INSERT INTO restocks(ref, product_id, qty, at_us) "
                          "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                          "ttii", ref, product, qty, shop_now_us());
        if (rc != SQLITE_DONE)
            return CHOREO_RETRY;
        if (shop_sql_changes(&inv->st) == 1 &&
            shop_sql(&inv->st, db, Q_RESTOCK_ADD,
                     "INSERT INTO products(product_id, available, reserved, sold) "
                     "VALUES (?1, ?2, 0, 0) ON CONFLICT (product_id) "
                     "DO UPDATE SET available = products.available + excluded.available",
                     "ti", product, qty) != SQLITE_DONE)
            return CHOREO_RETRY;
        rc = shop_sql(&inv->st, db, Q_RESTOCK_PRODUCT,
                      "SELECT available FROM products WHERE product_id = ?1", "t", product);
        if (rc == SQLITE_ROW) {
            available = shop_sql_int(&inv->st, Q_RESTOCK_PRODUCT, 0);
            shop_sql_reset(&inv->st, Q_RESTOCK_PRODUCT);
            ok = true;
        } else {
            snprintf(err, sizeof err, "ref %s was already used for another product", ref);
        }
    }
    shop_field out[] = { SHOP_FIELD_BOOL("ok", &ok, false),
                         SHOP_FIELD_I64("available", &available, false),
                         SHOP_FIELD_STR("error", err, false) };
    return shop_msg_reply(reply, out, 3);
}

static choreo_status register_handlers(choreo_service *svc, shop_style style, void *user)
{
    choreo_status s = choreo_service_on_request(svc, SHOP_RQ_RESTOCK, restock, user);
    if (s == CHOREO_OK && style == SHOP_STYLE_CHOREOGRAPHY &&
        ((s = shop_on_order_created(svc, on_order_created, user)) ||
         (s = shop_on_order_cancelled(svc, on_order_cancelled, user)) ||
         (s = shop_on_order_completed(svc, on_order_completed, user))))
        return s;
    /* The orchestrator has compensated before the order is cancelled, so
     * OrderCancelled is not handled here: only OrderCompleted settles. */
    if (s == CHOREO_OK && style == SHOP_STYLE_ORCHESTRATION &&
        ((s = shop_on_reserve_stock(svc, on_reserve_stock, user)) ||
         (s = shop_on_release_stock(svc, on_release_stock, user)) ||
         (s = shop_on_order_completed(svc, on_order_completed, user))))
        return s;
    /* The confirm settles, the cancel compensates: neither OrderCompleted
     * nor OrderCancelled is handled here. */
    if (s == CHOREO_OK && style == SHOP_STYLE_TCC &&
        ((s = shop_on_try_reserve_stock(svc, on_try_reserve_stock, user)) ||
         (s = shop_on_confirm_stock(svc, on_confirm_stock, user)) ||
         (s = shop_on_cancel_stock(svc, on_cancel_stock, user))))
        return s;
    return s;
}

static void cleanup(void *user)
{
    shop_stmts_clear(&((struct inventory_svc *)user)->st);
}

int main(int argc, char **argv)
{
    struct inventory_svc inv = { 0 };
    shop_service_def def = {
        .name = "inventory",
        .schema_sql = SCHEMA,
        .register_handlers = register_handlers,
        .cleanup = cleanup,
        .user = &inv,
    };
    return shop_service_main(&def, argc, argv);
}
