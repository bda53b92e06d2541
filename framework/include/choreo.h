/*
 * choreo: choreographed sagas over NATS JetStream, with a transactional outbox
 * and an idempotent inbox in each service's own SQLite database.
 *
 * This is the whole public surface of libchoreo. Conventions:
 * - Fallible functions return a choreo_status; CHOREO_OK is 0. On failure,
 *   choreo_last_error() on the same thread gives a sentence naming what failed
 *   and what to do about it.
 * - Out-parameters (T **out) are written only on success.
 * - create functions copy what they are given; destroy functions accept NULL.
 * - User code (handlers, request handlers) runs only on the service's
 *   dispatcher thread, never on a NATS library thread.
 *
 * Threads. A running service has one dispatcher thread, one fetch thread per
 * handled event type, one relay thread, the threads of nats.c, and under
 * choreo_service_run a signal watcher.
 * - User code (event handlers and request handlers) runs only on the
 *   dispatcher thread, one call at a time: handlers never run concurrently
 *   with each other. While one runs, every other message of the service
 *   waits, and its group commit holds the database's write lock, so command
 *   transactions on other threads wait for it too (up to busy_timeout_ms).
 * - nats.c callbacks never run user code: they only queue received
 *   messages, record PubAcks and log.
 * - Objects are single-threaded unless their comment says otherwise: a
 *   choreo_config, choreo_tx, choreo_admin, msgpack reader or writer is
 *   used by one thread at a time. A choreo_service is set up and started by
 *   one thread; once started, other threads may call only the functions
 *   documented as callable from any thread.
 * - Each function says which threads may call it ("any thread", "only
 *   before start", "only from a handler", "not from a handler") and what it
 *   may block on: SQLite's busy timeout (busy_timeout_ms), the command lock,
 *   NATS, or joining threads. A function that says nothing about blocking
 *   does not block.
 * - What choreo hands to a handler (the tx, the event and its data, a
 *   request body, the reply) is borrowed and valid only during that call.
 */
#ifndef CHOREO_H
#define CHOREO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CHOREO_API __attribute__((visibility("default")))
#define CHOREO_WUR __attribute__((warn_unused_result))
#else
#define CHOREO_API
#define CHOREO_WUR
#endif

/* ------------------------------------------------------------------------ */
/* Status codes. Append-only: values never change meaning.                  */

typedef enum choreo_status {
    CHOREO_OK = 0,
    CHOREO_EINVAL = 1,      /* an argument is invalid (NULL, bad name, ...) */
    CHOREO_ENOMEM = 2,      /* out of memory */
    CHOREO_ECONFIG = 3,     /* a configuration setting is missing or invalid */
    CHOREO_ESTORE = 4,      /* SQLite failed (I/O, corrupt, disk full, ...) */
    CHOREO_EBUSY = 5,       /* SQLite stayed locked past busy_timeout */
    CHOREO_ENATS = 6,       /* NATS or JetStream failed */
    CHOREO_EAUTH = 7,       /* NATS refused the credentials */
    CHOREO_ENOSERVER = 8,   /* no NATS server could be reached */
    CHOREO_ETOOBIG = 9,     /* a size limit was exceeded */
    CHOREO_EDECODE = 10,    /* malformed msgpack or envelope */
    CHOREO_ESTATE = 11,     /* call not allowed in the object's current state */
    CHOREO_ENOTFOUND = 12,  /* the named thing does not exist */
    CHOREO_ESTREAM = 13,    /* the stream exists with an incompatible setup, or another stream
                             * takes its subjects */
    CHOREO_ETIMEOUT = 14,   /* an operation did not finish in time */
    CHOREO_EDUPLICATE = 15, /* already registered / already exists */
    CHOREO_ELOCKED = 16,    /* another process runs this service (its database or consumers) */
    CHOREO_ETLS = 17,       /* the TLS handshake with NATS failed: the server's certificate
                               is not trusted by tls_ca, has expired or names another host,
                               the server refused the client certificate (tls_cert, tls_key)
                               or asked for one, or TLS is set but the server offers none.
                               Not retried: fix the certificates or the settings */
} choreo_status;

/* A short constant text for a status ("invalid argument"). Never NULL; a
 * static string, not to be freed. Any thread. */
CHOREO_API const char *choreo_status_str(choreo_status s);

/* Detail of the most recent failure of a choreo call on this thread: what
 * failed, with what, and what to do. Valid until the next failing call on
 * this thread. Never NULL (empty when nothing failed). Any thread: each
 * thread has its own text, owned by choreo; copy it to keep it. Read it
 * right after the call that failed: a later call on the same thread may
 * replace or clear it. */
CHOREO_API const char *choreo_last_error(void);

/* ------------------------------------------------------------------------ */
/* Logging: logfmt lines on stderr, e.g.
 *   ts=2026-11-24T10:00:00.123Z level=info svc=order msg="relay published" n=12 */

typedef enum choreo_log_level {
    CHOREO_LOG_ERROR = 0,
    CHOREO_LOG_WARN = 1,
    CHOREO_LOG_INFO = 2,
    CHOREO_LOG_DEBUG = 3,
} choreo_log_level;

/* ------------------------------------------------------------------------ */
/* Configuration. Settings are named by keys; the same key is accepted as a
 * command-line flag (--key-with-dashes VALUE or --key-with-dashes=VALUE) and
 * as an environment variable (CHOREO_KEY_IN_CAPS). Precedence when both are
 * applied in the usual order (env, then args): flags win.
 *
 * Keys (default in brackets):
 *   service            service name, [A-Za-z0-9_-]{1,32} (required)
 *   db                 path of the service's SQLite file (required)
 *   nats_url           comma-separated server URLs [nats://127.0.0.1:4222]
 *   stream             JetStream stream name [CHOREO]
 *   prefix             subject prefix [choreo]
 *   log_level          error|warn|info|debug [info]
 *   synchronous        SQLite synchronous: off|normal|full|extra [full]
 *   busy_timeout_ms    SQLite busy timeout [5000]
 *   nats_user, nats_password, nats_token, nats_creds
 *                      NATS credentials; the password and the token are
 *                      never logged, and choreo_config_get shows them as ***
 *   nats_nkey          the user's public nkey (U..., not secret), with
 *   nats_nkey_seed     the path of a file holding its seed (SU...); the
 *                      file is the secret, its content is never logged.
 *                      Both or neither; exclusive with nats_user,
 *                      nats_token and nats_creds
 *   tls_ca             PEM file of the CA that signed the server's
 *                      certificate; the server's certificate must also name
 *                      the host of nats_url (DNS name or IP address)
 *   tls_cert, tls_key  PEM client certificate and its key, for servers that
 *                      verify clients (both or neither). Any of the three
 *                      turns TLS on; a server that requires TLS gets it
 *                      anyway, checked against the system's CAs. The URL
 *                      stays nats://. Unreadable files fail at start with
 *                      CHOREO_ECONFIG, a failed handshake with CHOREO_ETLS
 *   connect_wait_ms    how long start waits for a first NATS connection;
 *                      0 waits until stopped [0]
 *   nats_ping_interval_ms  how often each NATS connection sends the server a
 *                      PING [5000]; after two without a PONG the connection
 *                      counts as lost and is made again (to another node of
 *                      a cluster): a server that hangs or a network that
 *                      drops its packets closes nothing, and is noticed
 *                      after two to three intervals
 *   max_deliver        deliveries of one message [10]; the handler runs on
 *                      at most max_deliver - 1 of them, the last one parks
 *                      the message without running it. choreo counts, not
 *                      the server: the consumers' MaxDeliver is unlimited
 *   ack_wait_ms        JetStream AckWait [30000]
 *   max_ack_pending    JetStream MaxAckPending [1000]
 *   batch_max          messages per group commit [256]
 *   max_event_bytes    largest envelope accepted or emitted [1048576]
 *   stream_max_age_s   stream max age when choreo creates it; 0 = none [604800]
 *   stream_dup_window_s  stream duplicate window [120]
 *   stream_replicas    stream replicas [1]
 *   relay_scan_ms      relay's fallback scan period [500]
 *   relay_lease_ms     PostgreSQL: the active relay's session silent this
 *                      long (its instance frozen) is ended by the server,
 *                      and another instance's relay takes over [10000]
 *   retry_base_ms      first RETRY redelivery delay [200]
 *   retry_cap_ms       longest RETRY redelivery delay [30000]; delays double
 *                      from the base up to the cap, with up to 25% jitter
 *   outbox_retention_s published outbox rows are deleted after this [86400]
 *   inbox_retention_s  inbox marks and barrier rows are deleted after this;
 *                      must outlive the real stream's max age, checked at
 *                      start [691200 = 8 days]
 *   prune_interval_s   how often old rows are pruned [60]
 *   nats_inbox_prefix  subject prefix of the service's reply inboxes
 *                      [_INBOX]; _INBOX_<service> with permissions that let
 *                      each user read only its own replies
 *   metrics_addr       host:port of an HTTP endpoint serving the service's
 *                      metrics in the Prometheus text format on /metrics,
 *                      such as 127.0.0.1:9464 ([::1]:9464 for IPv6) [unset:
 *                      no endpoint]. It is served by threads of its own from
 *                      start to wait and never makes a handler or the relay
 *                      wait; an address that cannot be bound fails start
 *                      with CHOREO_ECONFIG. The metrics are listed in the
 *                      README
 *   consumer_start     where a handler's new durable consumer starts: all
 *                      (every event still in the stream), new (events
 *                      published from then on) or an RFC 3339 time such as
 *                      2026-11-30T08:00:00Z [all]; an existing consumer
 *                      keeps its position
 */
typedef struct choreo_config choreo_config;

/* Creates a configuration holding the defaults; free it with
 * choreo_config_destroy. A configuration is a plain single-threaded object:
 * the functions below never block, and any thread may use it as long as one
 * thread at a time does (choreo_config_get included, although cfg is const
 * there). Services and admin handles copy it, so it may be destroyed once
 * they are created. */
CHOREO_API CHOREO_WUR choreo_status choreo_config_create(choreo_config **out);

/* Sets one key. Fails with CHOREO_ECONFIG naming the key and the accepted
 * values when the key is unknown or the value is invalid, and then leaves
 * the key unchanged. The value is copied. */
CHOREO_API CHOREO_WUR choreo_status choreo_config_set(choreo_config *cfg,
                                                      const char *key,
                                                      const char *value);

/* Applies every CHOREO_* environment variable. An unknown CHOREO_* variable is
 * an error (it is most likely a typo). On failure the variables read before
 * the bad one stay applied. It reads environ: do not call it while another
 * thread changes the environment (setenv, putenv). */
CHOREO_API CHOREO_WUR choreo_status choreo_config_from_env(choreo_config *cfg);

/* Applies command-line flags argv[1..argc-1] ("--key-name value" or
 * "--key-name=value"). Flags choreo knows are removed from argv and *argc is
 * updated. Left in place, in order, for the program: arguments that do not
 * start with "--" (including short flags such as -v), "--help", and the
 * program's own flags declared with choreo_config_accept_flag (with their
 * value). Any other "--flag" is refused with CHOREO_ECONFIG naming it and
 * the closest known flag, so that a typo such as --nats-ulr cannot leave a
 * setting at its default unnoticed; so is a flag that takes a value followed
 * by another known flag ("--service --db x.db": the value was forgotten;
 * "--key=--value" passes a value that starts with --), and a setting given
 * twice ("--db a.db --db=b.db": the last would win unnoticed). "--" stops
 * flag processing and is itself left in argv. Values are copied; argv's
 * strings are not changed, only the order of the pointers. On failure *argc
 * is unchanged, argv may be partly reordered, and the flags before the bad
 * one stay applied: report the error and exit. */
CHOREO_API CHOREO_WUR choreo_status choreo_config_from_args(choreo_config *cfg,
                                                            int *argc,
                                                            char **argv);

/* Declares a flag of the program's own, "--name" or "name", so that
 * choreo_config_from_args leaves it in argv instead of refusing it. With
 * takes_value, the argument after it ("--orders 10") is left in argv too;
 * "--orders=10" works either way. Fails with CHOREO_EINVAL for a name that
 * is empty, holds '=', or is a choreo setting's flag. */
CHOREO_API CHOREO_WUR choreo_status choreo_config_accept_flag(choreo_config *cfg,
                                                              const char *flag,
                                                              bool takes_value);

/* Checks that required keys are set and values agree with each other.
 * choreo_service_create runs it too. It cannot see the stream: the inbox
 * retention is checked again against the real stream at start. */
CHOREO_API CHOREO_WUR choreo_status choreo_config_validate(const choreo_config *cfg);

/* Returns the current value of a key as text, or NULL for an unknown key or
 * a key that has no value. Secrets come back as "***" when set. The text is
 * owned by cfg: a text value stays valid until that key is set again or cfg
 * is destroyed, but a number is formatted into one buffer inside cfg, which
 * the next choreo_config_get overwrites; copy it to keep it. */
CHOREO_API const char *choreo_config_get(const choreo_config *cfg, const char *key);

/* Writes a help text listing every key, its flag, variable and default.
 * file is a FILE *; NULL means stdout. With cfg, a key's default is shown
 * as cfg's value, so that a program that sets its own defaults before it
 * reads the flags shows those (a required key it gave a value is not
 * marked required); with cfg NULL, choreo's defaults. */
CHOREO_API void choreo_config_print_help(const choreo_config *cfg, void *file);

/* Frees cfg and the strings it holds. NULL-safe. */
CHOREO_API void choreo_config_destroy(choreo_config *cfg);

/* ------------------------------------------------------------------------ */
/* Events and transactions                                                  */

/* Longest event id text (ULID: 26 characters) plus NUL. */
#define CHOREO_ID_SIZE 27
/* Longest saga id (characters [A-Za-z0-9_-]). */
#define CHOREO_SAGA_MAX 64
/* Longest event type name (UpperCamel ASCII). */
#define CHOREO_TYPE_MAX 64

/* A received event, borrowed: every pointer is valid only during the handler
 * call. Strings are NUL-terminated. `data` is the msgpack map of the payload
 * (see choreo_mp_reader below and the generated code in events/). */
typedef struct choreo_event {
    const char *id;       /* ULID */
    const char *type;     /* e.g. "OrderCreated" */
    uint32_t version;     /* schema version of data */
    const char *saga;     /* saga id */
    const char *cause;    /* id of the event that caused this one, or "" */
    const char *source;   /* emitting service */
    int64_t ts_ms;        /* emit time, unix milliseconds */
    const uint8_t *data;  /* msgpack map */
    size_t data_len;
    uint32_t attempt;     /* delivery attempt, 1 for the first */
    /* W3C trace context of the event ("00-<trace id>-<parent id>-<flags>"),
     * or "" when it came without one. The events a handler emits carry the
     * same trace id with parent ids of their own; events emitted outside a
     * handler start a new trace. */
    const char *traceparent;
} choreo_event;

/* A local SQLite transaction of a service. Inside a handler it also carries
 * the inbox mark of the event being handled.
 * A handler's or request handler's tx is owned by choreo and valid only
 * during that call; a command's tx (choreo_service_begin) is valid until
 * choreo_tx_commit or choreo_tx_rollback frees it. The choreo_tx_* functions
 * below are called by whoever holds the tx: a handler on the dispatcher
 * thread, or the thread that began the command. They do not wait for locks,
 * since the transaction already holds the database's write lock. */
typedef struct choreo_tx choreo_tx;

/* What a handler returns. Any other value is a bug in the handler: it is
 * logged at error level with the value and handled as RETRY (rolled back;
 * an event is redelivered, and parked after max_deliver with a reason that
 * names the value; a request gets no reply), so that a fixed handler,
 * once deployed, applies what it returned wrongly for. */
typedef enum choreo_result {
    CHOREO_DONE = 0,   /* commit business rows, emitted events and inbox mark */
    CHOREO_RETRY = 1,  /* transient: roll back, redeliver later */
    CHOREO_REJECT = 2, /* permanent: roll back, park for a person */
} choreo_result;

/* Handler for one event type. Runs on the dispatcher thread inside a
 * transaction (a SAVEPOINT of a group commit). It must not begin, commit or
 * roll back on the connection itself. tx and ev (with every string and the
 * data it points to) are borrowed and valid only during the call: copy what
 * you keep. user is the pointer given to choreo_service_on. A handler
 * blocks the whole service while it runs (see "Threads" above), so it should
 * not wait long on anything outside its transaction. It must not call
 * choreo_service_begin, choreo_service_wait or choreo_service_destroy; it
 * may call choreo_service_stop. Anything it does outside the transaction (an
 * HTTP call, a mail) may run again: it runs again after a crash, a failed
 * commit or a RETRY. */
typedef choreo_result (*choreo_handler_fn)(choreo_tx *tx, const choreo_event *ev,
                                           void *user);

/* The transaction's connection, for business SQL. Owned by choreo: do not
 * close it, and do not run BEGIN, COMMIT, ROLLBACK, SAVEPOINT or RELEASE on
 * it. Use it only while the tx is valid and on the thread that holds the tx
 * (SQLite's per-connection mutex is off); reset or finalize the statements
 * you prepare on it before the handler returns or the command commits (or
 * use choreo_tx_prepare, which does it for you). Writes do not wait on the
 * busy timeout (the transaction holds the write lock). NULL when tx is
 * NULL, or when the service's store is PostgreSQL (then choreo_last_error
 * says to call choreo_tx_pg). */
CHOREO_API sqlite3 *choreo_tx_db(choreo_tx *tx);

/* A statement of one SQL text on the transaction's connection, prepared
 * once and kept: the first call with a text prepares it, later calls with
 * the same text (in this transaction or any later one on the same
 * connection) return the same statement, reset and with its bindings
 * cleared, so a handler skips SQLite's parse and plan of every event.
 * Bind, step and read it as usual; do not finalize it. choreo resets it
 * when the handler returns and when the command commits or rolls back (a
 * SELECT left unfinished keeps nothing open), and finalizes it with the
 * service. Asking again for the same text in one transaction resets the
 * statement the earlier call returned. Up to 64 texts stay prepared per
 * connection; a new one past that replaces one not used in the current
 * transaction. sql must hold exactly one statement. Returns CHOREO_EINVAL
 * (with SQLite's message) when SQLite cannot prepare it, and on a
 * PostgreSQL store (prepare on choreo_tx_pg's connection there). */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_prepare(choreo_tx *tx, const char *sql,
                                                     sqlite3_stmt **out);

/* The same for a service whose db is a postgresql:// URL: the libpq
 * connection (PGconn *, from <libpq-fe.h>) with the transaction open on it.
 * The same rules hold: no BEGIN, COMMIT, ROLLBACK or savepoint statements,
 * this thread only, and no results left unread when the handler returns.
 * Several instances of the service may run against the database; a row
 * another instance's open transaction holds makes a write wait for that
 * commit (deadlocks end in an error: return CHOREO_RETRY). NULL when tx is
 * NULL or the store is SQLite (then choreo_last_error says to call
 * choreo_tx_db). */
CHOREO_API struct pg_conn *choreo_tx_pg(choreo_tx *tx);

/* The event being handled, or NULL in a command or request transaction.
 * Borrowed like the handler's ev: valid only during the handler call. */
CHOREO_API const choreo_event *choreo_tx_event(const choreo_tx *tx);

/* Records why the handler is about to return RETRY or REJECT (copied, at
 * most 255 bytes). It is logged, and a rejected message is parked with it:
 * "handler returned REJECT: <reason>". NULL clears it. A request handler's
 * reason is only logged; in a command it has no effect.
 * Without one, a handler whose last database call failed gets that error
 * as its reason ("no reason given; the database's last error: ..."). */
CHOREO_API void choreo_tx_set_reason(choreo_tx *tx, const char *reason);

/* Emits an event: writes an outbox row in this transaction. It is published
 * after the commit, and never if the transaction rolls back.
 *   type     UpperCamel ASCII name, e.g. "PaymentAuthorized"
 *   version  schema version of data (>= 1)
 *   saga     saga id; NULL means the saga of the event being handled, so
 *            it must be given in a request handler or a command
 *   data     msgpack map of the payload, copied; data_len may be 0 for {}
 * The new event's id is written to id_out when it is not NULL, and only on
 * success. type, saga and data are copied into the outbox row before it
 * returns. Fails with CHOREO_EINVAL when data is not one well-formed msgpack
 * map (nested at most 32 levels), and with CHOREO_ETOOBIG when the envelope
 * would exceed max_event_bytes or, once the service is connected, the
 * message with its headers would exceed the NATS server's max_payload;
 * after either nothing was written and the transaction stays usable.
 * Called by whoever holds tx (see choreo_tx); it does not block on NATS:
 * the relay publishes later, from its own thread. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_emit(choreo_tx *tx, const char *type,
                                                   uint32_t version, const char *saga,
                                                   const void *data, size_t data_len,
                                                   char id_out[CHOREO_ID_SIZE]);

/* Like choreo_tx_emit, but the relay publishes it no earlier than delay_ms
 * from now (a delayed event: deadlines and timeouts), that is delay_ms after
 * the new event's own ts. delay_ms <= 0 publishes it at once. Delayed events
 * go out when due, not in emit order. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_emit_after(choreo_tx *tx, int64_t delay_ms,
                                                         const char *type, uint32_t version,
                                                         const char *saga, const void *data,
                                                         size_t data_len,
                                                         char id_out[CHOREO_ID_SIZE]);

/* Like choreo_tx_emit, but published no earlier than the unix time at_ms
 * (milliseconds); a time in the past publishes it at once. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_emit_at(choreo_tx *tx, int64_t at_ms,
                                                      const char *type, uint32_t version,
                                                      const char *saga, const void *data,
                                                      size_t data_len,
                                                      char id_out[CHOREO_ID_SIZE]);

/* Barrier for a saga step and its compensation (the DTM barrier), written in
 * this transaction. Call it first in a handler, and do the step's work only
 * when *run is true:
 *   - ACTION runs once per (saga, step); a repeat is skipped, and so is an
 *     action that arrives after its compensation ("no hanging").
 *   - COMPENSATION runs once, and only if the action ran ("null
 *     compensation": a compensation that arrives before, or without, its
 *     action does nothing and blocks the late action).
 * saga NULL means the saga of the event being handled. step is the name of
 * the forward step, e.g. "reserve-stock", 1..64 characters. *run is written
 * only on success. The barrier rows roll back with the transaction, so a
 * handler that returns RETRY or REJECT leaves no trace in them. Called by
 * whoever holds tx (see choreo_tx). */
typedef enum choreo_barrier_op {
    CHOREO_BARRIER_ACTION = 0,
    CHOREO_BARRIER_COMPENSATION = 1,
} choreo_barrier_op;

CHOREO_API CHOREO_WUR choreo_status choreo_tx_barrier(choreo_tx *tx, const char *saga,
                                                      const char *step, choreo_barrier_op op,
                                                      bool *run);

/* How a saga ended, for choreo_tx_saga_end. */
typedef enum choreo_saga_outcome {
    CHOREO_SAGA_COMPLETED = 0, /* every step done */
    CHOREO_SAGA_CANCELLED = 1, /* a step said no (out of stock, card declined) and the
                                  steps before it were compensated: a business outcome */
    CHOREO_SAGA_FAILED = 2,    /* ended by an error rather than a business decision */
    CHOREO_SAGA_TIMED_OUT = 3, /* ended by a deadline (a delayed event) */
} choreo_saga_outcome;

/* Records that this transaction ends a saga, for the metrics
 * choreo_sagas_total{outcome,reason} and choreo_saga_duration_seconds (see
 * metrics_addr). Call it in the service that decides a saga's outcome (in
 * the shop, the order service), in the transaction that writes that
 * decision: it is counted when the transaction commits, and not at all if
 * it rolls back (a handler's RETRY or REJECT). saga NULL means the saga of
 * the event being handled. reason is a short code ("out_of_stock"): 0 to
 * 32 characters of a-z 0-9 _, "" or NULL for none. It becomes a label, so
 * the set of reasons must stay small (past 60 pairs of outcome and reason
 * the rest count as "other"); put free text in your own tables. The
 * duration runs from the time in the saga id when the id is a ULID from
 * choreo_saga_new, and is not observed otherwise. A saga ended twice is
 * counted twice: call it where the decision is written once. Fails with
 * CHOREO_EINVAL for a bad saga id, outcome or reason. Called by whoever
 * holds tx; it writes nothing to the database. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_saga_end(choreo_tx *tx, const char *saga,
                                                       choreo_saga_outcome outcome,
                                                       const char *reason);

/* Makes a fresh saga id (a ULID) into out. Any thread; ids made by one
 * process are unique and increase. */
CHOREO_API void choreo_saga_new(char out[CHOREO_ID_SIZE]);

/* ------------------------------------------------------------------------ */
/* Service                                                                  */

typedef struct choreo_service choreo_service;

/* Creates a service from a validated configuration (the configuration is
 * copied). Opens or creates the SQLite file and migrates its tables; does not
 * connect to NATS yet. One process per database file: the service locks
 * "<db>.lock" until it is destroyed, and fails with CHOREO_ELOCKED, naming
 * the holder's service and pid, while another process (or another service
 * object) holds it. Read-only tools and choreo_admin_open are not refused.
 * Any thread; that thread then owns the service: it registers handlers,
 * starts, waits for and destroys it (see "Threads"). It blocks on SQLite:
 * it opens the file three times (the dispatcher's, the relay's and the
 * commands' connections) and migrates the tables in a write transaction,
 * which waits up to busy_timeout_ms for another writer. cfg may be
 * destroyed once it returns. *out is written only on success; free the
 * service with choreo_service_destroy. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_create(choreo_service **out,
                                                          const choreo_config *cfg);

/* Registers the handler for an event type; before start only, on the thread
 * that owns svc (CHOREO_ESTATE after start). Each handled type gets a durable
 * JetStream consumer named "<service>_<type>". type is copied; fn and user
 * are kept: user must stay valid until the service has stopped
 * (choreo_service_wait or choreo_service_destroy returned), and choreo never
 * frees it. A second handler for the same type fails with
 * CHOREO_EDUPLICATE. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_on(choreo_service *svc, const char *type,
                                                      choreo_handler_fn fn, void *user);

/* Limits the schema versions a handler accepts (default: every version).
 * Events of other versions are parked with the reason, not handled. Before
 * start only, on the thread that owns svc; the type must have a handler
 * (CHOREO_ENOTFOUND otherwise). */
CHOREO_API CHOREO_WUR choreo_status choreo_service_accept_versions(choreo_service *svc,
                                                                   const char *type,
                                                                   uint32_t min_version,
                                                                   uint32_t max_version);

/* Request/reply commands. The handler runs on the dispatcher thread in a
 * transaction; the reply it sets with choreo_reply_set is sent after the
 * commit, with an empty body when the handler set none. A handler that
 * returns REJECT has its work rolled back and its reply (an error answer,
 * say) still sent; one that returns RETRY, or whose work cannot be kept,
 * sends no reply, so that the requester times out and asks again.
 * The subject is "<prefix>-rpc.<service>.<name>", served through a queue
 * group named after the service. When the batch's commit fails, no reply
 * is sent and the requester times out. choreo does not deduplicate
 * requests: a requester that retries runs the handler again, so requests
 * carry their own idempotency key.
 * req (req_len bytes) and reply are borrowed and valid only during the
 * call; tx is as for an event handler, with no event and no inbox mark
 * (choreo_tx_event returns NULL, and emits need an explicit saga). */
typedef struct choreo_reply choreo_reply;
typedef choreo_result (*choreo_request_fn)(choreo_tx *tx, const void *req, size_t req_len,
                                           choreo_reply *reply, void *user);

/* Registers the request handler for name ([A-Za-z0-9_-], at most 64
 * characters); before start only, on the thread that owns svc. name is
 * copied; fn and user are kept as by choreo_service_on. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_on_request(choreo_service *svc,
                                                              const char *name,
                                                              choreo_request_fn fn,
                                                              void *user);

/* Sets the reply body (copied). Calling it again replaces the body. Only
 * from the request handler that was given reply, during that call.
 * Returns CHOREO_ETOOBIG, keeping the body set before, when len is over the
 * NATS server's max_payload (1 MiB unless the server sets it), which the
 * reply could not be sent with: the handler can then set a short error
 * answer instead, or return RETRY or REJECT. A reply whose publish fails
 * after the commit all the same (a reconnect to a server with a lower
 * limit) is logged at error level with the request's subject, and the
 * requester times out. */
CHOREO_API CHOREO_WUR choreo_status choreo_reply_set(choreo_reply *reply, const void *data,
                                                     size_t len);

/* Connects to NATS, ensures the stream and the consumers exist, and starts
 * the dispatcher, fetch and relay threads. Returns once working. When no
 * server is reachable, or the server goes away or its JetStream does not
 * answer during the set-up (a restart, a leader election), it keeps trying
 * (logging the first attempt and every tenth) for connect_wait_ms, or until
 * choreo_service_stop when that is 0. Wrong credentials fail at once with
 * CHOREO_EAUTH, a failed TLS handshake with CHOREO_ETLS, and a credential
 * or TLS file that cannot be read or used with CHOREO_ECONFIG. A stream whose max age is not shorter than
 * inbox_retention_s fails with CHOREO_ECONFIG. A durable consumer that
 * another process is reading (another instance of the service) fails with
 * CHOREO_ELOCKED.
 * Call it on the thread that owns svc, not from a handler; on a started
 * service it fails with CHOREO_ESTATE. It blocks on NATS: the connection,
 * then JetStream requests for the stream and each consumer (each waits up to
 * 5 s). On failure it has already stopped and joined whatever it had
 * started. A service that was stopped and waited for may be started
 * again. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_start(choreo_service *svc);

/* start, then block until SIGINT or SIGTERM arrives or choreo_service_stop is
 * called, then stop and wait. Returns start's status, or CHOREO_OK after a
 * stop (also when a signal came while it was still starting), or
 * CHOREO_ELOCKED when the service stopped itself because a service on
 * another database took its durable consumers over while it ran
 * (take_over_consumers there; read every binding_check_s). Call it from
 * the main thread, before the program starts threads of its own (or block
 * SIGINT and SIGTERM in them): it blocks both signals in the calling thread,
 * which the threads it creates inherit, and a watcher thread of its own takes
 * them with sigtimedwait; a thread that has them unblocked could receive one
 * instead, whose default action ends the process. The two signals stay
 * blocked in the calling thread after it returns, so that a late one (a
 * supervisor's second SIGTERM) cannot end the process in the middle of its
 * cleanup; unblock them with pthread_sigmask if the program needs them
 * again. On the thread that owns svc, not from a
 * handler; on a started service it fails with CHOREO_ESTATE. It blocks as
 * start, and then as choreo_service_wait. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_run(choreo_service *svc);

/* Asks the service to stop. Thread-safe and async-signal-safe; returns at
 * once. The current batch is finished, queued messages are handed back to
 * JetStream for redelivery, and the relay publishes what it has in flight.
 * Any thread, a handler and a signal handler included. NULL-safe. */
CHOREO_API void choreo_service_stop(choreo_service *svc);

/* Waits for the threads started by start to finish after a stop, then
 * closes the NATS connections. Call it on the thread that owns svc, never
 * from a handler (it would wait for itself). It blocks until another thread
 * or a signal handler calls choreo_service_stop, if nobody has yet, or the
 * service stops itself (below), then on joining the threads: the
 * dispatcher finishes its batch (its handlers, and SQLite up to
 * busy_timeout_ms) and the relay waits for PubAcks already on the wire (up
 * to 5 s). Returns CHOREO_OK, or CHOREO_ELOCKED when the service stopped
 * itself since its last start because a service on another database took
 * its durable consumers over while it ran (take_over_consumers there; read
 * every binding_check_s), with the reason in choreo_last_error(): the
 * status choreo_service_run returns, for a program that uses start and
 * wait. Does nothing on a service that is not started, but still returns
 * why it stopped itself, if it did. NULL-safe. */
CHOREO_API choreo_status choreo_service_wait(choreo_service *svc);

/* Stops if needed, waits, closes everything and frees the service; it
 * blocks as choreo_service_wait. Call it on the thread that owns svc, never
 * from a handler, and only once every command transaction is committed or
 * rolled back and no other thread uses svc any more. Releases the lock on
 * the database file. NULL-safe. */
CHOREO_API void choreo_service_destroy(choreo_service *svc);

/* The service's name as configured, owned by svc and valid until
 * choreo_service_destroy. Any thread. */
CHOREO_API const char *choreo_service_name(const choreo_service *svc);

/* Commands from outside a handler: begin a transaction on the service's
 * command connection, run business SQL and emits, then commit or roll back.
 * Callable from any thread other than the dispatcher thread; concurrent
 * commands are serialised. The tx is freed by commit and rollback. Commit
 * wakes the relay.
 * choreo_service_begin may be called before start (the events then wait in
 * the outbox until the relay runs) and while the service runs; from a
 * handler it fails with CHOREO_ESTATE (use the handler's tx). It blocks on
 * the command lock while another thread's command is open, then on SQLite's
 * write lock, which the dispatcher holds during each group commit and the
 * relay while it marks or prunes rows: after busy_timeout_ms it fails with
 * CHOREO_EBUSY. *out is written only on success. The command lock is held
 * until commit or rollback: finish the command promptly, on the thread that
 * began it. A second begin on that thread before then, or
 * choreo_service_start while it is open, fails at once with CHOREO_ESTATE
 * (either would wait on the thread's own lock). */
CHOREO_API CHOREO_WUR choreo_status choreo_service_begin(choreo_service *svc,
                                                         choreo_tx **out);

/* Commits a command's tx and frees it, whether or not the commit succeeds
 * (on failure the transaction is rolled back and nothing of it is kept). It
 * blocks on the commit's disk sync (the synchronous setting). A handler's tx
 * fails with CHOREO_EINVAL: the dispatcher commits it. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_commit(choreo_tx *tx);

/* Rolls back a command's tx and frees it. NULL-safe; does nothing to a
 * handler's tx (a handler undoes its work by returning RETRY or REJECT). */
CHOREO_API void choreo_tx_rollback(choreo_tx *tx);

/* Counters and latencies since start, for monitoring and benchmarks. */
typedef struct choreo_stats {
    uint64_t handled;          /* events whose handler returned DONE */
    uint64_t duplicates;       /* deliveries dropped by the inbox */
    uint64_t retried;          /* handler RETRY results */
    uint64_t parked;           /* messages moved to the dead-letter table */
    uint64_t published;        /* outbox rows confirmed by a PubAck */
    uint64_t publish_errors;   /* PubAck errors and timeouts (retried) */
    uint64_t batches;          /* group commits */
    uint64_t outbox_pending;   /* unpublished rows at the relay's last scan */
    int64_t relay_p50_us;      /* outbox insert (a delayed row: its due time) -> PubAck, us */
    int64_t relay_p99_us;
} choreo_stats;

/* Fills *out (which must not be NULL; all zero when svc is NULL). Any
 * thread, also while the service runs: it reads atomic counters and never
 * blocks. The counters start at 0 when the service is created. */
CHOREO_API void choreo_service_stats(choreo_service *svc, choreo_stats *out);

/* ------------------------------------------------------------------------ */
/* Orchestrated sagas. A saga defined as ordered steps, driven by the service
 * that owns it (the orchestrator lives inside that service; there is no
 * coordinator server). Each step sends a command event to a participant and
 * waits for its reply event; the orchestrator advances an instance in the
 * same transaction that consumes the reply, so the new state and the next
 * command commit together, and a crash anywhere loses nothing: the reply
 * is redelivered and applied once (the inbox), or the next command is in
 * the outbox. On a failure reply or a timeout it runs the compensations of
 * the steps done so far in reverse order, one at a time, resending a
 * compensation that gets no answer until one comes, and ends FAILED; when
 * every step is done it ends COMPLETED. A TCC group is a stage of steps
 * whose tries are sent together; when every try succeeded their confirms
 * are sent, otherwise their cancels (the group's compensations).
 *
 * Every instance is a row of choreo_saga_instances (its state, phase and
 * each step's status) and every change a row of choreo_saga_transitions
 * (time, event, from, to), in the owning service's database; choreoctl
 * sagas and choreoctl saga read them.
 *
 * Commands carry the data the instance was started with (a msgpack map);
 * replies may carry anything, and only their type counts. Commands and
 * replies are ordinary events on the same outbox, inbox and relay, with the
 * instance's saga id. Participants handle commands with ordinary handlers,
 * behind the barrier with the step's name: the action's handler with
 * CHOREO_BARRIER_ACTION, its compensation's with CHOREO_BARRIER_COMPENSATION
 * (a compensation that comes before its action, say after a timeout, is then
 * a no-op and blocks the late action); for a TCC step, the try and the
 * cancel are the action and the compensation, and the confirm an action of
 * the step "<name>.confirm" (idempotent). A participant answers every
 * compensation (with its compensated reply) and every confirm, also when
 * the barrier said there was nothing (more) to do; a late action the
 * barrier skipped needs no answer, since nobody waits for it any more.
 *
 * Timeouts are delayed events of type ChoreoSagaTimeout, on the owning
 * service's own subject <prefix>.ChoreoSagaTimeout.<saga>. */

typedef struct choreo_saga_def choreo_saga_def;

/* One step. Type names are event types (UpperCamel). */
typedef struct choreo_saga_step_spec {
    const char *name;        /* [A-Za-z0-9_-]{1,64}: the barrier step of its participant */
    const char *state;       /* the instance's state once the step is done, such as
                                "INVENTORY_DEDUCTED"; NULL: the name in capitals */
    const char *command;     /* sent to the participant (for a TCC step: the try) */
    const char *success;     /* the reply meaning the step is done */
    const char *failure;     /* the reply meaning it failed; NULL: it only times out */
    int64_t timeout_ms;      /* no reply within this: compensate; 0: wait for ever */
    const char *compensate;  /* the command undoing the step (TCC: the cancel); NULL when
                                there is nothing to undo */
    const char *compensated; /* the reply to compensate (required with it) */
    int64_t retry_ms;        /* a compensation or confirm unanswered this long is sent
                                again [30000] */
    const char *confirm;     /* TCC steps only: the confirm command */
    const char *confirmed;   /* TCC steps only: its reply */
} choreo_saga_step_spec;

/* What an ending instance hands to the definition's end function. */
typedef struct choreo_saga_info {
    const char *saga;
    const char *definition;
    bool completed;            /* COMPLETED; false: FAILED */
    const char *failed_step;   /* the step whose failure or timeout made it compensate;
                                  NULL when completed */
    bool timed_out;            /* that step timed out (no reply in timeout_ms) */
    const char *failure_type;  /* the failure reply's type, "" on a timeout */
    const uint8_t *failure_data; /* the failure reply's data, NULL on a timeout */
    size_t failure_len;
    const uint8_t *data;       /* the data the instance was started with */
    size_t data_len;
    int64_t started_ms;        /* when it was started (unix ms) */
} choreo_saga_info;

/* Runs in the transaction that ends an instance (COMPLETED or FAILED), on
 * the dispatcher thread, so that the owning service writes its own outcome
 * (an order's state, an event for others, choreo_tx_saga_end) atomically
 * with the instance's end. Returns like an event handler: RETRY rolls the
 * whole step back for a redelivery, REJECT parks the reply. info and what
 * it points to are borrowed for the call. */
typedef choreo_result (*choreo_saga_end_fn)(choreo_tx *tx, const choreo_saga_info *info,
                                            void *user);

/* Defines a saga named name ([A-Za-z0-9_-]{1,64}) owned by svc, whose
 * instances start in initial_state (such as "ORDER_CREATED"). Before start
 * only, on the thread that owns svc; the definition belongs to svc. The
 * service gets a handler for ChoreoSagaTimeout here, and one for each reply
 * type as steps are added (consumers <service>_<Type> like any handler's):
 * a type that already has a handler of the program's own fails with
 * CHOREO_EDUPLICATE, and so does choreo_service_on for a type the
 * orchestrator handles. on_end may be NULL; user must stay valid until the
 * service has stopped. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_saga(choreo_service *svc, const char *name,
                                                        const char *initial_state,
                                                        choreo_saga_end_fn on_end, void *user,
                                                        choreo_saga_def **out);

/* Appends a step; CHOREO_EINVAL names a missing or invalid field, or a
 * type that clashes: a reply type that is another reply or a command of the
 * definition (the orchestrator would take its own command for the reply),
 * or a type beginning with "Choreo", which choreo keeps for its own. */
CHOREO_API CHOREO_WUR choreo_status choreo_saga_step(choreo_saga_def *def,
                                                     const choreo_saga_step_spec *step);

/* Appends a TCC group of n steps (2..16), each with command (try), success,
 * failure, compensate (cancel) with compensated, and confirm with
 * confirmed; state is the instance's state once all are confirmed. A try
 * that fails or times out cancels the whole group (and then compensates
 * the steps before it). Confirms are final, so the group is the saga's
 * last stage: a step or group added after it fails with CHOREO_EINVAL. */
CHOREO_API CHOREO_WUR choreo_status choreo_saga_tcc(choreo_saga_def *def, const char *state,
                                                    const choreo_saga_step_spec *steps, int n);

/* Starts an instance of the definition named def in tx: writes its row and
 * emits the first stage's command(s) (and their timeouts), all committed
 * with tx. saga is the instance's id (choreo_saga_new); data and data_len
 * the msgpack map every command carries (data_len 0 for {}). Fails with
 * CHOREO_ENOTFOUND for an unknown definition and CHOREO_EDUPLICATE when an
 * instance with that saga id exists. On failure nothing of the start is
 * left in tx, as with choreo_tx_emit, and tx can go on. Called by whoever
 * holds tx (a command, a handler, a request handler of the owning
 * service). */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_saga_start(choreo_tx *tx, const char *def,
                                                         const char *saga, const void *data,
                                                         size_t data_len);

/* ------------------------------------------------------------------------ */
/* Held steps: a step that waits for a person's decision (a manual review).
 * A handler holds its step with choreo_tx_hold and returns DONE: the event
 * is consumed and the saga waits. A person lists the holds with choreoctl
 * review list and decides with choreoctl review approve|reject ID, which
 * records who decided, when and why, and puts a ChoreoHoldDecided event in
 * the service's own outbox (so the service's relay publishes it, now or at
 * its next start). The service then runs the decision function registered
 * for the hold's kind, in a transaction, once: it carries on with the step
 * (emits the step's success or failure). A hold nobody decides ends when
 * its saga does: a compensation calls choreo_tx_hold_end, and a decision
 * that comes after that, or after the hold's expiry time, is refused with
 * the reason. */

/* A decision, handed to the decision function; borrowed for the call. */
typedef struct choreo_hold_decision {
    int64_t id;
    const char *kind;         /* as given to choreo_tx_hold */
    const char *saga;
    const char *reason;       /* why it was held */
    bool approved;            /* false: rejected */
    const char *note;         /* the person's note, "" when none */
    const char *by;           /* who decided */
    int64_t held_ms, decided_ms;
    const char *event_type;   /* the held event's type, "" when held outside a handler */
    const uint8_t *data;      /* the held event's data, NULL when none */
    size_t data_len;
} choreo_hold_decision;

typedef choreo_result (*choreo_decision_fn)(choreo_tx *tx, const choreo_hold_decision *d,
                                            void *user);

/* Holds the current step for a person's decision, in tx: a row of
 * choreo_holds with the reason (at most 255 bytes), the saga (NULL: the
 * event's), the event being handled and its data. kind names what is
 * decided ([A-Za-z0-9_-]{1,64}, such as "payment-review"); a service
 * registers the function that resumes it with choreo_service_on_decision.
 * expires_at_ms (unix ms, 0 for never) is the time after which a decision
 * is refused (one already past is kept: the saga's own deadline then ends
 * the step). *id_out (may be NULL) gets the hold's id. CHOREO_EINVAL when
 * the service has no decision function for kind (the hold could be decided
 * and never carried on); CHOREO_EDUPLICATE when this step (saga, kind and
 * the event being handled) is held already and still waits. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_hold(choreo_tx *tx, const char *saga,
                                                   const char *kind, const char *reason,
                                                   int64_t expires_at_ms, int64_t *id_out);

/* Ends the undecided holds of saga (NULL: the event's) of kind (NULL: any)
 * in tx, as when the saga is cancelled or reaches its deadline: their state
 * becomes "expired" with why (at most 255 bytes) as the note, and a later
 * decision is refused. *ended (may be NULL) gets how many. In a
 * compensation behind choreo_tx_barrier, call it after the barrier: on a
 * database several instances share, the action that made the hold may be
 * committing in another instance, and the barrier waits for it, so only
 * then is its hold seen and ended. */
CHOREO_API CHOREO_WUR choreo_status choreo_tx_hold_end(choreo_tx *tx, const char *saga,
                                                       const char *kind, const char *why,
                                                       int *ended);

/* Registers the function that carries on a step held with kind, once a
 * person decided; before start only, on the thread that owns svc. It runs
 * on the dispatcher thread in a transaction, at most once per hold (a
 * repeated decision event does not run it again); RETRY and REJECT work
 * as for an event handler. */
CHOREO_API CHOREO_WUR choreo_status choreo_service_on_decision(choreo_service *svc,
                                                               const char *kind,
                                                               choreo_decision_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Repair: parked (dead-letter) messages of a service's database, for
 * operators and tools such as choreoctl. An admin handle opens the database
 * named by the configuration's db setting; it connects to NATS (with the
 * configuration's URL and credentials) only to retry. It may be used while
 * the service runs. Not thread-safe: any thread may use a handle, one at a
 * time. Every call below reads or writes the database and may wait up to
 * busy_timeout_ms for the service's write lock (then CHOREO_EBUSY).        */

typedef struct choreo_admin choreo_admin;

typedef struct choreo_dead_entry {
    int64_t id;
    char consumer[128];
    char event_id[CHOREO_ID_SIZE];   /* "" when the body could not be decoded */
    char event_type[CHOREO_TYPE_MAX + 1];
    char subject[256];
    char reason[512];
    int64_t attempts;
    int64_t parked_at_ms;
    int64_t updated_at_ms;           /* 0 when never retried or dropped */
    char status[16];                 /* "parked", "retried" or "dropped" */
    size_t body_len;
} choreo_dead_entry;

/* Opens the database of cfg's db setting (the only setting it needs),
 * creating it and migrating choreo's tables if needed, which may wait for the
 * write lock as above. cfg is copied. It takes no lock of its own, so it is
 * not refused while a service runs on the file. *out is written only on
 * success; close it with choreo_admin_close. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_open(choreo_admin **out, const choreo_config *cfg);

/* Closes the database and frees adm. NULL-safe. */
CHOREO_API void choreo_admin_close(choreo_admin *adm);

/* Lists entries with the given status ("parked", "retried", "dropped", or
 * NULL for all), oldest first. *out is an array of *n entries to free with
 * free(); NULL when *n is 0. *out and *n are written only on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_dead_list(choreo_admin *adm, const char *status,
                                                           choreo_dead_entry **out, size_t *n);

/* One entry and a copy of its message body (free() it). body and body_len
 * may be NULL when the body is not wanted. *body and *body_len are written
 * only on success; fails with CHOREO_ENOTFOUND for an unknown id. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_dead_get(choreo_admin *adm, int64_t id,
                                                          choreo_dead_entry *out,
                                                          uint8_t **body, size_t *body_len);

/* Publishes a parked message again on its original subject with its original
 * body (so its original event id), waits for the PubAck and marks the entry
 * "retried". The message carries the header Choreo-Retry-For: <consumer>
 * (the entry's consumer): only that consumer applies it; every other consumer
 * of the subject acks it without running its handler, even when its inbox
 * mark of the event was pruned long ago. Fails with CHOREO_ESTATE unless the
 * entry is parked. Besides the database, it blocks on NATS: it connects
 * (waiting up to connect_wait_ms, or 5 s when that is 0) and waits for the
 * PubAck (up to 5 s). */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_dead_retry(choreo_admin *adm, int64_t id);

/* Marks a parked entry "dropped" (kept for the record, never retried).
 * Fails with CHOREO_ESTATE unless the entry is parked. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_dead_drop(choreo_admin *adm, int64_t id);

/* A durable consumer of a service: one per handler, named <service>_<Type>,
 * on the subjects <prefix>.<Type>.*. */
typedef struct choreo_consumer_entry {
    char name[128];
    char type[CHOREO_TYPE_MAX + 1];
    char subjects[160];
    bool on_server;            /* the consumer exists on the stream */
    bool registered;           /* the service's code registered a handler for
                                * its type when it last started on this
                                * database; false: stale, or never started */
    int64_t registered_at_ms;  /* that start; 0 when not registered */
    int64_t created_ms;        /* when the server created it; 0 when not on it */
    uint64_t pending;          /* events not yet delivered to it */
    uint64_t ack_pending;      /* delivered and not yet acknowledged */
    uint64_t redelivered;      /* of those, delivered more than once */
    uint64_t delivered;        /* deliveries so far */
    int64_t waiting;           /* pull requests waiting: > 0 while a process reads it */
} choreo_consumer_entry;

/* Lists the durable consumers of a service, sorted by name: those on the
 * stream (cfg's stream setting) whose name and subjects are a handler's of
 * that service, and those the service registered when it last started on
 * this database, which may be missing from the server. service NULL means
 * the service recorded in the database (CHOREO_ENOTFOUND when it has never
 * started there); a service other than the recorded one fails with
 * CHOREO_ECONFIG (the database is another service's), and one given for a
 * database that records none is taken as given. *out is an array of *n
 * entries to free with free(), NULL when *n is 0; both are written only on
 * success. Blocks on NATS as choreo_admin_dead_retry does. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_consumers(choreo_admin *adm, const char *service,
                                                           choreo_consumer_entry **out,
                                                           size_t *n);

/* Deletes the durable consumer name (as listed above) from the stream, with
 * its position and its unacknowledged deliveries; events stay in the stream.
 * Fails with CHOREO_ENOTFOUND when the service has no such consumer on the
 * server, with CHOREO_ECONFIG for a service the database does not belong
 * to (as above), and, unless force is set, with CHOREO_ESTATE when the
 * consumer is registered by the service's code (the service would create it
 * anew at its next start, from consumer_start) or a process is reading it
 * now. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_consumer_delete(choreo_admin *adm,
                                                                 const char *service,
                                                                 const char *name, bool force);

/* An orchestrated saga instance as recorded by its owning service. */
typedef struct choreo_saga_entry {
    char saga[CHOREO_SAGA_MAX + 1];
    char definition[65];
    char state[65];          /* the last state reached: initial, a step's, COMPENSATING,
                                COMPLETED or FAILED */
    char phase[16];          /* RUNNING, CONFIRMING, COMPENSATING, COMPLETED, FAILED */
    char position[256];      /* the replies it waits for ("PointsAwarded of
                                award-points"), "" once ended */
    char steps[33];          /* one letter per step: - not started, P sent, D done,
                                F failed, T timed out, K confirmed, X compensation
                                sent, C compensated */
    char failed_step[65];    /* "" unless it compensates or failed */
    int64_t started_ms, updated_ms;
    int64_t transitions;     /* rows in choreo_saga_transitions */
} choreo_saga_entry;

typedef struct choreo_saga_transition {
    int64_t at_ms;
    char event_id[CHOREO_ID_SIZE];   /* the event applied, "" when it started the instance */
    char event_type[CHOREO_TYPE_MAX + 1];
    char from[65], to[65];
    char note[160];                  /* what happened: "StockReserved: reserve-stock done" */
} choreo_saga_transition;

/* Lists instances, newest first, at most limit (0: all); state NULL for all,
 * or a state or phase name ("COMPENSATING"). *out is an array of *n to
 * free(); written only on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_sagas(choreo_admin *adm, const char *state,
                                                       size_t limit, choreo_saga_entry **out,
                                                       size_t *n);

/* One instance and its transitions, oldest first (*trans an array of *n to
 * free()). CHOREO_ENOTFOUND when the database has no such instance. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_saga(choreo_admin *adm, const char *saga,
                                                      choreo_saga_entry *out,
                                                      choreo_saga_transition **trans,
                                                      size_t *n);

/* A held step as recorded in the service's database. */
typedef struct choreo_hold_entry {
    int64_t id;
    char saga[CHOREO_SAGA_MAX + 1];
    char kind[65];
    char reason[256];
    char service[65];
    char event_type[CHOREO_TYPE_MAX + 1];
    char state[16];          /* held, approved, rejected or expired */
    int64_t held_ms;
    int64_t expires_ms;      /* 0: never */
    int64_t decided_ms;      /* 0 while held */
    char decided_by[65];
    char note[256];
    bool applied;            /* the service ran its decision function */
} choreo_hold_entry;

/* Lists holds, oldest first; state NULL for all, or held, approved,
 * rejected, expired. *out is an array of *n to free(). */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_holds(choreo_admin *adm, const char *state,
                                                       choreo_hold_entry **out, size_t *n);

/* Decides hold id: approve or reject it, with a note (NULL for none) and
 * who decided (by, 1..64 characters), and puts the ChoreoHoldDecided event
 * in the service's outbox, in one transaction. *out (may be NULL) gets the
 * hold as it is afterwards. Fails with CHOREO_ENOTFOUND for an unknown id;
 * with CHOREO_ESTATE, saying when and why, for a hold that expired (its
 * saga ended first, or its expiry time passed) or that was decided the
 * other way; and with CHOREO_EDUPLICATE, changing nothing, when it was
 * already decided the same way (a decision given twice counts once). Does
 * not need NATS. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_hold_decide(choreo_admin *adm, int64_t id,
                                                             bool approve, const char *note,
                                                             const char *by,
                                                             choreo_hold_entry *out);

/* ------------------------------------------------------------------------ */
/* Inspection: reading a service's database without changing it, for tools
 * such as choreoctl status and saga. A database is a SQLite file, or a
 * PostgreSQL database (db=postgresql://user@host:port/dbname) that several
 * instances of a service share; such a database has no lock file.        */

/* Whether db names a PostgreSQL database (a postgresql:// or postgres://
 * URL) rather than a SQLite file. Any thread; never blocks. */
CHOREO_API bool choreo_db_is_postgres(const char *db);

/* Writes db as it may be shown to a person into out (cap bytes, cut to
 * fit): a SQLite path as it is, a PostgreSQL URL as
 * postgresql://host:port/dbname, without its user, password or
 * parameters. Any thread; never blocks. */
CHOREO_API void choreo_db_display(const char *db, char *out, size_t cap);

/* Opens the existing database of cfg's db setting to read it only: nothing
 * is created, migrated or written (a SQLite file is opened read-only, a
 * PostgreSQL session's transactions are read-only), so services of any
 * choreo version keep running on it undisturbed. The reading functions
 * work on such a handle, within what the database's schema has (one from
 * before orchestration has no saga instances); the dead-letter retry and
 * drop and choreo_admin_hold_decide fail with CHOREO_ESTATE. Fails with
 * CHOREO_ENOTFOUND when the database holds none of choreo's tables, and
 * with CHOREO_ESTORE when it cannot be opened (a missing file, a server
 * that does not answer: the message names the database, never a
 * password). *out is written only on success; close it with
 * choreo_admin_close. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_open_readonly(choreo_admin **out,
                                                               const choreo_config *cfg);

/* Most groups of parked messages, and of held steps, in a choreo_db_status. */
#define CHOREO_DB_GROUPS_MAX 64

/* Parked messages of one consumer and event type. */
typedef struct choreo_parked_group {
    char consumer[128];
    char event_type[CHOREO_TYPE_MAX + 1]; /* "" when the body could not be decoded */
    int64_t count;
} choreo_parked_group;

/* Held steps of one kind waiting for a decision. */
typedef struct choreo_held_group {
    char kind[65];
    int64_t count;
} choreo_held_group;

/* A service's database at a glance. Times are unix milliseconds, 0 for
 * none. */
typedef struct choreo_db_status {
    int64_t now_ms;             /* when it was read: "due" means due by then */
    /* The outbox. */
    int64_t pending;            /* unpublished rows due by now_ms */
    int64_t oldest_due_ms;      /* when the oldest of them fell due */
    int64_t delayed;            /* unpublished rows due later */
    int64_t next_delayed_ms;    /* when the first of them falls due */
    int64_t last_published_ms;  /* 0: never, or pruned since */
    /* Parked messages: all of them, and by consumer and type (sorted). */
    int64_t parked;
    choreo_parked_group parked_by[CHOREO_DB_GROUPS_MAX];
    size_t nparked_by;
    bool parked_by_cut;         /* more groups than fit, counted in parked only */
    bool has_last;
    choreo_dead_entry last;     /* the newest message still parked (no subject or body) */
    /* The handlers the service's code registered when it last started. */
    bool records_handlers;      /* false: a database from a choreo before they were recorded */
    char service[128];          /* the service that recorded them; "" when none did */
    /* Held steps waiting for a decision: all, those past their expiry
     * (no longer decidable), and by kind (sorted). */
    bool records_holds;         /* false: a database from before held steps, so none */
    int64_t held;
    int64_t held_expired;
    choreo_held_group held_by[CHOREO_DB_GROUPS_MAX];
    size_t nheld_by;
    bool held_by_cut;           /* more kinds than fit, counted in held only */
} choreo_db_status;

/* Reads *out in one read transaction, so that its numbers agree with each
 * other; it writes nothing and takes no write lock. Works on either kind
 * of handle. *out is written only on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_status(choreo_admin *adm, choreo_db_status *out);

/* The service that recorded its handlers in the database when it last
 * started, into out (cap bytes, cut to fit): "" when none did, or the
 * database is from a choreo before they were recorded. out is written only
 * on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_service(choreo_admin *adm, char *out,
                                                         size_t cap);

/* For each i < n, when consumer[i] marked event event_id[i] in its inbox,
 * which it does in the transaction that applies the event: at_ms[i] gets
 * that time, or 0 when there is no mark (never applied here, or pruned
 * after inbox_retention_s). at_ms[0..n) is written only on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_inbox_marks(choreo_admin *adm, size_t n,
                                                             const char *const *consumer,
                                                             const char *const *event_id,
                                                             int64_t *at_ms);

/* A row of the saga barrier (choreo_tx_barrier). */
typedef struct choreo_barrier_mark {
    char step[65];
    char op[16];       /* "action" or "compensation" */
    int64_t at_ms;     /* when the transaction that took it ran */
} choreo_barrier_mark;

/* The barrier rows of saga, by time then op. *out is an array of *n to
 * free(), NULL when *n is 0; both are written only on success. */
CHOREO_API CHOREO_WUR choreo_status choreo_admin_barrier(choreo_admin *adm, const char *saga,
                                                         choreo_barrier_mark **out, size_t *n);

/* ------------------------------------------------------------------------ */
/* A strict, bounded msgpack reader over a borrowed buffer, for decoding event
 * data. Every read checks the type and the remaining length and fails with
 * CHOREO_EDECODE without reading past the end. Strings and binaries are
 * returned as pointers into the buffer (not NUL-terminated).
 * A reader is a plain value owned by the caller (any thread, one at a time;
 * nothing to free). It borrows buf, which must outlive the reader and every
 * pointer it returned; in a handler, ev->data is valid only during the
 * call. Out-parameters are written only on success, and a failed read leaves
 * the position where it was, except choreo_mp_skip, which may stop inside a
 * container it was skipping. None of these functions allocate or block. */

typedef struct choreo_mp_reader {
    const uint8_t *pos;
    const uint8_t *end;
} choreo_mp_reader;

typedef enum choreo_mp_type {
    CHOREO_MP_NIL, CHOREO_MP_BOOL, CHOREO_MP_INT, CHOREO_MP_UINT, CHOREO_MP_FLOAT,
    CHOREO_MP_STR, CHOREO_MP_BIN, CHOREO_MP_ARRAY, CHOREO_MP_MAP, CHOREO_MP_EXT,
    CHOREO_MP_INVALID,
} choreo_mp_type;

CHOREO_API void choreo_mp_reader_init(choreo_mp_reader *r, const void *buf, size_t len);
/* Type of the next value without consuming it; CHOREO_MP_INVALID at the end
 * or on a reserved byte. */
CHOREO_API choreo_mp_type choreo_mp_peek(const choreo_mp_reader *r);
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_nil(choreo_mp_reader *r);
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_bool(choreo_mp_reader *r, bool *out);
/* Any msgpack integer that fits in int64_t. */
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_int(choreo_mp_reader *r, int64_t *out);
/* Any non-negative msgpack integer. */
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_uint(choreo_mp_reader *r, uint64_t *out);
/* float32, float64, or an integer converted to double. */
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_double(choreo_mp_reader *r, double *out);
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_str(choreo_mp_reader *r, const char **s,
                                                       uint32_t *len);
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_bin(choreo_mp_reader *r, const uint8_t **b,
                                                       uint32_t *len);
/* Reads an array or map header. The count is checked against the bytes
 * left (each element needs at least one byte), so a lying header fails here. */
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_array(choreo_mp_reader *r, uint32_t *count);
CHOREO_API CHOREO_WUR choreo_status choreo_mp_read_map(choreo_mp_reader *r, uint32_t *count);
/* Skips one whole value, nested at most max_depth levels (and at most 1,000,
 * whatever max_depth says: deeper input fails with CHOREO_EDECODE). */
CHOREO_API CHOREO_WUR choreo_status choreo_mp_skip(choreo_mp_reader *r, int max_depth);

/* A growable msgpack writer with a hard maximum size. Writes past the
 * maximum (or after an allocation failure) set a sticky error, reported by
 * choreo_mp_writer_status; the buffer stays valid up to the last good write.
 * A writer is a plain value owned by the caller (any thread, one at a time).
 * buf belongs to the writer: it moves when the buffer grows, so a pointer
 * into it is valid only until the next write, and choreo_mp_writer_free
 * releases it (init again to reuse the writer). Writes allocate with
 * realloc and never block. */
typedef struct choreo_mp_writer {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t max;
    choreo_status status;
} choreo_mp_writer;

/* The largest max_event_bytes a service accepts (8 MiB): a writer with this
 * maximum holds any data an emit can take, and the emit checks the
 * service's own setting. */
#define CHOREO_EVENT_BYTES_LIMIT 8388608

/* max 0 means the default maximum event size (1 MiB). Allocates nothing
 * until the first write. */
CHOREO_API void choreo_mp_writer_init(choreo_mp_writer *w, size_t max);
/* Frees buf and empties the writer; the sticky status stays until the next
 * init. */
CHOREO_API void choreo_mp_writer_free(choreo_mp_writer *w);
CHOREO_API choreo_status choreo_mp_writer_status(const choreo_mp_writer *w);
CHOREO_API void choreo_mp_write_nil(choreo_mp_writer *w);
CHOREO_API void choreo_mp_write_bool(choreo_mp_writer *w, bool v);
CHOREO_API void choreo_mp_write_int(choreo_mp_writer *w, int64_t v);
CHOREO_API void choreo_mp_write_uint(choreo_mp_writer *w, uint64_t v);
CHOREO_API void choreo_mp_write_double(choreo_mp_writer *w, double v);
CHOREO_API void choreo_mp_write_str(choreo_mp_writer *w, const char *s, size_t len);
/* NUL-terminated convenience form of choreo_mp_write_str. */
CHOREO_API void choreo_mp_write_cstr(choreo_mp_writer *w, const char *s);
CHOREO_API void choreo_mp_write_bin(choreo_mp_writer *w, const void *b, size_t len);
CHOREO_API void choreo_mp_write_array(choreo_mp_writer *w, uint32_t count);
CHOREO_API void choreo_mp_write_map(choreo_mp_writer *w, uint32_t count);

#ifdef __cplusplus
}
#endif

#endif /* CHOREO_H */
