/* Helpers for the integration tests. Every test starts its own nats-server
 * on a free port with its own store, and its services use SQLite files in
 * the test's own temp directory, so tests can run in parallel. */
#include "support.h"

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

void support_tmpdir(char *out, size_t cap)
{
    char dir[] = "/tmp/choreo-it-XXXXXX";
    cr_assert_not_null(mkdtemp(dir), "cannot create a temp dir");
    snprintf(out, cap, "%s", dir);
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

void support_exec(const char *dir, const char *name, const char *sql)
{
    sqlite3 *db = open_db(dir, name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    sqlite3_close(db);
}

void support_emit(choreo_service *svc, const char *type, const char *saga, int64_t n,
                  char id_out[CHOREO_ID_SIZE])
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    choreo_mp_write_map(&w, 1);
    choreo_mp_write_cstr(&w, "n");
    choreo_mp_write_int(&w, n);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_emit(tx, type, 1, saga, w.buf, w.len, id_out), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    choreo_mp_writer_free(&w);
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
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
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
    extern char **environ;
    int n = 0;
    for (char **e = environ; *e && n < cap - 1; e++)
        if (strncmp(*e, "CHOREO_", 7) != 0)
            envp[n++] = *e;
    envp[n] = NULL;
}
