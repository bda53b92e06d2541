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

/* Ids need to be unique, not secret: a per-thread xorshift64* generator,
 * seeded once from getrandom, keeps the emit path free of system calls. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    while (state == 0) {
        if (getrandom(&state, sizeof state, 0) != (ssize_t)sizeof state)
            state = 0;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * UINT64_C(2685821657736338717);
}

/* n random bytes (8 or 16) as 2n hex digits, never all zero. */
static void random_hex(char *out, size_t n)
{
    uint64_t a, b = 0;
    do {
        a = next_random();
        if (n > 8)
            b = next_random();
    } while (a == 0 && b == 0);
    if (n > 8)
        snprintf(out, 2 * n + 1, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
    else
        snprintf(out, 2 * n + 1, "%016llx", (unsigned long long)a);
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
