/* The PostgreSQL half of the store (store_pg.c), called only by store.c.
 * Built with libpq when the postgresql feature is enabled; without it,
 * opening a postgresql:// URL fails with an error that says so. */
#ifndef CHOREO_STORE_PG_H
#define CHOREO_STORE_PG_H

#include "store.h"

struct choreo_pgq;

choreo_status choreo__pg_open(choreo_store *st, const char *url, const char *synchronous,
                              int busy_timeout_ms, int wait_ms, int idle_tx_ms);
/* Connects without migrating; *version as choreo__store_open_readonly. */
choreo_status choreo__pg_open_readonly(choreo_store *st, const char *url, int busy_timeout_ms,
                                       int *version);
void choreo__pg_close(choreo_store *st);
const char *choreo__pg_errmsg(choreo_store *st);
/* The connection's own last error (a handler's statement on choreo_tx_pg),
 * NULL when there is none. */
const char *choreo__pg_conn_error(choreo_store *st);
/* Whether the last failure was the server's silence (a lost connection,
 * no answer), which waiting may mend, rather than its refusal. */
bool choreo__pg_away(choreo_store *st);
/* Runs SQL without results; what names it in an error. */
choreo_status choreo__pg_exec(choreo_store *st, const char *sql, const char *what);
choreo_status choreo__pg_begin(choreo_store *st);
choreo_status choreo__pg_begin_read(choreo_store *st);
choreo_status choreo__pg_commit(choreo_store *st);
void choreo__pg_rollback(choreo_store *st);
int64_t choreo__pg_changes(choreo_store *st);

int choreo__pg_prepare(choreo_store *st, const char *sql, bool persistent,
                       struct choreo_pgq **out);
void choreo__pg_finalize(struct choreo_pgq *q);
void choreo__pg_reset(struct choreo_pgq *q);
void choreo__pg_clear_bindings(struct choreo_pgq *q);
void choreo__pg_bind_int64(struct choreo_pgq *q, int i, int64_t v);
/* v NULL: SQL NULL. binary: a bytea parameter. */
void choreo__pg_bind(struct choreo_pgq *q, int i, const void *v, int n, bool binary);
int choreo__pg_step(struct choreo_pgq *q);
int64_t choreo__pg_int64(struct choreo_pgq *q, int col);
/* The column's bytes (bytea decoded), NULL for SQL NULL; *len if asked. */
const char *choreo__pg_value(struct choreo_pgq *q, int col, int *len);
bool choreo__pg_is_null(struct choreo_pgq *q, int col);

choreo_status choreo__pg_try_lock(choreo_store *st, int64_t key, bool *got);
choreo_status choreo__pg_idle_limit(choreo_store *st, int64_t ms, bool *supported);
int choreo__pg_socket(choreo_store *st);
bool choreo__pg_notified(choreo_store *st);
void choreo__pg_note_outbox(choreo_store *st);
void *choreo__pg_conn(choreo_store *st);
int choreo__pg_session(choreo_store *st);

/* The SQLite migrations, which the PostgreSQL store rewrites into its
 * dialect (store.c). */
const char *const *choreo__store_migrations(int *n);

#endif
