/* The demo world: a plan drawn from a seed (splitmix64, so the same seed
 * gives the same orders everywhere), its seeding requests, and a load
 * generator of worker threads each with one request in flight. */
#include "shop_world.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *id;
    int64_t price;
} PRODUCTS[] = { { "apple", 120 }, { "pear", 90 }, { "plum", 150 }, { "limited", 999 } };
#define NPLENTY 3 /* the first three are plentiful */

static const char *KIND_NAMES[] = { "ok", "sold_out", "broke", "no_points", "review" };
static const char *USER_PREFIX[] = { "user", "user", "broke", "nopoints", "review" };

const char *shop_kind_name(shop_kind k)
{
    return (unsigned)k < SHOP_KIND_COUNT ? KIND_NAMES[k] : "unknown";
}

int64_t shop_price_cents(const char *product)
{
    for (size_t i = 0; i < sizeof PRODUCTS / sizeof PRODUCTS[0]; i++)
        if (strcmp(PRODUCTS[i].id, product) == 0)
            return PRODUCTS[i].price;
    return 100;
}

static uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Money of a customer who can pay for every order of the world. */
static int64_t rich(const shop_world *w)
{
    return (int64_t)w->norders * 3 * 1000 + 100000;
}

choreo_status shop_world_plan(shop_world *w, long n, uint64_t seed, const char *run)
{
    memset(w, 0, sizeof *w);
    if (n < 1)
        return CHOREO_EINVAL;
    w->orders = calloc((size_t)n, sizeof *w->orders);
    if (!w->orders)
        return CHOREO_ENOMEM;
    snprintf(w->run, sizeof w->run, "%s", run && *run ? run : "demo");
    w->seed = seed;
    w->norders = n;
    w->nusers = n / 50 < 2 ? 2 : n / 50 > 40 ? 40 : (int)(n / 50);
    uint64_t x = seed;
    for (long i = 0; i < n; i++) {
        shop_order_spec *o = &w->orders[i];
        shop_kind k;
        if (i < SHOP_KIND_COUNT) {
            k = (shop_kind)i;
        } else {
            unsigned r = (unsigned)(next(&x) % 100);
            k = r < 72 ? SHOP_KIND_OK : r < 79 ? SHOP_KIND_SOLD_OUT : r < 86 ? SHOP_KIND_BROKE
              : r < 93 ? SHOP_KIND_NO_POINTS : SHOP_KIND_REVIEW;
        }
        o->kind = k;
        w->kinds[k]++;
        int p = k == SHOP_KIND_SOLD_OUT ? NPLENTY : (int)(next(&x) % NPLENTY);
        snprintf(o->product, sizeof o->product, "%s", PRODUCTS[p].id);
        o->qty = k == SHOP_KIND_SOLD_OUT ? 1 : 1 + (int32_t)(next(&x) % 3);
        o->amount_cents = o->qty * PRODUCTS[p].price;
        snprintf(o->user, sizeof o->user, "%s-%03d", USER_PREFIX[k],
                 (int)(next(&x) % (uint64_t)w->nusers));
        snprintf(o->key, sizeof o->key, "%s-%ld", w->run, i);
    }
    return CHOREO_OK;
}

void shop_world_free(shop_world *w)
{
    free(w->orders);
    w->orders = NULL;
}

choreo_status shop_world_seed(const shop_world *w, shop_client *c)
{
    char ref[128], user[32];
    choreo_status s = CHOREO_OK;
    for (int p = 0; p <= NPLENTY && s == CHOREO_OK; p++) {
        /* Plentiful products can serve every order three times over; the
         * limited one half of the orders that ask for it. */
        int64_t qty = p < NPLENTY ? (int64_t)w->norders * 3 : w->kinds[SHOP_KIND_SOLD_OUT] / 2;
        snprintf(ref, sizeof ref, "%s-stock-%s", w->run, PRODUCTS[p].id);
        if (qty > 0)
            s = shop_client_restock(c, ref, PRODUCTS[p].id, qty);
    }
    for (int k = SHOP_KIND_SOLD_OUT; k < SHOP_KIND_COUNT && s == CHOREO_OK; k++) {
        for (int u = 0; u < w->nusers && s == CHOREO_OK; u++) {
            if (k == SHOP_KIND_SOLD_OUT)
                continue; /* its customers are the "user" ones */
            snprintf(user, sizeof user, "%s-%03d", USER_PREFIX[k], u);
            snprintf(ref, sizeof ref, "%s-deposit-%s", w->run, user);
            s = shop_client_deposit(c, ref, user, k == SHOP_KIND_BROKE ? 50 : rich(w),
                                    k == SHOP_KIND_REVIEW, k == SHOP_KIND_REVIEW);
            if (s == CHOREO_OK && k == SHOP_KIND_NO_POINTS)
                s = shop_client_enroll(c, user, INT64_C(1000000000), true);
        }
    }
    for (int u = 0; u < w->nusers && s == CHOREO_OK; u++) {
        snprintf(user, sizeof user, "user-%03d", u);
        snprintf(ref, sizeof ref, "%s-deposit-%s", w->run, user);
        s = shop_client_deposit(c, ref, user, rich(w), false, false);
    }
    return s;
}

struct load {
    shop_world *w;
    shop_client *c;
    const shop_load_opts *o;
    shop_load_stats *st;
    atomic_long next;
    atomic_long started; /* orders whose request was sent */
};

/* Waits until the saga window has room; false when asked to stop. */
static bool window_room(struct load *l)
{
    if (!l->o->settled || l->o->window < 1)
        return true;
    for (;;) {
        if (l->o->stop && atomic_load(l->o->stop))
            return false;
        if (atomic_load(&l->started) - l->o->settled(l->o->settled_user) < l->o->window)
            return true;
        struct timespec ts = { 0, 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Paced load: sleeps until order i's time; counts it late when its time
 * passed more than 100 ms ago (no worker was free to send it then). */
static void pace(struct load *l, long i)
{
    int64_t due = l->st->started_us + (int64_t)((double)i * 1e6 / l->o->rate);
    int64_t now = now_us();
    if (now < due) {
        struct timespec ts = { (time_t)((due - now) / 1000000), (long)((due - now) % 1000000) * 1000 };
        nanosleep(&ts, NULL);
    } else if (now - due > 100000) {
        atomic_fetch_add(&l->st->late, 1);
    }
}

static void *worker(void *arg)
{
    struct load *l = arg;
    for (;;) {
        if (l->o->stop && atomic_load(l->o->stop))
            break;
        long i = atomic_fetch_add(&l->next, 1);
        if (i >= l->w->norders)
            break;
        if (l->o->rate > 0)
            pace(l, i);
        else if (!window_room(l))
            break;
        atomic_fetch_add(&l->started, 1);
        shop_order_spec *o = &l->w->orders[i];
        shop_placed r;
        choreo_status s = shop_client_place(l->c, o->key, o->user, o->product, o->qty,
                                            o->amount_cents, l->o->timeout_ms, l->o->attempts, &r);
        if (s != CHOREO_OK) {
            atomic_fetch_sub(&l->started, 1);
            atomic_fetch_add(&l->st->failed, 1);
            if (!l->o->stop || !atomic_load(l->o->stop))
                fprintf(stderr, "shop: order %s: %s\n", o->key, shop_client_last_error());
            continue;
        }
        if (r.attempts > 1)
            atomic_fetch_add(&l->st->retried, 1);
        if (strcmp(r.status, "REFUSED") == 0) {
            atomic_fetch_sub(&l->started, 1);
            atomic_fetch_add(&l->st->refused, 1);
            fprintf(stderr, "shop: order %s refused: %s\n", o->key, r.error);
            continue;
        }
        snprintf(o->order_id, sizeof o->order_id, "%s", r.order_id);
        atomic_fetch_add(&l->st->placed, 1);
    }
    return NULL;
}

choreo_status shop_world_load(shop_world *w, shop_client *c, const shop_load_opts *opts,
                              shop_load_stats *st)
{
    shop_load_opts o = *opts;
    if (o.concurrency < 1)
        o.concurrency = 32;
    if (o.timeout_ms < 1)
        o.timeout_ms = 5000;
    if (o.attempts < 1)
        o.attempts = 10;
    struct load l = { .w = w, .c = c, .o = &o, .st = st };
    atomic_init(&l.next, 0);
    atomic_init(&l.started, 0);
    pthread_t *th = calloc((size_t)o.concurrency, sizeof *th);
    if (!th)
        return CHOREO_ENOMEM;
    st->started_us = now_us();
    int started = 0;
    for (; started < o.concurrency; started++)
        if (pthread_create(&th[started], NULL, worker, &l) != 0)
            break;
    if (started == 0)
        worker(&l);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    st->ended_us = now_us();
    /* A client that lost a reply sends the same key again: it must get the
     * same order back, never a second one. */
    for (long i = 0; i < w->norders; i += 25) {
        if (o.stop && atomic_load(o.stop))
            break;
        shop_order_spec *s = &w->orders[i];
        if (!s->order_id[0])
            continue;
        shop_placed r;
        if (shop_client_place(c, s->key, s->user, s->product, s->qty, s->amount_cents,
                              o.timeout_ms, o.attempts, &r) != CHOREO_OK)
            continue;
        st->replays++;
        if (strcmp(r.order_id, s->order_id) == 0)
            st->replays_same++;
    }
    return CHOREO_OK;
}
