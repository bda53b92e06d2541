/* The lexer of *.events files, shared by the parser. */
#ifndef CHOREO_GEN_LEX_H
#define CHOREO_GEN_LEX_H

#include "schema.h"

typedef enum gen_tok_kind {
    T_EOF, T_NL, T_IDENT, T_INT, T_FLOAT, T_STRING,
    T_LBRACE, T_RBRACE, T_COLON, T_EQ, T_LT, T_GT, T_LPAREN, T_RPAREN,
    T_LBRACK, T_RBRACK, T_COMMA, T_BAD,
} gen_tok_kind;

typedef struct gen_token {
    gen_tok_kind kind;
    const char *start; /* source text of the token */
    size_t len;
    gen_loc loc;
    const char *str;   /* T_STRING: decoded text (arena) */
    size_t str_len;
    bool raw;          /* T_STRING: holds \xNN escapes, so maybe a NUL or not UTF-8 */
    const char *doc;   /* comment block on the lines just above, or NULL */
} gen_token;

typedef struct gen_lexer {
    const char *src, *p, *end;
    gen_loc loc;         /* of *p */
    gen_arena *arena;
    gen_diags *diags;
    size_t errors;
    bool line_has_token; /* a gen_token was produced on the current line */
    bool line_has_comment;
    char *pending;       /* full-line comments since the last gen_token or blank line */
    size_t pending_len, pending_cap;
    const char *trail;   /* comment after a gen_token on line trail_line */
    int trail_line;
    int bracket_depth;   /* newlines inside [...] are not tokens */
} gen_lexer;

/* Returns the next token. Errors (bad characters, strings, numbers) are
 * added to lx->diags, counted in lx->errors, and come back as T_BAD. Set
 * src, p, end, loc (line and col 1), arena and diags before the first call. */
gen_token gen_lex_next(gen_lexer *lx);

#endif
