/* Writes the generated source: encoding, decoding and checking with choreo's
 * msgpack reader and writer, typed emits, and handler registration through a
 * decoding trampoline. The helpers every generated file carries come from
 * the templates of emit_rt.h. */
#include <stdio.h>
#include <string.h>

#include "emit_rt.h"
#include "emitter.h"

/* ------------------------------------------------------------------------ */
/* Source: defaults and init */

static void emit_defaults(emitter *e, const gen_decl *d)
{
    char ty[200];
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        if (!f->dflt || f->type->kind != GEN_LIST || f->dflt->nitems == 0)
            continue;
        emit_c_type(e, f->type->elem, ty, sizeof ty);
        if (f->type->elem->kind == GEN_STRING)
            emit_out(e, "static const char *const %s__%s__dflt_%s[] = {", e->p, d->snake, f->name);
        else
            emit_out(e, "static const %s%s__%s__dflt_%s[] = {", ty, e->p, d->snake, f->name);
        for (size_t k = 0; k < f->dflt->nitems; k++) {
            emit_out(e, k ? ", " : "");
            emit_c_scalar(e, f->type->elem, &f->dflt->items[k]);
        }
        emit_out(e, "};\n\n");
    }
}

static void emit_init(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    emit_out(e, "void %s_%s_init(%s_%s *v)\n{\n", p, x, p, x);
    emit_out(e, "    if (!v)\n        return;\n    memset(v, 0, sizeof *v);\n");
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        const gen_type *t = f->type;
        if (t->kind == GEN_RECORD) {
            emit_out(e, "    %s_%s_init(&v->%s);\n", p, t->record->snake, f->name);
            continue;
        }
        if (!f->dflt) {
            if (t->kind == GEN_STRING)
                emit_out(e, "    v->%s = \"\";\n", f->name);
            continue;
        }
        switch (t->kind) {
        case GEN_LIST:
            if (f->dflt->nitems)
                emit_out(e, "    v->%s.items = %s__%s__dflt_%s;\n    v->%s.count = %zu;\n",
                    f->name, p, x, f->name, f->name, f->dflt->nitems);
            break;
        case GEN_BYTES:
            if (f->dflt->len) {
                emit_out(e, "    v->%s.data = (const uint8_t *)", f->name);
                emit_c_string(e, f->dflt->str, f->dflt->len);
                emit_out(e, ";\n    v->%s.len = %zu;\n", f->name, f->dflt->len);
            }
            break;
        default:
            emit_out(e, "    v->%s = ", f->name);
            emit_c_scalar(e, t, f->dflt);
            emit_out(e, ";\n");
            break;
        }
    }
    emit_out(e, "}\n\n");
}

/* ------------------------------------------------------------------------ */
/* Source: decode */

/* The statement reading one value of type t into lvalue `dst`. */
static void read_stmt(emitter *e, const gen_type *t, const char *dst, const char *indent)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING:
        emit_out(e, "%sst = %s__read_string(c, &%s, %luu);\n", indent, p, dst,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BYTES:
        emit_out(e, "%sst = %s__read_bytes(c, &%s, %luu);\n", indent, p, dst,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BOOL: emit_out(e, "%sst = %s__read_bool(c, &%s);\n", indent, p, dst); break;
    case GEN_I32: emit_out(e, "%sst = %s__read_i32(c, &%s);\n", indent, p, dst); break;
    case GEN_I64:
    case GEN_TIMESTAMP:
        emit_out(e, "%sst = %s__read_int(c, &%s, \"%s\");\n", indent, p, dst, gen_kind_name(t->kind));
        break;
    case GEN_U64: emit_out(e, "%sst = %s__read_u64(c, &%s);\n", indent, p, dst); break;
    case GEN_F64: emit_out(e, "%sst = %s__read_f64(c, &%s);\n", indent, p, dst); break;
    case GEN_RECORD:
        emit_out(e, "%sst = %s__%s__decode(c, &%s);\n", indent, p, t->record->snake, dst);
        break;
    case GEN_LIST: {
        const gen_type *el = t->elem;
        if (el->kind == GEN_RECORD)
            emit_out(e, "%sst = %s__%s__read_list(c, &%s, %luu);\n", indent, p, el->record->snake,
                dst, (unsigned long)emit_bound_of(t));
        else if (el->kind == GEN_STRING || el->kind == GEN_BYTES)
            emit_out(e, "%sst = %s__read_list_%s(c, &%s, %luu, %luu);\n", indent, p,
                gen_kind_name(el->kind), dst, (unsigned long)emit_bound_of(t),
                (unsigned long)(el->max ? el->max : UINT32_MAX));
        else
            emit_out(e, "%sst = %s__read_list_%s(c, &%s, %luu);\n", indent, p,
                gen_kind_name(el->kind), dst, (unsigned long)emit_bound_of(t));
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
    emit_c_type(e, el, ty, sizeof ty);
    emit_out(e, "static choreo_status %s(%s__ctx *c, %s_list_%s *out, uint32_t max%s)\n{\n", fname,
        p, p, emit_list_key(el), sized ? ", uint32_t item_max" : "");
    emit_out(e, "    uint32_t n, i;\n    %s*items = NULL;\n", ty);
    emit_out(e, "    choreo_status st = %s__read_array(c, &n, max);\n", p);
    emit_out(e, "    if (st != CHOREO_OK)\n        return st;\n");
    emit_out(e, "    if (n > 0) {\n        items = %s__alloc(c->mem, (size_t)n * sizeof *items);\n",
        p);
    emit_out(e, "        if (!items)\n            return %s__fail_nomem(c, (size_t)n * sizeof *items);"
        "\n    }\n", p);
    emit_out(e, "    for (i = 0; i < n; i++) {\n        %s__set_index(c, (long)i);\n", p);
    switch (el->kind) {
    case GEN_STRING: emit_out(e, "        st = %s__read_string(c, &items[i], item_max);\n", p); break;
    case GEN_BYTES: emit_out(e, "        st = %s__read_bytes(c, &items[i], item_max);\n", p); break;
    default: read_stmt(e, el, "items[i]", "        "); break;
    }
    emit_out(e, "        if (st != CHOREO_OK)\n            return st;\n    }\n");
    emit_out(e, "    %s__set_index(c, -1);\n    out->items = items;\n    out->count = n;\n", p);
    emit_out(e, "    return CHOREO_OK;\n}\n\n");
}

static void emit_decode(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char dst[GEN_FIELD_NAME_MAX + 8];
    emit_out(e, "static choreo_status %s__%s__decode(%s__ctx *c, %s_%s *v)\n{\n", p, x, p, p, x);
    if (d->nfields) {
        size_t col = 40;
        emit_out(e, "    static const char *const names[] = {");
        for (size_t k = 0; k < d->nfields; k++) {
            size_t w = strlen(d->fields[k].name) + 4;
            if (k && col + w > 98) {
                emit_out(e, ",\n        ");
                col = 8;
            } else if (k) {
                emit_out(e, ", ");
            }
            emit_out(e, "\"%s\"", d->fields[k].name);
            col += w;
        }
        emit_out(e, "};\n    unsigned char seen[%zu];\n", d->nfields);
    }
    emit_out(e, "    uint32_t n, i;\n    choreo_status st;\n");
    emit_out(e, "    %s_%s_init(v);\n", p, x);
    if (d->nfields)
        emit_out(e, "    memset(seen, 0, sizeof seen);\n");
    emit_out(e, "    st = %s__read_map(c, &n);\n    if (st != CHOREO_OK)\n        return st;\n", p);
    emit_out(e, "    for (i = 0; i < n; i++) {\n        const char *key;\n        uint32_t klen;\n");
    if (d->nfields)
        emit_out(e, "        int f = -1;\n");
    emit_out(e, "        st = %s__read_key(c, &key, &klen);\n", p);
    emit_out(e, "        if (st != CHOREO_OK)\n            return st;\n");
    for (size_t k = 0; k < d->nfields; k++) {
        const char *name = d->fields[k].name;
        emit_out(e, "        %sif (klen == %zu && memcmp(key, \"%s\", %zu) == 0)\n            f = %zu;\n",
            k ? "else " : "", strlen(name), name, strlen(name), k);
    }
    if (d->nfields) {
        emit_out(e, "        if (f < 0) {\n");
    } else {
        emit_out(e, "        (void)key;\n        (void)klen;\n        {\n");
    }
    emit_out(e, "            st = %s__skip(c);\n            if (st != CHOREO_OK)\n"
        "                return st;\n            continue;\n        }\n", p);
    if (d->nfields == 0) {
        emit_out(e, "    }\n    return CHOREO_OK;\n}\n\n");
        return;
    }
    emit_out(e, "        if (seen[f])\n            return %s__fail_twice(c, names[f]);\n", p);
    emit_out(e, "        seen[f] = 1;\n        %s__push(c, names[f]);\n", p);
    emit_out(e, "        switch (f) {\n");
    for (size_t k = 0; k < d->nfields; k++) {
        const gen_field *f = &d->fields[k];
        emit_out(e, "        case %zu: /* %s */\n", k, f->name);
        snprintf(dst, sizeof dst, "v->%s", f->name);
        if (f->dflt) {
            emit_out(e, "            if (%s__nil(c))\n                st = CHOREO_OK;\n"
                "            else\n", p);
            read_stmt(e, f->type, dst, "                ");
        } else {
            read_stmt(e, f->type, dst, "            ");
        }
        emit_out(e, "            break;\n");
    }
    emit_out(e, "        default:\n            st = CHOREO_OK;\n            break;\n        }\n");
    emit_out(e, "        if (st != CHOREO_OK)\n            return st;\n        %s__pop(c);\n    }\n",
        p);
    for (size_t k = 0; k < d->nfields; k++) {
        if (d->fields[k].dflt)
            continue;
        emit_out(e, "    if (!seen[%zu])\n        return %s__fail_missing(c, \"%s\");\n", k, p,
            d->fields[k].name);
    }
    emit_out(e, "    return CHOREO_OK;\n}\n\n");
    if (!d->is_event) {
        char fname[GEN_NAME_MAX * 2 + 64];
        gen_type el = {.kind = GEN_RECORD, .record = (gen_decl *)d, .record_name = d->name};
        snprintf(fname, sizeof fname, "%s__%s__read_list", p, x);
        if (d->listed)
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
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    static const uint8_t empty_map = 0x80;\n");
    emit_out(e, "    %s__ctx c;\n    %s_%s v;\n    %s_mem *mem = NULL;\n    choreo_status st;\n", p,
        p, x, p);
    emit_out(e, "    %s__ctx_init(&c, \"%s\", err, errlen);\n", p, d->name);
    emit_out(e, "    if (!out || (!data && len))\n"
        "        return %s__fail(&c, CHOREO_EINVAL, \"decode needs an output and data\");\n", p);
    emit_out(e, "    if (len == 0) {\n        data = &empty_map;\n        len = 1;\n    }\n");
    emit_out(e, "    choreo_mp_reader_init(&c.r, data, len);\n    c.mem = &mem;\n");
    emit_out(e, "    st = %s__%s__decode(&c, &v);\n", p, x);
    emit_out(e, "    if (st == CHOREO_OK && c.r.pos != c.r.end)\n"
        "        st = %s__fail(&c, CHOREO_EDECODE, \"%%lu bytes follow the data map\",\n"
        "                      (unsigned long)(c.r.end - c.r.pos));\n", p);
    emit_out(e, "    if (st != CHOREO_OK) {\n        %s__mem_release(mem);\n        return st;\n    }\n",
        p);
    emit_out(e, "    v.mem_ = mem;\n    *out = v;\n    return CHOREO_OK;\n}\n\n");
    emit_out(e, "void %s_%s_free(%s_%s *v)\n{\n    if (!v)\n        return;\n", p, x, p, x);
    emit_out(e, "    %s__mem_release(v->mem_);\n    %s_%s_init(v);\n}\n\n", p, p, x);
}

/* ------------------------------------------------------------------------ */
/* Source: check and encode */

static void check_value_stmt(emitter *e, const gen_type *t, const char *expr, const char *ind)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING:
        emit_out(e, "%sst = %s__check_string(c, %s, %luu);\n", ind, p, expr,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_BYTES:
        emit_out(e, "%sst = %s__check_bytes(c, &%s, %luu);\n", ind, p, expr,
            (unsigned long)(t->max ? t->max : UINT32_MAX));
        break;
    case GEN_RECORD:
        emit_out(e, "%sst = %s__%s__check(c, &%s);\n", ind, p, t->record->snake, expr);
        break;
    default:
        emit_out(e, "%sst = CHOREO_OK;\n", ind);
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
    emit_out(e, "static choreo_status %s__%s__check(%s__ctx *c, const %s_%s *v)\n{\n", p, x, p, p, x);
    if (!any) {
        emit_out(e, "    (void)c;\n    (void)v;\n    return CHOREO_OK;\n}\n\n");
    } else {
        emit_out(e, "    choreo_status st;\n");
        for (size_t i = 0; i < d->nfields; i++) {
            const gen_field *f = &d->fields[i];
            const gen_type *t = f->type;
            if (!needs_check(t))
                continue;
            emit_out(e, "    %s__push(c, \"%s\");\n", p, f->name);
            if (t->kind == GEN_LIST) {
                emit_out(e, "    st = %s__check_count(c, v->%s.items, v->%s.count, %luu);\n", p,
                    f->name, f->name, (unsigned long)emit_bound_of(t));
                if (needs_check(t->elem)) {
                    emit_out(e, "    if (st == CHOREO_OK) {\n        size_t i;\n");
                    emit_out(e, "        for (i = 0; st == CHOREO_OK && i < v->%s.count; i++) {\n",
                        f->name);
                    emit_out(e, "            %s__set_index(c, (long)i);\n", p);
                    snprintf(expr, sizeof expr, "v->%s.items[i]", f->name);
                    check_value_stmt(e, t->elem, expr, "            ");
                    emit_out(e, "        }\n        if (st == CHOREO_OK)\n"
                        "            %s__set_index(c, -1);\n    }\n", p);
                }
            } else {
                snprintf(expr, sizeof expr, "v->%s", f->name);
                check_value_stmt(e, t, expr, "    ");
            }
            emit_out(e, "    if (st != CHOREO_OK)\n        return st;\n    %s__pop(c);\n", p);
        }
        emit_out(e, "    return CHOREO_OK;\n}\n\n");
    }
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s_%s_check", p, x);
    snprintf(params, sizeof params, "const %s_%s *v, char *err, size_t errlen", p, x);
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    %s__ctx c;\n    %s__ctx_init(&c, \"%s\", err, errlen);\n", p, p, d->name);
    emit_out(e, "    if (!v)\n        return %s__fail(&c, CHOREO_EINVAL, \"the value is NULL\");\n", p);
    emit_out(e, "    return %s__%s__check(&c, v);\n}\n\n", p, x);
}

static void write_stmt(emitter *e, const gen_type *t, const char *expr, const char *ind)
{
    const char *p = e->p;
    switch (t->kind) {
    case GEN_STRING: emit_out(e, "%s%s__write_string(w, %s);\n", ind, p, expr); break;
    case GEN_BYTES:
        emit_out(e, "%schoreo_mp_write_bin(w, %s.data, %s.len);\n", ind, expr, expr);
        break;
    case GEN_BOOL: emit_out(e, "%schoreo_mp_write_bool(w, %s);\n", ind, expr); break;
    case GEN_I32:
    case GEN_I64:
    case GEN_TIMESTAMP: emit_out(e, "%schoreo_mp_write_int(w, %s);\n", ind, expr); break;
    case GEN_U64: emit_out(e, "%schoreo_mp_write_uint(w, %s);\n", ind, expr); break;
    case GEN_F64: emit_out(e, "%schoreo_mp_write_double(w, %s);\n", ind, expr); break;
    case GEN_RECORD:
        emit_out(e, "%s%s__%s__encode(w, &%s);\n", ind, p, t->record->snake, expr);
        break;
    case GEN_LIST: {
        char item[GEN_FIELD_NAME_MAX + 32];
        emit_out(e, "%s{\n%s    size_t i;\n", ind, ind);
        emit_out(e, "%s    choreo_mp_write_array(w, (uint32_t)%s.count);\n", ind, expr);
        emit_out(e, "%s    for (i = 0; i < %s.count; i++)\n", ind, expr);
        snprintf(item, sizeof item, "%s.items[i]", expr);
        char ind2[32];
        snprintf(ind2, sizeof ind2, "%s        ", ind);
        write_stmt(e, t->elem, item, ind2);
        emit_out(e, "%s}\n", ind);
        break;
    }
    }
}

static void emit_encode(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char expr[GEN_FIELD_NAME_MAX + 8];
    emit_out(e, "static void %s__%s__encode(choreo_mp_writer *w, const %s_%s *v)\n{\n", p, x, p, x);
    if (d->nfields == 0)
        emit_out(e, "    (void)v;\n");
    emit_out(e, "    choreo_mp_write_map(w, %zuu);\n", d->nfields);
    for (size_t i = 0; i < d->nfields; i++) {
        const gen_field *f = &d->fields[i];
        emit_out(e, "    choreo_mp_write_str(w, \"%s\", %zu);\n", f->name, strlen(f->name));
        snprintf(expr, sizeof expr, "v->%s", f->name);
        write_stmt(e, f->type, expr, "    ");
    }
    emit_out(e, "}\n\n");
    emit_out(e, "choreo_status %s_%s_encode(const %s_%s *v, choreo_mp_writer *w)\n{\n", p, x, p, x);
    emit_out(e, "    choreo_status st;\n");
    emit_out(e, "    if (!v || !w)\n        return CHOREO_EINVAL;\n");
    emit_out(e, "    st = %s_%s_check(v, NULL, 0);\n    if (st != CHOREO_OK)\n        return st;\n",
        p, x);
    emit_out(e, "    %s__%s__encode(w, v);\n    return choreo_mp_writer_status(w);\n}\n\n", p, x);
}

/* ------------------------------------------------------------------------ */
/* Source: emit and handlers */

static void emit_event_api(emitter *e, const gen_decl *d)
{
    const char *p = e->p, *x = d->snake;
    char U[GEN_NAME_MAX * 2 + 8];
    emit_upper(U, sizeof U, x);
    char name[GEN_NAME_MAX * 2 + 80], params[GEN_NAME_MAX * 2 + 200];
    snprintf(name, sizeof name, "%s__%s__emit", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, %s__when when, int64_t ms, "
             "const char *saga, const %s_%s *v, char *id_out", p, p, x);
    emit_sig(e, "static choreo_status ", name, params, "\n{\n");
    emit_out(e, "    choreo_mp_writer w;\n    choreo_status st;\n");
    emit_out(e, "    if (!tx || !v)\n        return CHOREO_EINVAL;\n");
    /* The service's max_event_bytes (up to the limit) is checked by the
     * emit, with its own error. */
    emit_out(e, "    choreo_mp_writer_init(&w, CHOREO_EVENT_BYTES_LIMIT);\n"
                "    st = %s_%s_encode(v, &w);\n", p, x);
    emit_out(e, "    if (st == CHOREO_OK)\n        st = %s__emit(tx, when, ms, %s_%s_TYPE,\n"
        "                    %s_%s_VERSION, saga, &w, id_out);\n", p, e->P, U, e->P, U);
    emit_out(e, "    choreo_mp_writer_free(&w);\n    return st;\n}\n\n");
    snprintf(name, sizeof name, "%s_emit_%s", p, x);
    snprintf(params, sizeof params,
             "choreo_tx *tx, const char *saga, const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p,
             x);
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    return %s__%s__emit(tx, %s__NOW, 0, saga, v, id_out);\n}\n\n", p, x, e->P);
    snprintf(name, sizeof name, "%s_emit_%s_after", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t delay_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    return %s__%s__emit(tx, %s__AFTER, delay_ms, saga, v, id_out);\n}\n\n", p, x,
        e->P);
    snprintf(name, sizeof name, "%s_emit_%s_at", p, x);
    snprintf(params, sizeof params, "choreo_tx *tx, int64_t at_ms, const char *saga, "
             "const %s_%s *v, char id_out[CHOREO_ID_SIZE]", p, x);
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    return %s__%s__emit(tx, %s__AT, at_ms, saga, v, id_out);\n}\n\n", p, x, e->P);
    snprintf(name, sizeof name, "%s__%s__on", p, x);
    emit_sig(e, "static choreo_result ", name, "choreo_tx *tx, const choreo_event *meta, void *user",
        "\n{\n");
    emit_out(e, "    const %s__binding *b = user;\n    %s_%s v;\n    char err[256];\n"
        "    choreo_result res;\n", p, p, x);
    emit_out(e, "    if (%s_%s_decode(&v, meta->data, meta->data_len, err, sizeof err) !=\n"
        "        CHOREO_OK) {\n"
        "        choreo_tx_set_reason(tx, err);\n        return CHOREO_REJECT;\n    }\n", p, x);
    emit_out(e, "    res = ((%s_%s_handler)b->fn)(tx, meta, &v, b->user);\n", p, x);
    emit_out(e, "    %s_%s_free(&v);\n    return res;\n}\n\n", p, x);
    snprintf(name, sizeof name, "%s_on_%s", p, x);
    snprintf(params, sizeof params, "choreo_service *svc, %s_%s_handler fn, void *user", p, x);
    emit_sig(e, "choreo_status ", name, params, "\n{\n");
    emit_out(e, "    %s__binding *b;\n    if (!svc || !fn)\n        return CHOREO_EINVAL;\n", p);
    emit_out(e, "    b = %s__bind((%s__fn)fn, user);\n    if (!b)\n        return CHOREO_ENOMEM;\n", p,
        p);
    emit_out(e, "    return choreo_service_on(svc, %s_%s_TYPE, %s__%s__on, b);\n}\n\n", e->P, U, p, x);
}

void emit_source(emitter *e, const char *source_name, const char *header_name)
{
    emit_out(e, "/* Generated by choreo-gen %s from %s. Do not edit: change the schema\n"
        " * and rebuild. */\n", CHOREO_GEN_VERSION, source_name);
    emit_out(e, "#include \"%s\"\n\n", header_name);
    emit_out(e, "#include <stdarg.h>\n");
    if (e->uses_events)
        emit_out(e, "#include <stdatomic.h>\n");
    emit_out(e, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
    if (e->s->ndecls == 0) {
        emit_tmpl(e, "/* The schema declares nothing: this struct keeps the unit non-empty. */\n"
                "struct @p_mem {\n    int unused;\n};\n");
        return;
    }
    emit_tmpl(e, rt_common);
    emit_tmpl(e, rt_common2);
    if (e->uses_fields)
        emit_tmpl(e, rt_fields);
    if (e->uses_required)
        emit_tmpl(e, rt_required);
    if (e->uses_alloc)
        emit_tmpl(e, rt_alloc);
    if (e->uses_nil)
        emit_tmpl(e, rt_nil);
    if (e->uses_string) {
        emit_tmpl(e, rt_utf8);
        emit_tmpl(e, rt_string);
    }
    if (e->uses_bytes)
        emit_tmpl(e, rt_bytes);
    if (e->uses_bool)
        emit_tmpl(e, rt_bool);
    if (e->uses_int)
        emit_tmpl(e, rt_int);
    if (e->uses_i32)
        emit_tmpl(e, rt_i32);
    if (e->uses_u64)
        emit_tmpl(e, rt_u64);
    if (e->uses_f64)
        emit_tmpl(e, rt_f64);
    if (e->uses_list)
        emit_tmpl(e, rt_list);
    if (e->uses_events)
        emit_tmpl(e, rt_events);
    emit_out(e, "\n");
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
        emit_out(e, "/* ---- %s %s ---- */\n\n", d->is_event ? "event" : "record", d->name);
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

