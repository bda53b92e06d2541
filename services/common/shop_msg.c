/* Decoding and encoding of the shop's small request maps with choreo's
 * bounded msgpack reader and writer. */
#include "shop_msg.h"

#include <stdio.h>
#include <string.h>

static choreo_status read_field(choreo_mp_reader *r, shop_field *f, char *err, size_t errlen)
{
    if (f->type == SHOP_F_STR) {
        const char *s;
        uint32_t len;
        if (choreo_mp_read_str(r, &s, &len) != CHOREO_OK) {
            snprintf(err, errlen, "field %s must be a string", f->name);
            return CHOREO_EDECODE;
        }
        if (len >= f->cap || memchr(s, '\0', len)) {
            snprintf(err, errlen, "field %s is longer than %zu bytes or holds a NUL", f->name,
                     f->cap - 1);
            return CHOREO_EDECODE;
        }
        memcpy(f->str, s, len);
        f->str[len] = '\0';
    } else if (f->type == SHOP_F_I64) {
        if (choreo_mp_read_int(r, f->i64) != CHOREO_OK) {
            snprintf(err, errlen, "field %s must be an integer", f->name);
            return CHOREO_EDECODE;
        }
    } else if (choreo_mp_read_bool(r, f->b) != CHOREO_OK) {
        snprintf(err, errlen, "field %s must be true or false", f->name);
        return CHOREO_EDECODE;
    }
    f->seen = true;
    return CHOREO_OK;
}

choreo_status shop_msg_decode(const void *data, size_t len, shop_field *fields, size_t n,
                              char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    for (size_t i = 0; i < n; i++)
        fields[i].seen = false;
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, data, len);
    uint32_t count = 0;
    if (len > 0 && choreo_mp_read_map(&r, &count) != CHOREO_OK) {
        snprintf(err, errlen, "the request is not a msgpack map");
        return CHOREO_EDECODE;
    }
    for (uint32_t k = 0; k < count; k++) {
        const char *key;
        uint32_t klen;
        if (choreo_mp_read_str(&r, &key, &klen) != CHOREO_OK) {
            snprintf(err, errlen, "a key of the request map is not a string");
            return CHOREO_EDECODE;
        }
        shop_field *f = NULL;
        for (size_t i = 0; i < n && !f; i++)
            if (strlen(fields[i].name) == klen && memcmp(fields[i].name, key, klen) == 0)
                f = &fields[i];
        if (!f) {
            if (choreo_mp_skip(&r, 16) != CHOREO_OK) {
                snprintf(err, errlen, "the value of key %.*s is malformed", (int)klen, key);
                return CHOREO_EDECODE;
            }
            continue;
        }
        if (f->seen) {
            snprintf(err, errlen, "field %s appears twice", f->name);
            return CHOREO_EDECODE;
        }
        choreo_status s = read_field(&r, f, err, errlen);
        if (s != CHOREO_OK)
            return s;
    }
    if (r.pos != r.end) {
        snprintf(err, errlen, "trailing bytes after the request map");
        return CHOREO_EDECODE;
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !fields[i].seen) {
            snprintf(err, errlen, "field %s is required", fields[i].name);
            return CHOREO_EDECODE;
        }
    }
    return CHOREO_OK;
}

void shop_msg_encode(choreo_mp_writer *w, const shop_field *fields, size_t n)
{
    choreo_mp_write_map(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        choreo_mp_write_cstr(w, fields[i].name);
        if (fields[i].type == SHOP_F_STR)
            choreo_mp_write_cstr(w, fields[i].str ? fields[i].str : "");
        else if (fields[i].type == SHOP_F_I64)
            choreo_mp_write_int(w, *fields[i].i64);
        else
            choreo_mp_write_bool(w, *fields[i].b);
    }
}

choreo_result shop_msg_reply(choreo_reply *reply, const shop_field *fields, size_t n)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 4096);
    shop_msg_encode(&w, fields, n);
    choreo_status s = choreo_mp_writer_status(&w);
    if (s == CHOREO_OK)
        s = choreo_reply_set(reply, w.buf, w.len);
    choreo_mp_writer_free(&w);
    return s == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}
