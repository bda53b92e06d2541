/* Reads *.events schema text into the model of schema.h: a hand-written lexer
 * and recursive-descent parser that keep going after an error (to the next
 * line) so that one run reports every mistake with its file:line:col. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

/* ------------------------------------------------------------------------ */
/* Arena: every node and string of a schema, freed at once. */

struct gen_arena {
    struct gen_arena *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define ARENA_CHUNK 16384

gen_arena *gen_arena_create(void)
{
    gen_arena *a = calloc(1, sizeof *a + ARENA_CHUNK);
    if (!a) {
        fputs("choreo-gen: out of memory\n", stderr);
        abort();
    }
    a->cap = ARENA_CHUNK;
    return a;
}

void gen_arena_destroy(gen_arena *a)
{
    while (a) {
        gen_arena *next = a->next;
        free(a);
        a = next;
    }
}

void *gen_arena_alloc(gen_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (a->cap - a->used < size) {
        /* A new chunk goes second in the chain so that the head keeps
         * serving small requests. */
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        gen_arena *c = calloc(1, sizeof *c + cap);
        if (!c) {
            fputs("choreo-gen: out of memory\n", stderr);
            abort();
        }
        c->cap = cap;
        c->used = size;
        c->next = a->next;
        a->next = c;
        return c->data;
    }
    void *p = a->data + a->used;
    a->used += size;
    return p;
}

char *gen_arena_strndup(gen_arena *a, const char *s, size_t len)
{
    char *p = gen_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

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

/* ------------------------------------------------------------------------ */
/* Diagnostics */

void gen_diag_add(gen_diags *d, gen_loc loc, const char *fmt, ...)
{
    if (d->n == GEN_DIAG_MAX) {
        d->dropped++;
        return;
    }
    gen_diag *g = &d->items[d->n++];
    g->loc = loc;
    snprintf(g->file, sizeof g->file, "%s", loc.file ? loc.file : "?");
    g->loc.file = g->file;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->msg, sizeof g->msg, fmt, ap);
    va_end(ap);
}

void gen_diags_print(const gen_diags *d, void *file)
{
    FILE *f = file;
    for (size_t i = 0; i < d->n; i++) {
        const gen_diag *g = &d->items[i];
        if (g->loc.line > 0)
            fprintf(f, "%s:%d:%d: error: %s\n", g->loc.file, g->loc.line, g->loc.col, g->msg);
        else
            fprintf(f, "%s: error: %s\n", g->loc.file, g->msg);
    }
    if (d->dropped)
        fprintf(f, "choreo-gen: %zu more errors not shown\n", d->dropped);
}

/* ------------------------------------------------------------------------ */
/* Lexer */

typedef enum tok_kind {
    T_EOF, T_NL, T_IDENT, T_INT, T_FLOAT, T_STRING,
    T_LBRACE, T_RBRACE, T_COLON, T_EQ, T_LT, T_GT, T_LPAREN, T_RPAREN,
    T_LBRACK, T_RBRACK, T_COMMA, T_BAD,
} tok_kind;

typedef struct token {
    tok_kind kind;
    const char *start; /* source text of the token */
    size_t len;
    gen_loc loc;
    const char *str;   /* T_STRING: decoded text (arena) */
    size_t str_len;
    const char *doc;   /* comment block on the lines just above, or NULL */
} token;

typedef struct lexer {
    const char *src, *p, *end;
    gen_loc loc;         /* of *p */
    gen_arena *arena;
    gen_diags *diags;
    size_t errors;
    bool line_has_token; /* a token was produced on the current line */
    bool line_has_comment;
    char *pending;       /* full-line comments since the last token or blank line */
    size_t pending_len, pending_cap;
    const char *trail;   /* comment after a token on line trail_line */
    int trail_line;
    int bracket_depth;   /* newlines inside [...] are not tokens */
} lexer;

static void lex_error(lexer *lx, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void lex_error(lexer *lx, gen_loc loc, const char *fmt, ...)
{
    char msg[sizeof(((gen_diag *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gen_diag_add(lx->diags, loc, "%s", msg);
    lx->errors++;
}

static void advance_char(lexer *lx)
{
    if (*lx->p == '\n') {
        lx->loc.line++;
        lx->loc.col = 1;
    } else {
        lx->loc.col++;
    }
    lx->p++;
}

static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static void pending_add(lexer *lx, const char *s, size_t len)
{
    size_t need = lx->pending_len + len + 2;
    if (need > lx->pending_cap) {
        size_t cap = lx->pending_cap ? lx->pending_cap : 128;
        while (cap < need)
            cap *= 2;
        char *p = gen_arena_alloc(lx->arena, cap);
        if (lx->pending_len)
            memcpy(p, lx->pending, lx->pending_len);
        lx->pending = p;
        lx->pending_cap = cap;
    }
    if (lx->pending_len)
        lx->pending[lx->pending_len++] = '\n';
    memcpy(lx->pending + lx->pending_len, s, len);
    lx->pending_len += len;
    lx->pending[lx->pending_len] = '\0';
}

/* A comment runs to the end of the line; "# text" keeps "text". */
static void lex_comment(lexer *lx)
{
    const char *s = lx->p + 1;
    while (lx->p < lx->end && *lx->p != '\n')
        advance_char(lx);
    const char *e = lx->p;
    lx->line_has_comment = true;
    if (s < e && *s == ' ')
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if (lx->line_has_token) {
        lx->trail = gen_arena_strndup(lx->arena, s, (size_t)(e - s));
        lx->trail_line = lx->loc.line;
    } else {
        pending_add(lx, s, (size_t)(e - s));
    }
}

static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    /* Returns the length of a valid UTF-8 sequence at p, or 0. */
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { n = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; min = 0x10000; }
    else return 0;
    if ((size_t)(end - p) < n)
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* Lexes "..." with the escapes \" \\ \n \t \r and \uXXXX. The decoded text
 * is never longer than the source, so one buffer of that size holds it. */
static void lex_string(lexer *lx, token *t)
{
    const char *body = lx->p + 1;
    size_t max = 0;
    while (body + max < lx->end && body[max] != '\n')
        max++;
    char *out = gen_arena_alloc(lx->arena, max + 1);
    size_t n = 0;
    bool bad = false;
    advance_char(lx); /* opening quote */
    for (;;) {
        if (lx->p >= lx->end || *lx->p == '\n') {
            lex_error(lx, t->loc, "unterminated string: add the closing '\"' on the same line");
            t->kind = T_BAD;
            return;
        }
        unsigned char c = (unsigned char)*lx->p;
        gen_loc here = lx->loc;
        if (c == '"') {
            advance_char(lx);
            break;
        }
        if (c == '\\') {
            advance_char(lx);
            char e = lx->p < lx->end ? *lx->p : '\0';
            if (e == 'u') {
                unsigned cp = 0;
                bool ok = lx->end - lx->p >= 5;
                for (int i = 1; ok && i <= 4; i++) {
                    int h = hexval((unsigned char)lx->p[i]);
                    ok = h >= 0;
                    cp = cp * 16 + (unsigned)(ok ? h : 0);
                }
                if (!ok) {
                    lex_error(lx, here, "bad escape in string: \\u needs four hex digits");
                    bad = true;
                    advance_char(lx);
                    continue;
                }
                for (int i = 0; i < 5; i++)
                    advance_char(lx);
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
                    lex_error(lx, here, "bad escape in string: \\u%04x is not allowed "
                              "(NUL and surrogates cannot be stored)", cp);
                    bad = true;
                    continue;
                }
                n += put_utf8(out + n, cp);
                continue;
            }
            char v;
            switch (e) {
            case '"': v = '"'; break;
            case '\\': v = '\\'; break;
            case 'n': v = '\n'; break;
            case 't': v = '\t'; break;
            case 'r': v = '\r'; break;
            default:
                lex_error(lx, here, "bad escape in string: use \\\" \\\\ \\n \\t \\r or \\uXXXX");
                bad = true;
                if (lx->p < lx->end && *lx->p != '\n')
                    advance_char(lx);
                continue;
            }
            out[n++] = v;
            advance_char(lx);
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            lex_error(lx, here, "control character 0x%02x in string: write it as an escape", c);
            bad = true;
            advance_char(lx);
            continue;
        }
        size_t k = utf8_seq((const unsigned char *)lx->p, (const unsigned char *)lx->end);
        if (k == 0) {
            lex_error(lx, here, "string is not valid UTF-8 (byte 0x%02x)", c);
            bad = true;
            advance_char(lx);
            continue;
        }
        for (size_t i = 0; i < k; i++) {
            out[n++] = *lx->p;
            advance_char(lx);
        }
    }
    out[n] = '\0';
    t->kind = bad ? T_BAD : T_STRING;
    t->str = out;
    t->str_len = n;
}

static void lex_number(lexer *lx, token *t)
{
    bool is_float = false;
    if (*lx->p == '-')
        advance_char(lx);
    if (lx->p >= lx->end || !is_digit(*lx->p)) {
        lex_error(lx, t->loc, "'-' must be followed by digits");
        t->kind = T_BAD;
        return;
    }
    while (lx->p < lx->end && is_digit(*lx->p))
        advance_char(lx);
    if (lx->p < lx->end && *lx->p == '.') {
        is_float = true;
        advance_char(lx);
        if (lx->p >= lx->end || !is_digit(*lx->p)) {
            lex_error(lx, t->loc, "bad number: digits must follow the '.'");
            t->kind = T_BAD;
            return;
        }
        while (lx->p < lx->end && is_digit(*lx->p))
            advance_char(lx);
    }
    if (lx->p < lx->end && (*lx->p == 'e' || *lx->p == 'E')) {
        is_float = true;
        advance_char(lx);
        if (lx->p < lx->end && (*lx->p == '+' || *lx->p == '-'))
            advance_char(lx);
        if (lx->p >= lx->end || !is_digit(*lx->p)) {
            lex_error(lx, t->loc, "bad number: digits must follow the exponent");
            t->kind = T_BAD;
            return;
        }
        while (lx->p < lx->end && is_digit(*lx->p))
            advance_char(lx);
    }
    if (lx->p < lx->end && (is_alpha(*lx->p) || *lx->p == '.')) {
        lex_error(lx, t->loc, "bad number: '%c' cannot follow digits", *lx->p);
        while (lx->p < lx->end && (is_alpha(*lx->p) || is_digit(*lx->p) || *lx->p == '.'))
            advance_char(lx);
        t->kind = T_BAD;
        return;
    }
    t->kind = is_float ? T_FLOAT : T_INT;
}

static token lex_next(lexer *lx)
{
    token t;
    for (;;) {
        memset(&t, 0, sizeof t);
        while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r'))
            advance_char(lx);
        t.loc = lx->loc;
        t.start = lx->p;
        if (lx->p >= lx->end) {
            t.kind = T_EOF;
            break;
        }
        char c = *lx->p;
        if (c == '#') {
            lex_comment(lx);
            continue;
        }
        if (c == '\n') {
            bool blank = !lx->line_has_token && !lx->line_has_comment;
            bool had_token = lx->line_has_token;
            advance_char(lx);
            lx->line_has_token = false;
            lx->line_has_comment = false;
            if (blank) {
                lx->pending_len = 0;
                lx->pending = NULL;
                lx->pending_cap = 0;
            }
            if (!had_token || lx->bracket_depth > 0)
                continue;
            t.kind = T_NL;
            break;
        }
        if (c == '"') {
            lex_string(lx, &t);
        } else if (is_digit(c) || c == '-') {
            lex_number(lx, &t);
        } else if (is_alpha(c)) {
            while (lx->p < lx->end && (is_alpha(*lx->p) || is_digit(*lx->p)))
                advance_char(lx);
            t.kind = T_IDENT;
        } else {
            static const char punct[] = "{}:=<>()[],";
            static const tok_kind kinds[] = {T_LBRACE, T_RBRACE, T_COLON, T_EQ, T_LT, T_GT,
                                             T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_COMMA};
            const char *q = strchr(punct, c);
            if (q && c != '\0') {
                t.kind = kinds[q - punct];
                advance_char(lx);
                if (c == '[')
                    lx->bracket_depth++;
                else if (c == ']' && lx->bracket_depth > 0)
                    lx->bracket_depth--;
            } else {
                unsigned char u = (unsigned char)c;
                if (u >= 0x21 && u < 0x7f)
                    lex_error(lx, t.loc, "unexpected character '%c'", c);
                else
                    lex_error(lx, t.loc, "unexpected byte 0x%02x (only ASCII is allowed "
                              "outside strings and comments)", u);
                advance_char(lx);
                /* One report for a whole run of non-ASCII bytes (one character). */
                while (u >= 0x80 && lx->p < lx->end && (unsigned char)*lx->p >= 0x80)
                    advance_char(lx);
                t.kind = T_BAD;
            }
        }
        break;
    }
    t.len = (size_t)(lx->p - t.start);
    if (t.kind != T_NL && t.kind != T_EOF) {
        lx->line_has_token = true;
        if (lx->pending_len) {
            t.doc = lx->pending;
            lx->pending = NULL;
            lx->pending_len = lx->pending_cap = 0;
        }
    }
    return t;
}

/* ------------------------------------------------------------------------ */
/* Parser */

typedef struct parser {
    lexer lx;
    token cur;
    gen_schema *s;
    gen_arena *a;
    gen_diags *diags;
    size_t errors;
    size_t decl_cap;
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
    p->cur = lex_next(&p->lx);
}

static bool is_kw(const token *t, const char *kw)
{
    return t->kind == T_IDENT && t->len == strlen(kw) && memcmp(t->start, kw, t->len) == 0;
}

/* Describes a token for "found ..." in messages. */
static const char *describe(const token *t, char *buf, size_t size)
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
        next(p);
        if (p->cur.kind != T_LT) {
            perr(p, p->cur.loc, "expected '<' after 'list' (as in list<string>), found %s",
                 FOUND(p));
            return NULL;
        }
        next(p);
        t->elem = parse_type(p);
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
        next(p);
        while (p->cur.kind != T_RBRACK) {
            gen_value *item = parse_value(p);
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

static void parse_decl(parser *p, token kw);

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
        token name = p->cur;
        if (is_kw(&name, "event") || is_kw(&name, "record")) {
            lexer save = p->lx;
            next(p);
            if (p->cur.kind == T_IDENT) {
                perr(p, name.loc, "missing '}' to close %s %s opened at line %d", what,
                     d->name, open.line);
                parse_decl(p, name);
                return;
            }
            if (p->lx.errors != save.errors) {
                skip_line(p); /* the lexer has reported what is wrong */
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

/* Parses a declaration whose keyword token kw ('event' or 'record') has been
 * consumed. */
static void parse_decl(parser *p, token kw)
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
            token kw = p->cur;
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

gen_schema *gen_schema_load(const char *path, gen_diags *diags)
{
    gen_loc loc = {path, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        gen_diag_add(diags, loc, "cannot open the schema: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            gen_diag_add(diags, loc, "out of memory reading the schema");
            return NULL;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        if (cap >= (size_t)64 << 20) {
            free(buf);
            fclose(f);
            gen_diag_add(diags, loc, "the schema is larger than 64 MiB: is it the right file?");
            return NULL;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    bool failed = ferror(f);
    int err = errno;
    fclose(f);
    if (failed) {
        free(buf);
        gen_diag_add(diags, loc, "cannot read the schema: %s", strerror(err));
        return NULL;
    }
    gen_schema *s = gen_schema_parse(path, buf, len, diags);
    free(buf);
    return s;
}

void gen_schema_free(gen_schema *s)
{
    if (s)
        gen_arena_destroy(s->arena);
}

gen_decl *gen_schema_find(const gen_schema *s, const char *name)
{
    for (size_t i = 0; i < s->ndecls; i++)
        if (strcmp(s->decls[i].name, name) == 0)
            return &s->decls[i];
    return NULL;
}

const char *gen_type_str(const gen_type *t, char *buf, size_t size)
{
    char inner[256], bound[24] = "";
    if (t->max)
        snprintf(bound, sizeof bound, "(%u)", t->max);
    if (t->kind == GEN_LIST)
        snprintf(buf, size, "list<%s>%s", gen_type_str(t->elem, inner, sizeof inner), bound);
    else if (t->kind == GEN_RECORD)
        snprintf(buf, size, "%s", t->record_name);
    else
        snprintf(buf, size, "%s%s", gen_kind_name(t->kind), bound);
    return buf;
}

const char *gen_value_str(const gen_value *v, char *buf, size_t size)
{
    size_t n = 0;
    switch (v->kind) {
    case GEN_LIT_STRING: {
        size_t i;
        buf[n++] = '"';
        for (i = 0; i < v->len && n + 10 < size; i++) {
            unsigned char c = (unsigned char)v->str[i];
            if (c == '"' || c == '\\') {
                buf[n++] = '\\';
                buf[n++] = (char)c;
            } else if (c < 0x20 || c == 0x7f || (c == '/' && i > 0 && v->str[i - 1] == '*')) {
                n += (size_t)snprintf(buf + n, size - n, "\\u%04x", c);
            } else {
                buf[n++] = (char)c; /* UTF-8 stays as it is */
            }
        }
        if (i < v->len) {
            /* Cut before a UTF-8 continuation byte would split a character. */
            while (n > 1 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
                n--;
            if (n > 1 && (unsigned char)buf[n - 1] >= 0xc0)
                n--;
            memcpy(buf + n, "...", 3);
            n += 3;
        }
        buf[n++] = '"';
        buf[n] = '\0';
        return buf;
    }
    case GEN_LIT_INT:
    case GEN_LIT_FLOAT:
        snprintf(buf, size, "%s", v->text);
        return buf;
    case GEN_LIT_BOOL:
        snprintf(buf, size, "%s", v->b ? "true" : "false");
        return buf;
    case GEN_LIT_LIST:
        n = (size_t)snprintf(buf, size, "[");
        for (size_t i = 0; i < v->nitems && n + 8 < size; i++) {
            char item[128];
            gen_value_str(&v->items[i], item, sizeof item);
            n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", item);
        }
        if (n + 5 >= size)
            n = (size_t)snprintf(buf + size - 6, 6, "...]") + size - 6;
        else
            snprintf(buf + n, size - n, "]");
        return buf;
    }
    return buf;
}
