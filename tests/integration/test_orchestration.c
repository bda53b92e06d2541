/* Orchestrated sagas and TCC against a real nats-server: an orchestrator
 * service ("orch") drives a participant service ("part") through steps a,
 * b and c (or a step p and a TCC group of x and y). The participant
 * records each piece of work it did in its table ran(step, kind, saga), in
 * the same transaction as the work, so that "ran once" is a count. The
 * tests: completion with its transitions on record; a failure and a
 * timeout compensating in reverse order; an unanswered compensation sent
 * again and run once; the orchestrator killed between a reply and its next
 * command, and between two compensations; TCC confirming, a confirm
 * delivered twice, a try that times out, and a cancel that arrives before
 * its try (whose late arrival then does nothing). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* What the participant does for a saga, from the digits of the data's "n",
 * each naming a step k (a = 1, b = 2, c = 3, x = 4, y = 5, p = 6):
 *   ones       step k fails
 *   tens       step k does its work and never answers
 *   hundreds   step k's command is not taken before its 4th delivery
 *   thousands  step k's first compensation or confirm is not answered */
#define FAIL(k) (k)
#define HOLD(k) (10 * (k))
#define LATE(k) (100 * (k))
#define MUTE(k) (1000 * (k))

static int digit(int64_t n, int place)
{
    while (place-- > 0)
        n /= 10;
    return (int)(n % 10);
}

struct part_step {
    const char *name;
    int k;
};

static const struct part_step STEPS[] = { { "a", 1 }, { "b", 2 }, { "c", 3 }, { "x", 4 },
                                          { "y", 5 }, { "p", 6 } };

static int step_k(const char *name)
{
    for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++)
        if (strcmp(STEPS[i].name, name) == 0)
            return STEPS[i].k;
    return 0;
}

/* pattern with its one "%s" replaced by value. */
static void subst(char *out, size_t cap, const char *pattern, const char *value)
{
    const char *at = strstr(pattern, "%s");
    cr_assert_not_null(at);
    snprintf(out, cap, "%.*s%s%s", (int)(at - pattern), pattern, value, at + 2);
}

/* Type names of step s: Do<S>, <S>Done, <S>Failed, Undo<S>, <S>Undone,
 * Confirm<S>, <S>Confirmed. */
static void type_of(char *out, size_t cap, const char *pattern, const char *step)
{
    char up[8];
    snprintf(up, sizeof up, "%c%s", step[0] - 'a' + 'A', step + 1);
    subst(out, cap, pattern, up);
}

static bool ran(choreo_tx *tx, const char *step, const char *kind)
{
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO ran(step, kind, saga) VALUES ('%s', '%s', '%s')", step,
             kind, choreo_tx_event(tx)->saga);
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK;
}

static choreo_result reply(choreo_tx *tx, const char *fmt, const char *step)
{
    char type[32];
    type_of(type, sizeof type, fmt, step);
    return choreo_tx_emit(tx, type, 1, NULL, NULL, 0, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                          : CHOREO_RETRY;
}

/* An action, or a TCC try. */
static choreo_result on_do(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const char *step = user;
    int k = step_k(step);
    int64_t n = support_data_n(ev);
    if (digit(n, 2) == k && ev->attempt < 4)
        return CHOREO_RETRY;
    bool run;
    if (choreo_tx_barrier(tx, NULL, step, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE; /* late: its compensation came first; nobody waits for it */
    if (digit(n, 0) == k)
        return reply(tx, "%sFailed", step);
    if (!ran(tx, step, "action"))
        return CHOREO_RETRY;
    return digit(n, 1) == k ? CHOREO_DONE : reply(tx, "%sDone", step);
}

/* True the first time the saga's step k asks to be muted for what: that
 * delivery is taken (and the fact kept) but not answered. */
static bool muted_once(choreo_tx *tx, const char *step, const char *what)
{
    const choreo_event *ev = choreo_tx_event(tx);
    if (digit(support_data_n(ev), 3) != step_k(step))
        return false;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(choreo_tx_db(tx), "INSERT OR IGNORE INTO muted VALUES (?1, ?2)", -1,
                           &q, NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(q, 1, ev->saga, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, what, -1, SQLITE_STATIC);
    bool first = sqlite3_step(q) == SQLITE_DONE && sqlite3_changes(choreo_tx_db(tx)) == 1;
    sqlite3_finalize(q);
    return first;
}

/* A compensation, or a TCC cancel: answered even when there was nothing to
 * undo. */
static choreo_result on_undo(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const char *step = user;
    (void)ev;
    if (muted_once(tx, step, "undo"))
        return CHOREO_DONE;
    bool run;
    if (choreo_tx_barrier(tx, NULL, step, CHOREO_BARRIER_COMPENSATION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (run && !ran(tx, step, "compensation"))
        return CHOREO_RETRY;
    return reply(tx, "%sUndone", step);
}

/* A TCC confirm: idempotent through the barrier step "<name>.confirm". */
static choreo_result on_confirm(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const char *step = user;
    (void)ev;
    if (muted_once(tx, step, "confirm"))
        return CHOREO_DONE;
    char barrier[16];
    snprintf(barrier, sizeof barrier, "%s.confirm", step);
    bool run;
    if (choreo_tx_barrier(tx, NULL, barrier, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (run && !ran(tx, step, "confirm"))
        return CHOREO_RETRY;
    return reply(tx, "%sConfirmed", step);
}

static void on(choreo_service *svc, const char *fmt, const char *step, choreo_handler_fn fn)
{
    char type[32];
    type_of(type, sizeof type, fmt, step);
    cr_assert_eq(choreo_service_on(svc, type, fn, (void *)step), CHOREO_OK, "%s",
                 choreo_last_error());
}

static choreo_service *participant(const char *dir, const char *url)
{
    support_exec(dir, "part",
                 "CREATE TABLE IF NOT EXISTS ran(step TEXT, kind TEXT, saga TEXT);"
                 "CREATE TABLE IF NOT EXISTS muted(saga TEXT, what TEXT, PRIMARY KEY (saga, what))");
    choreo_config *cfg = support_config(dir, "part", url, "retry_base_ms=300", "ack_wait_ms=2000",
                                        NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    for (size_t i = 0; i < sizeof STEPS / sizeof STEPS[0]; i++) {
        const char *s = STEPS[i].name;
        on(svc, "Do%s", s, on_do);
        on(svc, "Undo%s", s, on_undo);
        if (s[0] == 'x' || s[0] == 'y')
            on(svc, "Confirm%s", s, on_confirm);
    }
    return svc;
}

/* ---- the orchestrator ----------------------------------------------------- */

static choreo_result on_end(choreo_tx *tx, const choreo_saga_info *info, void *user)
{
    (void)user;
    char sql[300];
    snprintf(sql, sizeof sql,
             "INSERT INTO outcome(saga, completed, failed_step, timed_out, failure_type) VALUES "
             "('%s', %d, '%s', %d, '%s')",
             info->saga, info->completed, info->failed_step ? info->failed_step : "",
             info->timed_out, info->failure_type);
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

static choreo_saga_step_spec spec(const char *step, int64_t timeout_ms, char types[7][32])
{
    const char *fmts[] = { "Do%s", "%sDone", "%sFailed", "Undo%s", "%sUndone", "Confirm%s",
                           "%sConfirmed" };
    for (int i = 0; i < 7; i++)
        type_of(types[i], 32, fmts[i], step);
    return (choreo_saga_step_spec){ .name = step, .command = types[0], .success = types[1],
                                    .failure = types[2], .timeout_ms = timeout_ms,
                                    .compensate = types[3], .compensated = types[4],
                                    .retry_ms = 800 };
}

/* The orchestrator's metrics port, 0 for none. */
static int orch_metrics_port;

/* "flow": a, b, c in turn; "tcc": p, then x and y as a TCC group. */
static choreo_service *orchestrator(const char *dir, const char *url, int64_t timeout_ms)
{
    support_exec(dir, "orch",
                 "CREATE TABLE IF NOT EXISTS outcome(saga TEXT, completed INT, failed_step TEXT,"
                 " timed_out INT, failure_type TEXT)");
    char metrics[64] = "log_level=warn";
    if (orch_metrics_port)
        snprintf(metrics, sizeof metrics, "metrics_addr=127.0.0.1:%d", orch_metrics_port);
    choreo_config *cfg = support_config(dir, "orch", url, "ack_wait_ms=1000", metrics, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    static char types[6][7][32];
    choreo_saga_def *flow, *tcc;
    cr_assert_eq(choreo_service_saga(svc, "flow", "STARTED", on_end, NULL, &flow), CHOREO_OK);
    for (int i = 0; i < 3; i++) {
        choreo_saga_step_spec s = spec(STEPS[i].name, timeout_ms, types[i]);
        cr_assert_eq(choreo_saga_step(flow, &s), CHOREO_OK, "%s", choreo_last_error());
    }
    cr_assert_eq(choreo_service_saga(svc, "tcc", "STARTED", on_end, NULL, &tcc), CHOREO_OK);
    choreo_saga_step_spec p = spec("p", timeout_ms, types[5]);
    cr_assert_eq(choreo_saga_step(tcc, &p), CHOREO_OK, "%s", choreo_last_error());
    choreo_saga_step_spec group[2] = { spec("x", timeout_ms, types[3]),
                                       spec("y", timeout_ms, types[4]) };
    for (int i = 0; i < 2; i++) {
        group[i].confirm = types[3 + i][5];
        group[i].confirmed = types[3 + i][6];
    }
    cr_assert_eq(choreo_saga_tcc(tcc, "RESERVED", group, 2), CHOREO_OK, "%s",
                 choreo_last_error());
    return svc;
}

/* Starts an instance of def with data {"n": n} in a command of svc. */
static void start(choreo_service *svc, const char *def, const char *saga, int64_t n)
{
    uint8_t buf[32];
    choreo_mp_writer w = { .buf = buf, .cap = sizeof buf, .max = sizeof buf };
    choreo_mp_write_map(&w, 1);
    choreo_mp_write_cstr(&w, "n");
    choreo_mp_write_int(&w, n);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_saga_start(tx, def, saga, w.buf, w.len), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

static long long count(const char *dir, const char *name, const char *fmt, const char *saga)
{
    char sql[300];
    subst(sql, sizeof sql, fmt, saga);
    return support_count(dir, name, sql);
}

/* Waits until the instance's phase is want. */
static void wait_phase(const char *dir, const char *saga, const char *want, int timeout_ms)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga = '%s' AND phase = '%s'",
             saga, want);
    cr_assert(support_wait_count(dir, "orch", sql, 1, timeout_ms),
              "saga %s never reached %s", saga, want);
}

/* The participant's work for the saga, as "step kind, step kind, ...". */
static void work_of(const char *dir, const char *saga, char *out, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/part.db", dir);
    sqlite3 *db;
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT step || ' ' || kind FROM ran WHERE saga = ?1"
                                        " ORDER BY rowid", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, saga, -1, SQLITE_STATIC);
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(q) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "",
                              (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* The transitions' to-states and notes, as "TO (note); ...". */
static void path_of(const char *dir, const char *saga, char *out, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/orch.db", dir);
    sqlite3 *db;
    sqlite3_stmt *q;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT to_state || ' (' || note || ')' FROM"
                                        " choreo_saga_transitions WHERE saga = ?1 ORDER BY id",
                                    -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, saga, -1, SQLITE_STATIC);
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(q) == SQLITE_ROW && n < cap)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "; " : "",
                              (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

struct world {
    char dir[256];
    natsd server;
    choreo_service *part, *orch;
};

static void up(struct world *w, int64_t timeout_ms)
{
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    w->part = participant(w->dir, w->server.url);
    w->orch = orchestrator(w->dir, w->server.url, timeout_ms);
    cr_assert_eq(choreo_service_start(w->part), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w->orch), CHOREO_OK, "%s", choreo_last_error());
}

static void down(struct world *w)
{
    choreo_service_destroy(w->orch);
    choreo_service_destroy(w->part);
    natsd_stop(&w->server, SIGTERM);
}

Test(orchestration, a_saga_completes_with_every_transition_on_record, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    start(w.orch, "flow", "s-ok", 0);
    wait_phase(w.dir, "s-ok", "COMPLETED", 20000);
    char work[512], path[1024];
    work_of(w.dir, "s-ok", work, sizeof work);
    cr_assert_str_eq(work, "a action, b action, c action");
    path_of(w.dir, "s-ok", path, sizeof path);
    cr_assert_str_eq(path, "STARTED (started); A (a done); B (b done); COMPLETED (c done)");
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM outcome WHERE saga = '%s'"
                                      " AND completed = 1", "s-ok"), 1);
    /* A saga id is one instance. */
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w.orch, &tx), CHOREO_OK);
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", "s-ok", NULL, 0), CHOREO_EDUPLICATE);
    cr_assert_eq(choreo_tx_saga_start(tx, "nope", "s-x", NULL, 0), CHOREO_ENOTFOUND);
    cr_assert(strstr(choreo_last_error(), "nope"), "%s", choreo_last_error());
    choreo_tx_rollback(tx);
    down(&w);
}

Test(orchestration, a_failure_compensates_the_done_steps_in_reverse_order, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    start(w.orch, "flow", "s-fail", FAIL(3));
    wait_phase(w.dir, "s-fail", "FAILED", 20000);
    char work[512], path[1024];
    work_of(w.dir, "s-fail", work, sizeof work);
    cr_assert_str_eq(work, "a action, b action, b compensation, a compensation");
    path_of(w.dir, "s-fail", path, sizeof path);
    cr_assert_str_eq(path, "STARTED (started); A (a done); B (b done); "
                           "COMPENSATING (c failed: compensating); "
                           "COMPENSATING (b compensated); FAILED (a compensated)");
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM outcome WHERE saga = '%s' AND"
                                      " completed = 0 AND failed_step = 'c' AND timed_out = 0"
                                      " AND failure_type = 'CFailed'", "s-fail"), 1);
    down(&w);
}

Test(orchestration, a_timeout_compensates_the_step_in_flight_too, .timeout = 60)
{
    struct world w;
    up(&w, 1000);
    start(w.orch, "flow", "s-hold", HOLD(2));
    wait_phase(w.dir, "s-hold", "FAILED", 20000);
    char work[512];
    work_of(w.dir, "s-hold", work, sizeof work);
    cr_assert_str_eq(work, "a action, b action, b compensation, a compensation");
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM outcome WHERE saga = '%s' AND"
                                      " failed_step = 'b' AND timed_out = 1", "s-hold"), 1);
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM choreo_saga_instances WHERE"
                                      " saga = '%s' AND steps = 'CC-'", "s-hold"), 1);
    down(&w);
}

Test(orchestration, an_unanswered_compensation_is_sent_again_and_runs_once, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    /* c fails; b's first compensation is taken but never answered. */
    start(w.orch, "flow", "s-mute", FAIL(3) + MUTE(2));
    wait_phase(w.dir, "s-mute", "FAILED", 20000);
    char work[512], path[1024];
    work_of(w.dir, "s-mute", work, sizeof work);
    cr_assert_str_eq(work, "a action, b action, b compensation, a compensation");
    path_of(w.dir, "s-mute", path, sizeof path);
    cr_assert(strstr(path, "COMPENSATING (b's compensation unanswered: sent again)"), "%s", path);
    down(&w);
}

/* ---- TCC ------------------------------------------------------------------ */

static long long ran_count(const char *dir, const char *saga, const char *step, const char *kind)
{
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM ran WHERE saga = '%s' AND step = '%s' AND kind = '%s'", saga,
             step, kind);
    return support_count(dir, "part", sql);
}

Test(orchestration, a_tcc_group_confirms_when_every_try_succeeded, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    start(w.orch, "tcc", "t-ok", 0);
    wait_phase(w.dir, "t-ok", "COMPLETED", 20000);
    const char *steps[] = { "p", "x", "y" };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(ran_count(w.dir, "t-ok", steps[i], "action"), 1, "%s", steps[i]);
    cr_assert_eq(ran_count(w.dir, "t-ok", "x", "confirm"), 1);
    cr_assert_eq(ran_count(w.dir, "t-ok", "y", "confirm"), 1);
    cr_assert_eq(count(w.dir, "part", "SELECT COUNT(*) FROM ran WHERE saga = '%s' AND"
                                      " kind = 'compensation'", "t-ok"), 0);
    char path[1024];
    path_of(w.dir, "t-ok", path, sizeof path);
    cr_assert(strstr(path, "every try succeeded, confirming") && strstr(path, "COMPLETED ("),
              "%s", path);
    down(&w);
}

Test(orchestration, a_confirm_delivered_twice_confirms_once, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    /* x's first confirm is taken and not answered: the orchestrator sends
     * it again, and the participant's barrier runs it once. */
    start(w.orch, "tcc", "t-twice", MUTE(4));
    wait_phase(w.dir, "t-twice", "COMPLETED", 20000);
    cr_assert_eq(ran_count(w.dir, "t-twice", "x", "confirm"), 1);
    char path[1024];
    path_of(w.dir, "t-twice", path, sizeof path);
    cr_assert(strstr(path, "confirms unanswered: sent again"), "%s", path);
    /* One more, by hand, long after: still once, and the ended instance
     * does not move. */
    long long before = count(w.dir, "orch", "SELECT COUNT(*) FROM choreo_saga_transitions"
                                            " WHERE saga = '%s'", "t-twice");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(w.part, &tx), CHOREO_OK);
    cr_assert_eq(choreo_tx_emit(tx, "ConfirmX", 1, "t-twice", NULL, 0, NULL), CHOREO_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
    cr_assert(support_wait_count(w.dir, "part", "SELECT COUNT(*) FROM choreo_inbox WHERE"
                                                " consumer = 'part_ConfirmX'", 3, 10000),
              "the third confirm never arrived");
    cr_assert(support_wait_count(w.dir, "orch", "SELECT COUNT(*) FROM choreo_inbox WHERE"
                                                " consumer = 'orch_XConfirmed'", 2, 10000),
              "its answer never arrived");
    cr_assert_eq(ran_count(w.dir, "t-twice", "x", "confirm"), 1);
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM choreo_saga_transitions"
                                      " WHERE saga = '%s'", "t-twice"), before);
    down(&w);
}

Test(orchestration, a_try_that_times_out_cancels_the_group_and_compensates, .timeout = 60)
{
    struct world w;
    up(&w, 1000);
    /* y reserves and never answers. */
    start(w.orch, "tcc", "t-hold", HOLD(5));
    wait_phase(w.dir, "t-hold", "FAILED", 20000);
    const char *steps[] = { "p", "x", "y" };
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ran_count(w.dir, "t-hold", steps[i], "action"), 1, "%s", steps[i]);
        cr_assert_eq(ran_count(w.dir, "t-hold", steps[i], "compensation"), 1, "%s", steps[i]);
    }
    char work[512];
    work_of(w.dir, "t-hold", work, sizeof work);
    cr_assert(strstr(work, "y compensation, x compensation, p compensation"), "%s", work);
    cr_assert_eq(count(w.dir, "orch", "SELECT COUNT(*) FROM outcome WHERE saga = '%s' AND"
                                      " failed_step = 'y' AND timed_out = 1", "t-hold"), 1);
    down(&w);
}

Test(orchestration, a_cancel_before_its_try_makes_the_late_try_a_no_op, .timeout = 60)
{
    struct world w;
    up(&w, 1000);
    /* y's try is not taken before its 4th delivery, long after the group
     * timed out and y's cancel came and went. */
    start(w.orch, "tcc", "t-late", LATE(5));
    wait_phase(w.dir, "t-late", "FAILED", 20000);
    cr_assert(support_wait_count(w.dir, "part", "SELECT COUNT(*) FROM choreo_inbox WHERE"
                                                " consumer = 'part_DoY'", 1, 15000),
              "the late try never came");
    cr_assert_eq(ran_count(w.dir, "t-late", "y", "action"), 0, "the late try reserved");
    cr_assert_eq(ran_count(w.dir, "t-late", "y", "compensation"), 0,
                 "the cancel before the try undid something");
    cr_assert_eq(ran_count(w.dir, "t-late", "x", "compensation"), 1);
    cr_assert_eq(ran_count(w.dir, "t-late", "p", "compensation"), 1);
    cr_assert_eq(count(w.dir, "part", "SELECT COUNT(*) FROM choreo_barrier WHERE saga = '%s'"
                                      " AND step = 'y'", "t-late"), 2,
                 "the null cancel holds both of y's barrier rows");
    down(&w);
}

/* ---- the orchestrator killed ---------------------------------------------- */

/* A service in a process of its own (this process must not run nats.c
 * threads, since it forks), with crash points crash or none. */
static pid_t spawn(const char *dir, const char *url, bool orch, const char *crash)
{
    pid_t pid = support_fork();
    if (pid == 0) {
        if (crash)
            setenv("CHOREO_CRASHPOINTS", crash, 1);
        else
            unsetenv("CHOREO_CRASHPOINTS");
        choreo_service *svc = orch ? orchestrator(dir, url, 0) : participant(dir, url);
        choreo_status s = choreo_service_run(svc);
        choreo_service_destroy(svc);
        _exit(s == CHOREO_OK ? 0 : 3);
    }
    return pid;
}

/* Waits for pid to die of its crash point (SIGKILL). */
static void crashes(pid_t pid, const char *point)
{
    int status = 0;
    pid_t got = 0;
    for (int i = 0; i < 2000 && got == 0; i++) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == 0)
            usleep(10000);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    cr_assert(got == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the orchestrator did not die at %s (status %d)", point, status);
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
}

/* Kills the orchestrator at point inside the transaction of a reply, then
 * right after the commit of the same reply's redelivery (its next command
 * in the outbox, not yet published), then lets it run: the instance ends
 * in want and the participant's work is exactly work. */
static void killed_twice(int64_t n, const char *point, const char *want, const char *work)
{
    char dir[256], got[512];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *offline = orchestrator(dir, server.url, 0); /* never started */
    start(offline, "flow", "k-1", n);
    choreo_service_destroy(offline);
    pid_t part = spawn(dir, server.url, false, NULL);
    crashes(spawn(dir, server.url, true, point), point);
    crashes(spawn(dir, server.url, true, "after_commit_before_publish"),
            "after_commit_before_publish");
    pid_t orch = spawn(dir, server.url, true, NULL);
    wait_phase(dir, "k-1", want, 30000);
    work_of(dir, "k-1", got, sizeof got);
    cr_assert_str_eq(got, work);
    stop(orch);
    stop(part);
    natsd_stop(&server, SIGTERM);
}

Test(orchestration, a_kill_between_a_reply_and_the_next_command_loses_nothing, .timeout = 90)
{
    killed_twice(0, "orchestrator_after_reply", "COMPLETED", "a action, b action, c action");
}

Test(orchestration, a_kill_between_two_compensations_loses_nothing, .timeout = 90)
{
    killed_twice(FAIL(3), "orchestrator_between_compensations", "FAILED",
                 "a action, b action, b compensation, a compensation");
}

Test(orchestration, a_definition_with_a_mistake_is_refused_naming_it, .timeout = 30)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    choreo_config *cfg = support_config(dir, "def", "nats://127.0.0.1:9", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    choreo_saga_def *d;
    cr_assert_eq(choreo_service_saga(svc, "flow", "STARTED", NULL, NULL, &d), CHOREO_OK);
    cr_assert_eq(choreo_service_saga(svc, "flow", "STARTED", NULL, NULL, &d), CHOREO_EDUPLICATE);
    char t[7][32];
    choreo_saga_step_spec a = spec("a", 0, t);
    a.compensated = NULL;
    cr_assert_eq(choreo_saga_step(d, &a), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "compensate and compensated go together"), "%s",
              choreo_last_error());
    a = spec("a", 0, t);
    a.failure = a.success;
    cr_assert_eq(choreo_saga_step(d, &a), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "ADone is the reply of two steps"), "%s",
              choreo_last_error());
    a = spec("a", 0, t);
    cr_assert_eq(choreo_saga_step(d, &a), CHOREO_OK, "%s", choreo_last_error());
    /* The orchestrator handles the replies: the program cannot too. */
    cr_assert_eq(choreo_service_on(svc, "ADone", on_undo, NULL), CHOREO_EDUPLICATE);
    cr_assert(strstr(choreo_last_error(), "reply of the orchestrated saga flow"), "%s",
              choreo_last_error());
    char g[2][7][32];
    choreo_saga_step_spec group[2] = { spec("x", 0, g[0]), spec("y", 0, g[1]) };
    cr_assert_eq(choreo_saga_tcc(d, "HELD", group, 2), CHOREO_EINVAL, "no confirm given");
    for (int i = 0; i < 2; i++) {
        group[i].confirm = g[i][5];
        group[i].confirmed = g[i][6];
    }
    cr_assert_eq(choreo_saga_tcc(d, "HELD", group, 2), CHOREO_OK, "%s", choreo_last_error());
    choreo_saga_step_spec b = spec("b", 0, t);
    cr_assert_eq(choreo_saga_step(d, &b), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "confirms are final"), "%s", choreo_last_error());
    choreo_service_destroy(svc);
}

Test(orchestration, instances_that_wait_show_in_the_metrics_by_phase, .timeout = 60)
{
    struct world w;
    orch_metrics_port = support_free_port();
    up(&w, 0);
    /* b does its work and never answers, and nothing times out. */
    start(w.orch, "flow", "m-wait", HOLD(2));
    start(w.orch, "flow", "m-ok", 0);
    wait_phase(w.dir, "m-ok", "COMPLETED", 20000);
    support_expect_metric(orch_metrics_port, "choreo_saga_instances{service=\"orch\","
                          "definition=\"flow\",phase=\"RUNNING\"}", 1, 10000);
    down(&w);
    orch_metrics_port = 0;
}

/* ---- a start that fails --------------------------------------------------- */

/* What tx holds of saga so far, read on tx's own connection: "instances
 * transitions outbox rows". */
static void trace_in(choreo_tx *tx, const char *saga, char *out, size_t cap)
{
    static const char *const sql[] = {
        "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga = ?1",
        "SELECT COUNT(*) FROM choreo_saga_transitions WHERE saga = ?1",
        "SELECT COUNT(*) FROM choreo_outbox WHERE subject LIKE '%.' || ?1",
    };
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *q;
        cr_assert_eq(sqlite3_prepare_v2(choreo_tx_db(tx), sql[i], -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_text(q, 1, saga, -1, SQLITE_STATIC);
        cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
        n += (size_t)snprintf(out + n, cap - n, "%s%d", i ? " " : "", sqlite3_column_int(q, 0));
        sqlite3_finalize(q);
    }
}

Test(orchestration, a_start_that_fails_leaves_nothing_and_its_correction_runs, .timeout = 60)
{
    struct world w;
    up(&w, 0);
    choreo_tx *tx;
    char held[32];
    cr_assert_eq(choreo_service_begin(w.orch, &tx), CHOREO_OK, "%s", choreo_last_error());
    /* Data that is not a map fails at the first command, after the
     * instance's row was written: the row must go with the failure. */
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", "s-again", "\x01", 1), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "starting saga flow, instance s-again: ") &&
              strstr(choreo_last_error(), "data of DoA must be one msgpack map"), "%s",
              choreo_last_error());
    trace_in(tx, "s-again", held, sizeof held);
    cr_assert_str_eq(held, "0 0 0");
    /* The transaction goes on: the corrected start, and the program's own
     * write after it. */
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", "s-again", "\x81\xa1n\x00", 4), CHOREO_OK,
                 "%s", choreo_last_error());
    trace_in(tx, "s-again", held, sizeof held);
    cr_assert_str_eq(held, "1 1 1");
    cr_assert_eq(sqlite3_exec(choreo_tx_db(tx), "INSERT INTO outcome(saga) VALUES ('mine')",
                              NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    wait_phase(w.dir, "s-again", "COMPLETED", 20000);
    char work[512], path[1024];
    work_of(w.dir, "s-again", work, sizeof work);
    cr_assert_str_eq(work, "a action, b action, c action");
    path_of(w.dir, "s-again", path, sizeof path);
    cr_assert_str_eq(path, "STARTED (started); A (a done); B (b done); COMPLETED (c done)");
    cr_assert_eq(support_count(w.dir, "orch", "SELECT COUNT(*) FROM outcome WHERE saga = 'mine'"),
                 1);
    down(&w);
}

/* Data (a map of one string) that fits svc's max_event_bytes in an event
 * of saga's of type fits but not in one of type not, and its length: found
 * by emitting both in transactions that are rolled back. */
static void between(choreo_service *svc, const char *saga, const char *fits, const char *not,
                    uint8_t *data, size_t *len)
{
    for (size_t n = 0; n < 512; n++) {
        data[0] = 0x81, data[1] = 0xa1, data[2] = 'p', data[3] = 0xda;
        data[4] = (uint8_t)(n >> 8), data[5] = (uint8_t)n;
        memset(data + 6, 'p', n);
        choreo_tx *tx;
        cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
        bool a = choreo_tx_emit(tx, fits, 1, saga, data, n + 6, NULL) == CHOREO_OK;
        bool b = choreo_tx_emit(tx, not, 1, saga, data, n + 6, NULL) == CHOREO_OK;
        choreo_tx_rollback(tx);
        if (a && !b) {
            *len = n + 6;
            return;
        }
    }
    cr_assert(false, "no data fits %s and not %s", fits, not);
}

/* Records each try it gets, and the size of its data, in its table got. */
static choreo_result on_try(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)user;
    char sql[200];
    snprintf(sql, sizeof sql, "INSERT INTO got(type, saga, len) VALUES ('%s', '%s', %zu)",
             ev->type, ev->saga, ev->data_len);
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

Test(orchestration, a_tcc_start_whose_second_try_fails_leaves_the_first_unsent, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "grp", "CREATE TABLE got(type TEXT, saga TEXT, len INT)");
    choreo_config *cfg = support_config(dir, "grp", server.url, "max_event_bytes=512", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    char long_try[CHOREO_TYPE_MAX + 1];
    snprintf(long_try, sizeof long_try, "Do%0*d", CHOREO_TYPE_MAX - 2, 0);
    choreo_saga_def *d;
    cr_assert_eq(choreo_service_saga(svc, "grp", "STARTED", NULL, NULL, &d), CHOREO_OK);
    char g[2][7][32];
    choreo_saga_step_spec group[2] = { spec("x", 60000, g[0]), spec("y", 60000, g[1]) };
    group[1].command = long_try;
    for (int i = 0; i < 2; i++) {
        group[i].confirm = g[i][5];
        group[i].confirmed = g[i][6];
        cr_assert_eq(choreo_service_on(svc, group[i].command, on_try, NULL), CHOREO_OK);
    }
    cr_assert_eq(choreo_saga_tcc(d, "HELD", group, 2), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    /* A row published first, so that the relay's cursor is past 0 and it
     * publishes the copies it is handed at a commit without reading them
     * back. */
    support_emit(svc, "Warmup", "w-1", 0, NULL);
    cr_assert(support_wait_count(dir, "grp", "SELECT COUNT(*) FROM choreo_outbox WHERE"
                                             " published_at IS NOT NULL", 1, 10000),
              "the first row was never published");
    uint8_t data[520];
    size_t len = 0;
    between(svc, "g-1", "DoX", long_try, data, &len);
    choreo_tx *tx;
    char held[32];
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    /* x's try and its row go out, then y's is too large. */
    cr_assert_eq(choreo_tx_saga_start(tx, "grp", "g-1", data, len), CHOREO_ETOOBIG);
    cr_assert(strstr(choreo_last_error(), "starting saga grp, instance g-1: ") &&
              strstr(choreo_last_error(), long_try), "%s", choreo_last_error());
    trace_in(tx, "g-1", held, sizeof held);
    cr_assert_str_eq(held, "0 0 0");
    cr_assert_eq(choreo_tx_saga_start(tx, "grp", "g-1", "\x80", 1), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    /* Each try is sent once, with the corrected start's data: the failed
     * start's x went with its row, and from what the relay is handed at
     * the commit. */
    cr_assert(support_wait_count(dir, "grp", "SELECT COUNT(*) FROM got", 2, 10000),
              "the tries never came");
    cr_assert(support_wait_count(dir, "grp", "SELECT COUNT(*) FROM choreo_outbox WHERE"
                                             " published_at IS NULL AND subject NOT LIKE"
                                             " '%.ChoreoSagaTimeout.%'", 0, 10000),
              "the outbox was not drained");
    support_sleep_ms(500);
    cr_assert_eq(support_count(dir, "grp", "SELECT COUNT(*) FROM got WHERE type = 'DoX'"), 1);
    cr_assert_eq(support_count(dir, "grp", "SELECT COUNT(*) FROM got WHERE len = 1"), 2,
                 "a try carried the failed start's data");
    cr_assert_eq(support_count(dir, "grp", "SELECT COUNT(*) FROM choreo_saga_instances WHERE"
                                           " saga = 'g-1' AND phase = 'RUNNING'"), 1);
    cr_assert_eq(support_count(dir, "grp", "SELECT COUNT(*) FROM choreo_saga_transitions"), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* ---- types a definition cannot use ---------------------------------------- */

struct clash {
    const char *what;
    choreo_saga_step_spec first; /* added first when it has a name */
    choreo_saga_step_spec step;  /* refused */
    bool tcc;                    /* step and a good x as a TCC group */
    const char *says;
};

#define PAY(command_, success_) { .name = "pay", .command = command_, .success = success_, \
                                  .failure = "PayFailed" }

static const struct clash CLASHES[] = {
    { "a command that is its own success", { 0 }, PAY("DoPay", "DoPay"), false,
      "DoPay is step pay's command and also step pay's success reply" },
    { "a command that is an earlier step's failure", PAY("DoPay", "PayDone"),
      { .name = "ship", .command = "PayFailed", .success = "Shipped" }, false,
      "PayFailed is step ship's command and also step pay's failure reply" },
    { "a compensation that is its own reply", { 0 },
      { .name = "pay", .command = "DoPay", .success = "PayDone", .compensate = "UndoPay",
        .compensated = "UndoPay" }, false,
      "UndoPay is step pay's compensate and also step pay's compensated reply" },
    { "choreo's own timeout as a success", { 0 }, PAY("DoPay", "ChoreoSagaTimeout"), false,
      "success ChoreoSagaTimeout begins with Choreo" },
    { "choreo's own decision as a command", { 0 }, PAY("ChoreoHoldDecided", "PayDone"), false,
      "command ChoreoHoldDecided begins with Choreo" },
    { "a confirm reply that is the other try", { 0 },
      { .name = "pay", .command = "DoPay", .success = "PayDone", .failure = "PayFailed",
        .compensate = "UndoPay", .compensated = "PayUndone", .confirm = "ConfirmPay",
        .confirmed = "DoX" }, true,
      "DoX is step x's command and also step pay's confirmed reply" },
};

Test(orchestration, a_type_that_clashes_or_is_choreos_own_is_refused_naming_it, .timeout = 30)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    choreo_config *cfg = support_config(dir, "def", "nats://127.0.0.1:9", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    for (size_t i = 0; i < sizeof CLASHES / sizeof CLASHES[0]; i++) {
        const struct clash *c = &CLASHES[i];
        char name[16];
        snprintf(name, sizeof name, "def%zu", i);
        choreo_saga_def *d;
        cr_assert_eq(choreo_service_saga(svc, name, "STARTED", NULL, NULL, &d), CHOREO_OK);
        if (c->first.name)
            cr_assert_eq(choreo_saga_step(d, &c->first), CHOREO_OK, "%s: %s", c->what,
                         choreo_last_error());
        char t[7][32];
        choreo_saga_step_spec group[2] = { c->step, spec("x", 0, t) };
        group[1].confirm = t[5];
        group[1].confirmed = t[6];
        choreo_status s = c->tcc ? choreo_saga_tcc(d, "HELD", group, 2)
                                 : choreo_saga_step(d, &c->step);
        cr_assert_eq(s, CHOREO_EINVAL, "%s: %s", c->what, choreo_status_str(s));
        cr_assert(strstr(choreo_last_error(), c->says), "%s: %s", c->what, choreo_last_error());
    }
    /* A refused step took no type: the program may still handle it. */
    cr_assert_eq(choreo_service_on(svc, "DoPay", on_undo, NULL), CHOREO_OK, "%s",
                 choreo_last_error());
    choreo_service_destroy(svc);
}
