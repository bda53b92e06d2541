/* The JSON writer behind choreoctl's --json output. Errors are sticky, so a
 * caller writes a whole document and checks `failed` once; a failed buffer
 * is never printed, so output is either complete JSON or nothing. */
#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "text.h"

void ctl_json_init(ctl_json *j, size_t max, bool pretty, int margin)
{
    memset(j, 0, sizeof *j);
    j->max = max;
    j->pretty = pretty;
    j->margin = margin;
}

void ctl_json_free(ctl_json *j)
{
    free(j->buf);
    j->buf = NULL;
    j->len = j->cap = 0;
}

static void put(ctl_json *j, const char *s, size_t n)
{
    if (j->failed)
        return;
    if (n > j->max - j->len) {
        j->failed = true;
        return;
    }
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *grown = realloc(j->buf, cap);
        if (!grown) {
            j->failed = true;
            return;
        }
        j->buf = grown;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void put_str(ctl_json *j, const char *s)
{
    put(j, s, strlen(s));
}

static void newline(ctl_json *j)
{
    put(j, "\n", 1);
    for (int i = 0; i < j->margin + 2 * j->depth; i++)
        put(j, " ", 1);
}

/* Separator and line break before a value or key, as its container needs. */
static void element(ctl_json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth == 0)
        return;
    if (j->has_items[j->depth - 1])
        put_str(j, j->pretty ? "," : ", ");
    j->has_items[j->depth - 1] = true;
    if (j->pretty)
        newline(j);
}

static void open_container(ctl_json *j, const char *bracket)
{
    element(j);
    if (j->depth >= CTL_JSON_DEPTH) {
        j->failed = true;
        return;
    }
    put_str(j, bracket);
    j->has_items[j->depth++] = false;
}

static void close_container(ctl_json *j, const char *bracket)
{
    if (j->depth == 0) {
        j->failed = true;
        return;
    }
    bool items = j->has_items[--j->depth];
    if (j->pretty && items)
        newline(j);
    put_str(j, bracket);
}

void ctl_json_object_begin(ctl_json *j) { open_container(j, "{"); }
void ctl_json_object_end(ctl_json *j) { close_container(j, "}"); }
void ctl_json_array_begin(ctl_json *j) { open_container(j, "["); }
void ctl_json_array_end(ctl_json *j) { close_container(j, "]"); }

static void string_body(ctl_json *j, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    put(j, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < len;) {
        size_t n = ctl_utf8_seq(p + i, len - i);
        const char *esc = NULL;
        char u[8];
        if (n == 0)
            esc = "\\ufffd";
        else if (p[i] == '"')
            esc = "\\\"";
        else if (p[i] == '\\')
            esc = "\\\\";
        else if (p[i] == '\n')
            esc = "\\n";
        else if (p[i] == '\r')
            esc = "\\r";
        else if (p[i] == '\t')
            esc = "\\t";
        else if (p[i] == '\b')
            esc = "\\b";
        else if (p[i] == '\f')
            esc = "\\f";
        else if (p[i] < 0x20 || p[i] == 0x7f) {
            snprintf(u, sizeof u, "\\u%04x", p[i]);
            esc = u;
        }
        if (!esc) {
            run += n;
            i += n;
            continue;
        }
        put(j, (const char *)p + i - run, run);
        run = 0;
        put_str(j, esc);
        i += n ? n : 1;
    }
    put(j, (const char *)p + len - run, run);
    put(j, "\"", 1);
}

void ctl_json_key_n(ctl_json *j, const char *key, size_t len)
{
    element(j);
    string_body(j, key, len);
    put(j, ": ", 2);
    j->after_key = true;
}

void ctl_json_key(ctl_json *j, const char *key)
{
    ctl_json_key_n(j, key, strlen(key));
}

void ctl_json_str(ctl_json *j, const char *s, size_t len)
{
    element(j);
    string_body(j, s, len);
}

void ctl_json_cstr(ctl_json *j, const char *s)
{
    ctl_json_str(j, s, strlen(s));
}

void ctl_json_hex(ctl_json *j, const uint8_t *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    element(j);
    put(j, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        char two[2] = { digits[b[i] >> 4], digits[b[i] & 15] };
        put(j, two, 2);
    }
    put(j, "\"", 1);
}

void ctl_json_int(ctl_json *j, int64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%" PRId64, v);
    element(j);
    put_str(j, t);
}

void ctl_json_uint(ctl_json *j, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%" PRIu64, v);
    element(j);
    put_str(j, t);
}

void ctl_json_double(ctl_json *j, double v, bool single)
{
    if (!isfinite(v)) {
        ctl_json_null(j);
        return;
    }
    char t[40];
    for (int prec = single ? 6 : 15; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        double back = strtod(t, NULL);
        if (single ? (float)back == (float)v : back == v)
            break;
    }
    element(j);
    put_str(j, t);
}

void ctl_json_bool(ctl_json *j, bool v)
{
    element(j);
    put_str(j, v ? "true" : "false");
}

void ctl_json_null(ctl_json *j)
{
    element(j);
    put_str(j, "null");
}

void ctl_json_raw(ctl_json *j, const char *text, size_t len)
{
    element(j);
    put(j, text, len);
}

void ctl_json_kstr(ctl_json *j, const char *key, const char *s)
{
    ctl_json_key(j, key);
    ctl_json_cstr(j, s);
}

void ctl_json_kint(ctl_json *j, const char *key, int64_t v)
{
    ctl_json_key(j, key);
    ctl_json_int(j, v);
}

void ctl_json_kuint(ctl_json *j, const char *key, uint64_t v)
{
    ctl_json_key(j, key);
    ctl_json_uint(j, v);
}

void ctl_json_kbool(ctl_json *j, const char *key, bool v)
{
    ctl_json_key(j, key);
    ctl_json_bool(j, v);
}

int ctl_json_print(const ctl_json *j, const char *cmd)
{
    if (j->failed) {
        ctl_error("%s%scannot build the JSON output: out of memory or larger than %zu MiB",
                  cmd ? cmd : "", cmd ? ": " : "", j->max >> 20);
        return CTL_EXIT_FAIL;
    }
    fputs(j->buf, stdout);
    fputc('\n', stdout);
    return CTL_EXIT_OK;
}
