/* A private nats-server per test or demo run: its own store directory, a
 * free loopback port found by the server itself (-p -1 with a ports file),
 * and a restart on the same port and store for outage tests. */
#include "natsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

static int spawn(natsd *d)
{
    char port[16], store[600], log[600];
    snprintf(port, sizeof port, "%d", d->port ? d->port : -1);
    snprintf(store, sizeof store, "%s/js", d->dir);
    snprintf(log, sizeof log, "%s/nats-server.log", d->dir);
    const char *argv[20];
    int n = 0;
    argv[n++] = natsd_binary();
    if (d->config[0]) {
        /* Flags given on the command line override the file's settings, so
         * the address, port and store below hold with any configuration. */
        argv[n++] = "-c";
        argv[n++] = d->config;
    }
    argv[n++] = "-a";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = port;
    argv[n++] = "--ports_file_dir";
    argv[n++] = d->dir;
    argv[n++] = "-js";
    argv[n++] = "-sd";
    argv[n++] = store;
    argv[n++] = "-l";
    argv[n++] = log;
    if (d->user[0]) {
        argv[n++] = "--user";
        argv[n++] = d->user;
        argv[n++] = "--pass";
        argv[n++] = d->pass;
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
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
    memset(d, 0, sizeof *d);
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
