/* choreoctl review and the held steps in choreoctl status, against a real
 * nats-server and a real service: the payment service "pay" holds large
 * charges (kind payment-review) and every refund (refund-review) for a
 * person's decision, ends a saga's holds when the saga is cancelled, and
 * carries a decided step on in its decision functions. The real choreoctl
 * binary (its path in CHOREOCTL, set by meson) lists the holds and decides
 * them; python3 parses its JSON and its tables. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "support.h"

/* ---- the service ---------------------------------------------------------- */

#define REVIEW_LIMIT 100

/* Charge {n}: up to REVIEW_LIMIT charged at once; above it held for
 * review, from 1000 on with an expiry 300 ms after the event. */
static choreo_result on_charge(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    int64_t n = support_data_n(ev);
    if (n <= REVIEW_LIMIT)
        return choreo_tx_emit(tx, "Charged", 1, NULL, ev->data, ev->data_len, NULL) == CHOREO_OK
                   ? CHOREO_DONE : CHOREO_RETRY;
    int64_t expires = n >= 1000 ? ev->ts_ms + 300 : 0;
    return choreo_tx_hold(tx, NULL, "payment-review", "amount above the review limit", expires,
                          NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

static choreo_result on_refund(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return choreo_tx_hold(tx, NULL, "refund-review", "refunds are reviewed", 0, NULL) ==
                   CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* Cancel: the saga ended; its holds end with it. */
static choreo_result on_cancel(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return choreo_tx_hold_end(tx, NULL, NULL, "the order was cancelled by its deadline",
                              NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

/* Both kinds: a row of decided, and the step's success or failure. */
static choreo_result on_decided(choreo_tx *tx, const choreo_hold_decision *d, void *user)
{
    const char *const *types = user; /* success, failure */
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(choreo_tx_db(tx), "INSERT INTO decided(hold, saga, kind, approved,"
                           " note, by_whom) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", -1, &q,
                           NULL) != SQLITE_OK)
        return CHOREO_RETRY;
    sqlite3_bind_int64(q, 1, d->id);
    sqlite3_bind_text(q, 2, d->saga, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, d->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, d->approved);
    sqlite3_bind_text(q, 5, d->note, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, d->by, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return CHOREO_RETRY;
    return choreo_tx_emit(tx, types[d->approved ? 0 : 1], 1, d->saga, d->data, d->data_len,
                          NULL) == CHOREO_OK ? CHOREO_DONE : CHOREO_RETRY;
}

static const char *const CHARGE_TYPES[] = { "Charged", "ChargeRejected" };
static const char *const REFUND_TYPES[] = { "Refunded", "RefundRejected" };

struct world {
    char dir[256];
    char db[300];
    natsd server;
    choreo_service *pay;
};

static choreo_service *payment(struct world *w)
{
    choreo_config *cfg = support_config(w->dir, "pay", w->server.url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Charge", on_charge, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Refund", on_refund, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Cancel", on_cancel, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on_decision(svc, "payment-review", on_decided,
                                            (void *)CHARGE_TYPES), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_service_on_decision(svc, "refund-review", on_decided,
                                            (void *)REFUND_TYPES), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    return svc;
}

static void up(struct world *w)
{
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    snprintf(w->db, sizeof w->db, "%s/pay.db", w->dir);
    support_exec(w->dir, "pay",
                 "CREATE TABLE decided(hold INT, saga TEXT, kind TEXT, approved INT, note TEXT,"
                 " by_whom TEXT)");
    w->pay = payment(w);
}

static void down(struct world *w)
{
    choreo_service_destroy(w->pay);
    natsd_stop(&w->server, SIGTERM);
}

/* Emits type {n} for saga and waits for its hold; returns the hold's id. */
static int64_t hold(struct world *w, const char *type, const char *saga, int64_t n)
{
    support_emit(w->pay, type, saga, n, NULL);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM choreo_holds WHERE saga = '%s'", saga);
    cr_assert(support_wait_count(w->dir, "pay", sql, 1, 10000), "%s was never held", saga);
    snprintf(sql, sizeof sql, "SELECT id FROM choreo_holds WHERE saga = '%s'", saga);
    return support_count(w->dir, "pay", sql);
}

/* A column of hold id, as a number. */
static long long hold_col(struct world *w, const char *col, int64_t id)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT %s FROM choreo_holds WHERE id = %lld", col, (long long)id);
    return support_count(w->dir, "pay", sql);
}

static long long outbox_of(struct world *w, const char *type, const char *saga)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_outbox WHERE subject = 'choreo.%s.%s'", type, saga);
    return support_count(w->dir, "pay", sql);
}

/* Unix milliseconds as choreoctl and the library write them. */
static void iso(long long ms, bool millis, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    if (millis)
        snprintf(out, 40, "%s.%03dZ", day, (int)(ms % 1000));
    else
        snprintf(out, 40, "%sZ", day);
}

/* ---- running choreoctl and python3 ---------------------------------------- */

struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

/* Runs argv[0] (found on PATH) without the test's CHOREO_* variables and
 * with USER set to user (unset when user is "", as it is when NULL), its
 * stdout and stderr kept in r; its exit status, or -1 when it ended by a
 * signal or ran for more than a minute. */
static int run(const char *dir, const char *tag, char *const argv[], const char *user,
               struct ctl_run *r)
{
    static char *envp[256];
    static char user_var[128];
    support_env_without_choreo(envp, 255);
    int n = 0;
    for (int i = 0; envp[i]; i++)
        if (strncmp(envp[i], "USER=", 5) != 0)
            envp[n++] = envp[i];
    if (user && *user) {
        snprintf(user_var, sizeof user_var, "USER=%s", user);
        envp[n++] = user_var;
    }
    envp[n] = NULL;
    r->status = support_run(dir, tag, argv, envp);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.out", dir, tag);
    support_slurp(path, r->out, sizeof r->out);
    snprintf(path, sizeof path, "%s/%s.err", dir, tag);
    support_slurp(path, r->err, sizeof r->err);
    return r->status;
}

/* choreoctl as user (see run) with the arguments that follow, NULL-ended. */
static void ctl_as(struct ctl_run *r, const char *dir, const char *user, ...)
{
    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char *argv[32] = { (char *)bin };
    int argc = 1;
    va_list ap;
    va_start(ap, user);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) {
        cr_assert_lt(argc, 31);
        argv[argc++] = a;
    }
    va_end(ap);
    run(dir, "ctl", argv, user, r);
    cr_assert_neq(r->status, -1, "choreoctl died or hung; stderr: %s", r->err);
}

#define ctl(r, dir, ...) ctl_as(r, dir, "tester", __VA_ARGS__)

/* Runs python3 -c script FILE ARGS... (NULL-ended) on text written to
 * dir/py.in; true when the script's checks held, with its stderr in err. */
static bool python(const char *dir, const char *text, char *err, size_t cap,
                   const char *script, ...)
{
    char in[600];
    snprintf(in, sizeof in, "%s/py.in", dir);
    support_write_file(in, text);
    char *argv[24] = { "python3", "-c", (char *)script, in };
    int argc = 4;
    va_list ap;
    va_start(ap, script);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 23;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    int status = run(dir, "py", argv, "tester", r);
    snprintf(err, cap, "%s", r->err);
    free(r);
    return status == 0;
}

/* ---- the checks ----------------------------------------------------------- */

/* The JSON list: argv[2] is a JSON array of what each entry must equal
 * but its times, which follow as pairs of id and column ("held_at_ms"...)
 * values to fill in, each also checked as UTC text. */
static const char list_check[] =
    "import datetime, json, sys\n"
    "def iso(ms):\n"
    "    if ms == 0: return None\n"
    "    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)\n"
    "    return t.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)\n"
    "d = json.load(open(sys.argv[1]))\n"
    "want = json.loads(sys.argv[2])\n"
    "times = sys.argv[3:]\n"
    "keys = ['id', 'saga', 'kind', 'state', 'decidable', 'reason', 'service', 'event_type',"
    " 'held_at', 'held_at_ms', 'expires_at', 'expires_at_ms', 'decided_at', 'decided_at_ms',"
    " 'decided_by', 'note', 'applied']\n"
    "for w in want:\n"
    "    for k in ('held_at_ms', 'expires_at_ms', 'decided_at_ms'):\n"
    "        w.setdefault(k, 0)\n"
    "for i in range(0, len(times), 3):\n"
    "    w = [x for x in want if x['id'] == int(times[i])][0]\n"
    "    w[times[i + 1]] = int(times[i + 2])\n"
    "for w in want:\n"
    "    for k in ('held_at', 'expires_at', 'decided_at'):\n"
    "        w[k] = iso(w[k + '_ms'])\n"
    "    w.setdefault('service', 'pay')\n"
    "assert len(d) == len(want), (len(d), len(want))\n"
    "for e, w in zip(d, want):\n"
    "    assert list(e) == keys, list(e)\n"
    "    assert e == w, (e, w)\n";

/* The table: argv[2] the header's cells, then one argument per row: its
 * cells, split at runs of two or more spaces, joined by '|'. */
static const char table_check[] =
    "import re, sys\n"
    "lines = open(sys.argv[1]).read().split('\\n')\n"
    "rows = [re.split(r'  +', l.rstrip()) for l in lines if l]\n"
    "assert lines[-1] == '' and len(rows) == len(lines) - 1, lines\n"
    "want = [a.split('|') for a in sys.argv[2:]]\n"
    "assert rows == want, '\\n'.join(map(str, rows))\n";

#define HEADER "ID|HELD (UTC)|SAGA|KIND|STATE|EXPIRES (UTC)|DECIDED (UTC)|BY|CARRIED ON|NOTE|REASON"

/* "held_at_ms" of hold id as "ID|held_at_ms|VALUE" arguments for list_check. */
struct times {
    char v[12][32];
    int n;
};

static void add_time(struct times *t, struct world *w, int64_t id, const char *key,
                     const char *col)
{
    cr_assert_lt(t->n, 12);
    snprintf(t->v[t->n++], 32, "%lld", (long long)id);
    snprintf(t->v[t->n++], 32, "%s", key);
    snprintf(t->v[t->n++], 32, "%lld", hold_col(w, col, id));
}

/* ---- the tests ------------------------------------------------------------ */

Test(ctl_review, list_shows_the_holds_and_an_approval_carries_the_step_on, .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192], want[1024], held1[40], held2[40], at[40];
    int64_t charge = hold(&w, "Charge", "order-1", 500);
    int64_t refund = hold(&w, "Refund", "order-2", 40);
    cr_assert_eq(charge, 1);
    cr_assert_eq(refund, 2);
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 0, "charged before anybody decided");

    /* The list, as JSON and as a table, exactly. */
    ctl(r, w.dir, "--db", w.db, "review", "list", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->err, "");
    struct times t = { .n = 0 };
    add_time(&t, &w, charge, "held_at_ms", "held_at");
    add_time(&t, &w, refund, "held_at_ms", "held_at");
    static const char held_json[] =
        "[{\"id\": 1, \"saga\": \"order-1\", \"kind\": \"payment-review\", \"state\": \"held\","
        " \"decidable\": true, \"reason\": \"amount above the review limit\","
        " \"event_type\": \"Charge\", \"decided_by\": null, \"note\": \"\", \"applied\": false},"
        " {\"id\": 2, \"saga\": \"order-2\", \"kind\": \"refund-review\", \"state\": \"held\","
        " \"decidable\": true, \"reason\": \"refunds are reviewed\", \"event_type\": \"Refund\","
        " \"decided_by\": null, \"note\": \"\", \"applied\": false}]";
    cr_assert(python(w.dir, r->out, err, sizeof err, list_check, held_json, t.v[0], t.v[1],
                     t.v[2], t.v[3], t.v[4], t.v[5], NULL), "%s\n%s", err, r->out);

    ctl(r, w.dir, "--db", w.db, "review", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    iso(hold_col(&w, "held_at", charge), false, held1);
    iso(hold_col(&w, "held_at", refund), false, held2);
    char row1[400], row2[400];
    snprintf(row1, sizeof row1, "1|%s|order-1|payment-review|held|never|-|-|-|-|amount above "
             "the review limit", held1);
    snprintf(row2, sizeof row2, "2|%s|order-2|refund-review|held|never|-|-|-|-|refunds are "
             "reviewed", held2);
    cr_assert(python(w.dir, r->out, err, sizeof err, table_check, HEADER, row1, row2, NULL),
              "%s\n%s", err, r->out);

    /* Approved with a note, by a named person: the running service carries
     * the step on, once. */
    ctl(r, w.dir, "--db", w.db, "review", "approve", "1", "--note", "known customer", "--by",
        "alice", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, "hold 1 approved by alice; the pay service carries the step on "
                             "when its relay publishes the decision\n");
    cr_assert_str_eq(r->err, "");
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided", 1, 10000),
              "the approval never reached the service");
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided WHERE hold = 1 AND"
                               " saga = 'order-1' AND approved = 1 AND note = 'known customer'"
                               " AND by_whom = 'alice'"), 1);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT applied FROM choreo_holds WHERE id = 1",
                                 1, 5000));
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 1);

    ctl(r, w.dir, "--db", w.db, "review", "list", "--state", "approved", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    t.n = 0;
    add_time(&t, &w, charge, "held_at_ms", "held_at");
    add_time(&t, &w, charge, "decided_at_ms", "decided_at");
    static const char approved_json[] =
        "[{\"id\": 1, \"saga\": \"order-1\", \"kind\": \"payment-review\","
        " \"state\": \"approved\", \"decidable\": false,"
        " \"reason\": \"amount above the review limit\", \"event_type\": \"Charge\","
        " \"decided_by\": \"alice\", \"note\": \"known customer\", \"applied\": true}]";
    cr_assert(python(w.dir, r->out, err, sizeof err, list_check, approved_json, t.v[0], t.v[1],
                     t.v[2], t.v[3], t.v[4], t.v[5], NULL), "%s\n%s", err, r->out);
    ctl(r, w.dir, "--db", w.db, "review", "list", "--state=approved", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    long long decided_ms = hold_col(&w, "decided_at", charge);
    iso(decided_ms, false, at);
    snprintf(row1, sizeof row1, "1|%s|order-1|payment-review|approved|never|%s|alice|yes|known "
             "customer|amount above the review limit", held1, at);
    cr_assert(python(w.dir, r->out, err, sizeof err, table_check, HEADER, row1, NULL),
              "%s\n%s", err, r->out);

    /* Again the same way: nothing changes, exit 0. The other way: refused. */
    iso(decided_ms, true, at);
    ctl(r, w.dir, "--db", w.db, "review", "approve", "1", "--by", "bob", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "hold 1 was already approved by alice at %s; nothing changed\n",
             at);
    cr_assert_str_eq(r->out, want);
    ctl(r, w.dir, "--db", w.db, "review", "reject", "1", "--note", "second thoughts", NULL);
    cr_assert_eq(r->status, 1, "%s", r->out);
    cr_assert_str_eq(r->out, "");
    snprintf(want, sizeof want, "choreoctl: review reject: hold 1 was already approved by alice "
             "at %s; a decision cannot be changed\n", at);
    cr_assert_str_eq(r->err, want);
    support_sleep_ms(500);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 1);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE id = 1 AND"
                               " state = 'approved' AND decided_by = 'alice' AND"
                               " note = 'known customer'"), 1);
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 1);
    cr_assert_eq(outbox_of(&w, "ChargeRejected", "order-1"), 0);

    /* An unknown id is named. */
    ctl(r, w.dir, "--db", w.db, "review", "approve", "99", NULL);
    cr_assert_eq(r->status, 1);
    cr_assert_str_eq(r->out, "");
    snprintf(want, sizeof want, "choreoctl: review approve: no hold with ID 99 in %s: see "
             "choreoctl review list --state all for the IDs there are\n", w.db);
    cr_assert_str_eq(r->err, want);

    /* Without --by: the user running choreoctl, else "operator". */
    ctl_as(r, w.dir, "carol", "--db", w.db, "review", "reject", "2", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, "hold 2 rejected by carol; the pay service carries the step on "
                             "when its relay publishes the decision\n");
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided WHERE hold = 2 AND"
                                 " kind = 'refund-review' AND approved = 0 AND note = '' AND"
                                 " by_whom = 'carol'", 1, 10000));
    cr_assert_eq(outbox_of(&w, "RefundRejected", "order-2"), 1);
    cr_assert_eq(outbox_of(&w, "Refunded", "order-2"), 0);
    int64_t third = hold(&w, "Charge", "order-3", 300);
    ctl_as(r, w.dir, "", "--db", w.db, "review", "approve", "3", NULL);
    cr_assert_eq(third, 3);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strncmp(r->out, "hold 3 approved by operator; ", 29) == 0, "%s", r->out);

    /* Nothing waits any more. */
    ctl(r, w.dir, "--db", w.db, "review", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(want, sizeof want, "No steps wait for a decision in %s.\n", w.db);
    cr_assert_str_eq(r->out, want);
    ctl(r, w.dir, "--db", w.db, "review", "list", "--state", "expired", NULL);
    snprintf(want, sizeof want, "No expired holds in %s.\n", w.db);
    cr_assert_str_eq(r->out, want);
    ctl(r, w.dir, "--db", w.db, "review", "list", "--state", "held", "--json", NULL);
    cr_assert_str_eq(r->out, "[]\n");
    free(r);
    down(&w);
}

Test(ctl_review, a_decision_after_the_saga_ended_or_after_the_expiry_is_refused,
     .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192], want[1024], at[40], held[40];

    /* The saga is cancelled: its hold ends, and a decision says when and why. */
    int64_t ended = hold(&w, "Charge", "order-1", 500);
    support_emit(w.pay, "Cancel", "order-1", 0, NULL);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                 " state = 'expired'", 1, 10000));
    iso(hold_col(&w, "decided_at", ended), true, at);
    snprintf(want, sizeof want, "choreoctl: review approve: hold 1 can no longer be decided: it "
             "ended at %s (the order was cancelled by its deadline)\n", at);
    ctl(r, w.dir, "--db", w.db, "review", "approve", "1", "--note", "too late", NULL);
    cr_assert_eq(r->status, 1, "%s", r->out);
    cr_assert_str_eq(r->out, "");
    cr_assert_str_eq(r->err, want);
    ctl(r, w.dir, "--db", w.db, "review", "list", "--state", "expired", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    struct times t = { .n = 0 };
    add_time(&t, &w, ended, "held_at_ms", "held_at");
    add_time(&t, &w, ended, "decided_at_ms", "decided_at");
    static const char expired_json[] =
        "[{\"id\": 1, \"saga\": \"order-1\", \"kind\": \"payment-review\", \"state\": \"expired\","
        " \"decidable\": false, \"reason\": \"amount above the review limit\","
        " \"event_type\": \"Charge\", \"decided_by\": null,"
        " \"note\": \"the order was cancelled by its deadline\", \"applied\": false}]";
    cr_assert(python(w.dir, r->out, err, sizeof err, list_check, expired_json, t.v[0], t.v[1],
                     t.v[2], t.v[3], t.v[4], t.v[5], NULL), "%s\n%s", err, r->out);

    /* Past its expiry a hold still reads "held", is shown as passed, and a
     * decision either way is refused. */
    int64_t late = hold(&w, "Charge", "order-2", 1000);
    support_sleep_ms(400);
    ctl(r, w.dir, "--db", w.db, "review", "list", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    long long expires_ms = hold_col(&w, "expires_at", late);
    iso(hold_col(&w, "held_at", late), false, held);
    iso(expires_ms, false, at);
    char row[400];
    snprintf(row, sizeof row, "2|%s|order-2|payment-review|held|%s (passed)|-|-|-|-|amount "
             "above the review limit", held, at);
    cr_assert(python(w.dir, r->out, err, sizeof err, table_check, HEADER, row, NULL), "%s\n%s",
              err, r->out);
    ctl(r, w.dir, "--db", w.db, "review", "list", "--json", NULL);
    t.n = 0;
    add_time(&t, &w, late, "held_at_ms", "held_at");
    add_time(&t, &w, late, "expires_at_ms", "expires_at");
    static const char passed_json[] =
        "[{\"id\": 2, \"saga\": \"order-2\", \"kind\": \"payment-review\", \"state\": \"held\","
        " \"decidable\": false, \"reason\": \"amount above the review limit\","
        " \"event_type\": \"Charge\", \"decided_by\": null, \"note\": \"\", \"applied\": false}]";
    cr_assert(python(w.dir, r->out, err, sizeof err, list_check, passed_json, t.v[0], t.v[1],
                     t.v[2], t.v[3], t.v[4], t.v[5], NULL), "%s\n%s", err, r->out);
    iso(expires_ms, true, at);
    const char *verbs[] = { "approve", "reject" };
    for (int i = 0; i < 2; i++) {
        ctl(r, w.dir, "--db", w.db, "review", verbs[i], "2", NULL);
        cr_assert_eq(r->status, 1, "%s", r->out);
        cr_assert_str_eq(r->out, "");
        snprintf(want, sizeof want, "choreoctl: review %s: hold 2 can no longer be decided: it "
                 "expired at %s, its saga's deadline\n", verbs[i], at);
        cr_assert_str_eq(r->err, want);
    }
    support_sleep_ms(500);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 0);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_outbox WHERE"
                               " subject LIKE 'choreo.Charged.%' OR"
                               " subject LIKE 'choreo.ChargeRejected.%'"), 0);
    free(r);
    down(&w);
}

static const char decided_json_check[] =
    "import json, sys\n"
    "e = json.load(open(sys.argv[1]))\n"
    "assert (e['id'], e['state'], e['decided_by'], e['note'], e['applied'], e['decidable']) =="
    " (2, 'rejected', 'erin', 'card reported stolen', False, False), e\n"
    "assert e['changed'] is (sys.argv[2] == 'changed'), e\n"
    "assert e['service_running'] is False, e\n"
    "assert e['decided_at_ms'] == int(sys.argv[3]), e\n";

Test(ctl_review, a_decision_while_the_service_is_stopped_is_carried_out_at_its_start,
     .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192], ms[32];
    cr_assert_eq(hold(&w, "Charge", "order-1", 500), 1);
    cr_assert_eq(hold(&w, "Charge", "order-2", 600), 2);
    choreo_service_destroy(w.pay);
    w.pay = NULL;

    ctl(r, w.dir, "--db", w.db, "review", "approve", "1", "--by", "erin", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert_str_eq(r->out, "hold 1 approved by erin; the pay service is not running: it "
                             "carries the step on at its next start\n");
    ctl(r, w.dir, "--db", w.db, "review", "reject", "2", "--by", "erin", "--note",
        "card reported stolen", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(ms, sizeof ms, "%lld", hold_col(&w, "decided_at", 2));
    cr_assert(python(w.dir, r->out, err, sizeof err, decided_json_check, "changed", ms, NULL),
              "%s\n%s", err, r->out);
    ctl(r, w.dir, "--db", w.db, "review", "reject", "2", "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(python(w.dir, r->out, err, sizeof err, decided_json_check, "unchanged", ms, NULL),
              "%s\n%s", err, r->out);
    cr_assert_eq(support_count(w.dir, "pay", "SELECT COUNT(*) FROM decided"), 0);

    w.pay = payment(&w);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM decided", 2, 10000),
              "the decisions given while it was down were never carried out");
    cr_assert_eq(outbox_of(&w, "Charged", "order-1"), 1);
    cr_assert_eq(outbox_of(&w, "ChargeRejected", "order-2"), 1);
    cr_assert(support_wait_count(w.dir, "pay", "SELECT COUNT(*) FROM choreo_holds WHERE"
                                 " applied = 1", 2, 5000));
    ctl(r, w.dir, "--db", w.db, "review", "list", "--state", "all", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    char rows[2][400], held[40], at[40];
    for (int id = 1; id <= 2; id++) {
        iso(hold_col(&w, "held_at", id), false, held);
        iso(hold_col(&w, "decided_at", id), false, at);
        snprintf(rows[id - 1], sizeof rows[0], "%d|%s|order-%d|payment-review|%s|never|%s|erin|"
                 "yes|%s|amount above the review limit", id, held, id,
                 id == 1 ? "approved" : "rejected", at, id == 1 ? "-" : "card reported stolen");
    }
    cr_assert(python(w.dir, r->out, err, sizeof err, table_check, HEADER, rows[0], rows[1],
                     NULL), "%s\n%s", err, r->out);
    free(r);
    down(&w);
}

Test(ctl_review, usage_errors_exit_2_and_print_nothing, .timeout = 60)
{
    char dir[256], db[300];
    support_tmpdir(dir, sizeof dir);
    /* A real database, so that only the command line can be wrong. */
    choreo_config *cfg = support_config(dir, "pay", "nats://127.0.0.1:1", NULL);
    choreo_admin *adm;
    cr_assert_eq(choreo_admin_open(&adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_admin_close(adm);
    choreo_config_destroy(cfg);
    snprintf(db, sizeof db, "%s/pay.db", dir);
    char long_by[80], long_note[300];
    memset(long_by, 'b', 65);
    long_by[65] = '\0';
    memset(long_note, 'n', 256);
    long_note[256] = '\0';
    const struct {
        const char *args[6];
        int status;
        const char *says;
    } cases[] = {
        { { "review" }, 2, "review: missing subcommand: use list, approve or reject" },
        { { "review", "bogus" }, 2, "review: unknown subcommand \"bogus\"" },
        { { "review", "--json" }, 2, "review: unknown flag --json" },
        { { "review", "list", "--state", "maybe" }, 2, "unknown state \"maybe\"" },
        { { "review", "list", "--state" }, 2, "review list: --state needs a value" },
        { { "review", "list", "3" }, 2, "review list: unexpected argument \"3\"" },
        { { "review", "list", "--note", "x" }, 2, "review list: unknown flag --note" },
        { { "review", "approve" }, 2, "review approve: missing ID" },
        { { "review", "approve", "x" }, 2, "review approve: invalid ID \"x\"" },
        { { "review", "reject", "0" }, 2, "review reject: invalid ID \"0\"" },
        { { "review", "approve", "-3" }, 2, "review approve: invalid ID \"-3\"" },
        { { "review", "approve", "1", "2" }, 2, "review approve: unexpected argument \"2\"" },
        { { "review", "approve", "1", "--by", "" }, 2, "--by takes 1 to 64 bytes" },
        { { "review", "approve", "1", "--by", long_by }, 2, "--by takes 1 to 64 bytes" },
        { { "review", "approve", "1", "--note", long_note }, 2,
          "--note is 256 bytes; a note has at most 255" },
        { { "review", "approve", "1", "--note" }, 2, "review approve: --note needs a value" },
        { { "review", "reject", "1", "--state", "held" }, 2,
          "review reject: unknown flag --state" },
        { { "review", "approve", "1", "--db", db }, 2,
          "review approve: 2 --db given: review works on one service's database" },
    };
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(r, dir, "--db", db, a[0], a[1], a[2], a[3], a[4], a[5], NULL);
        cr_assert_eq(r->status, cases[i].status, "case %zu: exit %d, stderr: %s", i, r->status,
                     r->err);
        cr_assert(strstr(r->err, cases[i].says), "case %zu: %s", i, r->err);
        cr_assert_str_eq(r->out, "", "case %zu printed: %s", i, r->out);
    }
    /* The database: none given is a usage error, a missing one a failure. */
    ctl(r, dir, "review", "list", NULL);
    cr_assert_eq(r->status, 2, "%s", r->err);
    cr_assert(strstr(r->err, "no database given"), "%s", r->err);
    ctl(r, dir, "--db", "/nonexistent.db", "review", "approve", "1", NULL);
    cr_assert_eq(r->status, 1, "%s", r->err);
    cr_assert(strstr(r->err, "cannot open database /nonexistent.db"), "%s", r->err);

    ctl(r, dir, "review", "--help", NULL);
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "choreoctl review:") && strstr(r->out, "Exit status"), "%s",
              r->out);
    ctl(r, dir, "review", "approve", "--help", NULL);
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "--note TEXT") && strstr(r->out, "--by NAME"), "%s", r->out);
    ctl(r, dir, "review", "list", "-h", NULL);
    cr_assert_eq(r->status, 0);
    cr_assert(strstr(r->out, "CARRIED ON"), "%s", r->out);
    ctl(r, dir, "--help", NULL);
    cr_assert(strstr(r->out, "review approve|reject ID [--note TEXT] [--by NAME]"), "%s",
              r->out);
    free(r);
}

static const char status_check[] =
    "import json, sys\n"
    "s = json.load(open(sys.argv[1]))['services'][0]\n"
    "assert s['holds'] == {'total': 4, 'past_expiry': 1, 'truncated': False, 'by_kind': ["
    "{'kind': 'payment-review', 'count': 3}, {'kind': 'refund-review', 'count': 1}]},"
    " s['holds']\n"
    "assert s['errors'] == [], s['errors']\n";

static const char old_status_check[] =
    "import json, sys\n"
    "s = json.load(open(sys.argv[1]))['services'][0]\n"
    "assert s['holds'] == {'total': 0, 'past_expiry': 0, 'truncated': False, 'by_kind': []},"
    " s['holds']\n"
    "assert s['parked'] == {'total': 0, 'truncated': False, 'by_consumer': []}, s['parked']\n"
    "assert [c['name'] for c in s['consumers']] == ['old_Charge'], s['consumers']\n"
    "assert s['errors'] == [], s['errors']\n";

Test(ctl_review, status_counts_the_steps_waiting_for_a_decision_by_kind, .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    char err[8192], line[512];

    ctl(r, w.dir, "--nats-url", w.server.url, "status", "--db", w.db, NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(strstr(r->out, "\nheld        none\n"), "%s", r->out);

    hold(&w, "Charge", "order-1", 500);
    hold(&w, "Charge", "order-2", 700);
    hold(&w, "Refund", "order-3", 20);
    hold(&w, "Charge", "order-4", 1000); /* past its expiry 300 ms on */
    int64_t decided = hold(&w, "Charge", "order-5", 900);
    ctl(r, w.dir, "--db", w.db, "review", "approve", "5", NULL);
    cr_assert_eq(decided, 5);
    cr_assert_eq(r->status, 0, "%s", r->err);
    support_sleep_ms(400);

    ctl(r, w.dir, "--nats-url", w.server.url, "status", "--db", w.db, "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(python(w.dir, r->out, err, sizeof err, status_check, NULL), "%s\n%s", err,
              r->out);
    ctl(r, w.dir, "--nats-url", w.server.url, "status", "--db", w.db, NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    snprintf(line, sizeof line, "\nheld        4 steps wait for a decision: payment-review 3, "
             "refund-review 1; 1 of them past its expiry, no longer decidable (choreoctl "
             "review list)\n");
    cr_assert(strstr(r->out, line), "%s", r->out);

    /* A database from before held steps: no holds, and status, which only
     * reads, leaves it as it is. */
    choreo_config *cfg = support_config(w.dir, "old", w.server.url, NULL);
    choreo_service *old = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(old, "Charge", on_charge, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(old), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(old);
    support_exec(w.dir, "old", "DROP TABLE choreo_holds; PRAGMA user_version = 5");
    char old_db[300];
    snprintf(old_db, sizeof old_db, "%s/old.db", w.dir);
    ctl(r, w.dir, "--nats-url", w.server.url, "status", "--db", old_db, "--json", NULL);
    cr_assert_eq(r->status, 0, "%s", r->err);
    cr_assert(python(w.dir, r->out, err, sizeof err, old_status_check, NULL), "%s\n%s", err,
              r->out);
    ctl(r, w.dir, "--nats-url", w.server.url, "status", "--db", old_db, NULL);
    cr_assert(strstr(r->out, "\nheld        none\n"), "%s", r->out);
    cr_assert(strstr(r->out, "old_Charge"), "its consumers are listed: %s", r->out);
    cr_assert_eq(support_count(w.dir, "old", "PRAGMA user_version"), 5);
    cr_assert_eq(support_count(w.dir, "old", "SELECT COUNT(*) FROM sqlite_master WHERE"
                               " name = 'choreo_holds'"), 0);

    /* The other commands that only read leave it as it is too (choreoctl
     * of a newer build must not migrate the database of an older service,
     * which would then refuse to start on it), and take no write lock: they
     * run while another connection holds one. */
    sqlite3 *locker = NULL;
    cr_assert_eq(sqlite3_open(old_db, &locker), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(locker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ctl(r, w.dir, "--busy-timeout-ms", "200", "dead", "list", "--db", old_db, NULL);
    cr_assert_eq(r->status, 0, "dead list: %s", r->err);
    cr_assert(strstr(r->out, "No parked messages in "), "%s", r->out);
    ctl(r, w.dir, "--busy-timeout-ms", "200", "review", "list", "--db", old_db, NULL);
    cr_assert_eq(r->status, 0, "review list: %s", r->err);
    ctl(r, w.dir, "--busy-timeout-ms", "200", "sagas", "--db", old_db, NULL);
    cr_assert_eq(r->status, 0, "sagas: %s", r->err);
    ctl(r, w.dir, "--busy-timeout-ms", "200", "--nats-url", w.server.url, "consumers", "list",
        "--db", old_db, NULL);
    cr_assert_eq(r->status, 0, "consumers list: %s", r->err);
    cr_assert(strstr(r->out, "old_Charge"), "%s", r->out);
    /* A command that writes waits for the lock, and says so. */
    ctl(r, w.dir, "--busy-timeout-ms", "200", "dead", "drop", "1", "--db", old_db, NULL);
    cr_assert_eq(r->status, 1, "dead drop under another's write lock: %s", r->err);
    cr_assert(strstr(r->err, "locked"), "%s", r->err);
    cr_assert_eq(sqlite3_exec(locker, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(locker);
    cr_assert_eq(support_count(w.dir, "old", "PRAGMA user_version"), 5,
                 "a command that only reads migrated the database");
    free(r);
    down(&w);
}
