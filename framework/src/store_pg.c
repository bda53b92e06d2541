/* The PostgreSQL store: the framework's statements over libpq, with
 * SQLite's result codes, so that every module above runs unchanged on
 * either engine. Statements are written with ?N parameters and are
 * rewritten to $N once, when prepared; a cached statement is prepared on
 * the server under its own name and prepared again after a reconnect.
 * Parameters travel as text, blobs as binary bytea; results come back as
 * text, bytea columns decoded on first read.
 *
 * Several processes may share one database: the schema is migrated under an
 * advisory transaction lock. A lost connection is made again after the
 * failure, but never inside a transaction: there every later statement
 * fails until the transaction ends, so nothing of it can run on a new
 * connection in autocommit, and its COMMIT fails (the batch is redelivered);
 * the ROLLBACK that ends it connects again. */
#include "store_pg.h"

#include "clock.h"
#include "status.h"
#include "tuning.h"

#ifndef CHOREO_HAVE_PG

choreo_status choreo__pg_open(choreo_store *st, const char *url, const char *synchronous,
                              int busy_timeout_ms, int wait_ms, int idle_tx_ms)
{
    (void)st, (void)synchronous, (void)busy_timeout_ms, (void)wait_ms, (void)idle_tx_ms;
    return choreo__fail(CHOREO_ECONFIG,
                        "db names a PostgreSQL database (%.*s...) but this choreo was built "
                        "without PostgreSQL support: install libpq-dev and build again with "
                        "-Dpostgresql=enabled, or use a SQLite file",
                        13, url);
}
choreo_status choreo__pg_open_readonly(choreo_store *st, const char *url, int busy_timeout_ms,
                                       int *version)
{
    (void)version;
    return choreo__pg_open(st, url, "normal", busy_timeout_ms, 0, 0);
}
void choreo__pg_close(choreo_store *st) { (void)st; }
const char *choreo__pg_errmsg(choreo_store *st) { (void)st; return "no PostgreSQL support"; }
const char *choreo__pg_conn_error(choreo_store *st) { (void)st; return NULL; }
bool choreo__pg_away(choreo_store *st) { (void)st; return false; }
choreo_status choreo__pg_exec(choreo_store *st, const char *sql, const char *what)
{
    (void)st, (void)sql;
    return choreo__fail(CHOREO_ESTORE, "%s: no PostgreSQL support in this build", what);
}
choreo_status choreo__pg_begin(choreo_store *st) { return choreo__pg_exec(st, "", "BEGIN"); }
choreo_status choreo__pg_begin_read(choreo_store *st) { return choreo__pg_begin(st); }
choreo_status choreo__pg_commit(choreo_store *st) { return choreo__pg_exec(st, "", "COMMIT"); }
void choreo__pg_rollback(choreo_store *st) { (void)st; }
int64_t choreo__pg_changes(choreo_store *st) { (void)st; return 0; }
int choreo__pg_prepare(choreo_store *st, const char *sql, bool persistent, struct choreo_pgq **out)
{
    (void)st, (void)sql, (void)persistent, (void)out;
    return SQLITE_ERROR;
}
void choreo__pg_finalize(struct choreo_pgq *q) { (void)q; }
void choreo__pg_reset(struct choreo_pgq *q) { (void)q; }
void choreo__pg_clear_bindings(struct choreo_pgq *q) { (void)q; }
void choreo__pg_bind_int64(struct choreo_pgq *q, int i, int64_t v) { (void)q, (void)i, (void)v; }
void choreo__pg_bind(struct choreo_pgq *q, int i, const void *v, int n, bool binary)
{
    (void)q, (void)i, (void)v, (void)n, (void)binary;
}
int choreo__pg_step(struct choreo_pgq *q) { (void)q; return SQLITE_ERROR; }
int64_t choreo__pg_int64(struct choreo_pgq *q, int col) { (void)q, (void)col; return 0; }
const char *choreo__pg_value(struct choreo_pgq *q, int col, int *len)
{
    (void)q, (void)col;
    if (len)
        *len = 0;
    return NULL;
}
bool choreo__pg_is_null(struct choreo_pgq *q, int col) { (void)q, (void)col; return true; }
choreo_status choreo__pg_try_lock(choreo_store *st, int64_t key, bool *got)
{
    (void)key, (void)got;
    return choreo__pg_exec(st, "", "taking an advisory lock");
}
choreo_status choreo__pg_idle_limit(choreo_store *st, int64_t ms, bool *supported)
{
    (void)ms, (void)supported;
    return choreo__pg_exec(st, "", "limiting a session's idle time");
}
int choreo__pg_socket(choreo_store *st) { (void)st; return -1; }
bool choreo__pg_notified(choreo_store *st) { (void)st; return false; }
void choreo__pg_note_outbox(choreo_store *st) { (void)st; }
void *choreo__pg_conn(choreo_store *st) { (void)st; return NULL; }
int choreo__pg_session(choreo_store *st) { (void)st; return 0; }

#else

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pq.h"

#define BOOL_OID 16
#define BYTEA_OID 17

struct choreo_pg {
    PGconn *conn;
    int session;     /* bumped on every reconnect */
    int next_name;   /* names of server-side prepared statements */
    int64_t changes;
    bool note_outbox;
    bool in_tx;      /* between BEGIN and COMMIT or ROLLBACK */
    bool refused;    /* the server answered and refused the connection */
    bool away;       /* the last failure: no answer from the server */
    char err[512];
};

struct choreo_pgq {
    choreo_store *st;
    char *sql;        /* with $N parameters */
    bool persistent;
    char name[16];
    int prepared_in;  /* the session it was prepared in, or -1 */
    int nparams;
    char **values;    /* owned copies, NULL for SQL NULL */
    int *lengths;
    int *formats;
    PGresult *res;
    int row, nrows;
    char **decoded;   /* bytea columns of the current row */
    size_t *decoded_len;
    int decoded_row, ncols;
};

/* Keeps libpq's message on one line: it breaks its hints onto lines of
 * their own ("...failed: Connection refused\n\tIs the server running..."),
 * which would split a log line or an error a tool prints. */
static void set_err(struct choreo_pg *pg, const char *msg)
{
    pg->away = false;
    snprintf(pg->err, sizeof pg->err, "%s", msg && msg[0] ? msg : "unknown error");
    size_t n = strlen(pg->err);
    while (n > 0 && (pg->err[n - 1] == '\n' || pg->err[n - 1] == ' '))
        pg->err[--n] = '\0';
    char *w = pg->err;
    for (const char *r = pg->err; *r; r++) {
        if (*r == '\n' || *r == '\t' || *r == '\r') {
            if (w > pg->err && w[-1] != ' ')
                *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* After a failure on a lost connection, connects again so that the next
 * statement can work, unless a transaction is open (then the rollback
 * does). The session's prepared statements, locks and LISTENs are gone and
 * are set up again by their users (choreo__store_session). */
static void recover(struct choreo_pg *pg)
{
    if (PQstatus(pg->conn) != CONNECTION_BAD || pg->in_tx)
        return;
    PQreset(pg->conn);
    pg->session++;
    pg->note_outbox = false;
}

/* Maps a failed result to a SQLite result code and keeps its message. */
static int fail_code(struct choreo_pg *pg, PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    set_err(pg, res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                     : PQerrorMessage(pg->conn));
    int rc = SQLITE_ERROR;
    if (!state || strncmp(state, "08", 2) == 0)
        rc = SQLITE_IOERR;
    else if (strncmp(state, "23", 2) == 0)
        rc = SQLITE_CONSTRAINT;
    else if (!strcmp(state, "40P01") || !strcmp(state, "40001") || !strcmp(state, "55P03") ||
             !strcmp(state, "57014"))
        rc = SQLITE_BUSY;
    else if (!strcmp(state, "53100"))
        rc = SQLITE_FULL;
    else if (!strcmp(state, "53200"))
        rc = SQLITE_NOMEM;
    pg->away = rc == SQLITE_IOERR;
    recover(pg);
    return rc;
}

static void drop_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

choreo_status choreo__pg_exec(choreo_store *st, const char *sql, const char *what)
{
    struct choreo_pg *pg = st->pg;
    PGresult *res = PQexec(pg->conn, sql);
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK) {
        const char *n = PQcmdTuples(res);
        pg->changes = n && n[0] ? strtoll(n, NULL, 10) : 0;
        PQclear(res);
        return CHOREO_OK;
    }
    int rc = fail_code(pg, res);
    PQclear(res);
    return choreo__store_error(st, rc, what);
}

/* Runs a query that returns one row of one column and copies its value
 * into out (cap bytes). */
static choreo_status pg_value(choreo_store *st, const char *sql, const char *what, char *out,
                              size_t cap)
{
    struct choreo_pg *pg = st->pg;
    PGresult *res = PQexec(pg->conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 1) {
        int rc = fail_code(pg, res);
        PQclear(res);
        return choreo__store_error(st, rc, what);
    }
    snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return CHOREO_OK;
}

/* Rewrites SQLite's DDL into PostgreSQL's: 64-bit integers, bytea, serial
 * keys, and no WITHOUT ROWID. */
static char *ddl_for_pg(const char *sql)
{
    static const char *const from[] = { " INTEGER PRIMARY KEY AUTOINCREMENT", " INTEGER",
                                         " BLOB", " WITHOUT ROWID" };
    static const char *const to[] = { " BIGSERIAL PRIMARY KEY", " BIGINT", " BYTEA", "" };
    size_t cap = strlen(sql) * 2 + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = sql; *p;) {
        int k = 0;
        for (; k < 4; k++) {
            size_t len = strlen(from[k]);
            if (strncmp(p, from[k], len) == 0) {
                size_t tl = strlen(to[k]);
                memcpy(out + n, to[k], tl);
                n += tl;
                p += len;
                break;
            }
        }
        if (k == 4)
            out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

static choreo_status migrate(choreo_store *st, const char *where)
{
    int nmig;
    const char *const *mig = choreo__store_migrations(&nmig);
    choreo_status s = choreo__pg_begin(st);
    if (s != CHOREO_OK)
        return s;
    s = choreo__pg_exec(st, "SET LOCAL lock_timeout = '60s'", "setting a lock wait");
    if (s == CHOREO_OK)
        s = choreo__store_xact_lock(st, CHOREO_PG_LOCK_MIGRATION,
                                    "locking the schema for migration");
    if (s == CHOREO_OK)
        s = choreo__pg_exec(st,
                            "CREATE TABLE IF NOT EXISTS choreo_schema (version INTEGER NOT NULL);"
                            "INSERT INTO choreo_schema SELECT 0"
                            " WHERE NOT EXISTS (SELECT 1 FROM choreo_schema)",
                            "creating the schema version table");
    /* A choreo_schema of another application's (other columns, or not one
     * row) would be misread as a version and the migrations run wrong. */
    char shape[160] = "";
    if (s == CHOREO_OK)
        s = pg_value(st,
                     "SELECT (SELECT count(*) FROM choreo_schema) || ' ' || (SELECT"
                     " string_agg(column_name || ':' || data_type, ' ' ORDER BY ordinal_position)"
                     " FROM information_schema.columns WHERE table_name = 'choreo_schema'"
                     " AND table_schema = current_schema())",
                     "reading the schema version table", shape, sizeof shape);
    if (s == CHOREO_OK && strcmp(shape, "1 version:integer") != 0)
        s = choreo__fail(CHOREO_ESTORE,
                         "database %s holds a table choreo_schema that is not choreo's (%s "
                         "where choreo keeps one row, version:integer): give the service a "
                         "database of its own, or a schema of its own (ALTER ROLE ... SET "
                         "search_path)",
                         where, shape);
    char value[24] = "0";
    if (s == CHOREO_OK)
        s = pg_value(st, "SELECT version FROM choreo_schema", "reading the schema version",
                     value, sizeof value);
    int v = atoi(value);
    if (s == CHOREO_OK && v > nmig)
        s = choreo__fail(CHOREO_ESTORE,
                         "database %s has choreo schema version %d, newer than this build's %d: "
                         "run a newer choreo against it",
                         where, v, nmig);
    for (; s == CHOREO_OK && v < nmig; v++) {
        char *ddl = ddl_for_pg(mig[v]);
        s = ddl ? choreo__pg_exec(st, ddl, "migrating the choreo tables")
                : choreo__fail(CHOREO_ENOMEM, "out of memory migrating %s", where);
        free(ddl);
        if (s == CHOREO_OK && v + 1 == CHOREO_SCHEMA_IDENTITY) {
            char identity[160];
            choreo__store_identity_sql(identity, sizeof identity);
            s = choreo__pg_exec(st, identity, "giving the database its identity");
        }
        if (s == CHOREO_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "UPDATE choreo_schema SET version = %d", v + 1);
            s = choreo__pg_exec(st, sql, "recording the schema version");
        }
    }
    if (s != CHOREO_OK) {
        choreo__pg_rollback(st);
        return s;
    }
    return choreo__pg_commit(st);
}

/* A URL libpq would read otherwise than meant, or whose errors would quote
 * its password: refused before it is tried. libpq ends the user and
 * password at the first @, /, ? or #, so such a character in them sends the
 * rest of the password on as the host's name, and it quotes a bad percent
 * escape. A URL's options= would replace the session settings choreo gives
 * (lock_timeout, synchronous_commit, read-only sessions). */
static choreo_status url_defect(const char *url, char *where, size_t cap)
{
    choreo__store_display(url, where, cap);
    const char *rest = strstr(url, "://");
    rest = rest ? rest + 3 : url;
    const char *at = strrchr(rest, '@');
    for (const char *p = rest; at && p < at; p++)
        if (*p == '@' || *p == '/' || *p == '?' || *p == '#')
            return choreo__fail(CHOREO_ECONFIG,
                                "setting db: the user name or password of the PostgreSQL URL %s "
                                "holds a '%c', where libpq would end it: write it percent-encoded "
                                "(%%40 for @, %%2F for /, %%3F for ?, %%23 for #)",
                                where, *p);
    for (const char *p = url; *p; p++)
        if (*p == '%' && !(isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])))
            return choreo__fail(CHOREO_ECONFIG,
                                "setting db: the PostgreSQL URL %s holds a %% that is not followed "
                                "by two hex digits: write a %% itself as %%25",
                                where);
    const char *query = strchr(at ? at : rest, '?');
    for (const char *p = query; p && *p; p = strchr(p + 1, '&'))
        if (strncasecmp(p + 1, "options=", 8) == 0)
            return choreo__fail(CHOREO_ECONFIG,
                                "setting db: the PostgreSQL URL %s sets options=, which would "
                                "replace the session settings choreo gives (lock_timeout, "
                                "synchronous_commit): set what you need on the role or the "
                                "database instead (ALTER ROLE ... SET ...)",
                                where);
    return CHOREO_OK;
}

/* Whether each of a URL's ports (a list for several hosts) is a number
 * from 1 to 65535; libpq finds out only when it connects, after trying
 * the server for everything else. */
static bool ports_valid(const char *ports)
{
    for (const char *p = ports; p && *p; p += *p == ',') {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        bool empty = end == p; /* libpq takes an empty port as its default */
        if (errno || (!empty && (v < 1 || v > 65535)) || (*end && *end != ','))
            return false;
        p = end;
    }
    return true;
}

/* Connects with the session settings in options; where gets the
 * database's name without the URL's password, for messages. A failed
 * connect notes whether the server answered and refused (a password, a
 * database name), which will not change by waiting. */
static choreo_status pg_connect(choreo_store *st, const char *url, const char *options,
                                char *where, size_t cap)
{
    choreo_status defect = url_defect(url, where, cap);
    if (defect != CHOREO_OK)
        return defect;
    choreo_status loaded = choreo__pq_load();
    if (loaded != CHOREO_OK)
        return loaded;
    struct choreo_pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return choreo__fail(CHOREO_ENOMEM, "out of memory opening a PostgreSQL store");
    st->pg = pg;
    /* The session's settings go in the connection's parameters, so that a
     * connection made again (PQreset) has them too; the URL's own come
     * last and win. A connect gives up after CHOREO_PG_CONNECT_TIMEOUT_S
     * (libpq waits for ever on a server that takes the connection and never
     * answers), and TCP keepalives on both sides find a peer whose machine
     * is gone: the server then ends that session, and with it the relay
     * lock a standby instance waits for. */
    char connect_timeout[16];
    snprintf(connect_timeout, sizeof connect_timeout, "%d", CHOREO_PG_CONNECT_TIMEOUT_S);
    char all[400];
    snprintf(all, sizeof all, "%s -c tcp_keepalives_idle=%d -c tcp_keepalives_interval=%d"
             " -c tcp_keepalives_count=%d", options, CHOREO_PG_KEEPALIVE_IDLE_S,
             CHOREO_PG_KEEPALIVE_INTERVAL_S, CHOREO_PG_KEEPALIVE_COUNT);
    char idle[16], interval[16], count[16];
    snprintf(idle, sizeof idle, "%d", CHOREO_PG_KEEPALIVE_IDLE_S);
    snprintf(interval, sizeof interval, "%d", CHOREO_PG_KEEPALIVE_INTERVAL_S);
    snprintf(count, sizeof count, "%d", CHOREO_PG_KEEPALIVE_COUNT);
    const char *const keys[] = { "application_name", "options", "connect_timeout", "keepalives",
                                 "keepalives_idle", "keepalives_interval", "keepalives_count",
                                 "dbname", NULL };
    const char *const values[] = { "choreo", all, connect_timeout, "1", idle, interval, count,
                                   url, NULL };
    pg->conn = PQconnectdbParams(keys, values, 1);
    if (!pg->conn)
        return choreo__fail(CHOREO_ENOMEM, "out of memory connecting to PostgreSQL");
    PGPing ping = PQPING_OK;
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        ping = PQpingParams(keys, values, 1);
        /* A server without TLS under sslmode=require answers, but not to a
         * ping that asks for TLS: that too will not change by waiting. */
        pg->refused = (ping != PQPING_NO_RESPONSE && ping != PQPING_REJECT) ||
                      strstr(PQerrorMessage(pg->conn), "does not support SSL") != NULL;
    }
    if (PQhost(pg->conn) && PQhost(pg->conn)[0])
        snprintf(where, cap, "postgresql://%s:%s/%s", PQhost(pg->conn),
                 PQport(pg->conn) ? PQport(pg->conn) : "?", PQdb(pg->conn) ? PQdb(pg->conn) : "?");
    else /* a URL libpq could not read */
        choreo__store_display(url, where, cap);
    if (PQstatus(pg->conn) != CONNECTION_OK) {
        set_err(pg, PQerrorMessage(pg->conn));
        /* libpq quotes a URL it cannot read whole, password and all. */
        char *quoted = strstr(pg->err, url);
        if (quoted) {
            char rest[sizeof pg->err];
            snprintf(rest, sizeof rest, "%s", quoted + strlen(url));
            snprintf(quoted, sizeof pg->err - (size_t)(quoted - pg->err), "%s%s", where, rest);
        }
        /* libpq did not try: a port, an option or a value it cannot use. */
        if (ping == PQPING_NO_ATTEMPT || !ports_valid(PQport(pg->conn)))
            return choreo__fail(CHOREO_ECONFIG,
                                "setting db: the PostgreSQL URL %s cannot be used: %s; fix the "
                                "URL (postgresql://user:password@host:port/database?option=value)",
                                where, pg->err);
        return choreo__fail(CHOREO_ESTORE,
                            "cannot connect to the PostgreSQL database %s: %s; check that the "
                            "server runs and that the URL's host, port, user and database are "
                            "right",
                            where, pg->err);
    }
    PQsetNoticeProcessor(pg->conn, drop_notice, NULL);
    return CHOREO_OK;
}

choreo_status choreo__pg_open(choreo_store *st, const char *url, const char *synchronous,
                              int busy_timeout_ms, int wait_ms, int idle_tx_ms)
{
    bool durable = strcmp(synchronous, "full") == 0 || strcmp(synchronous, "extra") == 0;
    char options[224], where[200];
    int n = snprintf(options, sizeof options,
                     "-c synchronous_commit=%s -c lock_timeout=%d -c client_min_messages=warning",
                     durable ? "on" : "off", busy_timeout_ms);
    if (idle_tx_ms > 0) /* 0 leaves the role's or the server's own setting */
        snprintf(options + n, sizeof options - (size_t)n,
                 " -c idle_in_transaction_session_timeout=%d", idle_tx_ms);
    /* A server that does not answer, or is starting, shutting down or
     * recovering (also between the connect and the migration), leaves the
     * connection bad: the whole open is tried again every
     * CHOREO_DB_RETRY_MS for wait_ms. A server that refused (answered a
     * ping after the failed connect) ends the wait when it refuses twice in
     * a row: one that finished its recovery between the connect and the
     * ping answers that ping too, and takes the next connect. */
    int64_t until = choreo__mono_us() + (int64_t)wait_ms * 1000;
    for (bool refused_before = false;;) {
        choreo_status s = pg_connect(st, url, options, where, sizeof where);
        if (s == CHOREO_OK)
            s = migrate(st, where);
        if (s == CHOREO_OK || s == CHOREO_ECONFIG || !st->pg || !st->pg->conn ||
            PQstatus(st->pg->conn) != CONNECTION_BAD || choreo__mono_us() >= until ||
            (st->pg->refused && refused_before))
            return s;
        refused_before = st->pg->refused;
        choreo__pg_close(st);
        choreo__sleep_ms(CHOREO_DB_RETRY_MS);
    }
}

/* The schema version a reader finds: 0 without the version table. */
static choreo_status read_version(choreo_store *st, const char *where, int *version)
{
    char value[24] = "0";
    choreo_status s = pg_value(st, "SELECT to_regclass('choreo_schema') IS NOT NULL",
                               "looking for the schema version table", value, sizeof value);
    bool table = s == CHOREO_OK && value[0] == 't';
    if (table)
        s = pg_value(st, "SELECT version FROM choreo_schema", "reading the schema version",
                     value, sizeof value);
    if (s != CHOREO_OK)
        return choreo__fail(CHOREO_ESTORE, "cannot read the choreo schema version of %s: %s",
                            where, st->pg->err);
    *version = table ? atoi(value) : 0;
    return CHOREO_OK;
}

choreo_status choreo__pg_open_readonly(choreo_store *st, const char *url, int busy_timeout_ms,
                                       int *version)
{
    char options[160], where[200];
    snprintf(options, sizeof options,
             "-c default_transaction_read_only=on -c lock_timeout=%d"
             " -c client_min_messages=warning", busy_timeout_ms);
    choreo_status s = pg_connect(st, url, options, where, sizeof where);
    return s == CHOREO_OK ? read_version(st, where, version) : s;
}

void choreo__pg_close(choreo_store *st)
{
    if (!st->pg)
        return;
    PQfinish(st->pg->conn);
    free(st->pg);
    st->pg = NULL;
}

const char *choreo__pg_errmsg(choreo_store *st)
{
    return st->pg ? st->pg->err : "no connection";
}

bool choreo__pg_away(choreo_store *st)
{
    return st->pg && st->pg->away;
}

const char *choreo__pg_conn_error(choreo_store *st)
{
    const char *m = st->pg && st->pg->conn ? PQerrorMessage(st->pg->conn) : NULL;
    return m && m[0] ? m : NULL;
}

choreo_status choreo__pg_begin(choreo_store *st)
{
    struct choreo_pg *pg = st->pg;
    pg->note_outbox = false;
    pg->in_tx = false;
    recover(pg);
    choreo_status s = choreo__pg_exec(st, "BEGIN", "beginning a transaction");
    pg->in_tx = s == CHOREO_OK;
    return s;
}

choreo_status choreo__pg_begin_read(choreo_store *st)
{
    struct choreo_pg *pg = st->pg;
    pg->note_outbox = false;
    pg->in_tx = false;
    recover(pg);
    choreo_status s = choreo__pg_exec(st, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                      "beginning a read transaction");
    pg->in_tx = s == CHOREO_OK;
    return s;
}

choreo_status choreo__pg_commit(choreo_store *st)
{
    struct choreo_pg *pg = st->pg;
    /* A connection made again since BEGIN has no transaction open: the
     * server rolled the old one back when the old connection ended, and a
     * COMMIT now would only warn and "succeed". */
    if (PQtransactionStatus(pg->conn) != PQTRANS_INTRANS) {
        choreo__pg_rollback(st);
        set_err(pg, "the connection to the server was lost, or a statement of the transaction "
                    "had failed; the server rolled it back");
        return choreo__store_error(st, SQLITE_ABORT, "committing a transaction");
    }
    if (pg->note_outbox) {
        pg->note_outbox = false;
        choreo_status s = choreo__pg_exec(st, "NOTIFY " CHOREO_PG_OUTBOX_CHANNEL,
                                          "notifying the relays");
        if (s != CHOREO_OK) {
            choreo__pg_rollback(st);
            return s;
        }
    }
    PGresult *res = PQexec(pg->conn, "COMMIT");
    ExecStatusType t = PQresultStatus(res);
    if (t == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0) {
        PQclear(res);
        pg->in_tx = false;
        return CHOREO_OK;
    }
    int rc;
    if (t == PGRES_COMMAND_OK) { /* "ROLLBACK": a statement had failed */
        set_err(pg, "the transaction had failed and the server rolled it back");
        rc = SQLITE_ABORT;
    } else {
        rc = fail_code(pg, res);
    }
    PQclear(res);
    choreo__pg_rollback(st);
    return choreo__store_error(st, rc, "committing a transaction");
}

void choreo__pg_rollback(choreo_store *st)
{
    struct choreo_pg *pg = st->pg;
    pg->note_outbox = false;
    pg->in_tx = false;
    if (PQstatus(pg->conn) == CONNECTION_OK && PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    recover(pg);
}

int64_t choreo__pg_changes(choreo_store *st)
{
    return st->pg->changes;
}

/* ?N becomes $N and a bare ? the next number, outside quotes. */
static char *rewrite_params(const char *sql, int *nparams)
{
    char *out = malloc(strlen(sql) * 2 + 1);
    if (!out)
        return NULL;
    int max = 0;
    char quote = 0;
    char *o = out;
    for (const char *p = sql; *p; p++) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p;
        } else if (*p == '?') {
            int k;
            if (p[1] >= '0' && p[1] <= '9') {
                k = (int)strtol(p + 1, (char **)&p, 10);
                p--;
            } else {
                k = max + 1;
            }
            if (k > max)
                max = k;
            o += sprintf(o, "$%d", k);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *nparams = max;
    return out;
}

void choreo__pg_finalize(struct choreo_pgq *q)
{
    if (!q)
        return;
    choreo__pg_reset(q);
    for (int i = 0; i < q->nparams; i++)
        free(q->values[i]);
    free(q->values);
    free(q->lengths);
    free(q->formats);
    free(q->sql);
    free(q);
}

int choreo__pg_prepare(choreo_store *st, const char *sql, bool persistent, struct choreo_pgq **out)
{
    struct choreo_pgq *q = calloc(1, sizeof *q);
    if (!q)
        return SQLITE_NOMEM;
    q->st = st;
    q->persistent = persistent;
    q->prepared_in = -1;
    q->sql = rewrite_params(sql, &q->nparams);
    int n = q->nparams ? q->nparams : 1;
    q->values = calloc((size_t)n, sizeof *q->values);
    q->lengths = calloc((size_t)n, sizeof *q->lengths);
    q->formats = calloc((size_t)n, sizeof *q->formats);
    if (!q->sql || !q->values || !q->lengths || !q->formats) {
        choreo__pg_finalize(q);
        return SQLITE_NOMEM;
    }
    if (persistent)
        snprintf(q->name, sizeof q->name, "c%d", ++st->pg->next_name);
    *out = q;
    return SQLITE_OK;
}

void choreo__pg_reset(struct choreo_pgq *q)
{
    if (!q)
        return;
    PQclear(q->res);
    q->res = NULL;
    q->row = q->nrows = 0;
    if (q->decoded) {
        for (int i = 0; i < q->ncols; i++)
            PQfreemem(q->decoded[i]);
        free(q->decoded);
        free(q->decoded_len);
        q->decoded = NULL;
        q->decoded_len = NULL;
    }
}

void choreo__pg_clear_bindings(struct choreo_pgq *q)
{
    for (int i = 0; i < q->nparams; i++) {
        free(q->values[i]);
        q->values[i] = NULL;
        q->lengths[i] = 0;
        q->formats[i] = 0;
    }
}

void choreo__pg_bind(struct choreo_pgq *q, int i, const void *v, int n, bool binary)
{
    if (i < 1 || i > q->nparams)
        return;
    i--;
    free(q->values[i]);
    q->values[i] = NULL;
    q->lengths[i] = 0;
    q->formats[i] = binary;
    if (!v)
        return;
    q->values[i] = malloc((size_t)n + 1);
    if (!q->values[i])
        return;
    memcpy(q->values[i], v, (size_t)n);
    q->values[i][n] = '\0';
    q->lengths[i] = n;
}

void choreo__pg_bind_int64(struct choreo_pgq *q, int i, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)v);
    choreo__pg_bind(q, i, num, n, false);
}

int choreo__pg_step(struct choreo_pgq *q)
{
    struct choreo_pg *pg = q->st->pg;
    if (!q->res) {
        const char *const *values = (const char *const *)q->values;
        if (q->persistent) {
            if (q->prepared_in != pg->session) {
                PGresult *p = PQprepare(pg->conn, q->name, q->sql, q->nparams, NULL);
                if (PQresultStatus(p) != PGRES_COMMAND_OK) {
                    int rc = fail_code(pg, p);
                    PQclear(p);
                    return rc;
                }
                PQclear(p);
                q->prepared_in = pg->session;
            }
            q->res = PQexecPrepared(pg->conn, q->name, q->nparams, values, q->lengths,
                                    q->formats, 0);
        } else {
            q->res = PQexecParams(pg->conn, q->sql, q->nparams, NULL, values, q->lengths,
                                  q->formats, 0);
        }
        ExecStatusType t = PQresultStatus(q->res);
        if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK) {
            int rc = fail_code(pg, q->res);
            PQclear(q->res);
            q->res = NULL;
            return rc;
        }
        const char *n = PQcmdTuples(q->res);
        pg->changes = n && n[0] ? strtoll(n, NULL, 10) : 0;
        q->nrows = t == PGRES_TUPLES_OK ? PQntuples(q->res) : 0;
        q->row = -1;
    }
    if (q->row < q->nrows)
        q->row++;
    return q->row < q->nrows ? SQLITE_ROW : SQLITE_DONE;
}

bool choreo__pg_is_null(struct choreo_pgq *q, int col)
{
    return !q->res || q->row >= q->nrows || col >= PQnfields(q->res) ||
           PQgetisnull(q->res, q->row, col);
}

int64_t choreo__pg_int64(struct choreo_pgq *q, int col)
{
    if (choreo__pg_is_null(q, col))
        return 0;
    const char *v = PQgetvalue(q->res, q->row, col);
    if (PQftype(q->res, col) == BOOL_OID)
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

const char *choreo__pg_value(struct choreo_pgq *q, int col, int *len)
{
    if (len)
        *len = 0;
    if (choreo__pg_is_null(q, col))
        return NULL;
    if (PQftype(q->res, col) != BYTEA_OID) {
        if (len)
            *len = PQgetlength(q->res, q->row, col);
        return PQgetvalue(q->res, q->row, col);
    }
    if (!q->decoded) {
        q->ncols = PQnfields(q->res);
        q->decoded = calloc((size_t)q->ncols, sizeof *q->decoded);
        q->decoded_len = calloc((size_t)q->ncols, sizeof *q->decoded_len);
        if (!q->decoded || !q->decoded_len) {
            free(q->decoded);
            free(q->decoded_len);
            q->decoded = NULL;
            q->decoded_len = NULL;
            return NULL;
        }
        q->decoded_row = q->row;
    } else if (q->decoded_row != q->row) {
        for (int i = 0; i < q->ncols; i++) {
            PQfreemem(q->decoded[i]);
            q->decoded[i] = NULL;
        }
        q->decoded_row = q->row;
    }
    if (!q->decoded[col]) {
        q->decoded[col] = (char *)PQunescapeBytea(
            (const unsigned char *)PQgetvalue(q->res, q->row, col), &q->decoded_len[col]);
        if (!q->decoded[col])
            return NULL;
    }
    if (len)
        *len = (int)q->decoded_len[col];
    return q->decoded[col];
}

choreo_status choreo__pg_try_lock(choreo_store *st, int64_t key, bool *got)
{
    char sql[96], value[8];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)key);
    choreo_status s = pg_value(st, sql, "taking the relay's advisory lock", value, sizeof value);
    *got = s == CHOREO_OK && value[0] == 't';
    return s;
}

/* The server ends this session once it has been idle outside a transaction
 * for ms (idle_session_timeout, PostgreSQL 14 and later), and with it the
 * session's advisory locks; a new connection does not inherit it. */
choreo_status choreo__pg_idle_limit(choreo_store *st, int64_t ms, bool *supported)
{
    char sql[192], value[24] = "";
    snprintf(sql, sizeof sql,
             "SELECT CASE WHEN current_setting('server_version_num')::int >= 140000 THEN "
             "set_config('idle_session_timeout', '%lld', false) ELSE '' END",
             (long long)ms);
    choreo_status s = pg_value(st, sql, "limiting the relay session's idle time", value,
                               sizeof value);
    *supported = s == CHOREO_OK && value[0] != '\0';
    return s;
}

int choreo__pg_socket(choreo_store *st)
{
    return PQsocket(st->pg->conn);
}

bool choreo__pg_notified(choreo_store *st)
{
    struct choreo_pg *pg = st->pg;
    if (!PQconsumeInput(pg->conn)) {
        recover(pg);
        return false;
    }
    bool any = false;
    PGnotify *n;
    while ((n = PQnotifies(pg->conn)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

void choreo__pg_note_outbox(choreo_store *st)
{
    st->pg->note_outbox = true;
}

void *choreo__pg_conn(choreo_store *st)
{
    return st->pg->conn;
}

int choreo__pg_session(choreo_store *st)
{
    return st->pg->session;
}

#endif
