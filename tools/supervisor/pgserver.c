/* A private PostgreSQL server for the supervisor: initdb into a directory,
 * then the server itself as a child process on a free loopback port (its
 * socket in that directory too), databases created on demand, and a fast
 * shutdown at the end. The server runs as the postgres user when the
 * supervisor runs as root (it refuses root), and gets PR_SET_PDEATHSIG like
 * every child of the supervisor, so that it never outlives it. */
#include "pgserver.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "natsd.h"

#ifndef SUP_HAVE_PG

int pgserver_start(pgserver *p, const char *log_path)
{
    (void)p, (void)log_path;
    fprintf(stderr, "supervisor: this build has no PostgreSQL support: install libpq-dev and "
                    "build again (meson -Dpostgresql=enabled)\n");
    return -1;
}

int pgserver_database(pgserver *p, const char *name, char *url, size_t cap)
{
    (void)p, (void)name, (void)url, (void)cap;
    return -1;
}

void pgserver_stop(pgserver *p)
{
    (void)p;
}

int pgserver_restart(pgserver *p, int sig)
{
    (void)p, (void)sig;
    return -1;
}

#else

#include <libpq-fe.h>

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The newest /usr/lib/postgresql/N/bin with a pg_ctl, or "" when none. */
static void find_bin(char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir("/usr/lib/postgresql");
    int best = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int v = atoi(e->d_name);
        char ctl[512];
        snprintf(ctl, sizeof ctl, "/usr/lib/postgresql/%s/bin/pg_ctl", e->d_name);
        if (v > best && access(ctl, X_OK) == 0) {
            best = v;
            snprintf(out, cap, "/usr/lib/postgresql/%s/bin", e->d_name);
        }
    }
    if (d)
        closedir(d);
}

/* Starts argv (as postgres when root) with output into log. */
static pid_t spawn(const char *const *argv, const char *log, uid_t uid, gid_t gid)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (geteuid() == 0 && (setgid(gid) != 0 || setuid(uid) != 0))
            _exit(126);
        /* after setuid, which clears it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs argv to its end; its exit status. */
static int run(const char *const *argv, const char *log, uid_t uid, gid_t gid)
{
    pid_t pid = spawn(argv, log, uid, gid);
    if (pid < 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* Starts the server on p's directory and port and waits until it accepts
 * connections. After a SIGKILL the old server's backends may hold its
 * shared memory for a moment: a start that fails then is tried again. */
static int serve(pgserver *p)
{
    char data[600], server[600], port[16];
    snprintf(data, sizeof data, "%s/data", p->dir);
    snprintf(server, sizeof server, "%s/postgres", p->bin);
    snprintf(port, sizeof port, "%d", p->port);
    /* Every client connects over TCP to 127.0.0.1: no Unix-domain socket,
     * whose path may hold at most 107 bytes, which the server's directory
     * under a long TMPDIR passes (the server then refuses to start). */
    const char *argv[] = { server, "-D", data, "-p", port, "-k", "", "-c",
                           "listen_addresses=127.0.0.1", "-c", "max_connections=200", NULL };
    char conninfo[200];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=postgres dbname=postgres",
             p->port);
    for (int waited = 0; waited < 30000;) {
        p->pid = spawn(argv, p->log, p->uid, p->gid);
        if (p->pid < 0) {
            fprintf(stderr, "supervisor: cannot start the PostgreSQL server: %s\n",
                    strerror(errno));
            p->pid = 0;
            return -1;
        }
        for (; waited < 30000; waited += 50) {
            if (PQping(conninfo) == PQPING_OK)
                return 0;
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                p->pid = 0;
                break;
            }
            sleep_ms(50);
        }
        sleep_ms(200);
        waited += 200;
    }
    fprintf(stderr, "supervisor: the PostgreSQL server did not start; see %s\n", p->log);
    return -1;
}

int pgserver_restart(pgserver *p, int sig)
{
    if (p->pid > 0) {
        kill(p->pid, sig);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
    }
    return serve(p);
}

int pgserver_start(pgserver *p, const char *log_path)
{
    memset(p, 0, sizeof *p);
    find_bin(p->bin, sizeof p->bin);
    if (!p->bin[0]) {
        fprintf(stderr, "supervisor: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/"
                        "pg_ctl): apt-get install postgresql, or run tools/demo, which "
                        "installs it\n");
        return -1;
    }
    p->uid = getuid();
    p->gid = getgid();
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "supervisor: running as root, but there is no postgres user to run "
                            "the PostgreSQL server as\n");
            return -1;
        }
        p->uid = pw->pw_uid;
        p->gid = pw->pw_gid;
    }
    /* The server's own directory is a fresh one of its user: the work
     * directory is its owner's alone. The log stays in the work directory
     * (opened before the switch to the server's user). */
    if (natsd_tmp_path(p->dir, sizeof p->dir, "choreo-pg-XXXXXX") != 0 || !mkdtemp(p->dir)) {
        fprintf(stderr, "supervisor: cannot create %s: %s\n", p->dir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && chown(p->dir, p->uid, p->gid) != 0) {
        fprintf(stderr, "supervisor: cannot give %s to the postgres user: %s\n", p->dir,
                strerror(errno));
        rmdir(p->dir);
        return -1;
    }
    char data[600], log[600], initdb[600];
    snprintf(data, sizeof data, "%s/data", p->dir);
    snprintf(log, sizeof log, "%s", log_path);
    snprintf(initdb, sizeof initdb, "%s/initdb", p->bin);
    const char *init_argv[] = { initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                "--locale=C", NULL };
    if (run(init_argv, log, p->uid, p->gid) != 0) {
        fprintf(stderr, "supervisor: initdb failed; see %s\n", log);
        if (geteuid() == 0)
            fprintf(stderr, "supervisor: initdb runs as the postgres user, which must be able "
                            "to pass through every directory above %s (check TMPDIR)\n",
                    p->dir);
        return -1;
    }
    p->port = free_port();
    snprintf(p->log, sizeof p->log, "%s", log);
    if (serve(p) == 0)
        return 0;
    pgserver_stop(p);
    return -1;
}

int pgserver_database(pgserver *p, const char *name, char *url, size_t cap)
{
    char admin[200];
    snprintf(admin, sizeof admin, "postgresql://postgres@127.0.0.1:%d/postgres", p->port);
    PGconn *c = PQconnectdb(admin);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "supervisor: cannot connect to the PostgreSQL server: %s",
                PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT 1 FROM pg_database WHERE datname = '%s'", name);
    PGresult *r = PQexec(c, sql);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    int rc = 0;
    if (!exists) {
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
        r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "supervisor: cannot create database %s: %s", name,
                    PQresultErrorMessage(r));
            rc = -1;
        }
        PQclear(r);
    }
    PQfinish(c);
    snprintf(url, cap, "postgresql://postgres@127.0.0.1:%d/%s", p->port, name);
    return rc;
}

void pgserver_stop(pgserver *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGINT); /* fast shutdown: clients are cut off */
        int waited = 0;
        while (waitpid(p->pid, NULL, WNOHANG) != p->pid && waited < 10000) {
            sleep_ms(20);
            waited += 20;
        }
        if (waited >= 10000) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        p->pid = 0;
    }
    if (p->dir[0]) {
        natsd_remove_tree(p->dir);
        p->dir[0] = '\0';
    }
}

#endif
