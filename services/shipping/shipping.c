/* shipping: a service of its own next to the choreo shop demo, built only
 * from an installed choreo (header, pkg-config file and choreo-gen). It
 * notes every OrderCreated and OrderCompleted, and once it has both of an
 * order schedules one parcel and emits ShipmentScheduled. It has no idempotency code: choreo's
 * inbox applies each event once, whatever kills and redeliveries happen.
 *
 *   shipping --db shipping.db --nats-url nats://127.0.0.1:4222
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <choreo.h>

#include "shipping_events.h"
#include "shop_orders_events.h"

/* orders and completed get one row per event handled, with no key that
 * would hide a second delivery: choreo's inbox is what keeps them single. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS orders("
    "  order_id TEXT NOT NULL,"
    "  user_id TEXT NOT NULL,"
    "  product_id TEXT NOT NULL,"
    "  qty INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS completed(order_id TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS parcels("
    "  order_id TEXT NOT NULL,"
    "  scheduled_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);"
    "CREATE INDEX IF NOT EXISTS orders_id ON orders(order_id);"
    "CREATE INDEX IF NOT EXISTS completed_id ON completed(order_id);";

/* Runs one statement with text and integer parameters ("t" or "i" each);
 * returns sqlite3_step's result. */
static int run(sqlite3 *db, const char *sql, const char *kinds, ...)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return SQLITE_ERROR;
    va_list ap;
    va_start(ap, kinds);
    for (int i = 0; kinds[i]; i++) {
        if (kinds[i] == 't')
            sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(s, i + 1, va_arg(ap, long long));
    }
    va_end(ap);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc;
}

/* Schedules the parcel of order_id once both its OrderCreated and its
 * OrderCompleted are here. They come through two consumers, in either order;
 * handlers run one at a time, so exactly one of the two finds the other. */
static choreo_result ship_when_ready(choreo_tx *tx, const choreo_event *meta,
                                     const char *order_id)
{
    sqlite3 *db = choreo_tx_db(tx);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT o.user_id, o.product_id, o.qty FROM orders o"
                           " WHERE o.order_id = ?1"
                           " AND EXISTS (SELECT 1 FROM completed c WHERE c.order_id = ?1)",
                           -1, &q, NULL) != SQLITE_OK)
        return CHOREO_RETRY;
    sqlite3_bind_text(q, 1, order_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    choreo_result out = rc == SQLITE_DONE ? CHOREO_DONE : CHOREO_RETRY; /* not both yet */
    if (rc == SQLITE_ROW) {
        shipping_shipment_scheduled parcel;
        shipping_shipment_scheduled_init(&parcel);
        parcel.order_id = order_id;
        parcel.user_id = (const char *)sqlite3_column_text(q, 0);
        parcel.product_id = (const char *)sqlite3_column_text(q, 1);
        parcel.qty = sqlite3_column_int(q, 2);
        if (run(db, "INSERT INTO parcels(order_id) VALUES (?1)", "t", order_id) == SQLITE_DONE &&
            shipping_emit_shipment_scheduled(tx, meta->saga, &parcel, NULL) == CHOREO_OK)
            out = CHOREO_DONE;
    }
    sqlite3_finalize(q);
    return out;
}

static choreo_result on_order_created(choreo_tx *tx, const choreo_event *meta,
                                      const shop_orders_order_created *v, void *user)
{
    (void)user;
    if (run(choreo_tx_db(tx), "INSERT INTO orders VALUES (?1, ?2, ?3, ?4)", "ttti", v->order_id,
            v->user_id, v->product_id, (long long)v->qty) != SQLITE_DONE)
        return CHOREO_RETRY;
    return ship_when_ready(tx, meta, v->order_id);
}

static choreo_result on_order_completed(choreo_tx *tx, const choreo_event *meta,
                                        const shop_orders_order_completed *v, void *user)
{
    (void)user;
    if (run(choreo_tx_db(tx), "INSERT INTO completed VALUES (?1)", "t", v->order_id) !=
        SQLITE_DONE)
        return CHOREO_RETRY;
    return ship_when_ready(tx, meta, v->order_id);
}

int main(int argc, char **argv)
{
    choreo_config *cfg = NULL;
    choreo_service *svc = NULL;
    int rc = 1;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", "shipping") != CHOREO_OK ||
        choreo_config_set(cfg, "db", "shipping.db") != CHOREO_OK ||
        choreo_config_from_env(cfg) != CHOREO_OK ||
        choreo_config_from_args(cfg, &argc, argv) != CHOREO_OK) {
        fprintf(stderr, "shipping: %s\n", choreo_last_error());
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: shipping [choreo flags]\n\n"
                   "Schedules one parcel per completed order of the choreo shop.\n\n");
            choreo_config_print_help(cfg, stdout);
            rc = 0;
        } else {
            fprintf(stderr, "shipping: unexpected argument \"%s\" (see --help)\n", argv[i]);
        }
        goto out;
    }
    char *err = NULL;
    if (choreo_service_create(&svc, cfg) != CHOREO_OK) {
        fprintf(stderr, "shipping: %s\n", choreo_last_error());
        goto out;
    }
    /* The business tables, before the first handler runs. */
    choreo_tx *tx = NULL;
    if (choreo_service_begin(svc, &tx) != CHOREO_OK ||
        sqlite3_exec(choreo_tx_db(tx), SCHEMA, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "shipping: cannot create the tables: %s\n",
                err ? err : choreo_last_error());
        sqlite3_free(err);
        choreo_tx_rollback(tx);
        goto out;
    }
    if (choreo_tx_commit(tx) != CHOREO_OK ||
        shop_orders_on_order_created(svc, on_order_created, NULL) != CHOREO_OK ||
        shop_orders_on_order_completed(svc, on_order_completed, NULL) != CHOREO_OK ||
        choreo_service_run(svc) != CHOREO_OK) { /* until SIGINT or SIGTERM */
        fprintf(stderr, "shipping: %s\n", choreo_last_error());
        goto out;
    }
    rc = 0;
out:
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
    return rc;
}
