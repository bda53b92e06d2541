/* Encoding and strict decoding of the envelope (see README "Wire format").
 * Decoding is bounded in size and depth and copies the small text fields into
 * fixed arrays, so a hostile message costs at most one pass over its bytes
 * and no allocation; every defect is reported with its own sentence. */
#include "envelope.h"

#include <ctype.h>
#include <string.h>

#include "mp_writer.h"
#include "status.h"
#include "ulid.h"

bool choreo__type_valid(const char *s, size_t len)
{
    if (len == 0 || len > CHOREO_TYPE_MAX || s[0] < 'A' || s[0] > 'Z')
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) || (unsigned char)s[i] > 127)
            return false;
    return true;
}

bool choreo__saga_valid(const char *s, size_t len)
{
    if (len == 0 || len > CHOREO_SAGA_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

choreo_status choreo__envelope_encode(const choreo_envelope *env, choreo_mp_writer *w)
{
    bool has_cause = env->cause[0] != '\0';
    choreo_mp_write_map(w, has_cause ? 8 : 7);
    choreo_mp_write_cstr(w, "id");
    choreo_mp_write_cstr(w, env->id);
    choreo_mp_write_cstr(w, "type");
    choreo_mp_write_cstr(w, env->type);
    choreo_mp_write_cstr(w, "v");
    choreo_mp_write_uint(w, env->version);
    choreo_mp_write_cstr(w, "saga");
    choreo_mp_write_cstr(w, env->saga);
    if (has_cause) {
        choreo_mp_write_cstr(w, "cause");
        choreo_mp_write_cstr(w, env->cause);
    }
    choreo_mp_write_cstr(w, "src");
    choreo_mp_write_cstr(w, env->src);
    choreo_mp_write_cstr(w, "ts");
    choreo_mp_write_int(w, env->ts_ms);
    choreo_mp_write_cstr(w, "data");
    if (env->data_len == 0) {
        choreo_mp_write_map(w, 0);
    } else {
        /* The payload is already msgpack: append it as raw bytes after
         * checking that it is one well-formed map. */
        choreo_mp_reader r;
        choreo_mp_reader_init(&r, env->data, env->data_len);
        if (choreo_mp_peek(&r) != CHOREO_MP_MAP)
            return choreo__fail(CHOREO_EINVAL,
                                "data of %s must be one msgpack map, but its first byte 0x%02x "
                                "starts another kind of value",
                                env->type, env->data[0]);
        if (choreo_mp_skip(&r, CHOREO_ENVELOPE_DEPTH) != CHOREO_OK)
            return choreo__fail(CHOREO_EINVAL, "data of %s is not a well-formed msgpack map: %s",
                                env->type, choreo_last_error());
        if (r.pos != r.end)
            return choreo__fail(CHOREO_EINVAL,
                                "data of %s has %zu bytes after its msgpack map: the map ends at "
                                "byte %zu of data_len %zu; pass the length of the map alone",
                                env->type, (size_t)(r.end - r.pos), (size_t)(r.pos - env->data),
                                env->data_len);
        choreo__mp_write_raw(w, env->data, env->data_len);
    }
    if (w->status == CHOREO_ETOOBIG)
        return choreo__fail(CHOREO_ETOOBIG,
                            "event of type %s is larger than the maximum of %zu bytes: send "
                            "less data or raise max_event_bytes",
                            env->type, w->max);
    return w->status;
}

/* Copies a string field into a fixed array after the field's own check. */
static choreo_status read_text(choreo_mp_reader *r, const char *field, char *dst, size_t cap,
                               bool (*valid)(const char *, size_t), const char *rule)
{
    const char *s;
    uint32_t n;
    if (choreo_mp_read_str(r, &s, &n) != CHOREO_OK)
        return choreo__fail(CHOREO_EDECODE, "envelope field \"%s\" must be a string: %s", field,
                            choreo_last_error());
    if (n >= cap)
        return choreo__fail(CHOREO_EDECODE,
                            "envelope field \"%s\" is %u bytes long, more than the limit of %zu",
                            field, n, cap - 1);
    if (!valid(s, n))
        return choreo__fail(CHOREO_EDECODE, "envelope field \"%s\" is \"%.*s\", which is not %s",
                            field, (int)(n > 64 ? 64 : n), s, rule);
    memcpy(dst, s, n);
    dst[n] = '\0';
    return CHOREO_OK;
}

static bool ulid_ok(const char *s, size_t n) { return choreo__ulid_valid(s, n); }

static bool source_ok(const char *s, size_t n)
{
    return choreo__saga_valid(s, n); /* same alphabet as saga ids */
}

enum field { F_ID, F_TYPE, F_V, F_SAGA, F_CAUSE, F_SRC, F_TS, F_DATA, F_COUNT };
static const char *const field_names[F_COUNT] = { "id", "type", "v", "saga", "cause",
                                                  "src", "ts", "data" };

static choreo_status read_field(choreo_mp_reader *r, enum field f, choreo_envelope *env)
{
    uint64_t u;
    int64_t i;
    switch (f) {
    case F_ID:
        return read_text(r, "id", env->id, sizeof env->id, ulid_ok, "a ULID (26 characters of Crockford base32)");
    case F_CAUSE:
        return read_text(r, "cause", env->cause, sizeof env->cause, ulid_ok, "a ULID (26 characters of Crockford base32)");
    case F_TYPE:
        return read_text(r, "type", env->type, sizeof env->type, choreo__type_valid,
                         "an UpperCamel ASCII event type name");
    case F_SAGA:
        return read_text(r, "saga", env->saga, sizeof env->saga, choreo__saga_valid,
                         "a saga id of A-Z a-z 0-9 _ -");
    case F_SRC:
        return read_text(r, "src", env->src, sizeof env->src, source_ok,
                         "a service name of A-Z a-z 0-9 _ -");
    case F_V:
        if (choreo_mp_read_uint(r, &u) != CHOREO_OK)
            return choreo__fail(CHOREO_EDECODE,
                                "envelope field \"v\" must be a schema version from 1 to "
                                "65535: %s", choreo_last_error());
        if (u < 1 || u > 65535)
            return choreo__fail(CHOREO_EDECODE,
                                "envelope field \"v\" must be a schema version from 1 to 65535");
        env->version = (uint32_t)u;
        return CHOREO_OK;
    case F_TS:
        if (choreo_mp_read_int(r, &i) != CHOREO_OK)
            return choreo__fail(CHOREO_EDECODE, "envelope field \"ts\" must be unix milliseconds "
                                "(an integer >= 0): %s", choreo_last_error());
        if (i < 0)
            return choreo__fail(CHOREO_EDECODE,
                                "envelope field \"ts\" must be unix milliseconds (an integer >= 0)");
        env->ts_ms = i;
        return CHOREO_OK;
    case F_DATA: {
        if (choreo_mp_peek(r) != CHOREO_MP_MAP)
            return choreo__fail(CHOREO_EDECODE, "envelope field \"data\" must be a msgpack map%s",
                                r->pos == r->end ? ": the body ends before it (truncated)" : "");
        const uint8_t *start = r->pos;
        if (choreo_mp_skip(r, CHOREO_ENVELOPE_DEPTH) != CHOREO_OK)
            return choreo__fail(CHOREO_EDECODE, "envelope field \"data\" is malformed: %s",
                                choreo_last_error());
        env->data = start;
        env->data_len = (size_t)(r->pos - start);
        return CHOREO_OK;
    }
    case F_COUNT:
        break;
    }
    return CHOREO_EINVAL;
}

choreo_status choreo__envelope_decode(choreo_envelope *env, const uint8_t *buf, size_t len,
                                      size_t max_bytes)
{
    if (len > max_bytes)
        return choreo__fail(CHOREO_ETOOBIG,
                            "message is %zu bytes, more than the limit of %zu (max_event_bytes)",
                            len, max_bytes);
    if (len == 0)
        return choreo__fail(CHOREO_EDECODE, "message body is empty, expected an envelope map");
    memset(env, 0, sizeof *env);
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, buf, len);
    uint32_t n;
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK)
        return choreo__fail(CHOREO_EDECODE,
                            "message body is not a msgpack map: %s", choreo_last_error());
    bool seen[F_COUNT] = { false };
    for (uint32_t k = 0; k < n; k++) {
        const char *key;
        uint32_t klen;
        if (choreo_mp_read_str(&r, &key, &klen) != CHOREO_OK)
            return choreo__fail(CHOREO_EDECODE, "envelope key %u is not a string: %s", k,
                                choreo_last_error());
        int f = -1;
        for (int j = 0; j < F_COUNT; j++)
            if (strlen(field_names[j]) == klen && memcmp(field_names[j], key, klen) == 0)
                f = j;
        if (f < 0) {
            /* Unknown fields are tolerated so that newer writers can add them. */
            if (choreo_mp_skip(&r, CHOREO_ENVELOPE_DEPTH) != CHOREO_OK)
                return choreo__fail(CHOREO_EDECODE, "envelope field \"%.*s\" is malformed: %s",
                                    (int)(klen > 64 ? 64 : klen), key, choreo_last_error());
            continue;
        }
        if (seen[f])
            return choreo__fail(CHOREO_EDECODE, "envelope field \"%s\" appears twice",
                                field_names[f]);
        seen[f] = true;
        choreo_status s = read_field(&r, (enum field)f, env);
        if (s != CHOREO_OK)
            return s;
    }
    for (int j = 0; j < F_COUNT; j++)
        if (!seen[j] && j != F_CAUSE)
            return choreo__fail(CHOREO_EDECODE, "envelope field \"%s\" is missing",
                                field_names[j]);
    if (r.pos != r.end)
        return choreo__fail(CHOREO_EDECODE, "%zu unexpected bytes after the envelope map",
                            (size_t)(r.end - r.pos));
    return CHOREO_OK;
}
