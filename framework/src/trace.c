/* W3C trace context (traceparent, version 00). */
#include "trace.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

static bool hex_run(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        nonzero |= c != '0';
    }
    return nonzero;
}

bool choreo__traceparent_valid(const char *s)
{
    return s && strlen(s) == CHOREO_TRACEPARENT_SIZE - 1 && s[0] == '0' && s[1] == '0' &&
           s[2] == '-' && hex_run(s + 3, 32) && s[35] == '-' && hex_run(s + 36, 16) &&
           s[52] == '-' && (hex_run(s + 53, 2) || (s[53] == '0' && s[54] == '0'));
}

/* n random bytes as 2n hex digits, never all zero. */
static void random_hex(char *out, size_t n)
{
    uint8_t b[16];
    bool nonzero = false;
    while (!nonzero) {
        size_t got = 0;
        while (got < n) {
            ssize_t r = getrandom(b + got, n - got, 0);
            if (r > 0)
                got += (size_t)r;
        }
        for (size_t i = 0; i < n; i++)
            nonzero |= b[i] != 0;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void choreo__traceparent_child(const char *parent, char out[CHOREO_TRACEPARENT_SIZE])
{
    char span[17];
    random_hex(span, 8);
    if (choreo__traceparent_valid(parent)) {
        snprintf(out, CHOREO_TRACEPARENT_SIZE, "00-%.32s-%s-%.2s", parent + 3, span, parent + 53);
        return;
    }
    char trace[33];
    random_hex(trace, 16);
    snprintf(out, CHOREO_TRACEPARENT_SIZE, "00-%s-%s-01", trace, span);
}
