/* The review subcommands: the steps a service holds for a person's decision
 * (choreo_tx_hold), listed from its database, and the decision itself,
 * recorded through choreo_admin_hold_decide with who decided and why. A
 * decision is a write of the database only: the service's relay publishes
 * it, now or at the service's next start, so review never needs NATS. */
#include "review.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "help.h"
#include "json.h"
#include "lockfile.h"
#include "text.h"

/* The largest JSON document: an entry is well under 2 KiB. */
#define JSON_MAX ((size_t)64 << 20)
/* Characters of a note shown in the table (review list --json has it whole). */
#define NOTE_WIDTH 40
/* Limits of choreo_admin_hold_decide. */
#define BY_MAX 64
#define NOTE_MAX 255

struct review_args {
    bool help, json;
    const char *state; /* held (the default), approved, rejected, expired; NULL: all */
    const char *note;  /* NULL: none */
    const char *by;
    int64_t id;
};

static const char *const STATES[] = { "held", "approved", "rejected", "expired" };

static int set_state(const char *v, struct review_args *a)
{
    if (strcmp(v, "all") == 0) {
        a->state = NULL;
        return CTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof STATES / sizeof STATES[0]; i++) {
        if (strcmp(v, STATES[i]) == 0) {
            a->state = STATES[i];
            return CTL_EXIT_OK;
        }
    }
    ctl_error("review list: unknown state \"%s\": use held, approved, rejected, expired or all",
              v);
    return CTL_EXIT_USAGE;
}

/* Who decides when --by is not given: the user running choreoctl. */
static const char *default_by(void)
{
    const char *user = getenv("USER");
    return user && *user && strlen(user) <= BY_MAX ? user : "operator";
}

/* Checks what a decision needs once every argument was read. */
static int check_decision(const char *cmd, const struct review_args *a)
{
    if (a->id == 0) {
        ctl_error("%s: missing ID: give the number from the ID column of choreoctl review "
                  "list", cmd);
        return CTL_EXIT_USAGE;
    }
    if (!*a->by || strlen(a->by) > BY_MAX) {
        ctl_error("%s: --by takes 1 to %d bytes naming who decides", cmd, BY_MAX);
        return CTL_EXIT_USAGE;
    }
    if (a->note && !*a->note) {
        ctl_error("%s: --note is empty: give the reason in 1 to %d bytes, or leave --note out",
                  cmd, NOTE_MAX);
        return CTL_EXIT_USAGE;
    }
    if (a->note && strlen(a->note) > NOTE_MAX) {
        ctl_error("%s: --note is %zu bytes; a note has at most %d", cmd, strlen(a->note),
                  NOTE_MAX);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* Parses the arguments after "review list" (deciding false) or "review
 * approve|reject" (deciding true); cmd names the command in errors. */
static int parse(const char *cmd, bool deciding, int argc, char **argv, struct review_args *a)
{
    memset(a, 0, sizeof *a);
    a->state = "held";
    a->by = default_by();
    bool flags = true;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v;
        bool missing = false;
        int rc = CTL_EXIT_OK;
        if (flags && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            a->help = true;
            return CTL_EXIT_OK;
        }
        /* "-12" is a wrong ID rather than an unknown flag. */
        bool flag = flags && arg[0] == '-' && arg[1] != '\0' && !(arg[1] >= '0' && arg[1] <= '9');
        if (flags && strcmp(arg, "--") == 0) {
            flags = false;
        } else if (flag && strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (flag && !deciding &&
                   (v = ctl_flag_value("--state", argc, argv, &i, &missing)) != NULL) {
            rc = set_state(v, a);
        } else if (flag && deciding &&
                   (v = ctl_flag_value("--note", argc, argv, &i, &missing)) != NULL) {
            a->note = v;
        } else if (flag && deciding &&
                   (v = ctl_flag_value("--by", argc, argv, &i, &missing)) != NULL) {
            a->by = v;
        } else if (missing) {
            ctl_error("%s: %s needs a value (see choreoctl %s --help)", cmd, arg, cmd);
            rc = CTL_EXIT_USAGE;
        } else if (flag) {
            ctl_error("%s: unknown flag %s: see choreoctl %s --help", cmd, arg, cmd);
            rc = CTL_EXIT_USAGE;
        } else if (!deciding || a->id > 0) {
            ctl_error("%s: unexpected argument \"%s\": see choreoctl %s --help", cmd, arg, cmd);
            rc = CTL_EXIT_USAGE;
        } else if (!ctl_parse_id(arg, &a->id)) {
            ctl_error("%s: invalid ID \"%s\": an ID is a positive whole number, as in the ID "
                      "column of choreoctl review list", cmd, arg);
            rc = CTL_EXIT_USAGE;
        }
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    return deciding ? check_decision(cmd, a) : CTL_EXIT_OK;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether a person can still decide e: it is held and its expiry has not
 * come (choreo_admin_hold_decide refuses from that millisecond on). */
static bool decidable(const choreo_hold_entry *e, int64_t now)
{
    return strcmp(e->state, "held") == 0 && (e->expires_ms <= 0 || now < e->expires_ms);
}

/* A cleaned copy of s for a terminal, "-" for an empty string. */
static char *cell(const char *s)
{
    return ctl_text_clean(*s ? s : "-", strlen(*s ? s : "-"));
}

static int oom(void)
{
    ctl_error("review: out of memory");
    return CTL_EXIT_FAIL;
}

/* ---- list --------------------------------------------------------------- */

enum { C_ID, C_HELD, C_SAGA, C_KIND, C_STATE, C_EXPIRES, C_DECIDED, C_BY, C_CARRIED, C_NOTE,
       C_REASON, NCOLS };

static const char *const headers[NCOLS] = {
    "ID", "HELD (UTC)", "SAGA", "KIND", "STATE", "EXPIRES (UTC)", "DECIDED (UTC)", "BY",
    "CARRIED ON", "NOTE", "REASON",
};

/* "yes" when the service ran its decision function, "not yet" while a
 * decision waits for it, "-" when there is none to run. */
static const char *carried(const choreo_hold_entry *e)
{
    if (strcmp(e->state, "approved") && strcmp(e->state, "rejected"))
        return "-";
    return e->applied ? "yes" : "not yet";
}

static bool fill_row(char **row, const choreo_hold_entry *e, int64_t now)
{
    char id[24], held[32], at[32], expires[48], decided[32];
    snprintf(id, sizeof id, "%" PRId64, e->id);
    ctl_time_iso(e->held_ms, false, held);
    ctl_time_iso(e->expires_ms, false, at);
    /* A hold past its expiry still reads "held", but is no longer decidable. */
    snprintf(expires, sizeof expires, "%s%s", e->expires_ms > 0 ? at : "never",
             strcmp(e->state, "held") == 0 && e->expires_ms > 0 && !decidable(e, now)
                 ? " (passed)" : "");
    ctl_time_iso(e->decided_ms, false, decided);
    const char *src[NCOLS] = { id,      held,          e->saga,    e->kind, e->state, expires,
                               decided, e->decided_by, carried(e), e->note, e->reason };
    for (int c = 0; c < NCOLS; c++)
        if (!(row[c] = cell(src[c])))
            return false;
    ctl_text_truncate(row[C_NOTE], NOTE_WIDTH);
    return true;
}

static void print_rows(char **cells, size_t n, const size_t *width)
{
    size_t used = 0;
    for (int c = 0; c < C_REASON; c++)
        used += width[c] + 2;
    size_t room = ctl_text_room(used);
    for (size_t i = 0; i <= n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            const char *s = i == 0 ? headers[c] : cells[(i - 1) * NCOLS + c];
            if (c == C_REASON) {
                if (i > 0)
                    ctl_text_truncate(cells[(i - 1) * NCOLS + c], room);
                fputs(s, stdout);
            } else {
                ctl_text_pad(stdout, s, width[c] + 2);
            }
        }
        fputc('\n', stdout);
    }
}

static int print_table(const choreo_hold_entry *list, size_t n)
{
    char **cells = calloc(n * NCOLS, sizeof *cells);
    if (!cells)
        return oom();
    int rc = CTL_EXIT_OK;
    int64_t now = now_ms();
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++)
        width[c] = ctl_text_width(headers[c]);
    for (size_t i = 0; i < n && rc == CTL_EXIT_OK; i++) {
        if (!fill_row(cells + i * NCOLS, &list[i], now)) {
            rc = oom();
            break;
        }
        for (int c = 0; c < C_REASON; c++) {
            size_t w = ctl_text_width(cells[i * NCOLS + c]);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    if (rc == CTL_EXIT_OK)
        print_rows(cells, n, width);
    for (size_t i = 0; i < n * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
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

/* The fields of a hold as members of the JSON object being written. */
static void entry_json(ctl_json *j, const choreo_hold_entry *e, int64_t now)
{
    ctl_json_kint(j, "id", e->id);
    ctl_json_kstr(j, "saga", e->saga);
    ctl_json_kstr(j, "kind", e->kind);
    ctl_json_kstr(j, "state", e->state);
    ctl_json_kbool(j, "decidable", decidable(e, now));
    ctl_json_kstr(j, "reason", e->reason);
    ctl_json_kstr(j, "service", e->service);
    ctl_json_kstr(j, "event_type", e->event_type);
    json_time(j, "held_at", e->held_ms);
    ctl_json_kint(j, "held_at_ms", e->held_ms);
    json_time(j, "expires_at", e->expires_ms);
    ctl_json_kint(j, "expires_at_ms", e->expires_ms);
    json_time(j, "decided_at", e->decided_ms);
    ctl_json_kint(j, "decided_at_ms", e->decided_ms);
    ctl_json_key(j, "decided_by");
    if (e->decided_by[0])
        ctl_json_cstr(j, e->decided_by);
    else
        ctl_json_null(j);
    ctl_json_kstr(j, "note", e->note);
    ctl_json_kbool(j, "applied", e->applied);
}


static int cmd_list(choreo_admin *adm, const struct review_args *a, const char *db)
{
    choreo_hold_entry *list = NULL;
    size_t n = 0;
    if (choreo_admin_holds(adm, a->state, &list, &n) != CHOREO_OK) {
        ctl_error("review list: cannot list the holds of %s: %s", db, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    int rc = CTL_EXIT_OK;
    if (a->json) {
        int64_t now = now_ms();
        ctl_json j;
        ctl_json_init(&j, JSON_MAX, true, 0);
        ctl_json_array_begin(&j);
        for (size_t i = 0; i < n; i++) {
            ctl_json_object_begin(&j);
            entry_json(&j, &list[i], now);
            ctl_json_object_end(&j);
        }
        ctl_json_array_end(&j);
        rc = ctl_json_print(&j, "review");
        ctl_json_free(&j);
    } else if (n == 0 && a->state && strcmp(a->state, "held") == 0) {
        printf("No steps wait for a decision in %s.\n", db);
    } else if (n == 0) {
        printf("No %s%sholds in %s.\n", a->state ? a->state : "", a->state ? " " : "", db);
    } else {
        rc = print_table(list, n);
    }
    free(list);
    return rc;
}

/* ---- approve, reject ---------------------------------------------------- */

/* One line on what happened and what comes next, or the hold as JSON. */
static int print_decision(const struct review_args *a, const choreo_hold_entry *e,
                          bool changed, const char *db)
{
    /* Instances share a PostgreSQL database, which has no lock file: whether
     * one runs is not known here. */
    bool shared = choreo_db_is_postgres(db);
    ctl_lock lock = { .running = false };
    if (!shared)
        ctl_lock_read(db, &lock);
    if (a->json) {
        ctl_json j;
        ctl_json_init(&j, JSON_MAX, true, 0);
        ctl_json_object_begin(&j);
        entry_json(&j, e, now_ms());
        ctl_json_kbool(&j, "changed", changed);
        ctl_json_key(&j, "service_running");
        if (shared)
            ctl_json_null(&j);
        else
            ctl_json_bool(&j, lock.running);
        ctl_json_object_end(&j);
        int rc = ctl_json_print(&j, "review");
        ctl_json_free(&j);
        return rc;
    }
    char *by = cell(e->decided_by), *service = cell(e->service);
    if (!by || !service) {
        free(by);
        free(service);
        return oom();
    }
    if (!changed) {
        char at[32];
        ctl_time_iso(e->decided_ms, true, at);
        printf("hold %" PRId64 " was already %s by %s at %s; nothing changed\n", e->id,
               e->state, by, at);
    } else if (shared) {
        printf("hold %" PRId64 " %s by %s; an instance of the %s service carries the step on "
               "when its relay publishes the decision\n", e->id, e->state, by, service);
    } else if (lock.running) {
        printf("hold %" PRId64 " %s by %s; the %s service carries the step on when its relay "
               "publishes the decision\n", e->id, e->state, by, service);
    } else {
        printf("hold %" PRId64 " %s by %s; the %s service is not running: it carries the step "
               "on at its next start\n", e->id, e->state, by, service);
    }
    free(by);
    free(service);
    return CTL_EXIT_OK;
}

static int decide(choreo_admin *adm, const struct review_args *a, const char *db, bool approve)
{
    const char *cmd = approve ? "review approve" : "review reject";
    choreo_hold_entry e;
    choreo_status st = choreo_admin_hold_decide(adm, a->id, approve, a->note, a->by, &e);
    if (st == CHOREO_ENOTFOUND) {
        ctl_error("%s: no hold with ID %" PRId64 " in %s: see choreoctl review list --state "
                  "all for the IDs there are", cmd, a->id, db);
        return CTL_EXIT_FAIL;
    }
    /* The same decision given twice counts once: that is not a failure. */
    if (st != CHOREO_OK && st != CHOREO_EDUPLICATE) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    return print_decision(a, &e, st == CHOREO_OK, db);
}

static int cmd_approve(choreo_admin *adm, const struct review_args *a, const char *db)
{
    return decide(adm, a, db, true);
}

static int cmd_reject(choreo_admin *adm, const struct review_args *a, const char *db)
{
    return decide(adm, a, db, false);
}

struct subcommand {
    const char *name; /* "review list" */
    bool deciding;
    void (*help)(FILE *f);
    int (*run)(choreo_admin *adm, const struct review_args *a, const char *db);
};

static const struct subcommand subcommands[] = {
    { "review list", false, ctl_help_review_list, cmd_list },
    { "review approve", true, ctl_help_review_decide, cmd_approve },
    { "review reject", true, ctl_help_review_decide, cmd_reject },
};

int ctl_review_main(ctl_settings *s, int argc, char **argv)
{
    int rc = ctl_subcommand_intro("review", "list, approve or reject", argc, argv,
                                  ctl_help_review);
    if (rc >= 0)
        return rc;
    const struct subcommand *sub = NULL;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(argv[0], subcommands[i].name + strlen("review ")) == 0)
            sub = &subcommands[i];
    if (!sub) {
        if (argv[0][0] == '-')
            ctl_error("review: unknown flag %s: flags follow the subcommand, as in choreoctl "
                      "review list --json (see choreoctl review --help)", argv[0]);
        else
            ctl_error("review: unknown subcommand \"%s\": use list, approve or reject (see "
                      "choreoctl review --help)", argv[0]);
        return CTL_EXIT_USAGE;
    }
    struct review_args a;
    rc = parse(sub->name, sub->deciding, argc - 1, argv + 1, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        sub->help(stdout);
        return CTL_EXIT_OK;
    }
    if (s->ndbs > 1) {
        ctl_error("%s: %d --db given: review works on one service's database, pass one "
                  "--db FILE", sub->name, s->ndbs);
        return CTL_EXIT_USAGE;
    }
    choreo_admin *adm = NULL;
    if ((rc = ctl_admin_open(sub->name, s, sub->deciding, &adm)) != CTL_EXIT_OK)
        return rc;
    /* Messages name the database without the password a URL may hold. */
    char shown[CTL_DB_SHOWN_MAX];
    choreo_db_display(choreo_config_get(s->cfg, "db"), shown, sizeof shown);
    rc = sub->run(adm, &a, shown);
    choreo_admin_close(adm);
    return rc;
}
