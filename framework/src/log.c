/* Writes one logfmt line per call to stderr: timestamp, level, service,
 * quoted message, then the caller's key=value fields. A whole line is
 * written with a single fputs so that lines of different threads never mix. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"

static const char *level_names[] = { "error", "warn", "info", "debug" };

bool choreo__log_level_parse(const char *s, choreo_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (choreo_log_level)i;
            return true;
        }
    }
    return false;
}

/* The length of the well-formed UTF-8 sequence at s (2 to 4 bytes), 0 when
 * the bytes there are not one. */
static size_t utf8_length(const unsigned char *s)
{
    size_t len = s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] <= 0xf4 ? 4 : 0;
    if (len == 0)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong three- and four-byte forms, surrogates, past U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

const char *choreo__log_safe(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (p && *p && n + 5 < cap) {
        unsigned char c = *p;
        size_t len = c >= 0x80 ? utf8_length(p) : 1;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f || len == 0) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
            len = 1;
        } else {
            memcpy(buf + n, p, len); /* n + 5 < cap: room for any character */
            n += len;
        }
        p += len;
    }
    buf[n] = '\0';
    return buf;
}

static size_t append_quoted(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    if (n < cap)
        dst[n++] = '"';
    for (; *s && n + 3 < cap; s++) {
        if (*s == '"' || *s == '\\') {
            dst[n++] = '\\';
            dst[n++] = *s;
        } else if (*s == '\n') {
            dst[n++] = '\\';
            dst[n++] = 'n';
        } else {
            dst[n++] = *s;
        }
    }
    if (n < cap)
        dst[n++] = '"';
    return n;
}

void choreo__log_write(const choreo_logger *lg, choreo_log_level lvl, const char *msg,
                       const char *fields_fmt, ...)
{
    char line[2048];
    int64_t us = choreo__now_us();
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03dZ level=%s svc=%s msg=",
                          (int)((us / 1000) % 1000), level_names[lvl], lg->service);
    n += append_quoted(line + n, sizeof line - n - 2, msg);
    if (fields_fmt && fields_fmt[0] && n + 2 < sizeof line) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        int w = vsnprintf(line + n, sizeof line - n - 1, fields_fmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof line - n - 1 ? (size_t)w : sizeof line - n - 2;
    }
    line[n++] = '\n';
    line[n] = '\0';
    fputs(line, stderr);
}
