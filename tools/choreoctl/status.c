/* The status command: for each service database (--db, several of them, or
 * every choreo *.db of --dir), whether its process runs, the outbox's
 * backlog and what the relay makes of it, the service's consumers on the
 * stream, its parked messages and the steps it holds for a person's
 * decision; one block of text per service, or one JSON object. Databases
 * (SQLite files or PostgreSQL URLs) are read through read-only handles and
 * the lock file without locking it, so status never stands in a running
 * service's way. A PostgreSQL database has no lock file: the instances of
 * its service share it. */
#include "status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumers.h"
#include "help.h"
#include "json.h"
#include "lockfile.h"
#include "text.h"

/* A due outbox row older than this, while the service runs, means the relay
 * is behind: it publishes a row within milliseconds of its commit. */
#define BEHIND_MS 5000
/* The size of a reason, and the largest JSON document. */
#define WHY_MAX 512
#define JSON_MAX ((size_t)64 << 20)

struct status_args {
    bool help, json;
    const char *dirs[CTL_DIR_MAX];
    int ndirs;
};

/* What status found about one database. Each part says whether it could be
 * read; times are unix milliseconds, 0 for none. */
struct svc {
    const char *db;           /* as given: a path, or a URL that may hold a password */
    char *shown;              /* db as printed (owned) */
    bool shared;              /* PostgreSQL: instances share it, there is no lock file */
    char service[128];
    ctl_lock lock;            /* what its lock file says */
    bool db_ok;
    char db_error[WHY_MAX];
    choreo_db_status d;       /* the database, read in one read transaction */
    /* The consumers, from the database's record and NATS. */
    bool consumers_ok;
    bool consumers_asked;     /* false: no service name to ask NATS about */
    bool nats_shared;         /* consumers_error is an earlier database's NATS failure */
    choreo_consumer_entry *consumers;
    size_t nconsumers;
    char consumers_error[WHY_MAX];
};

/* ---- arguments ---------------------------------------------------------- */

static int parse(int argc, char **argv, struct status_args *a)
{
    memset(a, 0, sizeof *a);
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
            if (ctl_dir_add("status", v, a->dirs, &a->ndirs) != CTL_EXIT_OK)
                return CTL_EXIT_USAGE;
        } else if (missing) {
            ctl_error("status: --dir needs a value (see choreoctl status --help)");
            return CTL_EXIT_USAGE;
        } else if (flags && arg[0] == '-') {
            ctl_error("status: unknown flag %s: see choreoctl status --help", arg);
            return CTL_EXIT_USAGE;
        } else {
            ctl_error("status: unexpected argument \"%s\": status takes the databases as "
                      "--db FILE or --dir DIR (see choreoctl status --help)", arg);
            return CTL_EXIT_USAGE;
        }
    }
    return CTL_EXIT_OK;
}

/* ---- the database ------------------------------------------------------- */

/* Reads the database's parts (choreo_admin_status) through a read-only
 * handle: nothing is written or migrated, and a running service's writes
 * go on meanwhile. */
static void read_db(const ctl_settings *s, struct svc *v)
{
    choreo_admin *adm = NULL;
    choreo_status st = ctl_open_readonly(s, v->db, &adm);
    if (st != CHOREO_OK) {
        snprintf(v->db_error, sizeof v->db_error, "%s", choreo_last_error());
        return;
    }
    st = choreo_admin_status(adm, &v->d);
    if (st != CHOREO_OK)
        snprintf(v->db_error, sizeof v->db_error, "cannot read database %s: %s", v->shown,
                 choreo_last_error());
    choreo_admin_close(adm);
    v->db_ok = st == CHOREO_OK;
}

/* The running service's name, else the one that recorded its handlers,
 * else the file's name without ".db". */
static void name_service(struct svc *v)
{
    if (v->lock.service[0]) {
        snprintf(v->service, sizeof v->service, "%s", v->lock.service);
        return;
    }
    if (v->d.service[0]) {
        snprintf(v->service, sizeof v->service, "%s", v->d.service);
        return;
    }
    const char *base = strrchr(v->shown, '/');
    base = base ? base + 1 : v->shown;
    size_t len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".db") == 0)
        len -= 3;
    snprintf(v->service, sizeof v->service, "%.*s", (int)len, base);
}

/* ---- the consumers ------------------------------------------------------ */

/* A failure to reach NATS that the next database would meet again with the
 * same settings: it is reused rather than waited for once more. */
struct nats_memo {
    bool failed;
    char why[WHY_MAX];
};

static bool unreachable(choreo_status st)
{
    return st == CHOREO_ENOSERVER || st == CHOREO_EAUTH || st == CHOREO_ETLS;
}

/* Lists the consumers through choreo_admin_consumers, which sets the
 * handlers the database records against the consumers on the stream, on a
 * read-only handle: a database of an older choreo stays as it is. */
static void read_consumers(ctl_settings *s, struct svc *v, struct nats_memo *memo)
{
    const char *name = v->d.service[0] ? v->d.service : v->lock.service;
    if (!v->db_ok) {
        snprintf(v->consumers_error, sizeof v->consumers_error,
                 "the database cannot be read");
        return;
    }
    if (!v->d.records_handlers) {
        snprintf(v->consumers_error, sizeof v->consumers_error,
                 "the database does not record the service's handlers yet (a choreo older "
                 "than this choreoctl last opened it): start the service once");
        return;
    }
    if (!name[0]) {
        v->consumers_ok = true; /* no handler recorded, no service named: none to ask for */
        return;
    }
    v->consumers_asked = true;
    if (memo->failed) {
        snprintf(v->consumers_error, sizeof v->consumers_error, "%s", memo->why);
        v->nats_shared = true;
        return;
    }
    choreo_admin *adm = NULL;
    choreo_status st = choreo_config_set(s->cfg, "db", v->db);
    if (st == CHOREO_OK)
        st = choreo_admin_open_readonly(&adm, s->cfg);
    if (st == CHOREO_OK)
        st = choreo_admin_consumers(adm, name, &v->consumers, &v->nconsumers);
    choreo_admin_close(adm);
    if (st != CHOREO_OK) {
        snprintf(v->consumers_error, sizeof v->consumers_error, "%s", choreo_last_error());
        if (unreachable(st)) {
            memo->failed = true;
            snprintf(memo->why, sizeof memo->why, "%s", v->consumers_error);
        }
        return;
    }
    v->consumers_ok = true;
}

/* ---- the relay ---------------------------------------------------------- */

/* Milliseconds as "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
static void format_age(int64_t ms, char out[32])
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, 32, "%" PRId64 " ms", ms);
    else if (ms < 60000)
        snprintf(out, 32, "%" PRId64 ".%" PRId64 " s", ms / 1000, ms % 1000 / 100);
    else if (ms < 3600000)
        snprintf(out, 32, "%" PRId64 " min %" PRId64 " s", ms / 60000, ms % 60000 / 1000);
    else if (ms < 86400000)
        snprintf(out, 32, "%" PRId64 " h %" PRId64 " min", ms / 3600000, ms % 3600000 / 60000);
    else
        snprintf(out, 32, "%" PRId64 " d %" PRId64 " h", ms / 86400000, ms % 86400000 / 3600000);
}

static const char *plural(int64_t n)
{
    return n == 1 ? "" : "s";
}

/* The relay's state in one word, and why, into detail. */
static const char *relay_state(const struct svc *v, char *detail, size_t cap)
{
    char age[32], at[32];
    if (!v->db_ok) {
        snprintf(detail, cap, "the database cannot be read");
        return "unknown";
    }
    int64_t waiting = v->d.pending + v->d.delayed;
    if (!v->shared && !v->lock.running && waiting > 0) {
        snprintf(detail, cap, "the service is not running; %" PRId64 " row%s wait%s for its "
                 "next start", waiting, plural(waiting), waiting == 1 ? "s" : "");
        return "stopped";
    }
    if (v->d.pending == 0) {
        ctl_time_iso(v->d.next_delayed_ms, true, at);
        if (v->d.delayed > 0)
            snprintf(detail, cap, "nothing due; the next of %" PRId64 " delayed row%s falls "
                     "due at %s", v->d.delayed, plural(v->d.delayed), at);
        else
            snprintf(detail, cap, "nothing to publish");
        return "idle";
    }
    int64_t waited = v->d.now_ms - v->d.oldest_due_ms;
    format_age(waited, age);
    if (waited < BEHIND_MS) {
        snprintf(detail, cap, "%" PRId64 " row%s going out, the oldest due %s ago", v->d.pending,
                 plural(v->d.pending), age);
        return "publishing";
    }
    if (v->shared)
        snprintf(detail, cap, "the oldest due row has waited %s: no instance of the service "
                 "runs, or its relay cannot reach NATS, or the server does not confirm the "
                 "publish; see the instances' logs", age);
    else
        snprintf(detail, cap, "the oldest due row has waited %s: the relay cannot reach NATS, "
                 "or the server does not confirm the publish; see the service's log", age);
    return "behind";
}

/* ---- text --------------------------------------------------------------- */

#define LABEL "%-12s"
#define INDENT "            "

static void put_clean(const char *s)
{
    char *c = ctl_text_clean(*s ? s : "-", strlen(*s ? s : "-"));
    fputs(c ? c : "?", stdout);
    free(c);
}

static void print_process(const struct svc *v)
{
    printf(LABEL, "process");
    if (v->shared) {
        fputs("instances share this database (PostgreSQL), which has no lock file; see each "
              "instance's metrics\n", stdout);
    } else if (v->lock.running) {
        printf("running (pid %ld, started ", v->lock.pid);
        put_clean(v->lock.started);
        fputs(")\n", stdout);
    } else if (v->lock.pid > 0) {
        printf("stopped (pid %ld, which started ", v->lock.pid);
        put_clean(v->lock.started);
        fputs(", is gone without a clean stop)\n", stdout);
    } else {
        fputs("stopped\n", stdout);
    }
}

static void print_outbox(const struct svc *v)
{
    char age[32], at[32];
    printf(LABEL, "outbox");
    if (!v->db_ok) {
        fputs("cannot be read: ", stdout);
        put_clean(v->db_error);
        fputc('\n', stdout);
        return;
    }
    printf("%" PRId64 " pending (due now)", v->d.pending);
    if (v->d.pending > 0) {
        format_age(v->d.now_ms - v->d.oldest_due_ms, age);
        printf(", the oldest due %s ago", age);
    }
    printf("; %" PRId64 " delayed", v->d.delayed);
    if (v->d.delayed > 0) {
        ctl_time_iso(v->d.next_delayed_ms, true, at);
        printf(", the next due at %s", at);
    }
    fputc('\n', stdout);
    ctl_time_iso(v->d.last_published_ms, true, at);
    printf(INDENT "last published %s\n", v->d.last_published_ms > 0 ? at : "never (or pruned)");
}

static void print_consumer_rows(const struct svc *v)
{
    size_t wname = strlen("CONSUMER"), wtype = strlen("TYPE");
    for (size_t i = 0; i < v->nconsumers; i++) {
        size_t a = strlen(v->consumers[i].name), b = strlen(v->consumers[i].type);
        wname = a > wname ? a : wname;
        wtype = b > wtype ? b : wtype;
    }
    printf("%-*s  %-*s  %-10s  %8s  %11s  %11s  %9s  %s\n", (int)wname, "CONSUMER", (int)wtype,
           "TYPE", "STATE", "PENDING", "ACK PENDING", "REDELIVERED", "DELIVERED", "READ NOW");
    for (size_t i = 0; i < v->nconsumers; i++) {
        const choreo_consumer_entry *e = &v->consumers[i];
        printf(INDENT "%-*s  %-*s  %-10s  ", (int)wname, e->name, (int)wtype, e->type,
               ctl_consumer_state(e));
        if (e->on_server)
            printf("%8" PRIu64 "  %11" PRIu64 "  %11" PRIu64 "  %9" PRIu64 "  %s\n", e->pending,
                   e->ack_pending, e->redelivered, e->delivered, e->waiting > 0 ? "yes" : "no");
        else
            printf("%8s  %11s  %11s  %9s  %s\n", "-", "-", "-", "-", "-");
    }
    ctl_consumer_notes(v->consumers, v->nconsumers, INDENT);
}

static void print_consumers(const struct svc *v)
{
    printf(LABEL, "consumers");
    if (!v->consumers_ok) {
        fputs("not listed: ", stdout);
        put_clean(v->consumers_error);
        fputc('\n', stdout);
    } else if (!v->consumers_asked) {
        fputs("none: the service has recorded no handlers\n", stdout);
    } else if (v->nconsumers == 0) {
        fputs("none on the stream, none registered\n", stdout);
    } else {
        print_consumer_rows(v);
    }
}

static void print_parked(const struct svc *v)
{
    printf(LABEL, "parked");
    if (!v->db_ok) {
        fputs("cannot be read\n", stdout);
        return;
    }
    if (v->d.parked == 0) {
        fputs("none\n", stdout);
        return;
    }
    printf("%" PRId64 " message%s\n", v->d.parked, plural(v->d.parked));
    size_t wc = 0, wt = 0;
    for (size_t i = 0; i < v->d.nparked_by; i++) {
        const choreo_parked_group *g = &v->d.parked_by[i];
        size_t a = ctl_text_width(g->consumer), b = ctl_text_width(g->event_type);
        wc = a > wc ? a : wc;
        wt = b > wt ? b : wt;
    }
    for (size_t i = 0; i < v->d.nparked_by; i++) {
        const choreo_parked_group *g = &v->d.parked_by[i];
        char *c = ctl_text_clean(g->consumer, strlen(g->consumer));
        char *t = ctl_text_clean(g->event_type, strlen(g->event_type));
        fputs(INDENT, stdout);
        ctl_text_pad(stdout, c ? c : "?", wc + 2);
        ctl_text_pad(stdout, t && *t ? t : "-", wt + 2);
        printf("%" PRId64 "\n", g->count);
        free(c);
        free(t);
    }
    if (v->d.parked_by_cut)
        printf(INDENT "and more: choreoctl dead list shows them all\n");
}

static void print_last_error(const struct svc *v)
{
    char at[32];
    printf(LABEL, "last error");
    if (!v->db_ok) {
        fputs("cannot be read\n", stdout);
        return;
    }
    if (!v->d.has_last) {
        fputs("none\n", stdout);
        return;
    }
    ctl_time_iso(v->d.last.parked_at_ms, true, at);
    printf("%s, dead id %" PRId64 ", ", at, v->d.last.id);
    put_clean(v->d.last.consumer);
    fputs(" (", stdout);
    put_clean(v->d.last.event_type);
    fputs("): ", stdout);
    put_clean(v->d.last.reason);
    fputc('\n', stdout);
}

static void print_held(const struct svc *v)
{
    printf(LABEL, "held");
    if (!v->db_ok) {
        fputs("cannot be read\n", stdout);
        return;
    }
    if (v->d.held == 0) {
        fputs("none\n", stdout);
        return;
    }
    printf("%" PRId64 " step%s wait%s for a decision:", v->d.held, plural(v->d.held),
           v->d.held == 1 ? "s" : "");
    for (size_t i = 0; i < v->d.nheld_by; i++) {
        fputs(i ? ", " : " ", stdout);
        put_clean(v->d.held_by[i].kind);
        printf(" %" PRId64, v->d.held_by[i].count);
    }
    if (v->d.held_by_cut)
        fputs(" and more", stdout);
    if (v->d.held_expired > 0)
        printf("; %" PRId64 " of them past %s expiry, no longer decidable", v->d.held_expired,
               v->d.held_expired == 1 ? "its" : "their");
    fputs(" (choreoctl review list)\n", stdout);
}

static void print_text(const struct svc *svcs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct svc *v = &svcs[i];
        char detail[WHY_MAX];
        if (i > 0)
            fputc('\n', stdout);
        printf(LABEL, "service");
        put_clean(v->service);
        printf("\n" LABEL, "database");
        put_clean(v->shown);
        fputc('\n', stdout);
        print_process(v);
        print_outbox(v);
        const char *state = relay_state(v, detail, sizeof detail);
        printf(LABEL "%s: %s\n", "relay", state, detail);
        print_consumers(v);
        print_parked(v);
        print_last_error(v);
        print_held(v);
    }
}

/* ---- JSON --------------------------------------------------------------- */

static void json_time(ctl_json *j, const char *key, int64_t ms)
{
    char at[32];
    ctl_json_key(j, key);
    if (ms <= 0) {
        ctl_json_null(j);
        return;
    }
    ctl_time_iso(ms, true, at);
    ctl_json_cstr(j, at);
}

static void json_outbox(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "outbox");
    if (!v->db_ok) {
        ctl_json_null(j);
        return;
    }
    ctl_json_object_begin(j);
    ctl_json_kint(j, "pending", v->d.pending);
    ctl_json_kint(j, "delayed", v->d.delayed);
    ctl_json_key(j, "oldest_pending_age_ms");
    if (v->d.pending > 0)
        ctl_json_int(j, v->d.now_ms - v->d.oldest_due_ms);
    else
        ctl_json_null(j);
    json_time(j, "next_delayed_at", v->d.delayed > 0 ? v->d.next_delayed_ms : 0);
    json_time(j, "last_published_at", v->d.last_published_ms);
    ctl_json_object_end(j);
}

static void json_consumers(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "consumers");
    if (!v->consumers_ok) {
        ctl_json_null(j);
        return;
    }
    ctl_json_array_begin(j);
    for (size_t i = 0; i < v->nconsumers; i++) {
        const choreo_consumer_entry *e = &v->consumers[i];
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "name", e->name);
        ctl_json_kstr(j, "type", e->type);
        ctl_json_kstr(j, "state", ctl_consumer_state(e));
        ctl_json_kbool(j, "registered", e->registered);
        ctl_json_kbool(j, "on_server", e->on_server);
        const char *keys[] = { "pending", "ack_pending", "redelivered", "delivered" };
        const uint64_t vals[] = { e->pending, e->ack_pending, e->redelivered, e->delivered };
        for (size_t k = 0; k < 4; k++) {
            ctl_json_key(j, keys[k]);
            if (e->on_server)
                ctl_json_uint(j, vals[k]);
            else
                ctl_json_null(j);
        }
        ctl_json_key(j, "pull_requests_waiting");
        if (e->on_server)
            ctl_json_int(j, e->waiting);
        else
            ctl_json_null(j);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
}

static void json_parked(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "parked");
    if (!v->db_ok) {
        ctl_json_null(j);
        return;
    }
    ctl_json_object_begin(j);
    ctl_json_kint(j, "total", v->d.parked);
    ctl_json_kbool(j, "truncated", v->d.parked_by_cut);
    ctl_json_key(j, "by_consumer");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < v->d.nparked_by; i++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "consumer", v->d.parked_by[i].consumer);
        ctl_json_kstr(j, "type", v->d.parked_by[i].event_type);
        ctl_json_kint(j, "count", v->d.parked_by[i].count);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static void json_last_error(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "last_error");
    if (!v->db_ok || !v->d.has_last) {
        ctl_json_null(j);
        return;
    }
    const choreo_dead_entry *e = &v->d.last;
    ctl_json_object_begin(j);
    ctl_json_kint(j, "id", e->id);
    ctl_json_kstr(j, "consumer", e->consumer);
    ctl_json_kstr(j, "type", e->event_type);
    ctl_json_kstr(j, "event_id", e->event_id);
    ctl_json_kstr(j, "reason", e->reason);
    ctl_json_kint(j, "attempts", e->attempts);
    json_time(j, "parked_at", e->parked_at_ms);
    ctl_json_kint(j, "parked_at_ms", e->parked_at_ms);
    ctl_json_object_end(j);
}

static void json_holds(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "holds");
    if (!v->db_ok) {
        ctl_json_null(j);
        return;
    }
    ctl_json_object_begin(j);
    ctl_json_kint(j, "total", v->d.held);
    ctl_json_kint(j, "past_expiry", v->d.held_expired);
    ctl_json_kbool(j, "truncated", v->d.held_by_cut);
    ctl_json_key(j, "by_kind");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < v->d.nheld_by; i++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "kind", v->d.held_by[i].kind);
        ctl_json_kint(j, "count", v->d.held_by[i].count);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static void json_service(ctl_json *j, const struct svc *v)
{
    char detail[WHY_MAX];
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "service", v->service);
    ctl_json_kstr(j, "db", v->shown);
    /* Whether a PostgreSQL database's instances run is not known here. */
    ctl_json_key(j, "running");
    if (v->shared)
        ctl_json_null(j);
    else
        ctl_json_bool(j, v->lock.running);
    ctl_json_key(j, "pid");
    if (v->lock.pid > 0)
        ctl_json_int(j, v->lock.pid);
    else
        ctl_json_null(j);
    ctl_json_key(j, "started_at");
    if (v->lock.pid > 0 && v->lock.started[0])
        ctl_json_cstr(j, v->lock.started);
    else
        ctl_json_null(j);
    json_outbox(j, v);
    const char *state = relay_state(v, detail, sizeof detail);
    ctl_json_key(j, "relay");
    ctl_json_object_begin(j);
    ctl_json_kstr(j, "state", state);
    ctl_json_kstr(j, "detail", detail);
    ctl_json_object_end(j);
    json_consumers(j, v);
    json_parked(j, v);
    json_last_error(j, v);
    json_holds(j, v);
    ctl_json_key(j, "errors");
    ctl_json_array_begin(j);
    if (!v->db_ok)
        ctl_json_cstr(j, v->db_error);
    if (!v->consumers_ok)
        ctl_json_cstr(j, v->consumers_error);
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static int print_json(const struct svc *svcs, size_t n)
{
    ctl_json j;
    ctl_json_init(&j, JSON_MAX, true, 0);
    ctl_json_object_begin(&j);
    ctl_json_key(&j, "services");
    ctl_json_array_begin(&j);
    for (size_t i = 0; i < n; i++)
        json_service(&j, &svcs[i]);
    ctl_json_array_end(&j);
    ctl_json_object_end(&j);
    int rc = ctl_json_print(&j, "status");
    ctl_json_free(&j);
    return rc;
}

/* ---- the command -------------------------------------------------------- */

/* Says on stderr what could not be read of v: each failure once, so not
 * the consumers of a database that cannot be read, nor a NATS failure
 * already said for an earlier database. Returns whether all was read. */
static bool report(const struct svc *v)
{
    if (!v->db_ok)
        ctl_error("status: %s", v->db_error);
    else if (!v->consumers_ok && !v->nats_shared)
        ctl_error("status: cannot list the consumers of %s (%s): %s", v->service, v->shown,
                  v->consumers_error);
    return v->db_ok && v->consumers_ok;
}

static int run(ctl_settings *s, const struct status_args *a, const ctl_db_list *dbs)
{
    struct svc *svcs = calloc(dbs->n, sizeof *svcs);
    if (!svcs) {
        ctl_error("status: out of memory");
        return CTL_EXIT_FAIL;
    }
    struct nats_memo memo = { .failed = false };
    bool complete = true;
    int rc = CTL_EXIT_OK;
    for (size_t i = 0; i < dbs->n && rc == CTL_EXIT_OK; i++) {
        struct svc *v = &svcs[i];
        v->db = dbs->path[i];
        v->shared = choreo_db_is_postgres(v->db);
        if ((v->shown = ctl_db_shown(v->db)) == NULL) {
            ctl_error("status: out of memory");
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (!v->shared)
            ctl_lock_read(v->db, &v->lock);
        if (dbs->why[i]) /* not a choreo database: reported in its place */
            snprintf(v->db_error, sizeof v->db_error, "%s", dbs->why[i]);
        else
            read_db(s, v);
        name_service(v);
        read_consumers(s, v, &memo);
        if (!report(v))
            complete = false;
    }
    if (rc == CTL_EXIT_OK && a->json)
        rc = print_json(svcs, dbs->n);
    else if (rc == CTL_EXIT_OK)
        print_text(svcs, dbs->n);
    for (size_t i = 0; i < dbs->n; i++) {
        free(svcs[i].consumers);
        free(svcs[i].shown);
    }
    free(svcs);
    return rc == CTL_EXIT_OK && !complete ? CTL_EXIT_FAIL : rc;
}

/* A --db that is not a choreo database is reported in its place, so that
 * the others are still shown; when there are no others, its error is all
 * there is to say in text. (JSON still prints the object, with each
 * database's error in it: a script reading stdout needs its input.)
 * Returns CTL_EXIT_OK when one database can be read, or prints why none
 * can and returns CTL_EXIT_FAIL. */
static int check_readable(const ctl_db_list *dbs)
{
    for (size_t i = 0; i < dbs->n; i++)
        if (!dbs->why[i])
            return CTL_EXIT_OK;
    for (size_t i = 0; i < dbs->n; i++)
        ctl_error("%s", dbs->why[i]);
    return CTL_EXIT_FAIL;
}

int ctl_status_main(ctl_settings *s, int argc, char **argv)
{
    struct status_args a;
    int rc = parse(argc, argv, &a);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a.help) {
        ctl_help_status(stdout);
        return CTL_EXIT_OK;
    }
    if ((rc = ctl_settings_check_nats(s)) != CTL_EXIT_OK)
        return rc;
    if (s->ndbs == 0 && a.ndirs == 0) {
        ctl_error("status: no database given: pass --db FILE (repeatable) or --dir DIR, or set "
                  "CHOREO_DB");
        return CTL_EXIT_USAGE;
    }
    ctl_db_list dbs;
    rc = ctl_db_list_collect("status", s, a.dirs, a.ndirs, true, &dbs);
    if (rc == CTL_EXIT_OK && !a.json)
        rc = check_readable(&dbs);
    if (rc == CTL_EXIT_OK)
        rc = run(s, &a, &dbs);
    ctl_db_list_free(&dbs);
    return rc;
}
