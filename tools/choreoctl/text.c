/* Output helpers for people reading choreoctl on a terminal. Everything in a
 * parked message (subject, reason, body) may come from outside the system,
 * so text from it is cleaned of control characters before it is printed. */
#include "text.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

size_t ctl_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    /* Lead byte: sequence length, its payload bits, the smallest code point
     * that needs this length (anything below is an overlong form). */
    static const struct { unsigned char lo, hi, mask; size_t len; uint32_t min; } leads[] = {
        { 0xc2, 0xdf, 0x1f, 2, 0x80 },
        { 0xe0, 0xef, 0x0f, 3, 0x800 },
        { 0xf0, 0xf4, 0x07, 4, 0x10000 },
    };
    size_t k = 0;
    while (k < 3 && !(c >= leads[k].lo && c <= leads[k].hi))
        k++;
    if (k == 3)
        return 0;
    size_t len = leads[k].len;
    uint32_t cp = c & leads[k].mask, min = leads[k].min;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *ctl_text_clean(const char *s, size_t len)
{
    /* Worst case: every byte becomes the four characters \xNN. */
    char *out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = ctl_utf8_seq(p + i, len - i);
        if (p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
            out[o++] = ' ';
            i++;
        } else if (n == 0 || p[i] < 0x20 || p[i] == 0x7f) {
            snprintf(out + o, 5, "\\x%02x", p[i]);
            o += 4;
            i++;
        } else {
            memcpy(out + o, p + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

size_t ctl_text_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xc0) != 0x80)
            w++;
    return w;
}

void ctl_text_truncate(char *s, size_t max)
{
    if (max < 4 || ctl_text_width(s) <= max)
        return;
    /* Keep max - 3 characters: the cut removes at least 3 characters, so at
     * least 3 bytes, and "..." fits in their place. */
    size_t chars = 0;
    unsigned char *p = (unsigned char *)s;
    for (; *p; p++) {
        if ((*p & 0xc0) != 0x80) {
            if (chars == max - 3)
                break;
            chars++;
        }
    }
    memcpy(p, "...", 4);
}

size_t ctl_text_room(size_t used)
{
    struct winsize ws;
    size_t cols = 0;
    if (isatty(STDOUT_FILENO)) {
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
            cols = ws.ws_col;
        if (cols == 0 && getenv("COLUMNS"))
            cols = (size_t)strtoul(getenv("COLUMNS"), NULL, 10);
        if (cols == 0)
            cols = 80;
    }
    if (cols == 0)
        return 100; /* into a pipe or a file: short enough to read, long enough to grep */
    return cols > used + 30 ? cols - used : 30;
}

void ctl_text_pad(FILE *f, const char *s, size_t width)
{
    fputs(s, f);
    for (size_t w = ctl_text_width(s); w < width; w++)
        fputc(' ', f);
}

void ctl_time_iso(int64_t ms, bool millis, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm)) {
        snprintf(out, 32, "-");
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    if (millis)
        snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
    else
        snprintf(out + n, 32 - n, "Z");
}

void ctl_hexdump(FILE *f, const uint8_t *b, size_t len, size_t max, int margin)
{
    size_t shown = len < max ? len : max;
    for (size_t off = 0; off < shown; off += 16) {
        fprintf(f, "%*s%08zx ", margin, "", off);
        for (size_t i = off; i < off + 16; i++) {
            if (i % 8 == 0)
                fputc(' ', f);
            if (i < shown)
                fprintf(f, "%02x ", b[i]);
            else
                fputs("   ", f);
        }
        fputs(" |", f);
        for (size_t i = off; i < off + 16 && i < shown; i++)
            fputc(b[i] >= 0x20 && b[i] < 0x7f ? b[i] : '.', f);
        fputs("|\n", f);
    }
    if (shown < len)
        fprintf(f, "%*s... %zu more bytes not shown\n", margin, "", len - shown);
}
