/* Decoding of parked message bodies for `choreoctl dead show`. It trusts
 * nothing in the body: every read goes through the bounded choreo_mp_reader,
 * nesting is limited, and a defect becomes a sentence instead of a crash. */
#include "mpjson.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 3, 4)))
static bool fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return false;
}

enum field { F_ID, F_TYPE, F_V, F_SAGA, F_CAUSE, F_SRC, F_TS, F_DATA, F_COUNT };

static const char *const field_names[F_COUNT] = { "id", "type", "v", "saga",
                                                  "cause", "src", "ts", "data" };

static bool read_text(choreo_mp_reader *r, const char **s, uint32_t *len)
{
    return choreo_mp_read_str(r, s, len) == CHOREO_OK;
}

/* Reads one known field; false when its msgpack type is wrong, with the
 * reader's error in detail when the field's value is malformed. */
static bool read_field(choreo_mp_reader *r, enum field f, ctl_envelope *env, char *detail,
                       size_t cap)
{
    switch (f) {
    case F_ID:
        return read_text(r, &env->id, &env->id_len);
    case F_TYPE:
        return read_text(r, &env->type, &env->type_len);
    case F_SAGA:
        return read_text(r, &env->saga, &env->saga_len);
    case F_CAUSE:
        env->has_cause = true;
        return read_text(r, &env->cause, &env->cause_len);
    case F_SRC:
        return read_text(r, &env->src, &env->src_len);
    case F_V:
        return choreo_mp_read_uint(r, &env->version) == CHOREO_OK;
    case F_TS:
        return choreo_mp_read_int(r, &env->ts_ms) == CHOREO_OK;
    case F_DATA: {
        const uint8_t *start = r->pos;
        /* A map whose insides are broken gets the reader's own words. */
        if (choreo_mp_peek(r) == CHOREO_MP_MAP && choreo_mp_skip(r, CTL_DATA_DEPTH) != CHOREO_OK) {
            snprintf(detail, cap, "%s", choreo_last_error());
            return false;
        }
        if (r->pos == start)
            return false;
        env->data = start;
        env->data_len = (size_t)(r->pos - start);
        return true;
    }
    case F_COUNT:
        break;
    }
    return false;
}

static const char *const field_rules[F_COUNT] = {
    "a string", "a string", "a non-negative integer", "a string",
    "a string", "a string", "an integer", "a msgpack map",
};

bool ctl_envelope_read(const uint8_t *body, size_t len, ctl_envelope *env, char *why,
                       size_t why_cap)
{
    memset(env, 0, sizeof *env);
    if (len == 0)
        return fail(why, why_cap, "the body is empty");
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, body, len);
    uint32_t n;
    if (choreo_mp_peek(&r) != CHOREO_MP_MAP)
        return fail(why, why_cap, "the body is not a msgpack map");
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK)
        return fail(why, why_cap, "the body is a malformed msgpack map (%s)", choreo_last_error());
    bool seen[F_COUNT] = { false };
    for (uint32_t k = 0; k < n; k++) {
        const char *key;
        uint32_t klen;
        if (!read_text(&r, &key, &klen))
            return fail(why, why_cap, "key %u of the map is not a string", k + 1);
        int f = -1;
        for (int i = 0; i < F_COUNT; i++)
            if (strlen(field_names[i]) == klen && memcmp(field_names[i], key, klen) == 0)
                f = i;
        if (f < 0) {
            if (choreo_mp_skip(&r, CTL_DATA_DEPTH) != CHOREO_OK)
                return fail(why, why_cap, "the value of key %u is malformed msgpack (%s)", k + 1,
                            choreo_last_error());
            continue;
        }
        if (seen[f])
            return fail(why, why_cap, "field \"%s\" appears twice", field_names[f]);
        seen[f] = true;
        char detail[200] = "";
        if (read_field(&r, (enum field)f, env, detail, sizeof detail))
            continue;
        if (detail[0])
            return fail(why, why_cap, "field \"%s\" is malformed (%s)", field_names[f], detail);
        return fail(why, why_cap, "field \"%s\" is not %s", field_names[f], field_rules[f]);
    }
    if (r.pos != r.end)
        return fail(why, why_cap, "%zu bytes follow the envelope map",
                    (size_t)(r.end - r.pos));
    for (int i = 0; i < F_COUNT; i++)
        if (!seen[i] && i != F_CAUSE)
            return fail(why, why_cap, "field \"%s\" is missing", field_names[i]);
    return true;
}

/* An extension value: header bytes, then its data. skip has already checked
 * that the whole value lies within the buffer. */
static bool ext_json(choreo_mp_reader *r, ctl_json *j, char *why, size_t cap)
{
    const uint8_t *p = r->pos;
    if (choreo_mp_skip(r, 1) != CHOREO_OK)
        return fail(why, cap, "malformed msgpack extension (%s)", choreo_last_error());
    size_t total = (size_t)(r->pos - p);
    size_t head;
    switch (p[0]) {
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        head = 2;
        break;
    case 0xc7:
        head = 3;
        break;
    case 0xc8:
        head = 4;
        break;
    default: /* 0xc9 */
        head = 6;
        break;
    }
    if (total < head)
        return fail(why, cap, "malformed msgpack extension");
    ctl_json_object_begin(j);
    ctl_json_key(j, "$ext");
    ctl_json_int(j, (int8_t)p[head - 1]);
    ctl_json_key(j, "hex");
    ctl_json_hex(j, p + head, total - head);
    ctl_json_object_end(j);
    return true;
}

/* A map key: JSON keys are strings, so other keys are written as their JSON
 * text in a string ({"1": ...}, {"[1, 2]": ...}). */
static bool key_json(choreo_mp_reader *r, ctl_json *j, int depth, char *why, size_t cap)
{
    if (choreo_mp_peek(r) == CHOREO_MP_STR) {
        const char *s;
        uint32_t n;
        if (choreo_mp_read_str(r, &s, &n) != CHOREO_OK)
            return fail(why, cap, "malformed msgpack string (%s)", choreo_last_error());
        ctl_json_key_n(j, s, n);
        return true;
    }
    ctl_json k;
    ctl_json_init(&k, 64 * 1024, false, 0);
    bool ok = ctl_mp_json(r, &k, depth, why, cap);
    if (ok && k.failed)
        ok = fail(why, cap, "a map key is larger than 64 KiB as JSON");
    if (ok)
        ctl_json_key_n(j, k.buf, k.len);
    ctl_json_free(&k);
    return ok;
}

static bool container_json(choreo_mp_reader *r, ctl_json *j, bool map, int depth, char *why,
                           size_t cap)
{
    if (depth <= 0)
        return fail(why, cap, "msgpack nests deeper than %d levels", CTL_DATA_DEPTH);
    uint32_t n;
    if ((map ? choreo_mp_read_map(r, &n) : choreo_mp_read_array(r, &n)) != CHOREO_OK)
        return fail(why, cap, "malformed msgpack %s (%s)", map ? "map" : "array",
                    choreo_last_error());
    if (map)
        ctl_json_object_begin(j);
    else
        ctl_json_array_begin(j);
    for (uint32_t i = 0; i < n; i++) {
        if (map && !key_json(r, j, depth - 1, why, cap))
            return false;
        if (!ctl_mp_json(r, j, depth - 1, why, cap))
            return false;
    }
    if (map)
        ctl_json_object_end(j);
    else
        ctl_json_array_end(j);
    return true;
}

bool ctl_mp_json(choreo_mp_reader *r, ctl_json *j, int depth, char *why, size_t cap)
{
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const uint8_t *bin;
    uint32_t n;
    switch (choreo_mp_peek(r)) {
    case CHOREO_MP_NIL:
        if (choreo_mp_read_nil(r) != CHOREO_OK)
            break;
        ctl_json_null(j);
        return true;
    case CHOREO_MP_BOOL:
        if (choreo_mp_read_bool(r, &b) != CHOREO_OK)
            break;
        ctl_json_bool(j, b);
        return true;
    case CHOREO_MP_INT:
        if (choreo_mp_read_int(r, &i) != CHOREO_OK)
            break;
        ctl_json_int(j, i);
        return true;
    case CHOREO_MP_UINT:
        if (choreo_mp_read_uint(r, &u) != CHOREO_OK)
            break;
        ctl_json_uint(j, u);
        return true;
    case CHOREO_MP_FLOAT: {
        bool single = r->pos[0] == 0xca;
        if (choreo_mp_read_double(r, &d) != CHOREO_OK)
            break;
        ctl_json_double(j, d, single);
        return true;
    }
    case CHOREO_MP_STR:
        if (choreo_mp_read_str(r, &s, &n) != CHOREO_OK)
            break;
        ctl_json_str(j, s, n);
        return true;
    case CHOREO_MP_BIN:
        if (choreo_mp_read_bin(r, &bin, &n) != CHOREO_OK)
            break;
        ctl_json_object_begin(j);
        ctl_json_key(j, "$bin");
        ctl_json_hex(j, bin, n);
        ctl_json_object_end(j);
        return true;
    case CHOREO_MP_EXT:
        return ext_json(r, j, why, cap);
    case CHOREO_MP_ARRAY:
        return container_json(r, j, false, depth, why, cap);
    case CHOREO_MP_MAP:
        return container_json(r, j, true, depth, why, cap);
    case CHOREO_MP_INVALID:
        if (r->pos >= r->end)
            return fail(why, cap, "the msgpack data ends in the middle of a value");
        return fail(why, cap, "invalid msgpack byte 0x%02x", r->pos[0]);
    }
    return fail(why, cap, "malformed msgpack value (%s)", choreo_last_error());
}
