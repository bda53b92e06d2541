/* choreoctl status against a real nats-server and a real service. The
 * service "worker" parks what its handlers reject; stopped, it is left
 * with events waiting on the stream for one of its consumers, and with
 * outbox rows committed while it was not started, one of them delayed. The
 * real choreoctl binary (its path in CHOREOCTL, set by meson) must then
 * report exactly those numbers, as text and JSON, while the service is
 * stopped, while it runs, and with NATS gone. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* ---- the services ------------------------------------------------------- */

/* While set, Fragile events are rejected, so parked. */
static atomic_bool broken;

static choreo_result fragile(choreo_tx *tx, const choreo_event *ev, void *user)
{
    if (!atomic_load(&broken))
        return CHOREO_DONE;
    char reason[64];
    snprintf(reason, sizeof reason, "no stock for item %lld", (long long)support_data_n(ev));
    choreo_tx_set_reason(tx, reason);
    return CHOREO_REJECT;
}

static choreo_result brittle(choreo_tx *tx, const choreo_event *ev, void *user)
{
    choreo_tx_set_reason(tx, "too brittle");
    return CHOREO_REJECT;
}

/* The worker, with the handlers for Fragile (always) and Brittle (when
 * with_brittle), started when start is set. */
static choreo_service *worker(const char *dir, const char *url, bool with_brittle, bool start)
{
    choreo_config *cfg = support_config(dir, "worker", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Fragile", fragile, NULL), CHOREO_OK);
    if (with_brittle)
        cr_assert_eq(choreo_service_on(svc, "Brittle", brittle, NULL), CHOREO_OK);
    if (start)
        cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

static void emit_parked(choreo_service *svc, const char *dir, const char *type, int64_t n,
                        long long parked)
{
    char id[CHOREO_ID_SIZE];
    support_emit(svc, type, "s1", n, id);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead", parked,
                                 20000), "the %s event %lld was not parked", type, (long long)n);
}

/* An event published an hour from now. */
static void emit_delayed(choreo_service *svc)
{
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_emit_after(tx, 3600 * 1000, "Reminder", 1, "s1", NULL, 0, NULL),
                 CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

/* Two Fragile events on the stream from another service, for the worker's
 * consumer to find waiting. */
static void feed(const char *dir, const char *url)
{
    choreo_config *cfg = support_config(dir, "feeder", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    char id[CHOREO_ID_SIZE];
    support_emit(svc, "Fragile", "s2", 4, id);
    support_emit(svc, "Fragile", "s2", 5, id);
    cr_assert(support_wait_count(dir, "feeder", "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                 "published_at IS NOT NULL", 2, 20000));
    choreo_service_destroy(svc);
}

/* ---- running choreoctl -------------------------------------------------- */

struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

/* Runs argv[0] (found on PATH) without the test's CHOREO_* variables, its
 * stdout and stderr kept in r; its exit status, or -1 when it ended by a
 * signal or ran for more than a minute. */
static int run(const char *dir, const char *tag, char *const argv[], struct ctl_run *r)
{
    static char *envp[256];
    support_env_without_choreo(envp, 256);
    int status = support_run(dir, tag, argv, envp);
    if (r) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s.out", dir, tag);
        support_slurp(path, r->out, sizeof r->out);
        snprintf(path, sizeof path, "%s/%s.err", dir, tag);
        support_slurp(path, r->err, sizeof r->err);
        r->status = status;
    }
    return status;
}

/* choreoctl with the arguments that follow, NULL-ended. */
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
}

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

/* The numbers of a consumer's row in the text: PENDING, ACK PENDING,
 * REDELIVERED, DELIVERED, and its STATE and READ NOW. */
struct row {
    char state[32], read[8];
    unsigned long long pending, ack_pending, redelivered, delivered;
};

static void consumer_row(const char *text, const char *name, struct row *w)
{
    char line[1024], first[64], type[64];
    char needle[80];
    snprintf(needle, sizeof needle, " %s ", name);
    cr_assert(line_with(text, needle, line, sizeof line), "no row of %s: %s", name, text);
    /* The first row follows the label "consumers". */
    const char *p = strstr(line, name);
    cr_assert_eq(sscanf(p, "%63s %63s %31s %llu %llu %llu %llu %7s", first, type, w->state,
                        &w->pending, &w->ack_pending, &w->redelivered, &w->delivered, w->read), 8,
                 "not a consumer row: %s", line);
}

/* ---- the checks --------------------------------------------------------- */

/* The worker, stopped: argv[2] its database, argv[3] the parked_at of its
 * last parked message, argv[4] the time it last published. */
static const char stopped_check[] =
    "import datetime, json, sys\n"
    "def iso(ms):\n"
    "    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)\n"
    "    return t.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)\n"
    "d = json.load(open(sys.argv[1]))\n"
    "assert list(d) == ['services'], list(d)\n"
    "assert len(d['services']) == 1, d\n"
    "w = d['services'][0]\n"
    "assert w['service'] == 'worker' and w['db'] == sys.argv[2], w\n"
    "assert w['running'] is False and w['pid'] is None and w['started_at'] is None, w\n"
    "o = w['outbox']\n"
    "assert o['pending'] == 2 and o['delayed'] == 1, o\n"
    "assert type(o['oldest_pending_age_ms']) is int and 0 <= o['oldest_pending_age_ms'] < 120000, o\n"
    "assert o['next_delayed_at'].endswith('Z'), o\n"
    "assert o['last_published_at'] == iso(int(sys.argv[4])), o\n"
    "assert w['relay'] == {'state': 'stopped', 'detail': 'the service is not running; 3 rows"
    " wait for its next start'}, w['relay']\n"
    "c = {x['name']: x for x in w['consumers']}\n"
    "assert sorted(c) == ['worker_Brittle', 'worker_Fragile'], c\n"
    "f, b = c['worker_Fragile'], c['worker_Brittle']\n"
    "assert f['type'] == 'Fragile' and f['state'] == 'registered' and f['on_server'], f\n"
    "assert f['pending'] == 2 and f['ack_pending'] == 0 and f['redelivered'] == 0 and f['delivered'] >= 2, f\n"
    "assert b['state'] == 'registered' and b['pending'] == 0 and b['ack_pending'] == 0, b\n"
    "assert b['delivered'] >= 1, b\n"
    "p = w['parked']\n"
    "assert p == {'total': 3, 'truncated': False, 'by_consumer': ["
    "{'consumer': 'worker_Brittle', 'type': 'Brittle', 'count': 1},"
    " {'consumer': 'worker_Fragile', 'type': 'Fragile', 'count': 2}]}, p\n"
    "e = w['last_error']\n"
    "assert e['id'] == 3 and e['consumer'] == 'worker_Fragile' and e['type'] == 'Fragile', e\n"
    "assert e['reason'] == 'handler returned REJECT: no stock for item 3', e\n"
    "assert e['parked_at_ms'] == int(sys.argv[3]) and e['parked_at'] == iso(e['parked_at_ms']), e\n"
    "assert len(e['event_id']) == 26 and e['attempts'] == 1, e\n"
    "assert w['errors'] == [], w['errors']\n";

/* The worker, running as pid argv[2], with the Brittle handler gone. */
static const char running_check[] =
    "import json, sys\n"
    "w = json.load(open(sys.argv[1]))['services'][0]\n"
    "assert w['running'] is True and w['pid'] == int(sys.argv[2]), w\n"
    "assert w['started_at'].endswith('Z'), w\n"
    "o = w['outbox']\n"
    "assert o['pending'] == 0 and o['delayed'] == 1 and o['oldest_pending_age_ms'] is None, o\n"
    "assert o['last_published_at'].endswith('Z'), o\n"
    "assert w['relay']['state'] == 'idle', w['relay']\n"
    "assert w['relay']['detail'].startswith('nothing due; the next of 1 delayed row falls due"
    " at '), w['relay']\n"
    "c = {x['name']: x for x in w['consumers']}\n"
    "f, b = c['worker_Fragile'], c['worker_Brittle']\n"
    "assert f['state'] == 'registered' and f['pending'] == 0 and f['ack_pending'] == 0, f\n"
    "assert f['pull_requests_waiting'] > 0, f\n"
    "assert b['state'] == 'stale' and b['registered'] is False and b['on_server'], b\n"
    "assert w['parked']['total'] == 3 and w['last_error']['id'] == 3, w\n"
    "assert w['errors'] == [], w['errors']\n";

/* Both databases of the directory, in name order. */
static const char dir_check[] =
    "import json, sys\n"
    "s = json.load(open(sys.argv[1]))['services']\n"
    "assert [x['service'] for x in s] == ['feeder', 'worker'], s\n"
    "f = s[0]\n"
    "assert f['running'] is False and f['consumers'] == [] and f['parked']['total'] == 0, f\n"
    "assert f['outbox']['pending'] == 0 and f['outbox']['last_published_at'].endswith('Z'), f\n"
    "assert f['relay'] == {'state': 'idle', 'detail': 'nothing to publish'}, f\n"
    "assert f['last_error'] is None and f['errors'] == [], f\n"
    "assert s[1]['running'] is True and s[1]['parked']['total'] == 3, s[1]\n";

/* NATS is gone: the database parts are there, the consumers are not. */
static const char no_nats_check[] =
    "import json, sys\n"
    "w = json.load(open(sys.argv[1]))['services'][0]\n"
    "assert w['consumers'] is None, w\n"
    "assert len(w['errors']) == 1 and 'NATS' in w['errors'][0], w['errors']\n"
    "assert w['outbox']['pending'] == 1 and w['outbox']['delayed'] == 1, w['outbox']\n"
    "assert w['relay']['state'] == 'behind', w['relay']\n"
    "assert w['parked']['total'] == 3 and w['running'] is True, w\n";

/* Runs status --json until check holds (the server's view of acks trails
 * the handler by a moment), up to 10 s. */
static void status_json_until(const char *dir, const char *url, const char *db,
                              const char *check, const char *arg)
{
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192] = "";
    bool held = false;
    for (int i = 0; i < 40 && !held; i++) {
        if (i > 0)
            support_sleep_ms(250);
        ctl(r, dir, "--nats-url", url, "status", "--db", db, "--json", NULL);
        cr_assert_eq(r->status, 0, "status --json: exit %d: %s", r->status, r->err);
        held = support_json_holds(dir, r->out, err, sizeof err, check, arg, NULL);
    }
    cr_assert(held, "the JSON is wrong: %s\n%s", err, r->out);
    free(r);
}

Test(ctl_status, status_reports_the_backlog_consumers_and_parked_messages_of_a_service,
     .timeout = 180)
{
    char dir[256], db[600], err[8192], line[1024], arg[64];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(db, sizeof db, "%s/worker.db", dir);

    /* Three parked messages, the last a Fragile one; then the worker stops. */
    atomic_store(&broken, true);
    choreo_service *svc = worker(dir, server.url, true, true);
    emit_parked(svc, dir, "Fragile", 1, 1);
    emit_parked(svc, dir, "Brittle", 2, 2);
    emit_parked(svc, dir, "Fragile", 3, 3);
    choreo_service_destroy(svc);
    feed(dir, server.url);
    /* Committed while the worker is not started: two due, one delayed. */
    svc = worker(dir, server.url, true, false);
    char id[CHOREO_ID_SIZE];
    support_emit(svc, "Shipped", "s3", 6, id);
    support_emit(svc, "Shipped", "s3", 7, id);
    emit_delayed(svc);
    choreo_service_destroy(svc);

    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    ctl(r, dir, "--nats-url", server.url, "status", "--db", db, "--json", NULL);
    cr_assert_eq(r->status, 0, "status --json: exit %d: %s", r->status, r->err);
    char published[64];
    snprintf(arg, sizeof arg, "%lld",
             support_count(dir, "worker", "SELECT parked_at FROM choreo_dead WHERE id = 3"));
    snprintf(published, sizeof published, "%lld",
             support_count(dir, "worker", "SELECT MAX(published_at) FROM choreo_outbox"));
    cr_assert(support_json_holds(dir, r->out, err, sizeof err, stopped_check, db, arg, published, NULL),
              "the JSON is wrong: %s\n%s", err, r->out);

    ctl(r, dir, "--db", db, "--nats-url", server.url, "status", NULL);
    cr_assert_eq(r->status, 0, "status: exit %d: %s", r->status, r->err);
    cr_assert_str_eq(r->err, "");
    cr_assert(strstr(r->out, "service     worker\n"), "%s", r->out);
    snprintf(line, sizeof line, "database    %s\n", db);
    cr_assert(strstr(r->out, line), "%s", r->out);
    cr_assert(strstr(r->out, "process     stopped\n"), "%s", r->out);
    cr_assert(line_with(r->out, "outbox ", line, sizeof line));
    cr_assert(strncmp(line, "outbox      2 pending (due now), the oldest due ", 48) == 0 &&
                  strstr(line, " ago; 1 delayed, the next due at "), "%s", line);
    cr_assert(strstr(r->out, "            last published 20"), "%s", r->out);
    cr_assert(strstr(r->out, "relay       stopped: the service is not running; 3 rows wait "
                             "for its next start\n"), "%s", r->out);
    struct row f, b;
    consumer_row(r->out, "worker_Fragile", &f);
    consumer_row(r->out, "worker_Brittle", &b);
    cr_assert_str_eq(f.state, "registered");
    cr_assert(f.pending == 2 && f.ack_pending == 0 && f.delivered >= 2, "%s", r->out);
    cr_assert(b.pending == 0 && b.ack_pending == 0 && b.delivered >= 1, "%s", r->out);
    cr_assert(strstr(r->out, "parked      3 messages\n"
                             "            worker_Brittle  Brittle  1\n"
                             "            worker_Fragile  Fragile  2\n"), "%s", r->out);
    cr_assert(line_with(r->out, "last error  ", line, sizeof line));
    cr_assert(strstr(line, "Z, dead id 3, worker_Fragile (Fragile): handler returned REJECT: "
                           "no stock for item 3"), "%s", line);

    /* Running, without the Brittle handler: its consumer is stale; the
     * waiting events are applied and the outbox goes out. */
    atomic_store(&broken, false);
    svc = worker(dir, server.url, false, true);
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                 "published_at IS NULL", 1, 20000), "the rows did not go out");
    cr_assert(support_wait_count(dir, "worker", "SELECT COUNT(*) FROM choreo_inbox WHERE "
                                 "consumer = 'worker_Fragile'", 2, 20000));
    snprintf(arg, sizeof arg, "%ld", (long)getpid());
    status_json_until(dir, server.url, db, running_check, arg);
    ctl(r, dir, "--nats-url", server.url, "status", "--db", db, NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(line, sizeof line, "process     running (pid %ld, started ", (long)getpid());
    cr_assert(strstr(r->out, line), "%s", r->out);
    cr_assert(strstr(r->out, "relay       idle: nothing due; the next of 1 delayed row falls "
                             "due at "), "%s", r->out);
    consumer_row(r->out, "worker_Brittle", &b);
    cr_assert_str_eq(b.state, "stale");
    cr_assert(strstr(r->out, "1 stale: no handler of the service's code as it last started "
                             "reads it"),
              "%s", r->out);

    /* Every database of a directory, and several --db in their order. */
    ctl(r, dir, "--nats-url", server.url, "status", "--dir", dir, "--json", NULL);
    cr_assert_eq(r->status, 0, "status --dir: %s", r->err);
    cr_assert(support_json_holds(dir, r->out, err, sizeof err, dir_check, NULL),
              "the JSON is wrong: %s\n%s", err, r->out);
    char feeder[600];
    snprintf(feeder, sizeof feeder, "%s/feeder.db", dir);
    ctl(r, dir, "--nats-url", server.url, "status", "--db", db, "--db", feeder, NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    const char *w = strstr(r->out, "service     worker\n"),
               *fd = strstr(r->out, "\n\nservice     feeder\n");
    cr_assert(w && fd && w < fd, "%s", r->out);
    cr_assert(strstr(fd, "consumers   none: the service has recorded no handlers\n"), "%s",
              fd);

    /* NATS gone: an event stays in the outbox, and after 5 s the relay is
     * behind; the consumers cannot be listed, which fails the command, but
     * every other part is printed. */
    natsd_stop(&server, SIGTERM);
    support_emit(svc, "Late", "s4", 8, id);
    support_sleep_ms(5500);
    ctl(r, dir, "--nats-url", server.url, "--connect-wait-ms", "300", "status", "--db", db,
        NULL);
    cr_assert_eq(r->status, 1, "NATS is gone, yet exit %d: %s", r->status, r->out);
    cr_assert(strstr(r->err, "choreoctl: status: cannot list the consumers of worker") &&
                  strstr(r->err, "NATS") && strstr(r->err, server.url), "%s", r->err);
    /* Said once, after the library's own warning while it retried. */
    const char *said = strstr(r->err, "choreoctl: ");
    cr_assert(said && !strstr(said + 1, "choreoctl: "), "not said once: %s", r->err);
    cr_assert(line_with(r->out, "consumers   ", line, sizeof line));
    cr_assert(strstr(line, "not listed: ") && strstr(line, "NATS"), "%s", line);
    cr_assert(strstr(r->out, "outbox      1 pending (due now), the oldest due "), "%s", r->out);
    cr_assert(strstr(r->out, "relay       behind: the oldest due row has waited "), "%s",
              r->out);
    cr_assert(strstr(r->out, "parked      3 messages\n"), "%s", r->out);
    cr_assert(strstr(r->out, "last error  "), "%s", r->out);
    ctl(r, dir, "--nats-url", server.url, "--connect-wait-ms", "300", "status", "--db", db,
        "--json", NULL);
    cr_assert_eq(r->status, 1, "%s", r->out);
    cr_assert(support_json_holds(dir, r->out, err, sizeof err, no_nats_check, NULL),
              "the JSON is wrong: %s\n%s", err, r->out);

    choreo_service_destroy(svc);
    ctl(r, dir, "--nats-url", server.url, "--connect-wait-ms", "300", "status", "--db", db,
        NULL);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->out, "relay       stopped: the service is not running; 2 rows wait "
                             "for its next start\n"), "%s", r->out);
    free(r);
}

Test(ctl_status, wrong_usage_exits_2_and_unreadable_paths_exit_1, .timeout = 60)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    char plain[600];
    snprintf(plain, sizeof plain, "%s/notes.db", dir);
    support_write_file(plain, "not a database");
    const struct {
        const char *args[3];
        int status;
        const char *says;
    } cases[] = {
        { { "status" }, 2, "status: no database given" },
        { { "status", "-x" }, 2, "status: unknown flag -x" },
        { { "status", "--bogus" }, 2, "unknown flag --bogus" },
        { { "status", "extra" }, 2, "status: unexpected argument \"extra\"" },
        { { "status", "--dir" }, 2, "--dir" },
        { { "status", "--dir", "/nonexistent" }, 1, "cannot read directory /nonexistent" },
        { { "status", "--db", "/nonexistent.db" }, 1, "cannot open database /nonexistent.db" },
        { { "status", "--db", plain }, 1, "cannot read database" },
    };
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(r, dir, a[0], a[1], a[2], NULL);
        cr_assert_eq(r->status, cases[i].status, "case %zu: exit %d, stderr: %s", i, r->status,
                     r->err);
        cr_assert(strstr(r->err, cases[i].says), "case %zu: %s", i, r->err);
        cr_assert_str_eq(r->out, "", "case %zu printed: %s", i, r->out);
    }
    /* A directory without a service database. */
    ctl(r, dir, "status", "--dir", dir, NULL);
    cr_assert_eq(r->status, 1);
    cr_assert(strstr(r->err, "no choreo service database (*.db) in"), "%s", r->err);
    ctl(r, dir, "status", "--help", NULL);
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "choreoctl status:") && strstr(r->out, "Exit status") &&
                  strstr(r->out, "--dir DIR"), "%s", r->out);
    ctl(r, dir, "--help", NULL);
    cr_assert(strstr(r->out, "status [--db FILE]... [--dir DIR]... [--json]"), "%s", r->out);
    free(r);
}
