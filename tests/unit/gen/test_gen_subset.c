/* A consumer's subset of a producer's schema: code generated from the subset
 * decodes what code generated from the full schema encodes, skipping the
 * fields the consumer does not declare, at every level of nesting.
 * shipping.events (prefix shipping) reads part of events/shop.events (prefix
 * shop); all_types_reader.events (prefix gtr) part of all_types.events
 * (prefix gt). */
#include <criterion/criterion.h>
#include <string.h>

#include "gt_events.h"
#include "gtr_events.h"
#include "shipping_events.h"
#include "shop_events.h"

static choreo_mp_writer writer(void)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    return w;
}

Test(gen_subset, a_subset_decodes_what_the_full_schema_encodes)
{
    shop_order_created full;
    shop_order_created_init(&full);
    full.order_id = "o-1";
    full.user_id = "u-7";
    full.product_id = "p-3";
    full.qty = 4;
    full.amount_cents = 1999;
    full.points = 20;
    choreo_mp_writer w = writer();
    cr_assert_eq(shop_order_created_encode(&full, &w), CHOREO_OK);

    shipping_order_created sub;
    char err[256];
    cr_assert_eq(shipping_order_created_decode(&sub, w.buf, w.len, err, sizeof err), CHOREO_OK,
                 "the subset refused the full event: %s", err);
    cr_assert_str_eq(sub.order_id, "o-1");
    cr_assert_str_eq(sub.user_id, "u-7");
    cr_assert_str_eq(sub.product_id, "p-3");
    cr_assert_eq(sub.qty, 4);
    shipping_order_created_free(&sub);
    choreo_mp_writer_free(&w);
}

Test(gen_subset, an_optional_field_of_the_subset_reads_what_the_producer_requires)
{
    shop_order_cancelled full;
    shop_order_cancelled_init(&full);
    full.order_id = "o-2";
    full.reason = "out of stock";
    choreo_mp_writer w = writer();
    cr_assert_eq(shop_order_cancelled_encode(&full, &w), CHOREO_OK);
    shipping_order_cancelled sub;
    char err[256];
    cr_assert_eq(shipping_order_cancelled_decode(&sub, w.buf, w.len, err, sizeof err), CHOREO_OK,
                 "%s", err);
    cr_assert_str_eq(sub.order_id, "o-2");
    cr_assert_str_eq(sub.reason, "out of stock");
    shipping_order_cancelled_free(&sub);
    choreo_mp_writer_free(&w);
}

Test(gen_subset, fields_left_out_of_nested_records_are_skipped)
{
    static const gt_point points[] = {{1, 2, NULL}, {3, 4, NULL}};
    static const gt_line lines[] = {{"first", {points, 2}, NULL}, {"second", {NULL, 0}, NULL}};
    static const char *const strs[] = {"abc"};
    gt_all_types full;
    gt_all_types_init(&full);
    full.s = "not read";
    full.n32 = -12;
    full.strs.items = strs;
    full.strs.count = 1;
    full.point.x = 7;
    full.point.y = 8;
    full.lines.items = lines;
    full.lines.count = 2;
    choreo_mp_writer w = writer();
    cr_assert_eq(gt_all_types_encode(&full, &w), CHOREO_OK);

    gtr_all_types sub;
    char err[256];
    cr_assert_eq(gtr_all_types_decode(&sub, w.buf, w.len, err, sizeof err), CHOREO_OK,
                 "the subset refused the full event: %s", err);
    cr_assert_eq(sub.n32, -12);
    cr_assert_eq(sub.point.y, 8);
    cr_assert_eq(sub.lines.count, 2);
    cr_assert_eq(sub.lines.items[0].points.count, 2);
    cr_assert_eq(sub.lines.items[0].points.items[0].y, 2);
    cr_assert_eq(sub.lines.items[0].points.items[1].y, 4);
    cr_assert_eq(sub.lines.items[1].points.count, 0);
    gtr_all_types_free(&sub);
    choreo_mp_writer_free(&w);
}
