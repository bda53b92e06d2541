/* choreoctl against a real nats-server and a real service: a handler that
 * rejects while "broken" parks its events; once fixed, the real choreoctl
 * binary lists, shows, retries (applied exactly once) and drops them, and
 * refuses wrong usage with exit status 2. The binary's path comes from the
 * CHOREOCTL environment variable, set by meson. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"


/* The "bug" in the handler: while set, every event is rejected and parked. */
static atomic_bool broken;

/* Inserts the event's id into the business table "applied". */
static bool record_applied(choreo_tx *tx, const choreo_event *ev)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(choreo_tx_db(tx), "INSERT INTO applied(event_id) VALUES (?1)", -1,
                           &s, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE;
}

/* Records the event in a business row, then rejects while broken: the row
 * must survive only when the handler returns DONE. */
static choreo_result fragile(choreo_tx *tx, const choreo_event *ev, void *user)
{
    if (!record_applied(tx, ev))
        return CHOREO_RETRY;
    return atomic_load(&broken) ? CHOREO_REJECT : CHOREO_DONE;
}

struct stat_arg {
    choreo_service *svc;
    int which; /* 0 handled, 1 parked */
    uint64_t want;
};

static bool stat_reaches(void *p)
{
    struct stat_arg *a = p;
    choreo_stats s;
    choreo_service_stats(a->svc, &s);
    return (a->which == 0 ? s.handled : s.parked) >= a->want;
}

static choreo_service *start_worker(const char *dir, const char *url)
{
    support_exec(dir, "worker", "CREATE TABLE IF NOT EXISTS applied(event_id TEXT)");
    choreo_config *cfg = support_config(dir, "worker", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Fragile", fragile, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

/* What one run of choreoctl did. */
struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs choreoctl with its output in files under dir. With a url, the
 * arguments start with --db dir/worker.db --nats-url url; the other
 * arguments follow. CHOREO_* variables of the test's own environment are
 * not passed on, so that only the arguments count; env, when not NULL, is
 * one "CHOREO_X=value" passed on instead. */
static void ctl_v(struct ctl_run *r, const char *dir, const char *url, char *env, va_list ap)
{
    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char db[600], out_path[600], err_path[600];
    snprintf(db, sizeof db, "%s/worker.db", dir);
    snprintf(out_path, sizeof out_path, "%s/ctl.out", dir);
    snprintf(err_path, sizeof err_path, "%s/ctl.err", dir);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)bin;
    if (url) {
        argv[argc++] = "--db";
        argv[argc++] = db;
        argv[argc++] = "--nats-url";
        argv[argc++] = (char *)url;
    }
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        cr_assert_lt(argc, 31);
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    char *envp[257];
    char *const extra[] = { env, NULL };
    support_env_with(envp, 257, extra);
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 1, out_path,
                                                  O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                                  O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", bin, strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        cr_assert_eq(errno, EINTR);
    slurp(out_path, r->out, sizeof r->out);
    slurp(err_path, r->err, sizeof r->err);
    cr_assert(WIFEXITED(st), "choreoctl died by signal %d; stderr: %s",
              WIFSIGNALED(st) ? WTERMSIG(st) : 0, r->err);
    r->status = WEXITSTATUS(st);
}

/* ctl_v with the arguments NULL-ended. */
static void ctl(struct ctl_run *r, const char *dir, const char *url, ...)
{
    va_list ap;
    va_start(ap, url);
    ctl_v(r, dir, url, NULL, ap);
    va_end(ap);
}

/* ctl with env ("CHOREO_X=value") in choreoctl's environment. */
static void ctl_env(struct ctl_run *r, const char *dir, const char *url, char *env, ...)
{
    va_list ap;
    va_start(ap, env);
    ctl_v(r, dir, url, env, ap);
    va_end(ap);
}

/* The choreo_dead row id of an event, or 0. */
static long long dead_id(const char *dir, const char *event_id)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COALESCE(MAX(id), 0) FROM choreo_dead WHERE event_id = '%s'", event_id);
    return support_count(dir, "worker", sql);
}

static long long applied(const char *dir, const char *event_id)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM applied WHERE event_id = '%s'", event_id);
    return support_count(dir, "worker", sql);
}

static void dead_status_is(const char *dir, long long id, const char *status)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_dead WHERE id = %lld AND status = '%s'",
             id, status);
    cr_assert_eq(support_count(dir, "worker", sql), 1, "entry %lld is not %s", id, status);
}

/* The service bumps its counters before the batch commits, so conditions
 * that choreoctl or SQL must see are awaited in the database itself. */
struct count_arg {
    const char *dir;
    const char *sql;
    long long want;
};

static bool count_reaches(void *p)
{
    struct count_arg *a = p;
    return support_count(a->dir, "worker", a->sql) >= a->want;
}

static bool wait_count(const char *dir, const char *sql, long long want)
{
    struct count_arg a = { dir, sql, want };
    return support_wait(count_reaches, &a, 20000);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

Test(choreoctl, retry_applies_a_fixed_event_once_and_drop_closes_another, .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, true);
    choreo_service *svc = start_worker(dir, server.url);
    char a[CHOREO_ID_SIZE], b[CHOREO_ID_SIZE];
    support_emit(svc, "Fragile", "saga-a", 41, a);
    support_emit(svc, "Fragile", "saga-b", 42, b);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'", 2),
              "the events were never parked");
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied"), 0);
    long long id_a = dead_id(dir, a), id_b = dead_id(dir, b);
    cr_assert(id_a > 0 && id_b > 0);
    atomic_store(&broken, false); /* the fix is deployed */

    struct ctl_run r;
    char want[128], id_text[24];
    ctl(&r, dir, server.url, "dead", "list", "--json", NULL);
    cr_assert_eq(r.status, 0, "dead list --json: %s", r.err);
    cr_assert_eq(r.out[0], '[', "not a JSON array: %s", r.out);
    snprintf(want, sizeof want, "\"event_id\": \"%s\"", a);
    cr_assert(strstr(r.out, want), "%s is not listed: %s", a, r.out);
    snprintf(want, sizeof want, "\"id\": %lld,", id_b);
    cr_assert(strstr(r.out, want), "entry %lld is not listed: %s", id_b, r.out);
    cr_assert(strstr(r.out, "\"reason\": \"handler returned REJECT\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"status\": \"parked\""), "%s", r.out);

    ctl(&r, dir, server.url, "dead", "list", NULL);
    cr_assert_eq(r.status, 0, "dead list: %s", r.err);
    cr_assert(strstr(r.out, "EVENT ID") && strstr(r.out, a) && strstr(r.out, b), "%s", r.out);

    snprintf(id_text, sizeof id_text, "%lld", id_a);
    ctl(&r, dir, server.url, "dead", "show", id_text, NULL);
    cr_assert_eq(r.status, 0, "dead show: %s", r.err);
    cr_assert(strstr(r.out, a), "dead show does not print the event id: %s", r.out);
    cr_assert(strstr(r.out, "a choreo envelope") && strstr(r.out, "\"n\": 41"), "%s", r.out);
    ctl(&r, dir, server.url, "dead", "show", id_text, "--json", NULL);
    cr_assert_eq(r.status, 0, "dead show --json: %s", r.err);
    snprintf(want, sizeof want, "\"id\": \"%s\"", a);
    cr_assert(strstr(r.out, want) && strstr(r.out, "\"saga\": \"saga-a\""), "%s", r.out);

    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 0, "dead retry: %s", r.err);
    cr_assert(strstr(r.out, a), "%s", r.out);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1),
              "the retried event was not handled");
    dead_status_is(dir, id_a, "retried");
    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "a second retry must fail: %s", r.out);
    cr_assert(strstr(r.err, "already retried"), "unclear error: %s", r.err);

    snprintf(id_text, sizeof id_text, "%lld", id_b);
    ctl(&r, dir, server.url, "dead", "drop", id_text, NULL);
    cr_assert_eq(r.status, 0, "dead drop: %s", r.err);
    dead_status_is(dir, id_b, "dropped");
    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "retrying a dropped message must fail");
    cr_assert(strstr(r.err, "was dropped"), "unclear error: %s", r.err);
    ctl(&r, dir, server.url, "dead", "list", "--json", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out, "[]\n", "nothing should be parked any more");

    /* Exactly once: give a stray second delivery time to show up. */
    sleep_ms(1500);
    choreo_stats st;
    choreo_service_stats(svc, &st);
    cr_assert_eq(st.handled, 1);
    cr_assert_eq(st.parked, 2);
    cr_assert_eq(applied(dir, a), 1);
    cr_assert_eq(applied(dir, b), 0);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM applied"), 1);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead"), 2);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(choreoctl, wrong_usage_exits_2_and_failures_exit_1_with_a_message, .timeout = 60)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    /* A database with a parked-message table but no service: choreoctl must
     * not need NATS for anything but retry. */
    support_exec(dir, "worker", "CREATE TABLE applied(event_id TEXT)");
    choreo_config *cfg = support_config(dir, "worker", "nats://127.0.0.1:1", NULL);
    choreo_service_destroy(support_service(cfg)); /* creates the choreo tables */
    choreo_config_destroy(cfg);
    const char *url = "nats://127.0.0.1:1";
    struct ctl_run r;
    static const struct {
        const char *args[4];
        int status;
        const char *says;
    } cases[] = {
        { { "dead", "frob" }, 2, "unknown subcommand \"frob\"" },
        { { "frob" }, 2, "unknown command \"frob\"" },
        { { "dead" }, 2, "missing subcommand" },
        { { "dead", "list", "--frob" }, 2, "unknown flag --frob" },
        { { "dead", "list", "--status", "lost" }, 2, "unknown status \"lost\"" },
        { { "dead", "show", "abc" }, 2, "invalid ID \"abc\"" },
        { { "dead", "show" }, 2, "missing ID" },
        { { "dead", "retry", "1", "--all" }, 2, "not both" },
        { { "dead", "show", "99" }, 1, "no message with ID 99" },
        { { "dead", "drop", "99" }, 1, "no message with ID 99" },
        /* Names no consumer can have: refused before NATS is asked (none
         * answers here), not reported as a consumer that is not there. */
        { { "consumers", "delete", "" }, 2, "invalid consumer name \"\"" },
        { { "consumers", "delete", "a.b" }, 2, "invalid consumer name \"a.b\"" },
        { { "consumers", "delete", "*" }, 2, "invalid consumer name \"*\"" },
        { { "consumers", "delete", ">" }, 2, "invalid consumer name \">\"" },
        { { "consumers", "delete", "worker Fragile" }, 2, "invalid consumer name" },
        { { "consumers", "delete", "worker/Fragile" }, 2, "invalid consumer name" },
        { { "dead", "list" }, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(&r, dir, url, a[0], a[1], a[2], a[3], NULL);
        cr_assert_eq(r.status, cases[i].status, "case %zu (%s %s): exit %d, stderr: %s", i,
                     a[0], a[1] ? a[1] : "", r.status, r.err);
        if (cases[i].says) {
            cr_assert(strstr(r.err, cases[i].says), "case %zu: %s", i, r.err);
            cr_assert(strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                      "case %zu: not one line: %s", i, r.err);
        }
    }
    /* A 255-byte name is the server's longest; one more byte is not a name. */
    char longest[257];
    memset(longest, 'x', 256);
    longest[256] = '\0';
    ctl(&r, dir, url, "consumers", "delete", longest, NULL);
    cr_assert_eq(r.status, 2, "a 256-byte name: exit %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "1 to 255 bytes"), "%s", r.err);
    longest[255] = '\0';
    ctl(&r, dir, url, "consumers", "delete", longest, NULL);
    cr_assert_eq(r.status, 1, "a 255-byte name is the server's to look for: %s", r.err);
    ctl(&r, dir, NULL, "dead", "list", NULL);
    cr_assert_eq(r.status, 2, "missing --db: exit %d", r.status);
    cr_assert(strstr(r.err, "dead list: no database given") && strstr(r.err, "--db"), "%s",
              r.err);
    ctl(&r, dir, NULL, "--db", "/nonexistent/choreo.db", "dead", "list", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "/nonexistent/choreo.db"), "%s", r.err);
    ctl(&r, dir, NULL, "dead", "list", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "--status") && strstr(r.out, "Exit status"), "%s", r.out);
}

/* A msgpack map {"id": <s>} as the body of a foreign, malformed message. */
static size_t bad_body(uint8_t *out, const char *id)
{
    size_t n = strlen(id), len = 0;
    out[len++] = 0x81;
    out[len++] = 0xa2;
    out[len++] = 'i';
    out[len++] = 'd';
    out[len++] = (uint8_t)(0xa0 | n);
    memcpy(out + len, id, n);
    return len + n;
}

Test(choreoctl, output_escapes_hostile_text_and_retry_all_retries_each, .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, true);
    choreo_service *svc = start_worker(dir, server.url);
    /* The parking reason quotes the bad id, with its quote, line break and
     * control character. */
    uint8_t body[64];
    size_t len = bad_body(body, "bad\"id\n\x01");
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsPubAck *pa = NULL;
    cr_assert_eq(js_Publish(&pa, js, "choreo.Fragile.x", body, (int)len, NULL, NULL), NATS_OK);
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    char c[CHOREO_ID_SIZE], d[CHOREO_ID_SIZE];
    support_emit(svc, "Fragile", "saga-c", 1, c);
    support_emit(svc, "Fragile", "saga-d", 2, d);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'", 3),
              "the messages were never parked");
    long long bad = support_count(dir, "worker",
                                  "SELECT id FROM choreo_dead WHERE event_id IS NULL OR event_id = ''");

    struct ctl_run r;
    ctl(&r, dir, server.url, "dead", "list", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "is \\\"bad\\\"id\\n\\u0001\\\""), "reason badly escaped: %s", r.out);
    ctl(&r, dir, server.url, "dead", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "bad\"id \\x01"), "control characters reach the terminal: %s", r.out);

    char id_text[24], hex[160] = "";
    snprintf(id_text, sizeof id_text, "%lld", bad);
    ctl(&r, dir, server.url, "dead", "show", id_text, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "not a valid choreo envelope") && strstr(r.out, "  00000000  81 a2"),
              "%s", r.out);
    ctl(&r, dir, server.url, "dead", "show", id_text, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", body[i]);
    char want[256];
    snprintf(want, sizeof want, "\"body_hex\": \"%s\"", hex);
    cr_assert(strstr(r.out, "\"envelope\": null") && strstr(r.out, want), "%s", r.out);

    atomic_store(&broken, false);
    ctl(&r, dir, server.url, "dead", "retry", "--all", NULL);
    cr_assert_eq(r.status, 0, "retry --all: %s", r.err);
    cr_assert(strstr(r.out, "Retried 3 of 3"), "%s", r.out);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 2),
              "the retried events were not handled");
    /* The malformed message is parked again, as a new entry. */
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'", 1),
              "the malformed message vanished");
    struct stat_arg handled = { svc, 0, 2 };
    cr_assert(support_wait(stat_reaches, &handled, 20000));
    cr_assert_eq(applied(dir, c), 1);
    cr_assert_eq(applied(dir, d), 1);
    cr_assert_eq(support_count(dir, "worker",
                               "SELECT COUNT(*) FROM choreo_dead WHERE status = 'retried'"), 3);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* Applies every event: a second consumer of the type, in its own service. */
static choreo_result steady(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return record_applied(tx, ev) ? CHOREO_DONE : CHOREO_RETRY;
}

static long long applied_in(const char *dir, const char *name, const char *event_id)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM applied WHERE event_id = '%s'", event_id);
    return support_count(dir, name, sql);
}

/* A retry is for the consumer that parked the event. Another consumer of
 * the type applied it long ago and has since pruned its inbox mark (as
 * inbox_retention_s does): it must not apply the retried event again. */
Test(choreoctl, retry_reaches_only_the_consumer_that_parked_the_event, .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, true);
    choreo_service *svc = start_worker(dir, server.url);
    support_exec(dir, "other", "CREATE TABLE applied(event_id TEXT)");
    choreo_config *cfg = support_config(dir, "other", server.url, NULL);
    choreo_service *other = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(other, "Fragile", steady, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(other), CHOREO_OK, "%s", choreo_last_error());

    char a[CHOREO_ID_SIZE];
    support_emit(svc, "Fragile", "saga-once", 7, a);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'", 1),
              "the event was never parked");
    struct stat_arg handled = { other, 0, 1 };
    cr_assert(support_wait(stat_reaches, &handled, 20000), "the other service never applied it");
    sleep_ms(300); /* its batch commits just after the counter moves */
    cr_assert_eq(applied_in(dir, "other", a), 1);
    support_exec(dir, "other", "DELETE FROM choreo_inbox"); /* pruned, as after retention */
    atomic_store(&broken, false);

    char id_text[24];
    snprintf(id_text, sizeof id_text, "%lld", dead_id(dir, a));
    struct ctl_run r;
    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 0, "dead retry: %s", r.err);
    cr_assert(strstr(r.out, "for consumer worker_Fragile"), "%s", r.out);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1), "the retry was not applied");
    /* Give the other service time to receive it too. */
    sleep_ms(1500);
    cr_assert_eq(applied(dir, a), 1, "the parking consumer applied it %lld times",
                 applied(dir, a));
    cr_assert_eq(applied_in(dir, "other", a), 1, "the other consumer applied the retry again");
    choreo_service_destroy(other);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* Starts the worker with handlers for the given types (NULL-ended) and its
 * log, at info level, in dir/worker.log; stops it again at once. */
static void run_worker_once(const char *dir, const char *url, ...)
{
    char log[600];
    snprintf(log, sizeof log, "%s/worker.log", dir);
    support_exec(dir, "worker", "CREATE TABLE IF NOT EXISTS applied(event_id TEXT)");
    choreo_config *cfg = support_config(dir, "worker", url, "log_level=info", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    va_list ap;
    va_start(ap, url);
    for (const char *t; (t = va_arg(ap, const char *)) != NULL;)
        cr_assert_eq(choreo_service_on(svc, t, steady, NULL), CHOREO_OK);
    va_end(ap);
    int saved = support_stderr_to(log);
    choreo_status st = choreo_service_start(svc);
    support_stderr_back(saved);
    cr_assert_eq(st, CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(svc);
}

Test(choreoctl, a_stale_consumer_is_listed_and_deleted, .timeout = 120)
{
    char dir[256], log[600], text[8192];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(log, sizeof log, "%s/worker.log", dir);
    /* A Fragile event is in the stream; OrderComplete is a misspelt type
     * nobody emits: only its handler gets the startup note. */
    choreo_service *svc = start_worker(dir, server.url);
    support_emit(svc, "Fragile", "saga-1", 1, NULL);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1));
    choreo_service_destroy(svc);
    run_worker_once(dir, server.url, "Fragile", "OrderComplete", NULL);
    slurp(log, text, sizeof text);
    cr_assert(strstr(text, "no event of this handler's type in the stream yet") &&
                  strstr(text, "type=OrderComplete consumer=worker_OrderComplete"),
              "no note for the misspelt type: %s", text);
    cr_assert_null(strstr(text, "type=Fragile"), "a note for a type with events: %s", text);
    /* The typo is fixed: the next start registers Fragile only. */
    run_worker_once(dir, server.url, "Fragile", NULL);

    struct ctl_run r;
    ctl(&r, dir, server.url, "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "consumers list: %s", r.err);
    char *fragile = strstr(r.out, "worker_Fragile "), *stale = strstr(r.out, "worker_OrderComplete ");
    cr_assert(fragile && stale, "%s", r.out);
    cr_assert(strncmp(strstr(fragile, "registered"), "registered", 10) == 0 &&
                  strstr(fragile, "registered") < strchr(fragile, '\n'),
              "%s", r.out);
    cr_assert(strstr(stale, "stale") && strstr(stale, "stale") < strchr(stale, '\n'), "%s", r.out);
    cr_assert(strstr(r.out, "1 stale"), "%s", r.out);
    ctl(&r, dir, server.url, "consumers", "list", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\"name\": \"worker_OrderComplete\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"state\": \"stale\""), "%s", r.out);
    cr_assert(strstr(r.out, "\"state\": \"registered\""), "%s", r.out);

    ctl(&r, dir, server.url, "consumers", "delete", "worker_Fragile", NULL);
    cr_assert_eq(r.status, 1, "a registered consumer was deleted: %s", r.out);
    cr_assert(strstr(r.err, "registered at its last start"), "%s", r.err);
    ctl(&r, dir, server.url, "consumers", "delete", "worker_Nothing", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "has no consumer worker_Nothing"), "%s", r.err);
    ctl(&r, dir, server.url, "consumers", "delete", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "missing consumer name"), "%s", r.err);
    ctl(&r, dir, server.url, "consumers", "delete", "worker_OrderComplete", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ctl(&r, dir, server.url, "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, "worker_OrderComplete"), "%s", r.out);
    cr_assert(strstr(r.out, "worker_Fragile"), "%s", r.out);

    /* Deleting a registered one by force: the next start creates it again. */
    ctl(&r, dir, server.url, "consumers", "delete", "worker_Fragile", "--force", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ctl(&r, dir, server.url, "consumers", "list", NULL);
    cr_assert(strstr(r.out, "missing"), "%s", r.out);
    run_worker_once(dir, server.url, "Fragile", NULL);
    ctl(&r, dir, server.url, "consumers", "list", NULL);
    cr_assert_null(strstr(r.out, "missing"), "%s", r.out);

    /* A consumer of the service's name that reads more than its type (made
     * by hand, or by someone with the service's NATS login reading every
     * event) is shown with its filter, not left out. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "worker_Everything";
    cc.AckPolicy = js_AckNone;
    cc.FilterSubject = "choreo.>";
    jsConsumerInfo *ci = NULL;
    cr_assert_eq(js_AddConsumer(&ci, js, "CHOREO", &cc, NULL, NULL), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ctl(&r, dir, server.url, "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *odd = strstr(r.out, "worker_Everything ");
    cr_assert(odd && strstr(odd, "odd filter") < strchr(odd, '\n') && strstr(odd, "odd filter"),
              "%s", r.out);
    cr_assert(strstr(r.out, "worker_Everything reads choreo.>, not what choreo gives a handler "
                            "of Everything"),
              "%s", r.out);
    ctl(&r, dir, server.url, "status", NULL);
    cr_assert(strstr(r.out, "odd filter") && strstr(r.out, "worker_Everything reads choreo.>"),
              "%s", r.out);
    ctl(&r, dir, server.url, "consumers", "delete", "worker_Everything", "--force", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    natsd_stop(&server, SIGTERM);
}

/* Whether the stream has the durable consumer name. */
static bool consumer_exists(const char *url, const char *name)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetConsumerInfo(&ci, js, "CHOREO", name, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    cr_assert(ns == NATS_OK || ns == NATS_NOT_FOUND, "consumer info of %s: %s", name,
              natsStatus_GetText(ns));
    return ns == NATS_OK;
}

/* A service named (--service, or CHOREO_SERVICE from the environment) that
 * is not the one the database belongs to is refused with exit 2: set
 * against another service's record, each of its consumers showed as stale,
 * and delete took one, with its position, from a service that was stopped. */
Test(choreoctl, a_service_the_database_does_not_belong_to_is_refused, .timeout = 120)
{
    char dir[256], payment_db[600];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(payment_db, sizeof payment_db, "%s/payment.db", dir);
    choreo_config *cfg = support_config(dir, "payment", server.url, NULL);
    choreo_service *payment = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(payment, "StockReserved", steady, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(payment, "OrderCancelled", steady, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(payment), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(payment); /* stopped: nothing reads its consumers now */
    run_worker_once(dir, server.url, "Fragile", NULL);

    struct ctl_run r;
    ctl(&r, dir, server.url, "--service", "payment", "consumers", "list", NULL);
    cr_assert_eq(r.status, 2, "exit %d; out: %s; err: %s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "--service payment, but database") &&
                  strstr(r.err, "worker.db belongs to service worker") &&
                  strstr(r.err, "leave --service out"),
              "%s", r.err);
    cr_assert_null(strstr(r.out, "stale"), "%s", r.out);
    ctl(&r, dir, server.url, "--service", "payment", "consumers", "delete",
        "payment_StockReserved", NULL);
    cr_assert_eq(r.status, 2, "exit %d; out: %s; err: %s", r.status, r.out, r.err);
    ctl_env(&r, dir, server.url, "CHOREO_SERVICE=payment", "consumers", "list", NULL);
    cr_assert_eq(r.status, 2, "exit %d; out: %s; err: %s", r.status, r.out, r.err);
    cr_assert(strstr(r.err, "from CHOREO_SERVICE") && strstr(r.err, "unset CHOREO_SERVICE"),
              "%s", r.err);
    ctl_env(&r, dir, server.url, "CHOREO_SERVICE=payment", "consumers", "delete",
            "payment_StockReserved", NULL);
    cr_assert_eq(r.status, 2, "exit %d; out: %s; err: %s", r.status, r.out, r.err);
    ctl(&r, dir, server.url, "--service", "nope", "consumers", "list", NULL);
    cr_assert_eq(r.status, 2, "exit %d; out: %s; err: %s", r.status, r.out, r.err);
    cr_assert(consumer_exists(server.url, "payment_StockReserved"));
    cr_assert(consumer_exists(server.url, "payment_OrderCancelled"));

    /* The service the database belongs to, given or not, is listed. */
    ctl(&r, dir, NULL, "--db", payment_db, "--nats-url", server.url, "--service", "payment",
        "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "payment_StockReserved") && !strstr(r.out, "stale"), "%s", r.out);
    ctl_env(&r, dir, server.url, "CHOREO_SERVICE=worker", "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "worker_Fragile"), "%s", r.out);
    ctl(&r, dir, NULL, "--db", payment_db, "--nats-url", server.url, "--service", "payment",
        "consumers", "delete", "payment_StockReserved", NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "registered at its last start"), "%s", r.err);

    /* A database that records no handlers (as one from before they were
     * recorded) cannot tell: --service is taken as given, and its consumers
     * are called stale only with a word on what that means here. */
    support_exec(dir, "worker", "DELETE FROM choreo_consumers");
    ctl(&r, dir, server.url, "--service", "payment", "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "payment_StockReserved") &&
                  strstr(r.out, "records no handlers of any service") &&
                  strstr(r.out, "cannot tell which consumers of service payment"),
              "%s", r.out);
    cr_assert_null(strstr(r.out, "no handler of the service's code"), "%s", r.out);
    ctl(&r, dir, server.url, "--service", "payment", "consumers", "list", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "records no handlers of any service"), "%s", r.err);
    natsd_stop(&server, SIGTERM);
}

Test(choreoctl, a_mistyped_flag_is_refused_with_the_closest_one, .timeout = 60)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    struct ctl_run r;
    ctl(&r, dir, NULL, "--nats-ulr", "nats://127.0.0.1:1", "consumers", "list", NULL);
    cr_assert_eq(r.status, 2, "%s", r.out);
    cr_assert(strstr(r.err, "unknown flag --nats-ulr (did you mean --nats-url?)"), "%s", r.err);
    ctl(&r, dir, NULL, "dead", "list", "--jsno", NULL);
    cr_assert_eq(r.status, 2, "%s", r.out);
    cr_assert(strstr(r.err, "unknown flag --jsno (did you mean --json?)"), "%s", r.err);
}

/* Every error of a command starts with its name, also the ones of opening
 * its database: here a write lock another process holds past the busy
 * timeout. */
Test(choreoctl, the_errors_of_opening_the_database_name_the_command, .timeout = 60)
{
    char dir[256], db[600];
    support_tmpdir(dir, sizeof dir);
    choreo_config *cfg = support_config(dir, "worker", "nats://127.0.0.1:1", NULL);
    choreo_service_destroy(support_service(cfg)); /* creates the choreo tables */
    choreo_config_destroy(cfg);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(h));
    static const struct {
        const char *args[3];
        const char *starts;
    } cases[] = {
        { { "dead", "drop", "1" }, "choreoctl: dead drop: " },
        { { "dead", "retry", "1" }, "choreoctl: dead retry: " },
        { { "review", "approve", "1" }, "choreoctl: review approve: " },
    };
    struct ctl_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(&r, dir, NULL, "--db", db, "--busy-timeout-ms", "100", a[0], a[1], a[2], NULL);
        cr_expect_eq(r.status, 1, "case %zu: exit %d, stderr: %s", i, r.status, r.err);
        cr_expect(strncmp(r.err, cases[i].starts, strlen(cases[i].starts)) == 0 &&
                      strstr(r.err, "locked"),
                  "case %zu: %s", i, r.err);
    }
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(h);
    ctl(&r, dir, NULL, "--db", db, "dead", "drop", "1", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "choreoctl: dead drop: no message with ID 1"), "%s", r.err);
    ctl(&r, dir, NULL, "--db", "/nonexistent/choreo.db", "consumers", "list", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "choreoctl: consumers list: cannot open database"), "%s", r.err);
}

/* Starts the worker broken on a server of its own in a new dir, emits one
 * event of saga, waits until it is parked, and mends the handler: the
 * parked event's id in id, its choreo_dead row's id returned. */
static long long park_one(char *dir, size_t cap, natsd *server, choreo_service **svc,
                          const char *saga, char id[CHOREO_ID_SIZE])
{
    support_tmpdir(dir, cap);
    support_server(server, dir, NULL, NULL);
    atomic_store(&broken, true);
    *svc = start_worker(dir, server->url);
    support_emit(*svc, "Fragile", saga, 5, id);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'", 1),
              "the event was never parked");
    atomic_store(&broken, false);
    return dead_id(dir, id);
}

/* How many messages the stream CHOREO of the server at url holds. */
static uint64_t stream_msgs(const char *url)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, "CHOREO", NULL, NULL), NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return n;
}

/* A retry pointed at another system's server would be applied there, or
 * by no one, and the row would say retried: it is refused, and the row
 * stays parked, until the server is the one the database belongs to. */
Test(choreoctl, retry_refuses_a_server_the_database_does_not_belong_to, .timeout = 120)
{
    char dir[256], dir2[256], a[CHOREO_ID_SIZE];
    natsd server, elsewhere;
    choreo_service *svc = NULL;
    long long id = park_one(dir, sizeof dir, &server, &svc, "saga-away", a);
    support_tmpdir(dir2, sizeof dir2);
    support_server(&elsewhere, dir2, NULL, NULL);
    char id_text[24];
    snprintf(id_text, sizeof id_text, "%lld", id);
    struct ctl_run r;

    /* A server with no stream at all. */
    ctl(&r, dir, elsewhere.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "no stream CHOREO"), "%s", r.err);
    dead_status_is(dir, id, "parked");

    /* A server where the same service runs on another database. */
    choreo_service *twin = start_worker(dir2, elsewhere.url);
    uint64_t before = stream_msgs(elsewhere.url);
    ctl(&r, dir, elsewhere.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "belongs to another database"), "%s", r.err);
    dead_status_is(dir, id, "parked");
    choreo_service_destroy(twin);

    /* A server with the stream and without the consumer. */
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, elsewhere.url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_DeleteConsumer(js, "CHOREO", "worker_Fragile", NULL, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ctl(&r, dir, elsewhere.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "is not on stream CHOREO"), "%s", r.err);
    dead_status_is(dir, id, "parked");
    cr_assert_eq(stream_msgs(elsewhere.url), before, "a refused retry was published");

    /* Its own server. */
    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 0, "dead retry: %s", r.err);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1), "the retry was not applied");
    dead_status_is(dir, id, "retried");
    choreo_service_destroy(svc);
    natsd_stop(&elsewhere, SIGTERM);
    natsd_stop(&server, SIGTERM);
}

/* Several retries of one row at the same moment: one publishes and marks
 * it, the others find it no longer parked and publish nothing. */
Test(choreoctl, retries_of_one_row_at_once_publish_it_once, .timeout = 120)
{
    char dir[256], a[CHOREO_ID_SIZE];
    natsd server;
    choreo_service *svc = NULL;
    long long id = park_one(dir, sizeof dir, &server, &svc, "saga-race", a);
    choreo_service_destroy(svc); /* nothing applies the retries: only the stream counts */
    char id_text[24], db[600];
    snprintf(id_text, sizeof id_text, "%lld", id);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    uint64_t before = stream_msgs(server.url);
    enum { RACERS = 4 };
    pid_t pids[RACERS];
    char *envp[256];
    support_env_without_choreo(envp, 256);
    for (int i = 0; i < RACERS; i++) {
        pids[i] = support_fork();
        if (pids[i] == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execle(getenv("CHOREOCTL"), "choreoctl", "--db", db, "--nats-url", server.url,
                   "dead", "retry", id_text, (char *)NULL, envp);
            _exit(127);
        }
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < RACERS; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0)
            cr_assert_eq(errno, EINTR);
        cr_assert(WIFEXITED(st));
        ok += WEXITSTATUS(st) == 0;
        refused += WEXITSTATUS(st) == 1;
    }
    cr_assert_eq(ok, 1, "%d retries succeeded", ok);
    cr_assert_eq(refused, RACERS - 1);
    cr_assert_eq(stream_msgs(server.url), before + 1, "published %llu times",
                 (unsigned long long)(stream_msgs(server.url) - before));
    natsd_stop(&server, SIGTERM);
}

/* A retry published by hand (Choreo-Retry-For without Choreo-Retry-Row) is
 * applied, and the row that said parked then says retried. */
Test(choreoctl, a_retry_published_by_hand_settles_its_parked_row, .timeout = 120)
{
    char dir[256], a[CHOREO_ID_SIZE];
    natsd server;
    choreo_service *svc = NULL;
    long long id = park_one(dir, sizeof dir, &server, &svc, "saga-hand", a);
    char path[600];
    snprintf(path, sizeof path, "%s/worker.db", dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT subject, body FROM choreo_dead WHERE id = ?1",
                                    -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    natsMsg *m = NULL;
    cr_assert_eq(natsMsg_Create(&m, (const char *)sqlite3_column_text(st, 0), NULL,
                                sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1)),
                 NATS_OK);
    sqlite3_finalize(st);
    sqlite3_close(db);
    cr_assert_eq(natsMsgHeader_Set(m, "Choreo-Retry-For", "worker_Fragile"), NATS_OK);
    support_js_publish(server.url, m);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1), "the retry was not applied");
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'retried'", 1),
              "the parked row still says parked");
    dead_status_is(dir, id, "retried");
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* A retry whose Choreo-Retry-For names a consumer of another type reaches
 * no consumer that would apply it: the consumers that see it say so. */
Test(choreoctl, a_retry_for_a_consumer_of_another_type_is_reported, .timeout = 60)
{
    char dir[256], log[300];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, false);
    snprintf(log, sizeof log, "%s/worker.log", dir);
    int saved = support_stderr_to(log);
    choreo_service *svc = start_worker(dir, server.url);
    char a[CHOREO_ID_SIZE];
    support_emit(svc, "Fragile", "saga-lost", 9, a);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1), "the event was not applied");
    natsMsg *m = NULL;
    cr_assert_eq(natsMsg_Create(&m, "choreo.Fragile.saga-lost", NULL, "x", 1), NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(m, "Choreo-Retry-For", "nobody_Other"), NATS_OK);
    support_js_publish(server.url, m);
    char text[16384] = "";
    for (int i = 0; i < 100 && !strstr(text, "retry_for=\"nobody_Other\""); i++) {
        sleep_ms(100);
        support_slurp(log, text, sizeof text);
    }
    choreo_service_destroy(svc);
    support_stderr_back(saved);
    cr_assert(strstr(text, "a retry names a consumer that cannot receive its type") &&
                  strstr(text, "retry_for=\"nobody_Other\""),
              "%s", text);
    cr_assert_eq(applied(dir, a), 1);
    natsd_stop(&server, SIGTERM);
}

/* choreoctl killed after it published a retry and before it marked the
 * row (crash point retry_after_publish): the row still says parked, the
 * service applies the message once and marks the row retried, and a retry
 * after that is refused as already retried. */
Test(choreoctl, a_retry_killed_before_its_mark_is_applied_once_and_settled, .timeout = 120)
{
    char dir[256], a[CHOREO_ID_SIZE];
    natsd server;
    choreo_service *svc = NULL;
    long long id = park_one(dir, sizeof dir, &server, &svc, "saga-killed", a);
    char id_text[24], db[600];
    snprintf(id_text, sizeof id_text, "%lld", id);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    char *envp[257];
    char *const crash[] = { "CHOREO_CRASHPOINTS=retry_after_publish", NULL };
    support_env_with(envp, 257, crash);
    pid_t pid = support_fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execle(getenv("CHOREOCTL"), "choreoctl", "--db", db, "--nats-url", server.url, "dead",
               "retry", id_text, (char *)NULL, envp);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        cr_assert_eq(errno, EINTR);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "choreoctl was not killed at its crash point (status %d)", st);
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM applied", 1), "the retry was not applied");
    cr_assert(wait_count(dir, "SELECT COUNT(*) FROM choreo_dead WHERE status = 'retried'", 1),
              "the row still says parked");
    struct ctl_run r;
    ctl(&r, dir, server.url, "dead", "retry", id_text, NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.err, "was already retried"), "%s", r.err);
    sleep_ms(300);
    cr_assert_eq(applied(dir, a), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}
