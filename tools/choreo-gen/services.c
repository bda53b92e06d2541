/* Reads a *.services file: who emits, handles and serves what. A small
 * line-based language in the spirit of *.events (declarations with a body
 * in braces, one clause per line, # comments), read in one pass into the
 * model of services.h and then checked against the event schema, with every
 * mistake reported as file:line:col and a did-you-mean where one is close. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services.h"

/* ------------------------------------------------------------------------ */
/* Tokens: words, braces and ends of lines. */

typedef enum tok_kind { K_EOF, K_NL, K_WORD, K_LBRACE, K_RBRACE, K_BAD } tok_kind;

typedef struct token {
    tok_kind kind;
    const char *start;
    size_t len;
    gen_loc loc;
} token;

typedef struct reader {
    const char *p, *end;
    gen_loc loc; /* of *p */
    token cur;
    gen_services *s;
    gen_diags *diags;
    size_t errors;
    size_t role_cap; /* of s->roles */
} reader;

static void rerr(reader *r, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void rerr(reader *r, gen_loc loc, const char *fmt, ...)
{
    char msg[sizeof(((gen_diag *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gen_diag_add(r->diags, loc, "%s", msg);
    r->errors++;
}

static bool word_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == '*';
}

static void advance(reader *r)
{
    if (*r->p == '\n') {
        r->loc.line++;
        r->loc.col = 1;
    } else {
        r->loc.col++;
    }
    r->p++;
}

/* Reads the next token into r->cur. A bad character is reported here and
 * comes back as K_BAD, so that the parser skips the rest of its line. */
static void next(reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\r' || *r->p == '#')) {
        if (*r->p == '#')
            while (r->p < r->end && *r->p != '\n')
                advance(r);
        else
            advance(r);
    }
    token t = {K_EOF, r->p, 0, r->loc};
    if (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '\n' || c == '{' || c == '}') {
            t.kind = c == '\n' ? K_NL : c == '{' ? K_LBRACE : K_RBRACE;
            advance(r);
        } else if (word_char(c)) {
            t.kind = K_WORD;
            while (r->p < r->end && word_char(*r->p))
                advance(r);
        } else {
            t.kind = K_BAD;
            if (c >= 0x21 && c < 0x7f)
                rerr(r, t.loc, "unexpected character '%c'", c);
            else
                rerr(r, t.loc, "unexpected byte 0x%02x (only ASCII is allowed outside comments)",
                     c);
            advance(r);
            while (c >= 0x80 && r->p < r->end && (unsigned char)*r->p >= 0x80)
                advance(r);
        }
    }
    t.len = (size_t)(r->p - t.start);
    r->cur = t;
}

static bool is(const token *t, const char *word)
{
    return t->kind == K_WORD && t->len == strlen(word) && memcmp(t->start, word, t->len) == 0;
}

/* Describes the current token for "found ..." in messages. */
static const char *found(const reader *r, char *buf, size_t size)
{
    switch (r->cur.kind) {
    case K_EOF: return "the end of the file";
    case K_NL: return "the end of the line";
    case K_BAD: return "an invalid character";
    default: break;
    }
    size_t n = r->cur.len > 40 ? 40 : r->cur.len;
    snprintf(buf, size, "'%.*s%s'", (int)n, r->cur.start, r->cur.len > n ? "..." : "");
    return buf;
}

#define FOUND(r) found((r), found_buf, sizeof found_buf)

/* Skips the rest of a line, up to its end or a closing brace. */
static void skip_line(reader *r)
{
    while (r->cur.kind != K_NL && r->cur.kind != K_EOF && r->cur.kind != K_RBRACE)
        next(r);
}

/* ------------------------------------------------------------------------ */
/* Declarations and clauses */

static const char *const kind_words[] = {"service", "client", "operator"};
static const char *const clause_words[] = {"emits", "handles", "serves", "calls"};

const char *gen_role_kind_name(gen_role_kind k)
{
    return kind_words[k];
}

static int kind_of(const token *t)
{
    for (int i = 0; i < 3; i++)
        if (is(t, kind_words[i]))
            return i;
    return -1;
}

/* The closest word of `words` to text, or NULL when none is close. */
static const char *closest(const char *text, const char *const *words, size_t n)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = gen_edit_distance(text, words[i]);
        if (d < bd) {
            bd = d;
            best = words[i];
        }
    }
    return best;
}

static void list_add(gen_arena *a, gen_word_list *l, const token *t)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        gen_word *items = gen_arena_alloc(a, cap * sizeof *items);
        if (l->n)
            memcpy(items, l->items, l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n].text = gen_arena_strndup(a, t->start, t->len);
    l->items[l->n].loc = t->loc;
    l->n++;
}

/* One clause line: a keyword and its words, up to the end of the line or
 * a closing brace. */
static void parse_clause(reader *r, gen_role *role)
{
    char found_buf[64], word[32];
    const token kw = r->cur;
    int c = -1;
    for (int i = 0; i < 4; i++)
        if (is(&kw, clause_words[i]))
            c = i;
    snprintf(word, sizeof word, "%.*s", (int)(kw.len < 31 ? kw.len : 31), kw.start);
    if (c < 0) {
        const char *hint = closest(word, clause_words, 4);
        if (hint)
            rerr(r, kw.loc, "unknown clause '%s'; did you mean '%s'?", word, hint);
        else
            rerr(r, kw.loc, "expected emits, handles, serves, calls or '}', found %s", FOUND(r));
        skip_line(r);
        return;
    }
    const char *what = gen_role_kind_name(role->kind);
    if (role->kind == GEN_ROLE_OPERATOR) {
        rerr(r, kw.loc, "operator %s takes no clauses: its permissions are fixed (consumers "
             "and parked events of every type)", role->name);
        skip_line(r);
        return;
    }
    if (role->kind == GEN_ROLE_CLIENT && c != 3) {
        rerr(r, kw.loc, "a client only calls requests: '%s' belongs in a service", word);
        skip_line(r);
        return;
    }
    gen_word_list *lists[] = {&role->emits, &role->handles, &role->serves, &role->calls};
    gen_arena *a = r->s->arena;
    size_t before = lists[c]->n;
    next(r);
    while (r->cur.kind == K_WORD) {
        list_add(a, lists[c], &r->cur);
        next(r);
    }
    if (r->cur.kind == K_LBRACE) {
        rerr(r, r->cur.loc, "unexpected '{' in the %s clause of %s %s", word, what, role->name);
        skip_line(r);
        return;
    }
    if (lists[c]->n == before && r->cur.kind != K_BAD) {
        static const char *const need[] = {"event types", "event types", "request names",
                                           "requests as service.request"};
        rerr(r, kw.loc, "'%s' needs one or more %s on its line", word, need[c]);
    }
    if (r->cur.kind == K_BAD)
        skip_line(r);
}

static gen_role *add_role(reader *r)
{
    gen_services *s = r->s;
    if (s->nroles == r->role_cap) {
        r->role_cap = r->role_cap ? r->role_cap * 2 : 8;
        gen_role *roles = gen_arena_alloc(s->arena, r->role_cap * sizeof *roles);
        if (s->nroles)
            memcpy(roles, s->roles, s->nroles * sizeof *roles);
        s->roles = roles;
    }
    gen_role *role = &s->roles[s->nroles++];
    memset(role, 0, sizeof *role);
    return role;
}

/* The body of a declaration, from its '{' to its '}'. A declaration word
 * at the start of a line means the '}' was forgotten. */
static void parse_body(reader *r, gen_role *role, gen_loc open)
{
    char found_buf[64];
    const char *what = gen_role_kind_name(role->kind);
    next(r);
    for (;;) {
        switch (r->cur.kind) {
        case K_NL:
            next(r);
            continue;
        case K_RBRACE:
            next(r);
            if (r->cur.kind != K_NL && r->cur.kind != K_EOF) {
                rerr(r, r->cur.loc, "unexpected %s after the '}' closing %s %s", FOUND(r), what,
                     role->name);
                skip_line(r);
                if (r->cur.kind == K_RBRACE)
                    next(r);
            }
            return;
        case K_EOF:
            rerr(r, r->cur.loc, "missing '}' to close %s %s opened at line %d", what, role->name,
                 open.line);
            return;
        case K_WORD:
            if (kind_of(&r->cur) >= 0) {
                rerr(r, r->cur.loc, "missing '}' to close %s %s opened at line %d", what,
                     role->name, open.line);
                return;
            }
            parse_clause(r, role);
            continue;
        default:
            if (r->cur.kind != K_BAD)
                rerr(r, r->cur.loc, "expected emits, handles, serves, calls or '}', found %s",
                     FOUND(r));
            next(r);
            skip_line(r);
            continue;
        }
    }
}

/* A declaration whose keyword is the current token: KIND NAME [{ ... }]. */
static void parse_role(reader *r, gen_role_kind kind)
{
    char found_buf[64];
    const char *what = kind_words[kind];
    int line = r->cur.loc.line;
    next(r);
    if (r->cur.kind != K_WORD || kind_of(&r->cur) >= 0) {
        rerr(r, r->cur.loc, "expected a name after '%s', found %s", what, FOUND(r));
        skip_line(r);
        return;
    }
    gen_role *role = add_role(r);
    role->kind = kind;
    role->loc = r->cur.loc;
    role->name = gen_arena_strndup(r->s->arena, r->cur.start, r->cur.len);
    next(r);
    if (r->cur.kind == K_WORD && r->cur.loc.line == line) {
        rerr(r, r->cur.loc, "unexpected %s after %s %s: clauses go inside '{' and '}'",
             FOUND(r), what, role->name);
        skip_line(r);
    }
    /* '{' may sit on the next line; without one the declaration has no body. */
    while (r->cur.kind == K_NL)
        next(r);
    if (r->cur.kind == K_LBRACE)
        parse_body(r, role, r->cur.loc);
}

static void parse_file(reader *r)
{
    char found_buf[64];
    next(r);
    while (r->cur.kind != K_EOF) {
        if (r->cur.kind == K_NL) {
            next(r);
            continue;
        }
        int k = kind_of(&r->cur);
        if (k >= 0) {
            parse_role(r, (gen_role_kind)k);
            continue;
        }
        if (r->cur.kind == K_WORD) {
            char word[32];
            snprintf(word, sizeof word, "%.*s", (int)(r->cur.len < 31 ? r->cur.len : 31),
                     r->cur.start);
            const char *hint = closest(word, kind_words, 3);
            if (hint)
                rerr(r, r->cur.loc, "unknown declaration '%s'; did you mean '%s'?", word, hint);
            else
                rerr(r, r->cur.loc, "expected 'service', 'client' or 'operator' at the start "
                     "of a declaration, found %s", FOUND(r));
        } else if (r->cur.kind != K_BAD) {
            rerr(r, r->cur.loc, "expected 'service', 'client' or 'operator' at the start of a "
                 "declaration, found %s", FOUND(r));
        }
        next(r);
        skip_line(r);
        if (r->cur.kind == K_RBRACE)
            next(r);
    }
}

/* ------------------------------------------------------------------------ */
/* Checks */

typedef struct checker {
    gen_services *s;
    const gen_schema *schema;
    gen_diags *diags;
    size_t errors;
} checker;

#define ERR(c, loc, ...)                              \
    do {                                              \
        gen_diag_add((c)->diags, (loc), __VA_ARGS__); \
        (c)->errors++;                                \
    } while (0)

/* [A-Za-z0-9_-] of 1 to max characters, and a letter first when `letter`. */
static bool name_ok(const char *s, size_t max, bool letter)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    if (letter && !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static void check_names(checker *c)
{
    gen_services *s = c->s;
    for (size_t i = 0; i < s->nroles; i++) {
        gen_role *role = &s->roles[i];
        const char *what = gen_role_kind_name(role->kind);
        if (!name_ok(role->name, GEN_ROLE_NAME_MAX, true))
            ERR(c, role->loc, "bad %s name '%.40s': use a letter, then letters, digits, '_' or "
                "'-', at most %d characters in all (it is the NATS user name and, for a "
                "service, choreo's service setting)", what, role->name, GEN_ROLE_NAME_MAX);
        char var[GEN_ROLE_NAME_MAX + 1];
        size_t n = 0;
        for (const char *p = role->name; *p && n < GEN_ROLE_NAME_MAX; p++) {
            char ch = *p;
            var[n++] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
        }
        var[n] = '\0';
        role->var = gen_arena_strndup(s->arena, var, n);
        for (size_t j = 0; j < i; j++) {
            const gen_role *other = &s->roles[j];
            if (strcmp(other->name, role->name) == 0) {
                ERR(c, role->loc, "'%s' is already declared at line %d (as a %s): each name is "
                    "one NATS user", role->name, other->loc.line,
                    gen_role_kind_name(other->kind));
                break;
            }
            if (strcmp(other->var, role->var) == 0) {
                ERR(c, role->loc, "%s %s and %s %s (line %d) both give the variable %s_PERMISSIONS; "
                    "rename one", what, role->name, gen_role_kind_name(other->kind),
                    other->name, other->loc.line, role->var);
                break;
            }
        }
    }
}

/* The closest event of the schema to name, or NULL. */
static const char *closest_event(const gen_schema *schema, const char *name)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < schema->ndecls; i++) {
        if (!schema->decls[i].is_event)
            continue;
        size_t d = gen_edit_distance(name, schema->decls[i].name);
        if (d < bd) {
            bd = d;
            best = schema->decls[i].name;
        }
    }
    return best;
}

/* The first earlier word of l equal to l->items[i], or NULL. */
static const gen_word *earlier(const gen_word_list *l, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (strcmp(l->items[j].text, l->items[i].text) == 0)
            return &l->items[j];
    return NULL;
}

static void check_events(checker *c, const gen_role *role, const gen_word_list *l,
                         const char *verb)
{
    for (size_t i = 0; i < l->n; i++) {
        const gen_word *w = &l->items[i];
        const gen_word *first = earlier(l, i);
        if (first) {
            ERR(c, w->loc, "%s %s %s %s twice (first at line %d)",
                gen_role_kind_name(role->kind), role->name, verb, w->text, first->loc.line);
            continue;
        }
        const gen_decl *d = gen_schema_find(c->schema, w->text);
        if (d && d->is_event)
            continue;
        if (d) {
            ERR(c, w->loc, "'%s' is a record in %s, not an event: only events are emitted and "
                "handled", w->text, c->schema->file);
            continue;
        }
        const char *hint = closest_event(c->schema, w->text);
        if (hint)
            ERR(c, w->loc, "unknown event '%s'; did you mean '%s'?", w->text, hint);
        else
            ERR(c, w->loc, "unknown event '%s': %s declares no event of that name", w->text,
                c->schema->file);
    }
}

static void check_serves(checker *c, const gen_role *role)
{
    for (size_t i = 0; i < role->serves.n; i++) {
        const gen_word *w = &role->serves.items[i];
        const gen_word *first = earlier(&role->serves, i);
        if (first)
            ERR(c, w->loc, "service %s serves %s twice (first at line %d)", role->name, w->text,
                first->loc.line);
        else if (!name_ok(w->text, GEN_REQUEST_NAME_MAX, false))
            ERR(c, w->loc, "bad request name '%.40s': use letters, digits, '_' and '-', at most "
                "%d characters", w->text, GEN_REQUEST_NAME_MAX);
    }
}

static const gen_role *find_role(const gen_services *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->nroles; i++)
        if (strlen(s->roles[i].name) == len && memcmp(s->roles[i].name, name, len) == 0)
            return &s->roles[i];
    return NULL;
}

static bool serves(const gen_role *svc, const char *request)
{
    for (size_t i = 0; i < svc->serves.n; i++)
        if (strcmp(svc->serves.items[i].text, request) == 0)
            return true;
    return false;
}

/* The closest service name (requests false) or request name (true) to text,
 * over every service, or over `only` when not NULL; NULL when none is close. */
static const char *closest_of(const gen_services *s, const gen_role *only, bool requests,
                              const char *text)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < s->nroles; i++) {
        const gen_role *r = &s->roles[i];
        if (r->kind != GEN_ROLE_SERVICE || (only && r != only))
            continue;
        size_t n = requests ? r->serves.n : 1;
        for (size_t k = 0; k < n; k++) {
            const char *name = requests ? r->serves.items[k].text : r->name;
            size_t d = gen_edit_distance(text, name);
            if (d < bd) {
                bd = d;
                best = name;
            }
        }
    }
    return best;
}

static void add_call(gen_services *s, gen_role *role, size_t *cap, const char *service,
                     const char *request)
{
    for (size_t i = 0; i < role->nresolved; i++)
        if (strcmp(role->resolved[i].service, service) == 0 &&
            strcmp(role->resolved[i].request, request) == 0)
            return;
    if (role->nresolved == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        gen_call *v = gen_arena_alloc(s->arena, *cap * sizeof *v);
        if (role->nresolved)
            memcpy(v, role->resolved, role->nresolved * sizeof *v);
        role->resolved = v;
    }
    role->resolved[role->nresolved].service = service;
    role->resolved[role->nresolved].request = request;
    role->nresolved++;
}

/* One call "service.request", either side '*': resolved against the
 * services of the file into role->resolved. */
static void check_call(checker *c, gen_role *role, const gen_word *w, size_t *cap)
{
    const char *dot = strchr(w->text, '.');
    if (!dot || strchr(dot + 1, '.') || dot == w->text || dot[1] == '\0') {
        ERR(c, w->loc, "bad call '%.60s': write service.request (order.PlaceOrder), "
            "service.* or *.request", w->text);
        return;
    }
    const char *svc = w->text, *rq = dot + 1;
    size_t svc_len = (size_t)(dot - svc);
    bool any_svc = svc_len == 1 && svc[0] == '*', any_rq = strcmp(rq, "*") == 0;
    if (any_svc && any_rq) {
        ERR(c, w->loc, "'*.*' would call every request of every service: name the service or "
            "the request");
        return;
    }
    if (!any_svc) {
        char name[GEN_ROLE_NAME_MAX + 8];
        snprintf(name, sizeof name, "%.*s", (int)(svc_len < GEN_ROLE_NAME_MAX + 4 ? svc_len
                                                  : GEN_ROLE_NAME_MAX + 4), svc);
        const gen_role *target = find_role(c->s, svc, svc_len);
        if (!target) {
            const char *hint = closest_of(c->s, NULL, false, name);
            if (hint)
                ERR(c, w->loc, "call %s: no service '%s' is declared; did you mean '%s'?",
                    w->text, name, hint);
            else
                ERR(c, w->loc, "call %s: no service '%s' is declared in %s", w->text, name,
                    c->s->file);
            return;
        }
        if (target->kind != GEN_ROLE_SERVICE) {
            ERR(c, w->loc, "call %s: '%s' is a %s, not a service: only services serve requests",
                w->text, name, gen_role_kind_name(target->kind));
            return;
        }
        if (any_rq) {
            if (target->serves.n == 0)
                ERR(c, w->loc, "call %s: service %s serves no requests", w->text, target->name);
            for (size_t i = 0; i < target->serves.n; i++)
                add_call(c->s, role, cap, target->name, target->serves.items[i].text);
            return;
        }
        if (!serves(target, rq)) {
            const char *hint = closest_of(c->s, target, true, rq);
            if (hint)
                ERR(c, w->loc, "call %s: service %s does not serve '%s'; did you mean '%s'?",
                    w->text, target->name, rq, hint);
            else
                ERR(c, w->loc, "call %s: service %s does not serve '%s' (add it to its serves "
                    "clause)", w->text, target->name, rq);
            return;
        }
        add_call(c->s, role, cap, target->name, rq);
        return;
    }
    size_t matched = 0;
    for (size_t i = 0; i < c->s->nroles; i++) {
        const gen_role *r = &c->s->roles[i];
        if (r->kind == GEN_ROLE_SERVICE && serves(r, rq)) {
            add_call(c->s, role, cap, r->name, rq);
            matched++;
        }
    }
    if (matched)
        return;
    const char *hint = closest_of(c->s, NULL, true, rq);
    if (hint)
        ERR(c, w->loc, "call %s: no service serves '%s'; did you mean '%s'?", w->text, rq, hint);
    else
        ERR(c, w->loc, "call %s: no service serves '%s'", w->text, rq);
}

static void check_calls(checker *c, gen_role *role)
{
    size_t cap = 0;
    for (size_t i = 0; i < role->calls.n; i++) {
        const gen_word *w = &role->calls.items[i];
        const gen_word *first = earlier(&role->calls, i);
        if (first) {
            ERR(c, w->loc, "%s %s calls %s twice (first at line %d)",
                gen_role_kind_name(role->kind), role->name, w->text, first->loc.line);
            continue;
        }
        check_call(c, role, w, &cap);
    }
    if (role->kind == GEN_ROLE_CLIENT && role->calls.n == 0)
        ERR(c, role->loc, "client %s calls nothing: give it a 'calls' clause naming the requests "
            "it sends (service.request)", role->name);
}

static size_t check(gen_services *s, const gen_schema *schema, gen_diags *diags)
{
    checker c = {s, schema, diags, 0};
    if (s->nroles == 0) {
        gen_loc loc = {s->file, 0, 0};
        ERR(&c, loc, "the file declares no service, client or operator: nothing could log in");
        return c.errors;
    }
    check_names(&c);
    for (size_t i = 0; i < s->nroles; i++) {
        gen_role *role = &s->roles[i];
        check_events(&c, role, &role->emits, "emits");
        check_events(&c, role, &role->handles, "handles");
        check_serves(&c, role);
    }
    /* Calls name requests of any service in the file, so they are checked
     * once every serves clause is known to be sound. */
    if (c.errors == 0)
        for (size_t i = 0; i < s->nroles; i++)
            check_calls(&c, &s->roles[i]);
    return c.errors;
}

/* ------------------------------------------------------------------------ */

gen_services *gen_services_parse(const char *file, const char *text, size_t len,
                                 const gen_schema *schema, gen_diags *diags)
{
    gen_arena *a = gen_arena_create();
    gen_services *s = gen_arena_alloc(a, sizeof *s);
    s->arena = a;
    s->file = gen_arena_strndup(a, file, strlen(file));
    if (memchr(text, '\0', len)) {
        gen_loc loc = {s->file, 0, 0};
        gen_diag_add(diags, loc, "the file contains a NUL byte: it is not a services text file");
        gen_services_free(s);
        return NULL;
    }
    reader r;
    memset(&r, 0, sizeof r);
    r.p = text;
    r.end = text + len;
    r.loc.file = s->file;
    r.loc.line = 1;
    r.loc.col = 1;
    r.s = s;
    r.diags = diags;
    parse_file(&r);
    size_t errors = r.errors;
    if (errors == 0)
        errors = check(s, schema, diags);
    if (errors) {
        gen_services_free(s);
        return NULL;
    }
    return s;
}

gen_services *gen_services_load(const char *path, const gen_schema *schema, gen_diags *diags)
{
    size_t len = 0;
    char *buf = gen_read_text(path, "services description", &len, diags);
    if (!buf)
        return NULL;
    gen_services *s = gen_services_parse(path, buf, len, schema, diags);
    free(buf);
    return s;
}

void gen_services_free(gen_services *s)
{
    if (s)
        gen_arena_destroy(s->arena);
}
