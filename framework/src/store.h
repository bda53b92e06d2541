/* One SQLite connection to a service's database, with its framework tables
 * migrated and its prepared statements cached. One store per thread. This is
 * the single place that knows the storage engine, so that another one
 * (PostgreSQL) can sit behind the same functions later. */
#ifndef CHOREO_STORE_H
#define CHOREO_STORE_H

#include <sqlite3.h>

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
    STMT_DEAD_INSERT,
    STMT_DEAD_IS_PARKED,
    STMT_DEAD_FROM_OUTBOX,
    STMT_BARRIER_INSERT,
    STMT_PRUNE_OUTBOX,
    STMT_PRUNE_INBOX,
    STMT_PRUNE_BARRIER,
    STMT_AUDIT_EMITTED,
    STMT_AUDIT_APPLIED,
    STMT_SAVEPOINT,
    STMT_RELEASE,
    STMT_ROLLBACK_TO,
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
    STMT_HOLD_INSERT,
    STMT_HOLD_END,
    STMT_HOLD_GET,
    STMT_HOLD_APPLIED,
    STMT_HOLD_COUNTS,
    STMT_SAGAS_RUNNING,
    STMT_COUNT
};

typedef struct choreo_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT];
} choreo_store;

/* The schema version this build migrates to (PRAGMA user_version). */
#define CHOREO_SCHEMA_VERSION 6

/* Opens (creating if needed) the database at path, sets WAL, busy_timeout
 * and synchronous, and migrates the framework tables. */
choreo_status choreo__store_open(choreo_store **out, const char *path, const char *synchronous,
                                 int busy_timeout_ms);
void choreo__store_close(choreo_store *st);

/* The cached statement `id`, prepared from sql on first use, reset and with
 * its bindings cleared. NULL on a prepare failure (detail recorded). */
sqlite3_stmt *choreo__store_stmt(choreo_store *st, enum choreo_stmt id, const char *sql);

/* Runs SQL without results. */
choreo_status choreo__store_exec(choreo_store *st, const char *sql);

/* Maps a SQLite result code to a status, recording what failed. */
choreo_status choreo__store_error(sqlite3 *db, int rc, const char *what);

/* Runs sql (cached as statement id), whose rows are (text, text, count),
 * and calls fn for each row (NULL texts as ""); what names the query in
 * an error. */
choreo_status choreo__store_counts(choreo_store *st, enum choreo_stmt id, const char *sql,
                                   void (*fn)(const char *a, const char *b, int64_t count,
                                              void *user),
                                   void *user, const char *what);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
choreo_status choreo__store_begin(choreo_store *st);
choreo_status choreo__store_commit(choreo_store *st);
void choreo__store_rollback(choreo_store *st);

/* Savepoints for one message inside a group commit. */
choreo_status choreo__store_savepoint(choreo_store *st);
choreo_status choreo__store_release(choreo_store *st);
choreo_status choreo__store_rollback_to(choreo_store *st);

#endif
