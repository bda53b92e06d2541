/* Generates the C API of a schema: this file holds the text helpers shared
 * by both outputs and writes the header (one struct and a set of functions
 * per event or record); emit_source.c writes the implementation. See
 * events/README.md for the contract of the generated code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emitter.h"

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

static void buf_vprintf(gen_buf *b, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0) {
        buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void gen_buf_printf(gen_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void emit_out(emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(e->b, fmt, ap);
    va_end(ap);
}

/* Appends a template, replacing @p by the prefix and @P by it in capitals. */
void emit_tmpl(emitter *e, const char *t)
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

const char *gen_prefix_problem(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 32)
        return "use 1 to 32 characters";
    bool shape = p[0] >= 'a' && p[0] <= 'z' && p[n - 1] != '_';
    for (size_t i = 0; i < n && shape; i++) {
        bool ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
        shape = ok && !(p[i] == '_' && p[i + 1] == '_');
    }
    if (!shape)
        return "use lowercase letters and digits, starting with a letter, with single '_' "
               "between words ([a-z][a-z0-9]*(_[a-z0-9]+)*), e.g. shop or my_shop";
    /* Generated names are PREFIX_x and PREFIX_X: with these prefixes they
     * would share the namespace of a library the generated code includes:
     * libchoreo's (choreo_event, choreo_status, choreo_tx, CHOREO_OK, ...),
     * SQLite's, which choreo.h includes (sqlite3_stmt, SQLITE_VERSION, ...),
     * or C11's <stdatomic.h> (atomic_int, ...), and could clash with it. */
    static const struct {
        const char *word, *why;
    } reserved[] = {
        {"choreo", "names starting with choreo_ are libchoreo's own (choreo_event, "
                   "choreo_status, choreo_tx, ...) and generated names would clash with them: "
                   "use a prefix of your own, such as the schema's or the service's name"},
        {"sqlite", "names starting with sqlite_ or SQLITE_ are SQLite's (SQLITE_VERSION, ...), "
                   "which choreo.h includes, and generated names could clash with them: use a "
                   "prefix of your own, such as the schema's or the service's name"},
        {"sqlite3", "names starting with sqlite3_ are SQLite's (sqlite3_stmt, ...), which "
                    "choreo.h includes, and generated names could clash with them: use a "
                    "prefix of your own, such as the schema's or the service's name"},
        {"atomic", "names starting with atomic_ are C11's <stdatomic.h> (atomic_int, ...), "
                   "which the generated source includes, and generated names could clash with "
                   "them: use a prefix of your own, such as the schema's or the service's name"},
    };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        size_t w = strlen(reserved[i].word);
        if (strncmp(p, reserved[i].word, w) == 0 && (p[w] == '\0' || p[w] == '_'))
            return reserved[i].why;
    }
    return NULL;
}

bool gen_prefix_valid(const char *p)
{
    return gen_prefix_problem(p) == NULL;
}

/* Writes "ret name(params)" + end, wrapping the parameters (separated by
 * ", ") under the opening parenthesis to stay within 100 columns. */
void emit_sig(emitter *e, const char *ret, const char *name, const char *params,
                const char *end)
{
    size_t col = strlen(ret) + strlen(name) + 1;
    size_t indent = col;
    emit_out(e, "%s%s(", ret, name);
    const char *p = params;
    bool first = true;
    while (*p) {
        const char *comma = strstr(p, ", ");
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        size_t need = n + (comma ? 1 : 1 + strlen(end));
        if (!first && col + 1 + need > 100) {
            emit_out(e, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            emit_out(e, " ");
            col++;
        }
        emit_out(e, "%.*s%s", (int)n, p, comma ? "," : "");
        col += n + (comma ? 1 : 0);
        first = false;
        p += n + (comma ? 2 : 0);
    }
    emit_out(e, ")%s", end);
}

/* ------------------------------------------------------------------------ */
/* Names and literals */

void emit_upper(char *dst, size_t size, const char *src)
{
    size_t i;
    for (i = 0; src[i] && i + 1 < size; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 'a' + 'A') : src[i];
    dst[i] = '\0';
}

/* The name part of a list type: scalar kind or record snake name. */
const char *emit_list_key(const gen_type *elem)
{
    return elem->kind == GEN_RECORD ? elem->record->snake : gen_kind_name(elem->kind);
}

/* The C type of a value of type t (as a struct member). */
void emit_c_type(emitter *e, const gen_type *t, char *buf, size_t size)
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
    case GEN_LIST: snprintf(buf, size, "%s_list_%s ", e->p, emit_list_key(t->elem)); break;
    case GEN_RECORD: snprintf(buf, size, "%s_%s ", e->p, t->record->snake); break;
    }
}

/* A C string literal holding exactly the bytes s[0..n). Everything outside
 * printable ASCII is an octal escape, and '?' is escaped against trigraphs. */
void emit_c_string(emitter *e, const char *s, size_t n)
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
void emit_c_scalar(emitter *e, const gen_type *t, const gen_value *v)
{
    switch (t->kind) {
    case GEN_STRING:
        emit_c_string(e, v->str, v->len);
        return;
    case GEN_BYTES:
        if (v->len == 0) {
            emit_out(e, "{NULL, 0}");
            return;
        }
        emit_out(e, "{(const uint8_t *)");
        emit_c_string(e, v->str, v->len);
        emit_out(e, ", %zu}", v->len);
        return;
    case GEN_BOOL:
        emit_out(e, "%s", v->b ? "true" : "false");
        return;
    case GEN_I32:
        if (v->neg && v->mag == 2147483648u)
            emit_out(e, "INT32_MIN");
        else
            emit_out(e, "%s%llu", v->neg && v->mag ? "-" : "", (unsigned long long)v->mag);
        return;
    case GEN_I64:
    case GEN_TIMESTAMP:
        if (v->neg && v->mag == (uint64_t)INT64_MAX + 1)
            emit_out(e, "INT64_MIN");
        else
            emit_out(e, "INT64_C(%s%llu)", v->neg && v->mag ? "-" : "", (unsigned long long)v->mag);
        return;
    case GEN_U64:
        emit_out(e, "UINT64_C(%llu)", (unsigned long long)v->mag);
        return;
    case GEN_F64: {
        char num[64];
        snprintf(num, sizeof num, "%.17g", v->f);
        if (!strpbrk(num, ".e"))
            strcat(num, ".0");
        emit_out(e, "%s", num);
        return;
    }
    case GEN_LIST:
    case GEN_RECORD:
        break;
    }
}

/* Writes a schema comment as a C comment with the given indent: one line
 * when it fits, else a block. */
void emit_doc_comment(emitter *e, const char *doc, const char *indent)
{
    if (!doc || !*doc)
        return;
    bool one_line = !strchr(doc, '\n') && strlen(indent) + strlen(doc) + 6 <= 100;
    emit_out(e, "%s/*", indent);
    const char *p = doc;
    bool first = true;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!first)
            emit_out(e, "\n%s *", indent);
        if (n)
            emit_out(e, " ");
        for (size_t i = 0; i < n; i++) {
            /* A space splits what compilers would read inside a comment:
             * "*" "/" would close it early, "/" "*" draws -Wcomment, and
             * "?" "?" starts a trigraph (a warning, or with "/" a line
             * splice). */
            bool split = i + 1 < n && ((p[i] == '*' && p[i + 1] == '/') ||
                                       (p[i] == '/' && p[i + 1] == '*') ||
                                       (p[i] == '?' && p[i + 1] == '?'));
            buf_add(e->b, p + i, 1);
            if (split)
                buf_add(e->b, " ", 1);
        }
        first = false;
        p += n + (nl ? 1 : 0);
    }
    if (one_line)
        emit_out(e, " */\n");
    else
        emit_out(e, "\n%s */\n", indent);
}

/* ------------------------------------------------------------------------ */
/* Usage scan */

uint32_t emit_bound_of(const gen_type *t)
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
    emit_upper(U, sizeof U, x);
    emit_out(e, "\n/* ---- %s %s", d->is_event ? "event" : "record", d->name);
    if (d->is_event)
        emit_out(e, " v%u", d->version);
    emit_out(e, " (%s:%d) ---- */\n\n", e->source_name, d->loc.line);
    if (d->is_event) {
        emit_out(e, "#define %s_%s_TYPE \"%s\"\n", e->P, U, d->name);
        emit_out(e, "#define %s_%s_VERSION %uu\n\n", e->P, U, d->version);
    }
    emit_doc_comment(e, d->doc, "");
    emit_out(e, "typedef struct %s_%s {\n", p, x);
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        emit_doc_comment(e, f->doc, "    ");
        emit_c_type(e, f->type, ty, sizeof ty);
        gen_type_str(f->type, tbuf, sizeof tbuf);
        if (f->dflt) {
            gen_value_str(f->dflt, dv, sizeof dv);
            emit_out(e, "    %s%s; /* %s = %s */\n", ty, f->name, tbuf, dv);
        } else {
            emit_out(e, "    %s%s; /* %s, required */\n", ty, f->name, tbuf);
        }
    }
    emit_out(e, "    %s_mem *mem_;\n", p);
    emit_out(e, "} %s_%s;\n\n", p, x);
    if (!d->is_event) {
        emit_out(e, "typedef struct %s_list_%s {\n    const %s_%s *items;\n    size_t count;\n} "
            "%s_list_%s;\n\n", p, x, p, x, p, x);
    }
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s_%s_init", p, x);
    snprintf(params, sizeof params, "%s_%s *v", p, x);
    emit_sig(e, "void ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_check", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, char *err, size_t errlen", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_encode", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, choreo_mp_writer *w", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_decode", p, x);
    snprintf(params, sizeof params,
             "%s_%s *out, const uint8_t *data, size_t len, char *err, size_t errlen", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_%s_free", p, x);
    snprintf(params, sizeof params, "%s_%s *v", p, x);
    emit_sig(e, "void ", name, params, ";\n");
    if (!d->is_event)
        return;
    snprintf(name, sizeof name, "%s_emit_%s", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const char *saga, const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p,
             x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_emit_%s_after", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t delay_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_emit_%s_at", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t at_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
    snprintf(name, sizeof name, "(*%s_%s_handler)", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const choreo_event *meta, const %s_%s *v, void *user", p, x);
    emit_sig(e, "typedef choreo_result ", name, params, ";\n");
    snprintf(name, sizeof name, "%s_on_%s", p, x);
    snprintf(params, sizeof params, "choreo_service *svc, %s_%s_handler fn, void *user", p, x);
    emit_sig(e, "CHOREO_WUR choreo_status ", name, params, ";\n");
}

static void emit_header(emitter *e, const char *source_name)
{
    emit_out(e, "/* Generated by choreo-gen %s from %s. Do not edit: change the schema\n"
        " * and rebuild. The format and the rules are in events/README.md. */\n",
        CHOREO_GEN_VERSION, source_name);
    emit_out(e, "#ifndef %s_EVENTS_H\n#define %s_EVENTS_H\n\n", e->P, e->P);
    emit_out(e, "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n");
    emit_out(e, "#include <choreo.h>\n\n");
    emit_out(e, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    emit_tmpl(e, header_intro);
    emit_out(e, "\n/* Items a list field accepts when its schema gives no bound. */\n");
    emit_out(e, "#define %s_LIST_DEFAULT_MAX %uu\n\n", e->P, GEN_LIST_DEFAULT_MAX);
    emit_tmpl(e, "/* The memory of a decoded value. */\n"
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
        emit_tmpl(e, line);
    }
    for (size_t i = 0; i < e->s->ndecls; i++)
        emit_header_decl(e, &e->s->decls[i]);
    emit_out(e, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s_EVENTS_H */\n", e->P);
}

void gen_emit(const gen_schema *s, const char *prefix, const char *source_name,
              const char *header_name, gen_buf *header, gen_buf *source)
{
    emitter e;
    memset(&e, 0, sizeof e);
    e.s = s;
    e.p = prefix;
    e.source_name = source_name;
    emit_upper(e.P, sizeof e.P, prefix);
    scan(&e);
    e.b = header;
    buf_reserve(header, 1);
    emit_header(&e, source_name);
    e.b = source;
    buf_reserve(source, 1);
    emit_source(&e, source_name, header_name);
}
