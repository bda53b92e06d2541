/* What a service's lock file says: whether a process runs on a database,
 * read without taking the lock (status, review). */
#ifndef CHOREOCTL_LOCKFILE_H
#define CHOREOCTL_LOCKFILE_H

#include <stdbool.h>

typedef struct ctl_lock {
    bool running;       /* a process holds the lock (or, when that cannot be
                         * told, the process the lock file names is alive) */
    long pid;           /* the pid the lock file names; 0 when none */
    char started[32];   /* its start time as the service wrote it, or "" */
    char service[128];  /* the service's name as it wrote it, or "" */
} ctl_lock;

/* Reads "<db>.lock" into *out (all zero when there is no record: no
 * service ever started on db, or the last one stopped cleanly). Never
 * takes the lock, so it cannot keep a service from starting. */
void ctl_lock_read(const char *db, ctl_lock *out);

#endif
