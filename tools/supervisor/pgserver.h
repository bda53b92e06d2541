/* A private PostgreSQL server in a directory of the supervisor's work
 * directory, on a free loopback port, for services whose database is
 * PostgreSQL. Functions returning int return 0 on success and -1 after
 * printing why to stderr. */
#ifndef CHOREO_PGSERVER_H
#define CHOREO_PGSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pgserver {
    char dir[400];
    char bin[300];   /* the server's binaries */
    int port;
    uid_t uid;       /* the server runs as: postgres when we are root */
    gid_t gid;
    pid_t pid;       /* the server's, 0 when not running */
    char log[600];
} pgserver;

/* initdb into a fresh directory under $TMPDIR (or /tmp) that belongs to
 * the server's user, and start the server, logging to log_path (waits
 * until it accepts connections). */
int pgserver_start(pgserver *p, const char *log_path);

/* Creates database name unless it exists; its URL goes to url. */
int pgserver_database(pgserver *p, const char *name, char *url, size_t cap);

/* Sends sig to the server (SIGKILL: a crash, recovered from its WAL at the
 * next start; SIGINT: a fast shutdown), waits for it, and starts it again
 * on the same port and data. */
int pgserver_restart(pgserver *p, int sig);

/* Stops the server (SIGINT: fast shutdown; SIGKILL after 10 s), waits for
 * it and removes its directory; nothing when not running. */
void pgserver_stop(pgserver *p);

#endif
