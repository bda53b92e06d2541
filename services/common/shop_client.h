/* A client of the shop services over NATS request/reply: place orders
 * (retrying with the same idempotency key, so a retry never makes a second
 * order), seed stock, money and points rules, read an order's state, and
 * ping a service. For the shop CLI, the demo and tests; not for handlers. */
#ifndef SHOP_CLIENT_H
#define SHOP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <choreo.h>

typedef struct shop_client shop_client;

/* Connects to url (comma-separated servers) for services using prefix
 * (NULL: "choreo"). Thread-safe once created: requests may be made from
 * several threads at once. Fails with CHOREO_ENOSERVER when no server
 * answers. */
CHOREO_WUR choreo_status shop_client_create(shop_client **out, const char *url, const char *prefix);

/* The same with a NATS user and password, a CA file that verifies the
 * server's TLS certificate (TLS is used when tls_ca is set), and the
 * subject prefix of the client's reply inboxes; each may be NULL. Fails
 * with CHOREO_EAUTH when the server refuses the credentials. */
CHOREO_WUR choreo_status shop_client_create_secure(shop_client **out, const char *url,
                                                   const char *prefix, const char *user,
                                                   const char *password, const char *tls_ca,
                                                   const char *inbox_prefix);
void shop_client_destroy(shop_client *c);

/* Makes every request in progress on c, in any thread, and every later one
 * fail at once (CHOREO_ESTATE), by closing the connection. For shutting
 * down a load quickly. Thread-safe. */
void shop_client_cancel(shop_client *c);

/* The outcome of a PlaceOrder request. */
typedef struct shop_placed {
    char order_id[80];  /* "" when refused */
    char status[24];    /* PENDING (or the order's state for a retried key), or REFUSED */
    char error[260];    /* why it was refused */
    int attempts;       /* requests sent, 1 when the first one was answered */
} shop_placed;

/* Places an order. Each request waits timeout_ms for its reply; a timeout,
 * no responders or an empty reply is retried with the same key, up to
 * attempts requests. A REFUSED answer is a success of this call (out says
 * why). Fails with CHOREO_ETIMEOUT when no attempt was answered. */
CHOREO_WUR choreo_status shop_client_place(shop_client *c, const char *idempotency_key,
                                           const char *user_id, const char *product_id, int32_t qty,
                                           int64_t amount_cents, int timeout_ms, int attempts,
                                           shop_placed *out);

/* Seeding, each idempotent: Restock adds qty once per ref; Deposit credits
 * once per ref and, when set_review, sets the account's review flag;
 * Enroll sets a points account's cap and opt-out. A refusal fails with
 * CHOREO_EINVAL and the service's reason in shop_client_last_error. */
CHOREO_WUR choreo_status shop_client_restock(shop_client *c, const char *ref,
                                             const char *product_id, int64_t qty);
CHOREO_WUR choreo_status shop_client_deposit(shop_client *c, const char *ref, const char *user_id,
                                             int64_t amount_cents, bool set_review, bool review);
CHOREO_WUR choreo_status shop_client_enroll(shop_client *c, const char *user_id, int64_t cap,
                                            bool no_points);

/* An order's state by order id or (when order_id is NULL) idempotency key. */
typedef struct shop_order_status {
    bool found;
    char order_id[80];
    char state[24];
    char reason[40];
    char detail[300];
} shop_order_status;
CHOREO_WUR choreo_status shop_client_get_order(shop_client *c, const char *order_id,
                                               const char *key, shop_order_status *out);

/* Sends Ping to a service until it answers or timeout_ms passes. */
CHOREO_WUR choreo_status shop_client_ping(shop_client *c, const char *service, int timeout_ms);

/* The last error of a failing shop_client call on this thread, as a
 * sentence naming what failed. Never NULL. */
const char *shop_client_last_error(void);

#endif
