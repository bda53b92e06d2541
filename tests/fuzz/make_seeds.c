/* Writes the seed inputs of the fuzz corpus: valid encodings made with the
 * real encoders, and a few near misses. `tests/fuzz/run --seeds` rebuilds
 * this and rewrites corpus/<target>/seed-*; the other corpus files are
 * inputs libFuzzer found worth keeping.
 *
 *   make_seeds CORPUS_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "gt_events.h"
#include "shop_events.h"

static const char *corpus;

static void put(const char *target, const char *name, const uint8_t *prefix, size_t plen,
                const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/seed-%s", corpus, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, plen, f) != plen || fwrite(data, 1, len, f) != len ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* An events seed: the selector byte of the decoder, then the data. */
static void event_seed(int selector, const char *name, const choreo_mp_writer *w)
{
    uint8_t sel = (uint8_t)selector;
    put("events", name, &sel, 1, w->buf, w->len);
    /* The same data cut short: a near miss every decoder must refuse. */
    if (w->len > 2) {
        char cut[128];
        snprintf(cut, sizeof cut, "%s-cut", name);
        put("events", cut, &sel, 1, w->buf, w->len / 2);
    }
}

#define SEED(sel, T, fill)                                             \
    do {                                                               \
        T v;                                                           \
        choreo_mp_writer w;                                            \
        T##_init(&v);                                                  \
        fill;                                                          \
        choreo_mp_writer_init(&w, 0);                                  \
        if (T##_encode(&v, &w) != CHOREO_OK) {                         \
            fprintf(stderr, "make_seeds: cannot encode %s\n", #T);     \
            exit(1);                                                   \
        }                                                              \
        event_seed(sel, #T, &w);                                       \
        choreo_mp_writer_free(&w);                                     \
    } while (0)

static void envelope_seed(const char *name, const char *cause, const uint8_t *data, size_t len)
{
    choreo_envelope env;
    memset(&env, 0, sizeof env);
    strcpy(env.id, "01JD0000000000000000000001");
    strcpy(env.type, "OrderCreated");
    env.version = 1;
    strcpy(env.saga, "01JD00000000000000000000SA");
    strcpy(env.cause, cause);
    strcpy(env.src, "order");
    env.ts_ms = 1732400000123;
    env.data = data;
    env.data_len = len;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    if (choreo__envelope_encode(&env, &w) != CHOREO_OK) {
        fprintf(stderr, "make_seeds: cannot encode an envelope\n");
        exit(1);
    }
    put("envelope", name, NULL, 0, w.buf, w.len);
    char cut[128];
    snprintf(cut, sizeof cut, "%s-cut", name);
    put("envelope", cut, NULL, 0, w.buf, w.len - 1);
    choreo_mp_writer_free(&w);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR\n");
        return 2;
    }
    corpus = argv[1];
    static const gt_point points[] = {{1, 2, NULL}, {-3, -1, NULL}};
    static const gt_line lines[] = {{"l", {points, 2}, NULL}};
    static const char *const strs[] = {"a", "\xc3\xa9"};
    static const int64_t i64s[] = {INT64_MIN, 0, INT64_MAX};
    static const double f64s[] = {-0.0, 1e300};
    static const uint8_t blob[] = {0, 1, 2};
    static const gt_bytes blobs[] = {{blob, 3}};

    SEED(0, shop_place_order, (v.idempotency_key = "k-1", v.user_id = "u-1",
                               v.product_id = "p-1", v.qty = 2, v.amount_cents = 1999));
    SEED(1, shop_place_order_reply, (v.order_id = "o-1", v.status = "PENDING"));
    SEED(2, shop_order_created, (v.order_id = "o-1", v.user_id = "u-1", v.product_id = "p-1",
                                 v.qty = 2, v.amount_cents = 1999, v.points = 19));
    SEED(3, shop_stock_reserved, (v.order_id = "o-1", v.qty = 2));
    SEED(4, shop_stock_rejected, (v.order_id = "o-1", v.reason = "out of stock"));
    SEED(5, shop_payment_authorized, (v.order_id = "o-1", v.amount_cents = 1999));
    SEED(6, shop_payment_rejected, (v.order_id = "o-1", v.reason = "insufficient funds"));
    SEED(7, shop_points_awarded, (v.order_id = "o-1", v.points = 19));
    SEED(8, shop_points_rejected, (v.order_id = "o-1", v.reason = "account closed"));
    SEED(9, shop_order_completed, (v.order_id = "o-1"));
    SEED(10, shop_order_cancelled, (v.order_id = "o-1", v.reason = "deadline"));
    SEED(11, shop_order_deadline, (v.order_id = "o-1"));
    SEED(12, gt_point, (v.x = 5));
    SEED(13, gt_line, (v.points.items = points, v.points.count = 2));
    SEED(14, gt_all_types,
         (v.s = "s", v.b.data = blob, v.b.len = 3, v.strs.items = strs, v.strs.count = 2,
          v.blobs.items = blobs, v.blobs.count = 1, v.i64s.items = i64s, v.i64s.count = 3,
          v.f64s.items = f64s, v.f64s.count = 2, v.u = UINT64_MAX, v.lines.items = lines,
          v.lines.count = 1));
    SEED(15, gt_defaults, (v.id = "d"));
    SEED(16, gt_empty, (void)v);

    /* Envelopes, with payloads from the encoders above. */
    shop_order_created oc;
    shop_order_created_init(&oc);
    oc.order_id = "o-1";
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    if (shop_order_created_encode(&oc, &w) != CHOREO_OK)
        return 1;
    envelope_seed("order-created", "01JD0000000000000000000000", w.buf, w.len);
    envelope_seed("no-cause", "", w.buf, w.len);
    envelope_seed("empty-data", "", NULL, 0);
    choreo_mp_writer_free(&w);
    return 0;
}
