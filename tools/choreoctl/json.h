/* A small JSON writer into a growable buffer with a hard maximum: objects,
 * arrays, keys and scalars, with correct string escaping, either pretty
 * (one element per line, indented) or on one line. */
#ifndef CHOREOCTL_JSON_H
#define CHOREOCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of objects and arrays the writer accepts. */
#define CTL_JSON_DEPTH 48

typedef struct ctl_json {
    char *buf;        /* NUL-terminated text so far; NULL before the first write */
    size_t len;
    size_t cap;
    size_t max;       /* hard maximum of len */
    bool failed;      /* sticky: out of memory, over max, or nested too deep */
    bool pretty;
    int margin;       /* spaces added after every line break */
    int depth;
    bool after_key;
    bool has_items[CTL_JSON_DEPTH];
} ctl_json;

/* pretty: one element per line, indented by two spaces per level, every
 * line after the first starting with margin spaces. Otherwise one line,
 * with ", " and ": " between elements. */
void ctl_json_init(ctl_json *j, size_t max, bool pretty, int margin);
void ctl_json_free(ctl_json *j);

void ctl_json_object_begin(ctl_json *j);
void ctl_json_object_end(ctl_json *j);
void ctl_json_array_begin(ctl_json *j);
void ctl_json_array_end(ctl_json *j);

/* An object key; the next call writes its value. */
void ctl_json_key(ctl_json *j, const char *key);
void ctl_json_key_n(ctl_json *j, const char *key, size_t len);

/* Strings are escaped as JSON requires; bytes that are not valid UTF-8 are
 * written as U+FFFD, so the output is always valid UTF-8. */
void ctl_json_str(ctl_json *j, const char *s, size_t len);
void ctl_json_cstr(ctl_json *j, const char *s);
/* Bytes as a string of lower-case hex digits. */
void ctl_json_hex(ctl_json *j, const uint8_t *b, size_t len);
void ctl_json_int(ctl_json *j, int64_t v);
void ctl_json_uint(ctl_json *j, uint64_t v);
/* The shortest text that reads back as the same double (or float when
 * single); null for NaN and infinities, which JSON cannot express. */
void ctl_json_double(ctl_json *j, double v, bool single);
void ctl_json_bool(ctl_json *j, bool v);
void ctl_json_null(ctl_json *j);
/* A key and its value, for the members of an object. */
void ctl_json_kstr(ctl_json *j, const char *key, const char *s);
void ctl_json_kint(ctl_json *j, const char *key, int64_t v);
void ctl_json_kuint(ctl_json *j, const char *key, uint64_t v);
void ctl_json_kbool(ctl_json *j, const char *key, bool v);
/* Already rendered JSON text as the next value, as it is. */
void ctl_json_raw(ctl_json *j, const char *text, size_t len);

/* Prints a finished document and a newline on stdout (CTL_EXIT_OK), or
 * says why there is none, starting with "cmd: " when cmd is not NULL
 * (CTL_EXIT_FAIL). */
int ctl_json_print(const ctl_json *j, const char *cmd);

#endif
