/* One process per database file. Two processes on one SQLite file would each
 * relay, retry and prune the same outbox rows, so a service holds an
 * exclusive flock() on "<db>.lock" for its whole life, with its pid, name and
 * start time written in that file so that a second process can say who is in
 * the way. The kernel releases a flock when its holder exits or is killed.
 * The lock sits beside the database's real file, whatever link names it. */
#include "dblock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "status.h"

/* Longest lock file path, and most bytes read from a holder's lock file. */
#define LOCK_PATH_MAX 4096
#define HOLDER_MAX 512

struct choreo_dblock {
    int fd;
};

/* What the holder wrote into the lock file; empty fields when unknown. */
struct holder {
    long pid;
    char service[128];
    char started[32];
};

/* The lock file's path: beside the database's real file, so that a symbolic
 * link to it (or to a directory on its way) leads to the same lock, as it
 * leads SQLite to the same file and journal. A database not made yet is
 * placed by its directory's real path. */
static bool lock_path(const char *db, char *out, size_t cap)
{
    char real[PATH_MAX];
    const char *base = db;
    if (strncmp(db, "file:", 5) == 0) {
        /* a SQLite URI: locked by its text, as given */
    } else if (realpath(db, real)) {
        base = real;
    } else if (errno == ENOENT) {
        const char *slash = strrchr(db, '/');
        char dir[PATH_MAX];
        int n = slash ? snprintf(dir, sizeof dir, "%.*s", (int)(slash - db + (slash == db)), db)
                      : snprintf(dir, sizeof dir, ".");
        char rdir[PATH_MAX];
        if (n > 0 && (size_t)n < sizeof dir && realpath(dir, rdir)) {
            n = snprintf(real, sizeof real, "%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir,
                         slash ? slash + 1 : db);
            if (n > 0 && (size_t)n < sizeof real)
                base = real;
        }
    }
    int n = snprintf(out, cap, "%s.lock", base);
    return n > 0 && (size_t)n < cap;
}

static void format_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = '\0';
}

/* Copies the value of "key=" from the lines of text, up to a newline. */
static void field(const char *text, const char *key, char *out, size_t cap)
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

/* Reads the holder's record. The holder writes it just after it locks, so
 * an empty file is read again for a moment before giving up. */
static bool read_holder(int fd, struct holder *h)
{
    memset(h, 0, sizeof *h);
    char text[HOLDER_MAX];
    for (int attempt = 0; attempt < 50; attempt++) {
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        if (n > 0) {
            text[n] = '\0';
            char pid[24];
            field(text, "pid", pid, sizeof pid);
            field(text, "service", h->service, sizeof h->service);
            field(text, "started", h->started, sizeof h->started);
            h->pid = strtol(pid, NULL, 10);
            if (h->pid > 0 && h->service[0] && h->started[0])
                return true;
        }
        struct timespec ts = { 0, 2 * 1000000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

static choreo_status refuse(int fd, const char *db, const char *path)
{
    struct holder h;
    if (!read_holder(fd, &h))
        return choreo__fail(CHOREO_ELOCKED,
                            "database %s is in use by another process (its lock file %s does "
                            "not say which): one process per database file; stop that "
                            "process, or give this one its own db (several instances of a "
                            "service need a shared store such as PostgreSQL, not one SQLite "
                            "file)",
                            db, path);
    return choreo__fail(CHOREO_ELOCKED,
                        "database %s is in use by service %s (pid %ld, started %s): one "
                        "process per database file; stop that process, or give this one its "
                        "own db (several instances of a service need a shared store such as "
                        "PostgreSQL, not one SQLite file)",
                        db, h.service, h.pid, h.started);
}

/* Replaces the lock file's content with this process's record. */
static choreo_status write_holder(int fd, const char *path, const char *service)
{
    char started[32], text[HOLDER_MAX];
    format_now(started);
    int n = snprintf(text, sizeof text, "pid=%ld\nservice=%s\nstarted=%s\n", (long)getpid(),
                     service, started);
    if (n < 0 || (size_t)n >= sizeof text)
        return choreo__fail(CHOREO_EINVAL, "service name too long for the lock file %s", path);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != (ssize_t)n)
        return choreo__fail(CHOREO_ESTORE,
                            "cannot write the lock file %s: %s; check the disk and the "
                            "directory's permissions",
                            path, strerror(errno));
    return CHOREO_OK;
}

choreo_status choreo__dblock_acquire(choreo_dblock **out, const char *db, const char *service)
{
    if (!out || !db || !service)
        return choreo__fail(CHOREO_EINVAL, "choreo__dblock_acquire: NULL argument");
    *out = NULL;
    if (db[0] == '\0' || strcmp(db, ":memory:") == 0)
        return CHOREO_OK; /* private to this connection: nothing to share */
    char path[LOCK_PATH_MAX];
    if (!lock_path(db, path, sizeof path))
        return choreo__fail(CHOREO_ECONFIG, "setting db: the path %.64s... is too long", db);
    /* Refused before a lock file is made beside it. */
    struct stat sb;
    if (stat(db, &sb) == 0 && S_ISDIR(sb.st_mode))
        return choreo__fail(CHOREO_ECONFIG,
                            "setting db: %s is a directory: give the database file's path "
                            "(a new file is created)", db);
    /* SQLite names the journal after the path it was given, so under two
     * names one database has two journals, and a crash under one name can
     * corrupt it for the other; nor would this lock see the other name. */
    if (stat(db, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink > 1)
        return choreo__fail(CHOREO_ECONFIG,
                            "setting db: %s has %lu names (hard links): a database under two "
                            "names has two journals and two locks, and a crash can corrupt "
                            "it; remove the other names (find / -samefile %s) or copy the "
                            "database to a file of its own",
                            db, (unsigned long)sb.st_nlink, db);
    /* Close-on-exec, so that a program the service starts does not hold
     * the lock after the service is gone. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return choreo__fail(CHOREO_ESTORE,
                            "cannot open the lock file %s of database %s: %s; check that the "
                            "directory exists and is writable",
                            path, db, strerror(errno));
    int rc;
    do
        rc = flock(fd, LOCK_EX | LOCK_NB);
    while (rc != 0 && errno == EINTR);
    choreo_status s;
    if (rc != 0) {
        s = errno == EWOULDBLOCK
                ? refuse(fd, db, path)
                : choreo__fail(CHOREO_ESTORE, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return s;
    }
    s = write_holder(fd, path, service);
    choreo_dblock *lk = s == CHOREO_OK ? malloc(sizeof *lk) : NULL;
    if (s == CHOREO_OK && !lk)
        s = choreo__fail(CHOREO_ENOMEM, "out of memory locking %s", db);
    if (s != CHOREO_OK) {
        close(fd); /* closing the only descriptor releases the lock */
        return s;
    }
    lk->fd = fd;
    *out = lk;
    return CHOREO_OK;
}

void choreo__dblock_release(choreo_dblock **lk)
{
    if (!lk || !*lk)
        return;
    /* Emptied first, so that the file does not name a process that is gone;
     * a process killed before this (or a failed truncate) leaves its
     * record, which the next holder overwrites. */
    int rc = ftruncate((*lk)->fd, 0);
    (void)rc;
    close((*lk)->fd); /* releases the lock */
    free(*lk);
    *lk = NULL;
}
