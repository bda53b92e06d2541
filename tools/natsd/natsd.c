/* A private nats-server per test or demo run: its own store directory, a
 * free loopback port found by the server itself (-p -1 with a ports file),
 * and a restart on the same port and store for outage tests. Or three of
 * them routed into a cluster, with readiness and the stream leader read
 * from each node's monitoring port. */
#define _XOPEN_SOURCE 700 /* nftw */
#define _GNU_SOURCE        /* F_OFD_SETLK */
#include "natsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *natsd_binary(void)
{
    const char *env = getenv("CHOREO_NATS_SERVER");
    if (env && *env)
        return env;
    if (access("/usr/sbin/nats-server", X_OK) == 0)
        return "/usr/sbin/nats-server";
    return "nats-server";
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* A bare TCP connect that sends nothing, so it tells readiness whether or
 * not the server's configuration requires TLS or credentials. */
static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Reads the client port from the ports file nats-server writes for -p -1:
 * {"nats":["nats://127.0.0.1:PORT"]}, with tls:// instead when its
 * configuration requires TLS, and more lists (monitoring, ...) when the
 * configuration opens other ports. */
static int read_port(const natsd *d)
{
    char path[700];
    snprintf(path, sizeof path, "%s/nats-server_%d.ports", d->dir, (int)d->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *list = strstr(buf, "\"nats\"");
    const char *scheme = list ? strstr(list, "://") : NULL;
    const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
    return colon ? (int)strtol(colon + 1, NULL, 10) : 0;
}

extern char **environ;

/* GOMAXPROCS as the environment sets it, or NULL. */
static const char *procs_set(void)
{
    const char *env = getenv("GOMAXPROCS");
    return env && *env ? env : NULL;
}

/* Half the machine's CPUs, at least 1. */
static long procs_default(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 2 ? cpus / 2 : 1;
}

long natsd_gomaxprocs(void)
{
    const char *set = procs_set();
    return set ? strtol(set, NULL, 10) : procs_default();
}

/* The environment nats-server starts with: this process's, plus
 * GOMAXPROCS when it names none (see natsd.h). Built before the fork, so
 * that the child of a threaded process only switches environ to it. NULL
 * when out of memory: the child then keeps this process's. */
static char **broker_env(char *procs, size_t cap)
{
    if (procs_set())
        return NULL;
    snprintf(procs, cap, "GOMAXPROCS=%ld", procs_default());
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    memcpy(env, environ, n * sizeof *env);
    env[n] = procs;
    return env;
}

/* Writes beside the configuration file config a file that includes it and
 * turns JetStream on with its store, into out: nats-server 2.9 reloading
 * (SIGHUP) a file without a jetstream block shuts JetStream down, even when
 * the command line turned it on. An include names a file of the including
 * file's directory. */
static int wrap_config(const char *config, const char *store, char *out, size_t cap)
{
    const char *slash = strrchr(config, '/');
    const char *name = slash ? slash + 1 : config;
    if ((size_t)snprintf(out, cap, "%s.natsd", config) >= cap) {
        fprintf(stderr, "natsd: the path of %s is too long\n", config);
        return -1;
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "natsd: cannot write %s: %s\n", out, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f, "# %s with JetStream on, so that a reload (SIGHUP) keeps it on.\n"
               "include \"%s\"\njetstream {\n  store_dir: \"%s\"\n}\n",
            name, name, store);
    if (fclose(f) != 0) {
        fprintf(stderr, "natsd: cannot write %s: %s\n", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int spawn(natsd *d)
{
    char port[16], store[600], log[600], wrapped[600];
    snprintf(port, sizeof port, "%d", d->port ? d->port : -1);
    snprintf(store, sizeof store, "%s/js", d->dir);
    snprintf(log, sizeof log, "%s/nats-server.log", d->dir);
    const char *argv[24];
    int n = 0;
    argv[n++] = natsd_binary();
    if (d->config[0]) {
        /* Flags given on the command line override the file's settings, so
         * the address and port below hold with any configuration; the
         * store is the wrapper's. */
        if (wrap_config(d->config, store, wrapped, sizeof wrapped) != 0)
            return -1;
        argv[n++] = "-c";
        argv[n++] = wrapped;
    }
    argv[n++] = "-a";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "--ports_file_dir";
    argv[n++] = d->dir;
    char profile[16];
    if (d->profile_port > 0) {
        snprintf(profile, sizeof profile, "%d", d->profile_port);
        argv[n++] = "--profile";
        argv[n++] = profile;
    }
    if (!d->config[0]) {
        argv[n++] = "-js";
        argv[n++] = "-sd";
        argv[n++] = store;
    }
    argv[n++] = "-l";
    argv[n++] = log;
    if (d->user[0]) {
        argv[n++] = "--user";
        argv[n++] = d->user;
        argv[n++] = "--pass";
        argv[n++] = d->pass;
    }
    argv[n] = NULL;
    char procs[32];
    char **env = broker_env(procs, sizeof procs);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        free(env);
    if (pid < 0) {
        fprintf(stderr, "natsd: fork failed: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        if (env)
            environ = env;
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "natsd: cannot run %s: %s; install the nats-server package or set "
                        "CHOREO_NATS_SERVER\n", argv[0], strerror(errno));
        _exit(127);
    }
    d->pid = pid;
    for (int waited = 0; waited < 10000; waited += 10) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "natsd: nats-server exited at start (status %d); see %s\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1, log);
            d->pid = 0;
            return -1;
        }
        if (!d->port)
            d->port = read_port(d);
        if (d->port && port_open(d->port)) {
            snprintf(d->url, sizeof d->url, "nats://127.0.0.1:%d", d->port);
            return 0;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "natsd: nats-server did not accept connections within 10 s; see %s\n", log);
    natsd_stop(d, SIGKILL);
    return -1;
}

int natsd_start(natsd *d, const char *dir, int port, const char *user, const char *pass)
{
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    mkdir(dir, 0700);
    d->port = port;
    if (user)
        snprintf(d->user, sizeof d->user, "%s", user);
    if (pass)
        snprintf(d->pass, sizeof d->pass, "%s", pass);
    return spawn(d);
}

int natsd_start_config(natsd *d, const char *dir, int port, const char *config_file)
{
    return natsd_start_profiled(d, dir, port, config_file, 0);
}

int natsd_start_profiled(natsd *d, const char *dir, int port, const char *config_file,
                         int profile_port)
{
    memset(d, 0, sizeof *d);
    d->profile_port = profile_port;
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    mkdir(dir, 0700);
    d->port = port;
    if (config_file) {
        if (strlen(config_file) >= sizeof d->config) {
            fprintf(stderr, "natsd: configuration path too long (at most %zu bytes): %s\n",
                    sizeof d->config - 1, config_file);
            return -1;
        }
        snprintf(d->config, sizeof d->config, "%s", config_file);
    }
    return spawn(d);
}

void natsd_stop(natsd *d, int sig)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, sig);
    int status;
    for (int waited = 0; waitpid(d->pid, &status, WNOHANG) == 0; waited += 10) {
        if (waited == 10000)
            kill(d->pid, SIGKILL);
        sleep_ms(10);
    }
    d->pid = 0;
}

int natsd_restart(natsd *d)
{
    if (d->pid > 0)
        return 0;
    return spawn(d);
}

/* ---- A three-node cluster ---------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int natsd_http_get(int port, const char *path, char *buf, size_t cap, int timeout_ms)
{
    buf[0] = '\0';
    long long until = now_ms() + timeout_ms;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char req[512];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t got = 0;
    if (len > 0 && len < (int)sizeof req && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, (size_t)len) == len) {
        for (ssize_t n; got + 1 < cap && now_ms() < until &&
                        (n = read(fd, buf + got, cap - 1 - got)) > 0;)
            got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

/* Reserves port against the other processes of the machine that choose
 * ports here (tests side by side, each starting servers and services): a
 * port free now stays free only until someone binds it, and two of them
 * could choose it in between. The reservation is a lock on byte `port` of
 * one shared file, held by an open file description that is never closed,
 * so it lasts as long as this process. Returns false when another holds
 * it; true also when the file cannot be used (then the bind test alone
 * decides, as before). */
static bool reserve(int port)
{
    int fd = open("/tmp/choreo-ports.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return true;
    struct flock l = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = port, .l_len = 1 };
    if (fcntl(fd, F_OFD_SETLK, &l) == 0)
        return true;
    int err = errno;
    close(fd);
    return err != EAGAIN && err != EACCES;
}

/* A loopback port free now, below Linux's range for outgoing connections
 * (32768-60999): a killed node takes its ports again when it restarts, and
 * a port from that range could meanwhile be the local end of a route or a
 * client connection. taken holds the ports chosen so far (n of them). */
static int free_port(const int *taken, int n)
{
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() ^ (unsigned)time(NULL) ^ (unsigned)now_ms();
    for (int attempt = 0; attempt < 500; attempt++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000);
        bool dup = false;
        for (int i = 0; i < n && !dup; i++)
            dup = taken[i] == port;
        if (dup)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok && reserve(port))
            return port;
    }
    return -1;
}

int natsd_free_port(void)
{
    return free_port(NULL, 0);
}

/* Writes node i's configuration: its name, monitoring port and cluster
 * block. The client address, port and JetStream store come from the
 * command line (natsd_start_config). */
static int write_node_config(const natsd_cluster *c, int i, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "natsd: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "server_name: n%d\nhttp: 127.0.0.1:%d\n", i + 1, c->monitor_port[i]);
    fprintf(f, "cluster {\n  name: choreo\n  listen: 127.0.0.1:%d\n  routes: [", c->cluster_port[i]);
    for (int k = 0; k < NATSD_CLUSTER_NODES; k++)
        fprintf(f, "%s nats-route://127.0.0.1:%d", k ? "," : "", c->cluster_port[k]);
    fprintf(f, " ]\n}\n");
    return fclose(f) == 0 ? 0 : -1;
}

bool natsd_cluster_healthy(const natsd_cluster *c, int i, int timeout_ms)
{
    char buf[1024];
    return natsd_http_get(c->monitor_port[i], "/healthz", buf, sizeof buf, timeout_ms) == 200 &&
           strstr(buf, "\"ok\"") != NULL;
}

/* Polls node i's /healthz until it says ok or until (a monotonic ms). */
static bool wait_healthy(const natsd_cluster *c, int i, long long until)
{
    for (;;) {
        if (natsd_cluster_healthy(c, i, 1000))
            return true;
        if (now_ms() >= until)
            return false;
        sleep_ms(50);
    }
}

int natsd_cluster_start(natsd_cluster *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    mkdir(dir, 0700);
    int taken[3 * NATSD_CLUSTER_NODES], n = 0;
    for (; n < 3 * NATSD_CLUSTER_NODES; n++) {
        if ((taken[n] = free_port(taken, n)) < 0) {
            fprintf(stderr, "natsd: no free loopback ports for a cluster node\n");
            return -1;
        }
    }
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++) {
        c->node[i].port = taken[3 * i];
        c->cluster_port[i] = taken[3 * i + 1];
        c->monitor_port[i] = taken[3 * i + 2];
    }
    size_t len = 0;
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++) {
        char ndir[480], conf[520];
        snprintf(ndir, sizeof ndir, "%s/n%d", dir, i + 1);
        snprintf(conf, sizeof conf, "%s/n%d.conf", dir, i + 1);
        int port = c->node[i].port;
        if (write_node_config(c, i, conf) != 0 ||
            natsd_start_config(&c->node[i], ndir, port, conf) != 0) {
            natsd_cluster_stop(c, SIGKILL);
            return -1;
        }
        len += (size_t)snprintf(c->urls + len, sizeof c->urls - len, "%s%s", i ? "," : "",
                                c->node[i].url);
    }
    long long until = now_ms() + 20000;
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++) {
        if (!wait_healthy(c, i, until)) {
            fprintf(stderr, "natsd: cluster node n%d not healthy within 20 s; see %s/nats-server.log\n",
                    i + 1, c->node[i].dir);
            natsd_cluster_stop(c, SIGKILL);
            return -1;
        }
    }
    return 0;
}

void natsd_cluster_stop_node(natsd_cluster *c, int i, int sig)
{
    if (i >= 0 && i < NATSD_CLUSTER_NODES)
        natsd_stop(&c->node[i], sig);
}

int natsd_cluster_restart_nodes(natsd_cluster *c, const int *which, int n, int timeout_ms)
{
    for (int k = 0; k < n; k++)
        if (which[k] < 0 || which[k] >= NATSD_CLUSTER_NODES)
            return -1;
    /* Every node is started before any is waited for: a node that comes
     * back to a cluster without a quorum is not healthy until enough of
     * the others are back too. */
    for (int k = 0; k < n; k++)
        if (natsd_restart(&c->node[which[k]]) != 0)
            return -1;
    long long until = now_ms() + timeout_ms;
    for (int k = 0; k < n; k++) {
        int i = which[k];
        if (!wait_healthy(c, i, until)) {
            fprintf(stderr, "natsd: cluster node n%d not healthy within %d ms after its restart; "
                            "see %s/nats-server.log\n", i + 1, timeout_ms, c->node[i].dir);
            return -1;
        }
    }
    return 0;
}

int natsd_cluster_restart_node(natsd_cluster *c, int i, int timeout_ms)
{
    return natsd_cluster_restart_nodes(c, &i, 1, timeout_ms);
}

void natsd_cluster_stop(natsd_cluster *c, int sig)
{
    /* Signalled all at once, so that the last ones do not spend the grace
     * looking for a quorum the first ones took away. */
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++)
        if (c->node[i].pid > 0)
            kill(c->node[i].pid, sig);
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++)
        natsd_stop(&c->node[i], sig);
}

/* The string value of "key" at or after p and before end (NULL: anywhere),
 * copied into out; the monitoring JSON is pretty-printed ("key": "v").
 * Returns where the value ends, or NULL. */
static const char *json_str(const char *p, const char *end, const char *key, char *out,
                            size_t cap)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *k = strstr(p, quoted);
    if (!k || (end && k >= end))
        return NULL;
    const char *v = k + strlen(quoted);
    while (*v == ' ' || *v == ':')
        v++;
    if (*v != '"')
        return NULL;
    const char *close = strchr(++v, '"');
    if (!close)
        return NULL;
    snprintf(out, cap, "%.*s", (int)(close - v), v);
    return close + 1;
}

/* The leader named in one node's /jsz for stream: in the stream's entry of
 * stream_detail, "cluster": { "name": ..., "leader": "nX", "replicas": ...
 * before its "state". */
static int leader_in(const char *jsz, const char *stream)
{
    const char *p = strstr(jsz, "\"stream_detail\"");
    char name[128], leader[64];
    for (const char *q = p; q && (q = json_str(q, NULL, "name", name, sizeof name));) {
        if (strcmp(name, stream) != 0)
            continue;
        const char *state = strstr(q, "\"state\"");
        const char *cl = strstr(q, "\"cluster\"");
        if (!cl || (state && cl > state) ||
            !json_str(cl, state, "leader", leader, sizeof leader))
            return -1;
        for (int i = 0; i < NATSD_CLUSTER_NODES; i++) {
            char want[16];
            snprintf(want, sizeof want, "n%d", i + 1);
            if (strcmp(leader, want) == 0)
                return i;
        }
        return -1;
    }
    return -1;
}

int natsd_cluster_stream_leader(const natsd_cluster *c, const char *stream)
{
    size_t cap = 256 * 1024;
    char *buf = malloc(cap);
    int leader = -1;
    for (int i = 0; buf && leader < 0 && i < NATSD_CLUSTER_NODES; i++) {
        if (c->node[i].pid <= 0)
            continue;
        if (natsd_http_get(c->monitor_port[i], "/jsz?accounts=true&streams=true", buf, cap,
                           1000) != 200)
            continue;
        leader = leader_in(buf, stream);
        if (leader >= 0 && c->node[leader].pid <= 0)
            leader = -1; /* a stopped node's word, from before the election */
    }
    free(buf);
    return leader;
}

int natsd_tmp_path(char *out, size_t cap, const char *name)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, cap, "%s/%s", tmp && *tmp ? tmp : "/tmp", name);
    if (n > 0 && (size_t)n < cap)
        return 0;
    errno = ENAMETOOLONG;
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void natsd_remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
