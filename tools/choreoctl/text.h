/* Text for people: UTF-8 checks, terminal-safe copies of untrusted strings,
 * column widths and truncation, UTC times and hex dumps. */
#ifndef CHOREOCTL_TEXT_H
#define CHOREOCTL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when the bytes there
 * are not valid UTF-8 (overlong forms, surrogates, above U+10FFFF, cut off).
 * n > 0 is the number of bytes available. */
size_t ctl_utf8_seq(const unsigned char *p, size_t n);

/* A malloc'd, NUL-terminated copy of s[0..len) that is safe to print on a
 * terminal: tabs and line breaks become spaces, other control characters and
 * invalid UTF-8 bytes become \xNN. Returns NULL when out of memory. */
char *ctl_text_clean(const char *s, size_t len);

/* Number of characters (code points) of a valid UTF-8 string. */
size_t ctl_text_width(const char *s);

/* Cuts a valid UTF-8 string in place to at most max characters, ending it
 * with "..." when something was cut. max must be at least 4. */
void ctl_text_truncate(char *s, size_t max);

/* Characters left for a table's last column after used characters of the
 * others: the rest of the terminal's width (at least 30), or 100 when
 * stdout is not a terminal. */
size_t ctl_text_room(size_t used);

/* Prints s and pads it with spaces to width characters. */
void ctl_text_pad(FILE *f, const char *s, size_t width);

/* Unix milliseconds as UTC ISO-8601: "2026-11-24T10:00:00Z", or with millis
 * "2026-11-24T10:00:00.123Z". Writes "-" for 0 or a negative time. */
void ctl_time_iso(int64_t ms, bool millis, char out[32]);

/* Classic hex dump of at most max bytes (offset, 16 hex bytes, ASCII), each
 * line starting with margin spaces, and a line telling how many were left out. */
void ctl_hexdump(FILE *f, const uint8_t *b, size_t len, size_t max, int margin);

#endif
