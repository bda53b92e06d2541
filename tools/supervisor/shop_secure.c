/* The secure shop (shop-demo --secure): TLS and one NATS user per service
 * under least-privilege permissions. */
#include "shop_secure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* $1 the directory, $2 choreo-gen, $3 the schema, $4 the services file.
 * An EC key pair for a CA and a server certificate for 127.0.0.1 signed by
 * it, then the permissions of every service and client of the shop. */
static const char SETUP[] =
    "set -eu\n"
    "umask 077\n"
    "cd \"$1\"\n"
    "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; }\n"
    "key ca.key\n"
    "openssl req -x509 -new -key ca.key -out ca.pem -days 7 -subj /CN=choreo-demo-ca\n"
    "key server.key\n"
    "openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1\n"
    "printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > server.ext\n"
    "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \\\n"
    "    -out server.pem -days 7 -extfile server.ext 2>/dev/null\n"
    "\"$2\" --nats-permissions \"$4\" \"$3\" --private-inboxes -o permissions.conf\n";

static int run_setup(const char *dir, const char *gen, const char *schema, const char *services)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "shop-demo: fork failed: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        execl("/bin/sh", "sh", "-c", SETUP, "sh", dir, gen, schema, services, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "shop-demo: making the certificates and permissions in %s failed "
                        "(openssl and %s are needed)\n", dir, gen);
        return -1;
    }
    return 0;
}

/* 32 hex digits from /dev/urandom. */
static int random_password(char out[33])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)sizeof b)
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* The server configuration: TLS, the generated permissions, and the users
 * with their passwords (the file is the only place that holds them). */
static int write_config(shop_secure *sec, const char *const *users, int nusers)
{
    char path[sizeof sec->dir + 32];
    snprintf(path, sizeof path, "%s/nats.conf", sec->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "shop-demo: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fprintf(f, "# The secure shop's nats-server: the users' passwords, the permissions\n"
               "# choreo-gen --nats-permissions wrote to permissions.conf, and TLS.\n");
    for (int i = 0; i < nusers; i++) {
        char var[64];
        size_t n = 0;
        for (const char *p = users[i]; *p && n + 1 < sizeof var; p++)
            var[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p == '-' ? '_' : *p);
        var[n] = '\0';
        fprintf(f, "%s_PASSWORD: \"%s\"\n", var, sec->password[i]);
    }
    /* Copied in, not included: nats-server resolves an included file's
     * variables in that file and the environment only. */
    char perms[sizeof sec->dir + 32];
    snprintf(perms, sizeof perms, "%s/permissions.conf", sec->dir);
    FILE *in = fopen(perms, "r");
    if (!in) {
        fprintf(stderr, "shop-demo: cannot read %s: %s\n", perms, strerror(errno));
        fclose(f);
        return -1;
    }
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;)
        fwrite(buf, 1, n, f);
    fclose(in);
    fprintf(f, "tls {\n"
               "  cert_file: \"%s/server.pem\"\n"
               "  key_file: \"%s/server.key\"\n"
               "  ca_file: \"%s/ca.pem\"\n"
               "}\n",
            sec->dir, sec->dir, sec->dir);
    if (fclose(f) != 0) {
        fprintf(stderr, "shop-demo: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    snprintf(sec->config, sizeof sec->config, "%s", path);
    return 0;
}

int shop_secure_setup(shop_secure *sec, const char *workdir, const char *choreo_gen,
                      const char *schema, const char *services)
{
    memset(sec, 0, sizeof *sec);
    snprintf(sec->dir, sizeof sec->dir, "%s/secure", workdir);
    if (mkdir(sec->dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "shop-demo: cannot create %s: %s\n", sec->dir, strerror(errno));
        return -1;
    }
    snprintf(sec->ca, sizeof sec->ca, "%s/ca.pem", sec->dir);
    if (run_setup(sec->dir, choreo_gen, schema, services) != 0)
        return -1;
    const char *users[SHOP_SERVICES + 2];
    for (int i = 0; i < SHOP_SERVICES + 2; i++) {
        users[i] = i < SHOP_SERVICES    ? shop_service_names[i]
                   : i == SHOP_SERVICES ? SHOP_SECURE_CLIENT
                                        : SHOP_SECURE_OPERATOR;
        if (random_password(sec->password[i]) != 0) {
            fprintf(stderr, "shop-demo: cannot read /dev/urandom for the passwords\n");
            return -1;
        }
    }
    if (write_config(sec, users, SHOP_SERVICES + 2) != 0)
        return -1;
    for (int i = 0; i < SHOP_SERVICES; i++) {
        snprintf(sec->env[i][0], sizeof sec->env[i][0], "CHOREO_NATS_USER=%s", users[i]);
        snprintf(sec->env[i][1], sizeof sec->env[i][1], "CHOREO_NATS_PASSWORD=%s",
                 sec->password[i]);
        snprintf(sec->env[i][2], sizeof sec->env[i][2], "CHOREO_TLS_CA=%s", sec->ca);
        snprintf(sec->env[i][3], sizeof sec->env[i][3], "CHOREO_NATS_INBOX_PREFIX=_INBOX_%s",
                 users[i]);
        for (int k = 0; k < 4; k++)
            sec->envp[i][k] = sec->env[i][k];
        sec->envp[i][4] = NULL;
    }
    return 0;
}
