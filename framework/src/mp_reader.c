/* A strict msgpack reader over a borrowed buffer. It never allocates and
 * never reads past the end: every header is checked against the bytes left,
 * including array and map counts, so hostile input fails fast with
 * CHOREO_EDECODE instead of provoking huge allocations (which is why choreo
 * does not use msgpack-c's object unpacker on network input). */
#include <string.h>

#include "choreo.h"
#include "status.h"

void choreo_mp_reader_init(choreo_mp_reader *r, const void *buf, size_t len)
{
    r->pos = buf;
    r->end = r->pos + len;
}

static size_t left(const choreo_mp_reader *r)
{
    return (size_t)(r->end - r->pos);
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

choreo_mp_type choreo_mp_peek(const choreo_mp_reader *r)
{
    if (left(r) == 0)
        return CHOREO_MP_INVALID;
    uint8_t b = r->pos[0];
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf))
        return CHOREO_MP_UINT;
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
        return CHOREO_MP_INT;
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return CHOREO_MP_MAP;
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return CHOREO_MP_ARRAY;
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return CHOREO_MP_STR;
    switch (b) {
    case 0xc0: return CHOREO_MP_NIL;
    case 0xc2: case 0xc3: return CHOREO_MP_BOOL;
    case 0xc4: case 0xc5: case 0xc6: return CHOREO_MP_BIN;
    case 0xca: case 0xcb: return CHOREO_MP_FLOAT;
    case 0xc7: case 0xc8: case 0xc9:
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return CHOREO_MP_EXT;
    default: return CHOREO_MP_INVALID; /* 0xc1 is reserved */
    }
}

static choreo_status truncated(void)
{
    return choreo__fail(CHOREO_EDECODE, "msgpack value truncated: the buffer ends inside it");
}

static choreo_status wrong_type(const char *want, const choreo_mp_reader *r)
{
    if (left(r) == 0)
        return choreo__fail(CHOREO_EDECODE, "expected msgpack %s, found the end of the buffer",
                            want);
    return choreo__fail(CHOREO_EDECODE, "expected msgpack %s, found byte 0x%02x", want,
                        r->pos[0]);
}

/* Takes n bytes after a header of h bytes; fails if they are not there. */
static choreo_status take(choreo_mp_reader *r, size_t h, uint64_t n, const uint8_t **out)
{
    if (left(r) < h || left(r) - h < n)
        return truncated();
    *out = r->pos + h;
    r->pos += h + n;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_nil(choreo_mp_reader *r)
{
    if (left(r) == 0 || r->pos[0] != 0xc0)
        return wrong_type("nil", r);
    r->pos++;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_bool(choreo_mp_reader *r, bool *out)
{
    if (left(r) == 0 || (r->pos[0] != 0xc2 && r->pos[0] != 0xc3))
        return wrong_type("bool", r);
    *out = r->pos[0] == 0xc3;
    r->pos++;
    return CHOREO_OK;
}

/* Reads any integer as a sign flag and magnitude bits. */
static choreo_status read_integer(choreo_mp_reader *r, bool *neg, uint64_t *bits)
{
    if (left(r) == 0)
        return wrong_type("integer", r);
    uint8_t b = r->pos[0];
    int n;
    *neg = false;
    if (b <= 0x7f) {
        *bits = b;
        r->pos++;
        return CHOREO_OK;
    }
    if (b >= 0xe0) {
        *neg = true;
        *bits = (uint64_t)(int64_t)(int8_t)b;
        r->pos++;
        return CHOREO_OK;
    }
    if (b >= 0xcc && b <= 0xcf)
        n = 1 << (b - 0xcc);
    else if (b >= 0xd0 && b <= 0xd3)
        n = 1 << (b - 0xd0);
    else
        return wrong_type("integer", r);
    if (left(r) < (size_t)n + 1)
        return truncated();
    uint64_t v = be(r->pos + 1, n);
    if (b >= 0xd0) {
        int shift = 64 - 8 * n;
        int64_t sv = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
        *neg = sv < 0;
        v = (uint64_t)sv;
    }
    *bits = v;
    r->pos += 1 + n;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_int(choreo_mp_reader *r, int64_t *out)
{
    const uint8_t *save = r->pos;
    bool neg;
    uint64_t v;
    choreo_status s = read_integer(r, &neg, &v);
    if (s != CHOREO_OK)
        return s;
    if (!neg && v > (uint64_t)INT64_MAX) {
        r->pos = save;
        return choreo__fail(CHOREO_EDECODE, "integer %llu does not fit in int64",
                            (unsigned long long)v);
    }
    *out = (int64_t)v;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_uint(choreo_mp_reader *r, uint64_t *out)
{
    const uint8_t *save = r->pos;
    bool neg;
    uint64_t v;
    choreo_status s = read_integer(r, &neg, &v);
    if (s != CHOREO_OK)
        return s;
    if (neg) {
        r->pos = save;
        return choreo__fail(CHOREO_EDECODE, "expected a non-negative integer, found %lld",
                            (long long)(int64_t)v);
    }
    *out = v;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_double(choreo_mp_reader *r, double *out)
{
    if (left(r) == 0)
        return wrong_type("float", r);
    uint8_t b = r->pos[0];
    if (b == 0xca || b == 0xcb) {
        int n = b == 0xca ? 4 : 8;
        if (left(r) < (size_t)n + 1)
            return truncated();
        uint64_t v = be(r->pos + 1, n);
        if (n == 4) {
            uint32_t u = (uint32_t)v;
            float f;
            memcpy(&f, &u, sizeof f);
            *out = f;
        } else {
            memcpy(out, &v, sizeof *out);
        }
        r->pos += 1 + n;
        return CHOREO_OK;
    }
    int64_t i;
    choreo_status s = choreo_mp_read_int(r, &i);
    if (s != CHOREO_OK)
        return wrong_type("float", r);
    *out = (double)i;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_str(choreo_mp_reader *r, const char **s, uint32_t *len)
{
    if (left(r) == 0)
        return wrong_type("string", r);
    uint8_t b = r->pos[0];
    size_t h;
    uint64_t n;
    if ((b & 0xe0) == 0xa0) {
        h = 1;
        n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        h = 1 + (size_t)(1 << (b - 0xd9));
        if (left(r) < h)
            return truncated();
        n = be(r->pos + 1, (int)h - 1);
    } else {
        return wrong_type("string", r);
    }
    const uint8_t *p = NULL;
    choreo_status st = take(r, h, n, &p);
    if (st != CHOREO_OK)
        return st;
    *s = (const char *)p;
    *len = (uint32_t)n;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_bin(choreo_mp_reader *r, const uint8_t **b, uint32_t *len)
{
    if (left(r) == 0 || r->pos[0] < 0xc4 || r->pos[0] > 0xc6)
        return wrong_type("binary", r);
    size_t h = 1 + (size_t)(1 << (r->pos[0] - 0xc4));
    if (left(r) < h)
        return truncated();
    uint64_t n = be(r->pos + 1, (int)h - 1);
    choreo_status st = take(r, h, n, b);
    if (st == CHOREO_OK)
        *len = (uint32_t)n;
    return st;
}

static choreo_status read_container(choreo_mp_reader *r, bool map, uint32_t *count)
{
    if (left(r) == 0)
        return wrong_type(map ? "map" : "array", r);
    uint8_t b = r->pos[0];
    uint8_t fix = map ? 0x80 : 0x90, b16 = map ? 0xde : 0xdc;
    size_t h;
    uint64_t n;
    if ((b & 0xf0) == fix) {
        h = 1;
        n = b & 0x0f;
    } else if (b == b16 || b == b16 + 1) {
        h = b == b16 ? 3 : 5;
        if (left(r) < h)
            return truncated();
        n = be(r->pos + 1, (int)h - 1);
    } else {
        return wrong_type(map ? "map" : "array", r);
    }
    uint64_t min_bytes = map ? n * 2 : n;
    if (left(r) - h < min_bytes)
        return choreo__fail(CHOREO_EDECODE,
                            "msgpack %s claims %llu entries but only %zu bytes follow",
                            map ? "map" : "array", (unsigned long long)n, left(r) - h);
    r->pos += h;
    *count = (uint32_t)n;
    return CHOREO_OK;
}

choreo_status choreo_mp_read_array(choreo_mp_reader *r, uint32_t *count)
{
    return read_container(r, false, count);
}

choreo_status choreo_mp_read_map(choreo_mp_reader *r, uint32_t *count)
{
    return read_container(r, true, count);
}

/* choreo_mp_skip recurses once a level: a depth the caller gives beyond
 * this would let a deeply nested input (a few bytes a level) overflow the
 * stack of the thread that reads it. */
#define MP_SKIP_DEPTH_MAX 1000

static choreo_status skip(choreo_mp_reader *r, int max_depth);

choreo_status choreo_mp_skip(choreo_mp_reader *r, int max_depth)
{
    return skip(r, max_depth < MP_SKIP_DEPTH_MAX ? max_depth : MP_SKIP_DEPTH_MAX);
}

static choreo_status skip(choreo_mp_reader *r, int max_depth)
{
    const uint8_t *p;
    uint32_t n;
    uint64_t u;
    bool neg;
    switch (choreo_mp_peek(r)) {
    case CHOREO_MP_NIL:
    case CHOREO_MP_BOOL:
        r->pos++;
        return CHOREO_OK;
    case CHOREO_MP_INT:
    case CHOREO_MP_UINT:
        return read_integer(r, &neg, &u);
    case CHOREO_MP_FLOAT: {
        double d;
        return choreo_mp_read_double(r, &d);
    }
    case CHOREO_MP_STR: {
        const char *s;
        return choreo_mp_read_str(r, &s, &n);
    }
    case CHOREO_MP_BIN:
        return choreo_mp_read_bin(r, &p, &n);
    case CHOREO_MP_EXT: {
        uint8_t b = r->pos[0];
        size_t h;
        uint64_t len;
        if (b >= 0xd4) {
            h = 2;
            len = 1u << (b - 0xd4);
        } else {
            h = 2 + (size_t)(1 << (b - 0xc7));
            if (left(r) < h)
                return truncated();
            len = be(r->pos + 1, (int)h - 2);
        }
        return take(r, h, len, &p);
    }
    case CHOREO_MP_ARRAY:
    case CHOREO_MP_MAP: {
        bool map = choreo_mp_peek(r) == CHOREO_MP_MAP;
        if (max_depth <= 0)
            return choreo__fail(CHOREO_EDECODE, "msgpack nesting is deeper than allowed");
        choreo_status s = read_container(r, map, &n);
        for (uint64_t i = 0; s == CHOREO_OK && i < (uint64_t)n * (map ? 2 : 1); i++)
            s = skip(r, max_depth - 1);
        return s;
    }
    case CHOREO_MP_INVALID:
        break;
    }
    if (left(r) == 0)
        return truncated();
    return choreo__fail(CHOREO_EDECODE, "invalid msgpack byte 0x%02x", r->pos[0]);
}
