/* Names the shop's services, tools and invariant checker agree on: order
 * states, cancellation reasons, request names and row states. */
#ifndef SHOP_DOMAIN_H
#define SHOP_DOMAIN_H

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
    SHOP_REASON_DEADLINE = 3, /* OrderDeadline fired while the order was pending */
    SHOP_REASON_COUNT = 4,
} shop_reason;

/* "stock_rejected", "payment_rejected", "points_rejected", "deadline". */
static inline const char *shop_reason_name(shop_reason r)
{
    static const char *names[] = { "stock_rejected", "payment_rejected", "points_rejected",
                                   "deadline" };
    return (unsigned)r < SHOP_REASON_COUNT ? names[r] : "unknown";
}

/* Request names: "<prefix>-rpc.<service>.<name>". */
#define SHOP_RQ_PLACE_ORDER "PlaceOrder" /* order: shop_place_order -> shop_place_order_reply */
#define SHOP_RQ_GET_ORDER "GetOrder"     /* order: {order_id | idempotency_key} -> status map */
#define SHOP_RQ_RESTOCK "Restock"        /* inventory: {ref, product_id, qty} */
#define SHOP_RQ_DEPOSIT "Deposit"        /* payment: {ref, user_id, amount_cents, review?} */
#define SHOP_RQ_ENROLL "Enroll"          /* points: {user_id, cap?, no_points?} */
#define SHOP_RQ_PING "Ping"              /* every service: "ok" once it serves */

/* Barrier step names of the forward steps that have compensations. */
#define SHOP_STEP_RESERVE "reserve-stock"
#define SHOP_STEP_FREEZE "freeze-funds"
#define SHOP_STEP_AWARD "award-points"

#endif
