/* The lock file of a service's database. A running service holds an
 * exclusive flock() on "<db>.lock" (beside the real file, whatever link
 * names it) for its whole life and has written its pid, name and start time
 * into it; it empties the file when it stops.
 * Taking the lock to test it would, for that moment, keep the service from
 * starting, so the record is read instead: the service runs when the
 * process it names is alive and has the lock file open. A pid alone would
 * not do: one killed outright leaves its record behind, and its pid may be
 * reused by any process. Where that process's open files cannot be read
 * (another user's), its being alive is all there is to go by. */
#include "lockfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Most bytes read from a lock file: the service writes three short lines. */
#define LOCK_TEXT_MAX 512

/* Copies the value of "key=" from the lines of text, up to a line break. */
static void lock_field(const char *text, const char *key, char *out, size_t cap)
{
    out[0] = '\0';
    size_t klen = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
            snprintf(out, cap, "%.*s", (int)(len - klen - 1), p + klen + 1);
            return;
        }
        p = nl ? nl + 1 : NULL;
    }
}

/* Whether process pid has the file fd is open on open: 1 or 0, or -1 when
 * that cannot be told. Its /proc/PID/fd entries are followed to their
 * files, so the comparison sees the files as this process does. */
static int has_open(long pid, int fd)
{
    struct stat want;
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
    DIR *d = fstat(fd, &want) == 0 ? opendir(dir) : NULL;
    if (!d)
        return errno == ENOENT ? 0 : -1; /* ENOENT: no such process */
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char entry[340];
        struct stat st;
        snprintf(entry, sizeof entry, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(entry, &st) == 0 && st.st_dev == want.st_dev &&
            st.st_ino == want.st_ino)
            found = 1;
    }
    closedir(d);
    return found;
}

void ctl_lock_read(const char *db, ctl_lock *out)
{
    memset(out, 0, sizeof *out);
    char path[4096], text[LOCK_TEXT_MAX], pid[24], real[PATH_MAX];
    /* The service locks beside the database's real file, whatever link
     * names it. */
    if (strncmp(db, "file:", 5) != 0 && realpath(db, real))
        db = real;
    int n = snprintf(path, sizeof path, "%s.lock", db);
    if (n < 0 || (size_t)n >= sizeof path)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* no service has started on this database */
    ssize_t got = read(fd, text, sizeof text - 1);
    if (got <= 0) {
        close(fd);
        return; /* emptied: the last service stopped cleanly */
    }
    text[got] = '\0';
    lock_field(text, "pid", pid, sizeof pid);
    char *end = NULL;
    errno = 0;
    long p = strtol(pid, &end, 10);
    if (errno || end == pid || *end || p <= 0) {
        close(fd);
        return;
    }
    out->pid = p;
    lock_field(text, "service", out->service, sizeof out->service);
    lock_field(text, "started", out->started, sizeof out->started);
    /* A process killed outright leaves its record behind, naming a pid that
     * is gone (or reused). EPERM: alive, but another user's. */
    out->running = (kill((pid_t)p, 0) == 0 || errno == EPERM) && has_open(p, fd) != 0;
    close(fd);
}
