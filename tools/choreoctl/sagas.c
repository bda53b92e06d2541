/* The sagas command: the orchestrated saga instances of one service's
 * database (choreo_admin_sagas), newest first, as a table or JSON, with what
 * each waits for. A list is bounded (--limit); one more row than shown is
 * asked for, so that a cut list can say so. */
#include "sagas.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "help.h"
#include "text.h"

/* Instances listed by default, and at most. */
#define SAGAS_LIMIT 100
#define SAGAS_LIMIT_MAX 1000000
/* The largest JSON document: an entry is well under 1 KiB. */
#define JSON_MAX ((size_t)1 << 30)

struct sagas_args {
    bool help, json;
    const char *state;
    size_t limit;
};

/* A state or phase name as definitions take them: [A-Za-z0-9_-]{1,64}. */
static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

static int parse(int argc, char **argv, struct sagas_args *a)
{
    memset(a, 0, sizeof *a);
    a->limit = SAGAS_LIMIT;
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
        } else if (flags && (v = ctl_flag_value("--state", argc, argv, &i, &missing)) != NULL) {
            if (!name_valid(v)) {
                ctl_error("sagas: invalid --state \"%s\": give a state or phase name such as "
                          "COMPENSATING (1 to 64 of A-Z a-z 0-9 _ -)", v);
                return CTL_EXIT_USAGE;
            }
            a->state = v;
        } else if (flags && (v = ctl_flag_value("--limit", argc, argv, &i, &missing)) != NULL) {
            if (!ctl_parse_count(v, SAGAS_LIMIT_MAX, &a->limit)) {
                ctl_error("sagas: invalid --limit \"%s\": give a whole number from 1 to %d", v,
                          SAGAS_LIMIT_MAX);
                return CTL_EXIT_USAGE;
            }
        } else if (missing) {
            ctl_error("sagas: %s needs a value (see choreoctl sagas --help)", arg);
            return CTL_EXIT_USAGE;
        } else if (flags && arg[0] == '-') {
            ctl_error("sagas: unknown flag %s: see choreoctl sagas --help", arg);
            return CTL_EXIT_USAGE;
        } else {
            ctl_error("sagas: unexpected argument \"%s\": sagas lists the instances of one "
                      "database; choreoctl saga SAGA_ID shows one (see choreoctl sagas --help)",
                      arg);
            return CTL_EXIT_USAGE;
        }
    }
    return CTL_EXIT_OK;
}

/* ---- shared with choreoctl saga ------------------------------------------ */

static const struct {
    char letter;
    const char *meaning;
} letters[] = {
    { '-', "- not started" },
    { 'P', "P command sent" },
    { 'D', "D done" },
    { 'K', "K confirmed" },
    { 'F', "F failed" },
    { 'T', "T timed out" },
    { 'X', "X compensation sent" },
    { 'C', "C compensated" },
};

void ctl_sagas_legend(FILE *f, const char *seen)
{
    const char *sep = "";
    for (size_t i = 0; i < sizeof letters / sizeof letters[0]; i++) {
        if (!strchr(seen, letters[i].letter))
            continue;
        fprintf(f, "%s%s", sep, letters[i].meaning);
        sep = ", ";
    }
}

static void json_time(ctl_json *j, const char *key, int64_t ms)
{
    char t[32];
    ctl_json_key(j, key);
    if (ms > 0) {
        ctl_time_iso(ms, true, t);
        ctl_json_cstr(j, t);
    } else {
        ctl_json_null(j);
    }
}

static void json_text_or_null(ctl_json *j, const char *key, const char *s)
{
    ctl_json_key(j, key);
    if (*s)
        ctl_json_cstr(j, s);
    else
        ctl_json_null(j);
}

void ctl_sagas_entry_json(ctl_json *j, const choreo_saga_entry *e, bool count)
{
    ctl_json_kstr(j, "saga", e->saga);
    ctl_json_kstr(j, "definition", e->definition);
    ctl_json_kstr(j, "state", e->state);
    ctl_json_kstr(j, "phase", e->phase);
    json_text_or_null(j, "position", e->position);
    ctl_json_kstr(j, "steps", e->steps);
    json_text_or_null(j, "failed_step", e->failed_step);
    json_time(j, "started_at", e->started_ms);
    ctl_json_kint(j, "started_at_ms", e->started_ms);
    json_time(j, "updated_at", e->updated_ms);
    ctl_json_kint(j, "updated_at_ms", e->updated_ms);
    if (count)
        ctl_json_kint(j, "transitions", e->transitions);
}

/* ---- the list ----------------------------------------------------------- */

enum { C_SAGA, C_DEF, C_STATE, C_PHASE, C_STEPS, C_FAILED, C_STARTED, C_UPDATED, C_TRANS,
       C_WAITING, NCOLS };

static const char *const headers[NCOLS] = {
    "SAGA",  "DEFINITION",    "STATE",         "PHASE",       "STEPS",
    "FAILED STEP", "STARTED (UTC)", "UPDATED (UTC)", "TRANSITIONS", "WAITING FOR",
};

static bool fill_row(char **row, const choreo_saga_entry *e)
{
    char started[32], updated[32], trans[24];
    ctl_time_iso(e->started_ms, true, started);
    ctl_time_iso(e->updated_ms, true, updated);
    snprintf(trans, sizeof trans, "%" PRId64, e->transitions);
    const char *src[NCOLS] = { e->saga, e->definition, e->state,   e->phase, e->steps,
                               e->failed_step, started, updated, trans, e->position };
    for (int c = 0; c < NCOLS; c++) {
        const char *s = *src[c] ? src[c] : "-";
        if (!(row[c] = ctl_text_clean(s, strlen(s))))
            return false;
    }
    return true;
}

static int print_table(const choreo_saga_entry *list, size_t n)
{
    char **cells = calloc(n * NCOLS, sizeof *cells);
    if (!cells) {
        ctl_error("sagas: out of memory");
        return CTL_EXIT_FAIL;
    }
    int rc = CTL_EXIT_OK;
    size_t width[NCOLS];
    char seen[64] = ""; /* the step letters that occur, for the legend */
    for (int c = 0; c < NCOLS; c++)
        width[c] = ctl_text_width(headers[c]);
    for (size_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
        if (!fill_row(cells + i * NCOLS, &list[i])) {
            ctl_error("sagas: out of memory");
            rc = CTL_EXIT_FAIL;
            break;
        }
        for (int c = 0; c < C_WAITING; c++) {
            size_t w = ctl_text_width(cells[i * NCOLS + c]);
            width[c] = w > width[c] ? w : width[c];
        }
        for (const char *p = list[i].steps; *p; p++)
            if (!strchr(seen, *p) && strlen(seen) + 1 < sizeof seen)
                strncat(seen, p, 1);
    }
    if (rc == CTL_EXIT_OK) {
        for (size_t i = 0; i <= n; i++) {
            for (int c = 0; c < NCOLS; c++) {
                const char *s = i == 0 ? headers[c] : cells[(i - 1) * NCOLS + c];
                if (c == C_WAITING)
                    fputs(s, stdout);
                else if (c == C_TRANS) /* right-aligned, so the digits line up */
                    printf("%*s  ", (int)width[c], s);
                else
                    ctl_text_pad(stdout, s, width[c] + 2);
            }
            fputc('\n', stdout);
        }
        fputs("\nSTEPS, one letter per step in the definition's order: ", stdout);
        ctl_sagas_legend(stdout, seen);
        fputc('\n', stdout);
    }
    for (size_t i = 0; i < n * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

static int print_json(const choreo_saga_entry *list, size_t n)
{
    ctl_json j;
    ctl_json_init(&j, JSON_MAX, true, 0);
    ctl_json_array_begin(&j);
    for (size_t i = 0; i < n; i++) {
        ctl_json_object_begin(&j);
        ctl_sagas_entry_json(&j, &list[i], true);
        ctl_json_object_end(&j);
    }
    ctl_json_array_end(&j);
    int rc = ctl_json_print(&j, "sagas");
    ctl_json_free(&j);
    return rc;
}

static int list(choreo_admin *adm, const struct sagas_args *a, const char *db)
{
    choreo_saga_entry *entries = NULL;
    size_t n = 0;
    if (choreo_admin_sagas(adm, a->state, a->limit + 1, &entries, &n) != CHOREO_OK) {
        ctl_error("sagas: cannot list the instances of %s: %s", db, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    bool cut = n > a->limit;
    if (cut)
        n = a->limit;
    int rc = CTL_EXIT_OK;
    if (a->json)
        rc = print_json(entries, n);
    else if (n == 0 && a->state)
        printf("no orchestrated sagas in %s with state or phase %s\n", db, a->state);
    else if (n == 0)
        printf("no orchestrated sagas in %s\n", db);
    else
        rc = print_table(entries, n);
    if (rc == CTL_EXIT_OK && cut)
        ctl_error("sagas: %s holds more than %zu instances%s%s; only the newest are shown "
                  "(raise --limit)", db, a->limit, a->state ? " of state or phase " : "",
                  a->state ? a->state : "");
    free(entries);
    return rc;
}

int ctl_sagas_main(ctl_settings *s, int argc, char **argv)
{
    struct sagas_args a;
    int rc = parse(argc, argv, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        ctl_help_sagas(stdout);
        return CTL_EXIT_OK;
    }
    if (s->ndbs > 1) {
        ctl_error("sagas: %d --db given: sagas lists the instances of one database, pass one "
                  "--db FILE (the orchestrating service's)", s->ndbs);
        return CTL_EXIT_USAGE;
    }
    choreo_admin *adm = NULL;
    if ((rc = ctl_admin_open("sagas", s, false, &adm)) != CTL_EXIT_OK)
        return rc;
    /* Messages name the database without the password a URL may hold. */
    char shown[CTL_DB_SHOWN_MAX];
    choreo_db_display(choreo_config_get(s->cfg, "db"), shown, sizeof shown);
    rc = list(adm, &a, shown);
    choreo_admin_close(adm);
    return rc;
}
