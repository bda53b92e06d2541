/* A bounded msgpack writer built on msgpack-c's packer: the packer does the
 * encoding, and our write callback enforces the hard maximum and records a
 * sticky error so that callers can write a whole value and check once. */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "choreo.h"
#include "mp_writer.h"
#include "status.h"

#define DEFAULT_MAX (1024 * 1024)

void choreo_mp_writer_init(choreo_mp_writer *w, size_t max)
{
    memset(w, 0, sizeof *w);
    w->max = max ? max : DEFAULT_MAX;
}

void choreo_mp_writer_free(choreo_mp_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

choreo_status choreo_mp_writer_status(const choreo_mp_writer *w)
{
    return w->status;
}

static int append(void *data, const char *bytes, size_t n)
{
    choreo_mp_writer *w = data;
    if (w->status != CHOREO_OK)
        return -1;
    if (n == 0)
        return 0;
    if (n > w->max - w->len) {
        w->status = choreo__fail(CHOREO_ETOOBIG,
                                 "msgpack value exceeds the maximum of %zu bytes", w->max);
        return -1;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        while (cap < w->len + n)
            cap *= 2;
        if (cap > w->max)
            cap = w->max;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            w->status = choreo__fail(CHOREO_ENOMEM, "out of memory growing a msgpack buffer");
            return -1;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
    return 0;
}

/* Declares a packer on w and remembers the length, so that a value that
 * does not fit is removed whole rather than left half-written. */
#define PACKER(w)                                                              \
    msgpack_packer pk;                                                         \
    msgpack_packer_init(&pk, (w), append);                                     \
    size_t before = (w)->len;                                                  \
    (void)before

static void undo_partial(choreo_mp_writer *w, size_t before)
{
    if (w->status != CHOREO_OK)
        w->len = before;
}

void choreo_mp_write_nil(choreo_mp_writer *w) { PACKER(w); msgpack_pack_nil(&pk); }

void choreo_mp_write_bool(choreo_mp_writer *w, bool v)
{
    PACKER(w);
    if (v)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
}

void choreo_mp_write_int(choreo_mp_writer *w, int64_t v) { PACKER(w); msgpack_pack_int64(&pk, v); }
void choreo_mp_write_uint(choreo_mp_writer *w, uint64_t v) { PACKER(w); msgpack_pack_uint64(&pk, v); }
void choreo_mp_write_double(choreo_mp_writer *w, double v) { PACKER(w); msgpack_pack_double(&pk, v); }

void choreo_mp_write_str(choreo_mp_writer *w, const char *s, size_t len)
{
    PACKER(w);
    if (len > UINT32_MAX) {
        append(w, NULL, SIZE_MAX);
        return;
    }
    if (msgpack_pack_str(&pk, len) == 0)
        msgpack_pack_str_body(&pk, s, len);
    undo_partial(w, before);
}

void choreo_mp_write_cstr(choreo_mp_writer *w, const char *s)
{
    choreo_mp_write_str(w, s, strlen(s));
}

void choreo_mp_write_bin(choreo_mp_writer *w, const void *b, size_t len)
{
    PACKER(w);
    if (len > UINT32_MAX) {
        append(w, NULL, SIZE_MAX);
        return;
    }
    if (msgpack_pack_bin(&pk, len) == 0)
        msgpack_pack_bin_body(&pk, b, len);
    undo_partial(w, before);
}

void choreo_mp_write_array(choreo_mp_writer *w, uint32_t n) { PACKER(w); msgpack_pack_array(&pk, n); }
void choreo_mp_write_map(choreo_mp_writer *w, uint32_t n) { PACKER(w); msgpack_pack_map(&pk, n); }

void choreo__mp_write_raw(choreo_mp_writer *w, const void *bytes, size_t len)
{
    append(w, bytes, len);
}
