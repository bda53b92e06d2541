/* A process supervisor for a choreo system on one machine: a private
 * nats-server with JetStream (tools/natsd) storing into a work directory
 * and listening on a free loopback port, and services as child processes,
 * each with its own database and log file in that directory.
 *
 * It starts, kills, restarts and stops any of them on demand, and it never
 * leaves a process behind: every child gets PR_SET_PDEATHSIG(SIGKILL) (so
 * even a SIGKILL of the supervisor's process takes them down), and
 * sup_stop_all / sup_destroy kill by PID every process it started and wait
 * for each to be gone. It only ever signals and waits for its own PIDs.
 *
 * With the cluster option the broker is a three-node NATS cluster instead,
 * each node with its own ports and store under the work directory.
 *
 * Shared by the shop demo (tools/supervisor/shop_demo.c) and the chaos
 * harness. Not thread-safe: use one supervisor from one thread, and make it
 * the thread that lives as long as the supervisor, since PR_SET_PDEATHSIG
 * fires when the thread that forked a child exits. Functions returning int
 * return 0 (or an index) on success and -1 after printing why to stderr. */
#ifndef CHOREO_SUPERVISOR_H
#define CHOREO_SUPERVISOR_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct sup sup;

typedef struct sup_options {
    /* Work directory (created if needed). NULL: a fresh
     * $TMPDIR/choreo-sup-XXXXXX that sup_destroy removes. */
    const char *workdir;
    /* Name of a fresh work directory, completed by mkdtemp [choreo-sup]. */
    const char *fresh_name;
    /* Keep a fresh work directory on destroy (a given one is always kept);
     * see also sup_keep_workdir. */
    bool keep_workdir;
    /* Subject prefix of the services (for the Ping health check) [choreo]. */
    const char *prefix;
    /* Log level passed to every service (--log-level) [warn]. */
    const char *log_level;
    /* Grace after SIGTERM before SIGKILL, in ms [10000]. */
    int stop_timeout_ms;
    /* How long start waits for a service to answer Ping, in ms [20000]. */
    int ready_timeout_ms;
    /* Give every service a metrics endpoint (--metrics-addr) on a free
     * loopback port, the same one across its restarts. */
    bool metrics;
    /* Run a three-node NATS cluster (tools/natsd) instead of one server:
     * every service gets the three URLs and --stream-replicas 3. Not with
     * sup_secure's broker configuration. */
    bool cluster;
    /* nats-server's profiling port on 127.0.0.1 (--profile), 0 for none;
     * one server only, not with cluster. */
    int broker_profile_port;
    /* When not NULL and set non-zero (say by a signal handler), waiting for
     * a service to answer gives up at once. */
    const atomic_int *cancel;
} sup_options;

/* A service to supervise. Everything is copied. */
typedef struct sup_service_spec {
    const char *name;     /* --service, and <workdir>/<name>.db and .log */
    /* The instance, when several of one service run: its log is
     * <workdir>/<label>.log and sup_find and sup_service_name know it by
     * this. A label other than the name marks a second or later instance,
     * which is ready when its metrics say it is connected (Ping may reach
     * another instance). NULL: the name. */
    const char *label;
    /* --db, when not <workdir>/<name>.db: a postgresql:// URL (see
     * sup_postgres_db), shared by the service's instances. */
    const char *db;
    const char *binary;   /* path of the executable */
    /* More arguments after the standard ones, NULL-terminated; may be NULL. */
    const char *const *args;
    /* KEY=VALUE entries added to (or replacing in) the inherited
     * environment, NULL-terminated; may be NULL. */
    const char *const *env;
    /* Wait for "<prefix>-rpc.<name>.Ping" to answer after each start. */
    bool ping;
} sup_service_spec;

int sup_create(sup **out, const sup_options *opts);

/* Whether dir can be given as a run's work directory: it does not exist
 * yet (sup_create makes it) or is an empty directory. A directory holding
 * an earlier run's databases would mix that run into this one. Returns 0,
 * or -1 with why ("is not a directory", "already holds order.db and 12
 * more, ...") written to why. */
int sup_workdir_unused(const char *dir, char *why, size_t cap);

/* Before the broker first starts: a nats-server configuration file for it
 * (TLS, users and their permissions), and the supervisor's own NATS
 * identity for its health checks: a user and password, the CA file that
 * verifies the broker's TLS certificate, and its reply inbox prefix. Each
 * may be NULL. Borrowed: they must outlive the supervisor. */
void sup_secure(sup *s, const char *broker_config, const char *user, const char *password,
                const char *tls_ca, const char *inbox_prefix);

/* Registers a service (not started). Returns its index. */
int sup_add_service(sup *s, const sup_service_spec *spec);

/* Starts the broker if needed, then every service not running, then waits
 * until each service with ping set answers. */
int sup_start_all(sup *s);

/* Starts service i as
 *   binary --service NAME --db WORKDIR/NAME.db --nats-url URL --log-level L ARGS...
 * with stdout and stderr appended to WORKDIR/NAME.log, and waits until it
 * answers Ping (when its spec asks for it). The broker must be running. */
int sup_start_service(sup *s, int i);

/* Starts a second process of service i with the same command line and
 * environment, so on the same database, or on db when that is not NULL
 * (then without a metrics endpoint: the first holds its port), appending
 * its output to log, and waits up to timeout_ms for it to exit:
 * *status is its wait status. Returns 0 when it exited, 1 when it still
 * ran after timeout_ms, 2 when service i's own process exited meanwhile
 * (then the copy may have had the database; in both cases it is SIGKILLed
 * and waited for, and service i's exit is left for sup_poll), -1 when it
 * could not be started. */
int sup_run_second_copy(sup *s, int i, const char *db, int timeout_ms, const char *log,
                        int *status);

/* Sends sig to service i and waits until it exited (after SIGTERM, for at
 * most stop_timeout_ms, then SIGKILL). sig 0 sends nothing and waits as
 * after SIGTERM, for a service that was already sent one: a second SIGTERM
 * could reach it after it stopped taking signals, in its cleanup. A service
 * not running is fine. */
int sup_kill_service(sup *s, int i, int sig);

/* Replaces the environment entries of service i (as sup_service_spec.env:
 * KEY=VALUE, NULL-terminated, copied; NULL for none) for its next start; a
 * running service keeps the environment it was started with. */
int sup_set_service_env(sup *s, int i, const char *const *env);

/* sup_kill_service with sig, then sup_start_service. */
int sup_restart_service(sup *s, int i, int sig);

/* The broker: start (on the same port and store after a stop), stop with
 * SIGTERM or SIGKILL, and both. Services keep running and reconnect. With
 * the cluster option these act on all three nodes. */
int sup_start_broker(sup *s);
void sup_stop_broker(sup *s, int sig);
int sup_restart_broker(sup *s, int sig);

/* The NATS nodes: 3 with the cluster option, else 1 (the broker). Node i
 * can be stopped with SIGTERM or SIGKILL (waiting until it is gone) and
 * started again on its ports and store; a cluster node's start waits until
 * its /healthz says ok, for at most 30 s. sup_node_pid is 0 when node i is
 * not running. sup_stream_leader is the index of the node leading stream,
 * or -1 (no cluster, no leader now, or no node answered). */
int sup_nats_nodes(const sup *s);
pid_t sup_node_pid(const sup *s, int i);
/* Node i's own URL (nats://127.0.0.1:PORT), for a client that takes one
 * URL: it learns the other nodes from the server and fails over to them. */
const char *sup_node_url(const sup *s, int i);
void sup_stop_node(sup *s, int i, int sig);
/* Deletes the JetStream store of node i, which must be stopped: what a
 * disk that failed and was replaced leaves. The node starts again empty and
 * takes the streams back from the others. Returns 0, or -1 when node i is
 * running or not a cluster node. */
int sup_lose_node_store(sup *s, int i);
int sup_start_node(sup *s, int i);
/* Starts the n nodes which[] that are down, all of them before waiting
 * for any: two nodes of a cluster that lost its quorum come back together. */
int sup_start_nodes(sup *s, const int *which, int n);
int sup_stream_leader(const sup *s, const char *stream);

/* Reaps children that exited on their own (never blocks). Returns how many
 * services exited since the last call; see sup_service_running. */
int sup_poll(sup *s);

/* Stops every service (SIGTERM, then SIGKILL after the grace), then the
 * broker, and waits until all are gone. Safe to call more than once. */
void sup_stop_all(sup *s);

/* sup_stop_all, removes a fresh work directory unless kept, frees. NULL ok. */
void sup_destroy(sup *s);

/* Changes whether sup_destroy keeps a fresh work directory. */
void sup_keep_workdir(sup *s, bool keep);

int sup_service_count(const sup *s);
int sup_find(const sup *s, const char *name);       /* index or -1 */
const char *sup_service_name(const sup *s, int i);
pid_t sup_service_pid(const sup *s, int i);         /* 0 when not running */
pid_t sup_service_last_pid(const sup *s, int i);    /* latest process, even exited; 0 never */
bool sup_service_running(const sup *s, int i);
int sup_service_starts(const sup *s, int i);        /* times started */
int sup_service_exit_status(const sup *s, int i);   /* last waitpid status, -1 if none */
const char *sup_db_path(const sup *s, int i);
const char *sup_log_path(const sup *s, int i);
const char *sup_metrics_addr(const sup *s, int i);  /* 127.0.0.1:PORT, "" when off */
/* GETs service i's /metrics into buf (NUL-terminated, cut at cap - 1);
 * returns the HTTP status, or -1 when nothing answered within 5 s. */
int sup_scrape(const sup *s, int i, char *buf, size_t cap);
/* The broker's PID, 0 when not running; with a cluster, the first running
 * node's. */
pid_t sup_broker_pid(const sup *s);
/* nats://127.0.0.1:PORT, "" before start; with a cluster, the three nodes'
 * URLs separated by commas. */
const char *sup_url(const sup *s);
const char *sup_workdir(const sup *s);

/* A database on the supervisor's private PostgreSQL server, which the
 * first call starts (as the postgres user when run as root; its log is
 * <workdir>/postgres.log, its data in a directory of its own under /tmp)
 * and sup_destroy stops and removes: creates database name unless it
 * exists and writes its postgresql:// URL to url. */
int sup_postgres_db(sup *s, const char *name, char *url, size_t cap);

/* The PostgreSQL server: sig (SIGKILL: a crash; SIGINT: a fast shutdown),
 * then a start on the same port and data, waiting until it accepts
 * connections; and its PID, 0 when none runs. */
int sup_restart_postgres(sup *s, int sig);
pid_t sup_postgres_pid(const sup *s);

/* Writes the PIDs of every running child (broker and PostgreSQL server
 * included) into out (at most cap) and returns how many are running. */
size_t sup_pids(const sup *s, pid_t *out, size_t cap);

#endif
