/* Fuzz target for the decoders choreo-gen generates, over the demo schema
 * (shop.events) and the every-type test schema (all_types.events, prefix gt).
 * The first input byte picks a decoder, the rest is its data. Whatever a
 * decoder accepts must pass the matching check (so it could be emitted
 * again), and encode -> decode -> encode must reproduce the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "gt_events.h"
#include "shop_events.h"

/* Larger inputs add nothing the decoders have not seen at this size. */
#define EVENTS_MAX_BYTES (64 * 1024)

#define ROUND_TRIP(T)                                                                          \
    static void fuzz_##T(const uint8_t *data, size_t size)                                     \
    {                                                                                          \
        T v, again;                                                                            \
        char err[256];                                                                         \
        choreo_mp_writer w1, w2;                                                               \
        if (T##_decode(&v, data, size, err, sizeof err) != CHOREO_OK) {                        \
            FUZZ_CHECK(err[0] != '\0', "a refusal explains itself");                           \
            return;                                                                            \
        }                                                                                      \
        FUZZ_CHECK(T##_check(&v, err, sizeof err) == CHOREO_OK, err);                          \
        choreo_mp_writer_init(&w1, 4 * EVENTS_MAX_BYTES);                                      \
        choreo_mp_writer_init(&w2, 4 * EVENTS_MAX_BYTES);                                      \
        FUZZ_CHECK(T##_encode(&v, &w1) == CHOREO_OK, "an accepted value encodes");             \
        FUZZ_CHECK(T##_decode(&again, w1.buf, w1.len, err, sizeof err) == CHOREO_OK,           \
                   err);                                                                       \
        FUZZ_CHECK(T##_encode(&again, &w2) == CHOREO_OK, "a decoded value encodes");           \
        FUZZ_CHECK(w1.len == w2.len && memcmp(w1.buf, w2.buf, w1.len) == 0,                    \
                   "encode(decode(encode(v))) == encode(v)");                                  \
        T##_free(&v);                                                                          \
        T##_free(&again);                                                                      \
        choreo_mp_writer_free(&w1);                                                            \
        choreo_mp_writer_free(&w2);                                                            \
    }

ROUND_TRIP(shop_place_order)
ROUND_TRIP(shop_place_order_reply)
ROUND_TRIP(shop_order_created)
ROUND_TRIP(shop_stock_reserved)
ROUND_TRIP(shop_stock_rejected)
ROUND_TRIP(shop_payment_authorized)
ROUND_TRIP(shop_payment_rejected)
ROUND_TRIP(shop_points_awarded)
ROUND_TRIP(shop_points_rejected)
ROUND_TRIP(shop_order_completed)
ROUND_TRIP(shop_order_cancelled)
ROUND_TRIP(shop_order_deadline)
ROUND_TRIP(gt_point)
ROUND_TRIP(gt_line)
ROUND_TRIP(gt_all_types)
ROUND_TRIP(gt_defaults)
ROUND_TRIP(gt_empty)

/* Selected by the first input byte, modulo the count: keep the order, the
 * committed corpus depends on it. */
static void (*const targets[])(const uint8_t *, size_t) = {
    fuzz_shop_place_order,    fuzz_shop_place_order_reply, fuzz_shop_order_created,
    fuzz_shop_stock_reserved, fuzz_shop_stock_rejected,    fuzz_shop_payment_authorized,
    fuzz_shop_payment_rejected, fuzz_shop_points_awarded,  fuzz_shop_points_rejected,
    fuzz_shop_order_completed, fuzz_shop_order_cancelled, fuzz_shop_order_deadline,
    fuzz_gt_point,            fuzz_gt_line,                fuzz_gt_all_types,
    fuzz_gt_defaults,         fuzz_gt_empty,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > EVENTS_MAX_BYTES)
        return 0;
    size_t n = sizeof targets / sizeof targets[0];
    targets[data[0] % n](data + 1, size - 1);
    return 0;
}
