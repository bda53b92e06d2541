/* choreoctl sagas, and the orchestrated instance in choreoctl saga, against a
 * real nats-server and real services: an orchestrator ("orch") drives a
 * participant ("part") through the steps a, b and c of the definition
 * "flow". Four instances end up in four places: one completed, one failed
 * and compensated, one stuck compensating (the participant never answers
 * b's compensation), one stuck running (it never answers b). The real
 * choreoctl binary (its path in CHOREOCTL, set by meson) then lists and
 * shows them; python3 parses its JSON. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

/* ---- the participant ------------------------------------------------------ */

/* What the participant does for a saga, from the digits of the data's "n",
 * each naming a step k (a = 1, b = 2, c = 3): ones, step k fails; tens,
 * step k is never answered; thousands, step k's compensation is never
 * answered. */
#define FAIL(k) (k)
#define HOLD(k) (10 * (k))
#define MUTE(k) (1000 * (k))

static int digit(int64_t n, int place)
{
    while (place-- > 0)
        n /= 10;
    return (int)(n % 10);
}

static const char *const STEPS[] = { "a", "b", "c" };

static int step_k(const char *step)
{
    return step[0] - 'a' + 1;
}

/* pattern ("Do%s") with the step's name in capitals. */
static void type_of(char *out, size_t cap, const char *pattern, const char *step)
{
    char up[2] = { (char)(step[0] - 'a' + 'A'), '\0' };
    const char *at = strstr(pattern, "%s");
    cr_assert_not_null(at);
    snprintf(out, cap, "%.*s%s%s", (int)(at - pattern), pattern, up, at + 2);
}

static choreo_result reply(choreo_tx *tx, const char *pattern, const char *step)
{
    char type[32];
    type_of(type, sizeof type, pattern, step);
    return choreo_tx_emit(tx, type, 1, NULL, NULL, 0, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                          : CHOREO_RETRY;
}

static choreo_result on_do(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const char *step = user;
    int64_t n = support_data_n(ev);
    if (digit(n, 0) == step_k(step))
        return reply(tx, "%sFailed", step);
    return digit(n, 1) == step_k(step) ? CHOREO_DONE : reply(tx, "%sDone", step);
}

static choreo_result on_undo(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const char *step = user;
    return digit(support_data_n(ev), 3) == step_k(step) ? CHOREO_DONE
                                                         : reply(tx, "%sUndone", step);
}

static choreo_service *participant(const char *dir, const char *url)
{
    choreo_config *cfg = support_config(dir, "part", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    for (size_t i = 0; i < 3; i++) {
        char type[32];
        type_of(type, sizeof type, "Do%s", STEPS[i]);
        cr_assert_eq(choreo_service_on(svc, type, on_do, (void *)STEPS[i]), CHOREO_OK);
        type_of(type, sizeof type, "Undo%s", STEPS[i]);
        cr_assert_eq(choreo_service_on(svc, type, on_undo, (void *)STEPS[i]), CHOREO_OK);
    }
    return svc;
}

/* ---- the orchestrator ----------------------------------------------------- */

/* "flow": a, b, c in turn, without timeouts; an unanswered compensation is
 * sent again only after ten minutes, so that the stuck instance keeps its
 * transitions while the test runs. */
static choreo_service *orchestrator(const char *dir, const char *url)
{
    choreo_config *cfg = support_config(dir, "orch", url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    static char types[3][5][32];
    static const char *const patterns[5] = { "Do%s", "%sDone", "%sFailed", "Undo%s",
                                             "%sUndone" };
    choreo_saga_def *flow;
    cr_assert_eq(choreo_service_saga(svc, "flow", "STARTED", NULL, NULL, &flow), CHOREO_OK);
    for (int i = 0; i < 3; i++) {
        for (int p = 0; p < 5; p++)
            type_of(types[i][p], 32, patterns[p], STEPS[i]);
        choreo_saga_step_spec s = { .name = STEPS[i], .command = types[i][0],
                                    .success = types[i][1], .failure = types[i][2],
                                    .compensate = types[i][3], .compensated = types[i][4],
                                    .retry_ms = 600000 };
        cr_assert_eq(choreo_saga_step(flow, &s), CHOREO_OK, "%s", choreo_last_error());
    }
    return svc;
}

/* Starts an instance of "flow" with data {"n": n} in a command of svc. */
static void start(choreo_service *svc, const char *saga, int64_t n)
{
    uint8_t buf[32];
    choreo_mp_writer w = { .buf = buf, .cap = sizeof buf, .max = sizeof buf };
    choreo_mp_write_map(&w, 1);
    choreo_mp_write_cstr(&w, "n");
    choreo_mp_write_int(&w, n);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_tx_saga_start(tx, "flow", saga, w.buf, w.len), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
}

static void wait_steps(const char *dir, const char *saga, const char *steps)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             "SELECT COUNT(*) FROM choreo_saga_instances WHERE saga = '%s' AND steps = '%s'",
             saga, steps);
    cr_assert(support_wait_count(dir, "orch", sql, 1, 20000), "saga %s never reached %s", saga,
              steps);
}

struct world {
    char dir[256];
    natsd server;
    choreo_service *part, *orch;
    char orch_db[300], part_db[300];
};

/* Runs the four instances to where they stay, the newest last. */
static void up(struct world *w)
{
    support_tmpdir(w->dir, sizeof w->dir);
    support_server(&w->server, w->dir, NULL, NULL);
    snprintf(w->orch_db, sizeof w->orch_db, "%s/orch.db", w->dir);
    snprintf(w->part_db, sizeof w->part_db, "%s/part.db", w->dir);
    w->part = participant(w->dir, w->server.url);
    w->orch = orchestrator(w->dir, w->server.url);
    cr_assert_eq(choreo_service_start(w->part), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(w->orch), CHOREO_OK, "%s", choreo_last_error());
    const struct { const char *saga; int64_t n; const char *steps; } runs[] = {
        { "s-ok", 0, "DDD" },
        { "s-fail", FAIL(3), "CCF" },
        { "s-comp", FAIL(3) + MUTE(2), "DXF" },
        { "s-wait", HOLD(2), "DP-" },
    };
    for (size_t i = 0; i < 4; i++) {
        start(w->orch, runs[i].saga, runs[i].n);
        wait_steps(w->dir, runs[i].saga, runs[i].steps);
        support_sleep_ms(5); /* distinct start times, for the order */
    }
    /* Every command is out, so that the stream has the whole timeline; the
     * compensations' resends wait in the outbox for ten minutes. */
    cr_assert(support_wait_count(w->dir, "orch", "SELECT COUNT(*) FROM choreo_outbox WHERE "
                                 "published_at IS NULL AND subject NOT LIKE "
                                 "'%.ChoreoSagaTimeout.%'", 0, 20000));
}

static void down(struct world *w)
{
    choreo_service_destroy(w->orch);
    choreo_service_destroy(w->part);
    natsd_stop(&w->server, SIGTERM);
}

/* ---- running choreoctl and python3 ---------------------------------------- */

struct ctl_run {
    int status;
    char out[65536];
    char err[8192];
};

/* Starts argv (NULL-terminated, argv[0] found on PATH) with stdout and
 * stderr in files, without the test's CHOREO_* variables. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    static char *envp[256];
    support_env_without_choreo(envp, 256);
    support_write_file(out_path, "");
    support_write_file(err_path, "");
    pid_t pid = support_fork();
    if (pid == 0) {
        extern char **environ;
        int out = open(out_path, O_WRONLY);
        int err = open(err_path, O_WRONLY);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(126);
        environ = envp;
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* choreoctl with the arguments that follow (NULL-ended). */
static void ctl(struct ctl_run *r, const char *dir, ...)
{
    const char *bin = getenv("CHOREOCTL");
    cr_assert(bin && *bin, "CHOREOCTL is not set: run this test through meson test");
    char *argv[32] = { (char *)bin };
    int argc = 1;
    va_list ap;
    va_start(ap, dir);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/ctl.out", dir);
    snprintf(err, sizeof err, "%s/ctl.err", dir);
    r->status = support_reap(spawn(argv, out, err), 60000);
    support_slurp(out, r->out, sizeof r->out);
    support_slurp(err, r->err, sizeof r->err);
    cr_assert_neq(r->status, -1, "choreoctl died or hung; stderr: %s", r->err);
}

/* Runs python3 -c script FILE ARGS... on text written to dir/py.in; true
 * when it exited 0, with its stderr in err. */
static bool python(const char *dir, const char *text, char *err, size_t cap,
                   const char *script, ...)
{
    char in[600], out[600], err_path[600];
    snprintf(in, sizeof in, "%s/py.in", dir);
    snprintf(out, sizeof out, "%s/py.out", dir);
    snprintf(err_path, sizeof err_path, "%s/py.err", dir);
    support_write_file(in, text);
    char *argv[16] = { "python3", "-c", (char *)script, in };
    int argc = 4;
    va_list ap;
    va_start(ap, script);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 15;)
        argv[argc++] = a;
    va_end(ap);
    int status = support_reap(spawn(argv, out, err_path), 60000);
    support_slurp(err_path, err, cap);
    return status == 0;
}

/* ---- sagas ---------------------------------------------------------------- */

/* Where each instance stays: saga, definition, state, phase, position,
 * steps, failed step, transitions. The script's arguments are the sagas
 * the list must hold, in order. */
#define EXPECTED                                                                               \
    "want = {\n"                                                                               \
    "  's-wait': ('flow', 'A', 'RUNNING', 'BDone of b', 'DP-', None, 2),\n"                    \
    "  's-comp': ('flow', 'COMPENSATING', 'COMPENSATING', 'BUndone of b', 'DXF', 'c', 4),\n"   \
    "  's-fail': ('flow', 'FAILED', 'FAILED', None, 'CCF', 'c', 6),\n"                         \
    "  's-ok': ('flow', 'COMPLETED', 'COMPLETED', None, 'DDD', None, 4),\n"                    \
    "}\n"

static const char list_check[] =
    "import datetime, json, sys\n" EXPECTED
    "d = json.load(open(sys.argv[1]))\n"
    "assert [e['saga'] for e in d] == sys.argv[2:], [e['saga'] for e in d]\n"
    "for e in d:\n"
    "    got = (e['definition'], e['state'], e['phase'], e['position'], e['steps'],"
    " e['failed_step'], e['transitions'])\n"
    "    assert got == want[e['saga']], (e['saga'], got)\n"
    "    for k in ('started_at', 'updated_at'):\n"
    "        ms = e[k + '_ms']\n"
    "        t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)\n"
    "        assert e[k] == t.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000), e\n"
    "    assert 0 < e['started_at_ms'] <= e['updated_at_ms'], e\n"
    "starts = [e['started_at_ms'] for e in d]\n"
    "assert starts == sorted(starts, reverse=True), starts\n";

/* The table: one row per instance in order, each cell as it should be. */
static const char table_check[] =
    "import re, sys\n" EXPECTED
    "lines = open(sys.argv[1]).read().split('\\n')\n"
    "assert lines[0].split() == ['SAGA', 'DEFINITION', 'STATE', 'PHASE', 'STEPS', 'FAILED',"
    " 'STEP', 'STARTED', '(UTC)', 'UPDATED', '(UTC)', 'TRANSITIONS', 'WAITING', 'FOR'],"
    " lines[0]\n"
    "iso = r'\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'\n"
    "sagas, legend = sys.argv[2:-1], sys.argv[-1]\n"
    "for line, saga in zip(lines[1:], sagas):\n"
    "    c = line.split()\n"
    "    d, st, ph, pos, steps, failed, n = want[saga]\n"
    "    assert c[:6] == [saga, d, st, ph, steps, failed or '-'], (saga, c)\n"
    "    assert re.fullmatch(iso, c[6]) and re.fullmatch(iso, c[7]), c\n"
    "    assert c[8] == str(n) and ' '.join(c[9:]) == (pos or '-'), (saga, c)\n"
    "n = len(sagas)\n"
    "assert lines[n + 1:] == ['', legend, ''], lines[n + 1:]\n";

Test(ctl_sagas, sagas_lists_the_instances_newest_first_and_filters_them, .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run r;
    char err[4096];
    ctl(&r, w.dir, "--db", w.orch_db, "sagas", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(python(w.dir, r.out, err, sizeof err, list_check, "s-wait", "s-comp", "s-fail",
                     "s-ok", NULL), "%s\n%s", err, r.out);
    cr_assert_str_eq(r.err, "");

    /* A state or a phase; several instances may share neither. */
    static const struct { const char *state; const char *sagas[2]; } filters[] = {
        { "COMPENSATING", { "s-comp" } }, { "RUNNING", { "s-wait" } },
        { "FAILED", { "s-fail" } },       { "COMPLETED", { "s-ok" } },
        { "A", { "s-wait" } },            { "B", { NULL } },
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        ctl(&r, w.dir, "--db", w.orch_db, "sagas", "--state", filters[i].state, "--json", NULL);
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert(python(w.dir, r.out, err, sizeof err, list_check, filters[i].sagas[0],
                         filters[i].sagas[1], NULL), "--state %s: %s\n%s", filters[i].state,
                  err, r.out);
    }
    ctl(&r, w.dir, "--db", w.orch_db, "sagas", "--state=B", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char want[600];
    snprintf(want, sizeof want, "no orchestrated sagas in %s with state or phase B\n", w.orch_db);
    cr_assert_str_eq(r.out, want);

    /* The newest two, and a word on stderr that there are more. */
    ctl(&r, w.dir, "--db", w.orch_db, "sagas", "--json", "--limit", "2", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(python(w.dir, r.out, err, sizeof err, list_check, "s-wait", "s-comp", NULL), "%s",
              err);
    snprintf(want, sizeof want, "choreoctl: sagas: %s holds more than 2 instances; only the "
             "newest are shown (raise --limit)\n", w.orch_db);
    cr_assert_str_eq(r.err, want);

    ctl(&r, w.dir, "--db", w.orch_db, "sagas", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(python(w.dir, r.out, err, sizeof err, table_check, "s-wait", "s-comp", "s-fail",
                     "s-ok",
                     "STEPS, one letter per step in the definition's order: - not started, "
                     "P command sent, D done, F failed, X compensation sent, C compensated",
                     NULL),
              "%s\n%s", err, r.out);
    ctl(&r, w.dir, "--db", w.orch_db, "sagas", "--state", "COMPENSATING", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(python(w.dir, r.out, err, sizeof err, table_check, "s-comp",
                     "STEPS, one letter per step in the definition's order: D done, "
                     "F failed, X compensation sent", NULL),
              "%s\n%s", err, r.out);

    /* The participant orchestrates nothing. */
    ctl(&r, w.dir, "--db", w.part_db, "sagas", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof want, "no orchestrated sagas in %s\n", w.part_db);
    cr_assert_str_eq(r.out, want);
    ctl(&r, w.dir, "--db", w.part_db, "sagas", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "[]\n");
    down(&w);
}

/* ---- saga ------------------------------------------------------------------ */

/* The line of text that starts with prefix (after spaces), copied into line. */
static bool line_starting(const char *text, const char *prefix, char *line, size_t cap)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        const char *s = p;
        while (*s == ' ')
            s++;
        if (strncmp(s, prefix, strlen(prefix)) == 0) {
            const char *end = strchr(p, '\n');
            snprintf(line, cap, "%.*s", (int)(end ? end - p : (long)strlen(p)), p);
            return true;
        }
    }
    return false;
}

/* The event id of the saga's transition to to, from orch's table. */
static void transition_event(const struct world *w, const char *saga, const char *to,
                             char id[CHOREO_ID_SIZE])
{
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    cr_assert_eq(sqlite3_open_v2(w->orch_db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "SELECT event_id FROM choreo_saga_transitions WHERE "
                                       "saga = ?1 AND to_state = ?2", -1, &q, NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, saga, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, to, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    snprintf(id, CHOREO_ID_SIZE, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static const char saga_check[] =
    "import json, sys\n"
    "d = json.load(open(sys.argv[1]))\n"
    "o = d['orchestration']\n"
    "assert (o['service'], o['db'], o['saga'], o['definition']) =="
    " ('orch', sys.argv[2], 's-fail', 'flow'), o\n"
    "assert (o['state'], o['phase'], o['position'], o['steps'], o['failed_step']) =="
    " ('FAILED', 'FAILED', None, 'CCF', 'c'), o\n"
    "tr = o['transitions']\n"
    "got = [(t['from'], t['to'], t['event_type'], t['note']) for t in tr]\n"
    "assert got == [(None, 'STARTED', None, 'started'), ('STARTED', 'A', 'ADone', 'a done'),"
    " ('A', 'B', 'BDone', 'b done'),"
    " ('B', 'COMPENSATING', 'CFailed', 'c failed: compensating'),"
    " ('COMPENSATING', 'COMPENSATING', 'BUndone', 'b compensated'),"
    " ('COMPENSATING', 'FAILED', 'AUndone', 'a compensated')], got\n"
    "assert tr[0]['event_id'] is None\n"
    "ids = {e['type']: e['id'] for e in d['events']}\n"
    "for t in tr[1:]:\n"
    "    assert t['event_id'] == ids[t['event_type']], (t, ids)\n"
    "    assert t['offset_ms'] >= 0\n"
    "offs = [t['offset_ms'] for t in tr]\n"
    "assert offs == sorted(offs), offs\n";

Test(ctl_sagas, saga_shows_where_an_orchestrated_saga_stands, .timeout = 120)
{
    struct world w;
    up(&w);
    struct ctl_run r;
    char line[1024], want[1024], id[CHOREO_ID_SIZE], err[4096];

    /* Waiting: what for, the steps, and both transitions. */
    ctl(&r, w.dir, "--nats-url", w.server.url, "saga", "s-wait", "--db", w.orch_db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof want, "orchestrated by orch (definition flow, %s): state A, phase "
             "RUNNING, waiting for BDone of b", w.orch_db);
    cr_assert(line_starting(r.out, "orchestrated by", line, sizeof line), "%s", r.out);
    cr_assert_str_eq(line, want);
    cr_assert(line_starting(r.out, "steps", line, sizeof line), "%s", r.out);
    cr_assert_str_eq(line, "steps  DP-  (one letter per step in the definition's order: - not "
                           "started, P command sent, D done)");
    const char *block = strstr(r.out, "\ntransitions:\n");
    cr_assert(block, "%s", r.out);
    block += strlen("\ntransitions:\n");
    /* The start may be a millisecond before the first command's emit time. */
    const char *second = strchr(block, '\n');
    cr_assert(second, "%s", block);
    snprintf(line, sizeof line, "%.*s", (int)(second - block), block);
    cr_assert(strstr(line, " ms  -> STARTED ") && strstr(line, "  started") &&
                  !strstr(line, "ADone"), "%s", line);
    transition_event(&w, "s-wait", "A", id);
    snprintf(want, sizeof want, " ms  STARTED -> A  ADone %s  a done\n", id);
    cr_assert(strstr(second, want), "%s", block);
    size_t lines = 0;
    for (const char *p = block; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 2, "two transitions: %s", block);

    /* Ended: how, and every transition in order. */
    ctl(&r, w.dir, "--nats-url", w.server.url, "saga", "s-fail", "--db", w.orch_db, "--db",
        w.part_db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    snprintf(want, sizeof want, "orchestrated by orch (definition flow, %s): state FAILED, phase "
             "FAILED, failed step c, ended +", w.orch_db);
    cr_assert(line_starting(r.out, "orchestrated by", line, sizeof line), "%s", r.out);
    cr_assert(strncmp(line, want, strlen(want)) == 0 && strstr(line, " ms") &&
                  !strstr(line, "waiting"), "%s", line);
    const char *order[] = { "-> STARTED ", "STARTED -> A ", "ADone", "A -> B ", "BDone",
                            "B -> COMPENSATING ", "CFailed", "COMPENSATING -> COMPENSATING ",
                            "BUndone", "COMPENSATING -> FAILED ", "AUndone" };
    const char *at = strstr(r.out, "\ntransitions:\n");
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        cr_assert(at && (at = strstr(at, order[i])) != NULL, "%s missing or out of order: %s",
                  order[i], r.out);
    }
    cr_assert(strstr(r.out, "  c failed: compensating\n") &&
                  strstr(r.out, "  a compensated\n"), "%s", r.out);

    ctl(&r, w.dir, "--nats-url", w.server.url, "saga", "s-fail", "--dir", w.dir, "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(python(w.dir, r.out, err, sizeof err, saga_check, w.orch_db, NULL), "%s\n%s", err,
              r.out);

    /* Without the orchestrator's database there is nothing to show. */
    ctl(&r, w.dir, "--nats-url", w.server.url, "saga", "s-wait", "--db", w.part_db, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "DoB") && !strstr(r.out, "orchestrated by") &&
                  !strstr(r.out, "transitions:"), "%s", r.out);
    ctl(&r, w.dir, "--nats-url", w.server.url, "saga", "s-wait", "--db", w.part_db, "--json",
        NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "\n  \"orchestration\": null\n}"), "%s", r.out);
    down(&w);
}

/* ---- usage ------------------------------------------------------------------ */

Test(ctl_sagas, wrong_usage_exits_2_naming_the_problem, .timeout = 60)
{
    char dir[256], db[300];
    support_tmpdir(dir, sizeof dir);
    /* A service database with no instances: the orchestrator's tables are
     * there, from the migration. */
    choreo_config *cfg = support_config(dir, "orch", "nats://127.0.0.1:1", NULL);
    choreo_admin *adm = NULL;
    cr_assert_eq(choreo_admin_open(&adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_admin_close(adm);
    choreo_config_destroy(cfg);
    snprintf(db, sizeof db, "%s/orch.db", dir);
    static const struct {
        const char *args[4];
        int status;
        const char *says;
    } cases[] = {
        { { "sagas", "--bogus" }, 2, "--bogus" },
        { { "sagas", "--limit", "0" }, 2, "invalid --limit \"0\"" },
        { { "sagas", "--limit=x" }, 2, "invalid --limit \"x\"" },
        { { "sagas", "--limit", "-3" }, 2, "invalid --limit \"-3\"" },
        { { "sagas", "--limit" }, 2, "--limit needs a value" },
        { { "sagas", "--state", "a b" }, 2, "invalid --state \"a b\"" },
        { { "sagas", "--state" }, 2, "--state needs a value" },
        { { "sagas", "s-1" }, 2, "unexpected argument \"s-1\"" },
        { { "sagas", "--db", "/nonexistent.db" }, 2, "one --db" },
    };
    struct ctl_run r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *a = cases[i].args;
        ctl(&r, dir, "--db", db, a[0], a[1], a[2], a[3], NULL);
        cr_assert_eq(r.status, cases[i].status, "case %zu (%s): exit %d, stderr: %s", i,
                     a[1] ? a[1] : "", r.status, r.err);
        cr_assert(strstr(r.err, cases[i].says), "case %zu: %s", i, r.err);
        cr_assert(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "case %zu: not one line: %s",
                  i, r.err);
        cr_assert_str_eq(r.out, "", "case %zu", i);
    }
    ctl(&r, dir, "sagas", NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "no database given"), "%s", r.err);
    ctl(&r, dir, "--db", "/nonexistent.db", "sagas", NULL);
    cr_assert_eq(r.status, 1);
    cr_assert(strstr(r.err, "cannot open database /nonexistent.db"), "%s", r.err);
    ctl(&r, dir, "--db", db, "sagas", "--json", NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "[]\n");
    ctl(&r, dir, "sagas", "--help", NULL);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "sagas [--state S] [--limit N] [--json]") &&
                  strstr(r.out, "Exit status"), "%s", r.out);
    ctl(&r, dir, "--help", NULL);
    cr_assert(strstr(r.out, "sagas [--state S]"), "%s", r.out);
}
