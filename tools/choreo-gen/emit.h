/* C code generation from a checked schema. */
#ifndef CHOREO_GEN_EMIT_H
#define CHOREO_GEN_EMIT_H

#include "schema.h"

/* A growable text buffer. */
typedef struct gen_buf {
    char *data;
    size_t len, cap;
} gen_buf;

void gen_buf_free(gen_buf *b);

/* Appends printf-style text. Aborts when out of memory. */
void gen_buf_printf(gen_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* What is wrong with a prefix, as a phrase that says what to do, or NULL
 * for a valid one: [a-z][a-z0-9]*(_[a-z0-9]+)*, at most 32 characters, and
 * none of choreo, sqlite, sqlite3 and atomic, alone or followed by _...
 * (the names of libchoreo, SQLite and <stdatomic.h>). */
const char *gen_prefix_problem(const char *prefix);

/* True when gen_prefix_problem finds nothing wrong. */
bool gen_prefix_valid(const char *prefix);

/* Generates the header and source text for schema s. `prefix` starts every
 * generated name; `source_name` (the schema file's base name) is quoted in
 * the "generated from" line; `header_name` is what the source #includes.
 * Aborts when out of memory. */
void gen_emit(const gen_schema *s, const char *prefix, const char *source_name,
              const char *header_name, gen_buf *header, gen_buf *source);

#endif
