/* The skeleton every shop service runs on: settings, schema, handlers, run,
 * and small SQL and logging helpers so that handlers stay about business. */
#include "shop_svc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#ifdef SHOP_HAVE_PG
#include <libpq-fe.h>
#endif

/* Set once in shop_service_main before any thread starts. */
static shop_log_level log_level = SHOP_INFO;
static char log_service[40] = "shop";
/* shop_set_program's, "" when not set. */
static char program[40];

int64_t shop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void shop_log(shop_log_level lvl, const char *msg, const char *fields_fmt, ...)
{
    static const char *names[] = { "error", "warn", "info", "debug" };
    if (lvl > log_level)
        return;
    char line[1024];
    int64_t us = shop_now_us();
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof line - n, ".%03dZ level=%s svc=%s msg=\"%s\"",
                     (int)((us / 1000) % 1000), names[lvl], log_service, msg);
    n = w > 0 && (size_t)w < sizeof line - n ? n + (size_t)w : sizeof line - 2;
    if (fields_fmt && fields_fmt[0] && n + 2 < sizeof line) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        w = vsnprintf(line + n, sizeof line - n - 1, fields_fmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof line - n - 1 ? (size_t)w : sizeof line - n - 2;
    }
    line[n++] = '\n';
    line[n] = '\0';
    fputs(line, stderr);
}

static bool on_pg; /* set once in shop_service_main */

bool shop_on_postgres(void)
{
    return on_pg;
}

shop_db shop_tx_db(choreo_tx *tx)
{
    shop_db db = { NULL, NULL };
    if (on_pg)
        db.pg = choreo_tx_pg(tx);
    else
        db.lite = choreo_tx_db(tx);
    return db;
}

static sqlite3_stmt *stmt_get(shop_stmts *c, sqlite3 *db, int idx, const char *sql)
{
    if (c->db != db) {
        shop_stmts_clear(c);
        c->db = db;
    }
    if (!c->s[idx]) {
        int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->s[idx], NULL);
        if (rc != SQLITE_OK) {
            shop_log(SHOP_ERROR, "cannot prepare a statement", "sql=\"%s\" err=\"%s\"", sql,
                     sqlite3_errmsg(db));
            c->s[idx] = NULL;
            return NULL;
        }
    }
    return c->s[idx];
}

static int lite_sql(shop_stmts *c, sqlite3 *db, int idx, const char *sql, const char *fmt,
                    va_list ap)
{
    sqlite3_stmt *s = stmt_get(c, db, idx, sql);
    if (!s)
        return SQLITE_ERROR;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    for (int i = 0; fmt && fmt[i]; i++) {
        if (fmt[i] == 't') {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(s, i + 1, v, -1, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_int64(s, i + 1, (sqlite3_int64)va_arg(ap, int64_t));
        }
    }
    int rc = sqlite3_step(s);
    c->changes = sqlite3_changes(db);
    if (rc == SQLITE_ROW)
        return rc;
    if (rc != SQLITE_DONE)
        shop_log(SHOP_ERROR, "statement failed", "sql=\"%s\" err=\"%s\"", sql, sqlite3_errmsg(db));
    sqlite3_reset(s);
    return rc;
}

#ifdef SHOP_HAVE_PG
/* ?N becomes $N (the shop's SQL has no ? inside quotes). */
static char *dollar_params(const char *sql)
{
    char *out = malloc(strlen(sql) + 1), *o = out;
    for (const char *p = sql; out && *p; p++)
        *o++ = *p == '?' ? '$' : *p;
    if (out)
        *o = '\0';
    return out;
}

static int pg_sql(shop_stmts *c, struct pg_conn *db, int idx, const char *sql, const char *fmt,
                  va_list ap)
{
    shop_sql_reset(c, idx);
    if (!c->pg_sql[idx] && !(c->pg_sql[idx] = dollar_params(sql)))
        return SQLITE_NOMEM;
    const char *values[16];
    char nums[16][24];
    int n = 0;
    for (; fmt && fmt[n] && n < 16; n++) {
        if (fmt[n] == 't') {
            values[n] = va_arg(ap, const char *);
        } else {
            snprintf(nums[n], sizeof nums[n], "%lld", (long long)va_arg(ap, int64_t));
            values[n] = nums[n];
        }
    }
    PGresult *r = PQexecParams(db, c->pg_sql[idx], n, NULL, values, NULL, NULL, 0);
    ExecStatusType t = PQresultStatus(r);
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
        shop_log(SHOP_ERROR, "statement failed", "sql=\"%s\" err=\"%s\"", sql,
                 PQresultErrorMessage(r));
        PQclear(r);
        return SQLITE_ERROR;
    }
    c->changes = strtoll(PQcmdTuples(r), NULL, 10);
    if (t == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        c->pg_res[idx] = r;
        return SQLITE_ROW;
    }
    PQclear(r);
    return SQLITE_DONE;
}
#endif

int shop_sql(shop_stmts *c, shop_db db, int idx, const char *sql, const char *fmt, ...)
{
    if (idx < 0 || idx >= SHOP_STMTS_MAX)
        return SQLITE_MISUSE;
    va_list ap;
    va_start(ap, fmt);
    int rc = SQLITE_ERROR;
    if (db.lite)
        rc = lite_sql(c, db.lite, idx, sql, fmt, ap);
#ifdef SHOP_HAVE_PG
    else if (db.pg)
        rc = pg_sql(c, db.pg, idx, sql, fmt, ap);
#endif
    va_end(ap);
    return rc;
}

int64_t shop_sql_int(shop_stmts *c, int idx, int col)
{
#ifdef SHOP_HAVE_PG
    if (c->pg_res[idx])
        return strtoll(PQgetvalue(c->pg_res[idx], 0, col), NULL, 10);
#endif
    return sqlite3_column_int64(c->s[idx], col);
}

const char *shop_sql_text(shop_stmts *c, int idx, int col)
{
#ifdef SHOP_HAVE_PG
    if (c->pg_res[idx])
        return PQgetvalue(c->pg_res[idx], 0, col); /* "" for NULL */
#endif
    const char *v = (const char *)sqlite3_column_text(c->s[idx], col);
    return v ? v : "";
}

int64_t shop_sql_changes(const shop_stmts *c)
{
    return c->changes;
}

void shop_sql_reset(shop_stmts *c, int idx)
{
    if (idx < 0 || idx >= SHOP_STMTS_MAX)
        return;
    if (c->s[idx])
        sqlite3_reset(c->s[idx]);
#ifdef SHOP_HAVE_PG
    PQclear(c->pg_res[idx]);
    c->pg_res[idx] = NULL;
#endif
}

void shop_stmts_clear(shop_stmts *c)
{
    for (int i = 0; i < SHOP_STMTS_MAX; i++) {
        shop_sql_reset(c, i);
        sqlite3_finalize(c->s[i]);
        c->s[i] = NULL;
        free(c->pg_sql[i]);
        c->pg_sql[i] = NULL;
    }
    c->db = NULL;
}

/* The shop's DDL for PostgreSQL: 64-bit INTEGER columns. */
#ifdef SHOP_HAVE_PG
static int pg_exec_ddl(struct pg_conn *db, const char *sql)
{
    size_t cap = strlen(sql) * 2 + 1;
    char *ddl = malloc(cap), *o = ddl;
    if (!ddl)
        return SQLITE_NOMEM;
    for (const char *p = sql; *p;) {
        if (strncmp(p, "INTEGER", 7) == 0) {
            o += sprintf(o, "BIGINT");
            p += 7;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    PGresult *r = PQexec(db, ddl);
    /* What running it again may get past: SQLITE_IOERR, the connection is
     * gone (the server crashed or restarted); SQLITE_BUSY, a lock wait
     * passed lock_timeout (55P03). */
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK   ? SQLITE_OK
           : PQstatus(db) == CONNECTION_BAD          ? SQLITE_IOERR
           : state && strcmp(state, "55P03") == 0    ? SQLITE_BUSY
                                                     : SQLITE_ERROR;
    if (rc != SQLITE_OK)
        shop_log(SHOP_ERROR, "cannot run SQL", "err=\"%s\"", PQresultErrorMessage(r));
    PQclear(r);
    free(ddl);
    return rc;
}
#endif

int shop_sql_exec(shop_db db, const char *sql)
{
#ifdef SHOP_HAVE_PG
    if (db.pg)
        return pg_exec_ddl(db.pg, sql);
#endif
    if (!db.lite)
        return SQLITE_MISUSE;
    char *err = NULL;
    int rc = sqlite3_exec(db.lite, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        shop_log(SHOP_ERROR, "cannot run SQL", "err=\"%s\"", err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    return rc;
}

choreo_result shop_reject(choreo_tx *tx, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    choreo_tx_set_reason(tx, reason);
    return CHOREO_REJECT;
}

int shop_flag_value(const char *flag, int argc, char **argv, int *i, const char **value)
{
    size_t n = strlen(flag);
    if (strncmp(argv[*i], flag, n) == 0 && argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (strcmp(argv[*i], flag) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s%s%s needs a value (see --help)\n", program, program[0] ? ": " : "",
                flag);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

bool shop_parse_i64(const char *flag, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < min || v > max) {
        fprintf(stderr, "%s%s%s: \"%s\" is not a whole number in %lld..%lld\n", program,
                program[0] ? ": " : "", flag, s ? s : "", (long long)min, (long long)max);
        return false;
    }
    *out = (int64_t)v;
    return true;
}

void shop_set_program(const char *name)
{
    snprintf(program, sizeof program, "%s", name ? name : "");
}

bool shop_setting_valid(const char *prog, const char *flag, const char *value)
{
    /* Read as the services read their command line, so that the message
     * is the one a service would give. */
    char arg[300];
    snprintf(arg, sizeof arg, "%s=%s", flag, value);
    char *argv[] = { (char *)prog, arg, NULL };
    int argc = 2;
    choreo_config *cfg = NULL;
    bool ok = choreo_config_create(&cfg) == CHOREO_OK &&
              choreo_config_from_args(cfg, &argc, argv) == CHOREO_OK;
    if (!ok)
        fprintf(stderr, "%s: %s\n", prog, choreo_last_error());
    choreo_config_destroy(cfg);
    return ok;
}

/* Health check for supervisors: replies once the service's consumers and
 * request subscriptions exist (they are created before requests are served). */
static choreo_result on_ping(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                             void *user)
{
    (void)tx;
    (void)req;
    (void)len;
    (void)user;
    return choreo_reply_set(reply, "ok", 2) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* One try; *again when the failure may pass (the database went away or
 * stayed locked), not when the SQL itself failed. */
static choreo_status create_schema_once(choreo_service *svc, const char *sql, bool *again)
{
    choreo_tx *tx = NULL;
    choreo_status s = choreo_service_begin(svc, &tx);
    if (s == CHOREO_OK) {
        int rc = shop_sql_exec(shop_tx_db(tx), sql);
        if (rc != SQLITE_OK) {
            choreo_tx_rollback(tx);
            *again = rc == SQLITE_IOERR || rc == SQLITE_BUSY;
            return CHOREO_ESTORE;
        }
        s = choreo_tx_commit(tx);
    }
    *again = s == CHOREO_ESTORE || s == CHOREO_EBUSY;
    return s;
}

/* The schema is idempotent, so a transaction that failed can run again: a
 * PostgreSQL server that crashes or restarts while it runs drops the
 * connection and fails the transaction, although the next BEGIN waits for
 * the server and connects again. Tried again for as long as choreo waits
 * for the database at start (db_wait_ms). */
static choreo_status create_schema(choreo_service *svc, const char *sql, int64_t wait_ms)
{
    int64_t until = shop_now_us() + wait_ms * 1000;
    for (;;) {
        bool again;
        choreo_status s = create_schema_once(svc, sql, &again);
        if (s == CHOREO_OK || !again || shop_now_us() >= until)
            return s;
        shop_log(SHOP_WARN, "creating the schema failed; trying again", "err=\"%s\"",
                 choreo_last_error()[0] ? choreo_last_error() : "(the SQL error above)");
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

static void usage(const shop_service_def *def, const choreo_config *cfg, FILE *f)
{
    fprintf(f,
            "usage: shop-%s [--style STYLE] [--service NAME] [--db FILE] [--nats-url URL] "
            "[choreo flags]%s\n"
            "\nThe %s service of the choreo shop demo. Runs until SIGINT or SIGTERM.\n",
            def->name, def->usage ? " [service flags]" : "", def->name);
    fprintf(f, "\nService flags:\n"
               "  --style STYLE     how the saga runs: choreography (each service reacts to\n"
               "                    the event before it), orchestration (the order service\n"
               "                    sends each step a command) or tcc (try, then confirm or\n"
               "                    cancel); every service of a shop must run the same\n"
               "                    [choreography]\n%s",
            def->usage ? def->usage : "");
    fprintf(f, "\n");
    choreo_config_print_help(cfg, f);
}

/* --style STYLE or --style=STYLE at argv[*i]: 1 when taken (advancing *i
 * past a separate value), 0 when argv[*i] is another flag, -1 (after saying
 * why) for a missing or unknown style. */
static int style_flag(const char *name, int argc, char **argv, int *i, shop_style *style)
{
    const char *v;
    int r = shop_flag_value("--style", argc, argv, i, &v);
    if (r <= 0)
        return r;
    if (!shop_style_parse(v, style)) {
        fprintf(stderr, "shop-%s: --style \"%s\" is not a saga style: use %s\n", name, v,
                SHOP_STYLES);
        return -1;
    }
    return 1;
}

int shop_service_main(const shop_service_def *def, int argc, char **argv)
{
    choreo_config *cfg = NULL;
    choreo_service *svc = NULL;
    shop_style style = SHOP_STYLE_CHOREOGRAPHY;
    int rc = 1;
    char db[300];
    snprintf(log_service, sizeof log_service, "%s", def->name);
    snprintf(program, sizeof program, "shop-%s", def->name);
    snprintf(db, sizeof db, "%s.db", def->name);
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", def->name) != CHOREO_OK ||
        choreo_config_set(cfg, "db", db) != CHOREO_OK) {
        fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
        goto out;
    }
    /* A bad setting, from the environment or the command line (below),
     * exits 2, as the shop's tools do, so that a supervisor can tell it
     * from a service that failed. */
    if (choreo_config_from_env(cfg) != CHOREO_OK) {
        fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
        rc = 2;
        goto out;
    }
    if (choreo_config_accept_flag(cfg, "--style", true) != CHOREO_OK) {
        fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
        goto out;
    }
    for (const char *const *f = def->flags; f && *f; f++) {
        if (choreo_config_accept_flag(cfg, *f, true) != CHOREO_OK) {
            fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
            goto out;
        }
    }
    if (choreo_config_from_args(cfg, &argc, argv) != CHOREO_OK) {
        fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
        rc = 2;
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(def, cfg, stdout);
            rc = 0;
            goto out;
        }
        int r = style_flag(def->name, argc, argv, &i, &style);
        if (r == 0 && def->flag)
            r = def->flag(argc, argv, &i, def->user);
        if (r < 0) {
            rc = 2;
            goto out;
        }
        if (r == 0) {
            fprintf(stderr, "shop-%s: unknown argument \"%s\" (see --help)\n", def->name, argv[i]);
            rc = 2;
            goto out;
        }
    }
    /* Settings that do not go together (a retry base above its cap, a user
     * without a password), as choreo_service_create would refuse them. */
    if (choreo_config_validate(cfg) != CHOREO_OK) {
        fprintf(stderr, "shop-%s: %s\n", def->name, choreo_last_error());
        rc = 2;
        goto out;
    }
    snprintf(log_service, sizeof log_service, "%s", choreo_config_get(cfg, "service"));
    const char *store = choreo_config_get(cfg, "db");
    on_pg = strncmp(store, "postgresql://", 13) == 0 || strncmp(store, "postgres://", 11) == 0;
    const char *lvl = choreo_config_get(cfg, "log_level");
    log_level = strcmp(lvl, "error") == 0 ? SHOP_ERROR
              : strcmp(lvl, "warn") == 0  ? SHOP_WARN
              : strcmp(lvl, "debug") == 0 ? SHOP_DEBUG
                                          : SHOP_INFO;
    if (choreo_service_create(&svc, cfg) != CHOREO_OK ||
        create_schema(svc, def->schema_sql,
                      strtoll(choreo_config_get(cfg, "db_wait_ms"), NULL, 10)) != CHOREO_OK ||
        choreo_service_on_request(svc, "Ping", on_ping, NULL) != CHOREO_OK ||
        def->register_handlers(svc, style, def->user) != CHOREO_OK ||
        choreo_service_run(svc) != CHOREO_OK) {
        /* Only the schema's own SQL fails without choreo's error: it is
         * logged where it failed. */
        const char *why = choreo_last_error();
        fprintf(stderr, "shop-%s: %s\n", def->name,
                why[0] ? why : "cannot create the schema (its SQL error is logged above)");
        goto out;
    }
    rc = 0;
out:
    /* The service's threads are gone once run returns, so the handlers'
     * statements can be finalized before the database closes. */
    choreo_service_stop(svc);
    choreo_service_wait(svc);
    if (def->cleanup)
        def->cleanup(def->user);
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
    /* nats.c's threads may still be unwinding after the destroy; exiting
     * under them would tear the library down while they lock its mutexes
     * (ThreadSanitizer saw that once at a service's exit). */
    nats_CloseAndWait(SHOP_NATS_CLOSE_WAIT_MS);
    return rc;
}
