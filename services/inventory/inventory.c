/* shop-inventory: the stock of the shop demo. OrderCreated tries the order
 * by reserving stock (available -> reserved) and answers StockReserved or
 * StockRejected; OrderCompleted confirms (reserved -> sold); OrderCancelled
 * releases the reservation, behind the saga barrier so that a cancellation
 * arriving before the reservation makes the late reservation a no-op. */
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

static choreo_result reject(struct inventory_svc *inv, choreo_tx *tx, const shop_order_created *v,
                            const char *reason)
{
    if (shop_sql(&inv->st, choreo_tx_db(tx), Q_INSERT,
                 "INSERT INTO reservations(order_id, product_id, qty, state, reason, updated_us) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 "ttitti", v->order_id, v->product_id, (int64_t)v->qty, "REJECTED", reason,
                 shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    shop_stock_rejected out;
    shop_stock_rejected_init(&out);
    out.order_id = v->order_id;
    out.reason = reason;
    return shop_emit_stock_rejected(tx, NULL, &out, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                       : CHOREO_RETRY;
}

/* Try: reserve qty of the product for the order. */
static choreo_result on_order_created(choreo_tx *tx, const choreo_event *meta,
                                      const shop_order_created *v, void *user)
{
    struct inventory_svc *inv = user;
    sqlite3 *db = choreo_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_RESERVE, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run) {
        shop_log(SHOP_INFO, "reservation skipped: the order was cancelled first",
                 "order=%s", v->order_id);
        return CHOREO_DONE;
    }
    if (v->qty < 1)
        return reject(inv, tx, v, "invalid quantity");
    int rc = shop_sql(&inv->st, db, Q_PRODUCT,
                      "SELECT available FROM products WHERE product_id = ?1", "t", v->product_id);
    if (rc == SQLITE_DONE)
        return reject(inv, tx, v, "unknown product");
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    int64_t available = sqlite3_column_int64(shop_sql_stmt(&inv->st, Q_PRODUCT), 0);
    shop_sql_reset(&inv->st, Q_PRODUCT);
    if (available < v->qty)
        return reject(inv, tx, v, "out of stock");
    if (shop_sql(&inv->st, db, Q_RESERVE,
                 "UPDATE products SET available = available - ?2, reserved = reserved + ?2 "
                 "WHERE product_id = ?1",
                 "ti", v->product_id, (int64_t)v->qty) != SQLITE_DONE ||
        shop_sql(&inv->st, db, Q_INSERT,
                 "INSERT INTO reservations(order_id, product_id, qty, state, reason, updated_us) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 "ttitti", v->order_id, v->product_id, (int64_t)v->qty, "RESERVED", "",
                 shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    shop_stock_reserved out;
    shop_stock_reserved_init(&out);
    out.order_id = v->order_id;
    out.user_id = v->user_id;
    out.product_id = v->product_id;
    out.qty = v->qty;
    out.amount_cents = v->amount_cents;
    out.points = v->points;
    return shop_emit_stock_reserved(tx, NULL, &out, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                       : CHOREO_RETRY;
}

/* Reads the order's reservation. Returns SQLITE_ROW with product, qty and
 * state filled, SQLITE_DONE when there is none, or an error. */
static int reservation(struct inventory_svc *inv, sqlite3 *db, const char *order_id,
                       char product[80], int64_t *qty, char state[16])
{
    int rc = shop_sql(&inv->st, db, Q_RES_GET,
                      "SELECT product_id, qty, state FROM reservations WHERE order_id = ?1", "t",
                      order_id);
    if (rc != SQLITE_ROW)
        return rc;
    sqlite3_stmt *s = shop_sql_stmt(&inv->st, Q_RES_GET);
    snprintf(product, 80, "%s", (const char *)sqlite3_column_text(s, 0));
    *qty = sqlite3_column_int64(s, 1);
    snprintf(state, 16, "%s", (const char *)sqlite3_column_text(s, 2));
    shop_sql_reset(&inv->st, Q_RES_GET);
    return rc;
}

static bool set_state(struct inventory_svc *inv, sqlite3 *db, const char *order_id,
                      const char *state)
{
    return shop_sql(&inv->st, db, Q_RES_SET,
                    "UPDATE reservations SET state = ?2, updated_us = ?3 WHERE order_id = ?1",
                    "tti", order_id, state, shop_now_us()) == SQLITE_DONE;
}

/* Cancel: give the reserved stock back. The barrier makes this run at most
 * once, and not at all when the reservation never ran. */
static choreo_result on_order_cancelled(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_cancelled *v, void *user)
{
    struct inventory_svc *inv = user;
    sqlite3 *db = choreo_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_RESERVE, CHOREO_BARRIER_COMPENSATION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    char product[80], state[16];
    int64_t qty;
    int rc = reservation(inv, db, v->order_id, product, &qty, state);
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "REJECTED") == 0))
        return CHOREO_DONE; /* nothing was reserved */
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (strcmp(state, "RESERVED") != 0) {
        return shop_reject(tx, "order %s is cancelled but its reservation is %s, not RESERVED",
                           v->order_id, state);
    }
    if (shop_sql(&inv->st, db, Q_RELEASE,
                 "UPDATE products SET available = available + ?2, reserved = reserved - ?2 "
                 "WHERE product_id = ?1",
                 "ti", product, qty) != SQLITE_DONE ||
        !set_state(inv, db, v->order_id, "RELEASED"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Confirm: the reserved stock is sold. */
static choreo_result on_order_completed(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_completed *v, void *user)
{
    struct inventory_svc *inv = user;
    sqlite3 *db = choreo_tx_db(tx);
    char product[80], state[16];
    int64_t qty;
    int rc = reservation(inv, db, v->order_id, product, &qty, state);
    if (rc == SQLITE_ROW && strcmp(state, "SOLD") == 0)
        return CHOREO_DONE;
    if (rc == SQLITE_DONE || (rc == SQLITE_ROW && strcmp(state, "RESERVED") != 0)) {
        return shop_reject(tx, "order %s is completed but its reservation is %s, not RESERVED",
                           v->order_id, rc == SQLITE_ROW ? state : "missing");
    }
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    if (shop_sql(&inv->st, db, Q_SELL,
                 "UPDATE products SET reserved = reserved - ?2, sold = sold + ?2 "
                 "WHERE product_id = ?1",
                 "ti", product, qty) != SQLITE_DONE ||
        !set_state(inv, db, v->order_id, "SOLD"))
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Restock {ref, product_id, qty} -> {ok, available, error}: adds stock,
 * once per ref (a retried request with the same ref changes nothing). */
static choreo_result restock(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    struct inventory_svc *inv = user;
    sqlite3 *db = choreo_tx_db(tx);
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
                          "INSERT OR IGNORE INTO restocks(ref, product_id, qty, at_us) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          "ttii", ref, product, qty, shop_now_us());
        if (rc != SQLITE_DONE)
            return CHOREO_RETRY;
        if (sqlite3_changes(db) == 1 &&
            shop_sql(&inv->st, db, Q_RESTOCK_ADD,
                     "INSERT INTO products(product_id, available, reserved, sold) "
                     "VALUES (?1, ?2, 0, 0) ON CONFLICT (product_id) "
                     "DO UPDATE SET available = available + excluded.available",
                     "ti", product, qty) != SQLITE_DONE)
            return CHOREO_RETRY;
        rc = shop_sql(&inv->st, db, Q_RESTOCK_PRODUCT,
                      "SELECT available FROM products WHERE product_id = ?1", "t", product);
        if (rc == SQLITE_ROW) {
            available = sqlite3_column_int64(shop_sql_stmt(&inv->st, Q_RESTOCK_PRODUCT), 0);
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

static choreo_status register_handlers(choreo_service *svc, void *user)
{
    choreo_status s;
    if ((s = shop_on_order_created(svc, on_order_created, user)) ||
        (s = shop_on_order_cancelled(svc, on_order_cancelled, user)) ||
        (s = shop_on_order_completed(svc, on_order_completed, user)) ||
        (s = choreo_service_on_request(svc, SHOP_RQ_RESTOCK, restock, user)))
        return s;
    return CHOREO_OK;
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
