/* The schema model's services: the arena that owns a schema, diagnostics,
 * loading a file, and printing types and values the way schemas write them.
 * Reading the text itself is lex.c and parse.c; checking it is check.c. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

/* ------------------------------------------------------------------------ */
/* Arena: every node and string of a schema, freed at once. Small requests
 * are carved from the current chunk; when it is full a new chunk takes its
 * place, so a chunk is never left with more than a small request's worth
 * unused. A large request gets a chunk of its own, linked behind the
 * current one, which goes on serving small requests. */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct gen_arena {
    chunk *cur; /* serves small requests; the others follow it */
};

#define ARENA_CHUNK 16384
/* Requests above this get a chunk of their own. */
#define ARENA_LARGE (ARENA_CHUNK / 4)

static chunk *chunk_new(size_t cap)
{
    chunk *c = calloc(1, sizeof *c + cap);
    if (!c) {
        fputs("choreo-gen: out of memory\n", stderr);
        abort();
    }
    c->cap = cap;
    return c;
}

gen_arena *gen_arena_create(void)
{
    gen_arena *a = calloc(1, sizeof *a);
    if (!a) {
        fputs("choreo-gen: out of memory\n", stderr);
        abort();
    }
    a->cur = chunk_new(ARENA_CHUNK);
    return a;
}

void gen_arena_destroy(gen_arena *a)
{
    if (!a)
        return;
    for (chunk *c = a->cur; c;) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *gen_arena_alloc(gen_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    chunk *c = a->cur;
    if (c->cap - c->used < size) {
        if (size > ARENA_LARGE) {
            chunk *big = chunk_new(size);
            big->used = size;
            big->next = c->next;
            c->next = big;
            return big->data;
        }
        c = chunk_new(ARENA_CHUNK);
        c->next = a->cur;
        a->cur = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

size_t gen_arena_footprint(const gen_arena *a)
{
    size_t n = sizeof *a;
    for (const chunk *c = a->cur; c; c = c->next)
        n += sizeof *c + c->cap;
    return n;
}

char *gen_arena_strndup(gen_arena *a, const char *s, size_t len)
{
    char *p = gen_arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
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
/* Files, lookups and printing */

char *gen_read_text(const char *path, const char *what, size_t *len, gen_diags *diags)
{
    gen_loc loc = {path, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        gen_diag_add(diags, loc, "cannot open the %s: %s", what, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            gen_diag_add(diags, loc, "out of memory reading the %s", what);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= (size_t)64 << 20) {
            free(buf);
            fclose(f);
            gen_diag_add(diags, loc, "the %s is larger than 64 MiB: is it the right file?", what);
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
        gen_diag_add(diags, loc, "cannot read the %s: %s", what, strerror(err));
        return NULL;
    }
    buf[n] = '\0'; /* n < cap: the loop ends on a short read */
    /* Some editors start UTF-8 files with a byte order mark. It says
     * nothing in UTF-8, and the text is read as if it were not there. */
    if (n >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        n -= 3;
        memmove(buf, buf + 3, n + 1);
    }
    *len = n;
    return buf;
}

gen_schema *gen_schema_load(const char *path, gen_diags *diags)
{
    size_t len = 0;
    char *buf = gen_read_text(path, "schema", &len, diags);
    if (!buf)
        return NULL;
    gen_schema *s = gen_schema_parse(path, buf, len, diags);
    free(buf);
    return s;
}

void gen_schema_free(gen_schema *s)
{
    if (s)
        gen_arena_destroy(s->arena);
}

/* ------------------------------------------------------------------------ */
/* Name tables: open addressing with linear probing, at most half full. */

struct gen_names {
    const char **keys; /* NULL: a free slot */
    size_t *vals;
    size_t mask;       /* slots - 1, a power of two minus one */
    size_t n, max;     /* names stored, and at most */
};

gen_names *gen_names_create(gen_arena *a, size_t max_names)
{
    size_t slots = 8;
    while (slots < max_names * 2)
        slots *= 2;
    gen_names *t = gen_arena_alloc(a, sizeof *t);
    t->keys = gen_arena_alloc(a, slots * sizeof *t->keys);
    t->vals = gen_arena_alloc(a, slots * sizeof *t->vals);
    t->mask = slots - 1;
    t->max = max_names;
    return t;
}

/* FNV-1a: names are short, and it spreads them well enough. */
static size_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return (size_t)h;
}

/* The slot holding name, or the free slot where it would go. */
static size_t name_slot(const gen_names *t, const char *name)
{
    size_t i = name_hash(name) & t->mask;
    while (t->keys[i] && strcmp(t->keys[i], name) != 0)
        i = (i + 1) & t->mask;
    return i;
}

size_t gen_names_get(const gen_names *t, const char *name)
{
    size_t i = name_slot(t, name);
    return t->keys[i] ? t->vals[i] : SIZE_MAX;
}

size_t gen_names_put(gen_names *t, const char *name, size_t val)
{
    size_t i = name_slot(t, name);
    if (t->keys[i])
        return t->vals[i];
    assert(t->n < t->max); /* past it, the table could fill up and never find a free slot */
    t->n++;
    t->keys[i] = name;
    t->vals[i] = val;
    return SIZE_MAX;
}

gen_decl *gen_schema_find(const gen_schema *s, const char *name)
{
    if (s->by_name) {
        size_t i = gen_names_get(s->by_name, name);
        return i == SIZE_MAX ? NULL : &s->decls[i];
    }
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

/* Whether s[i] ends a pair that C reads specially inside the comment the
 * generated header puts a default in: the end of the comment, the start of
 * a nested one (-Wcomment), or a trigraph. Written as \\uXXXX, it stays the
 * same schema literal. */
static bool comment_pair(const char *s, size_t i)
{
    if (i == 0)
        return false;
    char a = s[i - 1], b = s[i];
    return (a == '*' && b == '/') || (a == '/' && b == '*') || (a == '?' && b == '?');
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
            } else if (v->raw && (c < 0x20 || c >= 0x7f)) {
                /* Written with \xNN: any byte, not necessarily UTF-8. */
                n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
            } else if (c < 0x20 || c == 0x7f || comment_pair(v->str, i)) {
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
