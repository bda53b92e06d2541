/* Opens a service's database and runs its statements. For a SQLite file it
 * applies the pragmas choreo relies on (WAL so the relay reads while the
 * dispatcher writes, a busy timeout, synchronous as configured) and migrates
 * the framework tables by PRAGMA user_version; a PostgreSQL URL goes to
 * store_pg.c, which keeps its own migrations of the same tables. */
#include "store.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "status.h"
#include "store_pg.h"
#include "tuning.h"
#include "ulid.h"
#include "walvfs.h"

/* Migration i takes the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    "CREATE TABLE choreo_outbox ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  subject TEXT NOT NULL,"
    "  headers TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL,"   /* unix microseconds */
    "  publish_at INTEGER NOT NULL,"   /* unix milliseconds */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT,"
    "  published_at INTEGER);"         /* unix milliseconds */
    "CREATE INDEX choreo_outbox_pending ON choreo_outbox(seq) WHERE published_at IS NULL;"
    "CREATE INDEX choreo_outbox_published ON choreo_outbox(published_at)"
    "  WHERE published_at IS NOT NULL;"
    "CREATE TABLE choreo_inbox ("
    "  consumer TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  processed_at INTEGER NOT NULL," /* unix milliseconds */
    "  PRIMARY KEY (consumer, event_id)) WITHOUT ROWID;"
    "CREATE INDEX choreo_inbox_age ON choreo_inbox(processed_at);"
    "CREATE TABLE choreo_barrier ("
    "  saga TEXT NOT NULL,"
    "  step TEXT NOT NULL,"
    "  op TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  PRIMARY KEY (saga, step, op)) WITHOUT ROWID;"
    "CREATE TABLE choreo_dead ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  consumer TEXT NOT NULL,"
    "  event_id TEXT,"
    "  event_type TEXT,"
    "  subject TEXT NOT NULL,"
    "  body BLOB NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL,"
    "  parked_at INTEGER NOT NULL,"
    "  status TEXT NOT NULL DEFAULT 'parked',"
    "  updated_at INTEGER);"
    "CREATE INDEX choreo_dead_status ON choreo_dead(status, id);",
    /* 2: the audit trail (setting audit=on), for proving delivery under chaos. */
    "CREATE TABLE choreo_audit_emitted ("
    "  event_id TEXT PRIMARY KEY,"
    "  type TEXT NOT NULL,"
    "  saga TEXT NOT NULL,"
    "  emitted_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE choreo_audit_applied ("
    "  consumer TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  saga TEXT NOT NULL,"
    "  applied_at INTEGER NOT NULL);"
    "CREATE INDEX choreo_audit_applied_event ON choreo_audit_applied(event_id, consumer);",
    /* 3: indexes so that the relay finds due delayed rows, and pruning finds
     * old barrier rows, without reading every row of their table. */
    "CREATE INDEX choreo_outbox_due ON choreo_outbox(publish_at, published_at)"
    "  WHERE published_at IS NULL;" /* published_at: covering for COUNT and MIN */
    "CREATE INDEX choreo_barrier_age ON choreo_barrier(created_at);",
    /* 4: the event handlers the service's code registered when it last
     * started, so that choreoctl can tell them from stale consumers. */
    "CREATE TABLE choreo_consumers ("
    "  consumer TEXT PRIMARY KEY,"
    "  service TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  subjects TEXT NOT NULL,"
    "  stream TEXT NOT NULL,"
    "  registered_at INTEGER NOT NULL);",
    /* 5: orchestrated sagas owned by the service: each instance's state,
     * and every transition it went through. */
    "CREATE TABLE choreo_saga_instances ("
    "  saga TEXT PRIMARY KEY,"
    "  definition TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  phase TEXT NOT NULL,"
    "  pos INTEGER NOT NULL,"          /* the stage it runs or confirms, or the step it compensates */
    "  steps TEXT NOT NULL,"           /* one status letter per step */
    "  epoch INTEGER NOT NULL,"        /* the wait its timeout belongs to */
    "  waiting TEXT NOT NULL DEFAULT '',"  /* what it waits for, in words */
    "  failed_step TEXT NOT NULL DEFAULT '',"
    "  timed_out INTEGER NOT NULL DEFAULT 0,"
    "  failure_type TEXT NOT NULL DEFAULT '',"
    "  failure_data BLOB,"
    "  data BLOB NOT NULL,"
    "  started_at INTEGER NOT NULL,"   /* unix milliseconds */
    "  updated_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX choreo_saga_instances_phase ON choreo_saga_instances(phase, updated_at);"
    "CREATE TABLE choreo_saga_transitions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  saga TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  event_type TEXT NOT NULL,"
    "  from_state TEXT NOT NULL,"
    "  to_state TEXT NOT NULL,"
    "  note TEXT NOT NULL);"
    "CREATE INDEX choreo_saga_transitions_saga ON choreo_saga_transitions(saga, id);",
    /* 6: steps held for a person's decision. */
    "CREATE TABLE choreo_holds ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  saga TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"          /* where the decision event goes */
    "  event_id TEXT NOT NULL,"
    "  event_type TEXT NOT NULL,"
    "  data BLOB,"
    "  held_at INTEGER NOT NULL,"       /* unix milliseconds */
    "  expires_at INTEGER NOT NULL,"    /* 0: never */
    "  state TEXT NOT NULL,"            /* held, approved, rejected, expired */
    "  decided_at INTEGER NOT NULL DEFAULT 0,"
    "  decided_by TEXT NOT NULL DEFAULT '',"
    "  note TEXT NOT NULL DEFAULT '',"
    "  applied INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX choreo_holds_saga ON choreo_holds(saga, kind);"
    "CREATE INDEX choreo_holds_state ON choreo_holds(state, id);",
    /* 7: the highest delivery of an event on which its handler ran and asked
     * for a retry, kept until the event is applied or parked, so that a
     * delivery count the server sends lower than before (nats-server before
     * 2.10.14 can restart it at 1) does not give the handler more runs. */
    "CREATE TABLE choreo_retries ("
    "  consumer TEXT NOT NULL,"
    "  event_id TEXT NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"          /* unix milliseconds */
    "  PRIMARY KEY (consumer, event_id)) WITHOUT ROWID;"
    "CREATE INDEX choreo_retries_age ON choreo_retries(at);",
    /* 8: finding whether an event is parked for a consumer, which the inbox
     * mark of every fresh delivery asks. */
    "CREATE INDEX choreo_dead_event ON choreo_dead(event_id, consumer);",
    /* 9: the database's identity, one random number written with the table
     * (choreo__store_identity_sql), to which the service binds its durable
     * consumers: a copy of the service on another database is refused. */
    "CREATE TABLE choreo_identity ("
    "  id INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL);", /* unix milliseconds */
    /* 10: why the handler last asked for a retry, which a park on the
     * max_deliver-th delivery (where the handler does not run) repeats. */
    "ALTER TABLE choreo_retries ADD COLUMN reason TEXT NOT NULL DEFAULT '';",
    /* 11: a digest of each applied event's type, saga and data, so that an
     * event that reuses an applied one's id with other content is parked
     * rather than dropped as a duplicate (NULL on marks written before). */
    "ALTER TABLE choreo_inbox ADD COLUMN digest INTEGER;",
};

#define NMIGRATIONS (int)(sizeof migrations / sizeof migrations[0])
_Static_assert(NMIGRATIONS == CHOREO_SCHEMA_VERSION,
               "CHOREO_SCHEMA_VERSION must be the number of migrations");

const char *const *choreo__store_migrations(int *n)
{
    *n = NMIGRATIONS;
    return migrations;
}


struct choreo_q {
    choreo_store *st;
    sqlite3_stmt *s;        /* SQLite */
    struct choreo_pgq *pq;  /* PostgreSQL */
};

bool choreo__store_is_postgres(const char *db)
{
    return db && (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0);
}

choreo_status choreo__store_error(choreo_store *st, int rc, const char *what)
{
    const char *msg;
    if (st && st->engine == ENGINE_POSTGRES)
        msg = choreo__pg_errmsg(st);
    else
        msg = st && st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);
    const char *engine = st && st->engine == ENGINE_POSTGRES ? "PostgreSQL" : "SQLite";
    int primary = rc & 0xff;
    if ((primary == SQLITE_BUSY || primary == SQLITE_LOCKED) && st &&
        st->engine == ENGINE_POSTGRES)
        return choreo__fail(CHOREO_EBUSY,
                            "%s: %s; another instance's transaction holds the rows (waits "
                            "longer than lock_timeout_ms give up, and the event is retried)",
                            what, msg);
    if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        return choreo__fail(CHOREO_EBUSY,
                            "%s: the database stayed locked (%s); another process holds a "
                            "write lock, or raise busy_timeout_ms",
                            what, msg);
    if (primary == SQLITE_FULL)
        return choreo__fail(CHOREO_ESTORE, "%s: the disk is full (%s); free space and retry",
                            what, msg);
    if (primary == SQLITE_NOMEM)
        return choreo__fail(CHOREO_ENOMEM, "%s: %s is out of memory", what, engine);
    if (st && st->engine == ENGINE_POSTGRES) /* rc is the SQLite-style code choreo maps it to */
        return choreo__fail(CHOREO_ESTORE, "%s: %s%s", what, msg,
                            strstr(msg, "permission denied")
                                ? "; the database user lacks a privilege choreo needs: grant it "
                                  "(GRANT CREATE ON SCHEMA public TO the user, for choreo's "
                                  "tables), or make the user the database's owner"
                                : "");
    if (primary == SQLITE_READONLY)
        return choreo__fail(CHOREO_ESTORE,
                            "%s: %s (%s code %d); this process may not write the database "
                            "file, its -wal and -shm files or their directory: run it as the "
                            "user the service runs as",
                            what, msg, engine, rc);
    return choreo__fail(CHOREO_ESTORE, "%s: %s (%s code %d)", what, msg, engine, rc);
}

choreo_status choreo__store_exec(choreo_store *st, const char *sql)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_exec(st, sql, sql);
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return choreo__store_error(st, rc, sql);
    return CHOREO_OK;
}

static choreo_status user_version(choreo_store *st, int *out)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return choreo__store_error(st, rc, "reading the schema version");
    rc = sqlite3_step(s);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? CHOREO_OK : choreo__store_error(st, rc, "reading the schema version");
}

static choreo_status migrate(choreo_store *st, const char *path)
{
    choreo_status s = choreo__store_begin(st);
    if (s != CHOREO_OK)
        return s;
    int v;
    s = user_version(st, &v);
    if (s == CHOREO_OK && v > NMIGRATIONS)
        s = choreo__fail(CHOREO_ESTORE,
                         "database %s has choreo schema version %d, newer than this build's %d: "
                         "run a newer choreo against it",
                         path, v, NMIGRATIONS);
    for (; s == CHOREO_OK && v < NMIGRATIONS; v++) {
        s = choreo__store_exec(st, migrations[v]);
        if (s == CHOREO_OK && v + 1 == CHOREO_SCHEMA_IDENTITY) {
            char identity[160];
            choreo__store_identity_sql(identity, sizeof identity);
            s = choreo__store_exec(st, identity);
        }
        if (s == CHOREO_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
            s = choreo__store_exec(st, sql);
        }
    }
    if (s != CHOREO_OK) {
        choreo__store_rollback(st);
        return s;
    }
    return choreo__store_commit(st);
}

/* Waits for another connection's write lock (the relay's marks against the
 * dispatcher's batch, in one process) in steps of 100 us for the first 5 ms,
 * then 1 ms, up to busy_ms. SQLite's own busy timeout sleeps 1, 2, 5, 10 ms
 * and more between tries, and a batch that finds the lock taken would wait
 * that long for a mark that takes a fraction of a millisecond. */
static int wait_for_lock(void *arg, int tries)
{
    choreo_store *st = arg;
    int64_t now = choreo__mono_us();
    if (tries == 0)
        st->busy_since_us = now;
    int64_t waited = now - st->busy_since_us;
    if (waited >= (int64_t)st->busy_ms * 1000)
        return 0;
    struct timespec ts = { 0, waited < 5000 ? 100000L : 1000000L };
    nanosleep(&ts, NULL);
    return 1;
}

static choreo_status open_sqlite(choreo_store *st, const char *path, const char *synchronous,
                                 int busy_timeout_ms)
{
    /* A new database is readable by its owner only: it holds the business
     * rows and every event. SQLite gives its -wal and -shm files the same
     * mode. An existing file keeps the mode it has. */
    if (path[0] != '\0' && path[0] != ':' && strncmp(path, "file:", 5) != 0) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    /* A connection that syncs every commit writes its WAL frames in one
     * write per commit (walvfs.c). */
    bool syncs = strcmp(synchronous, "full") == 0 || strcmp(synchronous, "extra") == 0;
    int rc = sqlite3_open_v2(path, &st->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             syncs && choreo__walvfs_ready() ? CHOREO_WAL_VFS : NULL);
    if (rc != SQLITE_OK)
        return choreo__fail(CHOREO_ESTORE, "cannot open database %s: %s; %s", path,
                            st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc),
                            choreo__store_open_hint(path));
    st->busy_ms = busy_timeout_ms;
    sqlite3_busy_handler(st->db, wait_for_lock, st);
    /* temp_store=MEMORY keeps the savepoint journal in memory: on disk
     * (SQLite's default once a savepoint's pages pass 64 KiB) a batch made
     * a temporary file and wrote every page its messages changed into it,
     * hundreds of writes per commit. */
    char sql[160];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA temp_store=MEMORY;",
             synchronous);
    choreo_status s = choreo__store_exec(st, sql);
    if (s != CHOREO_OK)
        return choreo__fail(s, "cannot set up database %s: %s; %s", path, choreo_last_error(),
                            choreo__store_open_hint(path));
    return migrate(st, path);
}

choreo_status choreo__store_open(choreo_store **out, const char *path, const char *synchronous,
                                 int busy_timeout_ms)
{
    return choreo__store_open_wait(out, path, synchronous, busy_timeout_ms, 0, 0);
}

choreo_status choreo__store_open_wait(choreo_store **out, const char *path,
                                      const char *synchronous, int busy_timeout_ms, int wait_ms,
                                      int idle_tx_ms)
{
    choreo_store *st = calloc(1, sizeof *st);
    if (!st)
        return choreo__fail(CHOREO_ENOMEM, "out of memory opening %s", path);
    choreo_status s;
    if (choreo__store_is_postgres(path)) {
        st->engine = ENGINE_POSTGRES;
        s = choreo__pg_open(st, path, synchronous, busy_timeout_ms, wait_ms, idle_tx_ms);
    } else {
        s = open_sqlite(st, path, synchronous, busy_timeout_ms);
    }
    if (s != CHOREO_OK) {
        choreo__store_close(st);
        return s;
    }
    *out = st;
    return CHOREO_OK;
}

const char *choreo__store_open_hint(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, F_OK) != 0)
        return "its directory does not exist: create it, or fix the path";
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return "that is a directory: give the database file's path";
    if (access(path, F_OK) == 0 && access(path, R_OK | W_OK) != 0)
        return "this user may not read and write the file: run as the service's user, or "
               "fix its permissions";
    if (access(dir, W_OK | X_OK) != 0)
        return "this user may not write its directory, where SQLite keeps the file's -wal "
               "and -shm files: run as the service's user, or fix the directory's permissions";
    return "check that the path names a SQLite database file this user may write";
}

/* A SQLite file opened read-only: no WAL switch, no migration. */
static choreo_status open_sqlite_readonly(choreo_store *st, const char *path, int busy_timeout_ms,
                                          int *version)
{
    int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return choreo__fail(CHOREO_ESTORE, "cannot open database %s: %s; %s", path,
                            st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc),
                            access(path, F_OK) == 0 && access(path, R_OK) != 0
                                ? "this user may not read the file: run as the service's "
                                  "user, or fix its permissions"
                                : "check that it is the service's SQLite file");
    sqlite3_busy_timeout(st->db, busy_timeout_ms);
    choreo_status s = user_version(st, version);
    if (s != CHOREO_OK)
        return choreo__fail(s, "cannot read database %s: %s", path, choreo_last_error());
    return CHOREO_OK;
}

choreo_status choreo__store_open_readonly(choreo_store **out, const char *path,
                                          int busy_timeout_ms, int *version)
{
    choreo_store *st = calloc(1, sizeof *st);
    if (!st)
        return choreo__fail(CHOREO_ENOMEM, "out of memory opening a database");
    int v = 0;
    choreo_status s;
    if (choreo__store_is_postgres(path)) {
        st->engine = ENGINE_POSTGRES;
        s = choreo__pg_open_readonly(st, path, busy_timeout_ms, &v);
    } else {
        s = open_sqlite_readonly(st, path, busy_timeout_ms, &v);
    }
    if (s != CHOREO_OK) {
        choreo__store_close(st);
        return s;
    }
    *out = st;
    *version = v;
    return CHOREO_OK;
}

/* Copies up to n bytes of src into out (cap bytes), NUL-terminated. */
static void copy_cut(char *out, size_t cap, size_t *used, const char *src, size_t n)
{
    size_t room = cap - 1 - *used;
    if (n > room)
        n = room;
    memcpy(out + *used, src, n);
    *used += n;
    out[*used] = '\0';
}

const char *choreo__store_last_failure(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_conn_error(st);
    int rc = sqlite3_errcode(st->db);
    return rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE ? NULL : sqlite3_errmsg(st->db);
}

void choreo__store_display(const char *db, char *out, size_t cap)
{
    if (!cap)
        return;
    out[0] = '\0';
    if (!db)
        return;
    if (!choreo__store_is_postgres(db)) {
        /* A URL of a mistyped scheme (postgressql://, POSTGRESQL://) is a
         * path to SQLite, and may carry a user and password: everything
         * between the scheme and the last @ is hidden. */
        const char *sep = strstr(db, ":/"), *at = strrchr(db, '@');
        if (sep && at && at > sep) {
            size_t keep = (size_t)(sep - db) + 1 + strspn(sep + 1, "/");
            snprintf(out, cap, "%.*s***%s", (int)keep, db, at);
        } else {
            snprintf(out, cap, "%s", db);
        }
        return;
    }
    /* scheme://[user[:password]@]host[:port][/dbname][?parameters]; the
     * last @ ends the user and password, which may hold a / or a ? that
     * was not percent-encoded. */
    const char *rest = strstr(db, "://") + 3;
    const char *at = strrchr(rest, '@');
    const char *host = at ? at + 1 : rest;
    size_t authority = (size_t)(host - rest) + strcspn(host, "/?");
    const char *dbname = rest + authority;
    size_t used = 0;
    copy_cut(out, cap, &used, "postgresql://", 13);
    copy_cut(out, cap, &used, host, (size_t)(rest + authority - host));
    if (*dbname == '/')
        copy_cut(out, cap, &used, dbname, strcspn(dbname, "?"));
}

void choreo__store_close(choreo_store *st)
{
    if (!st)
        return;
    for (int i = 0; i < STMT_COUNT; i++)
        choreo__q_finalize(st->stmt[i]);
    for (int i = 0; i < st->nuser; i++) {
        sqlite3_finalize(st->user[i].s);
        free(st->user[i].sql);
    }
    free(st->user);
    if (st->engine == ENGINE_POSTGRES)
        choreo__pg_close(st);
    else
        sqlite3_close(st->db);
    free(st);
}

static int q_new(choreo_store *st, const char *sql, bool persistent, choreo_q **out)
{
    choreo_q *q = calloc(1, sizeof *q);
    if (!q)
        return SQLITE_NOMEM;
    q->st = st;
    int rc;
    if (st->engine == ENGINE_POSTGRES) {
        rc = choreo__pg_prepare(st, sql, persistent, &q->pq);
    } else {
        rc = sqlite3_prepare_v3(st->db, sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0,
                                &q->s, NULL);
    }
    if (rc != SQLITE_OK) {
        choreo__q_finalize(q);
        return rc;
    }
    *out = q;
    return SQLITE_OK;
}

int choreo__q_prepare(choreo_store *st, const char *sql, choreo_q **out)
{
    *out = NULL;
    return q_new(st, sql, false, out);
}

void choreo__q_finalize(choreo_q *q)
{
    if (!q)
        return;
    if (q->pq)
        choreo__pg_finalize(q->pq);
    sqlite3_finalize(q->s);
    free(q);
}

void choreo__q_reset(choreo_q *q)
{
    if (q->s)
        sqlite3_reset(q->s);
    else
        choreo__pg_reset(q->pq);
}

choreo_q *choreo__store_stmt(choreo_store *st, enum choreo_stmt id, const char *sql)
{
    choreo_q *q = st->stmt[id];
    if (q) {
        if (q->s) {
            sqlite3_reset(q->s);
            sqlite3_clear_bindings(q->s);
        } else {
            choreo__pg_reset(q->pq);
            choreo__pg_clear_bindings(q->pq);
        }
        return q;
    }
    int rc = q_new(st, sql, true, &q);
    if (rc != SQLITE_OK) {
        choreo__store_error(st, rc, "preparing a statement");
        return NULL;
    }
    st->stmt[id] = q;
    return q;
}

void choreo__q_bind_int64(choreo_q *q, int i, int64_t v)
{
    if (q->s)
        sqlite3_bind_int64(q->s, i, v);
    else
        choreo__pg_bind_int64(q->pq, i, v);
}

void choreo__q_bind_int(choreo_q *q, int i, int v)
{
    choreo__q_bind_int64(q, i, v);
}

void choreo__q_bind_text(choreo_q *q, int i, const char *v, int n)
{
    if (q->s)
        sqlite3_bind_text(q->s, i, v, n, SQLITE_STATIC);
    else
        choreo__pg_bind(q->pq, i, v, n < 0 && v ? (int)strlen(v) : n, false);
}

void choreo__q_bind_blob(choreo_q *q, int i, const void *v, int n)
{
    if (q->s)
        sqlite3_bind_blob(q->s, i, v, n, SQLITE_STATIC);
    else
        choreo__pg_bind(q->pq, i, v, n, true);
}

void choreo__q_bind_null(choreo_q *q, int i)
{
    if (q->s)
        sqlite3_bind_null(q->s, i);
    else
        choreo__pg_bind(q->pq, i, NULL, 0, false);
}

int choreo__q_step(choreo_q *q)
{
    return q->s ? sqlite3_step(q->s) : choreo__pg_step(q->pq);
}

int64_t choreo__q_int64(choreo_q *q, int col)
{
    return q->s ? sqlite3_column_int64(q->s, col) : choreo__pg_int64(q->pq, col);
}

int choreo__q_int(choreo_q *q, int col)
{
    return (int)choreo__q_int64(q, col);
}

const unsigned char *choreo__q_text(choreo_q *q, int col)
{
    return q->s ? sqlite3_column_text(q->s, col)
                : (const unsigned char *)choreo__pg_value(q->pq, col, NULL);
}

const void *choreo__q_blob(choreo_q *q, int col)
{
    return q->s ? sqlite3_column_blob(q->s, col) : choreo__pg_value(q->pq, col, NULL);
}

int choreo__q_bytes(choreo_q *q, int col)
{
    if (q->s)
        return sqlite3_column_bytes(q->s, col);
    int n = 0;
    choreo__pg_value(q->pq, col, &n);
    return n;
}

bool choreo__q_is_null(choreo_q *q, int col)
{
    return q->s ? sqlite3_column_type(q->s, col) == SQLITE_NULL : choreo__pg_is_null(q->pq, col);
}

int64_t choreo__store_changes(choreo_store *st)
{
    return st->engine == ENGINE_POSTGRES ? choreo__pg_changes(st) : sqlite3_changes(st->db);
}

static choreo_status step_done(choreo_store *st, enum choreo_stmt id, const char *sql,
                               const char *what)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_exec(st, sql, what);
    choreo_q *q = choreo__store_stmt(st, id, sql);
    if (!q)
        return CHOREO_ESTORE;
    int rc = sqlite3_step(q->s);
    sqlite3_reset(q->s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, what);
}

void choreo__store_identity_sql(char *out, size_t cap)
{
    uint64_t id = 0;
    while (id == 0) {
        choreo__random_fill(&id, sizeof id);
        id &= INT64_MAX;
    }
    snprintf(out, cap, "INSERT INTO choreo_identity(id, created_at) VALUES (%lld, %lld)",
             (long long)id, (long long)choreo__now_ms());
}

choreo_status choreo__store_identity(choreo_store *st, int64_t *out)
{
    choreo_q *q = choreo__store_stmt(st, STMT_IDENTITY, "SELECT id FROM choreo_identity");
    if (!q)
        return CHOREO_ESTORE;
    int rc = choreo__q_step(q);
    *out = rc == SQLITE_ROW ? choreo__q_int64(q, 0) : 0;
    choreo__q_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return choreo__store_error(st, rc, "reading the database's identity");
    if (*out <= 0)
        return choreo__fail(CHOREO_ESTATE, "the database has no identity in choreo_identity: "
                                           "was the row deleted? Restore it from a backup");
    return CHOREO_OK;
}

/* The slot for a new text: a free one, else one not lent in this
 * transaction (its statement finalized), else a new one; -1 when out of
 * memory. */
static int user_slot(choreo_store *st)
{
    if (st->nuser >= CHOREO_USER_STMT_KEEP) {
        for (int i = 0; i < st->nuser; i++) {
            struct choreo_user_stmt *u = &st->user[i];
            if (!u->lent) {
                sqlite3_finalize(u->s);
                free(u->sql);
                return i;
            }
        }
    }
    if (st->nuser == st->user_cap) {
        int cap = st->user_cap ? st->user_cap * 2 : 8;
        struct choreo_user_stmt *v = realloc(st->user, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        st->user = v;
        st->user_cap = cap;
    }
    return st->nuser++;
}

choreo_status choreo__store_user_stmt(choreo_store *st, const char *sql, sqlite3_stmt **out)
{
    size_t len = strlen(sql);
    for (int i = 0; i < st->nuser; i++) {
        struct choreo_user_stmt *u = &st->user[i];
        if (u->len == len && memcmp(u->sql, sql, len) == 0) {
            sqlite3_reset(u->s);
            sqlite3_clear_bindings(u->s);
            if (!u->lent) {
                u->lent = true;
                st->nlent++;
            }
            *out = u->s;
            return CHOREO_OK;
        }
    }
    sqlite3_stmt *s = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(st->db, sql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &s, &tail);
    if (rc != SQLITE_OK)
        return choreo__fail(rc == SQLITE_NOMEM ? CHOREO_ENOMEM : CHOREO_EINVAL,
                            "choreo_tx_prepare: SQLite cannot prepare \"%.200s\": %s",
                            sql, sqlite3_errmsg(st->db));
    if (!s || (tail && tail[strspn(tail, " \t\r\n;")] != '\0')) {
        sqlite3_finalize(s);
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_prepare: \"%.200s\" must hold exactly one SQL statement",
                            sql);
    }
    char *copy = malloc(len + 1);
    int i = copy ? user_slot(st) : -1;
    if (i < 0) {
        free(copy);
        sqlite3_finalize(s);
        return choreo__fail(CHOREO_ENOMEM, "choreo_tx_prepare: out of memory");
    }
    memcpy(copy, sql, len + 1);
    st->user[i] = (struct choreo_user_stmt){ .sql = copy, .len = len, .s = s, .lent = true };
    st->nlent++;
    *out = s;
    return CHOREO_OK;
}

void choreo__store_user_reset(choreo_store *st)
{
    for (int i = 0; i < st->nuser && st->nlent > 0; i++) {
        struct choreo_user_stmt *u = &st->user[i];
        if (u->lent) {
            sqlite3_reset(u->s);
            u->lent = false;
            st->nlent--;
        }
    }
}

choreo_status choreo__store_begin(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_begin(st);
    int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    return rc == SQLITE_OK ? CHOREO_OK : choreo__store_error(st, rc, "beginning a transaction");
}

choreo_status choreo__store_begin_read(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_begin_read(st);
    int rc = sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? CHOREO_OK
                           : choreo__store_error(st, rc, "beginning a read transaction");
}

choreo_status choreo__store_commit(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES)
        return choreo__pg_commit(st);
    choreo__store_user_reset(st);
    int rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return CHOREO_OK;
    choreo_status s = choreo__store_error(st, rc, "committing a transaction");
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return s;
}

void choreo__store_rollback(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES) {
        choreo__pg_rollback(st);
        return;
    }
    choreo__store_user_reset(st);
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

choreo_status choreo__store_patient(choreo_store *st)
{
    if (st->engine != ENGINE_POSTGRES)
        return CHOREO_OK;
    return choreo__pg_exec(st, "SET LOCAL lock_timeout = '60s'", "setting a lock wait");
}

bool choreo__store_retry_away(choreo_store *st, choreo_status s, int64_t until_us)
{
    if (s != CHOREO_ESTORE || st->engine != ENGINE_POSTGRES || !choreo__pg_away(st) ||
        choreo__mono_us() >= until_us)
        return false;
    choreo__sleep_ms(CHOREO_DB_RETRY_MS);
    return true;
}

choreo_status choreo__store_savepoint(choreo_store *st)
{
    return step_done(st, STMT_SAVEPOINT, "SAVEPOINT choreo_msg", "opening a savepoint");
}

choreo_status choreo__store_release(choreo_store *st)
{
    choreo__store_user_reset(st);
    return step_done(st, STMT_RELEASE, "RELEASE SAVEPOINT choreo_msg", "releasing a savepoint");
}

choreo_status choreo__store_rollback_to(choreo_store *st)
{
    choreo__store_user_reset(st);
    choreo_status s = step_done(st, STMT_ROLLBACK_TO, "ROLLBACK TO SAVEPOINT choreo_msg",
                                "rolling back a savepoint");
    if (s != CHOREO_OK)
        return s;
    return choreo__store_release(st);
}

choreo_status choreo__store_call_savepoint(choreo_store *st)
{
    return step_done(st, STMT_CALL_SAVEPOINT, "SAVEPOINT choreo_call", "opening a savepoint");
}

choreo_status choreo__store_call_release(choreo_store *st)
{
    return step_done(st, STMT_CALL_RELEASE, "RELEASE SAVEPOINT choreo_call",
                     "releasing a savepoint");
}

choreo_status choreo__store_call_rollback_to(choreo_store *st)
{
    choreo_status s = step_done(st, STMT_CALL_ROLLBACK_TO, "ROLLBACK TO SAVEPOINT choreo_call",
                                "rolling back a savepoint");
    return s == CHOREO_OK ? choreo__store_call_release(st) : s;
}

choreo_status choreo__store_counts(choreo_store *st, enum choreo_stmt id, const char *sql,
                                   const int64_t *arg,
                                   void (*fn)(const char *a, const char *b, int64_t count,
                                              void *user),
                                   void *user, const char *what)
{
    choreo_q *s = choreo__store_stmt(st, id, sql);
    if (!s)
        return CHOREO_ESTORE;
    if (arg)
        choreo__q_bind_int64(s, 1, *arg);
    int rc;
    while ((rc = choreo__q_step(s)) == SQLITE_ROW) {
        const unsigned char *a = choreo__q_text(s, 0), *b = choreo__q_text(s, 1);
        fn(a ? (const char *)a : "", b ? (const char *)b : "", choreo__q_int64(s, 2), user);
    }
    choreo__q_reset(s);
    return rc == SQLITE_DONE ? CHOREO_OK : choreo__store_error(st, rc, what);
}

choreo_status choreo__store_try_lock(choreo_store *st, int64_t key, bool *got)
{
    *got = false;
    if (st->engine != ENGINE_POSTGRES)
        return choreo__fail(CHOREO_EINVAL, "advisory locks need the PostgreSQL store");
    return choreo__pg_try_lock(st, key, got);
}

choreo_status choreo__store_xact_lock(choreo_store *st, int64_t key, const char *what)
{
    if (st->engine != ENGINE_POSTGRES)
        return CHOREO_OK;
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", (long long)key);
    return choreo__pg_exec(st, sql, what);
}

choreo_status choreo__store_idle_limit(choreo_store *st, int64_t ms, bool *supported)
{
    *supported = false;
    if (st->engine != ENGINE_POSTGRES)
        return choreo__fail(CHOREO_EINVAL, "an idle limit needs the PostgreSQL store");
    return choreo__pg_idle_limit(st, ms, supported);
}

choreo_status choreo__store_listen(choreo_store *st, const char *channel)
{
    if (st->engine != ENGINE_POSTGRES)
        return choreo__fail(CHOREO_EINVAL, "LISTEN needs the PostgreSQL store");
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    return choreo__pg_exec(st, sql, "listening for outbox commits");
}

int choreo__store_socket(choreo_store *st)
{
    return st->engine == ENGINE_POSTGRES ? choreo__pg_socket(st) : -1;
}

bool choreo__store_notified(choreo_store *st)
{
    return st->engine == ENGINE_POSTGRES && choreo__pg_notified(st);
}

void choreo__store_note_outbox(choreo_store *st)
{
    if (st->engine == ENGINE_POSTGRES)
        choreo__pg_note_outbox(st);
}

sqlite3_stmt *choreo__q_sqlite(choreo_q *q)
{
    return q ? q->s : NULL;
}

int choreo__store_session(choreo_store *st)
{
    return st->engine == ENGINE_POSTGRES ? choreo__pg_session(st) : 0;
}

void *choreo__store_pgconn(choreo_store *st)
{
    return st && st->engine == ENGINE_POSTGRES ? choreo__pg_conn(st) : NULL;
}
