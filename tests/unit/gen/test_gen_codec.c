/* The code choreo-gen generates from all_types.events (prefix gt): round
 * trips of every field type, tolerance of unknown fields, defaults, and one
 * error message per validation rule, naming the event, the field and the
 * problem. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gt_events.h"
#include "mp_writer.h"

/* ------------------------------------------------------------------------ */
/* A valid AllTypes with awkward values everywhere */

static const gt_point sample_points[] = {{3, 4, NULL}, {-5, -1, NULL}};
static const gt_line sample_lines[] = {
    {"first", {sample_points, 2}, NULL},
    {"", {NULL, 0}, NULL},
};
static const char *const sample_strs[] = {"a", "", "h\xc3\xa9l"};
static const uint8_t blob1[] = {0x00, 0xff, 0x10};
static const gt_bytes sample_blobs[] = {{blob1, 3}, {NULL, 0}};
static const bool sample_bools[] = {true, false, true};
static const int32_t sample_i32s[] = {INT32_MIN, 0, INT32_MAX};
static const int64_t sample_i64s[] = {INT64_MIN, -1, INT64_MAX};
static const uint64_t sample_u64s[] = {0, 1, UINT64_MAX};
static const double sample_f64s[] = {-0.0, 1e-310, 1e300, -2.5};
static const int64_t sample_times[] = {0, 1732400000123};
static const uint8_t sample_b[] = {'x', 0x00, 'y'};

static gt_all_types sample(void)
{
    gt_all_types v;
    gt_all_types_init(&v);
    v.s = "caf\xc3\xa9 \xf0\x9f\x9a\x80";
    v.sb = "12345678";
    v.b.data = sample_b;
    v.b.len = sizeof sample_b;
    v.bb.data = sample_b;
    v.bb.len = 2;
    v.flag = true;
    v.n32 = INT32_MIN;
    v.n64 = INT64_MAX;
    v.u = UINT64_MAX;
    v.f = -1234.5e-3;
    v.at = 1732400000123;
    v.strs.items = sample_strs;
    v.strs.count = 3;
    v.blobs.items = sample_blobs;
    v.blobs.count = 2;
    v.bools.items = sample_bools;
    v.bools.count = 3;
    v.i32s.items = sample_i32s;
    v.i32s.count = 3;
    v.i64s.items = sample_i64s;
    v.i64s.count = 3;
    v.u64s.items = sample_u64s;
    v.u64s.count = 3;
    v.f64s.items = sample_f64s;
    v.f64s.count = 4;
    v.times.items = sample_times;
    v.times.count = 2;
    v.point.x = 7;
    v.point.y = 8;
    v.lines.items = sample_lines;
    v.lines.count = 2;
    return v;
}

static choreo_mp_writer encode_sample(const gt_all_types *v)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(gt_all_types_encode(v, &w), CHOREO_OK);
    return w;
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void assert_bytes_eq(gt_bytes a, gt_bytes b)
{
    cr_assert_eq(a.len, b.len);
    if (a.len)
        cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
}

static void assert_all_types_eq(const gt_all_types *a, const gt_all_types *b)
{
    cr_assert_str_eq(a->s, b->s);
    cr_assert_str_eq(a->sb, b->sb);
    assert_bytes_eq(a->b, b->b);
    assert_bytes_eq(a->bb, b->bb);
    cr_assert_eq(a->flag, b->flag);
    cr_assert_eq(a->n32, b->n32);
    cr_assert_eq(a->n64, b->n64);
    cr_assert_eq(a->u, b->u);
    cr_assert(same_double(a->f, b->f));
    cr_assert_eq(a->at, b->at);
    cr_assert_eq(a->strs.count, b->strs.count);
    for (size_t i = 0; i < a->strs.count; i++)
        cr_assert_str_eq(a->strs.items[i], b->strs.items[i]);
    cr_assert_eq(a->blobs.count, b->blobs.count);
    for (size_t i = 0; i < a->blobs.count; i++)
        assert_bytes_eq(a->blobs.items[i], b->blobs.items[i]);
    cr_assert_eq(a->bools.count, b->bools.count);
    for (size_t i = 0; i < a->bools.count; i++)
        cr_assert_eq(a->bools.items[i], b->bools.items[i]);
    cr_assert_eq(a->i32s.count, b->i32s.count);
    for (size_t i = 0; i < a->i32s.count; i++)
        cr_assert_eq(a->i32s.items[i], b->i32s.items[i]);
    cr_assert_eq(a->i64s.count, b->i64s.count);
    for (size_t i = 0; i < a->i64s.count; i++)
        cr_assert_eq(a->i64s.items[i], b->i64s.items[i]);
    cr_assert_eq(a->u64s.count, b->u64s.count);
    for (size_t i = 0; i < a->u64s.count; i++)
        cr_assert_eq(a->u64s.items[i], b->u64s.items[i]);
    cr_assert_eq(a->f64s.count, b->f64s.count);
    for (size_t i = 0; i < a->f64s.count; i++)
        cr_assert(same_double(a->f64s.items[i], b->f64s.items[i]), "f64s[%zu]", i);
    cr_assert_eq(a->times.count, b->times.count);
    for (size_t i = 0; i < a->times.count; i++)
        cr_assert_eq(a->times.items[i], b->times.items[i]);
    cr_assert_eq(a->point.x, b->point.x);
    cr_assert_eq(a->point.y, b->point.y);
    cr_assert_eq(a->lines.count, b->lines.count);
    for (size_t i = 0; i < a->lines.count; i++) {
        const gt_line *la = &a->lines.items[i], *lb = &b->lines.items[i];
        cr_assert_str_eq(la->name, lb->name);
        cr_assert_eq(la->points.count, lb->points.count);
        for (size_t k = 0; k < la->points.count; k++) {
            cr_assert_eq(la->points.items[k].x, lb->points.items[k].x);
            cr_assert_eq(la->points.items[k].y, lb->points.items[k].y);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Editing encoded maps, to make data a generated encoder would never write */

typedef void (*write_fn)(choreo_mp_writer *w);

/* Copies the msgpack map data into *out with the value of `field` replaced
 * by what `with` writes, or left out when `with` is NULL; `twice` writes the
 * field's entry two times, and `extra` (if not NULL) appends a whole entry,
 * key and value. The caller frees *out. */
static void rewrite(const choreo_mp_writer *in, const char *field, write_fn with, bool twice,
                    write_fn extra, choreo_mp_writer *out)
{
    choreo_mp_reader r;
    uint32_t n, m = 0;
    choreo_mp_reader_init(&r, in->buf, in->len);
    cr_assert_eq(choreo_mp_read_map(&r, &n), CHOREO_OK);
    choreo_mp_writer body;
    choreo_mp_writer_init(&body, 0);
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        cr_assert_eq(choreo_mp_read_str(&r, &k, &kl), CHOREO_OK);
        const uint8_t *v0 = r.pos;
        cr_assert_eq(choreo_mp_skip(&r, 32), CHOREO_OK);
        bool hit = field && strlen(field) == kl && memcmp(k, field, kl) == 0;
        if (hit && !with && !twice)
            continue;
        for (int copy = 0; copy < (hit && twice ? 2 : 1); copy++) {
            choreo_mp_write_str(&body, k, kl);
            if (hit && with)
                with(&body);
            else
                choreo__mp_write_raw(&body, v0, (size_t)(r.pos - v0));
            m++;
        }
    }
    if (extra) {
        extra(&body);
        m++;
    }
    choreo_mp_writer_init(out, 0);
    choreo_mp_write_map(out, m);
    choreo__mp_write_raw(out, body.buf, body.len);
    cr_assert_eq(choreo_mp_writer_status(out), CHOREO_OK);
    choreo_mp_writer_free(&body);
}

/* ------------------------------------------------------------------------ */
/* Round trips */

Test(gen_codec, round_trip_keeps_every_field_type)
{
    gt_all_types v = sample(), out;
    choreo_mp_writer w = encode_sample(&v);
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, w.buf, w.len, err, sizeof err), CHOREO_OK, "%s", err);
    cr_assert_str_eq(err, "");
    assert_all_types_eq(&v, &out);
    cr_assert_not_null(out.mem_);
    gt_all_types_free(&out);
    choreo_mp_writer_free(&w);
}

Test(gen_codec, round_trip_of_empty_values)
{
    gt_all_types v, out;
    gt_all_types_init(&v); /* every string "", every list and bytes empty */
    choreo_mp_writer w = encode_sample(&v);
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, w.buf, w.len, err, sizeof err), CHOREO_OK, "%s", err);
    assert_all_types_eq(&v, &out);
    cr_assert_null(out.strs.items);
    cr_assert_null(out.b.data);
    gt_all_types_free(&out);
    choreo_mp_writer_free(&w);
}

Test(gen_codec, encode_writes_a_map_keyed_by_field_name_in_schema_order)
{
    gt_point p = {1, 2, NULL};
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(gt_point_encode(&p, &w), CHOREO_OK);
    /* {"x": 1, "y": 2} */
    static const uint8_t want[] = {0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0x02};
    cr_assert_eq(w.len, sizeof want);
    cr_assert_eq(memcmp(w.buf, want, sizeof want), 0);
    choreo_mp_writer_free(&w);
}

Test(gen_codec, a_null_string_is_encoded_as_empty)
{
    gt_line l, out;
    gt_line_init(&l);
    l.name = NULL;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(gt_line_encode(&l, &w), CHOREO_OK);
    cr_assert_eq(gt_line_decode(&out, w.buf, w.len, NULL, 0), CHOREO_OK);
    cr_assert_str_eq(out.name, "");
    gt_line_free(&out);
    choreo_mp_writer_free(&w);
}

Test(gen_codec, decoded_values_are_copies_independent_of_the_buffer)
{
    gt_all_types v = sample(), out;
    choreo_mp_writer w = encode_sample(&v);
    cr_assert_eq(gt_all_types_decode(&out, w.buf, w.len, NULL, 0), CHOREO_OK);
    memset(w.buf, 0xa5, w.len);
    choreo_mp_writer_free(&w);
    assert_all_types_eq(&v, &out);
    gt_all_types_free(&out);
}

Test(gen_codec, integers_of_any_msgpack_width_are_accepted)
{
    /* {"x": int8 -3 (0xd0), "y": uint32 5 (0xce)} */
    static const uint8_t data[] = {0x82, 0xa1, 'x', 0xd0, 0xfd, 0xa1, 'y', 0xce, 0, 0, 0, 5};
    gt_point p;
    cr_assert_eq(gt_point_decode(&p, data, sizeof data, NULL, 0), CHOREO_OK);
    cr_assert_eq(p.x, -3);
    cr_assert_eq(p.y, 5);
    gt_point_free(&p);
}

/* The value 5 in each signed format (int8 .. int64), which encoders of other
 * languages may use for any integer; a u64 field takes it like a uint. */
static void w_u_int64_5(choreo_mp_writer *w)
{
    static const uint8_t d3[] = {0xd3, 0, 0, 0, 0, 0, 0, 0, 5};
    choreo__mp_write_raw(w, d3, sizeof d3);
}
static void w_u64s_signed_formats(choreo_mp_writer *w)
{
    static const uint8_t items[] = {0x94, 0xd0, 5, 0xd1, 0, 5, 0xd2, 0, 0, 0, 5,
                                    0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    choreo__mp_write_raw(w, items, sizeof items);
}

Test(gen_codec, u64_accepts_non_negative_integers_in_signed_formats)
{
    gt_all_types v = sample(), out;
    choreo_mp_writer w = encode_sample(&v), x, y;
    rewrite(&w, "u", w_u_int64_5, false, NULL, &x);
    rewrite(&x, "u64s", w_u64s_signed_formats, false, NULL, &y);
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, y.buf, y.len, err, sizeof err), CHOREO_OK, "%s", err);
    cr_assert_eq(out.u, 5);
    cr_assert_eq(out.u64s.count, 4);
    cr_assert_eq(out.u64s.items[0], 5);
    cr_assert_eq(out.u64s.items[1], 5);
    cr_assert_eq(out.u64s.items[2], 5);
    cr_assert_eq(out.u64s.items[3], (uint64_t)INT64_MAX);
    gt_all_types_free(&out);
    choreo_mp_writer_free(&y);
    choreo_mp_writer_free(&x);
    choreo_mp_writer_free(&w);
}

Test(gen_codec, f64_accepts_integers_and_float32)
{
    gt_defaults d;
    /* {"id": "i", "f": 7, "fi": float32 0.5} */
    static const uint8_t data[] = {0x83, 0xa2, 'i', 'd', 0xa1, 'i', 0xa1, 'f', 0x07,
                                   0xa2, 'f', 'i', 0xca, 0x3f, 0x00, 0x00, 0x00};
    char err[256];
    cr_assert_eq(gt_defaults_decode(&d, data, sizeof data, err, sizeof err), CHOREO_OK, "%s",
                 err);
    cr_assert_eq(d.f, 7.0);
    cr_assert_eq(d.fi, 0.5);
    gt_defaults_free(&d);
}

/* ------------------------------------------------------------------------ */
/* Unknown fields and defaults */

static void w_unknown_nested(choreo_mp_writer *w)
{
    choreo_mp_write_cstr(w, "added_later");
    choreo_mp_write_map(w, 2);
    choreo_mp_write_cstr(w, "list");
    choreo_mp_write_array(w, 3);
    choreo_mp_write_nil(w);
    choreo_mp_write_double(w, 1.5);
    choreo_mp_write_bin(w, "\x01", 1);
    choreo_mp_write_cstr(w, "ext");
    static const uint8_t fixext1[] = {0xd4, 0x01, 0x2a};
    choreo__mp_write_raw(w, fixext1, sizeof fixext1);
}

Test(gen_codec, unknown_fields_of_any_type_are_skipped)
{
    gt_all_types v = sample(), out;
    choreo_mp_writer w = encode_sample(&v), x;
    rewrite(&w, NULL, NULL, false, w_unknown_nested, &x);
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, x.buf, x.len, err, sizeof err), CHOREO_OK, "%s", err);
    assert_all_types_eq(&v, &out);
    gt_all_types_free(&out);
    choreo_mp_writer_free(&w);
    choreo_mp_writer_free(&x);
}

Test(gen_codec, unknown_fields_inside_nested_records_are_skipped)
{
    /* {"x": 1, "z": [1, 2], "y": 2} */
    static const uint8_t data[] = {0x83, 0xa1, 'x', 0x01, 0xa1, 'z', 0x92, 0x01, 0x02,
                                   0xa1, 'y', 0x02};
    gt_point p;
    cr_assert_eq(gt_point_decode(&p, data, sizeof data, NULL, 0), CHOREO_OK);
    cr_assert_eq(p.x, 1);
    cr_assert_eq(p.y, 2);
}

static void w_deep(choreo_mp_writer *w)
{
    choreo_mp_write_cstr(w, "deep");
    for (int i = 0; i < 40; i++)
        choreo_mp_write_array(w, 1);
    choreo_mp_write_nil(w);
}

Test(gen_codec, an_unknown_field_nested_too_deep_is_rejected)
{
    gt_all_types v = sample(), out;
    choreo_mp_writer w = encode_sample(&v), x;
    rewrite(&w, NULL, NULL, false, w_deep, &x);
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, x.buf, x.len, err, sizeof err), CHOREO_EDECODE);
    cr_assert(strstr(err, "AllTypes: the value of an unknown field is malformed or nested "
                          "more than 16 levels deep"), "%s", err);
    choreo_mp_writer_free(&w);
    choreo_mp_writer_free(&x);
}

static void assert_defaults(const gt_defaults *d)
{
    cr_assert_str_eq(d->s, "dflt \"q\" \xc3\xa9?\t*/");
    cr_assert_eq(d->b.len, 2);
    cr_assert_eq(memcmp(d->b.data, "ab", 2), 0);
    cr_assert_eq(d->eb.len, 0);
    cr_assert_eq(d->flag, true);
    cr_assert_eq(d->n32, INT32_MIN);
    cr_assert_eq(d->n64, INT64_MIN);
    cr_assert_eq(d->u, UINT64_MAX);
    cr_assert_eq(d->f, 2.5);
    cr_assert_eq(d->fi, -3.0);
    cr_assert_eq(d->at, 1700000000000);
    cr_assert_eq(d->strs.count, 2);
    cr_assert_str_eq(d->strs.items[0], "a");
    cr_assert_str_eq(d->strs.items[1], "b");
    cr_assert_eq(d->i32s.count, 3);
    cr_assert_eq(d->i32s.items[1], -2);
    cr_assert_eq(d->f64s.count, 2);
    cr_assert_eq(d->f64s.items[0], 1.0);
    cr_assert_eq(d->bools.count, 2);
    cr_assert_eq(d->bools.items[0], true);
    cr_assert_eq(d->blobs.count, 2);
    cr_assert_eq(d->blobs.items[0].len, 1);
    cr_assert_eq(d->blobs.items[1].len, 0);
    cr_assert_eq(d->lines.count, 0);
    cr_assert_eq(d->none.count, 0);
}

Test(gen_codec, absent_optional_fields_take_their_defaults)
{
    /* {"id": "k"} */
    static const uint8_t data[] = {0x81, 0xa2, 'i', 'd', 0xa1, 'k'};
    gt_defaults d;
    char err[256];
    cr_assert_eq(gt_defaults_decode(&d, data, sizeof data, err, sizeof err), CHOREO_OK, "%s",
                 err);
    cr_assert_str_eq(d.id, "k");
    assert_defaults(&d);
    gt_defaults_free(&d);
}

Test(gen_codec, init_sets_the_defaults)
{
    gt_defaults d;
    gt_defaults_init(&d);
    cr_assert_str_eq(d.id, "");
    cr_assert_null(d.mem_);
    assert_defaults(&d);
}

Test(gen_codec, nil_optional_fields_take_their_defaults)
{
    /* {"id": "k", "n32": nil, "strs": nil} */
    static const uint8_t data[] = {0x83, 0xa2, 'i', 'd', 0xa1, 'k', 0xa3, 'n', '3', '2', 0xc0,
                                   0xa4, 's', 't', 'r', 's', 0xc0};
    gt_defaults d;
    char err[256];
    cr_assert_eq(gt_defaults_decode(&d, data, sizeof data, err, sizeof err), CHOREO_OK, "%s",
                 err);
    assert_defaults(&d);
    gt_defaults_free(&d);
}

Test(gen_codec, empty_data_is_an_empty_map)
{
    gt_empty e;
    char err[256];
    cr_assert_eq(gt_empty_decode(&e, NULL, 0, err, sizeof err), CHOREO_OK, "%s", err);
    gt_empty_free(&e);
    gt_defaults d;
    cr_assert_eq(gt_defaults_decode(&d, NULL, 0, err, sizeof err), CHOREO_EDECODE);
    cr_assert_str_eq(err, "Defaults: required field 'id' is missing");
}

Test(gen_codec, an_event_without_fields_encodes_as_an_empty_map)
{
    gt_empty e;
    gt_empty_init(&e);
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(gt_empty_encode(&e, &w), CHOREO_OK);
    cr_assert_eq(w.len, 1);
    cr_assert_eq(w.buf[0], 0x80);
    choreo_mp_writer_free(&w);
}

/* ------------------------------------------------------------------------ */
/* Decoding errors: one row per rule */

static void w_int1(choreo_mp_writer *w) { choreo_mp_write_int(w, 1); }
static void w_nil(choreo_mp_writer *w) { choreo_mp_write_nil(w); }
static void w_str_x(choreo_mp_writer *w) { choreo_mp_write_cstr(w, "x"); }
static void w_str9(choreo_mp_writer *w) { choreo_mp_write_cstr(w, "123456789"); }
static void w_str_bad_utf8(choreo_mp_writer *w) { choreo_mp_write_str(w, "a\xc3(", 3); }
static void w_str_overlong(choreo_mp_writer *w) { choreo_mp_write_str(w, "\xc0\xaf", 2); }
static void w_str_surrogate(choreo_mp_writer *w) { choreo_mp_write_str(w, "\xed\xa0\x80", 3); }
static void w_str_nul(choreo_mp_writer *w) { choreo_mp_write_str(w, "a\0b", 3); }
static void w_bin5(choreo_mp_writer *w) { choreo_mp_write_bin(w, "12345", 5); }
static void w_2p31(choreo_mp_writer *w) { choreo_mp_write_int(w, 2147483648LL); }
static void w_m2p31m1(choreo_mp_writer *w) { choreo_mp_write_int(w, -2147483649LL); }
static void w_umax(choreo_mp_writer *w) { choreo_mp_write_uint(w, UINT64_MAX); }
static void w_neg(choreo_mp_writer *w) { choreo_mp_write_int(w, -1); }
static void w_float(choreo_mp_writer *w) { choreo_mp_write_double(w, 1.5); }
/* int64 -5 in the signed 8-byte format (0xd3), as other encoders may write it. */
static void w_int64_neg(choreo_mp_writer *w)
{
    static const uint8_t d3[] = {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb};
    choreo__mp_write_raw(w, d3, sizeof d3);
}
static void w_u64s_neg_item(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 2);
    choreo_mp_write_uint(w, 1);
    choreo_mp_write_int(w, -2);
}
static void w_map0(choreo_mp_writer *w) { choreo_mp_write_map(w, 0); }
static void w_ext(choreo_mp_writer *w)
{
    static const uint8_t fixext1[] = {0xd4, 0x01, 0x2a};
    choreo__mp_write_raw(w, fixext1, sizeof fixext1);
}
static void w_strs_long_item(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 2);
    choreo_mp_write_cstr(w, "ok");
    choreo_mp_write_cstr(w, "toolong");
}
static void w_three_blobs(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 3);
    for (int i = 0; i < 3; i++)
        choreo_mp_write_bin(w, "a", 1);
}
static void w_i32s_with_str(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 2);
    choreo_mp_write_int(w, 1);
    choreo_mp_write_cstr(w, "two");
}
static void w_point_without_x(choreo_mp_writer *w)
{
    choreo_mp_write_map(w, 1);
    choreo_mp_write_cstr(w, "y");
    choreo_mp_write_int(w, 1);
}
static void w_point_x_str(choreo_mp_writer *w)
{
    choreo_mp_write_map(w, 1);
    choreo_mp_write_cstr(w, "x");
    choreo_mp_write_cstr(w, "1");
}
static void write_point(choreo_mp_writer *w, bool good)
{
    choreo_mp_write_map(w, 1);
    choreo_mp_write_cstr(w, "x");
    if (good)
        choreo_mp_write_int(w, 1);
    else
        choreo_mp_write_cstr(w, "bad");
}
static void w_lines_deep_error(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 1);
    choreo_mp_write_map(w, 2);
    choreo_mp_write_cstr(w, "name");
    choreo_mp_write_cstr(w, "a");
    choreo_mp_write_cstr(w, "points");
    choreo_mp_write_array(w, 2);
    write_point(w, true);
    write_point(w, false);
}
static void w_lines_five_points(choreo_mp_writer *w)
{
    choreo_mp_write_array(w, 1);
    choreo_mp_write_map(w, 1);
    choreo_mp_write_cstr(w, "points");
    choreo_mp_write_array(w, 5);
    for (int i = 0; i < 5; i++)
        write_point(w, true);
}
static void w_lying_array(choreo_mp_writer *w)
{
    static const uint8_t a32[] = {0xdd, 0x7f, 0xff, 0xff, 0xff};
    choreo__mp_write_raw(w, a32, sizeof a32);
}

typedef struct error_case {
    const char *field; /* field whose value is replaced (or dropped, or doubled) */
    write_fn with;     /* replacement; NULL drops the field */
    bool twice;        /* write the field's entry twice */
    choreo_status want;
    const char *message;
} error_case;

static const error_case error_cases[] = {
    {"s", w_int1, false, CHOREO_EDECODE, "AllTypes: field 's': expected a string, found an integer"},
    {"s", w_nil, false, CHOREO_EDECODE, "AllTypes: field 's': expected a string, found nil"},
    {"sb", w_str9, false, CHOREO_ETOOBIG,
     "AllTypes: field 'sb': string of 9 bytes is longer than the limit of 8 bytes"},
    {"s", w_str_bad_utf8, false, CHOREO_EDECODE, "AllTypes: field 's': string is not valid UTF-8"},
    {"s", w_str_overlong, false, CHOREO_EDECODE, "AllTypes: field 's': string is not valid UTF-8"},
    {"s", w_str_surrogate, false, CHOREO_EDECODE, "AllTypes: field 's': string is not valid UTF-8"},
    {"s", w_str_nul, false, CHOREO_EDECODE, "AllTypes: field 's': string contains a NUL byte"},
    {"s", w_ext, false, CHOREO_EDECODE, "AllTypes: field 's': expected a string, found a msgpack extension"},
    {"b", w_str_x, false, CHOREO_EDECODE, "AllTypes: field 'b': expected binary data, found a string"},
    {"bb", w_bin5, false, CHOREO_ETOOBIG,
     "AllTypes: field 'bb': binary data of 5 bytes is longer than the limit of 4 bytes"},
    {"flag", w_int1, false, CHOREO_EDECODE, "AllTypes: field 'flag': expected a bool, found an integer"},
    {"n32", w_2p31, false, CHOREO_EDECODE,
     "AllTypes: field 'n32': integer 2147483648 is out of range for i32"},
    {"n32", w_m2p31m1, false, CHOREO_EDECODE,
     "AllTypes: field 'n32': integer -2147483649 is out of range for i32"},
    {"n32", w_str_x, false, CHOREO_EDECODE, "AllTypes: field 'n32': expected an integer, found a string"},
    {"n64", w_umax, false, CHOREO_EDECODE,
     "AllTypes: field 'n64': integer is truncated or out of range for i64"},
    {"n64", w_float, false, CHOREO_EDECODE, "AllTypes: field 'n64': expected an integer, found a float"},
    {"u", w_neg, false, CHOREO_EDECODE,
     "AllTypes: field 'u': integer -1 is negative, out of range for u64"},
    {"u", w_int64_neg, false, CHOREO_EDECODE,
     "AllTypes: field 'u': integer -5 is negative, out of range for u64"},
    {"u64s", w_u64s_neg_item, false, CHOREO_EDECODE,
     "AllTypes: field 'u64s[1]': integer -2 is negative, out of range for u64"},
    {"s", w_neg, false, CHOREO_EDECODE, "AllTypes: field 's': expected a string, found an integer"},
    {"f", w_str_x, false, CHOREO_EDECODE, "AllTypes: field 'f': expected a number, found a string"},
    {"at", w_float, false, CHOREO_EDECODE, "AllTypes: field 'at': expected an integer, found a float"},
    {"strs", w_map0, false, CHOREO_EDECODE,
     "AllTypes: field 'strs': expected an array (a list), found a map"},
    {"strs", w_strs_long_item, false, CHOREO_ETOOBIG,
     "AllTypes: field 'strs[1]': string of 7 bytes is longer than the limit of 5 bytes"},
    {"blobs", w_three_blobs, false, CHOREO_ETOOBIG,
     "AllTypes: field 'blobs': list of 3 items is longer than the limit of 2 items"},
    {"i32s", w_i32s_with_str, false, CHOREO_EDECODE,
     "AllTypes: field 'i32s[1]': expected an integer, found a string"},
    {"times", w_lying_array, false, CHOREO_EDECODE,
     "AllTypes: field 'times': array header claims more items than the data holds"},
    {"point", w_point_without_x, false, CHOREO_EDECODE,
     "AllTypes: field 'point': required field 'x' is missing"},
    {"point", w_point_x_str, false, CHOREO_EDECODE,
     "AllTypes: field 'point.x': expected an integer, found a string"},
    {"point", w_nil, false, CHOREO_EDECODE, "AllTypes: field 'point': expected a map, found nil"},
    {"lines", w_lines_deep_error, false, CHOREO_EDECODE,
     "AllTypes: field 'lines[0].points[1].x': expected an integer, found a string"},
    {"lines", w_lines_five_points, false, CHOREO_ETOOBIG,
     "AllTypes: field 'lines[0].points': list of 5 items is longer than the limit of 4 items"},
    {"n32", NULL, false, CHOREO_EDECODE, "AllTypes: required field 'n32' is missing"},
    {"lines", NULL, false, CHOREO_EDECODE, "AllTypes: required field 'lines' is missing"},
    {"flag", NULL, true, CHOREO_EDECODE, "AllTypes: field 'flag' appears twice"},
};

Test(gen_codec, each_decoding_error_names_the_event_field_and_problem)
{
    gt_all_types v = sample();
    choreo_mp_writer w = encode_sample(&v);
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const error_case *c = &error_cases[i];
        choreo_mp_writer x;
        rewrite(&w, c->field, c->with, c->twice, NULL, &x);
        gt_all_types out;
        memset(&out, 0x5a, sizeof out);
        char err[256];
        choreo_status st = gt_all_types_decode(&out, x.buf, x.len, err, sizeof err);
        cr_expect_eq(st, c->want, "case %zu (%s): status %d, want %d: %s", i, c->field, st,
                     c->want, err);
        cr_expect(strcmp(err, c->message) == 0, "case %zu (%s)\n got:  %s\nwant: %s", i,
                  c->field, err, c->message);
        /* The output is written only on success. */
        cr_expect_eq(((unsigned char *)&out)[0], 0x5a, "case %zu wrote its output", i);
        choreo_mp_writer_free(&x);
    }
    choreo_mp_writer_free(&w);
}

typedef struct raw_case {
    const char *name;
    const uint8_t *data;
    size_t len;
    const char *message;
} raw_case;

static const uint8_t raw_array[] = {0x91, 0x01};
static const uint8_t raw_int_key[] = {0x81, 0x01, 0x02};
static const uint8_t raw_trailing[] = {0x82, 0xa1, 'x', 0x01, 0xa1, 'y', 0x02, 0xc0};
static const uint8_t raw_truncated_str[] = {0x81, 0xa1, 'x', 0xa5, 'a'};
static const uint8_t raw_lying_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x'};
static const uint8_t raw_truncated_key[] = {0x81, 0xa4, 'x'};
static const uint8_t raw_reserved[] = {0xc1};
static const uint8_t raw_missing_value[] = {0x81, 0xa1, 'x'};

static const raw_case raw_cases[] = {
    {"array", raw_array, sizeof raw_array, "Point: expected a map, found an array"},
    {"int key", raw_int_key, sizeof raw_int_key,
     "Point: a map key is an integer, not a field name (string)"},
    {"trailing", raw_trailing, sizeof raw_trailing, "Point: 1 bytes follow the data map"},
    {"truncated string", raw_truncated_str, sizeof raw_truncated_str,
     "Point: field 'x': expected an integer, found a string"},
    {"lying map", raw_lying_map, sizeof raw_lying_map,
     "Point: map header claims more entries than the data holds"},
    {"truncated key", raw_truncated_key, sizeof raw_truncated_key, "Point: a map key is truncated"},
    {"reserved byte", raw_reserved, sizeof raw_reserved,
     "Point: expected a map, found an invalid msgpack byte"},
    {"missing value", raw_missing_value, sizeof raw_missing_value,
     "Point: field 'x': expected an integer, found the end of the data"},
};

Test(gen_codec, malformed_msgpack_is_rejected_with_a_reason)
{
    for (size_t i = 0; i < sizeof raw_cases / sizeof raw_cases[0]; i++) {
        const raw_case *c = &raw_cases[i];
        gt_point p;
        char err[256];
        cr_expect_eq(gt_point_decode(&p, c->data, c->len, err, sizeof err), CHOREO_EDECODE,
                     "%s", c->name);
        cr_expect(strcmp(err, c->message) == 0, "%s\n got:  %s\nwant: %s", c->name, err,
                  c->message);
    }
}

Test(gen_codec, a_truncated_encoding_never_decodes)
{
    gt_all_types v = sample();
    choreo_mp_writer w = encode_sample(&v);
    for (size_t len = 0; len < w.len; len++) {
        gt_all_types out;
        char err[256];
        choreo_status st = gt_all_types_decode(&out, w.buf, len, err, sizeof err);
        cr_assert_neq(st, CHOREO_OK, "decoded from %zu of %zu bytes", len, w.len);
        cr_assert(strncmp(err, "AllTypes: ", 10) == 0, "%s", err);
    }
    choreo_mp_writer_free(&w);
}

Test(gen_codec, decode_rejects_null_arguments_and_tolerates_a_null_err)
{
    gt_point p;
    char err[64];
    cr_assert_eq(gt_point_decode(NULL, (const uint8_t *)"\x80", 1, err, sizeof err),
                 CHOREO_EINVAL);
    cr_assert_str_eq(err, "Point: decode needs an output and data");
    cr_assert_eq(gt_point_decode(&p, NULL, 3, NULL, 0), CHOREO_EINVAL);
    cr_assert_eq(gt_point_decode(&p, (const uint8_t *)"\x80", 1, NULL, 0), CHOREO_EDECODE);
}

Test(gen_codec, a_short_error_buffer_is_truncated_and_terminated)
{
    gt_point p;
    char err[8];
    cr_assert_eq(gt_point_decode(&p, (const uint8_t *)"\x80", 1, err, sizeof err),
                 CHOREO_EDECODE);
    cr_assert_str_eq(err, "Point: ");
}

/* ------------------------------------------------------------------------ */
/* Checks before encoding */

typedef struct check_case {
    const char *name;
    void (*spoil)(gt_all_types *v);
    choreo_status want;
    const char *message;
} check_case;

static void spoil_sb(gt_all_types *v) { v->sb = "123456789"; }
static void spoil_utf8(gt_all_types *v) { v->s = "\xff"; }
static void spoil_bb(gt_all_types *v) { v->bb.len = 5; }
static void spoil_b_null(gt_all_types *v) { v->b.data = NULL; }
static void spoil_strs_null(gt_all_types *v) { v->strs.items = NULL; }
static void spoil_strs_item(gt_all_types *v)
{
    static const char *const items[] = {"ok", "toolong"};
    v->strs.items = items;
    v->strs.count = 2;
}
static void spoil_i32s_count(gt_all_types *v) { v->i32s.count = 4; }
static void spoil_nested(gt_all_types *v)
{
    static gt_point many[5];
    static gt_line lines[1];
    lines[0].name = "n";
    lines[0].points.items = many;
    lines[0].points.count = 5;
    v->lines.items = lines;
    v->lines.count = 1;
}
static void spoil_nested_name(gt_all_types *v)
{
    static gt_line lines[2];
    lines[0].name = "ok";
    lines[1].name = "a name longer than sixteen";
    v->lines.items = lines;
    v->lines.count = 2;
}

static const check_case check_cases[] = {
    {"string bound", spoil_sb, CHOREO_ETOOBIG,
     "AllTypes: field 'sb': string of 9 bytes is longer than the limit of 8 bytes"},
    {"utf-8", spoil_utf8, CHOREO_EINVAL, "AllTypes: field 's': string is not valid UTF-8"},
    {"bytes bound", spoil_bb, CHOREO_ETOOBIG,
     "AllTypes: field 'bb': binary data of 5 bytes is longer than the limit of 4 bytes"},
    {"bytes null", spoil_b_null, CHOREO_EINVAL, "AllTypes: field 'b': data is NULL but len is 3"},
    {"list null", spoil_strs_null, CHOREO_EINVAL,
     "AllTypes: field 'strs': items is NULL but count is 3"},
    {"list item bound", spoil_strs_item, CHOREO_ETOOBIG,
     "AllTypes: field 'strs[1]': string of 7 bytes is longer than the limit of 5 bytes"},
    {"list bound", spoil_i32s_count, CHOREO_ETOOBIG,
     "AllTypes: field 'i32s': list of 4 items is longer than the limit of 3 items"},
    {"nested list bound", spoil_nested, CHOREO_ETOOBIG,
     "AllTypes: field 'lines[0].points': list of 5 items is longer than the limit of 4 items"},
    {"nested string bound", spoil_nested_name, CHOREO_ETOOBIG,
     "AllTypes: field 'lines[1].name': string of 26 bytes is longer than the limit of 16 bytes"},
};

Test(gen_codec, check_and_encode_refuse_what_decode_would_reject)
{
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        const check_case *c = &check_cases[i];
        gt_all_types v = sample();
        c->spoil(&v);
        char err[256];
        cr_expect_eq(gt_all_types_check(&v, err, sizeof err), c->want, "%s", c->name);
        cr_expect(strcmp(err, c->message) == 0, "%s\n got:  %s\nwant: %s", c->name, err,
                  c->message);
        choreo_mp_writer w;
        choreo_mp_writer_init(&w, 0);
        cr_expect_eq(gt_all_types_encode(&v, &w), c->want, "%s", c->name);
        cr_expect_eq(w.len, 0, "%s: encode wrote %zu bytes", c->name, w.len);
        choreo_mp_writer_free(&w);
    }
    gt_all_types ok = sample();
    cr_assert_eq(gt_all_types_check(&ok, NULL, 0), CHOREO_OK);
    cr_assert_eq(gt_all_types_check(NULL, NULL, 0), CHOREO_EINVAL);
}

Test(gen_codec, encode_reports_a_full_writer)
{
    gt_all_types v = sample();
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 16);
    cr_assert_eq(gt_all_types_encode(&v, &w), CHOREO_ETOOBIG);
    cr_assert_eq(gt_all_types_encode(NULL, &w), CHOREO_EINVAL);
    cr_assert_eq(gt_all_types_encode(&v, NULL), CHOREO_EINVAL);
    choreo_mp_writer_free(&w);
}

/* ------------------------------------------------------------------------ */
/* Free */

Test(gen_codec, free_releases_and_resets_to_defaults)
{
    static const uint8_t data[] = {0x82, 0xa2, 'i', 'd', 0xa1, 'k', 0xa1, 's', 0xa3, 'a', 'b', 'c'};
    gt_defaults d;
    cr_assert_eq(gt_defaults_decode(&d, data, sizeof data, NULL, 0), CHOREO_OK);
    cr_assert_str_eq(d.s, "abc");
    gt_defaults_free(&d);
    cr_assert_null(d.mem_);
    cr_assert_str_eq(d.id, "");
    assert_defaults(&d);
    gt_defaults_free(&d); /* twice is harmless */
    gt_defaults_free(NULL);
    gt_all_types byhand = sample();
    gt_all_types_free(&byhand); /* a value built by hand owns nothing */
}
