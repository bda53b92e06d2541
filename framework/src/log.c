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

const char *choreo__log_safe(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        } else {
            buf[n++] = (char)c;
        }
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
