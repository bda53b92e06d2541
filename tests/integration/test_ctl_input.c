/* choreoctl against mistakes on its command line and in its surroundings,
 * run as the real binary (its path in CHOREOCTL, set by meson) beside a
 * real nats-server and a real service: an --svg that names a database, a
 * flag whose value is missing, several --db where one is meant, several
 * --dir and --db where several are meant (and one too many, or an empty
 * one), a wrong --stream, NATS away during dead retry --all, a damaged
 * database among several or alone, a lock file whose pid was reused, a
 * server that stops answering, and help that must say what the code does. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* ---- the service -------------------------------------------------------- */

/* While set, Fragile events are rejected, so parked. */
static atomic_bool broken;

static choreo_result fragile(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return atomic_load(&broken) ? CHOREO_REJECT : CHOREO_DONE;
}

/* The service "worker" (database dir/worker.db), with a handler for
 * Fragile, started. */
static choreo_service *start_worker(const char *dir, const char *url)
{
    choreo_config *cfg = support_config(dir, "worker", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Fragile", fragile, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

/* Emits n Fragile events of saga and waits until the relay published them
 * all (want: the published rows then). */
static void emit_published(choreo_service *svc, const char *dir, const char *saga, int n,
                           long long want)
{
    for (int i = 0; i < n; i++)
        support_emit(svc, "Fragile", saga, i, NULL);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                 "published_at IS NOT NULL", want, 20000),
              "the events were not published");
}

/* ---- running choreoctl -------------------------------------------------- */

struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

/* Starts choreoctl with the arguments of ap (NULL-ended) in the directory
 * dir, without the test's CHOREO_* variables, its stdout and stderr in
 * dir/<tag>.out and .err. The child is killed when the test's process
 * dies. */
/* When set, choreoctl runs without the power to override file permissions
 * (as root: the capabilities dropped from its bounding set), so that it
 * meets them as any other user does, wherever the test's files are. */
static bool no_override;

static pid_t spawn(const char *dir, const char *tag, va_list ap)
{
    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char *argv[40] = { (char *)bin };
    int argc = 1;
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        cr_assert_lt(argc, 39);
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    static char *envp[256];
    support_env_without_choreo(envp, 256);
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/%s.out", dir, tag);
    snprintf(err, sizeof err, "%s/%s.err", dir, tag);
    support_write_file(out, "");
    support_write_file(err, "");
    pid_t pid = support_fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY), e = open(err, O_WRONLY);
        /* A file a flag's value names lands in dir, where the test looks. */
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || chdir(dir) != 0)
            _exit(126);
        if (no_override && geteuid() == 0 &&
            (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0 ||
             prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) != 0))
            _exit(125);
        execve(bin, argv, envp);
        _exit(127);
    }
    return pid;
}

/* Runs choreoctl with the arguments that follow (NULL-ended) to its end. */
static void ctl(struct ctl_run *r, const char *dir, ...)
{
    va_list ap;
    va_start(ap, dir);
    pid_t pid = spawn(dir, "ctl", ap);
    va_end(ap);
    r->status = support_reap(pid, 60000);
    char path[600];
    snprintf(path, sizeof path, "%s/ctl.out", dir);
    support_slurp(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/ctl.err", dir);
    support_slurp(path, r->err, sizeof r->err);
    cr_assert_neq(r->status, -1, "choreoctl died or hung; stderr: %s", r->err);
}

static pid_t ctl_background(const char *dir, const char *tag, ...)
{
    va_list ap;
    va_start(ap, tag);
    pid_t pid = spawn(dir, tag, ap);
    va_end(ap);
    return pid;
}

/* The line of text that holds needle, copied into line ("" when none). */
static void line_with(const char *text, const char *needle, char *line, size_t cap)
{
    const char *p = strstr(text, needle);
    line[0] = '\0';
    if (!p)
        return;
    while (p > text && p[-1] != '\n')
        p--;
    snprintf(line, cap, "%.*s", (int)strcspn(p, "\n"), p);
}

/* Whether path begins with the SQLite header and still answers a query. */
static bool still_a_database(const char *dir, const char *name)
{
    char path[600], head[16] = "";
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return got == sizeof head && memcmp(head, "SQLite format 3", 16) == 0 &&
           support_count(dir, name, "SELECT COUNT(*) FROM sqlite_master") > 0;
}

/* ---- saga --svg --------------------------------------------------------- */

Test(ctl_input, saga_svg_refuses_to_overwrite_a_database, .timeout = 120)
{
    char dir[256], db[600], other[600], svg[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url);
    emit_published(svc, dir, "s1", 2, 2);
    choreo_service_destroy(svc);
    /* Another SQLite file, not given to saga: a service's database all the same. */
    support_exec(dir, "other", "CREATE TABLE kept(x)");
    snprintf(db, sizeof db, "%s/worker.db", dir);
    snprintf(other, sizeof other, "%s/other.db", dir);
    snprintf(svg, sizeof svg, "%s/saga.svg", dir);

    struct ctl_run r;
    ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--db", db, "--svg", db, NULL);
    cr_assert_eq(r.status, 1, "--svg onto the --db: exit %d; stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "one of the databases saga reads"), "%s", r.err);
    cr_assert_str_eq(r.out, "", "saga printed before it refused: %s", r.out);
    cr_assert(still_a_database(dir, "worker"), "saga --svg destroyed the database it read");
    /* The same file under another name. */
    ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--db", db, "--svg", "./worker.db",
        NULL);
    cr_assert_eq(r.status, 1, "--svg onto the --db by another name: %s", r.err);
    cr_assert(still_a_database(dir, "worker"));

    ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--db", db, "--svg", other, NULL);
    cr_assert_eq(r.status, 1, "--svg onto a SQLite file: exit %d; stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "is a SQLite database"), "%s", r.err);
    cr_assert(still_a_database(dir, "other"), "saga --svg destroyed a SQLite file");

    /* A database's companion files hold part of it (a live database's
     * write-ahead log holds its last commits): refused too, the database
     * read or any other. (The -shm file of the database read is SQLite's
     * own to rewrite as saga reads it, so the test writes another's.) */
    const char *companions[] = { "worker.db-wal", "worker.db.lock", "other.db-wal",
                                 "other.db-shm", "other.db-journal" };
    for (size_t i = 0; i < sizeof companions / sizeof companions[0]; i++) {
        char path[700], kept[64];
        snprintf(path, sizeof path, "%s/%s", dir, companions[i]);
        support_write_file(path, "part of a database\n");
        ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--db", db, "--svg", path, NULL);
        cr_expect_eq(r.status, 1, "--svg onto %s: exit %d; stderr: %s", companions[i],
                     r.status, r.err);
        cr_expect(strstr(r.err, "belongs to the database"), "%s: %s", companions[i], r.err);
        support_slurp(path, kept, sizeof kept);
        cr_expect_str_eq(kept, "part of a database\n", "saga --svg overwrote %s",
                         companions[i]);
        unlink(path);
    }

    /* Any other file is replaced, as before. */
    support_write_file(svg, "an older drawing\n");
    ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--db", db, "--svg", svg, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    support_slurp(svg, text, sizeof text);
    cr_assert(strstr(text, "<svg") && !strstr(text, "an older drawing"), "%.200s", text);
    natsd_stop(&server, SIGTERM);
}

/* ---- flags and their values --------------------------------------------- */

Test(ctl_input, a_flag_without_its_value_is_a_usage_error_naming_it, .timeout = 120)
{
    char dir[256], db[600], path[600];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = start_worker(dir, server.url);
    emit_published(svc, dir, "s1", 1, 1);
    choreo_service_destroy(svc);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    /* A flag choreoctl knows where the value should be is refused by the
     * settings' parser; anything else that starts with -- by the command. */
    static const struct {
        const char *args[5];
        const char *says;
    } cases[] = {
        { { "saga", "s1", "--svg", "--json" }, "--svg needs a value" },
        { { "review", "approve", "1", "--note", "--json" }, "--note needs a value" },
        { { "saga", "s1", "--svg", "--jsno" }, "saga: --svg needs a value" },
        { { "saga", "s1", "--svg", "" }, "saga: --svg needs a file name" },
        { { "saga", "s1", "--dir", "--x" }, "saga: --dir needs a value" },
        { { "saga", "s1", "--limit", "--x" }, "saga: --limit needs a value" },
        { { "review", "approve", "1", "--note", "--x" }, "review approve: --note needs a value" },
        { { "review", "reject", "1", "--by", "--x" }, "review reject: --by needs a value" },
        { { "review", "list", "--state", "--x" }, "review list: --state needs a value" },
        { { "sagas", "--state", "--x" }, "sagas: --state needs a value" },
        { { "dead", "list", "--status", "--x" }, "dead list: --status needs a value" },
        { { "status", "--dir", "--x" }, "status: --dir needs a value" },
        { { "tail", "--type", "--x" }, "tail: --type needs a value" },
        { { "tail", "--saga", "--x" }, "tail: --saga needs a value" },
    };
    struct ctl_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(&r, dir, "--db", db, "--nats-url", server.url, a[0], a[1], a[2], a[3], a[4], NULL);
        cr_assert_eq(r.status, 2, "case %zu (%s): exit %d, stderr: %s", i, cases[i].says,
                     r.status, r.err);
        cr_assert(strstr(r.err, cases[i].says), "case %zu: %s", i, r.err);
        cr_assert_str_eq(r.out, "", "case %zu printed: %s", i, r.out);
    }
    snprintf(path, sizeof path, "%s/--jsno", dir);
    cr_assert_neq(access(path, F_OK), 0, "saga --svg --jsno wrote a file named --jsno");

    /* Written with =, a value may start with --. */
    ctl(&r, dir, "--db", db, "review", "approve", "1", "--note=--x", NULL);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "no hold with ID 1"), "%s", r.err);
    ctl(&r, dir, "--db", db, "dead", "list", "--status=--x", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown status \"--x\""), "%s", r.err);

    /* A flag of one value given twice is refused: the last one won
     * silently. --type is the one meant to repeat. */
    static const struct {
        const char *args[6];
        const char *says;
    } twice[] = {
        { { "tail", "--saga", "a", "--saga", "b" }, "--saga is given twice" },
        { { "dead", "list", "--status", "parked", "--status=dropped" }, "--status is given twice" },
        { { "sagas", "--limit", "1", "--limit", "2" }, "--limit is given twice" },
        { { "saga", "s1", "--limit=1", "--limit", "2" }, "--limit is given twice" },
    };
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        const char *const *a = twice[i].args;
        ctl(&r, dir, "--db", db, "--nats-url", server.url, a[0], a[1], a[2], a[3], a[4], a[5],
            NULL);
        cr_expect_eq(r.status, 2, "%s: exit %d, stderr: %s", twice[i].says, r.status, r.err);
        cr_expect(strstr(r.err, twice[i].says), "%s", r.err);
        cr_expect_str_eq(r.out, "", "%s printed: %s", twice[i].says, r.out);
    }
    natsd_stop(&server, SIGTERM);
}

Test(ctl_input, review_refuses_an_empty_note, .timeout = 60)
{
    char dir[256], db[600];
    support_tmpdir(dir, sizeof dir);
    choreo_config *cfg = support_config(dir, "worker", "nats://127.0.0.1:1", NULL);
    choreo_service_destroy(support_service(cfg)); /* creates the choreo tables */
    choreo_config_destroy(cfg);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    struct ctl_run r;
    ctl(&r, dir, "--db", db, "review", "approve", "1", "--note", "", NULL);
    cr_assert_eq(r.status, 2, "an empty --note: exit %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "review approve: --note is empty"), "%s", r.err);
    ctl(&r, dir, "--db", db, "review", "reject", "1", "--note=", NULL);
    cr_assert_eq(r.status, 2, "an empty --note=: exit %d, stderr: %s", r.status, r.err);
    cr_assert(strstr(r.err, "review reject: --note is empty"), "%s", r.err);
    ctl(&r, dir, "--db", db, "review", "approve", "1", "--note", "fine", NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "no hold with ID 1"), "%s", r.err);
}

/* ---- one database ------------------------------------------------------- */

Test(ctl_input, dead_and_consumers_refuse_several_db, .timeout = 60)
{
    char dir[256], a[600], b[600];
    support_tmpdir(dir, sizeof dir);
    const char *names[] = { "first", "second" };
    for (int i = 0; i < 2; i++) {
        choreo_config *cfg = support_config(dir, names[i], "nats://127.0.0.1:1", NULL);
        choreo_service_destroy(support_service(cfg));
        choreo_config_destroy(cfg);
    }
    snprintf(a, sizeof a, "%s/first.db", dir);
    snprintf(b, sizeof b, "%s/second.db", dir);
    static const struct {
        const char *args[3];
        const char *says;
    } cases[] = {
        { { "dead", "list" }, "dead list: 2 --db given" },
        { { "dead", "show", "1" }, "dead show: 2 --db given" },
        { { "dead", "retry", "1" }, "dead retry: 2 --db given" },
        { { "dead", "drop", "1" }, "dead drop: 2 --db given" },
        { { "consumers", "list" }, "consumers list: 2 --db given" },
        { { "consumers", "delete", "first_Fragile" }, "consumers delete: 2 --db given" },
    };
    struct ctl_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *c = cases[i].args;
        ctl(&r, dir, "--nats-url", "nats://127.0.0.1:1", "--db", a, "--db", b, c[0], c[1], c[2],
            NULL);
        cr_assert_eq(r.status, 2, "case %zu (%s): exit %d, stderr: %s", i, cases[i].says,
                     r.status, r.err);
        cr_assert(strstr(r.err, cases[i].says), "case %zu: %s", i, r.err);
    }
    ctl(&r, dir, "--db", a, "dead", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
}

/* ---- a stream that is not there ----------------------------------------- */

Test(ctl_input, a_wrong_stream_is_named_not_shown_as_missing_consumers, .timeout = 120)
{
    char dir[256], db[600], line[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service_destroy(start_worker(dir, server.url)); /* registers worker_Fragile */
    snprintf(db, sizeof db, "%s/worker.db", dir);
    struct ctl_run r;
    ctl(&r, dir, "--db", db, "--nats-url", server.url, "consumers", "list", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    line_with(r.out, "worker_Fragile", line, sizeof line);
    cr_assert(strstr(line, "registered"), "%s", r.out);

    ctl(&r, dir, "--db", db, "--nats-url", server.url, "--stream", "ELSEWHERE", "consumers",
        "list", NULL);
    cr_assert_eq(r.status, 1, "consumers list with a wrong --stream: exit %d; out: %s", r.status,
                 r.out);
    cr_assert(strstr(r.err, "no stream ELSEWHERE") && strstr(r.err, "--nats-url") &&
                  strstr(r.err, "--stream"),
              "%s", r.err);
    cr_assert_null(strstr(r.out, "missing"), "%s", r.out);

    /* A wrong --prefix names the prefix, not the broker's words. */
    ctl(&r, dir, "--db", db, "--nats-url", server.url, "--prefix", "nope", "saga", "s1", NULL);
    cr_assert_eq(r.status, 1, "saga with a wrong --prefix: exit %d; out: %s", r.status, r.out);
    cr_assert(strstr(r.err, "takes no subjects nope.*.s1") && strstr(r.err, "check --prefix"),
              "%s", r.err);

    /* The server's URL is named without a password it holds (this server
     * asks for none, and takes the connection either way). */
    char secret_url[800];
    snprintf(secret_url, sizeof secret_url, "nats://alice:S3cretPW@%s",
             server.url + strlen("nats://"));
    ctl(&r, dir, "--db", db, "--nats-url", secret_url, "--stream", "ELSEWHERE", "consumers",
        "list", NULL);
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "no stream ELSEWHERE on the NATS server at nats://***@127.0.0.1:"),
              "%s", r.err);
    cr_assert_null(strstr(r.err, "S3cretPW"), "%s", r.err);
    ctl(&r, dir, "--db", db, "--nats-url", secret_url, "--stream", "ELSEWHERE", "status", NULL);
    cr_assert_null(strstr(r.err, "S3cretPW"), "%s", r.err);
    cr_assert_null(strstr(r.out, "S3cretPW"), "%s", r.out);

    ctl(&r, dir, "--db", db, "--nats-url", server.url, "--stream", "ELSEWHERE", "status",
        NULL);
    cr_assert_eq(r.status, 1, "status with a wrong --stream: exit %d; out: %s", r.status, r.out);
    line_with(r.out, "consumers", line, sizeof line);
    cr_assert(strstr(line, "not listed: no stream ELSEWHERE"), "%s", r.out);
    cr_assert_null(strstr(r.out, "missing"), "%s", r.out);
    cr_assert(strstr(r.out, "outbox") && strstr(r.out, "parked"), "the rest is printed: %s",
              r.out);
    cr_assert(strstr(r.err, "no stream ELSEWHERE"), "%s", r.err);
    ctl(&r, dir, "--db", db, "--nats-url", server.url, "--stream", "ELSEWHERE", "status",
        "--json", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.out, "\"consumers\": null"), "%s", r.out);
    line_with(r.out, "no stream ELSEWHERE", line, sizeof line);
    cr_assert(line[0], "errors do not name the stream: %s", r.out);

    ctl(&r, dir, "--db", db, "--nats-url", server.url, "status", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    line_with(r.out, "worker_Fragile", line, sizeof line);
    cr_assert(strstr(line, "registered"), "%s", r.out);
    natsd_stop(&server, SIGTERM);
}

/* ---- dead retry --all with NATS away ------------------------------------ */

Test(ctl_input, retry_all_stops_at_the_first_failure_to_reach_nats, .timeout = 120)
{
    char dir[256], db[600], url[64];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, true);
    choreo_service *svc = start_worker(dir, server.url);
    emit_published(svc, dir, "s1", 3, 3);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE "
                                 "status = 'parked'", 3, 20000), "the events were not parked");
    choreo_service_destroy(svc);
    snprintf(url, sizeof url, "%s", server.url);
    natsd_stop(&server, SIGTERM);
    snprintf(db, sizeof db, "%s/worker.db", dir);

    struct ctl_run r;
    int64_t t0 = support_mono_ms();
    ctl(&r, dir, "--db", db, "--nats-url", url, "--connect-wait-ms", "1000", "dead", "retry",
        "--all", NULL);
    int64_t took = support_mono_ms() - t0;
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert_eq(support_count_of(r.err, "stays parked"), 1, "NATS was tried more than once: %s",
                 r.err);
    /* The counts add up: none retried, one failed, two not tried. */
    cr_assert(strstr(r.out, "Retried 0 of 3 parked messages; 1 failed because NATS could not "
                            "be reached (see the error above), so the remaining 2 were not "
                            "tried: they stay parked.\n"),
              "%s", r.out);
    cr_assert_lt(took, 2500, "retry --all took %lld ms with NATS away", (long long)took);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE "
                               "status = 'parked'"), 3);
    /* With two parked, one is not tried: said in the singular. */
    ctl(&r, dir, "--db", db, "dead", "drop", "3", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    ctl(&r, dir, "--db", db, "--nats-url", url, "--connect-wait-ms", "1000", "dead", "retry",
        "--all", NULL);
    cr_assert_eq(r.status, 1, "%s", r.out);
    cr_assert(strstr(r.out, "Retried 0 of 2 parked messages; 1 failed because NATS could not "
                            "be reached (see the error above), so the remaining 1 was not "
                            "tried: it stays parked.\n"),
              "%s", r.out);
}

/* ---- status and a damaged database -------------------------------------- */

Test(ctl_input, status_prints_the_good_databases_beside_a_bad_one, .timeout = 120)
{
    char dir[256], db[600], bad[600], line[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service_destroy(start_worker(dir, server.url));
    snprintf(db, sizeof db, "%s/worker.db", dir);
    snprintf(bad, sizeof bad, "%s/notadb.txt", dir);
    support_write_file(bad, "not a database at all\n");
    struct ctl_run r;
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", db, "--db", bad, NULL);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    line_with(r.out, "worker.db", line, sizeof line);
    cr_assert(strstr(line, "database"), "the good database is not shown: %s", r.out);
    cr_assert(strstr(r.out, "0 pending"), "the good database's outbox is not shown: %s", r.out);
    line_with(r.out, "worker_Fragile", line, sizeof line);
    cr_assert(strstr(line, "registered"), "%s", r.out);
    line_with(r.out, "cannot be read: ", line, sizeof line);
    cr_assert(strstr(line, "notadb.txt"), "the bad one is not reported in place: %s", r.out);
    cr_assert(strstr(r.err, "notadb.txt"), "%s", r.err);

    ctl(&r, dir, "--nats-url", server.url, "status", "--db", db, "--db", bad, "--json", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert_eq(support_count_of(r.out, "\"service\": "), 2, "%s", r.out);
    cr_assert(strstr(r.out, "\"outbox\": null") && strstr(r.out, "\"pending\": 0"), "%s",
              r.out);

    /* No database readable at all: the text is only the errors, but JSON
     * is still the object, with each database's error in it, for a script
     * that reads stdout. */
    char empty[600], err[8192];
    snprintf(empty, sizeof empty, "%s/empty.db", dir);
    support_write_file(empty, "");
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", empty, "--db", bad, NULL);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    cr_assert_str_eq(r.out, "", "%s", r.out);
    cr_assert(strstr(r.err, "empty.db") && strstr(r.err, "notadb.txt"), "%s", r.err);
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", empty, "--db", bad, "--json",
        NULL);
    cr_assert_eq(r.status, 1, "exit %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "empty.db") && strstr(r.err, "notadb.txt"), "%s", r.err);
    static const char all_bad[] =
        "import json, sys\n"
        "s = json.load(open(sys.argv[1]))['services']\n"
        "assert [x['db'] for x in s] == [sys.argv[2], sys.argv[3]], s\n"
        "assert all(x['outbox'] is None and x['relay']['state'] == 'unknown' for x in s), s\n"
        "assert 'no table choreo_dead' in s[0]['errors'][0], s[0]\n"
        "assert 'cannot read database' in s[1]['errors'][0], s[1]\n";
    cr_assert(support_json_holds(dir, r.out, err, sizeof err, all_bad, empty, bad, NULL),
              "the JSON is wrong: %s\n%s", err, r.out);
    natsd_stop(&server, SIGTERM);
}

/* ---- several --dir and --db -------------------------------------------- */

/* A service "name" with its database in dir/sub, which emitted one event of
 * saga s1, stopped. The database's path in db. */
static void service_in(const char *dir, const char *sub, const char *name, const char *url,
                       char *db, size_t cap)
{
    char where[600];
    snprintf(where, sizeof where, "%s/%s", dir, sub);
    cr_assert_eq(mkdir(where, 0700), 0, "%s: %s", where, strerror(errno));
    choreo_config *cfg = support_config(where, name, url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Fragile", "s1", 1, NULL);
    cr_assert(support_wait_count(where, name, "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                 "published_at IS NOT NULL", 1, 20000),
              "%s's event was not published", name);
    choreo_service_destroy(svc);
    int n = snprintf(db, cap, "%s/%s.db", where, name);
    cr_assert(n > 0 && (size_t)n < cap, "the path of %s's database is too long", name);
}

Test(ctl_input, status_and_saga_read_every_dir_and_db_given, .timeout = 120)
{
    char dir[256], first[600], second[600], a[600], b[600], err[8192];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    service_in(dir, "a", "first", server.url, first, sizeof first);
    service_in(dir, "b", "second", server.url, second, sizeof second);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    static const char both_status[] =
        "import json, sys\n"
        "s = json.load(open(sys.argv[1]))['services']\n"
        "assert [(x['service'], x['db']) for x in s] == "
        "[('first', sys.argv[2]), ('second', sys.argv[3])], s\n"
        "assert all(x['errors'] == [] for x in s), s\n";
    static const char both_saga[] =
        "import json, sys\n"
        "d = json.load(open(sys.argv[1]))['databases']\n"
        "assert [(x['service'], x['path']) for x in d] == "
        "[('first', sys.argv[2]), ('second', sys.argv[3])], d\n";
    struct ctl_run r;
    /* As --dir DIR, as --dir=DIR, and as --db FILE: each time both. */
    ctl(&r, dir, "--nats-url", server.url, "status", "--dir", a, "--dir", b, "--json", NULL);
    cr_assert_eq(r.status, 0, "two --dir: exit %d: %s", r.status, r.err);
    cr_assert(support_json_holds(dir, r.out, err, sizeof err, both_status, first, second, NULL),
              "%s\n%s", err, r.out);
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", first, "--db", second, "--json",
        NULL);
    cr_assert_eq(r.status, 0, "two --db: exit %d: %s", r.status, r.err);
    cr_assert(support_json_holds(dir, r.out, err, sizeof err, both_status, first, second, NULL),
              "%s\n%s", err, r.out);
    ctl(&r, dir, "--nats-url", server.url, "saga", "s1", "--dir", a, "--dir=b", "--json", NULL);
    cr_assert_eq(r.status, 0, "two --dir: exit %d: %s", r.status, r.err);
    cr_assert(support_json_holds(dir, r.out, err, sizeof err, both_saga, first, "b/second.db",
                                 NULL), "%s\n%s", err, r.out);
    ctl(&r, dir, "--nats-url", server.url, "--db", first, "saga", "s1", "--db=b/second.db",
        "--json", NULL);
    cr_assert_eq(r.status, 0, "two --db: exit %d: %s", r.status, r.err);
    cr_assert(support_json_holds(dir, r.out, err, sizeof err, both_saga, first, "b/second.db",
                                 NULL), "%s\n%s", err, r.out);

    /* 16 --dir are the most (the same directory, read once); 17 are refused. */
    const char *d = "--dir=a";
    ctl(&r, dir, "--nats-url", server.url, "status", d, d, d, d, d, d, d, d, d, d, d, d, d, d,
        d, d, NULL);
    cr_assert_eq(r.status, 0, "16 --dir: exit %d: %s", r.status, r.err);
    cr_assert_eq(support_count_of(r.out, "service     first"), 1, "%s", r.out);
    static const char *const cmds[][2] = { { "status", NULL }, { "saga", "s1" } };
    /* Each command's first argument, then 17 --dir. */
    for (size_t i = 0; i < 2; i++) {
        const char *c = cmds[i][0], *id = cmds[i][1] ? cmds[i][1] : "--json";
        ctl(&r, dir, "--nats-url", server.url, c, id, d, d, d, d, d, d, d, d, d, d, d, d, d, d,
            d, d, d, NULL);
        cr_assert_eq(r.status, 2, "%s with 17 --dir: exit %d: %s", c, r.status, r.err);
        char want[64];
        snprintf(want, sizeof want, "choreoctl: %s: more than 16 --dir flags", c);
        cr_assert(strstr(r.err, want), "%s", r.err);
        cr_assert_str_eq(r.out, "");
        /* An empty --dir or --db is a mistake on the command line too. */
        ctl(&r, dir, "--nats-url", server.url, c, id, "--dir", a, "--dir", "", NULL);
        cr_assert_eq(r.status, 2, "%s --dir '': exit %d: %s", c, r.status, r.err);
        snprintf(want, sizeof want, "choreoctl: %s: --dir is empty", c);
        cr_assert(strstr(r.err, want), "%s", r.err);
        ctl(&r, dir, "--nats-url", server.url, c, id, "--dir=", NULL);
        cr_assert_eq(r.status, 2, "%s --dir=: exit %d: %s", c, r.status, r.err);
        cr_assert(strstr(r.err, want), "%s", r.err);
        ctl(&r, dir, "--nats-url", server.url, c, id, "--db", "", "--db", first, NULL);
        cr_assert_eq(r.status, 2, "%s --db '': exit %d: %s", c, r.status, r.err);
        cr_assert(strstr(r.err, "flag --db: must not be empty"), "%s", r.err);
    }
    natsd_stop(&server, SIGTERM);
}

/* ---- the lock file ------------------------------------------------------ */

/* A database this user may not read, or whose directory it may not write
 * (a reader of a WAL database writes its -shm file there), says so instead
 * of suggesting another file. */
Test(ctl_input, a_database_this_user_may_not_open_names_the_permission, .timeout = 60)
{
    char dir[256], db[600], shm[620], wal[620];
    support_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    snprintf(shm, sizeof shm, "%s-shm", db);
    snprintf(wal, sizeof wal, "%s-wal", db);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "PRAGMA journal_mode=WAL; CREATE TABLE choreo_dead(id INTEGER)",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    remove(shm), remove(wal);
    no_override = true;
    struct ctl_run r;
    cr_assert_eq(chmod(db, 0), 0);
    ctl(&r, dir, "dead", "list", "--db", db, NULL);
    cr_assert_eq(r.status, 1, "%s %s", r.out, r.err);
    cr_assert(strstr(r.err, "this user may not read it: run choreoctl as the service's user"),
              "%s", r.err);
    cr_assert_eq(chmod(db, 0644), 0);
    cr_assert_eq(chmod(dir, 0555), 0);
    ctl(&r, dir, "dead", "list", "--db", db, NULL);
    no_override = false;
    cr_assert_eq(chmod(dir, 0700), 0);
    cr_assert_eq(r.status, 1, "%s %s", r.out, r.err);
    cr_assert(strstr(r.err, "this user may not write its directory"), "%s", r.err);
}

/* A change this user may not write (the file read-only to it) says so,
 * not only SQLite's "attempt to write a readonly database". */
Test(ctl_input, a_database_this_user_may_not_write_names_the_permission, .timeout = 60)
{
    char dir[256], db[600];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    atomic_store(&broken, true);
    choreo_service *svc = start_worker(dir, server.url);
    emit_published(svc, dir, "s1", 1, 1);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE "
                                 "status = 'parked'", 1, 20000), "the event was not parked");
    choreo_service_destroy(svc);
    atomic_store(&broken, false);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    no_override = true;
    cr_assert_eq(chmod(db, 0444), 0);
    struct ctl_run r;
    ctl(&r, dir, "--db", db, "dead", "drop", "1", NULL);
    no_override = false;
    cr_assert_eq(chmod(db, 0600), 0);
    cr_assert_eq(r.status, 1, "%s %s", r.out, r.err);
    cr_assert(strstr(r.err, "may not write the database file") &&
                  strstr(r.err, "run it as the user the service runs as"),
              "%s", r.err);
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE "
                                              "status = 'parked'"),
                 1, "the message was changed all the same");
    natsd_stop(&server, SIGTERM);
}

Test(ctl_input, a_reused_pid_in_a_stale_lock_file_is_not_running, .timeout = 120)
{
    char dir[256], db[600], lock[600], line[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(db, sizeof db, "%s/worker.db", dir);
    snprintf(lock, sizeof lock, "%s/worker.db.lock", dir);
    choreo_service *svc = start_worker(dir, server.url);
    struct ctl_run r;
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    line_with(r.out, "process", line, sizeof line);
    cr_assert(strstr(line, "running (pid"), "the running service: %s", r.out);
    choreo_service_destroy(svc);

    /* Killed outright long ago, its pid now another process's: a live
     * process that does not have the lock file open. */
    pid_t other = support_fork();
    if (other == 0) {
        pause();
        _exit(0);
    }
    char text[200], want[64];
    snprintf(text, sizeof text, "pid=%d\nservice=worker\nstarted=2020-01-01T00:00:00Z\n",
             (int)other);
    support_write_file(lock, text);
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    line_with(r.out, "process", line, sizeof line);
    snprintf(want, sizeof want, "stopped (pid %d,", (int)other);
    cr_assert(strstr(line, want), "%s", r.out);
    ctl(&r, dir, "--nats-url", server.url, "status", "--db", db, "--json", NULL);
    snprintf(want, sizeof want, "\"pid\": %d,", (int)other);
    cr_assert(strstr(r.out, "\"running\": false") && strstr(r.out, want), "%s", r.out);
    kill(other, SIGKILL);
    waitpid(other, NULL, 0);
    natsd_stop(&server, SIGTERM);
}

/* ---- tail and a server that stops answering ----------------------------- */

Test(ctl_input, tail_notices_a_frozen_server, .timeout = 120)
{
    char dir[256], err[600];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service_destroy(start_worker(dir, server.url)); /* makes the stream */
    snprintf(err, sizeof err, "%s/tail.err", dir);
    pid_t tail = ctl_background(dir, "tail", "--nats-url", server.url, "tail", NULL);
    cr_assert(support_wait_file_has(err, "following", 20000), "tail did not start");
    cr_assert_eq(kill(server.pid, SIGSTOP), 0);
    int64_t t0 = support_mono_ms();
    bool noticed = support_wait_file_has(err, "lost the connection to NATS", 12000);
    int64_t took = support_mono_ms() - t0;
    kill(server.pid, SIGCONT);
    cr_assert(noticed, "tail did not notice the frozen server in 12 s");
    cr_assert(support_wait_file_has(err, "connected to NATS at", 30000), "tail did not reconnect");
    cr_assert_eq(kill(tail, SIGTERM), 0);
    cr_assert_eq(support_reap(tail, 15000), 0);
    cr_log_info("tail noticed the frozen server after %lld ms", (long long)took);
    natsd_stop(&server, SIGTERM);
}

/* ---- help --------------------------------------------------------------- */

Test(ctl_input, help_describes_what_the_commands_print_and_use, .timeout = 60)
{
    char dir[256], line[1024];
    support_tmpdir(dir, sizeof dir);
    struct ctl_run r;
    ctl(&r, dir, "status", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "REDELIVERED"), "status --help: %s", r.out);
    cr_assert(strstr(r.out, "redelivered, delivered"), "status --help: %s", r.out);

    /* The limits of the repeatable flags are in the help of each command. */
    ctl(&r, dir, "tail", "--help", NULL);
    cr_assert_eq(r.status, 0);
    line_with(r.out, "  --type TYPE ", line, sizeof line);
    cr_assert(strstr(line, "repeatable, up to 32 times"), "tail --help: %s", line);
    const char *t = "--type=Ping";
    ctl(&r, dir, "tail", t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t,
        t, t, t, t, t, t, t, t, t, NULL);
    cr_assert_eq(r.status, 2, "33 --type: exit %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "tail: more than 32 --type flags"), "%s", r.err);
    static const char *const dir_cmds[][2] = { { "status", "--help" }, { "saga", "--help" } };
    for (size_t i = 0; i < 2; i++) {
        ctl(&r, dir, dir_cmds[i][0], dir_cmds[i][1], NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "repeatable, up to 16\n") || strstr(r.out, "up to 16 times"),
                  "%s --help: %s", dir_cmds[i][0], r.out);
        cr_assert(strstr(r.out, "up to 64 times"), "%s --help: %s", dir_cmds[i][0], r.out);
    }

    ctl(&r, dir, "--help-settings", NULL);
    cr_assert_eq(r.status, 0);
    line_with(r.out, "  --db ", line, sizeof line);
    cr_assert(strstr(line, "postgresql://"), "%s", line);
    line_with(r.out, "  --connect-wait-ms ", line, sizeof line);
    cr_assert(strstr(line, "5000 for choreoctl") && !strstr(line, "until stopped"), "%s", line);
    line_with(r.out, "  --log-level ", line, sizeof line);
    cr_assert(strstr(line, "[warn for choreoctl]"), "%s", line);
    line_with(r.out, "  --nats-ping-interval-ms ", line, sizeof line);
    cr_assert(strstr(line, "[2000 for choreoctl]"), "%s", line);
}
