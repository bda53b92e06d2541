/* choreoctl against a service whose database is PostgreSQL (run under
 * tests/pg/with-postgres, which provides CHOREO_TEST_PG). The service
 * "worker" parks the Fragile events its handler rejects, holds Charge
 * events for a person's decision, and orchestrates the one-step saga
 * "flow" whose step it also carries out. The real choreoctl binary (its
 * path in CHOREOCTL, set by meson), given the database's URL with a
 * password in it, must then list, show, drop and retry the parked
 * messages, report the status (text and JSON), the consumers, the sagas,
 * a saga's timeline and the holds, decide a hold, and never print the
 * password; a server that does not answer, and a database that is not a
 * service's, are refused by name and left as they are. Two writers of one
 * row meet: a decision and the end of its hold's saga, and a saga's
 * transition and another transaction on its instance (as a second instance
 * of the service would run), two holds of one step outside a handler, and
 * two services starting at once on one database; the second waits for the
 * first and reads what it wrote. */
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "support.h"
#include "support_pg.h"

#define PASSWORD "pg-s3cret"

/* ---- PostgreSQL ------------------------------------------------------------ */

/* The URL of database name on the test server, with a password (the server
 * trusts local connections, so it is never checked) and as choreoctl must
 * show it. */
struct pgdb {
    char url[512];
    char shown[512];
};

static bool pg_wait_count(const char *url, const char *sql, long long want, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        if (support_pg_count(url, sql) == want)
            return true;
        if (waited >= timeout_ms)
            return false;
        support_sleep_ms(20);
    }
}

/* Creates database name on the test server. */
static void create_db(const char *name, struct pgdb *db)
{
    const char *admin = getenv("CHOREO_TEST_PG");
    cr_assert_not_null(admin, "CHOREO_TEST_PG is not set: run under tests/pg/with-postgres");
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    support_pg_exec(admin, sql);
    /* postgresql://postgres@HOST:PORT/postgres */
    const char *at = strchr(admin, '@'), *slash = strrchr(admin, '/');
    cr_assert(at && slash && at < slash, "unexpected CHOREO_TEST_PG %s", admin);
    snprintf(db->url, sizeof db->url, "%.*s:" PASSWORD "%.*s/%s", (int)(at - admin), admin,
             (int)(slash - at), at, name);
    snprintf(db->shown, sizeof db->shown, "postgresql://%.*s/%s", (int)(slash - at - 1), at + 1,
             name);
}

/* ---- the service ----------------------------------------------------------- */

/* While set, Fragile events are rejected, so parked. */
static atomic_bool broken;

static choreo_result on_fragile(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    if (!atomic_load(&broken))
        return CHOREO_DONE;
    char reason[64];
    snprintf(reason, sizeof reason, "no stock for item %lld", (long long)support_data_n(ev));
    choreo_tx_set_reason(tx, reason);
    return CHOREO_REJECT;
}

static choreo_result on_charge(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return choreo_tx_hold(tx, NULL, "payment-review", "amount above the review limit", 0,
                          NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

static choreo_result on_decided(choreo_tx *tx, const choreo_hold_decision *d, void *user)
{
    (void)user;
    return choreo_tx_emit(tx, d->approved ? "Charged" : "ChargeRejected", 1, d->saga, NULL, 0,
                          NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* While set, the step of "flow" waits (up to 10 s) before it runs. */
static atomic_bool gate;
static atomic_int do_a_runs;

/* The step of "flow", behind the saga barrier. */
static choreo_result on_do_a(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    atomic_fetch_add(&do_a_runs, 1);
    for (int i = 0; i < 1000 && atomic_load(&gate); i++)
        support_sleep_ms(10);
    bool run = false;
    if (choreo_tx_barrier(tx, NULL, "a", CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    return choreo_tx_emit(tx, "ADone", 1, NULL, NULL, 0, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

struct world {
    char dir[256];
    natsd server;
    struct pgdb db;
    choreo_service *svc;
    const char *setting; /* one more for the worker, or NULL */
};

static void worker(struct world *w)
{
    char dbset[600];
    snprintf(dbset, sizeof dbset, "db=%s", w->db.url);
    choreo_config *cfg = support_config(w->dir, "worker", w->server.url, dbset, w->setting, NULL);
    w->svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(w->svc, "Fragile", on_fragile, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(w->svc, "Charge", on_charge, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(w->svc, "DoA", on_do_a, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_decision(w->svc, "payment-review", on_decided, NULL),
                 CHOREO_OK, "%s", choreo_last_error());
    choreo_saga_def *flow;
    cr_assert_eq(choreo_service_saga(w->svc, "flow", "STARTED", NULL, NULL, &flow), CHOREO_OK,
                 "%s", choreo_last_error());
    choreo_saga_step_spec a = { .name = "a", .command = "DoA", .success = "ADone" };
    cr_assert_eq(choreo_saga_step(flow, &a), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w->svc), CHOREO_OK, "%s", choreo_last_error());
}

/* Starts saga in a transaction that first tries a start with data that is
 * not a map, and after its own start one with the same id: on PostgreSQL a
 * failed statement aborts the transaction, and the failed starts must leave
 * it usable and hold nothing of theirs. */
static void start_flow(choreo_service *svc, const char *saga)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", saga, "\x01", 1), CHOREO_EINVAL);
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", saga, NULL, 0), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", saga, NULL, 0), CHOREO_EDUPLICATE);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

/* The worker on database name, with two parked Fragile events (items 7
 * and 8, saga s1), a held Charge (saga pay1), and a completed instance of
 * "flow" (saga flow1); its outbox drained. */
static void up(struct world *w, const char *name)
{
    memset(w, 0, sizeof *w);
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    create_db(name, &w->db);
    atomic_store(&broken, true);
    worker(w);
    /* choreo_tx_prepare is SQLite's: on PostgreSQL it says where to prepare. */
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w->svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    sqlite3_stmt *stmt = (sqlite3_stmt *)&stmt;
    cr_assert_eq(choreo_tx_prepare(tx, "SELECT 1", &stmt), CHOREO_EINVAL);
    cr_assert_null(stmt);
    cr_assert(strstr(choreo_last_error(), "PQprepare"), "%s", choreo_last_error());
    choreo_tx_rollback(tx);
    const char *url = w->db.url;
    support_emit(w->svc, "Fragile", "s1", 7, NULL);
    cr_assert(pg_wait_count(url, "SELECT COUNT(*) FROM choreo_dead", 1, 20000), "not parked");
    support_emit(w->svc, "Fragile", "s1", 8, NULL);
    cr_assert(pg_wait_count(url, "SELECT COUNT(*) FROM choreo_dead", 2, 20000), "not parked");
    support_emit(w->svc, "Charge", "pay1", 500, NULL);
    cr_assert(pg_wait_count(url, "SELECT COUNT(*) FROM choreo_holds", 1, 20000), "not held");
    start_flow(w->svc, "flow1");
    cr_assert(pg_wait_count(url, "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga = "
                            "'flow1' AND phase = 'COMPLETED'", 1, 20000), "flow1 never ended");
    cr_assert(pg_wait_count(url, "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL",
                            0, 20000), "the outbox was not drained");
}

static void down(struct world *w)
{
    choreo_service_destroy(w->svc);
    natsd_stop(&w->server, SIGTERM);
}

/* ---- running choreoctl and python3 ----------------------------------------- */

struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

/* Runs argv[0] (found on PATH) without the test's CHOREO_* variables, its
 * stdout and stderr kept in r. */
static void run(const char *dir, const char *tag, char *const argv[], struct ctl_run *r)
{
    static char *envp[256];
    support_env_without_choreo(envp, 256);
    r->status = support_run(dir, tag, argv, envp);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.out", dir, tag);
    support_slurp(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/%s.err", dir, tag);
    support_slurp(path, r->err, sizeof r->err);
}

/* choreoctl with the arguments that follow, NULL-ended. Whatever it did,
 * it must not have printed the URL's password. */
static void ctl(struct ctl_run *r, const char *dir, ...)
{
    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char *argv[32] = { (char *)bin };
    int argc = 1;
    va_list ap;
    va_start(ap, dir);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        cr_assert_lt(argc, 31);
        argv[argc++] = a;
    }
    va_end(ap);
    run(dir, "ctl", argv, r);
    cr_assert_neq(r->status, -1, "choreoctl died or hung; stderr: %s", r->err);
    cr_assert(!strstr(r->out, PASSWORD) && !strstr(r->err, PASSWORD),
              "choreoctl printed the password:\n%s\n%s", r->out, r->err);
}

/* ---- the checks ------------------------------------------------------------ */

/* dead list --json: the two parked Fragile events. */
static const char dead_check[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "assert [e['id'] for e in d] == [1, 2], d\n"
    "for e, n in zip(d, (7, 8)):\n"
    "    assert e['consumer'] == 'worker_Fragile' and e['event_type'] == 'Fragile', e\n"
    "    assert e['status'] == 'parked' and e['attempts'] == 1, e\n"
    "    assert e['reason'] == 'handler returned REJECT: no stock for item %d' % n, e\n"
    "    assert len(e['event_id']) == 26 and e['body_len'] > 0, e\n";

/* status --json: argv[2] the database as shown. */
static const char status_check[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "assert len(d['services']) == 1, d\n"
    "w = d['services'][0]\n"
    "assert w['service'] == 'worker' and w['db'] == sys.argv[2], w\n"
    "assert w['running'] is None and w['pid'] is None and w['started_at'] is None, w\n"
    "o = w['outbox']\n"
    "assert o['pending'] == 0 and o['delayed'] == 0 and o['oldest_pending_age_ms'] is None, o\n"
    "assert o['last_published_at'].endswith('Z'), o\n"
    "assert w['relay'] == {'state': 'idle', 'detail': 'nothing to publish'}, w['relay']\n"
    "c = {x['name']: x for x in w['consumers']}\n"
    "for name in ('worker_Fragile', 'worker_Charge', 'worker_DoA', 'worker_ADone'):\n"
    "    assert c[name]['state'] == 'registered' and c[name]['on_server'], c\n"
    "    assert c[name]['pending'] == 0 and c[name]['ack_pending'] == 0, c[name]\n"
    "assert w['parked'] == {'total': 2, 'truncated': False, 'by_consumer': ["
    "{'consumer': 'worker_Fragile', 'type': 'Fragile', 'count': 2}]}, w['parked']\n"
    "e = w['last_error']\n"
    "assert e['id'] == 2 and e['reason'] == 'handler returned REJECT: no stock for item 8', e\n"
    "assert w['holds'] == {'total': 1, 'past_expiry': 0, 'truncated': False, 'by_kind': ["
    "{'kind': 'payment-review', 'count': 1}]}, w['holds']\n"
    "assert w['errors'] == [], w['errors']\n";

/* The line of text that holds needle, copied into line. */
static bool line_with(const char *text, const char *needle, char *line, size_t cap)
{
    const char *p = strstr(text, needle);
    if (!p)
        return false;
    const char *start = p;
    while (start > text && start[-1] != '\n')
        start--;
    const char *end = strchr(p, '\n');
    snprintf(line, cap, "%.*s", (int)(end ? (size_t)(end - start) : strlen(start)), start);
    return true;
}

static void check_status_text(const struct world *w, struct ctl_run *r)
{
    char want[700], line[1024];
    ctl(r, w->dir, "--nats-url", w->server.url, "--db", w->db.url, "status", NULL);
    cr_assert_eq(r->status, 0, "status: exit %d: %s", r->status, r->err);
    snprintf(want, sizeof want, "service     worker\ndatabase    %s\nprocess     instances share "
             "this database (PostgreSQL), which has no lock file; see each instance's "
             "metrics\noutbox      0 pending (due now); 0 delayed\n", w->db.shown);
    cr_assert(strstr(r->out, want), "want:\n%s\ngot:\n%s", want, r->out);
    cr_assert(strstr(r->out, "\nrelay       idle: nothing to publish\n"), "%s", r->out);
    cr_assert(strstr(r->out, "\nparked      2 messages\n"), "%s", r->out);
    cr_assert(strstr(r->out, "dead id 2, worker_Fragile (Fragile): handler returned REJECT: "
                     "no stock for item 8\n"), "%s", r->out);
    cr_assert(strstr(r->out, "\nheld        1 step waits for a decision: payment-review 1 "
                     "(choreoctl review list)\n"), "%s", r->out);
    cr_assert(line_with(r->out, " worker_Fragile ", line, sizeof line), "%s", r->out);
    cr_assert(strstr(line, "registered"), "%s", line);
}

Test(ctl_pg, dead_status_consumers_and_sagas_read_a_shared_database, .timeout = 180)
{
    struct world w;
    up(&w, "ctl_main");
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192], want[700];

    ctl(r, w.dir, "--db", w.db.url, "dead", "list", "--json", NULL);
    cr_assert_eq(r->status, 0, "dead list: exit %d: %s", r->status, r->err);
    cr_assert(support_json_holds(w.dir, r->out, err, sizeof err, dead_check, NULL), "%s\n%s", err,
              r->out);
    ctl(r, w.dir, "--db", w.db.url, "dead", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "worker_Fragile") && strstr(r->out, "no stock for item 7"), "%s",
              r->out);
    ctl(r, w.dir, "--db", w.db.url, "dead", "show", "1", NULL);
    cr_assert_eq(r->status, 0, "dead show: exit %d: %s", r->status, r->err);
    cr_assert(strstr(r->out, "no stock for item 7") && strstr(r->out, "Fragile"), "%s", r->out);

    check_status_text(&w, r);
    /* The server's view of the last acks trails the handlers by a moment. */
    bool held = false;
    for (int i = 0; i < 40 && !held; i++) {
        if (i > 0)
            support_sleep_ms(250);
        ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "status", "--json", NULL);
        cr_assert_eq(r->status, 0, "status --json: exit %d: %s", r->status, r->err);
        held = support_json_holds(w.dir, r->out, err, sizeof err, status_check, w.db.shown, NULL);
    }
    cr_assert(held, "%s\n%s", err, r->out);

    ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "consumers", "list", NULL);
    cr_assert_eq(r->status, 0, "consumers list: exit %d: %s", r->status, r->err);
    cr_assert(strstr(r->out, "worker_Fragile") && strstr(r->out, "worker_DoA") &&
              strstr(r->out, "registered") && !strstr(r->out, "stale"), "%s", r->out);

    ctl(r, w.dir, "--db", w.db.url, "sagas", NULL);
    cr_assert_eq(r->status, 0, "sagas: exit %d: %s", r->status, r->err);
    cr_assert(strstr(r->out, "flow1") && strstr(r->out, "COMPLETED"), "%s", r->out);
    ctl(r, w.dir, "--db", w.db.url, "sagas", "--state", "FAILED", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "no orchestrated sagas in %s with state or phase FAILED\n",
             w.db.shown);
    cr_assert_str_eq(r->out, want);

    /* Item 8 is dropped; item 7, with the handler mended, retried and
     * applied this time. */
    ctl(r, w.dir, "--db", w.db.url, "dead", "drop", "2", NULL);
    cr_assert_eq(r->status, 0, "dead drop: exit %d: %s", r->status, r->err);
    atomic_store(&broken, false);
    ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "dead", "retry", "1", NULL);
    cr_assert_eq(r->status, 0, "dead retry: exit %d: %s", r->status, r->err);
    cr_assert(pg_wait_count(w.db.url, "SELECT COUNT(*) FROM choreo_inbox i JOIN choreo_dead d"
                            " ON d.event_id = i.event_id WHERE d.id = 1 AND i.consumer ="
                            " 'worker_Fragile'", 1, 20000), "the retried event was not applied");
    cr_assert_eq(support_pg_count(w.db.url, "SELECT COUNT(*) FROM choreo_dead"), 2);
    ctl(r, w.dir, "--db", w.db.url, "dead", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "No parked messages in %s.\n", w.db.shown);
    cr_assert_str_eq(r->out, want);
    ctl(r, w.dir, "--db", w.db.url, "dead", "list", "--status", "all", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "\"status\": \"retried\"") &&
              strstr(r->out, "\"status\": \"dropped\""), "%s", r->out);
    free(r);
    down(&w);
}

Test(ctl_pg, saga_and_review_read_a_shared_database, .timeout = 180)
{
    struct world w;
    up(&w, "ctl_saga");
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char want[700];

    /* The parked events, and the instance with its barrier mark. */
    ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "saga", "s1", NULL);
    cr_assert_eq(r->status, 0, "saga s1: exit %d: %s", r->status, r->err);
    snprintf(want, sizeof want, "databases: worker (%s)\n", w.db.shown);
    cr_assert(strstr(r->out, want), "%s", r->out);
    cr_assert(strstr(r->out, "PARKED by worker_Fragile") &&
              strstr(r->out, "no stock for item 7") && strstr(r->out, "no stock for item 8"),
              "%s", r->out);
    ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "saga", "flow1", NULL);
    cr_assert_eq(r->status, 0, "saga flow1: exit %d: %s", r->status, r->err);
    snprintf(want, sizeof want, "orchestrated by worker (definition flow, %s): state ",
             w.db.shown);
    cr_assert(strstr(r->out, want) && strstr(r->out, ", phase COMPLETED"), "want %s in:\n%s",
              want, r->out);
    cr_assert(strstr(r->out, "worker_DoA") && strstr(r->out, "[barrier a action]"), "%s",
              r->out);
    ctl(r, w.dir, "--nats-url", w.server.url, "--db", w.db.url, "saga", "flow1", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "\"db\": \"%s\"", w.db.shown);
    cr_assert(strstr(r->out, want) && strstr(r->out, "\"phase\": \"COMPLETED\""), "%s", r->out);

    ctl(r, w.dir, "--db", w.db.url, "review", "list", NULL);
    cr_assert_eq(r->status, 0, "review list: exit %d: %s", r->status, r->err);
    cr_assert(strstr(r->out, "payment-review") && strstr(r->out, "pay1"), "%s", r->out);
    ctl(r, w.dir, "--db", w.db.url, "review", "approve", "1", "--by", "tester", NULL);
    cr_assert_eq(r->status, 0, "review approve: exit %d: %s", r->status, r->err);
    cr_assert_str_eq(r->out, "hold 1 approved by tester; an instance of the worker service "
                     "carries the step on when its relay publishes the decision\n");
    cr_assert(pg_wait_count(w.db.url, "SELECT COUNT(*) FROM choreo_holds WHERE applied = 1",
                            1, 20000), "the decision was not carried on");
    ctl(r, w.dir, "--db", w.db.url, "review", "reject", "1", "--by", "tester", NULL);
    cr_assert_eq(r->status, 1, "%s", r->out);
    ctl(r, w.dir, "--db", w.db.url, "review", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "No steps wait for a decision in %s.\n", w.db.shown);
    cr_assert_str_eq(r->out, want);
    free(r);
    down(&w);
}

Test(ctl_pg, an_unreachable_server_and_a_foreign_database_are_refused_by_name, .timeout = 60)
{
    char dir[256], url[600], want[700];
    support_tmpdir(dir, sizeof dir);
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);

    int port = support_free_port();
    snprintf(url, sizeof url, "postgresql://postgres:" PASSWORD "@127.0.0.1:%d/gone", port);
    snprintf(want, sizeof want, "cannot connect to the PostgreSQL database "
             "postgresql://127.0.0.1:%d/gone: ", port);
    const char *const cmds[][2] = { { "dead", "list" }, { "status", NULL }, { "sagas", NULL },
                                    { "review", "list" }, { "consumers", "list" } };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ctl(r, dir, "--db", url, cmds[i][0], cmds[i][1], NULL);
        cr_assert_eq(r->status, 1, "%s: %s", cmds[i][0], r->err);
        cr_assert(strstr(r->err, want) && !strchr(r->err, '\t'), "%s: %s", cmds[i][0], r->err);
        cr_assert_str_eq(r->out, "");
    }

    /* A URL libpq cannot use is a usage error, with libpq's reason. */
    snprintf(url, sizeof url, "postgresql://postgres:" PASSWORD "@127.0.0.1:%d/x?sslmode=maybe",
             port);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmds[i][0], "status") == 0)
            continue; /* a survey of databases: a bad one among them is a failure */
        ctl(r, dir, "--db", url, cmds[i][0], cmds[i][1], NULL);
        cr_assert_eq(r->status, 2, "%s: %s", cmds[i][0], r->err);
        cr_assert(strstr(r->err, "cannot be used: invalid sslmode value") &&
                      !strstr(r->err, PASSWORD),
                  "%s: %s", cmds[i][0], r->err);
    }

    /* A database of the server that no service uses: refused, and still
     * without choreo's tables afterwards. */
    struct pgdb plain;
    create_db("ctl_plain", &plain);
    snprintf(want, sizeof want, "%s is not a choreo service's database", plain.shown);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ctl(r, dir, "--db", plain.url, cmds[i][0], cmds[i][1], NULL);
        cr_assert_eq(r->status, 1, "%s: %s", cmds[i][0], r->err);
        cr_assert(strstr(r->err, want), "%s: %s", cmds[i][0], r->err);
    }
    cr_assert_eq(support_pg_count(plain.url, "SELECT COUNT(*) FROM pg_tables WHERE tablename LIKE "
                          "'choreo%'"), 0);
    free(r);
}

/* ---- two writers of one row ------------------------------------------------ */

/* A server and database name for the worker, not started yet. */
static void empty(struct world *w, const char *name, const char *setting)
{
    memset(w, 0, sizeof *w);
    w->setting = setting;
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    create_db(name, &w->db);
}

/* The worker alone on database name. */
static void bare(struct world *w, const char *name, const char *setting)
{
    empty(w, name, setting);
    atomic_store(&broken, false);
    worker(w);
}

/* Runs sql on c, asserting success. */
static void must(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* A connection of the test's own, in a transaction that took the advisory
 * lock `key` (unless 0), as choreo's own transactions take it, then ran
 * sql. */
static PGconn *writer(const char *url, int64_t key, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    must(c, "BEGIN");
    if (key) {
        char lock[80];
        snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%lld)", (long long)key);
        must(c, lock);
    }
    must(c, sql);
    return c;
}

static void commit(PGconn *c)
{
    must(c, "COMMIT");
    PQfinish(c);
}

struct decide_job {
    choreo_admin *adm;
    int64_t id;
    choreo_status status;
    char err[512];
    atomic_bool done;
};

static void *decide(void *arg)
{
    struct decide_job *j = arg;
    j->status = choreo_admin_hold_decide(j->adm, j->id, true, NULL, "grace", NULL);
    snprintf(j->err, sizeof j->err, "%s", j->status == CHOREO_OK ? "" : choreo_last_error());
    atomic_store(&j->done, true);
    return NULL;
}

/* The service ends the hold's saga in a transaction still open when a
 * person decides: the decision waits for it, finds the hold ended, is
 * refused with why, and no decision event goes out. */
Test(ctl_pg, a_decision_that_meets_the_end_of_its_saga_waits_and_is_refused, .timeout = 120)
{
    struct world w;
    bare(&w, "ctl_hold_race", NULL);
    support_emit(w.svc, "Charge", "pay2", 500, NULL);
    cr_assert(pg_wait_count(w.db.url, "SELECT COUNT(*) FROM choreo_holds", 1, 20000), "not held");
    char dbset[600];
    snprintf(dbset, sizeof dbset, "db=%s", w.db.url);
    choreo_config *cfg = support_config(w.dir, "worker", w.server.url, dbset, NULL);
    struct decide_job j = { .id = support_pg_count(w.db.url, "SELECT id FROM choreo_holds") };
    cr_assert_eq(choreo_admin_open(&j.adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
    PGconn *c = writer(w.db.url, 0, "UPDATE choreo_holds SET state = 'expired', decided_at = 1,"
                                 " note = 'the saga ended' WHERE state = 'held'");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, decide, &j), 0);
    support_sleep_ms(500);
    cr_assert(!atomic_load(&j.done), "the decision did not wait for the transaction on its hold "
              "(%s)", j.err);
    commit(c);
    pthread_join(t, NULL);
    cr_assert_eq(j.status, CHOREO_ESTATE, "%s", j.err);
    cr_assert(strstr(j.err, "can no longer be decided") && strstr(j.err, "the saga ended"), "%s",
              j.err);
    choreo_admin_close(j.adm);
    cr_assert_eq(support_pg_count(w.db.url, "SELECT COUNT(*) FROM choreo_outbox WHERE subject"
                                            " LIKE '%.ChoreoHoldDecided.%'"), 0);
    down(&w);
}

/* A reply comes while another transaction holds the saga's instance (as
 * another instance of the service applying another reply would): its
 * transition waits for that commit and keeps what it wrote. */
Test(ctl_pg, a_saga_transition_waits_for_another_writer_of_its_instance, .timeout = 120)
{
    struct world w;
    atomic_store(&gate, true);
    atomic_store(&do_a_runs, 0);
    bare(&w, "ctl_saga_race", "lock_timeout_ms=5000");
    start_flow(w.svc, "flow2");
    for (int i = 0; i < 1000 && atomic_load(&do_a_runs) == 0; i++)
        support_sleep_ms(10);
    cr_assert(atomic_load(&do_a_runs) > 0, "the step of flow2 never ran");
    PGconn *c = writer(w.db.url, 0, "UPDATE choreo_saga_instances SET started_at = 12345"
                                 " WHERE saga = 'flow2'");
    atomic_store(&gate, false);
    support_sleep_ms(500); /* ADone comes and waits for this transaction */
    commit(c);
    cr_assert(pg_wait_count(w.db.url, "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga ="
                            " 'flow2' AND phase = 'COMPLETED'", 1, 20000), "flow2 never ended");
    cr_assert_eq(support_pg_count(w.db.url, "SELECT started_at FROM choreo_saga_instances WHERE"
                                            " saga = 'flow2'"), 12345,
                 "the transition wrote over what another transaction committed meanwhile");
    down(&w);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Commits the connection half a second from now. */
static void *commit_later(void *arg)
{
    PGconn *c = *(PGconn **)arg;
    support_sleep_ms(500);
    PGresult *r = PQexec(c, "COMMIT");
    PQclear(r);
    PQfinish(c);
    return NULL;
}

struct start_job {
    choreo_service *svc;
    choreo_status status;
    char err[1024];
    atomic_bool done;
};

static void *start(void *arg)
{
    struct start_job *j = arg;
    j->status = choreo_service_start(j->svc);
    snprintf(j->err, sizeof j->err, "%s", j->status == CHOREO_OK ? "" : choreo_last_error());
    atomic_store(&j->done, true);
    return NULL;
}

/* Another service's start records its handlers (under the lock every
 * start takes) while the worker starts on the same database: the worker
 * waits for it, then sees the database is the other's and is refused. */
Test(ctl_pg, a_service_starting_while_another_records_itself_waits_and_is_refused,
     .timeout = 120)
{
    struct world w;
    empty(&w, "ctl_start_race", NULL);
    char dbset[600];
    snprintf(dbset, sizeof dbset, "db=%s", w.db.url);
    choreo_config *cfg = support_config(w.dir, "worker", w.server.url, dbset, NULL);
    struct start_job j = { .svc = support_service(cfg) };
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(j.svc, "Fragile", on_fragile, NULL), CHOREO_OK);
    /* The tables exist once a service opened the database. */
    cr_assert(pg_wait_count(w.db.url, "SELECT COUNT(*) FROM pg_tables WHERE tablename ="
                            " 'choreo_consumers'", 1, 10000), "no choreo_consumers table");
    PGconn *c = writer(w.db.url, CHOREO_PG_LOCK_CONSUMERS,
                       "INSERT INTO choreo_consumers(consumer, service, type, subjects, stream,"
                       " registered_at) VALUES ('billing_Invoice', 'billing', 'Invoice',"
                       " 'choreo.Invoice.*', 'CHOREO', 1)");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, start, &j), 0);
    support_sleep_ms(1500);
    cr_assert(!atomic_load(&j.done), "the start did not wait for the other one's record (%s)",
              j.err);
    commit(c);
    pthread_join(t, NULL);
    cr_assert_eq(j.status, CHOREO_ECONFIG, "%s", j.err);
    cr_assert(strstr(j.err, "belongs to service billing"), "%s", j.err);
    cr_assert_eq(support_pg_count(w.db.url, "SELECT COUNT(*) FROM choreo_consumers WHERE"
                                            " service = 'worker'"), 0);
    choreo_service_destroy(j.svc);
    natsd_stop(&w.server, SIGTERM);
}

/* Outside a handler, a hold of a step that another transaction is holding
 * (under the lock such holds take) waits for it and is refused as a second
 * hold of the step. */
Test(ctl_pg, a_second_hold_of_a_step_outside_a_handler_waits_and_is_refused, .timeout = 120)
{
    struct world w;
    bare(&w, "ctl_hold_twice", "lock_timeout_ms=5000");
    PGconn *c = writer(w.db.url, CHOREO_PG_LOCK_HOLDS,
                       "INSERT INTO choreo_holds(saga, kind, reason, service, subject, event_id,"
                       " event_type, held_at, expires_at, state) VALUES ('pay3',"
                       " 'payment-review', 'first', 'worker', 'choreo.ChoreoHoldDecided.pay3',"
                       " '', '', 1, 0, 'held')");
    int64_t t0 = now_ms();
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w.svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, commit_later, &c), 0);
    choreo_status st = choreo_tx_hold(tx, "pay3", "payment-review", "second", 0, NULL);
    char err[512];
    snprintf(err, sizeof err, "%s", choreo_last_error());
    choreo_tx_rollback(tx);
    pthread_join(t, NULL);
    cr_assert_eq(st, CHOREO_EDUPLICATE, "%s", err);
    cr_assert_geq(now_ms() - t0, 400, "the hold did not wait for the other one");
    cr_assert_eq(support_pg_count(w.db.url, "SELECT COUNT(*) FROM choreo_holds WHERE saga ="
                                            " 'pay3'"), 1);
    down(&w);
}
