/* The parser of *.events files: recursive descent over the tokens of lex.c
 * into the model of schema.h. After an error it skips to the next line and
 * goes on, so that one run reports every mistake with its file:line:col;
 * when the text parses, check.c checks what it says. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

/* Grows an arena array of n elements to hold one more. */
static void *grow(gen_arena *a, void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = gen_arena_alloc(a, ncap * elem);
    if (n)
        memcpy(p, arr, n * elem);
    *cap = ncap;
    return p;
}


typedef struct parser {
    gen_lexer lx;
    gen_token cur;
    gen_schema *s;
    gen_arena *a;
    gen_diags *diags;
    size_t errors;
    size_t decl_cap;
    int depth; /* list<...> or [...] levels open, at most GEN_PARSE_DEPTH_MAX */
} parser;

static void perr(parser *p, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void perr(parser *p, gen_loc loc, const char *fmt, ...)
{
    char msg[sizeof(((gen_diag *)0)->msg)];
    va_list ap;
    p->errors++;
    if (p->cur.kind == T_BAD)
        return; /* the lexer has said what is wrong with this token */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gen_diag_add(p->diags, loc, "%s", msg);
}

static void next(parser *p)
{
    p->cur = gen_lex_next(&p->lx);
}

static bool is_kw(const gen_token *t, const char *kw)
{
    return t->kind == T_IDENT && t->len == strlen(kw) && memcmp(t->start, kw, t->len) == 0;
}

/* Describes a gen_token for "found ..." in messages. */
static const char *describe(const gen_token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case T_EOF: return "the end of the file";
    case T_NL: return "the end of the line";
    case T_STRING: return "a string";
    case T_BAD: return "an invalid token";
    default: break;
    }
    size_t n = t->len > 40 ? 40 : t->len;
    snprintf(buf, size, "'%.*s%s'", (int)n, t->start, t->len > n ? "..." : "");
    return buf;
}

#define FOUND(p) describe(&(p)->cur, found_buf, sizeof found_buf)

/* Skips to the end of the current line (not past a closing brace that ends
 * the body we are in: the caller decides about that). */
static void skip_line(parser *p)
{
    while (p->cur.kind != T_NL && p->cur.kind != T_EOF)
        next(p);
}

static gen_type *parse_type(parser *p);

static bool parse_bound(parser *p, gen_type *t)
{
    char found_buf[64];
    if (p->cur.kind != T_LPAREN)
        return true;
    gen_loc lp = p->cur.loc;
    next(p);
    if (p->cur.kind != T_INT || p->cur.start[0] == '-') {
        perr(p, p->cur.loc, "expected a size bound (a positive integer) after '(', found %s",
             FOUND(p));
        return false;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p->cur.start, &end, 10);
    if (errno || v == 0 || v > GEN_BOUND_MAX) {
        perr(p, p->cur.loc, "size bound %.*s is out of range: use 1 to %u",
             (int)p->cur.len, p->cur.start, GEN_BOUND_MAX);
        v = 1;
    }
    t->max = (uint32_t)v;
    next(p);
    if (p->cur.kind != T_RPAREN) {
        perr(p, p->cur.loc, "expected ')' to close the size bound opened at column %d, found %s",
             lp.col, FOUND(p));
        return false;
    }
    next(p);
    return true;
}

static const struct {
    const char *name;
    gen_kind kind;
} scalars[] = {
    {"string", GEN_STRING}, {"bytes", GEN_BYTES}, {"bool", GEN_BOOL},
    {"i32", GEN_I32},       {"i64", GEN_I64},     {"u64", GEN_U64},
    {"f64", GEN_F64},       {"timestamp", GEN_TIMESTAMP},
};

const char *gen_kind_name(gen_kind k)
{
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        if (scalars[i].kind == k)
            return scalars[i].name;
    return k == GEN_LIST ? "list" : "record";
}

static gen_type *parse_type(parser *p)
{
    char found_buf[64];
    if (p->cur.kind != T_IDENT) {
        perr(p, p->cur.loc, "expected a type (string, bytes, bool, i32, i64, u64, f64, "
             "timestamp, list<T> or a record name), found %s", FOUND(p));
        return NULL;
    }
    gen_type *t = gen_arena_alloc(p->a, sizeof *t);
    t->loc = p->cur.loc;
    bool found = false;
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        if (is_kw(&p->cur, scalars[i].name)) {
            t->kind = scalars[i].kind;
            found = true;
        }
    }
    if (!found && is_kw(&p->cur, "list")) {
        t->kind = GEN_LIST;
        if (p->depth == GEN_PARSE_DEPTH_MAX) {
            perr(p, p->cur.loc, "list<...> nested more than %d levels deep: a list holds "
                 "scalars or records (put an inner list in a record)", GEN_PARSE_DEPTH_MAX);
            return NULL;
        }
        next(p);
        if (p->cur.kind != T_LT) {
            perr(p, p->cur.loc, "expected '<' after 'list' (as in list<string>), found %s",
                 FOUND(p));
            return NULL;
        }
        next(p);
        p->depth++;
        t->elem = parse_type(p);
        p->depth--;
        if (!t->elem)
            return NULL;
        if (p->cur.kind != T_GT) {
            perr(p, p->cur.loc, "expected '>' to close 'list<', found %s", FOUND(p));
            return NULL;
        }
        next(p);
        return parse_bound(p, t) ? t : NULL;
    }
    if (!found) {
        t->kind = GEN_RECORD;
        t->record_name = gen_arena_strndup(p->a, p->cur.start, p->cur.len);
    }
    next(p);
    return parse_bound(p, t) ? t : NULL;
}

static gen_value *parse_value(parser *p)
{
    char found_buf[64];
    gen_value *v = gen_arena_alloc(p->a, sizeof *v);
    v->loc = p->cur.loc;
    switch (p->cur.kind) {
    case T_STRING:
        v->kind = GEN_LIT_STRING;
        v->str = p->cur.str;
        v->len = p->cur.str_len;
        v->raw = p->cur.raw;
        next(p);
        return v;
    case T_INT: {
        v->kind = GEN_LIT_INT;
        v->text = gen_arena_strndup(p->a, p->cur.start, p->cur.len);
        const char *d = v->text;
        v->neg = *d == '-';
        if (v->neg)
            d++;
        for (; *d; d++) {
            unsigned dig = (unsigned)(*d - '0');
            if (v->mag > (UINT64_MAX - dig) / 10)
                v->overflow = true;
            else
                v->mag = v->mag * 10 + dig;
        }
        v->f = strtod(v->text, NULL);
        next(p);
        return v;
    }
    case T_FLOAT:
        v->kind = GEN_LIT_FLOAT;
        v->text = gen_arena_strndup(p->a, p->cur.start, p->cur.len);
        v->f = strtod(v->text, NULL);
        next(p);
        return v;
    case T_IDENT:
        if (is_kw(&p->cur, "true") || is_kw(&p->cur, "false")) {
            v->kind = GEN_LIT_BOOL;
            v->b = is_kw(&p->cur, "true");
            next(p);
            return v;
        }
        break;
    case T_LBRACK: {
        size_t cap = 0;
        gen_loc open = p->cur.loc;
        v->kind = GEN_LIT_LIST;
        if (p->depth == GEN_PARSE_DEPTH_MAX) {
            perr(p, p->cur.loc, "'[' nested more than %d levels deep: a default list holds "
                 "scalar values, not lists", GEN_PARSE_DEPTH_MAX);
            return NULL;
        }
        next(p);
        while (p->cur.kind != T_RBRACK) {
            p->depth++;
            gen_value *item = parse_value(p);
            p->depth--;
            if (!item)
                return NULL;
            v->items = grow(p->a, v->items, v->nitems, &cap, sizeof *v->items);
            v->items[v->nitems++] = *item;
            if (p->cur.kind == T_COMMA) {
                next(p);
                continue;
            }
            if (p->cur.kind != T_RBRACK) {
                perr(p, p->cur.loc, "expected ',' or ']' in the list opened at line %d, "
                     "found %s", open.line, FOUND(p));
                return NULL;
            }
        }
        next(p);
        return v;
    }
    default:
        break;
    }
    perr(p, p->cur.loc, "expected a default value (a string, number, true, false or a "
         "list [...]), found %s", FOUND(p));
    return NULL;
}

/* One field line: name ':' type ['=' value]. Returns false after an error
 * (the caller skips the rest of the line). */
static bool parse_field(parser *p, gen_field *f)
{
    char found_buf[64];
    f->loc = p->cur.loc;
    f->doc = p->cur.doc;
    f->name = gen_arena_strndup(p->a, p->cur.start, p->cur.len);
    next(p);
    if (p->cur.kind != T_COLON) {
        perr(p, p->cur.loc, "expected ':' after field name '%s', found %s", f->name, FOUND(p));
        return false;
    }
    next(p);
    f->type = parse_type(p);
    if (!f->type)
        return false;
    if (p->cur.kind == T_EQ) {
        next(p);
        f->dflt = parse_value(p);
        if (!f->dflt)
            return false;
    }
    if (p->cur.kind != T_NL && p->cur.kind != T_RBRACE && p->cur.kind != T_EOF) {
        perr(p, p->cur.loc, "unexpected %s after field '%s': write one field per line",
             FOUND(p), f->name);
        return false;
    }
    if (p->lx.trail && p->lx.trail_line == f->loc.line && !f->doc)
        f->doc = p->lx.trail;
    return true;
}

static void parse_decl(parser *p, gen_token kw);

/* Fields up to the closing brace. A line starting with 'event' or 'record'
 * followed by a name (not ':') means the brace was forgotten. */
static void parse_body(parser *p, gen_decl *d, gen_loc open)
{
    char found_buf[64];
    size_t cap = 0;
    const char *what = d->is_event ? "event" : "record";
    for (;;) {
        while (p->cur.kind == T_NL)
            next(p);
        if (p->cur.kind == T_RBRACE) {
            d->close_loc = p->cur.loc;
            next(p);
            if (p->cur.kind != T_NL && p->cur.kind != T_EOF) {
                perr(p, p->cur.loc, "unexpected %s after the '}' closing %s %s",
                     FOUND(p), what, d->name);
                skip_line(p);
            }
            return;
        }
        if (p->cur.kind == T_EOF) {
            perr(p, p->cur.loc, "missing '}' to close %s %s opened at line %d", what,
                 d->name, open.line);
            return;
        }
        if (p->cur.kind != T_IDENT) {
            perr(p, p->cur.loc, "expected a field name or '}', found %s", FOUND(p));
            skip_line(p);
            continue;
        }
        gen_token name = p->cur;
        if (is_kw(&name, "event") || is_kw(&name, "record")) {
            gen_lexer save = p->lx;
            next(p);
            if (p->cur.kind == T_IDENT) {
                perr(p, name.loc, "missing '}' to close %s %s opened at line %d", what,
                     d->name, open.line);
                parse_decl(p, name);
                return;
            }
            if (p->lx.errors != save.errors) {
                skip_line(p); /* the gen_lexer has reported what is wrong */
                continue;
            }
            /* A field named event or record: back up and parse it. */
            p->lx = save;
            p->cur = name;
        }
        gen_field f;
        memset(&f, 0, sizeof f);
        if (!parse_field(p, &f)) {
            skip_line(p);
            continue;
        }
        d->fields = grow(p->a, d->fields, d->nfields, &cap, sizeof *d->fields);
        d->fields[d->nfields++] = f;
    }
}

/* Parses a declaration whose keyword gen_token kw ('event' or 'record') has been
 * consumed. */
static void parse_decl(parser *p, gen_token kw)
{
    char found_buf[64];
    gen_decl d;
    memset(&d, 0, sizeof d);
    d.is_event = is_kw(&kw, "event");
    d.loc = kw.loc;
    d.doc = kw.doc;
    const char *what = d.is_event ? "event" : "record";
    if (p->cur.kind != T_IDENT) {
        perr(p, p->cur.loc, "expected %s name after '%s', found %s", d.is_event ? "an event" :
             "a record", what, FOUND(p));
        skip_line(p);
        return;
    }
    d.name = gen_arena_strndup(p->a, p->cur.start, p->cur.len);
    d.loc = p->cur.loc;
    next(p);
    if (d.is_event) {
        if (p->cur.kind == T_IDENT && p->cur.len >= 2 && p->cur.start[0] == 'v') {
            bool digits = true;
            for (size_t i = 1; i < p->cur.len; i++)
                digits = digits && is_digit(p->cur.start[i]);
            unsigned long long v = digits ? strtoull(p->cur.start + 1, NULL, 10) : 0;
            if (!digits) {
                perr(p, p->cur.loc, "bad version %s: write v1, v2, ...", FOUND(p));
            } else if (p->cur.len > 2 && p->cur.start[1] == '0') {
                /* v01 and v1 would be two spellings of one version. */
                perr(p, p->cur.loc, "bad version %s: write it without leading zeros, as v%llu",
                     FOUND(p), v);
            } else if (v == 0 || v > 65535 || p->cur.len > 6) {
                perr(p, p->cur.loc, "version %s is out of range: use v1 to v65535", FOUND(p));
            } else {
                d.version = (uint32_t)v;
            }
            next(p);
        } else {
            perr(p, p->cur.loc, "missing version after event name %s: write 'event %s v1 {'",
                 d.name, d.name);
            if (p->cur.kind == T_IDENT || p->cur.kind == T_INT)
                next(p);
        }
    } else if (p->cur.kind == T_IDENT && p->cur.len >= 2 && p->cur.start[0] == 'v' &&
               is_digit(p->cur.start[1])) {
        perr(p, p->cur.loc, "records have no version (only events do): remove %s", FOUND(p));
        next(p);
    }
    while (p->cur.kind == T_NL)
        next(p);
    gen_loc open = p->cur.loc;
    if (p->cur.kind != T_LBRACE) {
        perr(p, p->cur.loc, "missing '{' after %s %s, found %s", what, d.name, FOUND(p));
        skip_line(p);
    } else {
        next(p);
    }
    size_t idx = p->s->ndecls;
    p->s->decls = grow(p->a, p->s->decls, p->s->ndecls, &p->decl_cap, sizeof *p->s->decls);
    p->s->decls[p->s->ndecls++] = d;
    /* parse_body may recurse into parse_decl (missing brace) and grow decls,
     * so fill a local copy and store it back by index. */
    gen_decl body = d;
    parse_body(p, &body, open);
    p->s->decls[idx] = body;
}

static void parse_file(parser *p)
{
    char found_buf[64];
    next(p);
    while (p->cur.kind != T_EOF) {
        if (p->cur.kind == T_NL) {
            next(p);
            continue;
        }
        if (is_kw(&p->cur, "event") || is_kw(&p->cur, "record")) {
            gen_token kw = p->cur;
            next(p);
            parse_decl(p, kw);
            continue;
        }
        perr(p, p->cur.loc, "expected 'event' or 'record' at the start of a declaration, "
             "found %s", FOUND(p));
        skip_line(p);
    }
}

gen_schema *gen_schema_parse(const char *file, const char *text, size_t len, gen_diags *diags)
{
    gen_arena *a = gen_arena_create();
    gen_schema *s = gen_arena_alloc(a, sizeof *s);
    s->arena = a;
    s->file = gen_arena_strndup(a, file, strlen(file));
    parser p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.a = a;
    p.diags = diags;
    p.lx.src = p.lx.p = text;
    p.lx.end = text + len;
    p.lx.loc.file = s->file;
    p.lx.loc.line = 1;
    p.lx.loc.col = 1;
    p.lx.arena = a;
    p.lx.diags = diags;
    if (memchr(text, '\0', len)) {
        gen_loc loc = {s->file, 0, 0};
        gen_diag_add(diags, loc, "the file contains a NUL byte: it is not a schema text file");
        gen_schema_free(s);
        return NULL;
    }
    parse_file(&p);
    size_t errors = p.errors + p.lx.errors;
    if (errors == 0)
        errors = gen_schema_check(s, diags);
    if (errors) {
        gen_schema_free(s);
        return NULL;
    }
    return s;
}

