/* The gen_lexer of *.events files: tokens with their file:line:col, string
 * escapes decoded and checked as UTF-8, newlines as tokens (a field ends at
 * the end of its line) except inside [...], and comments kept as the docs of
 * what follows them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lex.h"

static void lex_error(gen_lexer *lx, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void lex_error(gen_lexer *lx, gen_loc loc, const char *fmt, ...)
{
    char msg[sizeof(((gen_diag *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gen_diag_add(lx->diags, loc, "%s", msg);
    lx->errors++;
}

static void advance_char(gen_lexer *lx)
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

static void pending_add(gen_lexer *lx, const char *s, size_t len)
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

static size_t utf8_seq(const unsigned char *p, const unsigned char *end);

/* A comment runs to the end of the line; "# text" keeps "text". It may be
 * copied into the generated header, so it must be UTF-8 as strings are: a
 * header in some other encoding would be read as garbage, or refused, by
 * the tools of those who include it. */
static void lex_comment(gen_lexer *lx)
{
    const char *s = lx->p + 1;
    bool reported = false;
    while (lx->p < lx->end && *lx->p != '\n') {
        size_t k = utf8_seq((const unsigned char *)lx->p, (const unsigned char *)lx->end);
        if (k == 0 && !reported) {
            lex_error(lx, lx->loc, "comment is not valid UTF-8 (byte 0x%02x)",
                      (unsigned char)*lx->p);
            reported = true; /* once per comment: the rest is likely the same encoding */
        }
        for (size_t i = 0; i < (k ? k : 1); i++)
            advance_char(lx);
    }
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

/* Lexes "..." with the escapes \" \\ \n \t \r, \uXXXX and \xNN. \uXXXX is a
 * character, stored as its UTF-8 bytes; \xNN is one byte of any value,
 * for bytes defaults (the checker refuses it in text, which must stay
 * UTF-8). The decoded text is never longer than the source, so one buffer
 * of that size holds it. */
static void lex_string(gen_lexer *lx, gen_token *t)
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
            if (e == 'x') {
                int hi = lx->end - lx->p >= 3 ? hexval((unsigned char)lx->p[1]) : -1;
                int lo = hi >= 0 ? hexval((unsigned char)lx->p[2]) : -1;
                if (lo < 0) {
                    lex_error(lx, here, "bad escape in string: \\x needs two hex digits");
                    bad = true;
                    advance_char(lx);
                    continue;
                }
                for (int i = 0; i < 3; i++)
                    advance_char(lx);
                out[n++] = (char)(hi * 16 + lo);
                t->raw = true;
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
                lex_error(lx, here, "bad escape in string: use \\\" \\\\ \\n \\t \\r \\uXXXX, "
                          "or \\xNN in bytes");
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

static void lex_number(gen_lexer *lx, gen_token *t)
{
    bool is_float = false;
    if (*lx->p == '-')
        advance_char(lx);
    if (lx->p >= lx->end || !is_digit(*lx->p)) {
        lex_error(lx, t->loc, "'-' must be followed by digits");
        t->kind = T_BAD;
        return;
    }
    const char *digits = lx->p;
    while (lx->p < lx->end && is_digit(*lx->p))
        advance_char(lx);
    /* 010 and 10 would be two spellings of one number, and a C reader
     * would take 010 for octal 8. */
    size_t zeros = 0;
    while (digits + zeros + 1 < lx->p && digits[zeros] == '0')
        zeros++;
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
    if (zeros) {
        lex_error(lx, t->loc, "bad number %.*s: write it without leading zeros, as %.*s%.*s",
                  (int)(lx->p - t->start), t->start, (int)(digits - t->start), t->start,
                  (int)(lx->p - digits - zeros), digits + zeros);
        t->kind = T_BAD;
        return;
    }
    t->kind = is_float ? T_FLOAT : T_INT;
}

gen_token gen_lex_next(gen_lexer *lx)
{
    gen_token t;
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
            static const gen_tok_kind kinds[] = {T_LBRACE, T_RBRACE, T_COLON, T_EQ, T_LT, T_GT,
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

