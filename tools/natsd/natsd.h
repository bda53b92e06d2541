/* Starts and stops a private nats-server with JetStream on a loopback port,
 * for the tests, the benchmarks and the demo supervisor; or a private
 * three-node cluster of them, for replicated (R3) streams. */
#ifndef CHOREO_NATSD_H
#define CHOREO_NATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct natsd {
    pid_t pid;             /* 0 when not running */
    int port;
    char dir[512];         /* store and ports-file directory */
    char url[64];          /* nats://127.0.0.1:PORT */
    char user[64];
    char pass[64];
    char config[512];      /* configuration file given with -c, or "" */
    int profile_port;      /* nats-server's profiling port (--profile), or 0 */
} natsd;

/* The nats-server executable: $CHOREO_NATS_SERVER, /usr/sbin/nats-server, or
 * "nats-server" on PATH. */
const char *natsd_binary(void);

/* Every server starts with GOMAXPROCS set to half the machine's CPUs (at
 * least 1) unless the environment sets GOMAXPROCS: the broker shares the
 * machine with the services, and Go's scheduler, with a thread per CPU,
 * wakes an idle one for each goroutine a message makes runnable. On two
 * CPUs one thread cost less CPU and moved more events (README,
 * "Performance"). Returns the GOMAXPROCS the servers get (a value the
 * environment sets is passed on as it is). */
long natsd_gomaxprocs(void);

/* Starts a server storing into dir (created if needed). port 0 picks a free
 * port. user/pass may be NULL for no authorization. Waits until it accepts
 * connections. Returns 0, or -1 with a message on stderr. The server is
 * killed if the calling thread's process dies (PR_SET_PDEATHSIG). */
int natsd_start(natsd *d, const char *dir, int port, const char *user, const char *pass);

/* Starts a server as natsd_start does, with no user, also reading the
 * nats-server configuration file config_file (-c) when it is not NULL: a
 * tls block, an authorization block (token, users with nkeys), and so on.
 * The address (127.0.0.1), the port, JetStream and the store directory
 * given on the command line win over the file's. With TLS on, clients still
 * connect to d->url (nats://127.0.0.1:PORT): the server announces that it
 * requires TLS and the client upgrades the connection. The path is kept for
 * natsd_restart; the file must stay until the server is stopped for good. */
int natsd_start_config(natsd *d, const char *dir, int port, const char *config_file);

/* natsd_start_config with nats-server's profiling endpoint on
 * 127.0.0.1:profile_port (0: none), kept across natsd_restart: the broker's
 * CPU profile is http://127.0.0.1:PORT/debug/pprof/profile?seconds=N, which
 * tools/perf/pprof_top.py prints. */
int natsd_start_profiled(natsd *d, const char *dir, int port, const char *config_file,
                         int profile_port);

/* Stops with sig (SIGTERM or SIGKILL) and waits until the process is gone. */
void natsd_stop(natsd *d, int sig);

/* Starts again on the same port and store after natsd_stop. */
int natsd_restart(natsd *d);

/* A three-node cluster on loopback: node i is named n<i+1>, has its own
 * client, cluster and monitoring ports (free ports below the range Linux
 * gives outgoing connections, so that a stopped node can take them again),
 * its own configuration file and store under dir/n<i+1>, and routes to all
 * three. Not thread-safe. */
#define NATSD_CLUSTER_NODES 3

typedef struct natsd_cluster {
    char dir[400];
    natsd node[NATSD_CLUSTER_NODES];          /* node[i].url is its client URL */
    int cluster_port[NATSD_CLUSTER_NODES];
    int monitor_port[NATSD_CLUSTER_NODES];
    char urls[NATSD_CLUSTER_NODES * 32];      /* "nats://127.0.0.1:A,...:B,...:C" */
} natsd_cluster;

/* Starts the three nodes storing under dir (created if needed) and waits
 * until each one's /healthz says ok (a JetStream meta leader exists), for
 * at most 20 s. Returns 0, or -1 with a message on stderr and nothing left
 * running. Each node is killed if the calling thread's process dies. */
int natsd_cluster_start(natsd_cluster *c, const char *dir);

/* Stops node i with sig (SIGTERM or SIGKILL) and waits until it is gone. */
void natsd_cluster_stop_node(natsd_cluster *c, int i, int sig);

/* Starts node i again on its ports and store after natsd_cluster_stop_node,
 * and waits (at most timeout_ms) until its /healthz says ok. */
int natsd_cluster_restart_node(natsd_cluster *c, int i, int timeout_ms);

/* Starts the n nodes which[] again, all of them before waiting (at most
 * timeout_ms in all) until each one's /healthz says ok: after a quorum
 * loss no node is healthy until enough of them are back. */
int natsd_cluster_restart_nodes(natsd_cluster *c, const int *which, int n, int timeout_ms);

/* Stops every running node with sig and waits until all are gone. */
void natsd_cluster_stop(natsd_cluster *c, int sig);

/* Whether node i's /healthz answers ok within timeout_ms. */
bool natsd_cluster_healthy(const natsd_cluster *c, int i, int timeout_ms);

/* The index of the node that leads stream (its cluster leader as the
 * monitoring endpoint /jsz?accounts=true&streams=true of a running node
 * reports it), or -1 when no running node names one (no such stream, an
 * election under way, or no node answers within about a second). */
int natsd_cluster_stream_leader(const natsd_cluster *c, const char *stream);

/* GETs path from the HTTP server on 127.0.0.1:port into buf
 * (NUL-terminated, cut at cap - 1), waiting at most timeout_ms in all.
 * Returns the HTTP status, or -1 when nothing answered in time. */
int natsd_http_get(int port, const char *path, char *buf, size_t cap, int timeout_ms);

/* Writes "$TMPDIR/name" to out, or "/tmp/name" when TMPDIR is unset or
 * empty: where tests and tools make their files, so that a run's TMPDIR
 * holds them all. Returns 0, or -1 with errno ENAMETOOLONG when it does
 * not fit in cap. */
int natsd_tmp_path(char *out, size_t cap, const char *name);

/* A loopback port free now, picked at random below Linux's range for
 * outgoing connections (32768-60999), where the local end of some
 * connection cannot take it before its user listens on it; -1 when none
 * was found. */
int natsd_free_port(void);

/* Removes dir and everything below it, going on past what cannot be
 * removed; links are removed, never followed. */
void natsd_remove_tree(const char *dir);

#endif
