/* Decides whether a new version of a schema can replace the old one while
 * services built from either keep exchanging events. Events travel as maps
 * keyed by field name and services upgrade one at a time, so each change is
 * judged in both directions: new consumers reading old data, and old
 * consumers reading new data. Also decides whether a consumer's subset of a
 * schema is met by the producer's schema, in the one direction data flows.
 * The rules are listed in events/README.md. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compat.h"

typedef struct cmp {
    FILE *out;
    gen_compat_counts n;
} cmp;

typedef enum verdict { BREAKING, WARNING, COMPATIBLE } verdict;

static void report(cmp *c, verdict v, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void report(cmp *c, verdict v, gen_loc loc, const char *fmt, ...)
{
    static const char *const words[] = {"breaking", "warning", "compatible"};
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(c->out, "%s:%d: %s: %s\n", loc.file, loc.line, words[v], msg);
    if (v == BREAKING)
        c->n.breaking++;
    else if (v == WARNING)
        c->n.warnings++;
    else
        c->n.compatible++;
}

/* The bound a decoder enforces: lists have a default, strings none. */
static uint32_t effective_bound(const gen_type *t)
{
    if (t->kind == GEN_LIST)
        return t->max ? t->max : GEN_LIST_DEFAULT_MAX;
    return t->max;
}

/* Same wire type and same bounds. Records are compared by name; their own
 * changes are reported where the record is compared. */
static bool same_kind(const gen_type *a, const gen_type *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == GEN_LIST)
        return same_kind(a->elem, b->elem);
    if (a->kind == GEN_RECORD)
        return strcmp(a->record_name, b->record_name) == 0;
    return true;
}

/* The first differing bound between two types of the same kind, or NULL. */
static const gen_type *bound_change(const gen_type *a, const gen_type *b, const gen_type **other)
{
    if (effective_bound(a) != effective_bound(b)) {
        *other = b;
        return a;
    }
    if (a->kind == GEN_LIST)
        return bound_change(a->elem, b->elem, other);
    return NULL;
}

static bool same_value(const gen_value *a, const gen_value *b)
{
    if (a->kind != b->kind)
        return a->kind != GEN_LIT_LIST && b->kind != GEN_LIT_LIST &&
               (a->kind == GEN_LIT_INT || a->kind == GEN_LIT_FLOAT) &&
               (b->kind == GEN_LIT_INT || b->kind == GEN_LIT_FLOAT) && a->f == b->f;
    switch (a->kind) {
    case GEN_LIT_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case GEN_LIT_INT: return a->neg == b->neg && a->mag == b->mag;
    case GEN_LIT_FLOAT: return a->f == b->f;
    case GEN_LIT_BOOL: return a->b == b->b;
    case GEN_LIT_LIST:
        if (a->nitems != b->nitems)
            return false;
        for (size_t i = 0; i < a->nitems; i++)
            if (!same_value(&a->items[i], &b->items[i]))
                return false;
        return true;
    }
    return false;
}

static const gen_field *find_field(const gen_decl *d, const char *name)
{
    for (size_t i = 0; i < d->nfields; i++)
        if (strcmp(d->fields[i].name, name) == 0)
            return &d->fields[i];
    return NULL;
}

static size_t field_index(const gen_decl *d, const gen_field *f)
{
    return (size_t)(f - d->fields);
}

/* A field of `od` absent from `nd` that sits where `nf` sits now, with the
 * same type: most likely `nf` is that field renamed. */
static const gen_field *renamed_from(const gen_decl *od, const gen_decl *nd, const gen_field *nf)
{
    size_t i = field_index(nd, nf);
    if (i >= od->nfields)
        return NULL;
    const gen_field *of = &od->fields[i];
    if (find_field(nd, of->name) || find_field(od, nf->name))
        return NULL;
    return same_kind(of->type, nf->type) ? of : NULL;
}

static void compare_fields(cmp *c, const gen_decl *od, const gen_decl *nd)
{
    char ta[300], tb[300];
    const char *what = nd->is_event ? "event" : "record";
    for (size_t i = 0; i < od->nfields; i++) {
        const gen_field *of = &od->fields[i];
        const gen_field *nf = find_field(nd, of->name);
        if (nf)
            continue;
        bool renamed = false;
        for (size_t j = 0; j < nd->nfields && !renamed; j++)
            renamed = renamed_from(od, nd, &nd->fields[j]) == of;
        if (renamed)
            continue; /* reported with the new name below */
        if (of->dflt)
            report(c, COMPATIBLE, of->loc, "%s %s: optional field '%s' was removed (old "
                   "consumers use its default)", what, od->name, of->name);
        else
            report(c, BREAKING, of->loc, "%s %s: required field '%s' was removed; consumers "
                   "built from the old schema reject data without it (keep it, or add a new "
                   "event without it)", what, od->name, of->name);
    }
    for (size_t i = 0; i < nd->nfields; i++) {
        const gen_field *nf = &nd->fields[i];
        const gen_field *of = find_field(od, nf->name);
        if (!of) {
            const gen_field *was = renamed_from(od, nd, nf);
            if (was && was->dflt && nf->dflt)
                report(c, WARNING, nf->loc, "%s %s: optional field '%s' was renamed to '%s' "
                       "(%s:%d); fields travel by name, so values written under one name are "
                       "ignored (and defaulted) under the other", what, nd->name, was->name,
                       nf->name, was->loc.file, was->loc.line);
            else if (was)
                report(c, BREAKING, nf->loc, "%s %s: field '%s' was renamed to '%s' (%s:%d); "
                       "fields travel by name, so old and new code no longer see the same "
                       "field", what, nd->name, was->name, nf->name, was->loc.file,
                       was->loc.line);
            else if (nf->dflt)
                report(c, COMPATIBLE, nf->loc, "%s %s: optional field '%s' was added", what,
                       nd->name, nf->name);
            else
                report(c, BREAKING, nf->loc, "%s %s: required field '%s' was added; data "
                       "from producers built from the old schema lacks it (give it a default)",
                       what, nd->name, nf->name);
            continue;
        }
        if (!same_kind(of->type, nf->type)) {
            report(c, BREAKING, nf->loc, "%s %s: field '%s' changed type from %s to %s (%s:%d)",
                   what, nd->name, nf->name, gen_type_str(of->type, ta, sizeof ta),
                   gen_type_str(nf->type, tb, sizeof tb), of->loc.file, of->loc.line);
            continue;
        }
        const gen_type *other = NULL;
        const gen_type *bt = bound_change(of->type, nf->type, &other);
        if (bt) {
            report(c, BREAKING, nf->loc, "%s %s: field '%s' changed its size bound from %s to "
                   "%s; values valid on one side are rejected on the other", what, nd->name,
                   nf->name, gen_type_str(of->type, ta, sizeof ta),
                   gen_type_str(nf->type, tb, sizeof tb));
            continue;
        }
        if (of->dflt && !nf->dflt) {
            report(c, BREAKING, nf->loc, "%s %s: field '%s' became required; producers may "
                   "leave out an optional field, and consumers built from the new schema "
                   "would reject that data", what, nd->name, nf->name);
        } else if (!of->dflt && nf->dflt) {
            /* choreo's generated encoders write every field, but the schema
             * is the contract of producers in any language, and one of them
             * may now leave the field out: --check-consumer judges the same
             * pair of declarations breaking. */
            report(c, BREAKING, nf->loc, "%s %s: field '%s' became optional; producers may "
                   "now leave it out, and consumers built from the old schema, which require "
                   "it, would reject that data (keep it required, or add a new event)", what,
                   nd->name, nf->name);
        } else if (of->dflt && nf->dflt && !same_value(of->dflt, nf->dflt)) {
            char va[120], vb[120];
            report(c, WARNING, nf->loc, "%s %s: default of field '%s' changed from %s to %s; "
                   "data without the field now means different things to old and new "
                   "consumers", what, nd->name, nf->name, gen_value_str(of->dflt, va, sizeof va),
                   gen_value_str(nf->dflt, vb, sizeof vb));
        }
    }
}

gen_compat_counts gen_compat_check(const gen_schema *old_s, const gen_schema *new_s, void *file)
{
    cmp c;
    memset(&c, 0, sizeof c);
    c.out = file;
    for (size_t i = 0; i < old_s->ndecls; i++) {
        const gen_decl *od = &old_s->decls[i];
        const gen_decl *nd = gen_schema_find(new_s, od->name);
        const char *what = od->is_event ? "event" : "record";
        if (!nd) {
            if (od->is_event)
                report(&c, BREAKING, od->loc, "event %s was removed; services that emit or "
                       "handle it lose their counterpart (keep it until none does)", od->name);
            else
                report(&c, BREAKING, od->loc, "record %s was removed; code that encodes or "
                       "decodes it (request/reply payloads) breaks", od->name);
            continue;
        }
        if (od->is_event != nd->is_event) {
            report(&c, BREAKING, nd->loc, "%s was %s %s and is now %s %s (%s:%d)", od->name,
                   od->is_event ? "an" : "a", what, nd->is_event ? "an" : "a",
                   nd->is_event ? "event" : "record", od->loc.file, od->loc.line);
            continue;
        }
        if (od->is_event && nd->version < od->version)
            report(&c, BREAKING, nd->loc, "event %s: version went down from v%u to v%u; "
                   "versions only grow", nd->name, od->version, nd->version);
        else if (od->is_event && nd->version > od->version)
            report(&c, COMPATIBLE, nd->loc, "event %s: version raised from v%u to v%u",
                   nd->name, od->version, nd->version);
        compare_fields(&c, od, nd);
    }
    for (size_t i = 0; i < new_s->ndecls; i++) {
        const gen_decl *nd = &new_s->decls[i];
        if (!gen_schema_find(old_s, nd->name))
            report(&c, COMPATIBLE, nd->loc, "%s %s was added", nd->is_event ? "event" : "record",
                   nd->name);
    }
    return c.n;
}

/* ------------------------------------------------------------------------ */
/* A consumer's expectations. A consumer may declare a subset of a producer's
 * schema: the events and fields it reads. Its generated decoder skips the
 * fields it does not declare, so only what it declares has to be met, in one
 * direction: data written by the producer, read by the consumer. */

/* Whether some value of type p, as the producer may send it, is over a size
 * bound of type c at any level (both of the same kind). An unbounded string
 * or bytes field of the consumer takes anything. */
static bool bound_exceeded(const gen_type *p, const gen_type *c)
{
    uint32_t pb = effective_bound(p), cb = effective_bound(c);
    if (cb != 0 && (pb == 0 || pb > cb))
        return true;
    return p->kind == GEN_LIST && bound_exceeded(p->elem, c->elem);
}

static void expect_field(cmp *c, const gen_decl *cd, const gen_field *cf, const gen_decl *pd)
{
    char ta[300], tb[300], va[120], vb[120];
    const char *what = cd->is_event ? "event" : "record";
    const gen_field *pf = find_field(pd, cf->name);
    if (!pf) {
        if (cf->dflt)
            report(c, WARNING, cf->loc, "%s %s: optional field '%s' is not declared by the "
                   "producer; the consumer always sees its default %s", what, cd->name,
                   cf->name, gen_value_str(cf->dflt, va, sizeof va));
        else
            report(c, BREAKING, cf->loc, "%s %s: required field '%s' is not declared by the "
                   "producer; the consumer would reject every %s %s (drop the field, or give it "
                   "a default)", what, cd->name, cf->name, what, cd->name);
        return;
    }
    gen_type_str(cf->type, ta, sizeof ta);
    gen_type_str(pf->type, tb, sizeof tb);
    if (!same_kind(cf->type, pf->type)) {
        report(c, BREAKING, cf->loc, "%s %s: field '%s' is %s here but %s in the producer "
               "(%s:%d); the consumer cannot decode it (declare the producer's type)", what,
               cd->name, cf->name, ta, tb, pf->loc.file, pf->loc.line);
    } else if (bound_exceeded(pf->type, cf->type)) {
        report(c, BREAKING, cf->loc, "%s %s: field '%s' is %s here but %s in the producer "
               "(%s:%d); the producer may send more than the consumer's bound allows, and the "
               "consumer rejects such data (declare at least the producer's bound)", what,
               cd->name, cf->name, ta, tb, pf->loc.file, pf->loc.line);
    } else if (!cf->dflt && pf->dflt) {
        report(c, BREAKING, cf->loc, "%s %s: field '%s' is required here but optional in the "
               "producer (%s:%d); producers may leave it out, and the consumer would reject "
               "that data (give it the producer's default, = %s)", what, cd->name, cf->name,
               pf->loc.file, pf->loc.line, gen_value_str(pf->dflt, vb, sizeof vb));
    } else if (cf->dflt && pf->dflt && !same_value(cf->dflt, pf->dflt)) {
        report(c, WARNING, cf->loc, "%s %s: field '%s' defaults to %s here but to %s in the "
               "producer (%s:%d); data without the field means different things to the two",
               what, cd->name, cf->name, gen_value_str(cf->dflt, va, sizeof va),
               gen_value_str(pf->dflt, vb, sizeof vb), pf->loc.file, pf->loc.line);
    }
}

/* Checks one declaration of the consumer against the producer's. */
static void expect_decl(cmp *c, const gen_decl *cd, const gen_schema *producer)
{
    const gen_decl *pd = gen_schema_find(producer, cd->name);
    if (!pd) {
        if (cd->is_event)
            report(c, BREAKING, cd->loc, "event %s is not in the producer's schema %s, so that "
                   "producer never emits it (if another service does, declare the event in a "
                   "separate file checked against that service's schema)", cd->name,
                   producer->file);
        else
            report(c, BREAKING, cd->loc, "record %s is not in the producer's schema %s "
                   "(records are matched by name: use the producer's name)", cd->name,
                   producer->file);
        return;
    }
    if (cd->is_event != pd->is_event) {
        report(c, BREAKING, cd->loc, "%s is %s here but %s in the producer (%s:%d); declare it "
               "as the producer does", cd->name,
               cd->is_event ? "an event" : "a record", pd->is_event ? "an event" : "a record",
               pd->loc.file, pd->loc.line);
        return;
    }
    if (cd->is_event && pd->version < cd->version)
        report(c, BREAKING, cd->loc, "event %s: the producer declares v%u, older than the v%u "
               "the consumer expects; versions only grow (check against the producer's current "
               "schema)", cd->name, pd->version, cd->version);
    else if (cd->is_event && pd->version > cd->version)
        report(c, COMPATIBLE, cd->loc, "event %s: the producer declares v%u, newer than the "
               "consumer's v%u (consumers decode every version by field name)", cd->name,
               pd->version, cd->version);
    for (size_t i = 0; i < cd->nfields; i++)
        expect_field(c, cd, &cd->fields[i], pd);
}

gen_compat_counts gen_compat_consumer(const gen_schema *producer, const gen_schema *consumer,
                                      void *file)
{
    cmp c;
    memset(&c, 0, sizeof c);
    c.out = file;
    for (size_t i = 0; i < consumer->ndecls; i++)
        expect_decl(&c, &consumer->decls[i], producer);
    return c.n;
}
