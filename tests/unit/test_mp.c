/* The strict msgpack reader and the bounded writer. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "choreo.h"

static choreo_mp_reader reader(const void *b, size_t n)
{
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, b, n);
    return r;
}

Test(mp, every_type_round_trips_through_writer_and_reader)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    choreo_mp_write_map(&w, 2);
    choreo_mp_write_cstr(&w, "a");
    choreo_mp_write_array(&w, 7);
    choreo_mp_write_nil(&w);
    choreo_mp_write_bool(&w, true);
    choreo_mp_write_int(&w, -1234567890123LL);
    choreo_mp_write_uint(&w, UINT64_MAX);
    choreo_mp_write_double(&w, 2.5);
    choreo_mp_write_bin(&w, "\x00\x01", 2);
    choreo_mp_write_str(&w, "", 0);
    choreo_mp_write_cstr(&w, "b");
    choreo_mp_write_int(&w, 7);
    cr_assert_eq(choreo_mp_writer_status(&w), CHOREO_OK);

    choreo_mp_reader r = reader(w.buf, w.len);
    uint32_t n;
    const char *s;
    uint32_t len;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const uint8_t *bin;
    cr_assert_eq(choreo_mp_read_map(&r, &n), CHOREO_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(choreo_mp_read_str(&r, &s, &len), CHOREO_OK);
    cr_assert(len == 1 && s[0] == 'a');
    cr_assert_eq(choreo_mp_read_array(&r, &n), CHOREO_OK);
    cr_assert_eq(n, 7);
    cr_assert_eq(choreo_mp_read_nil(&r), CHOREO_OK);
    cr_assert_eq(choreo_mp_read_bool(&r, &b), CHOREO_OK);
    cr_assert(b);
    cr_assert_eq(choreo_mp_read_int(&r, &i), CHOREO_OK);
    cr_assert_eq(i, -1234567890123LL);
    cr_assert_eq(choreo_mp_read_uint(&r, &u), CHOREO_OK);
    cr_assert_eq(u, UINT64_MAX);
    cr_assert_eq(choreo_mp_read_double(&r, &d), CHOREO_OK);
    cr_assert_eq(d, 2.5);
    cr_assert_eq(choreo_mp_read_bin(&r, &bin, &len), CHOREO_OK);
    cr_assert(len == 2 && bin[1] == 1);
    cr_assert_eq(choreo_mp_read_str(&r, &s, &len), CHOREO_OK);
    cr_assert_eq(len, 0);
    cr_assert_eq(choreo_mp_skip(&r, 4), CHOREO_OK); /* key "b" */
    cr_assert_eq(choreo_mp_read_int(&r, &i), CHOREO_OK);
    cr_assert_eq(i, 7);
    cr_assert_eq(r.pos, r.end);
    choreo_mp_writer_free(&w);
}

Test(mp, integer_reads_check_range_and_sign)
{
    uint8_t big[] = { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    choreo_mp_reader r = reader(big, sizeof big);
    int64_t i;
    cr_assert_eq(choreo_mp_read_int(&r, &i), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "does not fit"));
    cr_assert_eq(r.pos, big, "a failed read must not consume");
    uint8_t neg[] = { 0xff };
    r = reader(neg, 1);
    uint64_t u;
    cr_assert_eq(choreo_mp_read_uint(&r, &u), CHOREO_EDECODE);
    r = reader(neg, 1);
    cr_assert_eq(choreo_mp_read_int(&r, &i), CHOREO_OK);
    cr_assert_eq(i, -1);
    uint8_t i16[] = { 0xd1, 0x80, 0x00 };
    r = reader(i16, sizeof i16);
    cr_assert_eq(choreo_mp_read_int(&r, &i), CHOREO_OK);
    cr_assert_eq(i, -32768);
}

Test(mp, truncated_values_fail_without_reading_past_the_end)
{
    const uint8_t cases[][4] = {
        { 0xd9, 0x05, 'a', 0 },   /* str8 of 5 with 1 byte */
        { 0xc4, 0x09, 0, 0 },     /* bin8 of 9 */
        { 0xcd, 0x01, 0, 0 },     /* uint16 short */
        { 0xcb, 0, 0, 0 },        /* float64 short */
    };
    const size_t lens[] = { 3, 2, 2, 4 };
    for (size_t k = 0; k < 4; k++) {
        choreo_mp_reader r = reader(cases[k], lens[k]);
        cr_assert_eq(choreo_mp_skip(&r, 4), CHOREO_EDECODE, "case %zu", k);
    }
}

Test(mp, lying_container_counts_fail_fast)
{
    uint8_t map32[] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01 };
    choreo_mp_reader r = reader(map32, sizeof map32);
    uint32_t n;
    cr_assert_eq(choreo_mp_read_map(&r, &n), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "claims"));
    uint8_t arr[] = { 0x93, 0x01 };
    r = reader(arr, sizeof arr);
    cr_assert_eq(choreo_mp_read_array(&r, &n), CHOREO_EDECODE);
}

Test(mp, skip_enforces_the_depth_limit)
{
    uint8_t deep[40];
    memset(deep, 0x91, sizeof deep); /* arrays of one, nested */
    deep[39] = 0x01;
    choreo_mp_reader r = reader(deep, sizeof deep);
    cr_assert_eq(choreo_mp_skip(&r, 8), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "deeper"));
    r = reader(deep, sizeof deep);
    cr_assert_eq(choreo_mp_skip(&r, 64), CHOREO_OK);
}

/* Nesting costs a byte a level, so a few MiB nest millions deep: a depth
 * given beyond what a thread's stack holds must still fail cleanly. */
Test(mp, skip_fails_past_its_own_depth_cap_whatever_depth_is_given)
{
    size_t n = 8u << 20;
    uint8_t *deep = malloc(n);
    cr_assert_not_null(deep);
    memset(deep, 0x91, n - 1);
    deep[n - 1] = 0x01;
    choreo_mp_reader r = reader(deep, n);
    cr_assert_eq(choreo_mp_skip(&r, INT_MAX), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "deeper"), "%s", choreo_last_error());
    uint8_t ok[1001];
    memset(ok, 0x91, sizeof ok - 1);
    ok[sizeof ok - 1] = 0x01;
    r = reader(ok, sizeof ok);
    cr_assert_eq(choreo_mp_skip(&r, INT_MAX), CHOREO_OK, "1,000 levels are within the cap");
    free(deep);
}

Test(mp, reserved_byte_is_invalid)
{
    uint8_t b[] = { 0xc1 };
    choreo_mp_reader r = reader(b, 1);
    cr_assert_eq(choreo_mp_peek(&r), CHOREO_MP_INVALID);
    cr_assert_eq(choreo_mp_skip(&r, 4), CHOREO_EDECODE);
}

Test(mp, writer_stops_at_its_maximum_with_a_sticky_error)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 16);
    choreo_mp_write_cstr(&w, "0123456789");
    cr_assert_eq(choreo_mp_writer_status(&w), CHOREO_OK);
    size_t good = w.len;
    choreo_mp_write_cstr(&w, "0123456789");
    cr_assert_eq(choreo_mp_writer_status(&w), CHOREO_ETOOBIG);
    choreo_mp_write_nil(&w);
    cr_assert_eq(choreo_mp_writer_status(&w), CHOREO_ETOOBIG);
    cr_assert_eq(w.len, good);
    choreo_mp_writer_free(&w);
}
