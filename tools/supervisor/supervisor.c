/* The supervisor: fork/exec of services with their log files, PR_SET_PDEATHSIG
 * and kill-by-PID so that nothing outlives it, the broker (one server or a
 * three-node cluster) through natsd, and readiness by a Ping request over
 * its own NATS connection. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <dirent.h>
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

#include <nats/nats.h>

#include "natsd.h"
#include "pgserver.h"

extern char **environ;

#define MAX_ARGS 64
#define MAX_ENV 32

struct child {
    char name[64];
    char label[64];   /* the instance: name, or name-2 and so on */
    bool extra;       /* a second or later instance: Ping may reach another */
    char binary[512];
    char db[600];
    char log[600];
    char metrics[32]; /* --metrics-addr, "" when off */
    char *args[MAX_ARGS];
    int nargs;
    char *env[MAX_ENV];
    int nenv;
    bool ping;
    pid_t pid;
    pid_t last_pid; /* the latest process, kept after it exited */
    int starts;
    int status;    /* last waitpid status, -1 none */
    bool exited;   /* exited on its own (reaped by poll) */
};

struct sup {
    sup_options opt;
    char workdir[400];
    bool fresh_dir;
    char prefix[64];
    char log_level[16];
    natsd broker;
    bool broker_started;
    natsd_cluster cluster; /* with opt.cluster, instead of broker */
    pgserver pg;           /* started by the first sup_postgres_db */
    /* sup_secure's, borrowed */
    const char *broker_config, *nats_user, *nats_password, *tls_ca, *inbox_prefix;
    natsConnection *nc;
    struct child *kids;
    int nkids;
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static char *dup_or_die(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) {
        fprintf(stderr, "supervisor: out of memory\n");
        abort();
    }
    return d;
}

int sup_create(sup **out, const sup_options *opts)
{
    sup *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "supervisor: out of memory\n");
        return -1;
    }
    if (opts)
        s->opt = *opts;
    if (s->opt.stop_timeout_ms <= 0)
        s->opt.stop_timeout_ms = 10000;
    if (s->opt.ready_timeout_ms <= 0)
        s->opt.ready_timeout_ms = 20000;
    snprintf(s->prefix, sizeof s->prefix, "%s", s->opt.prefix ? s->opt.prefix : "choreo");
    snprintf(s->log_level, sizeof s->log_level, "%s",
             s->opt.log_level ? s->opt.log_level : "warn");
    if (s->opt.workdir) {
        snprintf(s->workdir, sizeof s->workdir, "%s", s->opt.workdir);
        if (mkdir(s->workdir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "supervisor: cannot create %s: %s\n", s->workdir, strerror(errno));
            free(s);
            return -1;
        }
    } else {
        char name[128];
        snprintf(name, sizeof name, "%s-XXXXXX",
                 s->opt.fresh_name ? s->opt.fresh_name : "choreo-sup");
        if (natsd_tmp_path(s->workdir, sizeof s->workdir, name) != 0 || !mkdtemp(s->workdir)) {
            fprintf(stderr, "supervisor: cannot create the work directory %s: %s\n",
                    s->workdir, strerror(errno));
            free(s);
            return -1;
        }
        s->fresh_dir = true;
    }
    s->opt.workdir = s->workdir;
    *out = s;
    return 0;
}

int sup_workdir_unused(const char *dir, char *why, size_t cap)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, cap, "cannot be used: %s", strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "is not a directory");
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(why, cap, "cannot be read: %s", strerror(errno));
        return -1;
    }
    char first[256] = "";
    long n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        /* A database named first says most of what is there. */
        size_t len = strlen(e->d_name), had = strlen(first);
        bool db = len > 3 && strcmp(e->d_name + len - 3, ".db") == 0;
        if (!n || (db && !(had > 3 && strcmp(first + had - 3, ".db") == 0)))
            snprintf(first, sizeof first, "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0)
        return 0;
    char more[40] = "";
    if (n > 1)
        snprintf(more, sizeof more, " and %ld more", n - 1);
    snprintf(why, cap, "already holds %s%s, which a run there would take for its own", first,
             more);
    return -1;
}

/* A loopback port free now, below Linux's default range of ports for
 * outgoing connections (32768-60999): a service keeps its metrics port
 * across restarts, and a port from that range could be taken meanwhile as
 * the local end of some connection, so that the restart could not bind it. */
static int free_port(const sup *s)
{
    for (int attempt = 0; attempt < 200; attempt++) {
        int port = natsd_free_port();
        if (port < 0)
            break;
        char mine[32];
        snprintf(mine, sizeof mine, "127.0.0.1:%d", port);
        bool taken = false;
        for (int i = 0; i < s->nkids && !taken; i++)
            taken = strcmp(s->kids[i].metrics, mine) == 0;
        if (!taken)
            return port;
    }
    errno = EADDRINUSE;
    return -1;
}

int sup_add_service(sup *s, const sup_service_spec *spec)
{
    int nargs = 0, nenv = 0;
    while (spec->args && spec->args[nargs])
        nargs++;
    while (spec->env && spec->env[nenv])
        nenv++;
    if (nargs > MAX_ARGS - 15 || nenv > MAX_ENV) {
        fprintf(stderr, "supervisor: service %s has too many arguments or variables\n",
                spec->name);
        return -1;
    }
    struct child *k = realloc(s->kids, sizeof *k * (size_t)(s->nkids + 1));
    if (!k) {
        fprintf(stderr, "supervisor: out of memory\n");
        return -1;
    }
    s->kids = k;
    struct child *c = &k[s->nkids];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", spec->name);
    snprintf(c->label, sizeof c->label, "%s", spec->label ? spec->label : spec->name);
    c->extra = strcmp(c->label, c->name) != 0;
    snprintf(c->binary, sizeof c->binary, "%s", spec->binary);
    if (spec->db)
        snprintf(c->db, sizeof c->db, "%s", spec->db);
    else
        snprintf(c->db, sizeof c->db, "%s/%s.db", s->workdir, spec->name);
    snprintf(c->log, sizeof c->log, "%s/%s.log", s->workdir, c->label);
    for (int i = 0; i < nargs; i++)
        c->args[c->nargs++] = dup_or_die(spec->args[i]);
    for (int i = 0; i < nenv; i++)
        c->env[c->nenv++] = dup_or_die(spec->env[i]);
    c->ping = spec->ping;
    c->status = -1;
    if (s->opt.metrics) {
        int port = free_port(s);
        if (port < 0) {
            fprintf(stderr, "supervisor: no free loopback port for %s's metrics: %s\n",
                    spec->name, strerror(errno));
            return -1;
        }
        snprintf(c->metrics, sizeof c->metrics, "127.0.0.1:%d", port);
    }
    return s->nkids++;
}

void sup_secure(sup *s, const char *broker_config, const char *user, const char *password,
                const char *tls_ca, const char *inbox_prefix)
{
    s->inbox_prefix = inbox_prefix;
    s->broker_config = broker_config;
    s->nats_user = user;
    s->nats_password = password;
    s->tls_ca = tls_ca;
}

/* Starts the cluster, or the nodes of a started one that are not running. */
static int start_cluster(sup *s)
{
    if (!s->broker_started) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/nats", s->workdir);
        if (natsd_cluster_start(&s->cluster, dir) != 0)
            return -1;
        s->broker_started = true;
        return 0;
    }
    for (int i = 0; i < NATSD_CLUSTER_NODES; i++)
        if (sup_start_node(s, i) != 0)
            return -1;
    return 0;
}

int sup_start_broker(sup *s)
{
    if (s->opt.cluster)
        return start_cluster(s);
    if (s->broker.pid > 0)
        return 0;
    if (s->broker_started)
        return natsd_restart(&s->broker);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/nats", s->workdir);
    if (natsd_start_profiled(&s->broker, dir, 0, s->broker_config, s->opt.broker_profile_port) != 0)
        return -1;
    s->broker_started = true;
    return 0;
}

void sup_stop_broker(sup *s, int sig)
{
    if (s->opt.cluster)
        natsd_cluster_stop(&s->cluster, sig);
    else
        natsd_stop(&s->broker, sig);
}

int sup_nats_nodes(const sup *s)
{
    return s->opt.cluster ? NATSD_CLUSTER_NODES : 1;
}

const char *sup_node_url(const sup *s, int i)
{
    if (i < 0 || i >= sup_nats_nodes(s))
        return "";
    return s->opt.cluster ? s->cluster.node[i].url : s->broker.url;
}

pid_t sup_node_pid(const sup *s, int i)
{
    if (i < 0 || i >= sup_nats_nodes(s))
        return 0;
    return s->opt.cluster ? s->cluster.node[i].pid : s->broker.pid;
}

void sup_stop_node(sup *s, int i, int sig)
{
    if (!s->opt.cluster)
        sup_stop_broker(s, sig);
    else
        natsd_cluster_stop_node(&s->cluster, i, sig);
}

int sup_lose_node_store(sup *s, int i)
{
    if (!s->opt.cluster || i < 0 || i >= NATSD_CLUSTER_NODES || s->cluster.node[i].pid > 0)
        return -1;
    char store[600];
    snprintf(store, sizeof store, "%s/js", s->cluster.node[i].dir);
    natsd_remove_tree(store);
    return 0;
}

int sup_start_node(sup *s, int i)
{
    return sup_start_nodes(s, &i, 1);
}

int sup_start_nodes(sup *s, const int *which, int n)
{
    if (!s->opt.cluster)
        return n > 0 ? sup_start_broker(s) : 0;
    int down[NATSD_CLUSTER_NODES], ndown = 0;
    for (int k = 0; k < n; k++) {
        if (which[k] < 0 || which[k] >= NATSD_CLUSTER_NODES)
            return -1;
        if (s->cluster.node[which[k]].pid <= 0 && ndown < NATSD_CLUSTER_NODES)
            down[ndown++] = which[k];
    }
    return ndown ? natsd_cluster_restart_nodes(&s->cluster, down, ndown, 30000) : 0;
}

int sup_stream_leader(const sup *s, const char *stream)
{
    return s->opt.cluster ? natsd_cluster_stream_leader(&s->cluster, stream) : -1;
}

int sup_restart_broker(sup *s, int sig)
{
    sup_stop_broker(s, sig);
    return sup_start_broker(s);
}

/* Builds the child's environment: the inherited one with the spec's
 * entries added or replacing entries of the same name. */
static char **child_env(const struct child *c)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + (size_t)c->nenv + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (int j = 0; j < c->nenv && !replaced; j++) {
            const char *eq = strchr(c->env[j], '=');
            size_t len = eq ? (size_t)(eq - c->env[j]) : strlen(c->env[j]);
            replaced = strncmp(environ[i], c->env[j], len) == 0 && environ[i][len] == '=';
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (int j = 0; j < c->nenv; j++)
        env[k++] = c->env[j];
    env[k] = NULL;
    return env;
}

/* The health checks' connection knows every node: nats.c 3.4.1 takes a
 * list only through natsOptions_SetServers, not in one comma-separated URL. */
static natsStatus set_servers(const sup *s, natsOptions *o)
{
    const char *urls[NATSD_CLUSTER_NODES];
    int n = sup_nats_nodes(s);
    for (int i = 0; i < n; i++)
        urls[i] = sup_node_url(s, i);
    return natsOptions_SetServers(o, urls, n);
}

/* A second instance of a service: Ping may be answered by another, so it
 * is ready when its own metrics say it is connected (without metrics, at
 * once). */
static int wait_instance(sup *s, struct child *c)
{
    int i = (int)(c - s->kids);
    size_t cap = 1 << 20; /* a whole scrape: the gauge comes late in it */
    char *buf = malloc(cap);
    if (!buf) {
        fprintf(stderr, "supervisor: out of memory\n");
        return -1;
    }
    for (int waited = 0; c->metrics[0] && waited < s->opt.ready_timeout_ms; waited += 100) {
        const char *m = sup_scrape(s, i, buf, cap) == 200
                            ? strstr(buf, "\nchoreo_nats_connected{") : NULL;
        if (m && (m = strchr(m, '}')) != NULL && strncmp(m, "} 1", 3) == 0) {
            free(buf);
            return 0;
        }
        int status;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            c->status = status;
            fprintf(stderr, "supervisor: %s exited at start; see %s\n", c->label, c->log);
            free(buf);
            return -1;
        }
        sleep_ms(100);
    }
    free(buf);
    if (!c->metrics[0])
        return 0;
    fprintf(stderr, "supervisor: %s did not connect within %d ms; see %s\n", c->label,
            s->opt.ready_timeout_ms, c->log);
    return -1;
}

static int wait_ready(sup *s, struct child *c)
{
    if (c->extra)
        return wait_instance(s, c);
    if (!s->nc) {
        natsOptions *o = NULL;
        nats_Open(0); /* no spinning on nats.c's locks, as the services */
        natsStatus st = natsOptions_Create(&o);
        if (st == NATS_OK)
            st = set_servers(s, o);
        if (st == NATS_OK)
            st = natsOptions_SetMaxReconnect(o, -1);
        if (st == NATS_OK)
            st = natsOptions_SetReconnectWait(o, 100);
        if (st == NATS_OK && s->nats_user)
            st = natsOptions_SetUserInfo(o, s->nats_user, s->nats_password);
        if (st == NATS_OK && s->tls_ca)
            st = natsOptions_SetSecure(o, true);
        if (st == NATS_OK && s->tls_ca)
            st = natsOptions_LoadCATrustedCertificates(o, s->tls_ca);
        if (st == NATS_OK && s->inbox_prefix)
            st = natsOptions_SetCustomInboxPrefix(o, s->inbox_prefix);
        if (st == NATS_OK)
            st = natsConnection_Connect(&s->nc, o);
        natsOptions_Destroy(o);
        if (st != NATS_OK) {
            fprintf(stderr, "supervisor: cannot connect to %s for health checks: %s\n",
                    sup_url(s), natsStatus_GetText(st));
            s->nc = NULL;
            return -1;
        }
    }
    char subject[200];
    snprintf(subject, sizeof subject, "%s-rpc.%s.Ping", s->prefix, c->name);
    for (int waited = 0; waited < s->opt.ready_timeout_ms; waited += 100) {
        if (s->opt.cancel && *s->opt.cancel) {
            fprintf(stderr, "supervisor: interrupted while waiting for %s\n", c->name);
            return -1;
        }
        natsMsg *m = NULL;
        natsStatus st = natsConnection_Request(&m, s->nc, subject, "", 0, 100);
        natsMsg_Destroy(m);
        if (st == NATS_OK)
            return 0;
        int status;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            c->status = status;
            fprintf(stderr, "supervisor: %s exited at start (%s %d); see %s\n", c->name,
                    WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), c->log);
            return -1;
        }
        if (st != NATS_TIMEOUT)
            sleep_ms(100);
    }
    fprintf(stderr, "supervisor: %s did not answer %s within %d ms; see %s\n", c->name, subject,
            s->opt.ready_timeout_ms, c->log);
    return -1;
}

/* Forks and executes service c's command line with its output appended to
 * log. Returns the child's pid, or -1 after printing why. */
static pid_t spawn(sup *s, struct child *c, const char *log)
{
    /* Everything the child needs is prepared before fork: between fork and
     * exec only async-signal-safe calls are allowed. */
    const char *argv[MAX_ARGS + 1];
    int n = 0;
    argv[n++] = c->binary;
    argv[n++] = "--service";
    argv[n++] = c->name;
    argv[n++] = "--db";
    argv[n++] = c->db;
    argv[n++] = "--nats-url";
    argv[n++] = sup_url(s);
    if (s->opt.cluster) {
        argv[n++] = "--stream-replicas";
        argv[n++] = "3";
    }
    argv[n++] = "--prefix";
    argv[n++] = s->prefix;
    argv[n++] = "--log-level";
    argv[n++] = s->log_level;
    if (c->metrics[0]) {
        argv[n++] = "--metrics-addr";
        argv[n++] = c->metrics;
    }
    for (int k = 0; k < c->nargs; k++)
        argv[n++] = c->args[k];
    argv[n] = NULL;
    char **env = child_env(c);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!env || fd < 0 || devnull < 0) {
        fprintf(stderr, "supervisor: cannot prepare %s (log %s): %s\n", c->name, log,
                strerror(errno));
        free(env);
        if (fd >= 0)
            close(fd);
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(devnull, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execve(argv[0], (char *const *)argv, env);
        static const char msg[] = "supervisor: cannot execute the service binary\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    int err = errno;
    free(env);
    close(fd);
    close(devnull);
    if (pid < 0)
        fprintf(stderr, "supervisor: cannot fork for %s: %s\n", c->name, strerror(err));
    return pid;
}

/* Whether the service exited at start because its metrics port was in
 * use: its log ends with the service's refusal to listen there. */
static bool metrics_port_taken(const struct child *c)
{
    if (!c->metrics[0] || c->status == -1 || !WIFEXITED(c->status) ||
        WEXITSTATUS(c->status) == 0)
        return false;
    FILE *f = fopen(c->log, "r");
    if (!f)
        return false;
    char tail[4096];
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof tail - 1)
        fseek(f, -(long)sizeof tail + 1, SEEK_END);
    else
        rewind(f);
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    char needle[128];
    snprintf(needle, sizeof needle, "\"%s\": cannot listen there: Address already in use",
             c->metrics);
    return strstr(tail, needle) != NULL;
}

int sup_start_service(sup *s, int i)
{
    if (i < 0 || i >= s->nkids)
        return -1;
    struct child *c = &s->kids[i];
    if (c->pid > 0)
        return 0;
    if (sup_broker_pid(s) <= 0) {
        fprintf(stderr, "supervisor: start the broker before %s\n", c->name);
        return -1;
    }
    for (int moves = 0;; moves++) {
        pid_t pid = spawn(s, c, c->log);
        if (pid < 0)
            return -1;
        c->pid = pid;
        c->last_pid = pid;
        c->starts++;
        c->exited = false;
        int rc = c->ping ? wait_ready(s, c) : 0;
        if (rc == 0 || c->pid > 0 || moves == 3 || !metrics_port_taken(c))
            return rc;
        /* Another process of the machine (a test run beside this one) took
         * the port since it was chosen: that is no fault of the service. */
        int port = free_port(s);
        if (port < 0)
            return rc;
        fprintf(stderr, "supervisor: %s's metrics port %s was taken by another process; "
                "starting it again on 127.0.0.1:%d\n", c->label, c->metrics, port);
        snprintf(c->metrics, sizeof c->metrics, "127.0.0.1:%d", port);
    }
}

int sup_run_second_copy(sup *s, int i, const char *db, int timeout_ms, const char *log,
                        int *status)
{
    if (i < 0 || i >= s->nkids)
        return -1;
    struct child *c = &s->kids[i];
    char own[sizeof c->db], metrics[sizeof c->metrics];
    memcpy(own, c->db, sizeof own);
    memcpy(metrics, c->metrics, sizeof metrics);
    if (db) {
        snprintf(c->db, sizeof c->db, "%s", db);
        c->metrics[0] = '\0';
    }
    pid_t pid = spawn(s, c, log);
    memcpy(c->db, own, sizeof own);
    memcpy(c->metrics, metrics, sizeof metrics);
    if (pid < 0)
        return -1;
    int rc = 1;
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return 0;
        /* The first process gone (left waitable for sup_poll): the copy
         * may own the database now. */
        siginfo_t si = { 0 };
        if (c->pid > 0 && waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == c->pid) {
            rc = 2;
            break;
        }
        sleep_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return rc;
}

int sup_start_all(sup *s)
{
    if (sup_start_broker(s) != 0)
        return -1;
    for (int i = 0; i < s->nkids; i++)
        if (sup_start_service(s, i) != 0)
            return -1;
    return 0;
}

/* Waits up to timeout_ms for pid to exit; returns true when it did. */
static bool reap(struct child *c, int timeout_ms)
{
    for (int waited = 0;; waited += 5) {
        int status;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno == ECHILD)) {
            c->status = r == c->pid ? status : -1;
            c->pid = 0;
            return true;
        }
        if (waited >= timeout_ms)
            return false;
        sleep_ms(5);
    }
}

int sup_kill_service(sup *s, int i, int sig)
{
    if (i < 0 || i >= s->nkids)
        return -1;
    struct child *c = &s->kids[i];
    if (c->pid <= 0)
        return 0;
    if (sig != 0)
        kill(c->pid, sig);
    if (reap(c, sig == SIGKILL ? 10000 : s->opt.stop_timeout_ms))
        return 0;
    fprintf(stderr, "supervisor: %s (pid %d) did not stop within %d ms; killing it\n", c->name,
            (int)c->pid, s->opt.stop_timeout_ms);
    kill(c->pid, SIGKILL);
    return reap(c, 10000) ? 0 : -1;
}

int sup_set_service_env(sup *s, int i, const char *const *env)
{
    if (i < 0 || i >= s->nkids)
        return -1;
    int nenv = 0;
    while (env && env[nenv])
        nenv++;
    if (nenv > MAX_ENV) {
        fprintf(stderr, "supervisor: service %s has too many variables\n", s->kids[i].name);
        return -1;
    }
    struct child *c = &s->kids[i];
    for (int k = 0; k < c->nenv; k++)
        free(c->env[k]);
    c->nenv = 0;
    for (int k = 0; k < nenv; k++)
        c->env[c->nenv++] = dup_or_die(env[k]);
    return 0;
}

int sup_restart_service(sup *s, int i, int sig)
{
    if (sup_kill_service(s, i, sig) != 0)
        return -1;
    return sup_start_service(s, i);
}

int sup_poll(sup *s)
{
    int n = 0;
    for (int i = 0; i < s->nkids; i++) {
        struct child *c = &s->kids[i];
        int status;
        if (c->pid > 0 && waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = 0;
            c->status = status;
            c->exited = true;
            n++;
        }
    }
    return n;
}

void sup_stop_all(sup *s)
{
    if (!s)
        return;
    /* Services first, all at once, so that they stop while the broker can
     * still take what their relays have in flight; then one SIGTERM each
     * is all they get before the grace ends. */
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i].pid > 0)
            kill(s->kids[i].pid, SIGTERM);
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i].pid > 0)
            sup_kill_service(s, i, 0);
    if (s->nc) {
        natsConnection_Destroy(s->nc);
        s->nc = NULL;
    }
    sup_stop_broker(s, SIGTERM);
}

void sup_destroy(sup *s)
{
    if (!s)
        return;
    sup_stop_all(s);
    pgserver_stop(&s->pg);
    if (s->fresh_dir && !s->opt.keep_workdir)
        natsd_remove_tree(s->workdir);
    for (int i = 0; i < s->nkids; i++) {
        for (int k = 0; k < s->kids[i].nargs; k++)
            free(s->kids[i].args[k]);
        for (int k = 0; k < s->kids[i].nenv; k++)
            free(s->kids[i].env[k]);
    }
    free(s->kids);
    free(s);
}

void sup_keep_workdir(sup *s, bool keep)
{
    s->opt.keep_workdir = keep;
}

int sup_service_count(const sup *s)
{
    return s->nkids;
}

int sup_find(const sup *s, const char *name)
{
    for (int i = 0; i < s->nkids; i++)
        if (strcmp(s->kids[i].label, name) == 0)
            return i;
    return -1;
}

static bool valid(const sup *s, int i)
{
    return i >= 0 && i < s->nkids;
}

const char *sup_service_name(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].label : "";
}

pid_t sup_service_pid(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].pid : 0;
}

pid_t sup_service_last_pid(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].last_pid : 0;
}

bool sup_service_running(const sup *s, int i)
{
    return valid(s, i) && s->kids[i].pid > 0;
}

int sup_service_starts(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].starts : 0;
}

int sup_service_exit_status(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].status : -1;
}

const char *sup_db_path(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].db : "";
}

const char *sup_log_path(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].log : "";
}

const char *sup_metrics_addr(const sup *s, int i)
{
    return valid(s, i) ? s->kids[i].metrics : "";
}

int sup_scrape(const sup *s, int i, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *colon = valid(s, i) ? strrchr(s->kids[i].metrics, ':') : NULL;
    if (!colon)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 5, 0 };
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    size_t len = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
        for (ssize_t n; len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0;)
            len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

pid_t sup_broker_pid(const sup *s)
{
    for (int i = 0; i < sup_nats_nodes(s); i++)
        if (sup_node_pid(s, i) > 0)
            return sup_node_pid(s, i);
    return 0;
}

const char *sup_url(const sup *s)
{
    return s->opt.cluster ? s->cluster.urls : s->broker.url;
}

const char *sup_workdir(const sup *s)
{
    return s->workdir;
}

size_t sup_pids(const sup *s, pid_t *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < sup_nats_nodes(s); i++)
        if (sup_node_pid(s, i) > 0 && n < cap)
            out[n++] = sup_node_pid(s, i);
    for (int i = 0; i < s->nkids; i++)
        if (s->kids[i].pid > 0 && n < cap)
            out[n++] = s->kids[i].pid;
    if (s->pg.pid > 0 && n < cap)
        out[n++] = s->pg.pid;
    return n;
}

int sup_restart_postgres(sup *s, int sig)
{
    if (s->pg.pid <= 0) {
        fprintf(stderr, "supervisor: no PostgreSQL server is running\n");
        return -1;
    }
    return pgserver_restart(&s->pg, sig);
}

pid_t sup_postgres_pid(const sup *s)
{
    return s->pg.pid > 0 ? s->pg.pid : 0;
}

int sup_postgres_db(sup *s, const char *name, char *url, size_t cap)
{
    if (s->pg.pid <= 0) {
        char log[500];
        snprintf(log, sizeof log, "%s/postgres.log", s->workdir);
        if (pgserver_start(&s->pg, log) != 0)
            return -1;
    }
    return pgserver_database(&s->pg, name, url, cap);
}
