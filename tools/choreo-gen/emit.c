/* Generates the C API of a schema: a header with one struct and a set of
 * functions per event or record, and a source that encodes, decodes and
 * checks them with choreo's msgpack reader and writer, and binds typed
 * handlers and emits to a service. See events/README.md for the contract. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "emit_rt.h"

#define CHOREO_GEN_VERSION "0.1.0"

void gen_buf_free(gen_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void buf_reserve(gen_buf *b, size_t more)
{
    if (b->cap - b->len > more)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len <= more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fputs("choreo-gen: out of memory\n", stderr);
        abort();
    }
    b->data = p;
    b->cap = cap;
}

static void buf_add(gen_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

typedef struct emitter {
    const gen_schema *s;
    const char *p; /* prefix */
    char P[40];    /* prefix in capitals */
    gen_buf *b;    /* where out() writes */
    const char *source_name; /* schema file name without directories */
    /* Which helper groups the source needs: unused static functions would
     * draw warnings from the compilers of the people using it. */
    bool uses_fields, uses_required, uses_alloc, uses_nil, uses_string, uses_bytes, uses_bool, uses_int, uses_i32,
        uses_u64, uses_f64, uses_list, uses_events;
    bool list_of[GEN_RECORD]; /* list readers needed, by scalar item kind */
} emitter;

static void out(emitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void out(emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    buf_reserve(e->b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(e->b->data + e->b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    e->b->len += (size_t)n;
}

/* Appends a template, replacing @p by the prefix and @P by it in capitals. */
static void tmpl(emitter *e, const char *t)
{
    while (*t) {
        const char *at = strchr(t, '@');
        if (!at) {
            buf_add(e->b, t, strlen(t));
            return;
        }
        buf_add(e->b, t, (size_t)(at - t));
        if (at[1] == 'p')
            buf_add(e->b, e->p, strlen(e->p));
        else if (at[1] == 'P')
            buf_add(e->b, e->P, strlen(e->P));
        else
            buf_add(e->b, at, 2);
        t = at + 2;
    }
}

bool gen_prefix_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 32 || !(p[0] >= 'a' && p[0] <= 'z') || p[n - 1] == '_')
        return false;
    for (size_t i = 0; i < n; i++) {
        bool ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
        if (!ok || (p[i] == '_' && p[i + 1] == '_'))
            return false;
    }
    return true;
}

/* Writes "ret name(params)" + end, wrapping the parameters (separated by
 * ", ") under the opening parenthesis to stay within 100 columns. */
static void sig(emitter *e, const char *ret, const char *name, const char *params,
                const char *end)
{
    size_t col = strlen(ret) + strlen(name) + 1;
    size_t indent = col;
    out(e, "%s%s(", ret, name);
    const char *p = params;
    bool first = true;
    while (*p) {
        const char *comma = strstr(p, ", ");
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t need = n + (comma ? 1 : 1 + strlen(end));
        if (!first && col + 1 + need > 100) {
            out(e, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            out(e, " ");
            col++;
        }
        out(e, "%.*s%s", (int)n, p, comma ? "," : "");
        col += n + (comma ? 1 : 0);
        first = false;
        p += n + (comma ? 2 : 0);
    }
    out(e, ")%s", end);
}

/* ------------------------------------------------------------------------ */
/* Names and literals */

static void upper(char *dst, size_t size, const char *src)
{
    size_t i;
    for (i = 0; src[i] && i + 1 < size; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 'a' + 'A') : src[i];
    dst[i] = '\0';
}

/* The name part of a list type: scalar kind or record snake name. */
static const char *list_key(const gen_type *elem)
{
    return elem->kind == GEN_RECORD ? elem->record->snake : gen_kind_name(elem->kind);
}

/* The C type of a value of type t (as a struct member). */
static void c_type(emitter *e, const gen_type *t, char *buf, size_t size)
{
    switch (t->kind) {
    case GEN_STRING: snprintf(buf, size, "const char *"); break;
    case GEN_BYTES: snprintf(buf, size, "%s_bytes ", e->p); break;
    case GEN_BOOL: snprintf(buf, size, "bool "); break;
    case GEN_I32: snprintf(buf, size, "int32_t "); break;
    case GEN_I64:
    case GEN_TIMESTAMP: snprintf(buf, size, "int64_t "); break;
    case GEN_U64: snprintf(buf, size, "uint64_t "); break;
    case GEN_F64: snprintf(buf, size, "double "); break;
    case GEN_LIST: snprintf(buf, size, "%s_list_%s ", e->p, list_key(t->elem)); break;
    case GEN_RECORD: snprintf(buf, size, "%s_%s ", e->p, t->record->snake); break;
    }
}

/* A C string literal holding exactly the bytes s[0..n). Everything outside
 * printable ASCII is an octal escape, and '?' is escaped against trigraphs. */
static void c_string(emitter *e, const char *s, size_t n)
{
    buf_add(e->b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '"' || c == '\\' || c == '?') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            buf_add(e->b, tmp, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof tmp, "\\%03o", c);
            buf_add(e->b, tmp, 4);
        } else {
            buf_add(e->b, (const char *)&c, 1);
        }
    }
    buf_add(e->b, "\"", 1);
}

/* The C expression of a scalar default value of type t. */
static void c_scalar(emitter *e, const gen_type *t, const gen_value *v)
{
    switch (t->kind) {
    case GEN_STRING:
        c_string(e, v->str, v->len);
        return;
    case GEN_BYTES:
        if (v->len == 0) {
            out(e, "{NULL, 0}");
            return;
        }
        out(e, "{(const uint8_t *)");
        c_string(e, v->str, v->len);
        out(e, ", %zu}", v->len);
        return;
    case GEN_BOOL:
        out(e, "%s", v->b ? "true" : "false");
        return;
    case GEN_I32:
        if (v->neg && v->mag == 2147483648u)
            out(e, "INT32_MIN");
        else
            out(e, "%s%llu", v->neg && v->mag ? "-" : "", (unsigned long long)v->mag);
        return;
    case GEN_I64:
    case GEN_TIMESTAMP:
        if (v->neg && v->mag == (uint64_t)INT64_MAX + 1)
            out(e, "INT64_MIN");
        else
            out(e, "INT64_C(%s%llu)", v->neg && v->mag ? "-" : "", (unsigned long long)v->mag);
        return;
    case GEN_U64:
        out(e, "UINT64_C(%llu)", (unsigned long long)v->mag);
        return;
    case GEN_F64: {
        char num[64];
        snprintf(num, sizeof num, "%.17g", v->f);
        if (!strpbrk(num, ".e"))
            strcat(num, ".0");
        out(e, "%s", num);
        return;
    }
    case GEN_LIST:
    case GEN_RECORD:
        break;
    }
}

/* Writes a schema comment as a C comment with the given indent: one line
 * when it fits, else a block. */
static void doc_comment(emitter *e, const char *doc, const char *indent)
{
    if (!doc || !*doc)
        return;
    bool one_line = !strchr(doc, '\n') && strlen(indent) + strlen(doc) + 6 <= 100;
    out(e, "%s/*", indent);
    const char *p = doc;
    bool first = true;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!first)
            out(e, "\n%s *", indent);
        if (n)
            out(e, " ");
        for (size_t i = 0; i < n; i++) {
            /* Keep the comment closed only where we close it. */
            if (p[i] == '*' && i + 1 < n && p[i + 1] == '/')
                out(e, "* ");
            else
                buf_add(e->b, p + i, 1);
        }
        first = false;
        p += n + (nl ? 1 : 0);
    }
    if (one_line)
        out(e, " */\n");
    else
        out(e, "\n%s */\n", indent);
}

/* ------------------------------------------------------------------------ */
/* Usage scan */

static uint32_t bound_of(const gen_type *t)
{
    if (t->kind == GEN_LIST)
        return t->max ? t->max : GEN_LIST_DEFAULT_MAX;
    return t->max;
}

static void note_type(emitter *e, const gen_type *t)
{
    switch (t->kind) {
    case GEN_STRING: e->uses_string = e->uses_alloc = true; break;
    case GEN_BYTES: e->uses_bytes = e->uses_alloc = true; break;
    case GEN_BOOL: e->uses_bool = true; break;
    case GEN_I32: e->uses_i32 = e->uses_int = true; break;
    case GEN_I64:
    case GEN_TIMESTAMP: e->uses_int = true; break;
    case GEN_U64: e->uses_u64 = true; break;
    case GEN_F64: e->uses_f64 = true; break;
    case GEN_LIST:
        e->uses_list = e->uses_alloc = true;
        if (t->elem->kind != GEN_RECORD)
            e->list_of[t->elem->kind] = true;
        note_type(e, t->elem);
        break;
    case GEN_RECORD: break;
    }
}

static void scan(emitter *e)
{
    for (size_t i = 0; i < e->s->ndecls; i++) {
        const gen_decl *d = &e->s->decls[i];
        if (d->is_event)
            e->uses_events = true;
        for (size_t j = 0; j < d->nfields; j++) {
            note_type(e, d->fields[j].type);
            e->uses_fields = true;
            if (d->fields[j].dflt)
                e->uses_nil = true;
            else
                e->uses_required = true;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Header */

static const char header_intro[] =
    "/*\n"
    " * For each event or record X of the schema (x is its name in snake_case):\n"
    " *\n"
    " * @p_x\n"
    " *     The struct. Its last member, mem_, owns the memory of a decoded value\n"
    " *     and is NULL in a value built by hand.\n"
    " * @p_x_init(v)\n"
    " *     Sets every field to its default (required fields to 0, false, \"\" or\n"
    " *     an empty list) and mem_ to NULL.\n"
    " * @p_x_check(v, err, errlen)\n"
    " *     Checks v against the schema (size bounds, UTF-8, list pointers) as\n"
    " *     encode does. On failure writes a sentence naming the field into err\n"
    " *     (when not NULL) and returns CHOREO_EINVAL or CHOREO_ETOOBIG.\n"
    " * @p_x_encode(v, w)\n"
    " *     Checks v, then writes it to w as a msgpack map keyed by field name,\n"
    " *     every field in schema order. A NULL string is written as \"\".\n"
    " * @p_x_decode(out, data, len, err, errlen)\n"
    " *     Decodes a msgpack map (len 0 means {}). Unknown fields are skipped;\n"
    " *     absent or nil optional fields take their defaults. A missing required\n"
    " *     field, a wrong type, a value over its bound, a duplicate key or\n"
    " *     trailing bytes fail with CHOREO_EDECODE or CHOREO_ETOOBIG and a\n"
    " *     sentence in err naming the event, the field and the problem. *out is\n"
    " *     written only on success. Its strings (NUL-terminated), bytes and\n"
    " *     lists are copies owned by out->mem_: data may be freed at once.\n"
    " * @p_x_free(v)\n"
    " *     Releases what decode allocated and re-initialises v. Accepts NULL and\n"
    " *     values built by hand.\n"
    " *\n"
    " * and for each event X:\n"
    " *\n"
    " * @P_X_TYPE, @P_X_VERSION\n"
    " *     The type name on the wire and the schema version.\n"
    " * @p_emit_x(tx, saga, v, id_out)\n"
    " * @p_emit_x_after(tx, delay_ms, saga, v, id_out)\n"
    " * @p_emit_x_at(tx, at_ms, saga, v, id_out)\n"
    " *     Encode v and call choreo_tx_emit (choreo_tx_emit_after,\n"
    " *     choreo_tx_emit_at) with the type name and version. saga NULL means\n"
    " *     the saga of the event being handled; id_out may be NULL. A value that\n"
    " *     fails its check is not emitted (see @p_x_check for the reason).\n"
    " * @p_on_x(svc, fn, user)\n"
    " *     Registers fn for X with choreo_service_on (before start). For each\n"
    " *     event a trampoline decodes the data, calls fn(tx, meta, v, user) and\n"
    " *     frees v when fn returns: v is valid only during the call. Data that\n"
    " *     does not decode is rejected (choreo parks it) with the reason logged\n"
    " *     on stderr, and fn is not called. Every version is decoded by field\n"
    " *     name; meta->version says which one was sent (to refuse some, use\n"
    " *     choreo_service_accept_versions).\n"
    " *\n"
    " * A list is {items, count}. A decoded list holds at most its bound, or\n"
    " * @P_LIST_DEFAULT_MAX items when the schema gives none. No function keeps a\n"
    " * pointer to its arguments.\n"
    " */\n";

static void emit_header_decl(emitter *e, const gen_decl *d)
{
    char ty[200], tbuf[300], dv[200], U[GEN_NAME_MAX * 2 + 8];
    const char *p = e->p, *x = d->snake;
    upper(U, sizeof U, x);
    out(e, "\n/* ---- %s %s", d->is_event ? "event" : "record", d->name);
    if (d->is_event)
        out(e, " v%u", d->version);
    out(e, " (%s:%d) ---- */\n\n", e->source_name, d->loc.line);
    if (d->is_event) {
        out(e, "#define %s_%s_TYPE \"%s\"\n", e->P, U, d->name);
        out(e, "#define %s_%s_VERSION %uu\n\n", e->P, U, d->version);
    }
    doc_comment(e, d->doc, "");
    out(e, "typedef struct %s_%s {\n", p, x);
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        doc_comment(e, f->doc, "    ");
        c_type(e, f->type, ty, sizeof ty);
        gen_type_str(f->type, tbuf, sizeof tbuf);
        if (f->dflt) {
            gen_value_str(f->dflt, dv, sizeof dv);
            out(e, "    %s%s; /* %s = %s */\n", ty, f->name, tbuf, dv);
        } else {
            out(e, "    %s%s; /* %s, required */\n", ty, f->name, tbuf);
        }
    }
    out(e, "    %s_mem *mem_;\n", p);
    out(e, "} %s_%s;\n\n", p, x);
    if (!d->is_event) {
        out(e, "typedef struct %s_list_%s {\n    const %s_%s *items;\n    size_t count;\n} "
            "%s_list_%s;\n\n", p, x, p, x, p, x);
    }
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s_%s_init", p, x);
    snprintf(params, sizeof params, "%s_%s *v", p, x);
    sig(e, "void ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_check", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, char *err, size_t errlen", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_encode", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, choreo_mp_writer *w", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_decode", p, x);
    snprintf(params, sizeof params,
             "%s_%s *out, const uint8_t *data, size_t len, char *err, size_t errlen", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_free", p, x);
    snprintf(params, sizeof params, "%s_%s *v", p, x);
    sig(e, "void ", name, params, ";\n");
    if (!d->is_event)
        return;
    snprintf(name, sizeof name, "%s_emit_%s", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const char *saga, const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p,
             x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_emit_%s_after", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t delay_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_emit_%s_at", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t at_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "(*%s_%s_handler)", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const choreo_event *meta, const %s_%s *v, void *user", p, x);
    sig(e, "typedef choreo_result ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_on_%s", p, x);
    snprintf(params, sizeof params, "choreo_service *svc, %s_%s_handler fn, void *user", p, x);
    sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
}

static void emit_header(emitter *e, const char *source_name)
{
    out(e, "/* Generated by choreo-gen %s from %s. Do not edit: change the schema\n"
        " * and rebuild. The format and the rules are in events/README.md. */\n",
        CHOREO_GEN_VERSION, source_name);
    out(e, "#ifndef %s_EVENTS_H\n#define %s_EVENTS_H\n\n", e->P, e->P);
    out(e, "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n");
    out(e, "#include <choreo.h>\n\n");
    out(e, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    tmpl(e, header_intro);
    out(e, "\n/* Items a list field accepts when its schema gives no bound. */\n");
    out(e, "#define %s_LIST_DEFAULT_MAX %uu\n\n", e->P, GEN_LIST_DEFAULT_MAX);
    tmpl(e, "/* The memory of a decoded value. */\n"
            "typedef struct @p_mem @p_mem;\n\n"
            "typedef struct @p_bytes {\n"
            "    const uint8_t *data;\n"
            "    size_t len;\n"
            "} @p_bytes;\n\n");
    static const struct {
        const char *name, *ctype;
    } lists[] = {
        {"string", "const char *const"}, {"bytes", "const @p_bytes"}, {"bool", "const bool"},
        {"i32", "const int32_t"},        {"i64", "const int64_t"},    {"u64", "const uint64_t"},
        {"f64", "const double"},         {"timestamp", "const int64_t"},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        char line[200];
        snprintf(line, sizeof line, "typedef struct @p_list_%s {\n    %s *items;\n"
                 "    size_t count;\n} @p_list_%s;\n\n", lists[i].name, lists[i].ctype,
                 lists[i].name);
        tmpl(e, line);
    }
    for (size_t i = 0; i < e->s->ndecls; i++)
        emit_header_decl(e, &e->s->decls[i]);
    out(e, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s_EVENTS_H */\n", e->P);
}

/* ------------------------------------------------------------------------ */
/* Source: defaults and init */

static void emit_defaults(emitter *e, const gen_decl *d)
{
    char ty[200];
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        if (!f->dflt || f->type->kind != GEN_LIST || f->dflt->nitems == 0)
            continue;
        c_type(e, f->type->elem, ty, sizeof ty);
        if (f->type->elem->kind == GEN_STRING)
            out(e, "static const char *const %s__%s__dflt_%s[] = {", e->p, d->snake, f->name);
        else
            out(e, "static const %s%s__%s__dflt_%s[] = {", ty, e->p, d->snake, f->name);
        for (size_t k = 0; k < f->dflt->nitems; k++) {
            out(e, k ? ", " : "");
            c_scalar(e, f->type->elem, &f->dflt->items[k]);
        }
        out(e, "};\n\n");
    }
}

static void emit_init(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    out(e, "void %s_%s_init(%s_%s *v)\n{\n", p, x, p, x);
    out(e, "    if (!v)\n        return;\n    memset(v, 0, sizeof *v);\n");
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        const gen_type *t = f->type;
        if (t->kind == GEN_RECORD) {
            out(e, "    %s_%s_init(&v->%s);\n", p, t->record->snake, f->name);
            continue;
        }
        if (!f->dflt) {
            if (t->kind == GEN_STRING)
                out(e, "    v->%s = \"\";\n", f->name);
            continue;
        }
        switch (t->kind) {
        case GEN_LIST:
            if (f->dflt->nitems)
                out(e, "    v->%s.items = %s__%s__dflt_%s;\n    v->%s.count = %zu;\n",
                    f->name, p, x, f->name, f->name, f->dflt->nitems);
            break;
        case GEN_BYTES:
            if (f->dflt->len) {
                out(e, "    v->%s.data = (const uint8_t *)", f->name);
                c_string(e, f->dflt->str, f->dflt->len);
                out(e, ";\n    v->%s.len = %zu;\n", f->name, f->dflt->len);
            }
            break;
        default:
            out(e, "    v->%s = ", f->name);
            c_scalar(e, t, f->dflt);
            out(e, ";\n");
            break;
        }
    }
    out(e, "}\n\n");
}

/* ------------------------------------------------------------------------ */
/* Source: decode */

/* The statement reading one value of type t into lvalue `dst`. */
static void read_stmt(emitter *e, const gen_type *t, const char *dst, const char *indent)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING:
        out(e, "%sst = %s__read_string(c, &%s, %luu);\n", indent, p, dst,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BYTES:
        out(e, "%sst = %s__read_bytes(c, &%s, %luu);\n", indent, p, dst,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BOOL: out(e, "%sst = %s__read_bool(c, &%s);\n", indent, p, dst); break;
    case GEN_I32: out(e, "%sst = %s__read_i32(c, &%s);\n", indent, p, dst); break;
    case GEN_I64:
    case GEN_TIMESTAMP:
        out(e, "%sst = %s__read_int(c, &%s, \"%s\");\n", indent, p, dst, gen_kind_name(t->kind));
        break;
    case GEN_U64: out(e, "%sst = %s__read_u64(c, &%s);\n", indent, p, dst); break;
    case GEN_F64: out(e, "%sst = %s__read_f64(c, &%s);\n", indent, p, dst); break;
    case GEN_RECORD:
        out(e, "%sst = %s__%s__decode(c, &%s);\n", indent, p, t->record->snake, dst);
        break;
    case GEN_LIST: {
        const gen_type *el = t->elem;
        if (el->kind == GEN_RECORD)
            out(e, "%sst = %s__%s__read_list(c, &%s, %luu);\n", indent, p, el->record->snake,
                dst, (unsigned long)bound_of(t));
        else if (el->kind == GEN_STRING || el->kind == GEN_BYTES)
            out(e, "%sst = %s__read_list_%s(c, &%s, %luu, %luu);\n", indent, p,
                gen_kind_name(el->kind), dst, (unsigned long)bound_of(t),
                (unsigned long)(el->max ? el->max : UINT32_MAX));
        else
            out(e, "%sst = %s__read_list_%s(c, &%s, %luu);\n", indent, p,
                gen_kind_name(el->kind), dst, (unsigned long)bound_of(t));
        break;
    }
    }
}

/* A list reader for items of type el; `name` completes the function name. */
static void emit_list_reader(emitter *e, const gen_type *el, const char *fname)
{
    char ty[200];
    const char *p = e->p;
    bool sized = el->kind == GEN_STRING || el->kind == GEN_BYTES;
    c_type(e, el, ty, sizeof ty);
    out(e, "static choreo_status %s(%s__ctx *c, %s_list_%s *out, uint32_t max%s)\n{\n", fname,
        p, p, list_key(el), sized ? ", uint32_t item_max" : "");
    out(e, "    uint32_t n, i;\n    %s*items = NULL;\n", ty);
    out(e, "    choreo_status st = %s__read_array(c, &n, max);\n", p);
    out(e, "    if (st != CHOREO_OK)\n        return st;\n");
    out(e, "    if (n > 0) {\n        items = %s__alloc(c->mem, (size_t)n * sizeof *items);\n",
        p);
    out(e, "        if (!items)\n            return %s__fail_nomem(c, (size_t)n * sizeof *items);"
        "\n    }\n", p);
    out(e, "    for (i = 0; i < n; i++) {\n        %s__set_index(c, (long)i);\n", p);
    switch (el->kind) {
    case GEN_STRING: out(e, "        st = %s__read_string(c, &items[i], item_max);\n", p); break;
    case GEN_BYTES: out(e, "        st = %s__read_bytes(c, &items[i], item_max);\n", p); break;
    default: read_stmt(e, el, "items[i]", "        "); break;
    }
    out(e, "        if (st != CHOREO_OK)\n            return st;\n    }\n");
    out(e, "    %s__set_index(c, -1);\n    out->items = items;\n    out->count = n;\n", p);
    out(e, "    return CHOREO_OK;\n}\n\n");
}

static void emit_decode(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char dst[GEN_FIELD_NAME_MAX + 8];
    out(e, "static choreo_status %s__%s__decode(%s__ctx *c, %s_%s *v)\n{\n", p, x, p, p, x);
    if (d->nfields) {
        size_t col = 40;
        out(e, "    static const char *const names[] = {");
        for (size_t k = 0; k < d->nfields; k++) {
            size_t w = strlen(d->fields[k].name) + 4;
            if (k && col + w > 98) {
                out(e, ",\n        ");
                col = 8;
            } else if (k) {
                out(e, ", ");
            }
            out(e, "\"%s\"", d->fields[k].name);
            col += w;
        }
        out(e, "};\n    unsigned char seen[%zu];\n", d->nfields);
    }
    out(e, "    uint32_t n, i;\n    choreo_status st;\n");
    out(e, "    %s_%s_init(v);\n", p, x);
    if (d->nfields)
        out(e, "    memset(seen, 0, sizeof seen);\n");
    out(e, "    st = %s__read_map(c, &n);\n    if (st != CHOREO_OK)\n        return st;\n", p);
    out(e, "    for (i = 0; i < n; i++) {\n        const char *key;\n        uint32_t klen;\n");
    if (d->nfields)
        out(e, "        int f = -1;\n");
    out(e, "        st = %s__read_key(c, &key, &klen);\n", p);
    out(e, "        if (st != CHOREO_OK)\n            return st;\n");
    for (size_t k = 0; k < d->nfields; k++) {
        const char *name = d->fields[k].name;
        out(e, "        %sif (klen == %zu && memcmp(key, \"%s\", %zu) == 0)\n            f = %zu;\n",
            k ? "else " : "", strlen(name), name, strlen(name), k);
    }
    if (d->nfields) {
        out(e, "        if (f < 0) {\n");
    } else {
        out(e, "        (void)key;\n        (void)klen;\n        {\n");
    }
    out(e, "            st = %s__skip(c);\n            if (st != CHOREO_OK)\n"
        "                return st;\n            continue;\n        }\n", p);
    if (d->nfields == 0) {
        out(e, "    }\n    return CHOREO_OK;\n}\n\n");
        return;
    }
    out(e, "        if (seen[f])\n            return %s__fail_twice(c, names[f]);\n", p);
    out(e, "        seen[f] = 1;\n        %s__push(c, names[f]);\n", p);
    out(e, "        switch (f) {\n");
    for (size_t k = 0; k < d->nfields; k++) {
        const gen_field *f = &d->fields[k];
        out(e, "        case %zu: /* %s */\n", k, f->name);
        snprintf(dst, sizeof dst, "v->%s", f->name);
        if (f->dflt) {
            out(e, "            if (%s__nil(c))\n                st = CHOREO_OK;\n"
                "            else\n", p);
            read_stmt(e, f->type, dst, "                ");
        } else {
            read_stmt(e, f->type, dst, "            ");
        }
        out(e, "            break;\n");
    }
    out(e, "        default:\n            st = CHOREO_OK;\n            break;\n        }\n");
    out(e, "        if (st != CHOREO_OK)\n            return st;\n        %s__pop(c);\n    }\n",
        p);
    for (size_t k = 0; k < d->nfields; k++) {
        if (d->fields[k].dflt)
            continue;
        out(e, "    if (!seen[%zu])\n        return %s__fail_missing(c, \"%s\");\n", k, p,
            d->fields[k].name);
    }
    out(e, "    return CHOREO_OK;\n}\n\n");
    if (!d->is_event) {
        char fname[GEN_NAME_MAX * 2 + 64];
        gen_type el = {.kind = GEN_RECORD, .record = (gen_decl *)d, .record_name = d->name};
        snprintf(fname, sizeof fname, "%s__%s__read_list", p, x);
        bool listed = false;
        for (size_t i = 0; i < e->s->ndecls; i++)
            for (size_t j = 0; j < e->s->decls[i].nfields; j++) {
                const gen_type *t = e->s->decls[i].fields[j].type;
                listed = listed || (t->kind == GEN_LIST && t->elem->record == d);
            }
        if (listed)
            emit_list_reader(e, &el, fname);
    }
}

static void emit_decode_public(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s_%s_decode", p, x);
    snprintf(params, sizeof params,
             "%s_%s *out, const uint8_t *data, size_t len, char *err, size_t errlen", p, x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    static const uint8_t empty_map = 0x80;\n");
    out(e, "    %s__ctx c;\n    %s_%s v;\n    %s_mem *mem = NULL;\n    choreo_status st;\n", p,
        p, x, p);
    out(e, "    %s__ctx_init(&c, \"%s\", err, errlen);\n", p, d->name);
    out(e, "    if (!out || (!data && len))\n"
        "        return %s__fail(&c, CHOREO_EINVAL, \"decode needs an output and data\");\n", p);
    out(e, "    if (len == 0) {\n        data = &empty_map;\n        len = 1;\n    }\n");
    out(e, "    choreo_mp_reader_init(&c.r, data, len);\n    c.mem = &mem;\n");
    out(e, "    st = %s__%s__decode(&c, &v);\n", p, x);
    out(e, "    if (st == CHOREO_OK && c.r.pos != c.r.end)\n"
        "        st = %s__fail(&c, CHOREO_EDECODE, \"%%lu bytes follow the data map\",\n"
        "                      (unsigned long)(c.r.end - c.r.pos));\n", p);
    out(e, "    if (st != CHOREO_OK) {\n        %s__mem_release(mem);\n        return st;\n    }\n",
        p);
    out(e, "    v.mem_ = mem;\n    *out = v;\n    return CHOREO_OK;\n}\n\n");
    out(e, "void %s_%s_free(%s_%s *v)\n{\n    if (!v)\n        return;\n", p, x, p, x);
    out(e, "    %s__mem_release(v->mem_);\n    %s_%s_init(v);\n}\n\n", p, p, x);
}

/* ------------------------------------------------------------------------ */
/* Source: check and encode */

static void check_value_stmt(emitter *e, const gen_type *t, const char *expr, const char *ind)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING:
        out(e, "%sst = %s__check_string(c, %s, %luu);\n", ind, p, expr,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BYTES:
        out(e, "%sst = %s__check_bytes(c, &%s, %luu);\n", ind, p, expr,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_RECORD:
        out(e, "%sst = %s__%s__check(c, &%s);\n", ind, p, t->record->snake, expr);
        break;
    default:
        out(e, "%sst = CHOREO_OK;\n", ind);
        break;
    }
}

static bool needs_check(const gen_type *t)
{
    return t->kind == GEN_STRING || t->kind == GEN_BYTES || t->kind == GEN_LIST ||
           t->kind == GEN_RECORD;
}

static void emit_check(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char expr[GEN_FIELD_NAME_MAX + 32];
    bool any = false;
    for (size_t i = 0; i < d->nfields; i++)
        any = any || needs_check(d->fields[i].type);
    out(e, "static choreo_status %s__%s__check(%s__ctx *c, const %s_%s *v)\n{\n", p, x, p, p, x);
    if (!any) {
        out(e, "    (void)c;\n    (void)v;\n    return CHOREO_OK;\n}\n\n");
    } else {
        out(e, "    choreo_status st;\n");
        for (size_t i = 0; i < d->nfields; i++) {
            const gen_field *f = &d->fields[i];
            const gen_type *t = f->type;
            if (!needs_check(t))
                continue;
            out(e, "    %s__push(c, \"%s\");\n", p, f->name);
            if (t->kind == GEN_LIST) {
                out(e, "    st = %s__check_count(c, v->%s.items, v->%s.count, %luu);\n", p,
                    f->name, f->name, (unsigned long)bound_of(t));
                if (needs_check(t->elem)) {
                    out(e, "    if (st == CHOREO_OK) {\n        size_t i;\n");
                    out(e, "        for (i = 0; st == CHOREO_OK && i < v->%s.count; i++) {\n",
                        f->name);
                    out(e, "            %s__set_index(c, (long)i);\n", p);
                    snprintf(expr, sizeof expr, "v->%s.items[i]", f->name);
                    check_value_stmt(e, t->elem, expr, "            ");
                    out(e, "        }\n        if (st == CHOREO_OK)\n"
                        "            %s__set_index(c, -1);\n    }\n", p);
                }
            } else {
                snprintf(expr, sizeof expr, "v->%s", f->name);
                check_value_stmt(e, t, expr, "    ");
            }
            out(e, "    if (st != CHOREO_OK)\n        return st;\n    %s__pop(c);\n", p);
        }
        out(e, "    return CHOREO_OK;\n}\n\n");
    }
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s_%s_check", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, char *err, size_t errlen", p, x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    %s__ctx c;\n    %s__ctx_init(&c, \"%s\", err, errlen);\n", p, p, d->name);
    out(e, "    if (!v)\n        return %s__fail(&c, CHOREO_EINVAL, \"the value is NULL\");\n", p);
    out(e, "    return %s__%s__check(&c, v);\n}\n\n", p, x);
}

static void write_stmt(emitter *e, const gen_type *t, const char *expr, const char *ind)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING: out(e, "%s%s__write_string(w, %s);\n", ind, p, expr); break;
    case GEN_BYTES:
        out(e, "%schoreo_mp_write_bin(w, %s.data, %s.len);\n", ind, expr, expr);
        break;
    case GEN_BOOL: out(e, "%schoreo_mp_write_bool(w, %s);\n", ind, expr); break;
    case GEN_I32:
    case GEN_I64:
    case GEN_TIMESTAMP: out(e, "%schoreo_mp_write_int(w, %s);\n", ind, expr); break;
    case GEN_U64: out(e, "%schoreo_mp_write_uint(w, %s);\n", ind, expr); break;
    case GEN_F64: out(e, "%schoreo_mp_write_double(w, %s);\n", ind, expr); break;
    case GEN_RECORD:
        out(e, "%s%s__%s__encode(w, &%s);\n", ind, p, t->record->snake, expr);
        break;
    case GEN_LIST: {
        char item[GEN_FIELD_NAME_MAX + 32];
        out(e, "%s{\n%s    size_t i;\n", ind, ind);
        out(e, "%s    choreo_mp_write_array(w, (uint32_t)%s.count);\n", ind, expr);
        out(e, "%s    for (i = 0; i < %s.count; i++)\n", ind, expr);
        snprintf(item, sizeof item, "%s.items[i]", expr);
        char ind2[32];
        snprintf(ind2, sizeof ind2, "%s        ", ind);
        write_stmt(e, t->elem, item, ind2);
        out(e, "%s}\n", ind);
        break;
    }
    }
}

static void emit_encode(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char expr[GEN_FIELD_NAME_MAX + 8];
    out(e, "static void %s__%s__encode(choreo_mp_writer *w, const %s_%s *v)\n{\n", p, x, p, x);
    if (d->nfields == 0)
        out(e, "    (void)v;\n");
    out(e, "    choreo_mp_write_map(w, %zuu);\n", d->nfields);
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        out(e, "    choreo_mp_write_str(w, \"%s\", %zu);\n", f->name, strlen(f->name));
        snprintf(expr, sizeof expr, "v->%s", f->name);
        write_stmt(e, f->type, expr, "    ");
    }
    out(e, "}\n\n");
    out(e, "choreo_status %s_%s_encode(const %s_%s *v, choreo_mp_writer *w)\n{\n", p, x, p, x);
    out(e, "    choreo_status st;\n");
    out(e, "    if (!v || !w)\n        return CHOREO_EINVAL;\n");
    out(e, "    st = %s_%s_check(v, NULL, 0);\n    if (st != CHOREO_OK)\n        return st;\n",
        p, x);
    out(e, "    %s__%s__encode(w, v);\n    return choreo_mp_writer_status(w);\n}\n\n", p, x);
}

/* ------------------------------------------------------------------------ */
/* Source: emit and handlers */

static void emit_event_api(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char U[GEN_NAME_MAX * 2 + 8];
    upper(U, sizeof U, x);
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s__%s__emit", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, %s__when when, int64_t ms, "
             "const char *saga, const %s_%s *v, char *id_out", p, p, x);
    sig(e, "static choreo_status ", name, params, "\n{\n");
    out(e, "    choreo_mp_writer w;\n    choreo_status st;\n");
    out(e, "    if (!tx || !v)\n        return CHOREO_EINVAL;\n");
    out(e, "    choreo_mp_writer_init(&w, 0);\n    st = %s_%s_encode(v, &w);\n", p, x);
    out(e, "    if (st == CHOREO_OK)\n        st = %s__emit(tx, when, ms, %s_%s_TYPE,\n"
        "                    %s_%s_VERSION, saga, &w, id_out);\n", p, e->P, U, e->P, U);
    out(e, "    choreo_mp_writer_free(&w);\n    return st;\n}\n\n");
    snprintf(name, sizeof name, "%s_emit_%s", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const char *saga, const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p,
             x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    return %s__%s__emit(tx, %s__NOW, 0, saga, v, id_out);\n}\n\n", p, x, e->P);
    snprintf(name, sizeof name, "%s_emit_%s_after", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t delay_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    return %s__%s__emit(tx, %s__AFTER, delay_ms, saga, v, id_out);\n}\n\n", p, x,
        e->P);
    snprintf(name, sizeof name, "%s_emit_%s_at", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t at_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    return %s__%s__emit(tx, %s__AT, at_ms, saga, v, id_out);\n}\n\n", p, x, e->P);
    snprintf(name, sizeof name, "%s__%s__on", p, x);
    sig(e, "static choreo_result ", name, "choreo_tx *tx, const choreo_event *meta, void *user",
        "\n{\n");
    out(e, "    const %s__binding *b = user;\n    %s_%s v;\n    char err[256];\n"
        "    choreo_result res;\n", p, p, x);
    out(e, "    if (%s_%s_decode(&v, meta->data, meta->data_len, err, sizeof err) !=\n"
        "        CHOREO_OK) {\n"
        "        %s__log_reject(meta, err);\n        return CHOREO_REJECT;\n    }\n", p, x, p);
    out(e, "    res = ((%s_%s_handler)b->fn)(tx, meta, &v, b->user);\n", p, x);
    out(e, "    %s_%s_free(&v);\n    return res;\n}\n\n", p, x);
    snprintf(name, sizeof name, "%s_on_%s", p, x);
    snprintf(params, sizeof params, "choreo_service *svc, %s_%s_handler fn, void *user", p, x);
    sig(e, "choreo_status ", name, params, "\n{\n");
    out(e, "    %s__binding *b;\n    if (!svc || !fn)\n        return CHOREO_EINVAL;\n", p);
    out(e, "    b = %s__bind((%s__fn)fn, user);\n    if (!b)\n        return CHOREO_ENOMEM;\n", p,
        p);
    out(e, "    return choreo_service_on(svc, %s_%s_TYPE, %s__%s__on, b);\n}\n\n", e->P, U, p, x);
}

static void emit_source(emitter *e, const char *source_name, const char *header_name)
{
    out(e, "/* Generated by choreo-gen %s from %s. Do not edit: change the schema\n"
        " * and rebuild. */\n", CHOREO_GEN_VERSION, source_name);
    out(e, "#include \"%s\"\n\n", header_name);
    out(e, "#include <stdarg.h>\n");
    if (e->uses_events)
        out(e, "#include <stdatomic.h>\n");
    out(e, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    if (e->s->ndecls == 0) {
        tmpl(e, "/* The schema declares nothing: this struct keeps the unit non-empty. */\n"
                "struct @p_mem {\n    int unused;\n};\n");
        return;
    }
    tmpl(e, rt_common);
    tmpl(e, rt_common2);
    if (e->uses_fields)
        tmpl(e, rt_fields);
    if (e->uses_required)
        tmpl(e, rt_required);
    if (e->uses_alloc)
        tmpl(e, rt_alloc);
    if (e->uses_nil)
        tmpl(e, rt_nil);
    if (e->uses_string) {
        tmpl(e, rt_utf8);
        tmpl(e, rt_string);
    }
    if (e->uses_bytes)
        tmpl(e, rt_bytes);
    if (e->uses_bool)
        tmpl(e, rt_bool);
    if (e->uses_int)
        tmpl(e, rt_int);
    if (e->uses_i32)
        tmpl(e, rt_i32);
    if (e->uses_u64)
        tmpl(e, rt_u64);
    if (e->uses_f64)
        tmpl(e, rt_f64);
    if (e->uses_list)
        tmpl(e, rt_list);
    if (e->uses_events)
        tmpl(e, rt_events);
    out(e, "\n");
    for (int k = 0; k < GEN_RECORD; k++) {
        if (!e->list_of[k])
            continue;
        char fname[64];
        gen_type el = {.kind = (gen_kind)k};
        snprintf(fname, sizeof fname, "%s__read_list_%s", e->p, gen_kind_name((gen_kind)k));
        emit_list_reader(e, &el, fname);
    }
    for (size_t i = 0; i < e->s->ndecls; i++) {
        const gen_decl *d = &e->s->decls[i];
        out(e, "/* ---- %s %s ---- */\n\n", d->is_event ? "event" : "record", d->name);
        emit_defaults(e, d);
        emit_init(e, d);
        emit_decode(e, d);
        emit_decode_public(e, d);
        emit_check(e, d);
        emit_encode(e, d);
        if (d->is_event)
            emit_event_api(e, d);
    }
}

void gen_emit(const gen_schema *s, const char *prefix, const char *source_name,
              const char *header_name, gen_buf *header, gen_buf *source)
{
    emitter e;
    memset(&e, 0, sizeof e);
    e.s = s;
    e.p = prefix;
    e.source_name = source_name;
    upper(e.P, sizeof e.P, prefix);
    scan(&e);
    e.b = header;
    buf_reserve(header, 1);
    emit_header(&e, source_name);
    e.b = source;
    buf_reserve(source, 1);
    emit_source(&e, source_name, header_name);
}
