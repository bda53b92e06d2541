/* Starts and stops a private nats-server with JetStream on a loopback port,
 * for the tests, the benchmarks and the demo supervisor. */
#ifndef CHOREO_NATSD_H
#define CHOREO_NATSD_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct natsd {
    pid_t pid;             /* 0 when not running */
    int port;
    char dir[512];         /* store and ports-file directory */
    char url[64];          /* nats://127.0.0.1:PORT */
    char user[64];
    char pass[64];
    char config[512];      /* configuration file given with -c, or "" */
} natsd;

/* The nats-server executable: $CHOREO_NATS_SERVER, /usr/sbin/nats-server, or
 * "nats-server" on PATH. */
const char *natsd_binary(void);

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

/* Stops with sig (SIGTERM or SIGKILL) and waits until the process is gone. */
void natsd_stop(natsd *d, int sig);

/* Starts again on the same port and store after natsd_stop. */
int natsd_restart(natsd *d);

#endif
