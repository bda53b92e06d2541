/* A service's database behind one set of functions: SQLite (a file, one
 * process) or PostgreSQL (db=postgresql://..., several processes). The
 * framework's SQL is written once, in the dialect both accept (?N
 * parameters, ON CONFLICT DO NOTHING, RETURNING); a statement is a choreo_q
 * whose functions mirror SQLite's and return SQLite's result codes
 * (SQLITE_ROW, SQLITE_DONE, SQLITE_CONSTRAINT, SQLITE_BUSY, ...) on both
 * engines. One store per thread. */
#ifndef CHOREO_STORE_H
#define CHOREO_STORE_H

#include <sqlite3.h>
#include <stdbool.h>

#include "choreo.h"
enum choreo_stmt {
    STMT_OUTBOX_INSERT,
    STMT_OUTBOX_DUE,
    STMT_OUTBOX_MARK,
    STMT_OUTBOX_FAILED,
    STMT_OUTBOX_NEXT_DUE,
    STMT_OUTBOX_PENDING,
    STMT_OUTBOX_DELETE,
    STMT_INBOX_MARK,
    STMT_INBOX_MARK_CHECK,
    STMT_INBOX_DIGEST,
    STMT_RETRY_KEEP,
    STMT_RETRY_FORGET,
    STMT_RETRY_REASON,
    STMT_DEAD_INSERT,
    STMT_DEAD_IS_PARKED,
    STMT_DEAD_FROM_OUTBOX,
    STMT_BARRIER_INSERT,
    STMT_PRUNE_OUTBOX,
    STMT_PRUNE_INBOX,
    STMT_PRUNE_RETRIES,
    STMT_PRUNE_BARRIER,
    STMT_AUDIT_EMITTED,
    STMT_AUDIT_APPLIED,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
    STMT_CALL_SAVEPOINT,
    STMT_CALL_RELEASE,
    STMT_CALL_ROLLBACK_TO,
    STMT_OUTBOX_BACKLOG,
    STMT_OUTBOX_DELAYED,
    STMT_DEAD_PARKED_COUNTS,
    STMT_BARRIER_HAS,
    STMT_SAGA_GET,
    STMT_SAGA_INSERT,
    STMT_SAGA_UPDATE,
    STMT_SAGA_TRANSITION,
    STMT_PRUNE_SAGA_TRANSITIONS,
    STMT_PRUNE_SAGAS,
    STMT_PRUNE_HOLDS,
    STMT_HOLD_INSERT,
    STMT_HOLD_DUPLICATE,
    STMT_HOLD_END,
    STMT_HOLD_GET,
    STMT_HOLD_APPLIED,
    STMT_HOLD_COUNTS,
    STMT_SAGAS_RUNNING,
    STMT_IDENTITY,
    STMT_COUNT
};

enum choreo_engine { ENGINE_SQLITE, ENGINE_POSTGRES };

typedef struct choreo_q choreo_q;
struct choreo_pg;

/* A statement prepared for choreo_tx_prepare. */
struct choreo_user_stmt {
    char *sql;
    size_t len;      /* strlen(sql) */
    sqlite3_stmt *s;
    bool lent;       /* handed out since the last end of a transaction or savepoint */
};

typedef struct choreo_store {
    enum choreo_engine engine;
    sqlite3 *db;            /* SQLite */
    struct choreo_pg *pg;   /* PostgreSQL */
    choreo_q *stmt[STMT_COUNT];
    int busy_ms;             /* SQLite: how long to wait for the write lock */
    int64_t busy_since_us;   /* when the current wait began */
    struct choreo_user_stmt *user; /* choreo_tx_prepare's statements */
    int nuser, user_cap, nlent;
} choreo_store;

/* The schema version this build migrates to. */
#define CHOREO_SCHEMA_VERSION 11
/* The versions that added the tables readers look for, so that a reader
 * of an older database knows which of them it has. */
#define CHOREO_SCHEMA_HANDLERS 4 /* choreo_consumers */
#define CHOREO_SCHEMA_SAGAS 5    /* choreo_saga_instances, choreo_saga_transitions */
#define CHOREO_SCHEMA_HOLDS 6    /* choreo_holds */
#define CHOREO_SCHEMA_IDENTITY 9 /* choreo_identity */

/* True when db names a PostgreSQL database (a postgresql:// or
 * postgres:// URL) rather than a SQLite file. */
bool choreo__store_is_postgres(const char *db);

/* What to check when a SQLite file cannot be opened at path: a missing
 * directory, a directory given as the file, permissions of the file or of
 * its directory (SQLite writes its -wal and -shm files there). */
const char *choreo__store_open_hint(const char *path);

/* Opens (creating if needed) the database: a SQLite file, with WAL,
 * busy_timeout and synchronous set, or a PostgreSQL URL (synchronous full
 * or extra: synchronous_commit on, otherwise off; busy_timeout_ms as the
 * lock_timeout). Migrates the framework tables. */
choreo_status choreo__store_open(choreo_store **out, const char *path, const char *synchronous,
                                 int busy_timeout_ms);
/* The same, waiting up to wait_ms for a PostgreSQL server that does not
 * answer yet or is starting, shutting down or recovering (a restart). With
 * idle_tx_ms > 0, the PostgreSQL server ends the session, rolling back its
 * transaction, once a transaction has waited that long for its next
 * statement (a frozen process holding row locks); a connection made again
 * keeps the limit. SQLite ignores it. */
choreo_status choreo__store_open_wait(choreo_store **out, const char *path,
                                      const char *synchronous, int busy_timeout_ms, int wait_ms,
                                      int idle_tx_ms);
void choreo__store_close(choreo_store *st);

/* The statement that gives a database its identity, run in the migration
 * that makes choreo_identity: a random number, which a service writes into
 * its durable consumers to bind them to this database. */
void choreo__store_identity_sql(char *out, size_t cap);
/* The database's identity (a positive number); CHOREO_ESTATE when its row
 * is missing. */
choreo_status choreo__store_identity(choreo_store *st, int64_t *out);

/* choreo_tx_prepare on a SQLite store: the statement of sql, prepared on
 * st's connection at its first use and kept (up to CHOREO_USER_STMT_KEEP
 * texts), reset with its bindings cleared. */
choreo_status choreo__store_user_stmt(choreo_store *st, const char *sql, sqlite3_stmt **out);
/* Resets the statements lent since the last call: at every end of a
 * transaction or of an event's savepoint, so that a SELECT left unfinished
 * holds no read open. */
void choreo__store_user_reset(choreo_store *st);

/* Opens an existing database to read it only: nothing is created, migrated
 * or written (a SQLite file is opened read-only; a PostgreSQL session's
 * transactions are read-only), so a service of any choreo version keeps
 * running on it undisturbed. *version gets its choreo schema version, 0
 * when it holds none of choreo's tables. */
choreo_status choreo__store_open_readonly(choreo_store **out, const char *path,
                                          int busy_timeout_ms, int *version);

/* Writes db as a person may see it: a SQLite path as it is, a PostgreSQL
 * URL as postgresql://host:port/dbname, without its user, password or
 * parameters. out (cap > 0 bytes) is cut to fit. */
void choreo__store_display(const char *db, char *out, size_t cap);

/* The cached statement `id`, prepared from sql on first use, reset and with
 * its bindings cleared. NULL on a prepare failure (detail recorded). */
choreo_q *choreo__store_stmt(choreo_store *st, enum choreo_stmt id, const char *sql);

/* A statement used once: prepare, bind, step, then finalize. Returns
 * SQLITE_OK or the error code (detail in choreo__store_error). */
int choreo__q_prepare(choreo_store *st, const char *sql, choreo_q **out);
void choreo__q_finalize(choreo_q *q);
void choreo__q_reset(choreo_q *q);

/* Parameters, numbered from 1. Text and blobs must stay valid until the
 * statement is stepped; n < 0 means a NUL-terminated text. */
void choreo__q_bind_int64(choreo_q *q, int i, int64_t v);
void choreo__q_bind_int(choreo_q *q, int i, int v);
void choreo__q_bind_text(choreo_q *q, int i, const char *v, int n);
void choreo__q_bind_blob(choreo_q *q, int i, const void *v, int n);
void choreo__q_bind_null(choreo_q *q, int i);

/* SQLITE_ROW while there are rows, then SQLITE_DONE, or an error code. */
int choreo__q_step(choreo_q *q);

/* Columns of the current row, numbered from 0. A NULL text is NULL. */
int64_t choreo__q_int64(choreo_q *q, int col);
int choreo__q_int(choreo_q *q, int col);
const unsigned char *choreo__q_text(choreo_q *q, int col);
const void *choreo__q_blob(choreo_q *q, int col);
int choreo__q_bytes(choreo_q *q, int col);
bool choreo__q_is_null(choreo_q *q, int col);

/* Rows changed by the last INSERT, UPDATE or DELETE on this store. */
int64_t choreo__store_changes(choreo_store *st);

/* Runs SQL without results (several statements allowed). */
choreo_status choreo__store_exec(choreo_store *st, const char *sql);

/* Maps a result code to a status, recording what failed and the engine's
 * own message. */
choreo_status choreo__store_error(choreo_store *st, int rc, const char *what);

/* The connection's last error, when its last call failed (a handler's own
 * statement that went wrong), else NULL. */
const char *choreo__store_last_failure(choreo_store *st);

/* Runs sql (cached as statement id), whose rows are (text, text, count),
 * with *arg as ?1 unless arg is NULL, and calls fn for each row (NULL
 * texts as ""); what names the query in an error. */
choreo_status choreo__store_counts(choreo_store *st, enum choreo_stmt id, const char *sql,
                                   const int64_t *arg,
                                   void (*fn)(const char *a, const char *b, int64_t count,
                                              void *user),
                                   void *user, const char *what);

/* BEGIN (IMMEDIATE on SQLite) / COMMIT / ROLLBACK. A PostgreSQL COMMIT
 * that the server turned into a rollback is a failure. */
choreo_status choreo__store_begin(choreo_store *st);
choreo_status choreo__store_commit(choreo_store *st);
void choreo__store_rollback(choreo_store *st);

/* A read transaction: the statements until choreo__store_rollback see one
 * state of the database, and it takes no write lock (SQLite's deferred
 * BEGIN; PostgreSQL's REPEATABLE READ READ ONLY). */
choreo_status choreo__store_begin_read(choreo_store *st);

/* Inside the open transaction, lets statements wait for locks up to 60 s
 * instead of lock_timeout_ms (PostgreSQL; nothing on SQLite): for the work
 * of a start (migrations, recording the handlers), which instances
 * starting together do at once and must not give up on. */
choreo_status choreo__store_patient(choreo_store *st);

/* After an operation on st failed with s: on PostgreSQL, where a server
 * that restarts drops the connection (the next statement makes it again),
 * waits CHOREO_DB_RETRY_MS and says to try again, until until_us. */
bool choreo__store_retry_away(choreo_store *st, choreo_status s, int64_t until_us);

/* Savepoints for one message inside a group commit. */
choreo_status choreo__store_savepoint(choreo_store *st);
choreo_status choreo__store_release(choreo_store *st);
choreo_status choreo__store_rollback_to(choreo_store *st);

/* A savepoint of one call into choreo that must leave nothing behind when
 * it fails (choreo_tx_saga_start), nested in whatever is open: a command's
 * transaction, or an event's savepoint. Unlike the event's, these leave the
 * program's prepared statements alone: its caller may be stepping one.
 * call_rollback_to also ends the savepoint, and on PostgreSQL makes a
 * transaction that a failed statement had aborted usable again. */
choreo_status choreo__store_call_savepoint(choreo_store *st);
choreo_status choreo__store_call_release(choreo_store *st);
choreo_status choreo__store_call_rollback_to(choreo_store *st);

/* PostgreSQL only (false or an error on SQLite): the session's advisory
 * lock `key` (held until released or the connection ends), LISTEN on a
 * channel, the socket to wait on for notifications, and draining them
 * (true when at least one arrived). A NOTIFY on the outbox channel is sent
 * by every commit whose transaction wrote outbox rows. */
#define CHOREO_PG_OUTBOX_CHANNEL "choreo_outbox"
/* The keys of choreo's advisory locks on a PostgreSQL database, all here so
 * that none is taken twice: migrating the schema, the active relay (a
 * session lock), recording which service the database belongs to, and
 * holding a step outside a handler (choreo__store_xact_lock). */
#define CHOREO_PG_LOCK_MIGRATION 0x63686f72656f00LL
#define CHOREO_PG_LOCK_RELAY 0x63686f72656f01LL
#define CHOREO_PG_LOCK_CONSUMERS 0x63686f72656f02LL
#define CHOREO_PG_LOCK_HOLDS 0x63686f72656f03LL
choreo_status choreo__store_try_lock(choreo_store *st, int64_t key, bool *got);
/* On PostgreSQL waits (up to the transaction's lock_timeout) for the
 * advisory lock `key`, held until the transaction ends: for a decision made
 * on a read that no row lock or key protects. Nothing on SQLite, whose
 * write transactions take turns from BEGIN on. */
choreo_status choreo__store_xact_lock(choreo_store *st, int64_t key, const char *what);
choreo_status choreo__store_listen(choreo_store *st, const char *channel);
/* PostgreSQL only: the server ends this session once it has been idle
 * outside a transaction for ms, freeing its locks; supported is false on a
 * server before 14, which has no such limit. */
choreo_status choreo__store_idle_limit(choreo_store *st, int64_t ms, bool *supported);
int choreo__store_socket(choreo_store *st);
bool choreo__store_notified(choreo_store *st);
/* Counts the store's connections to its server: it changes when a lost
 * PostgreSQL connection was made again, so that session state (locks,
 * LISTEN) must be set up again. Always 0 on SQLite. */
int choreo__store_session(choreo_store *st);
/* Asks the commit of the open transaction to notify the relays. */
void choreo__store_note_outbox(choreo_store *st);

/* The SQLite statement behind q (NULL on PostgreSQL), for tests that read
 * SQLite's own view of it. */
sqlite3_stmt *choreo__q_sqlite(choreo_q *q);

/* The libpq connection (PGconn *) of a PostgreSQL store, else NULL. */
void *choreo__store_pgconn(choreo_store *st);

#endif
