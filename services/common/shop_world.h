/* The demo's world and its load: which products, accounts and points rules
 * exist, and a deterministic mix of orders (from a seed) that goes down
 * every path of the saga:
 *   ok          a customer with money orders plentiful stock: COMPLETED
 *   sold_out    the "limited" product, stocked for half of these orders:
 *               the rest are cancelled as stock_rejected
 *   broke       a customer with almost no money: payment_rejected
 *   no_points   a customer who opted out of points: points_rejected, after
 *               stock was reserved and money frozen (both given back)
 *   review      a customer whose payments are held for review: nothing
 *               answers, the order's deadline cancels it
 * and a load generator that places the orders with bounded concurrency. */
#ifndef SHOP_WORLD_H
#define SHOP_WORLD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <choreo.h>

#include "shop_client.h"

typedef enum shop_kind {
    SHOP_KIND_OK,
    SHOP_KIND_SOLD_OUT,
    SHOP_KIND_BROKE,
    SHOP_KIND_NO_POINTS,
    SHOP_KIND_REVIEW,
    SHOP_KIND_COUNT,
} shop_kind;

const char *shop_kind_name(shop_kind k);

typedef struct shop_order_spec {
    char key[80];       /* idempotency key */
    char user[32];
    char product[32];
    int32_t qty;
    int64_t amount_cents;
    shop_kind kind;
    char order_id[80];  /* filled by the load generator */
} shop_order_spec;

typedef struct shop_world {
    char run[48];       /* names this world's keys and seeding refs */
    uint64_t seed;
    long norders;
    shop_order_spec *orders;
    long kinds[SHOP_KIND_COUNT];
    int nusers;         /* customers per kind */
} shop_world;

/* Plans a world for n orders (at least 1). The first orders take one of
 * each kind (so even a handful of orders covers every path), the rest are
 * drawn from seed. run (NULL: "demo") prefixes keys and refs. */
CHOREO_WUR choreo_status shop_world_plan(shop_world *w, long n, uint64_t seed, const char *run);
void shop_world_free(shop_world *w);

/* The unit price of a product of the demo, or 100 cents for others. */
int64_t shop_price_cents(const char *product);

/* Seeds stock, accounts and points rules through the services' requests.
 * Idempotent (refs carry the world's run name). */
CHOREO_WUR choreo_status shop_world_seed(const shop_world *w, shop_client *c);

typedef struct shop_load_opts {
    int concurrency;           /* requests in flight at most [32] */
    int timeout_ms;            /* per request [5000] */
    int attempts;              /* per order [10] */
    const atomic_bool *stop;   /* set to stop early; may be NULL */
    /* Optional saga window: when settled is not NULL, an order is placed
     * only while (orders placed or being placed) - settled(user) < window,
     * where settled counts the sagas that no longer load the services
     * (final ones, and those only waiting for their deadline). This keeps
     * the services at a sustainable load, so that latencies measure the
     * saga rather than a queue in front of it. */
    long window;
    long (*settled)(void *user);
    void *settled_user;
    /* Paced load: orders offered at this many per second, order i at
     * started + i / rate, whether earlier ones finished or not (an open
     * loop; the window is not used). 0: as fast as concurrency and window
     * allow. */
    double rate;
} shop_load_opts;

typedef struct shop_load_stats {
    atomic_long placed;        /* answered with an order id */
    atomic_long refused;       /* answered REFUSED */
    atomic_long failed;        /* never answered */
    atomic_long retried;       /* orders that needed more than one request */
    long replays, replays_same; /* idempotency: re-sent keys, same order id back */
    atomic_long late;          /* paced: orders sent more than 100 ms after their time */
    int64_t started_us, ended_us;
} shop_load_stats;

/* Places every order of w (filling order_id), concurrency requests at a
 * time, then re-sends every 25th key and counts how many got the same
 * order back. stats may be read by another thread while this runs. */
CHOREO_WUR choreo_status shop_world_load(shop_world *w, shop_client *c, const shop_load_opts *o,
                                         shop_load_stats *stats);

#endif
