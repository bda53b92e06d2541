/* Names the shop's services, tools and invariant checker agree on: order
 * states, cancellation reasons, saga styles, request names and step names. */
#ifndef SHOP_DOMAIN_H
#define SHOP_DOMAIN_H

#include <stdbool.h>
#include <string.h>

/* Order states (order.db, orders.state). */
#define SHOP_PENDING "PENDING"
#define SHOP_COMPLETED "COMPLETED"
#define SHOP_CANCELLED "CANCELLED"
#define SHOP_REFUSED "REFUSED" /* reply status of a refused PlaceOrder */

/* Why an order was cancelled (orders.reason, and the first word of
 * OrderCancelled.reason). Every failure path of the saga has one. */
typedef enum shop_reason {
    SHOP_REASON_STOCK = 0,    /* StockRejected: out of stock, unknown product */
    SHOP_REASON_PAYMENT = 1,  /* PaymentRejected: insufficient funds, unknown account */
    SHOP_REASON_POINTS = 2,   /* PointsRejected: opted out of points, cap reached */
    SHOP_REASON_DEADLINE = 3, /* OrderDeadline fired while the order was pending, or
                                 (orchestration, tcc) a step had no answer in time */
    SHOP_REASON_COUNT = 4,
} shop_reason;

/* "stock_rejected", "payment_rejected", "points_rejected", "deadline". */
static inline const char *shop_reason_name(shop_reason r)
{
    static const char *names[] = { "stock_rejected", "payment_rejected", "points_rejected",
                                   "deadline" };
    return (unsigned)r < SHOP_REASON_COUNT ? names[r] : "unknown";
}

/* How the services run the saga (the --style flag of every service and of
 * the demo). The same orders, business rules and invariants in each:
 *   choreography   each service reacts to the event before it (OrderCreated,
 *                  StockReserved, ...) and compensates on OrderCancelled
 *   orchestration  the order service owns the saga "order" and sends each
 *                  participant a command in turn (ReserveStock,
 *                  AuthorizePayment, AwardPoints), compensating in reverse
 *   tcc            the order service awards the points, then tries the stock
 *                  and the funds at once and confirms or cancels both */
typedef enum shop_style {
    SHOP_STYLE_CHOREOGRAPHY = 0,
    SHOP_STYLE_ORCHESTRATION = 1,
    SHOP_STYLE_TCC = 2,
    SHOP_STYLE_COUNT = 3,
} shop_style;

/* The accepted values, for error messages and help. */
#define SHOP_STYLES "choreography, orchestration or tcc"

/* "choreography", "orchestration", "tcc". */
static inline const char *shop_style_name(shop_style s)
{
    static const char *names[] = { "choreography", "orchestration", "tcc" };
    return (unsigned)s < SHOP_STYLE_COUNT ? names[s] : "unknown";
}

/* Parses a style name into *out; false (and *out unchanged) for any other text. */
static inline bool shop_style_parse(const char *text, shop_style *out)
{
    for (int i = 0; i < SHOP_STYLE_COUNT; i++) {
        if (text && strcmp(text, shop_style_name((shop_style)i)) == 0) {
            *out = (shop_style)i;
            return true;
        }
    }
    return false;
}

/* Request names: "<prefix>-rpc.<service>.<name>". */
#define SHOP_RQ_PLACE_ORDER "PlaceOrder" /* order: shop_place_order -> shop_place_order_reply */
#define SHOP_RQ_GET_ORDER "GetOrder"     /* order: {order_id | idempotency_key} -> status map */
#define SHOP_RQ_RESTOCK "Restock"        /* inventory: {ref, product_id, qty} */
#define SHOP_RQ_DEPOSIT "Deposit"        /* payment: {ref, user_id, amount_cents, review?} */
#define SHOP_RQ_ENROLL "Enroll"          /* points: {user_id, cap?, no_points?} */
#define SHOP_RQ_PING "Ping"              /* every service: "ok" once it serves */

/* Barrier step names of the forward steps that have compensations; in the
 * orchestrated and TCC styles also the names of the saga's steps. */
#define SHOP_STEP_RESERVE "reserve-stock"
#define SHOP_STEP_FREEZE "freeze-funds"
#define SHOP_STEP_AWARD "award-points"
/* Barrier steps of the TCC confirms ("<step>.confirm"). */
#define SHOP_STEP_RESERVE_CONFIRM "reserve-stock.confirm"
#define SHOP_STEP_FREEZE_CONFIRM "freeze-funds.confirm"

/* The orchestrated saga of the order service, and its states: the initial
 * one, then one per step done (orchestration: stock, payment, points; tcc:
 * points, then the group of stock and payment once both are confirmed). */
#define SHOP_SAGA "order"
#define SHOP_STATE_CREATED "ORDER_CREATED"
#define SHOP_STATE_STOCK "INVENTORY_DEDUCTED"
#define SHOP_STATE_PAYMENT "PAYMENT_COMPLETED"
#define SHOP_STATE_POINTS "POINTS_ADDED"
#define SHOP_STATE_TCC_STOCK "STOCK_RESERVED" /* tcc: a try done */
#define SHOP_STATE_TCC_FUNDS "FUNDS_FROZEN"
#define SHOP_STATE_CONFIRMED "STOCK_AND_PAYMENT_CONFIRMED" /* tcc: both confirmed */

#endif
