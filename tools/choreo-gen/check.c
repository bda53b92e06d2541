/* Checks a parsed schema before any code is generated from it: names, types,
 * size bounds, defaults, record references, and the C identifiers the
 * generator will derive (no two alike, none a header's type or macro), so
 * that generated code compiles. The prefix is checked when it is known, by
 * gen_prefix_problem. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "schema.h"

static const char *const scalar_names[] = {
    "string", "bytes", "bool", "i32", "i64", "u64", "f64", "timestamp", "list",
};

/* A field becomes a struct member, so it may not be called any of these:
 * the keywords of C11, C23 and C++20, the GNU ones of gnu modes (asm,
 * typeof), and the alternative tokens of C++ (and, or, ...). Names that
 * start with '_' or a capital never pass as field names, so _Bool, _BitInt
 * and the like need no entry. */
static const char *const keywords[] = {
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool",
    "break", "case", "catch", "char", "char8_t", "char16_t", "char32_t", "class", "co_await",
    "co_return", "co_yield", "compl", "concept", "const", "const_cast", "consteval",
    "constexpr", "constinit", "continue", "decltype", "default", "delete", "do", "double",
    "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float",
    "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace",
    "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or", "or_eq", "private",
    "protected", "public", "register", "reinterpret_cast", "requires", "restrict", "return",
    "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch",
    "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid",
    "typename", "typeof", "typeof_unqual", "union", "unsigned", "using", "virtual", "void",
    "volatile", "wchar_t", "while", "xor", "xor_eq",
};

/* Names that compile to something else where the generated code is used:
 * macros of the headers it includes (errno, stdin, ...) or that gcc and
 * clang predefine in gnu modes (unix, linux, i386, ...), and the type names
 * its structs use, since in C++ a member of that name changes what the name
 * means for the members after it. */
static const char *const taken[] = {
    "assert", "errno", "stdin", "stdout", "stderr",
    "unix", "linux", "i386", "sun", "sparc", "mips",
    "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t",
    "size_t", "ptrdiff_t", "max_align_t",
    /* Macros of C11 headers a program may include beside the generated
     * one: <complex.h> and <stdnoreturn.h>. Those of <stdalign.h>,
     * <stdbool.h>, <assert.h> and <threads.h> (alignas, bool, true,
     * static_assert, thread_local, ...) are C23 keywords, refused above,
     * and I is not snake_case. */
    "complex", "imaginary", "noreturn",
    /* Macros POSIX headers define, in glibc, for members that sit inside
     * unions (st_atime is st_atim.tv_sec, si_pid is _sifields._kill.si_pid),
     * and h_errno and math_errhandling: each stands for an expression, which
     * cannot be a member's name. */
    "st_atime", "st_mtime", "st_ctime",
    "sa_handler", "sa_sigaction",
    "si_addr", "si_addr_lsb", "si_arch", "si_band", "si_call_addr", "si_fd", "si_int",
    "si_lower", "si_overrun", "si_pid", "si_pkey", "si_ptr", "si_status", "si_stime",
    "si_syscall", "si_timerid", "si_uid", "si_upper", "si_utime", "si_value",
    "sigev_notify_attributes", "sigev_notify_function",
    "h_addr", "h_errno", "math_errhandling",
    "ifa_broadaddr", "ifa_dstaddr", "ifc_buf", "ifc_req", "ifr_addr", "ifr_bandwidth",
    "ifr_broadaddr", "ifr_data", "ifr_dstaddr", "ifr_flags", "ifr_hwaddr", "ifr_ifindex",
    "ifr_map", "ifr_metric", "ifr_mtu", "ifr_name", "ifr_netmask", "ifr_newname", "ifr_qlen",
    "ifr_slave",
};

static bool upper_camel(const char *s)
{
    if (!(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static bool snake_case(const char *s)
{
    if (!(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
        if (!ok || (p[0] == '_' && (p[1] == '_' || p[1] == '\0')))
            return false;
    }
    return true;
}

const char *gen_snake(const char *name, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; name[i] && n + 2 < size; i++) {
        char c = name[i];
        bool up = c >= 'A' && c <= 'Z';
        if (up && i > 0) {
            char prev = name[i - 1], nxt = name[i + 1];
            bool prev_low = (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
            bool prev_up = prev >= 'A' && prev <= 'Z';
            bool next_low = nxt >= 'a' && nxt <= 'z';
            if (prev_low || (prev_up && next_low))
                buf[n++] = '_';
        }
        buf[n++] = up ? (char)(c - 'A' + 'a') : c;
    }
    buf[n] = '\0';
    return buf;
}

size_t gen_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 30 || lb > 30)
        return 99;
    size_t row[32];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known type name to an unknown one, or NULL. */
static const char *suggest(const gen_schema *s, const char *name)
{
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < sizeof scalar_names / sizeof scalar_names[0]; i++) {
        size_t d = gen_edit_distance(name, scalar_names[i]);
        if (d < bd) {
            bd = d;
            best = scalar_names[i];
        }
    }
    for (size_t i = 0; i < s->ndecls; i++) {
        if (s->decls[i].is_event)
            continue;
        size_t d = gen_edit_distance(name, s->decls[i].name);
        if (d < bd) {
            bd = d;
            best = s->decls[i].name;
        }
    }
    return best;
}

typedef struct checker {
    gen_schema *s;
    gen_diags *diags;
    size_t errors;
} checker;

#define ERR(c, loc, ...)                                \
    do {                                                \
        gen_diag_add((c)->diags, (loc), __VA_ARGS__);   \
        (c)->errors++;                                  \
    } while (0)

/* Resolves and checks a field type; idx is the declaration being checked
 * (records used as types must be declared before it). */
static void check_type(checker *c, gen_type *t, size_t idx, bool in_list, int *depth)
{
    if (t->kind == GEN_LIST) {
        if (in_list) {
            ERR(c, t->loc, "lists of lists are not supported: put the inner list in a record");
            return;
        }
        check_type(c, t->elem, idx, true, depth);
        return;
    }
    if (t->max && t->kind != GEN_STRING && t->kind != GEN_BYTES)
        ERR(c, t->loc, "a size bound applies to string, bytes and list only, not to %s",
            t->kind == GEN_RECORD ? t->record_name : gen_kind_name(t->kind));
    if (t->kind != GEN_RECORD)
        return;
    const gen_decl *self = &c->s->decls[idx];
    gen_decl *r = gen_schema_find(c->s, t->record_name);
    if (!r) {
        /* A suggestion compares the name with every record's: only worth
         * it while the message is still shown. */
        const char *hint = c->diags->n < GEN_DIAG_MAX ? suggest(c->s, t->record_name) : NULL;
        if (hint)
            ERR(c, t->loc, "unknown type '%s'; did you mean '%s'?", t->record_name, hint);
        else
            ERR(c, t->loc, "unknown type '%s': use string, bytes, bool, i32, i64, u64, f64, "
                "timestamp, list<T> or a record declared above", t->record_name);
        return;
    }
    if (r->is_event) {
        ERR(c, t->loc, "'%s' is an event: only records can be field types (declare "
            "'record %s { ... }' for the shared fields)", r->name, r->name);
        return;
    }
    if (r == self) {
        ERR(c, t->loc, "record %s cannot contain itself", r->name);
        return;
    }
    if (r > self) {
        ERR(c, t->loc, "record %s is used before its declaration at line %d: declare "
            "records above the events and records that use them", r->name, r->loc.line);
        return;
    }
    t->record = r;
    r->listed = r->listed || in_list;
    if (r->depth + 1 > *depth)
        *depth = r->depth + 1;
}

static bool int_fits(const gen_value *v, gen_kind k, char *range, size_t size)
{
    switch (k) {
    case GEN_I32:
        snprintf(range, size, "-2147483648 to 2147483647");
        return !v->overflow && (v->neg ? v->mag <= 2147483648u : v->mag <= 2147483647u);
    case GEN_U64:
        snprintf(range, size, "0 to 18446744073709551615");
        return !v->overflow && (!v->neg || v->mag == 0);
    default:
        snprintf(range, size, "-9223372036854775808 to 9223372036854775807");
        return !v->overflow &&
               (v->neg ? v->mag <= (uint64_t)INT64_MAX + 1 : v->mag <= (uint64_t)INT64_MAX);
    }
}

/* Whether a number as written has a digit other than 0 before any
 * exponent: 1e-400 does, 0.0e5 does not. */
static bool nonzero_digits(const char *text)
{
    for (; *text && *text != 'e' && *text != 'E'; text++)
        if (*text >= '1' && *text <= '9')
            return true;
    return false;
}

static void check_value(checker *c, const gen_field *f, const gen_type *t, const gen_value *v)
{
    char tbuf[300], range[64];
    const char *tname = gen_type_str(t, tbuf, sizeof tbuf);
    switch (t->kind) {
    case GEN_STRING:
    case GEN_BYTES:
        if (v->kind != GEN_LIT_STRING) {
            ERR(c, v->loc, "default of field '%s' must be a string literal (\"...\") for %s",
                f->name, tname);
            return;
        }
        if (v->raw && t->kind == GEN_STRING) {
            ERR(c, v->loc, "default of field '%s' uses \\x escapes, which are for bytes: a "
                "string holds UTF-8 text; write the character, or \\uXXXX", f->name);
            return;
        }
        if (t->max && v->len > t->max)
            ERR(c, v->loc, "default of field '%s' is %zu bytes long, more than its bound %u",
                f->name, v->len, t->max);
        else if (v->len > GEN_DEFAULT_STRING_MAX)
            ERR(c, v->loc, "default of field '%s' is %zu bytes long; defaults are limited to "
                "%d bytes", f->name, v->len, GEN_DEFAULT_STRING_MAX);
        return;
    case GEN_BOOL:
        if (v->kind != GEN_LIT_BOOL)
            ERR(c, v->loc, "default of field '%s' must be true or false", f->name);
        return;
    case GEN_I32:
    case GEN_I64:
    case GEN_U64:
    case GEN_TIMESTAMP:
        if (v->kind != GEN_LIT_INT) {
            ERR(c, v->loc, "default of field '%s' must be an integer for %s", f->name, tname);
            return;
        }
        if (!int_fits(v, t->kind, range, sizeof range))
            ERR(c, v->loc, "default %s of field '%s' is out of range for %s (%s)", v->text,
                f->name, tname, range);
        else if (v->neg && v->mag == 0)
            ERR(c, v->loc, "default -0 of field '%s': an integer has no negative zero; "
                "write it as 0", f->name);
        return;
    case GEN_F64:
        if (v->kind != GEN_LIT_INT && v->kind != GEN_LIT_FLOAT) {
            ERR(c, v->loc, "default of field '%s' must be a number for f64", f->name);
            return;
        }
        if (!isfinite(v->f))
            ERR(c, v->loc, "default %s of field '%s' is out of range for f64", v->text, f->name);
        else if (v->f == 0 && nonzero_digits(v->text))
            ERR(c, v->loc, "default %s of field '%s' is too small for f64: it would become 0 "
                "(the smallest nonzero f64 is about 4.9e-324); write 0 if that is meant",
                v->text, f->name);
        return;
    case GEN_LIST: {
        if (v->kind != GEN_LIT_LIST) {
            ERR(c, v->loc, "default of field '%s' must be a list [...] for %s", f->name, tname);
            return;
        }
        uint32_t max = t->max ? t->max : GEN_LIST_DEFAULT_MAX;
        if (v->nitems > max)
            ERR(c, v->loc, "default of field '%s' has %zu items, more than its bound %u",
                f->name, v->nitems, max);
        if (t->elem->kind == GEN_RECORD && v->nitems) {
            ERR(c, v->loc, "default of field '%s': a list of records can only default to []",
                f->name);
            return;
        }
        for (size_t i = 0; i < v->nitems; i++)
            check_value(c, f, t->elem, &v->items[i]);
        return;
    }
    case GEN_RECORD:
        ERR(c, v->loc, "field '%s' of record type %s cannot have a default: make it required, "
            "or a list<%s> = []", f->name, t->record_name, t->record_name);
        return;
    }
}

static bool in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

static void check_fields(checker *c, gen_decl *d, size_t idx)
{
    const char *what = d->is_event ? "event" : "record";
    if (d->nfields > GEN_FIELDS_MAX)
        ERR(c, d->loc, "%s %s has %zu fields, more than the limit of %d", what, d->name,
            d->nfields, GEN_FIELDS_MAX);
    int depth = 0;
    gen_names *seen = gen_names_create(c->s->arena, d->nfields);
    for (size_t i = 0; i < d->nfields; i++) {
        gen_field *f = &d->fields[i];
        if (strlen(f->name) > GEN_FIELD_NAME_MAX)
            ERR(c, f->loc, "field name '%.20s...' is longer than %d characters", f->name,
                GEN_FIELD_NAME_MAX);
        else if (!snake_case(f->name))
            ERR(c, f->loc, "bad field name '%s': use snake_case ([a-z][a-z0-9_]*, no '__', "
                "no trailing '_'), e.g. order_id", f->name);
        else if (in_list(keywords, sizeof keywords / sizeof keywords[0], f->name))
            ERR(c, f->loc, "bad field name '%s': it is a C or C++ keyword; choose another "
                "name", f->name);
        else if (in_list(taken, sizeof taken / sizeof taken[0], f->name))
            ERR(c, f->loc, "bad field name '%s': C compilers or headers define it (a macro "
                "or a type name), so the generated struct would not compile; choose another "
                "name", f->name);
        size_t j = gen_names_put(seen, f->name, i);
        if (j != SIZE_MAX)
            ERR(c, f->loc, "duplicate field '%s' in %s %s (first at line %d)", f->name, what,
                d->name, d->fields[j].loc.line);
        size_t before = c->errors;
        check_type(c, f->type, idx, false, &depth);
        if (f->dflt && c->errors == before)
            check_value(c, f, f->type, f->dflt);
    }
    d->depth = depth;
    if (depth > GEN_NESTING_MAX)
        ERR(c, d->loc, "%s %s nests records %d levels deep, more than the limit of %d", what,
            d->name, depth, GEN_NESTING_MAX);
}

/* Every C identifier the generator derives from the schema, without the
 * prefix, so that two declarations can never produce the same name. Each
 * name maps to the index of the declaration that derives it first (past
 * the last declaration for the generator's own names), in a table, so
 * that a schema of many declarations is checked in time proportional to
 * its size. */
static void check_identifiers(checker *c)
{
    static const char *const builtin[] = {
        "mem", "bytes", "list_string", "list_bytes", "list_bool", "list_i32", "list_i64",
        "list_u64", "list_f64", "list_timestamp", "events",
    };
    /* Each generated name as text before and after the snake name. */
    static const char *const rec_fix[][2] = {{"", ""},        {"", "_init"},  {"", "_encode"},
                                             {"", "_decode"}, {"", "_check"}, {"", "_free"},
                                             {"list_", ""}};
    static const char *const ev_fix[][2] = {{"emit_", ""}, {"emit_", "_after"}, {"emit_", "_at"},
                                            {"on_", ""}, {"", "_handler"}};
    enum { NREC = sizeof rec_fix / sizeof rec_fix[0], NEV = sizeof ev_fix / sizeof ev_fix[0] };
    const size_t builtins = sizeof builtin / sizeof builtin[0];
    gen_arena *a = c->s->arena;
    gen_names *ids = gen_names_create(a, builtins + c->s->ndecls * (NREC + NEV));
    for (size_t i = 0; i < builtins; i++)
        gen_names_put(ids, builtin[i], SIZE_MAX - 1 - i);
    for (size_t i = 0; i < c->s->ndecls; i++) {
        const gen_decl *d = &c->s->decls[i];
        const char *mine[NREC + NEV];
        size_t n = 0;
        for (size_t k = 0; k < NREC + NEV && (k < NREC || d->is_event); k++) {
            const char *const *fix = k < NREC ? rec_fix[k] : ev_fix[k - NREC];
            char name[GEN_NAME_MAX * 2 + 32];
            int len = snprintf(name, sizeof name, "%s%s%s", fix[0], d->snake, fix[1]);
            mine[n++] = gen_arena_strndup(a, name, (size_t)len);
        }
        /* The first of this declaration's names that an earlier one
         * derives too, if any: one report per declaration. */
        for (size_t k = 0; k < n; k++) {
            size_t j = gen_names_get(ids, mine[k]);
            if (j == SIZE_MAX)
                continue;
            const char *what = d->is_event ? "event" : "record";
            if (j < c->s->ndecls) {
                const gen_decl *o = &c->s->decls[j];
                ERR(c, d->loc, "%s %s clashes with %s %s (line %d): both generate the C "
                    "name <prefix>_%s; rename one", what, d->name,
                    o->is_event ? "event" : "record", o->name, o->loc.line, mine[k]);
            } else {
                ERR(c, d->loc, "%s %s would generate the C name <prefix>_%s, which "
                    "choreo-gen uses itself; rename it", what, d->name, mine[k]);
            }
            break;
        }
        for (size_t k = 0; k < n; k++)
            gen_names_put(ids, mine[k], i);
    }
}

/* Whether a declaration's C name ends in _t, as in Least8T (least8_t). */
static bool ends_in_t(const char *snake)
{
    size_t n = strlen(snake);
    return strcmp(snake, "t") == 0 || (n > 2 && strcmp(snake + n - 2, "_t") == 0);
}

size_t gen_schema_check(gen_schema *s, gen_diags *diags)
{
    checker c = {s, diags, 0};
    char buf[GEN_NAME_MAX * 2 + 8];
    s->by_name = gen_names_create(s->arena, s->ndecls);
    for (size_t i = 0; i < s->ndecls; i++) {
        gen_decl *d = &s->decls[i];
        const char *what = d->is_event ? "event" : "record";
        d->snake = gen_snake(d->name, buf, sizeof buf);
        d->snake = gen_arena_strndup(s->arena, d->snake, strlen(d->snake));
        if (strlen(d->name) > GEN_NAME_MAX)
            ERR(&c, d->loc, "%s name '%.20s...' is longer than %d characters", what, d->name,
                GEN_NAME_MAX);
        else if (!upper_camel(d->name))
            ERR(&c, d->loc, "bad %s name '%s': use UpperCamel ASCII ([A-Z][A-Za-z0-9]*), "
                "e.g. OrderCreated", what, d->name);
        /* POSIX reserves names ending in _t for the types of its headers,
         * and with a prefix such a name can be one of them: prefix int and
         * record Least8T would declare int_least8_t. */
        else if (ends_in_t(d->snake))
            ERR(&c, d->loc, "bad %s name '%s': its C name <prefix>_%s ends in _t, as the type "
                "names of system headers do (int_least8_t, size_t, ...), and could be one of "
                "them; choose another name", what, d->name, d->snake);
        size_t j = gen_names_put(s->by_name, d->name, i);
        if (j != SIZE_MAX)
            ERR(&c, d->loc, "%s %s is already declared at line %d", what, d->name,
                s->decls[j].loc.line);
    }
    if (c.errors)
        return c.errors;
    for (size_t i = 0; i < s->ndecls; i++)
        check_fields(&c, &s->decls[i], i);
    if (c.errors == 0)
        check_identifiers(&c);
    return c.errors;
}
