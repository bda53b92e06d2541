/* The saga command: reads one saga's events from the stream and what the
 * given services' databases (--db, or every *.db of --dir) recorded about
 * them, then prints one aligned line per event and, for an orchestrated
 * saga, where its instance stands; or one JSON object; and may draw the
 * timeline as an SVG sequence diagram (svg.c). */
#include "saga.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "help.h"
#include "json.h"
#include "mpjson.h"
#include "natsconn.h"
#include "sagas.h"
#include "svg.h"
#include "text.h"
#include "timeline.h"

/* The largest JSON document. */
#define JSON_MAX ((size_t)512 << 20)
/* An event stored this long after its emit time was emitted with a delay
 * (choreo_tx_emit_after): the text says when it went out. */
#define DELAYED_MS 1000

struct saga_args {
    bool help, json;
    const char *saga;
    const char *svg;
    const char *dirs[CTL_DIR_MAX];
    int ndirs;
    size_t limit;
};

static int parse(int argc, char **argv, struct saga_args *a)
{
    memset(a, 0, sizeof *a);
    a->limit = CTL_TIMELINE_LIMIT;
    bool flags = true;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v;
        bool missing = false;
        if (flags && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            a->help = true;
            return CTL_EXIT_OK;
        }
        if (flags && strcmp(arg, "--") == 0) {
            flags = false;
        } else if (flags && strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (flags && (v = ctl_flag_value("--dir", argc, argv, &i, &missing)) != NULL) {
            if (ctl_dir_add("saga", v, a->dirs, &a->ndirs) != CTL_EXIT_OK)
                return CTL_EXIT_USAGE;
        } else if (flags && (v = ctl_flag_value("--svg", argc, argv, &i, &missing)) != NULL) {
            if (!*v) {
                ctl_error("saga: --svg needs a file name (see choreoctl saga --help)");
                return CTL_EXIT_USAGE;
            }
            a->svg = v;
        } else if (flags && (v = ctl_flag_value("--limit", argc, argv, &i, &missing)) != NULL) {
            if (!ctl_parse_count(v, CTL_TIMELINE_LIMIT_MAX, &a->limit)) {
                ctl_error("saga: invalid --limit \"%s\": give a whole number from 1 to %d", v,
                          CTL_TIMELINE_LIMIT_MAX);
                return CTL_EXIT_USAGE;
            }
        } else if (missing) {
            ctl_error("saga: %s needs a value (see choreoctl saga --help)", arg);
            return CTL_EXIT_USAGE;
        } else if (flags && arg[0] == '-') {
            ctl_error("saga: unknown flag %s: see choreoctl saga --help", arg);
            return CTL_EXIT_USAGE;
        } else if (!a->saga) {
            a->saga = arg;
        } else {
            ctl_error("saga: unexpected argument \"%s\": give one saga id (see choreoctl saga "
                      "--help)", arg);
            return CTL_EXIT_USAGE;
        }
    }
    if (!a->saga) {
        ctl_error("saga: missing saga id: choreoctl saga SAGA_ID (see choreoctl saga --help)");
        return CTL_EXIT_USAGE;
    }
    if (!ctl_saga_id_valid(a->saga)) {
        ctl_error("saga: invalid saga id \"%s\": a saga id is 1 to %d of A-Z a-z 0-9 _ -",
                  a->saga, CHOREO_SAGA_MAX);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* ---- text --------------------------------------------------------------- */

static char *clean(const char *s)
{
    return ctl_text_clean(*s ? s : "-", strlen(*s ? s : "-"));
}

static void put_clean(FILE *f, const char *s)
{
    char *c = clean(s);
    fputs(c ? c : "?", f);
    free(c);
}

/* Whether application a of event i wrote a mark of m's step with the op
 * other than m's. A compensation whose application also took the action's
 * row found the action never ran (choreo_tx_barrier takes that row so
 * that a late action is skipped): a null compensation. */
static bool with_other_op(const ctl_timeline *t, size_t i, size_t a, const ctl_mark *m)
{
    size_t cursor = 0;
    for (const ctl_mark *o; (o = ctl_timeline_next_mark(t, i, a, &cursor)) != NULL;)
        if (strcmp(o->op, m->op) != 0 && strcmp(o->step, m->step) == 0)
            return true;
    return false;
}

/* What the databases say about event i, for the last column. */
static void write_outcome(FILE *f, const ctl_timeline *t, size_t i)
{
    const ctl_tl_event *e = &t->ev[i];
    const char *sep = "";
    if (!e->decoded) {
        fputs("not a choreo envelope: ", f);
        put_clean(f, e->why);
        sep = "; ";
    }
    if (e->retry_for[0]) {
        fprintf(f, "%sretry for ", sep);
        put_clean(f, e->retry_for);
        sep = "; ";
    }
    if (e->decoded && e->stored_ms - e->ts_ms >= DELAYED_MS) {
        fprintf(f, "%sstored %+" PRId64 " ms (delayed)", sep, e->stored_ms - t->t0);
        sep = "; ";
    }
    for (size_t a = 0; a < e->napplied; a++) {
        fputs(sep, f);
        put_clean(f, e->applied[a].consumer);
        fprintf(f, " %+" PRId64 " ms", e->applied[a].at_ms - t->t0);
        size_t cursor = 0;
        for (const ctl_mark *m; (m = ctl_timeline_next_mark(t, i, a, &cursor)) != NULL;) {
            bool paired = with_other_op(t, i, a, m);
            if (paired && strcmp(m->op, "action") == 0)
                continue; /* said with its compensation */
            fputs(" [barrier ", f);
            put_clean(f, m->step);
            fputc(' ', f);
            put_clean(f, m->op);
            if (paired)
                fputs(": the action never ran, so nothing to undo and a late action is skipped",
                      f);
            fputc(']', f);
        }
        sep = ", ";
    }
    for (size_t p = 0; p < e->nparked; p++) {
        const ctl_park *pk = &e->parked[p];
        fprintf(f, "%sPARKED by ", *sep ? "; " : "");
        put_clean(f, pk->consumer);
        fprintf(f, " %+" PRId64 " ms (dead id %" PRId64 ", %s after %" PRId64 " deliveries): ",
                pk->at_ms - t->t0, pk->id, pk->status, pk->attempts);
        put_clean(f, pk->reason);
        sep = "; ";
    }
    if (!*sep && t->ndbs > 0)
        fputs("not applied in these databases", f);
}

enum { C_OFFSET, C_TYPE, C_SRC, C_ID, C_CAUSE, C_KIND, C_OUTCOME, NCOLS };

static const char *const headers[NCOLS] = { "OFFSET", "TYPE", "SRC", "EVENT ID", "CAUSE", "KIND",
                                            "APPLIED BY (offset) / PARKED BY" };

static char *outcome_cell(const ctl_timeline *t, size_t i)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    write_outcome(f, t, i);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool fill_row(const ctl_timeline *t, size_t i, char **row)
{
    const ctl_tl_event *e = &t->ev[i];
    char offset[32];
    snprintf(offset, sizeof offset, "%+" PRId64 " ms", e->ts_ms - t->t0);
    const char *src[C_OUTCOME] = { offset, e->type, e->src, e->id, e->has_cause ? e->cause : "",
                                   ctl_kind_name(ctl_timeline_kind(t, i)) };
    for (int c = 0; c < C_OUTCOME; c++)
        if (!(row[c] = clean(src[c])))
            return false;
    if (!(row[C_OUTCOME] = outcome_cell(t, i)))
        return false;
    return true;
}

static void print_marks(const ctl_timeline *t)
{
    size_t wsvc = 0, wstep = 0;
    for (size_t k = 0; k < t->nmarks; k++) {
        size_t a = ctl_text_width(t->marks[k].db->service), b = ctl_text_width(t->marks[k].step);
        wsvc = a > wsvc ? a : wsvc;
        wstep = b > wstep ? b : wstep;
    }
    printf("\nbarrier marks of the saga (choreo_barrier):\n");
    for (size_t k = 0; k < t->nmarks; k++) {
        const ctl_mark *m = &t->marks[k];
        char *svc = clean(m->db->service), *step = clean(m->step);
        printf("  %+8" PRId64 " ms  ", m->at_ms - t->t0);
        ctl_text_pad(stdout, svc ? svc : "?", wsvc + 2);
        ctl_text_pad(stdout, step ? step : "?", wstep + 2);
        free(svc);
        free(step);
        ctl_text_pad(stdout, m->op, 14);
        if (m->event >= 0) {
            const ctl_tl_event *e = &t->ev[m->event];
            fputs("written while applying ", stdout);
            put_clean(stdout, e->type);
            fputc(' ', stdout);
            put_clean(stdout, e->id);
            fputs(" (", stdout);
            put_clean(stdout, e->applied[m->apply].consumer);
            fputc(')', stdout);
        } else {
            fputs("(not matched to one application)", stdout);
        }
        fputc('\n', stdout);
    }
}

/* One transition as the cells offset, FROM -> TO, the event and the note. */
enum { T_OFFSET, T_CHANGE, T_EVENT, T_NOTE, TCOLS };

static bool fill_transition(const ctl_timeline *t, const choreo_saga_transition *tr, char **row)
{
    char offset[32], change[160], event[128];
    snprintf(offset, sizeof offset, "%+" PRId64 " ms", tr->at_ms - t->t0);
    snprintf(change, sizeof change, "%s%s-> %s", tr->from, tr->from[0] ? " " : "", tr->to);
    snprintf(event, sizeof event, "%s%s%s", tr->event_type, tr->event_type[0] ? " " : "",
             tr->event_id);
    const char *src[TCOLS] = { offset, change, event, tr->note };
    for (int c = 0; c < TCOLS; c++)
        if (!(row[c] = ctl_text_clean(src[c], strlen(src[c]))))
            return false;
    return true;
}

static bool print_transitions(const ctl_timeline *t)
{
    const ctl_orch *o = &t->orch;
    char **cells = calloc(o->ntrans * TCOLS + 1, sizeof *cells);
    bool ok = cells != NULL;
    size_t width[TCOLS] = { 0 };
    for (size_t i = 0; ok && i < o->ntrans; i++) {
        ok = fill_transition(t, &o->trans[i], cells + i * TCOLS);
        for (int c = 0; ok && c < T_NOTE; c++) {
            size_t w = ctl_text_width(cells[i * TCOLS + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    if (ok) {
        printf("transitions:\n");
        for (size_t i = 0; i < o->ntrans; i++) {
            char **row = cells + i * TCOLS;
            printf("  %*s  ", (int)width[T_OFFSET], row[T_OFFSET]);
            ctl_text_pad(stdout, row[T_CHANGE], width[T_CHANGE] + 2);
            ctl_text_pad(stdout, row[T_EVENT], width[T_EVENT] + 2);
            printf("%s\n", row[T_NOTE]);
        }
    }
    for (size_t i = 0; cells && i < o->ntrans * TCOLS; i++)
        free(cells[i]);
    free(cells);
    return ok;
}

/* Where the orchestrated instance stands, its steps and its transitions. */
static bool print_orchestration(const ctl_timeline *t)
{
    const ctl_orch *o = &t->orch;
    const choreo_saga_entry *e = &o->entry;
    bool ended = strcmp(e->phase, "COMPLETED") == 0 || strcmp(e->phase, "FAILED") == 0;
    fputs("\norchestrated by ", stdout);
    put_clean(stdout, o->db->service);
    fputs(" (definition ", stdout);
    put_clean(stdout, e->definition);
    fputs(", ", stdout);
    put_clean(stdout, o->db->shown);
    fputs("): state ", stdout);
    put_clean(stdout, e->state);
    fputs(", phase ", stdout);
    put_clean(stdout, e->phase);
    if (e->failed_step[0]) {
        fputs(", failed step ", stdout);
        put_clean(stdout, e->failed_step);
    }
    if (ended) {
        printf(", ended %+" PRId64 " ms", e->updated_ms - t->t0);
    } else if (e->position[0]) {
        fputs(", waiting for ", stdout);
        put_clean(stdout, e->position);
    }
    fputs("\nsteps  ", stdout);
    put_clean(stdout, e->steps);
    fputs("  (one letter per step in the definition's order: ", stdout);
    ctl_sagas_legend(stdout, e->steps);
    fputs(")\n", stdout);
    return print_transitions(t);
}

static void print_header(const ctl_timeline *t)
{
    char at[32];
    ctl_time_iso(t->t0, true, at);
    int64_t last = t->n ? t->ev[t->n - 1].ts_ms - t->t0 : 0;
    char count[64];
    if (t->truncated)
        snprintf(count, sizeof count, "the first %zu of %" PRIu64 " events", t->n, t->in_stream);
    else
        snprintf(count, sizeof count, "%zu event%s", t->n, t->n == 1 ? "" : "s");
    printf("saga %s: %s in stream %s (subjects %s), first at %s, last %+" PRId64 " ms\n",
           t->saga, count, t->stream, t->filter, at, last);
    if (t->ndbs == 0) {
        printf("no databases given: pass --dir DIR or --db FILE to see which consumers applied "
               "each event\n");
    } else {
        printf("databases:");
        for (size_t d = 0; d < t->ndbs; d++) {
            printf("%s ", d ? "," : "");
            put_clean(stdout, t->dbs[d].service);
            fputs(" (", stdout);
            put_clean(stdout, t->dbs[d].shown);
            fputc(')', stdout);
        }
        fputc('\n', stdout);
    }
    fputc('\n', stdout);
}

static int print_text(const ctl_timeline *t)
{
    char **cells = calloc(t->n * NCOLS, sizeof *cells);
    if (!cells) {
        ctl_error("saga: out of memory");
        return CTL_EXIT_FAIL;
    }
    int rc = CTL_EXIT_OK;
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = ctl_text_width(headers[c]);
    for (size_t i = 0; i < t->n && rc == CTL_EXIT_OK; i++) {
        if (!fill_row(t, i, cells + i * NCOLS)) {
            ctl_error("saga: out of memory");
            rc = CTL_EXIT_FAIL;
            break;
        }
        for (int c = 0; c < C_OUTCOME; c++) {
            size_t w = ctl_text_width(cells[i * NCOLS + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    if (rc == CTL_EXIT_OK) {
        print_header(t);
        for (size_t i = 0; i <= t->n; i++) {
            for (int c = 0; c < NCOLS; c++) {
                const char *s = i == 0 ? headers[c] : cells[(i - 1) * NCOLS + c];
                if (c == C_OUTCOME)
                    fputs(s, stdout);
                else if (c == C_OFFSET) /* right-aligned, so the digits line up */
                    printf("%*s  ", (int)width[c], s);
                else
                    ctl_text_pad(stdout, s, width[c] + 2);
            }
            fputc('\n', stdout);
        }
        if (t->nmarks > 0)
            print_marks(t);
        if (t->orch.db && !print_orchestration(t)) {
            ctl_error("saga: out of memory");
            rc = CTL_EXIT_FAIL;
        }
    }
    for (size_t i = 0; i < t->n * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

/* ---- JSON --------------------------------------------------------------- */

static void json_offset(ctl_json *j, const ctl_timeline *t, const char *key, int64_t at_ms)
{
    char iso[32];
    ctl_json_key(j, key);
    ctl_json_int(j, at_ms - t->t0);
    ctl_json_key(j, "at");
    ctl_time_iso(at_ms, true, iso);
    ctl_json_cstr(j, iso);
}

static void json_applied(ctl_json *j, const ctl_timeline *t, size_t i)
{
    const ctl_tl_event *e = &t->ev[i];
    ctl_json_key(j, "applied");
    ctl_json_array_begin(j);
    for (size_t a = 0; a < e->napplied; a++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "consumer", e->applied[a].consumer);
        ctl_json_kstr(j, "service", e->applied[a].db->service);
        ctl_json_kstr(j, "db", e->applied[a].db->shown);
        json_offset(j, t, "offset_ms", e->applied[a].at_ms);
        ctl_json_key(j, "barrier");
        ctl_json_array_begin(j);
        size_t cursor = 0;
        for (const ctl_mark *m; (m = ctl_timeline_next_mark(t, i, a, &cursor)) != NULL;) {
            ctl_json_object_begin(j);
            ctl_json_kstr(j, "step", m->step);
            ctl_json_kstr(j, "op", m->op);
            ctl_json_object_end(j);
        }
        ctl_json_array_end(j);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

static void json_parked(ctl_json *j, const ctl_timeline *t, const ctl_tl_event *e)
{
    ctl_json_key(j, "parked");
    ctl_json_array_begin(j);
    for (size_t p = 0; p < e->nparked; p++) {
        const ctl_park *pk = &e->parked[p];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "consumer", pk->consumer);
        ctl_json_kstr(j, "service", pk->db->service);
        ctl_json_kstr(j, "db", pk->db->shown);
        ctl_json_kint(j, "dead_id", pk->id);
        ctl_json_kstr(j, "reason", pk->reason);
        ctl_json_kstr(j, "status", pk->status);
        ctl_json_kint(j, "attempts", pk->attempts);
        json_offset(j, t, "offset_ms", pk->at_ms);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

static void json_optional(ctl_json *j, const char *key, const char *value, bool present)
{
    ctl_json_key(j, key);
    if (present)
        ctl_json_cstr(j, value);
    else
        ctl_json_null(j);
}

/* The event's data as one line of JSON, or null when it was not kept. */
static void json_data(ctl_json *j, const ctl_tl_event *e)
{
    ctl_json_key(j, "data");
    if (!e->data) {
        ctl_json_null(j);
        return;
    }
    ctl_json d;
    char why[256] = "";
    ctl_json_init(&d, JSON_MAX, false, 0);
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, e->data, e->data_len);
    if (ctl_mp_json(&r, &d, CTL_DATA_DEPTH, why, sizeof why) && !d.failed)
        ctl_json_raw(j, d.buf, d.len);
    else
        ctl_json_null(j);
    ctl_json_free(&d);
}

static void json_event(ctl_json *j, const ctl_timeline *t, size_t i)
{
    const ctl_tl_event *e = &t->ev[i];
    ctl_json_object_begin(j);
    ctl_json_kuint(j, "seq", e->seq);
    json_offset(j, t, "offset_ms", e->ts_ms);
    ctl_json_kint(j, "ts", e->ts_ms);
    ctl_json_kint(j, "stored_offset_ms", e->stored_ms - t->t0);
    ctl_json_kstr(j, "type", e->type);
    json_optional(j, "id", e->id, e->decoded);
    json_optional(j, "src", e->src, e->decoded);
    json_optional(j, "cause", e->cause, e->has_cause);
    ctl_json_kuint(j, "v", e->version);
    ctl_json_kstr(j, "subject", e->subject);
    ctl_json_kstr(j, "kind", ctl_kind_name(ctl_timeline_kind(t, i)));
    json_optional(j, "retry_for", e->retry_for, e->retry_for[0] != '\0');
    json_optional(j, "envelope_error", e->why, !e->decoded);
    json_data(j, e);
    json_applied(j, t, i);
    json_parked(j, t, e);
    ctl_json_object_end(j);
}

static void json_marks(ctl_json *j, const ctl_timeline *t)
{
    ctl_json_key(j, "barrier");
    ctl_json_array_begin(j);
    for (size_t k = 0; k < t->nmarks; k++) {
        const ctl_mark *m = &t->marks[k];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "service", m->db->service);
        ctl_json_kstr(j, "db", m->db->shown);
        ctl_json_kstr(j, "step", m->step);
        ctl_json_kstr(j, "op", m->op);
        json_offset(j, t, "offset_ms", m->at_ms);
        bool known = m->event >= 0;
        json_optional(j, "event_id", known ? t->ev[m->event].id : "", known);
        json_optional(j, "consumer", known ? t->ev[m->event].applied[m->apply].consumer : "",
                      known);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

static void json_orchestration(ctl_json *j, const ctl_timeline *t)
{
    const ctl_orch *o = &t->orch;
    ctl_json_key(j, "orchestration");
    if (!o->db) {
        ctl_json_null(j);
        return;
    }
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "service", o->db->service);
    ctl_json_kstr(j, "db", o->db->shown);
    ctl_sagas_entry_json(j, &o->entry, false);
    ctl_json_key(j, "transitions");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < o->ntrans; i++) {
        const choreo_saga_transition *tr = &o->trans[i];
        ctl_json_object_begin(j);
        json_offset(j, t, "offset_ms", tr->at_ms);
        json_optional(j, "event_id", tr->event_id, tr->event_id[0] != '\0');
        json_optional(j, "event_type", tr->event_type, tr->event_type[0] != '\0');
        json_optional(j, "from", tr->from, tr->from[0] != '\0');
        ctl_json_kstr(j, "to", tr->to);
        ctl_json_kstr(j, "note", tr->note);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static int print_json(const ctl_timeline *t)
{
    ctl_json j;
    ctl_json_init(&j, JSON_MAX, true, 0);
    ctl_json_object_begin(&j);
    ctl_json_kstr(&j, "saga", t->saga);
    ctl_json_kstr(&j, "stream", t->stream);
    ctl_json_kstr(&j, "subjects", t->filter);
    ctl_json_kuint(&j, "events_in_stream", t->in_stream);
    ctl_json_kbool(&j, "truncated", t->truncated);
    ctl_json_kbool(&j, "data_omitted", t->data_dropped);
    char first[32];
    ctl_time_iso(t->t0, true, first);
    ctl_json_kint(&j, "first_ts", t->t0);
    ctl_json_kstr(&j, "first_at", first);
    ctl_json_key(&j, "databases");
    ctl_json_array_begin(&j);
    for (size_t d = 0; d < t->ndbs; d++) {
        ctl_json_object_begin(&j);
        ctl_json_kstr(&j, "path", t->dbs[d].shown);
        ctl_json_kstr(&j, "service", t->dbs[d].service);
        ctl_json_object_end(&j);
    }
    ctl_json_array_end(&j);
    ctl_json_key(&j, "events");
    ctl_json_array_begin(&j);
    for (size_t i = 0; i < t->n; i++)
        json_event(&j, t, i);
    ctl_json_array_end(&j);
    json_marks(&j, t);
    json_orchestration(&j, t);
    ctl_json_object_end(&j);
    int rc = ctl_json_print(&j, "saga");
    ctl_json_free(&j);
    return rc;
}

/* ---- the command -------------------------------------------------------- */

/* Whether the file at path begins with the header of every SQLite
 * database; false when it cannot be read (then it cannot be written
 * either, which ctl_svg_write reports). */
static bool sqlite_file(const char *path)
{
    static const char header[16] = "SQLite format 3"; /* and its NUL */
    char head[sizeof header];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, head, sizeof head);
    close(fd);
    return got == (ssize_t)sizeof head && memcmp(head, header, sizeof header) == 0;
}

/* Refuses an --svg file that is a database, before anything is read or
 * printed: writing the diagram would destroy it. One of the databases
 * read is refused under any name; any other SQLite file as well (a
 * service's database that was not named, a mistyped path). */
static int check_svg_path(const char *path, const ctl_db_list *dbs)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return CTL_EXIT_OK; /* a new file, or one ctl_svg_write says it cannot write */
    if (ctl_db_list_has(dbs, path)) {
        ctl_error("saga: --svg %s is one of the databases saga reads; writing the diagram "
                  "would destroy it: give --svg a new file name, such as saga.svg", path);
        return CTL_EXIT_FAIL;
    }
    if (S_ISREG(st.st_mode) && sqlite_file(path)) {
        ctl_error("saga: --svg %s is a SQLite database; writing the diagram would destroy it: "
                  "give --svg a new file name, such as saga.svg", path);
        return CTL_EXIT_FAIL;
    }
    /* A database's companions hold part of it: its write-ahead log (the
     * last commits, not yet in the database file), the log's index, and
     * choreo's lock record of the service running on it. */
    static const char *const companions[] = { "-wal", "-shm", "-journal", ".lock" };
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof companions / sizeof companions[0]; i++) {
        size_t n = strlen(companions[i]);
        if (len <= n || strcmp(path + len - n, companions[i]) != 0)
            continue;
        char db[4096];
        snprintf(db, sizeof db, "%.*s", (int)(len - n), path);
        if (sqlite_file(db) || ctl_db_list_has(dbs, db)) {
            ctl_error("saga: --svg %s belongs to the database %s (its %s file); writing the "
                      "diagram would destroy part of it: give --svg a new file name, such as "
                      "saga.svg", path, db, companions[i]);
            return CTL_EXIT_FAIL;
        }
    }
    return CTL_EXIT_OK;
}

static int run(ctl_settings *s, const struct saga_args *a, const ctl_db_list *dbs)
{
    const char *stream = choreo_config_get(s->cfg, "stream");
    ctl_timeline t;
    ctl_timeline_init(&t, a->saga, stream, choreo_config_get(s->cfg, "prefix"), a->limit);
    ctl_nats n;
    int rc = ctl_nats_open(&n, s, "saga", false);
    if (rc != CTL_EXIT_OK)
        return rc;
    rc = ctl_nats_check_stream(&n, stream, NULL);
    if (rc == CTL_EXIT_OK)
        rc = ctl_timeline_read_stream(&t, &n);
    ctl_nats_close(&n);
    if (rc == CTL_EXIT_OK && t.n == 0) {
        ctl_error("saga: no events of saga %s in stream %s (subjects %s): check the saga id, and "
                  "--stream and --prefix if the services use others", t.saga, t.stream,
                  t.filter);
        rc = CTL_EXIT_FAIL;
    }
    for (size_t d = 0; d < dbs->n && rc == CTL_EXIT_OK; d++)
        rc = ctl_timeline_read_db(&t, s, dbs->path[d]);
    if (rc == CTL_EXIT_OK) {
        ctl_timeline_finish(&t);
        if (t.truncated)
            fprintf(stderr, "choreoctl: saga: the stream holds %" PRIu64 " events of saga %s; "
                    "only the first %zu are shown (raise --limit)\n", t.in_stream, t.saga,
                    t.n);
        if (t.data_dropped)
            fprintf(stderr, "choreoctl: saga: the events' data are too large to keep them all; "
                    "later events are shown without their data\n");
        for (size_t d = 0; d < t.ndbs; d++)
            if (t.dbs[d].orchestrates && &t.dbs[d] != t.orch.db)
                fprintf(stderr, "choreoctl: saga: %s also holds an orchestrated instance of saga "
                        "%s; only the one in %s is shown\n", t.dbs[d].shown, t.saga,
                        t.orch.db ? t.orch.db->shown : "-");
        rc = a->json ? print_json(&t) : print_text(&t);
        if (rc == CTL_EXIT_OK && a->svg)
            rc = ctl_svg_write(&t, a->svg);
    }
    ctl_timeline_free(&t);
    return rc;
}

int ctl_saga_main(ctl_settings *s, int argc, char **argv)
{
    struct saga_args a;
    int rc = parse(argc, argv, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        ctl_help_saga(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = ctl_settings_check_nats(s)) != CTL_EXIT_OK)
        return rc;
    ctl_db_list dbs;
    rc = ctl_db_list_collect("saga", s, a.dirs, a.ndirs, false, &dbs);
    if (rc == CTL_EXIT_OK && a.svg)
        rc = check_svg_path(a.svg, &dbs);
    if (rc == CTL_EXIT_OK)
        rc = run(s, &a, &dbs);
    ctl_db_list_free(&dbs);
    return rc;
}
