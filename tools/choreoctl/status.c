/* The status command: for each service database (--db, several of them, or
 * every choreo *.db of --dir), whether its process runs, the outbox's
 * backlog and what the relay makes of it, the service's consumers on the
 * stream, its parked messages and the steps it holds for a person's
 * decision; one block of text per service, or one JSON object. Databases
 * are read read-only and the lock file without locking it, so status never
 * stands in a running service's way. */
#include "status.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "help.h"
#include "json.h"
#include "lockfile.h"
#include "text.h"

/* A due outbox row older than this, while the service runs, means the relay
 * is behind: it publishes a row within milliseconds of its commit. */
#define BEHIND_MS 5000
/* Most (consumer, type) groups of parked messages, and most kinds of held
 * steps, listed per service, the size of a reason, and the largest JSON
 * document. */
#define GROUPS_MAX 64
#define WHY_MAX 512
#define JSON_MAX ((size_t)64 << 20)

struct status_args {
    bool help, json;
    const char *dirs[CTL_DIR_MAX];
    int ndirs;
};

/* Parked messages of one consumer and event type. */
struct group {
    char consumer[128];
    char type[CHOREO_TYPE_MAX + 1];
    int64_t count;
};

/* Held steps of one kind waiting for a decision. */
struct kind {
    char kind[65];
    int64_t count;
};

/* What status found about one database. Each part says whether it could be
 * read; times are unix milliseconds, 0 for none. */
struct svc {
    const char *db;
    char service[128];
    ctl_lock lock;            /* what its lock file says */
    /* The database, read in one read transaction at now_ms. */
    bool db_ok;
    char db_error[WHY_MAX];
    int64_t now_ms;
    int64_t pending;          /* unpublished rows due by now_ms */
    int64_t oldest_due_ms;    /* when the oldest of them fell due */
    int64_t delayed;          /* unpublished rows due later */
    int64_t next_delayed_ms;  /* when the first of them falls due */
    int64_t last_published_ms;
    int64_t parked;
    struct group groups[GROUPS_MAX];
    size_t ngroups;
    bool more_groups;         /* groups beyond GROUPS_MAX, counted in parked only */
    bool has_last;
    choreo_dead_entry last;   /* the most recently parked message still parked */
    bool handlers_table;      /* the database records the registered handlers */
    char recorded[128];       /* the service that recorded them; "" when none */
    bool holds_table;         /* false: a database from before held steps, so none */
    int64_t held;             /* holds waiting for a decision */
    int64_t held_expired;     /* of those, past their expiry time: no longer decidable */
    struct kind kinds[GROUPS_MAX];
    size_t nkinds;
    bool more_kinds;          /* kinds beyond GROUPS_MAX, counted in held only */
    /* The consumers, from the database's record and NATS. */
    bool consumers_ok;
    bool consumers_asked;     /* false: no service name to ask NATS about */
    bool nats_shared;         /* consumers_error is an earlier database's NATS failure */
    choreo_consumer_entry *consumers;
    size_t nconsumers;
    char consumers_error[WHY_MAX];
};

/* ---- arguments ---------------------------------------------------------- */

/* The value of --dir VALUE or --dir=VALUE at argv[*i]; NULL when arg is
 * another flag. Reports a missing value. */
static const char *dir_value(int argc, char **argv, int *i, bool *missing)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--dir", 5) != 0)
        return NULL;
    if (arg[5] == '=')
        return arg + 6;
    if (arg[5] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

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
        } else if (flags && (v = dir_value(argc, argv, &i, &missing)) != NULL) {
            if (a->ndirs == CTL_DIR_MAX) {
                ctl_error("status: more than %d --dir flags", CTL_DIR_MAX);
                return CTL_EXIT_USAGE;
            }
            a->dirs[a->ndirs++] = v;
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

typedef void (*row_fn)(sqlite3_stmt *q, struct svc *v);

/* Runs sql, with ?1 bound to v->now_ms when it has a parameter, and hands
 * each row to fn. Says what failed in v->db_error. */
static bool each_row(sqlite3 *h, struct svc *v, const char *what, const char *sql, row_fn fn)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (sqlite3_bind_parameter_count(q) > 0)
            sqlite3_bind_int64(q, 1, v->now_ms);
        while ((rc = sqlite3_step(q)) == SQLITE_ROW)
            fn(q, v);
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE)
        return true;
    snprintf(v->db_error, sizeof v->db_error, "cannot read %s from %s: %s; check that it is "
             "the service's SQLite file", what, v->db, sqlite3_errmsg(h));
    return false;
}

static void text_col(sqlite3_stmt *q, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void row_due(sqlite3_stmt *q, struct svc *v)
{
    v->pending = sqlite3_column_int64(q, 0);
    v->oldest_due_ms = sqlite3_column_int64(q, 1); /* NULL, read as 0, when none */
}

static void row_delayed(sqlite3_stmt *q, struct svc *v)
{
    v->delayed = sqlite3_column_int64(q, 0);
    v->next_delayed_ms = sqlite3_column_int64(q, 1);
}

static void row_published(sqlite3_stmt *q, struct svc *v)
{
    v->last_published_ms = sqlite3_column_int64(q, 0);
}

static void row_group(sqlite3_stmt *q, struct svc *v)
{
    int64_t count = sqlite3_column_int64(q, 2);
    v->parked += count;
    if (v->ngroups == GROUPS_MAX) {
        v->more_groups = true;
        return;
    }
    struct group *g = &v->groups[v->ngroups++];
    text_col(q, 0, g->consumer, sizeof g->consumer);
    text_col(q, 1, g->type, sizeof g->type);
    g->count = count;
}

static void row_last(sqlite3_stmt *q, struct svc *v)
{
    choreo_dead_entry *e = &v->last;
    v->has_last = true;
    e->id = sqlite3_column_int64(q, 0);
    text_col(q, 1, e->consumer, sizeof e->consumer);
    text_col(q, 2, e->event_id, sizeof e->event_id);
    text_col(q, 3, e->event_type, sizeof e->event_type);
    text_col(q, 4, e->reason, sizeof e->reason);
    e->attempts = sqlite3_column_int64(q, 5);
    e->parked_at_ms = sqlite3_column_int64(q, 6);
    snprintf(e->status, sizeof e->status, "parked");
}

static void row_handlers_table(sqlite3_stmt *q, struct svc *v)
{
    v->handlers_table = true;
}

static void row_recorded(sqlite3_stmt *q, struct svc *v)
{
    text_col(q, 0, v->recorded, sizeof v->recorded);
}

static void row_holds_table(sqlite3_stmt *q, struct svc *v)
{
    v->holds_table = true;
}

static void row_kind(sqlite3_stmt *q, struct svc *v)
{
    int64_t count = sqlite3_column_int64(q, 1);
    v->held += count;
    v->held_expired += sqlite3_column_int64(q, 2);
    if (v->nkinds == GROUPS_MAX) {
        v->more_kinds = true;
        return;
    }
    struct kind *k = &v->kinds[v->nkinds++];
    text_col(q, 0, k->kind, sizeof k->kind);
    k->count = count;
}

/* The queries, in the order they run. The outbox ones use its partial
 * index of unpublished rows (choreo_outbox_due) and of published ones. */
static const struct query {
    const char *what;
    const char *sql;
    row_fn fn;
} queries[] = {
    { "the outbox", "SELECT COUNT(*), MIN(publish_at) FROM choreo_outbox"
                    " WHERE published_at IS NULL AND publish_at <= ?1", row_due },
    { "the outbox", "SELECT COUNT(*), MIN(publish_at) FROM choreo_outbox"
                    " WHERE published_at IS NULL AND publish_at > ?1", row_delayed },
    { "the outbox", "SELECT MAX(published_at) FROM choreo_outbox"
                    " WHERE published_at IS NOT NULL", row_published },
    { "the parked messages", "SELECT consumer, COALESCE(event_type, ''), COUNT(*)"
                             " FROM choreo_dead WHERE status = 'parked'"
                             " GROUP BY 1, 2 ORDER BY 1, 2", row_group },
    { "the parked messages", "SELECT id, consumer, COALESCE(event_id, ''),"
                             " COALESCE(event_type, ''), reason, attempts, parked_at"
                             " FROM choreo_dead WHERE status = 'parked'"
                             " ORDER BY id DESC LIMIT 1", row_last },
    { "the schema", "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                    " AND name = 'choreo_consumers'", row_handlers_table },
    { "the schema", "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                    " AND name = 'choreo_holds'", row_holds_table },
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the database's parts in one read transaction, so that its counts
 * agree with each other. The connection is read-only: nothing is written,
 * and a running service's writes go on meanwhile (WAL). */
static void read_db(struct svc *v, int busy_ms)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(v->db, &h, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        snprintf(v->db_error, sizeof v->db_error, "cannot open database %s: %s", v->db,
                 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return;
    }
    sqlite3_busy_timeout(h, busy_ms);
    v->now_ms = now_ms();
    bool ok = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        snprintf(v->db_error, sizeof v->db_error, "cannot read database %s: %s", v->db,
                 sqlite3_errmsg(h));
    for (size_t i = 0; ok && i < sizeof queries / sizeof queries[0]; i++)
        ok = each_row(h, v, queries[i].what, queries[i].sql, queries[i].fn);
    if (ok && v->handlers_table)
        ok = each_row(h, v, "the registered handlers", "SELECT service FROM choreo_consumers"
                      " ORDER BY registered_at DESC LIMIT 1", row_recorded);
    /* Past its expiry a hold still reads "held", but a decision is refused
     * from that millisecond on (choreo_admin_hold_decide). */
    if (ok && v->holds_table)
        ok = each_row(h, v, "the held steps", "SELECT kind, COUNT(*),"
                      " SUM(expires_at > 0 AND expires_at <= ?1) FROM choreo_holds"
                      " WHERE state = 'held' GROUP BY kind ORDER BY kind", row_kind);
    sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(h);
    v->db_ok = ok;
}

/* The running service's name, else the one that recorded its handlers,
 * else the file's name without ".db". */
static void name_service(struct svc *v)
{
    if (v->lock.service[0]) {
        snprintf(v->service, sizeof v->service, "%s", v->lock.service);
        return;
    }
    if (v->recorded[0]) {
        snprintf(v->service, sizeof v->service, "%s", v->recorded);
        return;
    }
    const char *base = strrchr(v->db, '/');
    base = base ? base + 1 : v->db;
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
 * handlers the database records against the consumers on the stream. Its
 * handle opens the database for writing, but at the current schema it
 * writes nothing; an older one it would migrate (and the service's own,
 * older choreo would then refuse to open it), so such a database is not
 * given to it. choreo_holds is the newest of choreo's tables: a database
 * without it is older than this choreoctl. */
static void read_consumers(ctl_settings *s, struct svc *v, struct nats_memo *memo)
{
    const char *name = v->recorded[0] ? v->recorded : v->lock.service;
    if (!v->db_ok) {
        snprintf(v->consumers_error, sizeof v->consumers_error,
                 "the database cannot be read");
        return;
    }
    if (!v->handlers_table) {
        snprintf(v->consumers_error, sizeof v->consumers_error,
                 "the database does not record the service's handlers yet (a choreo older "
                 "than this choreoctl last opened it): start the service once");
        return;
    }
    if (!name[0]) {
        v->consumers_ok = true; /* no handler recorded, no service named: none to ask for */
        return;
    }
    if (!v->holds_table) {
        snprintf(v->consumers_error, sizeof v->consumers_error,
                 "the database is from an older choreo (it has no table choreo_holds), and "
                 "listing its consumers would upgrade it: start the service with this choreo "
                 "once, or use the choreoctl of its version");
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
        st = choreo_admin_open(&adm, s->cfg);
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

/* "registered", "stale" or "missing", as consumers list says. */
static const char *consumer_state(const choreo_consumer_entry *e)
{
    if (e->registered)
        return e->on_server ? "registered" : "missing";
    return "stale";
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
    int64_t waiting = v->pending + v->delayed;
    if (!v->lock.running && waiting > 0) {
        snprintf(detail, cap, "the service is not running; %" PRId64 " row%s wait%s for its "
                 "next start", waiting, plural(waiting), waiting == 1 ? "s" : "");
        return "stopped";
    }
    if (v->pending == 0) {
        ctl_time_iso(v->next_delayed_ms, true, at);
        if (v->delayed > 0)
            snprintf(detail, cap, "nothing due; the next of %" PRId64 " delayed row%s falls "
                     "due at %s", v->delayed, plural(v->delayed), at);
        else
            snprintf(detail, cap, "nothing to publish");
        return "idle";
    }
    int64_t waited = v->now_ms - v->oldest_due_ms;
    format_age(waited, age);
    if (waited < BEHIND_MS) {
        snprintf(detail, cap, "%" PRId64 " row%s going out, the oldest due %s ago", v->pending,
                 plural(v->pending), age);
        return "publishing";
    }
    snprintf(detail, cap, "the oldest due row has waited %s: the relay cannot reach NATS, or "
             "the server does not confirm the publish; see the service's log", age);
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
    if (v->lock.running) {
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
    printf("%" PRId64 " pending (due now)", v->pending);
    if (v->pending > 0) {
        format_age(v->now_ms - v->oldest_due_ms, age);
        printf(", the oldest due %s ago", age);
    }
    printf("; %" PRId64 " delayed", v->delayed);
    if (v->delayed > 0) {
        ctl_time_iso(v->next_delayed_ms, true, at);
        printf(", the next due at %s", at);
    }
    fputc('\n', stdout);
    ctl_time_iso(v->last_published_ms, true, at);
    printf(INDENT "last published %s\n", v->last_published_ms > 0 ? at : "never (or pruned)");
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
    size_t stale = 0;
    for (size_t i = 0; i < v->nconsumers; i++) {
        const choreo_consumer_entry *e = &v->consumers[i];
        stale += !e->registered;
        printf(INDENT "%-*s  %-*s  %-10s  ", (int)wname, e->name, (int)wtype, e->type,
               consumer_state(e));
        if (e->on_server)
            printf("%8" PRIu64 "  %11" PRIu64 "  %11" PRIu64 "  %9" PRIu64 "  %s\n", e->pending,
                   e->ack_pending, e->redelivered, e->delivered, e->waiting > 0 ? "yes" : "no");
        else
            printf("%8s  %11s  %11s  %9s  %s\n", "-", "-", "-", "-", "-");
    }
    if (stale > 0)
        printf(INDENT "%zu stale: no handler of the service reads %s; choreoctl consumers "
               "delete NAME removes one\n", stale, stale == 1 ? "it" : "them");
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
    if (v->parked == 0) {
        fputs("none\n", stdout);
        return;
    }
    printf("%" PRId64 " message%s\n", v->parked, plural(v->parked));
    size_t wc = 0, wt = 0;
    for (size_t i = 0; i < v->ngroups; i++) {
        size_t a = ctl_text_width(v->groups[i].consumer), b = ctl_text_width(v->groups[i].type);
        wc = a > wc ? a : wc;
        wt = b > wt ? b : wt;
    }
    for (size_t i = 0; i < v->ngroups; i++) {
        char *c = ctl_text_clean(v->groups[i].consumer, strlen(v->groups[i].consumer));
        char *t = ctl_text_clean(v->groups[i].type, strlen(v->groups[i].type));
        fputs(INDENT, stdout);
        ctl_text_pad(stdout, c ? c : "?", wc + 2);
        ctl_text_pad(stdout, t && *t ? t : "-", wt + 2);
        printf("%" PRId64 "\n", v->groups[i].count);
        free(c);
        free(t);
    }
    if (v->more_groups)
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
    if (!v->has_last) {
        fputs("none\n", stdout);
        return;
    }
    ctl_time_iso(v->last.parked_at_ms, true, at);
    printf("%s, dead id %" PRId64 ", ", at, v->last.id);
    put_clean(v->last.consumer);
    fputs(" (", stdout);
    put_clean(v->last.event_type);
    fputs("): ", stdout);
    put_clean(v->last.reason);
    fputc('\n', stdout);
}

static void print_held(const struct svc *v)
{
    printf(LABEL, "held");
    if (!v->db_ok) {
        fputs("cannot be read\n", stdout);
        return;
    }
    if (v->held == 0) {
        fputs("none\n", stdout);
        return;
    }
    printf("%" PRId64 " step%s wait%s for a decision:", v->held, plural(v->held),
           v->held == 1 ? "s" : "");
    for (size_t i = 0; i < v->nkinds; i++) {
        fputs(i ? ", " : " ", stdout);
        put_clean(v->kinds[i].kind);
        printf(" %" PRId64, v->kinds[i].count);
    }
    if (v->more_kinds)
        fputs(" and more", stdout);
    if (v->held_expired > 0)
        printf("; %" PRId64 " of them past %s expiry, no longer decidable", v->held_expired,
               v->held_expired == 1 ? "its" : "their");
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
        put_clean(v->db);
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
    ctl_json_kint(j, "pending", v->pending);
    ctl_json_kint(j, "delayed", v->delayed);
    ctl_json_key(j, "oldest_pending_age_ms");
    if (v->pending > 0)
        ctl_json_int(j, v->now_ms - v->oldest_due_ms);
    else
        ctl_json_null(j);
    json_time(j, "next_delayed_at", v->delayed > 0 ? v->next_delayed_ms : 0);
    json_time(j, "last_published_at", v->last_published_ms);
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
        ctl_json_kstr(j, "state", consumer_state(e));
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
    ctl_json_kint(j, "total", v->parked);
    ctl_json_kbool(j, "truncated", v->more_groups);
    ctl_json_key(j, "by_consumer");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < v->ngroups; i++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "consumer", v->groups[i].consumer);
        ctl_json_kstr(j, "type", v->groups[i].type);
        ctl_json_kint(j, "count", v->groups[i].count);
        ctl_json_object_end(j);
    }
    ctl_json_array_end(j);
    ctl_json_object_end(j);
}

static void json_last_error(ctl_json *j, const struct svc *v)
{
    ctl_json_key(j, "last_error");
    if (!v->db_ok || !v->has_last) {
        ctl_json_null(j);
        return;
    }
    const choreo_dead_entry *e = &v->last;
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
    ctl_json_kint(j, "total", v->held);
    ctl_json_kint(j, "past_expiry", v->held_expired);
    ctl_json_kbool(j, "truncated", v->more_kinds);
    ctl_json_key(j, "by_kind");
    ctl_json_array_begin(j);
    for (size_t i = 0; i < v->nkinds; i++) {
        ctl_json_object_begin(j);
        ctl_json_kstr(j, "kind", v->kinds[i].kind);
        ctl_json_kint(j, "count", v->kinds[i].count);
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
    ctl_json_kstr(j, "db", v->db);
    ctl_json_kbool(j, "running", v->lock.running);
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
        ctl_error("status: cannot list the consumers of %s (%s): %s", v->service, v->db,
                  v->consumers_error);
    return v->db_ok && v->consumers_ok;
}

static int busy_timeout(const ctl_settings *s)
{
    const char *v = choreo_config_get(s->cfg, "busy_timeout_ms");
    long ms = v ? strtol(v, NULL, 10) : 5000;
    return ms > 0 && ms <= INT32_MAX ? (int)ms : 5000;
}

static int run(ctl_settings *s, const struct status_args *a, const ctl_db_list *dbs)
{
    struct svc *svcs = calloc(dbs->n, sizeof *svcs);
    if (!svcs) {
        ctl_error("status: out of memory");
        return CTL_EXIT_FAIL;
    }
    int busy_ms = busy_timeout(s);
    struct nats_memo memo = { .failed = false };
    bool complete = true;
    for (size_t i = 0; i < dbs->n; i++) {
        struct svc *v = &svcs[i];
        v->db = dbs->path[i];
        ctl_lock_read(v->db, &v->lock);
        read_db(v, busy_ms);
        name_service(v);
        read_consumers(s, v, &memo);
        if (!report(v))
            complete = false;
    }
    int rc = CTL_EXIT_OK;
    if (a->json)
        rc = print_json(svcs, dbs->n);
    else
        print_text(svcs, dbs->n);
    for (size_t i = 0; i < dbs->n; i++)
        free(svcs[i].consumers);
    free(svcs);
    return rc == CTL_EXIT_OK && !complete ? CTL_EXIT_FAIL : rc;
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
    rc = ctl_db_list_collect("status", s, a.dirs, a.ndirs, &dbs);
    if (rc == CTL_EXIT_OK)
        rc = run(s, &a, &dbs);
    ctl_db_list_free(&dbs);
    return rc;
}
