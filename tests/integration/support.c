/* Helpers for the integration tests. Every test starts its own nats-server
 * on a free port with its own store, and its services use SQLite files in
 * the test's own temp directory, so tests can run in parallel. */
#include "support.h"
#include "../scratch.h"

#include <errno.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <sys/wait.h>

void support_tmpdir(char *out, size_t cap)
{
    cr_assert_eq(natsd_tmp_path(out, cap, "choreo-it-XXXXXX"), 0, "TMPDIR is too long: %s",
                 getenv("TMPDIR"));
    cr_assert_not_null(mkdtemp(out), "cannot create the temp dir %s", out);
}

void support_server(natsd *d, const char *dir, const char *user, const char *pass)
{
    char sd[600];
    snprintf(sd, sizeof sd, "%s/nats", dir);
    cr_assert_eq(natsd_start(d, sd, 0, user, pass), 0, "cannot start nats-server (%s)",
                 natsd_binary());
}

choreo_config *support_config(const char *dir, const char *name, const char *url, ...)
{
    choreo_config *cfg;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    char db[600];
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    cr_assert_eq(choreo_config_set(cfg, "service", name), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "nats_url", url), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "ack_wait_ms", "2000"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "log_level", "warn"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "synchronous", "normal"), CHOREO_OK);
    va_list ap;
    va_start(ap, url);
    for (const char *kv; (kv = va_arg(ap, const char *)) != NULL;) {
        char key[64];
        const char *eq = strchr(kv, '=');
        cr_assert_not_null(eq);
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
        cr_assert_eq(choreo_config_set(cfg, key, eq + 1), CHOREO_OK, "%s", choreo_last_error());
    }
    va_end(ap);
    return cfg;
}

choreo_service *support_service(const choreo_config *cfg)
{
    choreo_service *svc = NULL;
    cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

bool support_wait(bool (*cond)(void *), void *arg, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        if (cond(arg))
            return true;
        if (waited >= timeout_ms)
            return false;
        struct timespec ts = { 0, 10 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

static sqlite3 *open_db(const char *dir, const char *name, int flags)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, flags, NULL), SQLITE_OK, "open %s", path);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

long long support_count(const char *dir, const char *name, const char *sql)
{
    sqlite3 *db = open_db(dir, name, SQLITE_OPEN_READONLY);
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sql);
    long long n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

bool support_wait_count(const char *dir, const char *name, const char *sql, long long want,
                        int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        if (support_count(dir, name, sql) == want)
            return true;
        if (waited >= timeout_ms)
            return false;
        support_sleep_ms(20);
    }
}

void support_republish(const char *url, const char *dir, const char *name, const char *id,
                       const char *as_id, const char *msg_id)
{
    sqlite3 *db = open_db(dir, name, SQLITE_OPEN_READONLY);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT subject, body FROM choreo_outbox"
                                        " WHERE ?1 IS NULL OR event_id = ?1 ORDER BY seq LIMIT 1",
                                    -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC); /* NULL binds NULL */
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "event %s is not in %s's outbox",
                 id ? id : "(any)", name);
    int len = sqlite3_column_bytes(st, 1);
    char *body = malloc((size_t)len + 1);
    cr_assert_not_null(body);
    memcpy(body, sqlite3_column_blob(st, 1), (size_t)len);
    if (as_id) {
        cr_assert(id && strlen(as_id) == strlen(id), "as_id must be as long as id");
        size_t n = strlen(id);
        char *at = NULL;
        for (size_t i = 0; !at && i + n <= (size_t)len; i++)
            at = memcmp(body + i, id, n) == 0 ? body + i : NULL;
        cr_assert_not_null(at, "event %s's body does not hold its id", id);
        memcpy(at, as_id, n);
    }
    natsMsg *m;
    cr_assert_eq(natsMsg_Create(&m, (const char *)sqlite3_column_text(st, 0), NULL, body, len),
                 NATS_OK);
    free(body);
    natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
    support_js_publish(url, m);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

void support_js_publish(const char *url, natsMsg *m)
{
    natsConnection *nc;
    jsCtx *js;
    jsPubAck *pa = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_PublishMsg(&pa, js, m, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

void support_exec(const char *dir, const char *name, const char *sql)
{
    sqlite3 *db = open_db(dir, name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

void support_tx_emit(choreo_tx *tx, const char *type, const char *saga, int64_t n,
                     char id_out[CHOREO_ID_SIZE])
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    choreo_mp_write_map(&w, 1);
    choreo_mp_write_cstr(&w, "n");
    choreo_mp_write_int(&w, n);
    choreo_status s = choreo_tx_emit(tx, type, 1, saga, w.buf, w.len, id_out);
    choreo_mp_writer_free(&w);
    cr_assert_eq(s, CHOREO_OK, "%s", choreo_last_error());
}

void support_emit(choreo_service *svc, const char *type, const char *saga, int64_t n,
                  char id_out[CHOREO_ID_SIZE])
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    support_tx_emit(tx, type, saga, n, id_out);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

int64_t support_data_n(const choreo_event *ev)
{
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, ev->data, ev->data_len);
    uint32_t n;
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t klen;
        if (choreo_mp_read_str(&r, &k, &klen) != CHOREO_OK)
            return -1;
        if (klen == 1 && k[0] == 'n') {
            int64_t v;
            return choreo_mp_read_int(&r, &v) == CHOREO_OK ? v : -1;
        }
        if (choreo_mp_skip(&r, 8) != CHOREO_OK)
            return -1;
    }
    return -1;
}

int support_free_port(void)
{
    int port = natsd_free_port();
    cr_assert_gt(port, 0, "no free loopback port");
    return port;
}

choreo_stats support_stats(choreo_service *svc)
{
    choreo_stats s;
    choreo_service_stats(svc, &s);
    return s;
}

pid_t support_fork(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
    }
    return pid;
}

int64_t support_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void support_sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

void support_env_without_choreo(char *envp[], int cap)
{
    support_env_with(envp, cap, NULL);
}

void support_env_with(char *envp[], int cap, char *const extra[])
{
    extern char **environ;
    int nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    cr_assert_lt(nextra, cap, "%d variables for an environment of %d", nextra, cap);
    int n = 0;
    for (char **e = environ; *e && n < cap - 1 - nextra; e++)
        if (strncmp(*e, "CHOREO_", 7) != 0)
            envp[n++] = *e;
    for (int i = 0; i < nextra; i++)
        envp[n++] = extra[i];
    envp[n] = NULL;
}

void support_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fputs(text, f) >= 0 && fclose(f) == 0, true, "cannot write %s", path);
}

void support_slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

void support_server_config(natsd *d, const char *dir, const char *config_text)
{
    char sd[600], conf[600];
    snprintf(sd, sizeof sd, "%s/nats", dir);
    snprintf(conf, sizeof conf, "%s/nats.conf", dir);
    support_write_file(conf, config_text);
    cr_assert_eq(natsd_start_config(d, sd, 0, conf), 0,
                 "cannot start nats-server (%s) with %s (see %s/nats-server.log):\n%s",
                 natsd_binary(), conf, sd, config_text);
}

/* Runs a shell script with dir as $1, its output in dir/<log>; asserts it
 * exited with 0. */
static void run_script(const char *dir, const char *name, const char *script, const char *arg)
{
    char path[600], cmd[1400], log[600];
    snprintf(path, sizeof path, "%s/%s.sh", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    support_write_file(path, script);
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' '%s' >'%s' 2>&1", path, dir, arg ? arg : "", log);
    int rc = system(cmd);
    char out[2048] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        out[fread(out, 1, sizeof out - 1, f)] = '\0';
        fclose(f);
    }
    cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
              "%s failed (status %d): it needs the openssl command (and python3 for nkeys); "
              "output in %s:\n%s",
              path, rc, log, out);
}

/* The test PKI. CA and leaf keys are P-256, much faster to make than RSA.
 * "openssl x509 -req" of OpenSSL 3.0 cannot date a certificate in the
 * past: the expired one is signed with "openssl ca", which can. */
static const char certs_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "ec='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
    "ca() {\n"
    "  openssl req -x509 $ec -keyout \"$1-key.pem\" -out \"$1.pem\" -days 3 -subj \"/CN=$2\" \\\n"
    "    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign\n"
    "}\n"
    "leaf() { # name, subject CN, signing CA, extension lines\n"
    "  name=$1 cn=$2 by=$3\n"
    "  shift 3\n"
    "  openssl req $ec -keyout \"$name-key.pem\" -out \"$name.csr\" -subj \"/CN=$cn\"\n"
    "  printf '%s\\n' \"$@\" > \"$name.ext\"\n"
    "  openssl x509 -req -in \"$name.csr\" -CA \"$by.pem\" -CAkey \"$by-key.pem\" \\\n"
    "    -CAcreateserial -days 3 -extfile \"$name.ext\" -out \"$name.pem\"\n"
    "}\n"
    "ca ca 'choreo test CA'\n"
    "ca wrong-ca 'unrelated CA'\n"
    "leaf server 127.0.0.1 ca subjectAltName=IP:127.0.0.1 extendedKeyUsage=serverAuth\n"
    "leaf otherhost otherhost ca subjectAltName=IP:10.9.9.9 extendedKeyUsage=serverAuth\n"
    "leaf client 'choreo client' ca extendedKeyUsage=clientAuth\n"
    "leaf stranger 'stranger client' wrong-ca extendedKeyUsage=clientAuth\n"
    "mkdir -p cadb\n"
    ": > cadb/index.txt\n"
    "echo 1000 > cadb/serial\n"
    "cat > ca.cnf <<'EOF'\n"
    "[ca]\n"
    "default_ca = test\n"
    "[test]\n"
    "database = cadb/index.txt\n"
    "serial = cadb/serial\n"
    "new_certs_dir = cadb\n"
    "default_md = sha256\n"
    "policy = any\n"
    "x509_extensions = server\n"
    "unique_subject = no\n"
    "[any]\n"
    "commonName = supplied\n"
    "[server]\n"
    "subjectAltName = IP:127.0.0.1\n"
    "extendedKeyUsage = serverAuth\n"
    "EOF\n"
    "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca-key.pem -in server.csr \\\n"
    "  -out expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -notext\n"
    "openssl verify -CAfile ca.pem server.pem client.pem otherhost.pem\n"
    "if openssl verify -CAfile ca.pem expired.pem; then\n"
    "  echo 'expired.pem is valid' >&2\n"
    "  exit 1\n"
    "fi\n";

void support_make_certs(const char *dir)
{
    run_script(dir, "certs", certs_script, NULL);
}

/* An nkey is base32 (no padding) of prefix bytes, the 32 key bytes and a
 * CRC-16/XMODEM, little-endian. The ed25519 seed and public key come from
 * openssl: the last 32 bytes of the private key's and the public key's
 * DER forms. */
static const char nkey_script[] =
    "set -e\n"
    "cd \"$1\"\n"
    "openssl genpkey -algorithm ed25519 -out \"$2.ed25519.pem\"\n"
    "openssl pkey -in \"$2.ed25519.pem\" -outform DER -out \"$2.priv.der\"\n"
    "openssl pkey -in \"$2.ed25519.pem\" -pubout -outform DER -out \"$2.pub.der\"\n"
    "python3 - \"$2\" <<'EOF'\n"
    "import base64, os, sys\n"
    "def crc16(data):\n"
    "    crc = 0\n"
    "    for b in data:\n"
    "        crc ^= b << 8\n"
    "        for _ in range(8):\n"
    "            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1\n"
    "            crc &= 0xFFFF\n"
    "    return crc\n"
    "def encode(raw):\n"
    "    c = crc16(raw)\n"
    "    return base64.b32encode(raw + bytes([c & 0xFF, c >> 8])).decode().rstrip('=')\n"
    "name = sys.argv[1]\n"
    "seed = open(name + '.priv.der', 'rb').read()[-32:]\n"
    "pub = open(name + '.pub.der', 'rb').read()[-32:]\n"
    "user = 20 << 3\n"
    "fd = os.open(name + '.nk', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)\n"
    "seed_prefix = bytes([18 << 3 | user >> 5, (user & 31) << 3])\n"
    "os.write(fd, (encode(seed_prefix + seed) + '\\n').encode())\n"
    "os.close(fd)\n"
    "open(name + '.pub', 'w').write(encode(bytes([user]) + pub))\n"
    "EOF\n"
    "rm -f \"$2.ed25519.pem\" \"$2.priv.der\" \"$2.pub.der\"\n";

void support_make_nkey(const char *dir, const char *name, char pub[64])
{
    run_script(dir, "nkey", nkey_script, name);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    support_slurp(path, pub, 64);
    cr_assert(strlen(pub) == 56 && pub[0] == 'U', "not a user public nkey in %s: %s", path, pub);
}

int support_stderr_to(const char *path)
{
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(saved >= 0 && fd >= 0, "cannot send stderr to %s", path);
    dup2(fd, 2);
    close(fd);
    return saved;
}

void support_stderr_back(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/* Sends "METHOD path" to 127.0.0.1:port; returns the status code (-1 when
 * the connection failed) and the body in buf. */
int support_http(int port, const char *method, const char *path, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < cap && (got = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    buf[len] = '\0';
    int status = -1;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    char *body = strstr(buf, "\r\n\r\n");
    if (body)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

/* The value of the series named exactly by series (name{labels}), or -1. */
double support_metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}


struct scrape {
    int port;
    const char *series;
    double want;
    char text[131072];
};

static bool series_is(void *arg)
{
    struct scrape *s = arg;
    return support_http(s->port, "GET", "/metrics", s->text, sizeof s->text) == 200 &&
           support_metric(s->text, s->series) == s->want;
}

/* Polls the endpoint until series has the value want (up to timeout_ms). */
void support_expect_metric(int port, const char *series, double want, int timeout_ms)
{
    static struct scrape s;
    s.port = port;
    s.series = series;
    s.want = want;
    bool ok = support_wait(series_is, &s, timeout_ms);
    cr_assert(ok, "%s is %g, not %g, after %d ms; the endpoint says:\n%s", series,
              support_metric(s.text, series), want, timeout_ms, s.text);
}


bool support_json_holds(const char *dir, const char *json, char *err, size_t cap,
                        const char *script, ...)
{
    char path[600];
    snprintf(path, sizeof path, "%s/check.json", dir);
    support_write_file(path, json);
    char *argv[16] = { "python3", "-c", (char *)script, path };
    int argc = 4;
    va_list ap;
    va_start(ap, script);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    extern char **environ;
    int status = support_run(dir, "check", argv, environ);
    snprintf(path, sizeof path, "%s/check.err", dir);
    support_slurp(path, err, cap);
    return status == 0;
}

int support_run(const char *dir, const char *tag, char *const argv[], char *const envp[])
{
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", dir, tag);
    support_write_file(out, "");
    support_write_file(err, "");
    pid_t pid = support_fork();
    if (pid == 0) {
        extern char **environ;
        int o = open(out, O_WRONLY), e = open(err, O_WRONLY);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(126);
        environ = (char **)envp;
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0, status = -1;
    for (int waited = 0; waited <= 60000; waited += 10) {
        pid_t got = waitpid(pid, &st, WNOHANG);
        cr_assert(got >= 0 || errno == EINTR);
        if (got == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            break;
        }
        support_sleep_ms(10);
    }
    if (status == -1 && waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    return status;
}

static void *start_main(void *arg)
{
    support_start *st = arg;
    choreo_status s = choreo_service_start(st->svc);
    snprintf(st->error, sizeof st->error, "%s", choreo_last_error());
    atomic_store(&st->result, (int)s);
    return NULL;
}

void support_start_begin(support_start *st, choreo_service *svc)
{
    st->svc = svc;
    st->error[0] = '\0';
    atomic_store(&st->result, -1);
    cr_assert_eq(pthread_create(&st->thread, NULL, start_main, st), 0);
}

choreo_status support_start_join(support_start *st)
{
    pthread_join(st->thread, NULL);
    return (choreo_status)atomic_load(&st->result);
}

/* Waits for pid up to timeout_ms; its exit status, or -1 (killed, or it
 * ended by a signal). */
int support_reap(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        cr_assert(r == 0 || errno == EINTR);
        if (waited >= timeout_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        support_sleep_ms(10);
    }
}

bool support_wait_file_has(const char *path, const char *needle, int timeout_ms)
{
    static char text[65536];
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        support_slurp(path, text, sizeof text);
        if (strstr(text, needle))
            return true;
        support_sleep_ms(20);
    }
    return false;
}

size_t support_count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

void support_line_with(const char *text, const char *needle, char *out, size_t cap)
{
    const char *at = strstr(text, needle);
    out[0] = '\0';
    if (!at)
        return;
    const char *begin = at;
    while (begin > text && begin[-1] != '\n')
        begin--;
    const char *end = strchr(at, '\n');
    size_t len = end ? (size_t)(end - begin) : strlen(begin);
    snprintf(out, cap, "%.*s", (int)len, begin);
}
