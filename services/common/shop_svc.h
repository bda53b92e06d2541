/* What the four shop services share: the main() of a service (settings from
 * CHOREO_* variables and flags, the saga style, business schema, a Ping
 * request for health checks, run until SIGINT or SIGTERM), a statement cache
 * for handler SQL, the outcome of a step, and logfmt lines in the same shape
 * as choreo's own. */
#ifndef SHOP_SVC_H
#define SHOP_SVC_H

#include <stdbool.h>
#include <stdint.h>

#include <choreo.h>

#include "shop_domain.h"

#define SHOP_STMTS_MAX 32

/* How long a shop program waits at exit for nats.c's threads to unwind. */
#define SHOP_NATS_CLOSE_WAIT_MS 2000

/* The connection of a transaction: SQLite (lite) or PostgreSQL (pg), as the
 * service's db setting says. The shop's SQL is written once, in the dialect
 * both accept, with ?N parameters; its DDL says INTEGER, which becomes
 * BIGINT on PostgreSQL. */
typedef struct shop_db {
    sqlite3 *lite;
    struct pg_conn *pg;
} shop_db;

shop_db shop_tx_db(choreo_tx *tx);

/* Whether this service's database is PostgreSQL (known once main parsed
 * its settings). */
bool shop_on_postgres(void);

/* Prepared statements of one connection, by index. A handler always runs on
 * the same dispatcher connection, so statements are prepared once and kept
 * (on PostgreSQL the statement text is kept, and a row's result).
 * Single-threaded: one cache per connection. */
typedef struct shop_stmts {
    sqlite3 *db;
    sqlite3_stmt *s[SHOP_STMTS_MAX];
    char *pg_sql[SHOP_STMTS_MAX];  /* ?N rewritten to $N */
    void *pg_res[SHOP_STMTS_MAX];  /* PGresult * of the row being read */
    int64_t changes;               /* rows the last statement changed */
} shop_stmts;

/* Binds the arguments described by fmt to statement idx (prepared from sql
 * on db the first time) and runs it. fmt has one letter per ?N parameter:
 * 't' a const char * (NULL binds NULL), 'i' an int64_t. Returns SQLITE_ROW
 * (read the first row with shop_sql_int / shop_sql_text, then call
 * shop_sql_reset), SQLITE_DONE (already reset), or an error code (logged;
 * on PostgreSQL also a deadlock with another instance: retry the event). */
int shop_sql(shop_stmts *c, shop_db db, int idx, const char *sql, const char *fmt, ...);

/* Column col of the row statement idx returned. */
int64_t shop_sql_int(shop_stmts *c, int idx, int col);
const char *shop_sql_text(shop_stmts *c, int idx, int col); /* "" for NULL */

/* Rows changed by the last statement shop_sql ran. */
int64_t shop_sql_changes(const shop_stmts *c);

/* Resets statement idx after its row has been read. */
void shop_sql_reset(shop_stmts *c, int idx);

/* Finalizes every statement; call before the service closes its database. */
void shop_stmts_clear(shop_stmts *c);

/* Runs a whole batch of DDL on db; returns SQLITE_OK or logs the error. */
int shop_sql_exec(shop_db db, const char *sql);

typedef enum shop_log_level { SHOP_ERROR, SHOP_WARN, SHOP_INFO, SHOP_DEBUG } shop_log_level;

/* One logfmt line on stderr:
 *   ts=... level=warn svc=inventory msg="..." <fields>
 * Lines above the service's log level are dropped before formatting. */
void shop_log(shop_log_level lvl, const char *msg, const char *fields_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Gives up on the event being handled: sets the reason (formatted, at most
 * 255 bytes) with choreo_tx_set_reason, so that choreo logs it and parks
 * the message with it for a person, and returns CHOREO_REJECT. For states
 * that should not exist, never for a business "no". */
choreo_result shop_reject(choreo_tx *tx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Unix time in microseconds. */
int64_t shop_now_us(void);

/* What every step of the saga needs to know of an order: the fields of
 * OrderCreated, which every command of the orchestrated and TCC styles
 * carries too. The strings are borrowed from the event being handled. */
typedef struct shop_order_ref {
    const char *order_id, *user_id, *product_id;
    int32_t qty;
    int64_t amount_cents, points;
} shop_order_ref;

/* The shop_order_ref of a decoded event or command v that has all six
 * fields (OrderCreated, StockReserved and every command). */
#define SHOP_ORDER_REF(v)                                                                   \
    ((shop_order_ref){ .order_id = (v)->order_id, .user_id = (v)->user_id,                  \
                       .product_id = (v)->product_id, .qty = (v)->qty,                      \
                       .amount_cents = (v)->amount_cents, .points = (v)->points })

/* What a participant's forward step decided. Each service keeps one
 * business function per step, used by every style; the handlers of a style
 * turn its outcome into that style's reply (or none). */
typedef enum shop_outcome {
    SHOP_OUT_DONE = 0,    /* the step was done */
    SHOP_OUT_REFUSED = 1, /* a business "no": out of stock, insufficient funds, ... */
    SHOP_OUT_SKIPPED = 2, /* the barrier skipped it: a repeat, or its compensation came
                             first */
    SHOP_OUT_HELD = 3,    /* payment only: frozen, and held until a person reviews it */
} shop_outcome;

/* A service's description for shop_service_main. */
typedef struct shop_service_def {
    /* Default service name; also the default database file "<name>.db". */
    const char *name;
    /* Business tables, as CREATE ... IF NOT EXISTS statements, created in
     * one transaction before the service starts. */
    const char *schema_sql;
    /* Help for the service's own flags, printed by --help. */
    const char *usage;
    /* The service's own flags, each taking a value, NULL-terminated; they
     * are declared to choreo_config_accept_flag. May be NULL. */
    const char *const *flags;
    /* Parses the service's own flag at argv[*i] (advancing *i past a
     * value). Returns 1 when consumed, 0 when unknown, -1 on a bad value
     * (after printing why). May be NULL. */
    int (*flag)(int argc, char **argv, int *i, void *user);
    /* Registers the service's handlers for the saga style chosen with
     * --style (choreography unless given). */
    choreo_status (*register_handlers)(choreo_service *svc, shop_style style, void *user);
    /* Called after the service stopped and before its database closes. */
    void (*cleanup)(void *user);
    void *user;
} shop_service_def;

/* The whole main() of a shop service, with the flags every service takes:
 * choreo's settings and --style choreography|orchestration|tcc. Returns the
 * process exit status: 0, 2 for a bad command line, 1 for any other
 * failure. */
int shop_service_main(const shop_service_def *def, int argc, char **argv);

/* The value of flag at argv[*i], given as "FLAG VALUE" (*i moves past it)
 * or "FLAG=VALUE": 1 with *value set, 0 when argv[*i] is another flag, -1
 * (said on stderr) when the value is missing. */
int shop_flag_value(const char *flag, int argc, char **argv, int *i, const char **value);

/* Parses a decimal int64 flag value in [min, max]; prints why on failure,
 * after the name given to shop_set_program. */
bool shop_parse_i64(const char *flag, const char *s, int64_t min, int64_t max, int64_t *out);

/* The program's name ("shop-demo"), which shop_parse_i64's messages start
 * with; shop_service_main sets it for a service. Copied. */
void shop_set_program(const char *name);

/* Whether value is one that the services take for choreo's flag (such as
 * --synchronous or --log-level), by choreo's own rules: a program that
 * passes the flag on to them checks it before starting anything. Prints
 * why not after prog. */
bool shop_setting_valid(const char *prog, const char *flag, const char *value);

#endif
