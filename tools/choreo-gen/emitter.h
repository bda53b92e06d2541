/* The state and text helpers shared by the two halves of the generator:
 * emit.c (helpers and the header) and emit_source.c (the source). */
#ifndef CHOREO_GEN_EMITTER_H
#define CHOREO_GEN_EMITTER_H

#include "emit.h"

#define CHOREO_GEN_VERSION "0.1.0"

typedef struct emitter {
    const gen_schema *s;
    const char *p; /* prefix */
    char P[40];    /* prefix in capitals */
    gen_buf *b;    /* where emit_out() writes */
    const char *source_name; /* schema file name without directories */
    /* Which helper groups the source needs: unused static functions would
     * draw warnings from the compilers of the people using it. */
    bool uses_fields, uses_required, uses_alloc, uses_nil, uses_string, uses_bytes, uses_bool, uses_int, uses_i32,
        uses_u64, uses_f64, uses_list, uses_events;
    bool list_of[GEN_RECORD]; /* list readers needed, by scalar item kind */
} emitter;

/* Appends printf-style text to the current output. */
void emit_out(emitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Appends a template, replacing @p by the prefix and @P by it in capitals. */
void emit_tmpl(emitter *e, const char *t);

/* Writes "ret name(params)" + end, wrapping the ", "-separated parameters
 * under the opening parenthesis within 100 columns. */
void emit_sig(emitter *e, const char *ret, const char *name, const char *params,
              const char *end);

/* dst = src in capitals. */
void emit_upper(char *dst, size_t size, const char *src);

/* The name part of a list type: scalar kind or record snake name. */
const char *emit_list_key(const gen_type *elem);

/* The C type of a value of type t as a struct member ("int32_t ",
 * "const char *"), into buf. */
void emit_c_type(emitter *e, const gen_type *t, char *buf, size_t size);

/* A C string literal holding exactly the bytes s[0..n). */
void emit_c_string(emitter *e, const char *s, size_t n);

/* The C expression of a scalar default value of type t. */
void emit_c_scalar(emitter *e, const gen_type *t, const gen_value *v);

/* A schema comment as a C comment with the given indent. */
void emit_doc_comment(emitter *e, const char *doc, const char *indent);

/* The item bound a decoder enforces for a list (its own or the default), or
 * a string's or bytes' bound (0 when none). */
uint32_t emit_bound_of(const gen_type *t);

/* Writes the whole generated source into e->b. */
void emit_source(emitter *e, const char *source_name, const char *header_name);

#endif
