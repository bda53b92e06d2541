/* The envelope codec: round trip, and a distinct error for every defect. */
#include <criterion/criterion.h>
#include <string.h>

#include "envelope.h"
#include "status.h"

#define ID "01JD0000000000000000000001"

static choreo_envelope sample(void)
{
    choreo_envelope e;
    memset(&e, 0, sizeof e);
    strcpy(e.id, ID);
    strcpy(e.type, "OrderCreated");
    e.version = 3;
    strcpy(e.saga, "saga-1_A");
    strcpy(e.cause, "01JD0000000000000000000000");
    strcpy(e.src, "order");
    e.ts_ms = 1732400000123;
    return e;
}

/* Encodes sample() with the data {"qty": 5} (written into d) into w. */
static choreo_envelope encode_sample(choreo_mp_writer *d, choreo_mp_writer *w)
{
    choreo_mp_writer_init(d, 0);
    choreo_mp_write_map(d, 1);
    choreo_mp_write_cstr(d, "qty");
    choreo_mp_write_int(d, 5);
    choreo_envelope e = sample();
    e.data = d->buf;
    e.data_len = d->len;
    choreo_mp_writer_init(w, 0);
    cr_assert_eq(choreo__envelope_encode(&e, w), CHOREO_OK);
    return e;
}

Test(envelope, round_trip_keeps_every_field)
{
    choreo_mp_writer d, w;
    choreo_envelope e = encode_sample(&d, &w);
    choreo_envelope out;
    cr_assert_eq(choreo__envelope_decode(&out, w.buf, w.len, 1 << 20), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_str_eq(out.id, e.id);
    cr_assert_str_eq(out.type, e.type);
    cr_assert_eq(out.version, 3);
    cr_assert_str_eq(out.saga, e.saga);
    cr_assert_str_eq(out.cause, e.cause);
    cr_assert_str_eq(out.src, e.src);
    cr_assert_eq(out.ts_ms, e.ts_ms);
    cr_assert_eq(out.data_len, d.len);
    cr_assert_eq(memcmp(out.data, d.buf, d.len), 0);
    choreo_mp_writer_free(&w);
    choreo_mp_writer_free(&d);
}

Test(envelope, empty_data_and_no_cause_encode_as_an_empty_map_without_cause)
{
    choreo_envelope e = sample();
    e.cause[0] = '\0';
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(choreo__envelope_encode(&e, &w), CHOREO_OK);
    choreo_envelope out;
    cr_assert_eq(choreo__envelope_decode(&out, w.buf, w.len, 1 << 20), CHOREO_OK);
    cr_assert_str_eq(out.cause, "");
    cr_assert_eq(out.data_len, 1);
    cr_assert_eq(out.data[0], 0x80);
    choreo_mp_writer_free(&w);
}

Test(envelope, encode_refuses_data_that_is_not_one_map_and_oversized_events)
{
    choreo_envelope e = sample();
    uint8_t arr[] = { 0x90 };
    e.data = arr;
    e.data_len = 1;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(choreo__envelope_encode(&e, &w), CHOREO_EINVAL);
    choreo_mp_writer_free(&w);

    uint8_t big[300] = { 0x81, 0xa1, 'x', 0xc5, 0x01, 0x00 };
    e.data = big;
    e.data_len = 3 + 3 + 256;
    choreo_mp_writer_init(&w, 256);
    cr_assert_eq(choreo__envelope_encode(&e, &w), CHOREO_ETOOBIG);
    cr_assert(strstr(choreo_last_error(), "max_event_bytes"), "%s", choreo_last_error());
    choreo_mp_writer_free(&w);
}

/* Each refusal of event data says what is wrong with it, in its own
 * sentence: never an empty text, nor one left over from an earlier failure. */
Test(envelope, encode_errors_are_specific_and_never_stale)
{
    static const struct {
        uint8_t bytes[8];
        size_t len;
        const char *says;
    } cases[] = {
        { { 0x80, 0x00 }, 2, "data of OrderCreated has 1 bytes after its msgpack map: the map "
                             "ends at byte 1 of data_len 2" },
        { { 0x81, 0xa1, 'x', 0x01, 0xc0, 0xc0 }, 6, "has 2 bytes after its msgpack map" },
        { { 0x81, 0xa1, 'x' }, 3, "data of OrderCreated is not a well-formed msgpack map: "
                                  "msgpack value truncated" },
        { { 0x92, 0x01, 0x02 }, 3, "data of OrderCreated must be one msgpack map, but its first "
                                   "byte 0x92" },
        { { 0x81, 0xc1, 0x00 }, 3, "not a well-formed msgpack map: invalid msgpack byte 0xc1" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        choreo_envelope e = sample();
        e.data = cases[i].bytes;
        e.data_len = cases[i].len;
        choreo_mp_writer w;
        choreo_mp_writer_init(&w, 0);
        (void)choreo__fail(CHOREO_ESTORE, "an earlier failure");
        cr_expect_eq(choreo__envelope_encode(&e, &w), CHOREO_EINVAL, "case %zu", i);
        const char *text = choreo_last_error();
        cr_expect(strstr(text, cases[i].says), "case %zu: \"%s\"", i, text);
        cr_expect_null(strstr(text, "earlier"), "case %zu: stale text \"%s\"", i, text);
        cr_expect_null(strstr(strstr(text, "msgpack") ? strstr(text, "msgpack") + 1 : text,
                              "data of"),
                       "case %zu: nested twice: \"%s\"", i, text);
        choreo_mp_writer_free(&w);
    }
}

/* A field of a hand-built envelope: kind 's' string, 'i' int, 'u' uint,
 * 'm' empty map, 'a' empty array, 'n' nil. */
struct field {
    const char *key;
    char kind;
    const char *s;
    long long i;
};

static void write_fields(choreo_mp_writer *w, const struct field *f, int n)
{
    choreo_mp_write_map(w, (uint32_t)n);
    for (int k = 0; k < n; k++) {
        choreo_mp_write_cstr(w, f[k].key);
        switch (f[k].kind) {
        case 's': choreo_mp_write_cstr(w, f[k].s); break;
        case 'i': choreo_mp_write_int(w, f[k].i); break;
        case 'm': choreo_mp_write_map(w, 0); break;
        case 'a': choreo_mp_write_array(w, 0); break;
        case 'n': choreo_mp_write_nil(w); break;
        }
    }
}

#define GOOD_ID { "id", 's', ID, 0 }
#define GOOD_TYPE { "type", 's', "OrderCreated", 0 }
#define GOOD_V { "v", 'i', NULL, 1 }
#define GOOD_SAGA { "saga", 's', "s1", 0 }
#define GOOD_SRC { "src", 's', "order", 0 }
#define GOOD_TS { "ts", 'i', NULL, 1000 }
#define GOOD_DATA { "data", 'm', NULL, 0 }

struct bad_case {
    const char *name;
    struct field f[9];
    int n;
    const char *expect; /* substring of the error */
};

static const struct bad_case bad[] = {
    { "missing id", { GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA }, 6,
      "\"id\" is missing" },
    { "missing type", { GOOD_ID, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA }, 6,
      "\"type\" is missing" },
    { "missing v", { GOOD_ID, GOOD_TYPE, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA }, 6,
      "\"v\" is missing" },
    { "missing saga", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SRC, GOOD_TS, GOOD_DATA }, 6,
      "\"saga\" is missing" },
    { "missing src", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_TS, GOOD_DATA }, 6,
      "\"src\" is missing" },
    { "missing ts", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_DATA }, 6,
      "\"ts\" is missing" },
    { "missing data", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS }, 6,
      "\"data\" is missing" },
    { "id not a ULID", { { "id", 's', "order-1", 0 }, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC,
                         GOOD_TS, GOOD_DATA }, 7, "not a ULID" },
    { "id not a string", { { "id", 'i', NULL, 5 }, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC,
                           GOOD_TS, GOOD_DATA }, 7, "\"id\" must be a string" },
    { "type lower case", { GOOD_ID, { "type", 's', "orderCreated", 0 }, GOOD_V, GOOD_SAGA,
                           GOOD_SRC, GOOD_TS, GOOD_DATA }, 7, "UpperCamel" },
    { "type too long", { GOOD_ID, { "type", 's', "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
                         GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA }, 7, "more than the limit" },
    { "version zero", { GOOD_ID, GOOD_TYPE, { "v", 'i', NULL, 0 }, GOOD_SAGA, GOOD_SRC, GOOD_TS,
                        GOOD_DATA }, 7, "schema version" },
    { "version huge", { GOOD_ID, GOOD_TYPE, { "v", 'i', NULL, 70000 }, GOOD_SAGA, GOOD_SRC,
                        GOOD_TS, GOOD_DATA }, 7, "schema version" },
    { "saga with a dot", { GOOD_ID, GOOD_TYPE, GOOD_V, { "saga", 's', "a.b", 0 }, GOOD_SRC,
                           GOOD_TS, GOOD_DATA }, 7, "saga id" },
    { "saga empty", { GOOD_ID, GOOD_TYPE, GOOD_V, { "saga", 's', "", 0 }, GOOD_SRC, GOOD_TS,
                      GOOD_DATA }, 7, "saga id" },
    { "src with a space", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, { "src", 's', "a b", 0 },
                            GOOD_TS, GOOD_DATA }, 7, "service name" },
    { "negative ts", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, { "ts", 'i', NULL, -1 },
                       GOOD_DATA }, 7, "unix milliseconds" },
    { "data an array", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS,
                         { "data", 'a', NULL, 0 } }, 7, "\"data\" must be a msgpack map" },
    { "bad cause", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA,
                     { "cause", 's', "x", 0 } }, 8, "\"cause\"" },
    { "duplicate field", { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA,
                           GOOD_SAGA }, 8, "appears twice" },
};

Test(envelope, each_defect_has_its_own_error)
{
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        choreo_mp_writer w;
        choreo_mp_writer_init(&w, 0);
        write_fields(&w, bad[k].f, bad[k].n);
        choreo_envelope out;
        choreo_status s = choreo__envelope_decode(&out, w.buf, w.len, 1 << 20);
        cr_expect_eq(s, CHOREO_EDECODE, "%s: status %d", bad[k].name, s);
        cr_expect(strstr(choreo_last_error(), bad[k].expect), "%s: error was \"%s\"",
                  bad[k].name, choreo_last_error());
        choreo_mp_writer_free(&w);
    }
}

Test(envelope, unknown_fields_are_skipped)
{
    struct field f[] = { GOOD_ID, GOOD_TYPE, { "future", 'a', NULL, 0 }, GOOD_V, GOOD_SAGA,
                         GOOD_SRC, GOOD_TS, GOOD_DATA, { "traceparent", 's', "00-x", 0 } };
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    write_fields(&w, f, 9);
    choreo_envelope out;
    cr_assert_eq(choreo__envelope_decode(&out, w.buf, w.len, 1 << 20), CHOREO_OK, "%s",
                 choreo_last_error());
    choreo_mp_writer_free(&w);
}

Test(envelope, framing_defects_have_their_own_errors)
{
    choreo_envelope out;
    cr_assert_eq(choreo__envelope_decode(&out, (const uint8_t *)"", 0, 100), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "empty"));

    uint8_t notmap[] = { 0x93, 1, 2, 3 };
    cr_assert_eq(choreo__envelope_decode(&out, notmap, sizeof notmap, 100), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "not a msgpack map"));

    uint8_t intkey[] = { 0x81, 0x01, 0x02 };
    cr_assert_eq(choreo__envelope_decode(&out, intkey, sizeof intkey, 100), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "key 0 is not a string"));

    uint8_t big[200] = { 0x80 };
    cr_assert_eq(choreo__envelope_decode(&out, big, sizeof big, 100), CHOREO_ETOOBIG);
    cr_assert(strstr(choreo_last_error(), "max_event_bytes"));

    struct field f[] = { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS, GOOD_DATA };
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    write_fields(&w, f, 7);
    choreo_mp_write_nil(&w);
    cr_assert_eq(choreo__envelope_decode(&out, w.buf, w.len, 1 << 20), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "unexpected bytes after"), "%s", choreo_last_error());
    /* Every prefix of a good envelope is rejected as truncated, never read past. */
    for (size_t cut = 1; cut < w.len - 1; cut++)
        cr_assert_eq(choreo__envelope_decode(&out, w.buf, cut, 1 << 20), CHOREO_EDECODE,
                     "prefix %zu accepted", cut);
    choreo_mp_writer_free(&w);
}

Test(envelope, data_nested_too_deep_is_rejected)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    struct field f[] = { GOOD_ID, GOOD_TYPE, GOOD_V, GOOD_SAGA, GOOD_SRC, GOOD_TS };
    write_fields(&w, f, 6);
    w.buf[0] = 0x87; /* seven fields: data follows */
    choreo_mp_write_cstr(&w, "data");
    for (int i = 0; i < 40; i++) {
        choreo_mp_write_map(&w, 1);
        choreo_mp_write_cstr(&w, "k");
    }
    choreo_mp_write_nil(&w);
    choreo_envelope out;
    cr_assert_eq(choreo__envelope_decode(&out, w.buf, w.len, 1 << 20), CHOREO_EDECODE);
    cr_assert(strstr(choreo_last_error(), "deeper"), "%s", choreo_last_error());
    choreo_mp_writer_free(&w);
}

Test(envelope, a_body_cut_short_anywhere_says_it_ends_early)
{
    choreo_mp_writer d, w;
    encode_sample(&d, &w);
    for (size_t cut = 1; cut < w.len; cut++) {
        choreo_envelope out;
        cr_assert_eq(choreo__envelope_decode(&out, w.buf, cut, 1 << 20), CHOREO_EDECODE);
        const char *why = choreo_last_error();
        cr_assert(strstr(why, "truncated") || strstr(why, "end of the buffer") ||
                      strstr(why, "bytes follow"),
                  "cut at %zu of %zu bytes: %s", cut, w.len, why);
    }
    choreo_mp_writer_free(&w);
    choreo_mp_writer_free(&d);
}
