/* shop-chaos: the shop demo under fire (tools/chaos runs it). While orders
 * are placed at a steady pace, a chaos loop SIGKILLs random services at
 * random intervals and restarts them after a random delay, restarts
 * nats-server now and then (SIGKILL or SIGTERM), and the services run with
 * crash points on. After the load and a quiet period it checks the
 * invariants and counts, from the services' audit trails (audit=on), every
 * event some consumer never applied (lost) and every event a consumer
 * applied twice (duplicated). --naive runs the same services with
 * delivery=naive, the dual write choreo replaces, for comparison. */
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <sqlite3.h>

#include "shop_check.h"
#include "shop_client.h"
#include "shop_setup.h"
#include "shop_svc.h"
#include "shop_world.h"
#include "supervisor.h"

static const char USAGE[] =
    "usage: shop-chaos [--sagas N] [--json] [--naive] [options]\n"
    "\n"
    "Runs the shop demo while killing its services and its broker, with crash points\n"
    "on, then proves from the audit trails that no event was lost or applied twice and\n"
    "that every invariant holds. Exit status 0 when so (with --naive: when the run\n"
    "completed; its losses are the point of it), 1 otherwise, 2 for bad flags.\n"
    "\n"
    "  --sagas N               orders to place [2000]\n"
    "  --duration-s D          spread the orders over D seconds of chaos [40]\n"
    "  --kill-interval-ms K    mean time between service kills [500]\n"
    "  --restart-delay-ms R    a killed service restarts after 0..R ms [800]\n"
    "  --broker-interval-ms B  mean time between nats-server restarts [10000]\n"
    "  --crash-prob P          probability of each crash point per pass [0.0005]\n"
    "  --seed S                seed of the order mix and of the chaos [1]\n"
    "  --naive                 services use delivery=naive (no outbox, no inbox)\n"
    "  --quiet-s Q             after the load, wait at most Q s for every saga [120]\n"
    "  --deadline-ms MS        saga deadline [8000]\n"
    "  --json                  print one JSON object\n"
    "  --dir DIR               work directory (kept) instead of a fresh one\n"
    "  --build-dir DIR         where the services were built [this program's build]\n"
    "  --log-level L           log level of the services [warn]\n";

static volatile sig_atomic_t interrupted;
static atomic_bool stop_load;

static void on_signal(int sig)
{
    interrupted = sig;
    atomic_store(&stop_load, true);
}

struct opts {
    long sagas;
    int64_t duration_s, kill_ms, restart_ms, broker_ms, quiet_s, deadline_ms;
    double crash_prob;
    uint64_t seed;
    bool json, naive;
    const char *dir, *build_dir, *log_level;
};

struct tally {
    int kills, broker_restarts, crash_exits, unexpected_exits;
    long crashpoints_fired;
    long lost_events, lost_sagas, duplicated_events, duplicated_sagas, parked, pending;
    long unknown_orders; /* placed (the client got an id) but not in the order database */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* The chaos loop's own generator (splitmix64), seeded from --seed. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = (rng_state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform in [mean/2, 3*mean/2]. */
static int64_t around(int64_t mean)
{
    return mean / 2 + (int64_t)(rnd() % (uint64_t)(mean + 1));
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        } else if (strcmp(a, "--naive") == 0) {
            o->naive = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "shop-chaos: %s needs a value, or is unknown (see --help)\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--sagas") == 0) {
            if (!shop_parse_i64(a, v, 1, 1000000, &n))
                return 2;
            o->sagas = (long)n;
        } else if (strcmp(a, "--duration-s") == 0) {
            if (!shop_parse_i64(a, v, 1, 86400, &o->duration_s))
                return 2;
        } else if (strcmp(a, "--kill-interval-ms") == 0) {
            if (!shop_parse_i64(a, v, 10, 3600000, &o->kill_ms))
                return 2;
        } else if (strcmp(a, "--restart-delay-ms") == 0) {
            if (!shop_parse_i64(a, v, 0, 600000, &o->restart_ms))
                return 2;
        } else if (strcmp(a, "--broker-interval-ms") == 0) {
            if (!shop_parse_i64(a, v, 100, 3600000, &o->broker_ms))
                return 2;
        } else if (strcmp(a, "--quiet-s") == 0) {
            if (!shop_parse_i64(a, v, 1, 86400, &o->quiet_s))
                return 2;
        } else if (strcmp(a, "--deadline-ms") == 0) {
            if (!shop_parse_i64(a, v, 100, 3600000, &o->deadline_ms))
                return 2;
        } else if (strcmp(a, "--seed") == 0) {
            if (!shop_parse_i64(a, v, 0, INT64_MAX, &n))
                return 2;
            o->seed = (uint64_t)n;
        } else if (strcmp(a, "--crash-prob") == 0) {
            char *end;
            o->crash_prob = strtod(v, &end);
            if (*end || o->crash_prob < 0 || o->crash_prob > 1) {
                fprintf(stderr, "shop-chaos: --crash-prob takes a probability from 0 to 1, "
                        "not \"%s\"\n", v);
                return 2;
            }
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = v;
        } else if (strcmp(a, "--build-dir") == 0) {
            o->build_dir = v;
        } else if (strcmp(a, "--log-level") == 0) {
            o->log_level = v;
        } else {
            fprintf(stderr, "shop-chaos: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    return 0;
}

/* ---- the load, paced over the chaos period ---- */

struct pacer {
    int64_t start_ms, duration_ms;
    long n;
};

/* Orders "settled" so far for the load's window: the share of the run that
 * has elapsed, so that orders go out at a steady rate. */
static long paced(void *user)
{
    const struct pacer *p = user;
    int64_t t = now_ms() - p->start_ms;
    if (t >= p->duration_ms)
        return p->n;
    return (long)((double)p->n * (double)t / (double)p->duration_ms);
}

struct load_job {
    shop_world *w;
    shop_client *c;
    shop_load_opts o;
    shop_load_stats st;
    atomic_bool done;
};

static void *load_main(void *arg)
{
    struct load_job *j = arg;
    if (shop_world_load(j->w, j->c, &j->o, &j->st) != CHOREO_OK)
        fprintf(stderr, "shop-chaos: the load generator failed\n");
    atomic_store(&j->done, true);
    return NULL;
}

/* ---- chaos ---- */

/* Starts service i; a crash point may fire while it starts (it does work
 * right away: the relay publishes, fetches begin), which counts as a crash
 * and is followed by another start. */
static int start_service(sup *s, int i, struct tally *t)
{
    for (int attempt = 0; attempt < 50 && !interrupted; attempt++) {
        if (sup_start_service(s, i) == 0)
            return 0;
        int st = sup_service_exit_status(s, i);
        if (sup_service_running(s, i) || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
            return -1;
        t->crash_exits++;
    }
    return -1;
}

/* Restarts services that died on their own: SIGKILL is a crash point (the
 * framework kills itself there), anything else is a real failure. */
static int reap(sup *s, struct tally *t, bool tty)
{
    if (sup_poll(s) == 0)
        return 0;
    for (int i = 0; i < sup_service_count(s); i++) {
        if (sup_service_running(s, i))
            continue;
        int st = sup_service_exit_status(s, i);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            t->crash_exits++;
        } else {
            t->unexpected_exits++;
            fprintf(stderr, "%sshop-chaos: %s exited with status %d (not a crash point); see %s\n",
                    tty ? "\n" : "", sup_service_name(s, i), st, sup_log_path(s, i));
        }
        if (start_service(s, i, t) != 0)
            return -1;
    }
    return 0;
}

static void progress(const struct load_job *j, long n, const struct tally *t, int64_t t0)
{
    fprintf(stderr, "\r  placed %ld/%ld  kills %d  broker restarts %d  crashes %d  %.0f s\033[K",
            atomic_load(&j->st.placed), n, t->kills, t->broker_restarts, t->crash_exits,
            (double)(now_ms() - t0) / 1e3);
}

/* Kills and restarts until the load has placed every order. */
static int chaos(const struct opts *o, sup *s, struct load_job *j, struct tally *t, bool tty)
{
    int64_t t0 = now_ms(), next_kill = t0 + around(o->kill_ms),
            next_broker = t0 + around(o->broker_ms), drawn = 0;
    while (!atomic_load(&j->done)) {
        if (interrupted)
            return -1;
        if (reap(s, t, tty) != 0)
            return -1;
        int64_t now = now_ms();
        if (now >= next_kill) {
            int i = (int)(rnd() % (uint64_t)sup_service_count(s));
            sup_kill_service(s, i, SIGKILL);
            t->kills++;
            sleep_ms(o->restart_ms ? (int64_t)(rnd() % (uint64_t)(o->restart_ms + 1)) : 0);
            if (start_service(s, i, t) != 0)
                return -1;
            next_kill = now_ms() + around(o->kill_ms);
        }
        if (now >= next_broker) {
            int sig = rnd() % 2 ? SIGKILL : SIGTERM;
            sup_stop_broker(s, sig);
            sleep_ms((int64_t)(rnd() % 1000));
            if (sup_start_broker(s) != 0)
                return -1;
            t->broker_restarts++;
            next_broker = now_ms() + around(o->broker_ms);
        }
        if (tty && now - drawn > 200) {
            progress(j, o->sagas, t, t0);
            drawn = now;
        }
        sleep_ms(10);
    }
    return 0;
}

/* ---- after the storm ---- */

static long count_pending(const char *order_db)
{
    sqlite3 *db;
    long n = -1;
    if (sqlite3_open_v2(order_db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        sqlite3_busy_timeout(db, 2000);
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM orders WHERE state = 'PENDING'", -1,
                               &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* Waits (still restarting crashed services) until no saga is pending. */
static bool quiet(const struct opts *o, sup *s, struct tally *t, bool tty)
{
    const char *order_db = sup_db_path(s, 0);
    for (int64_t until = now_ms() + o->quiet_s * 1000; now_ms() < until;) {
        if (interrupted || reap(s, t, tty) != 0)
            return false;
        if (count_pending(order_db) == 0)
            return true;
        sleep_ms(50);
    }
    return false;
}

static long one_number(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    long n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    else
        fprintf(stderr, "shop-chaos: %s: %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return n;
}

/* The audit trails of the four services, read together: an emitted event
 * that a consumer of its type never applied (and did not park) is lost;
 * a (consumer, event) applied more than once is duplicated. */
static int audit(sup *s, const shop_world *w, struct tally *t)
{
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return -1;
    for (int i = 0; i < 4; i++) {
        char *sql = sqlite3_mprintf("ATTACH 'file:%q?mode=ro' AS s%d", sup_db_path(s, i), i);
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "shop-chaos: cannot read %s: %s\n", sup_db_path(s, i), sqlite3_errmsg(db));
            sqlite3_close(db);
            return -1;
        }
    }
    sqlite3_exec(db,
        "CREATE TEMP VIEW emitted AS"
        "  SELECT event_id, type, saga FROM s0.choreo_audit_emitted UNION ALL"
        "  SELECT event_id, type, saga FROM s1.choreo_audit_emitted UNION ALL"
        "  SELECT event_id, type, saga FROM s2.choreo_audit_emitted UNION ALL"
        "  SELECT event_id, type, saga FROM s3.choreo_audit_emitted;"
        "CREATE TEMP TABLE applied AS"
        "  SELECT consumer, type, event_id, saga FROM s0.choreo_audit_applied UNION ALL"
        "  SELECT consumer, type, event_id, saga FROM s1.choreo_audit_applied UNION ALL"
        "  SELECT consumer, type, event_id, saga FROM s2.choreo_audit_applied UNION ALL"
        "  SELECT consumer, type, event_id, saga FROM s3.choreo_audit_applied;"
        "CREATE INDEX temp.applied_key ON applied(event_id, consumer);"
        "CREATE TEMP TABLE dead AS"
        "  SELECT consumer, event_id FROM s0.choreo_dead UNION ALL"
        "  SELECT consumer, event_id FROM s1.choreo_dead UNION ALL"
        "  SELECT consumer, event_id FROM s2.choreo_dead UNION ALL"
        "  SELECT consumer, event_id FROM s3.choreo_dead;"
        "CREATE TEMP TABLE consumers AS SELECT DISTINCT consumer, type FROM applied;"
        "CREATE TEMP TABLE missing AS"
        "  SELECT e.event_id, e.saga, c.consumer FROM emitted e JOIN consumers c ON c.type = e.type"
        "  WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.event_id = e.event_id"
        "                    AND a.consumer = c.consumer)"
        "    AND NOT EXISTS (SELECT 1 FROM dead d WHERE d.event_id = e.event_id"
        "                    AND d.consumer = c.consumer);"
        "CREATE TEMP TABLE doubled AS"
        "  SELECT consumer, event_id, saga FROM applied GROUP BY consumer, event_id"
        "  HAVING COUNT(*) > 1;",
        NULL, NULL, NULL);
    t->lost_events = one_number(db, "SELECT COUNT(*) FROM missing");
    t->lost_sagas = one_number(db, "SELECT COUNT(DISTINCT saga) FROM missing");
    t->duplicated_events = one_number(db, "SELECT COUNT(*) FROM doubled");
    t->duplicated_sagas = one_number(db, "SELECT COUNT(DISTINCT saga) FROM doubled");
    t->parked = one_number(db, "SELECT COUNT(*) FROM dead");
    /* Orders the client was told exist must exist. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM s0.orders WHERE id = ?1", -1, &st, NULL) ==
        SQLITE_OK) {
        for (long i = 0; i < w->norders; i++) {
            if (!w->orders[i].order_id[0])
                continue;
            sqlite3_bind_text(st, 1, w->orders[i].order_id, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) == 0)
                t->unknown_orders++;
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return t->lost_events < 0 || t->duplicated_events < 0 || t->parked < 0 ? -1 : 0;
}

/* Crash points that fired, as the services wrote them in their logs. */
static long crashpoints_in_logs(const sup *s)
{
    long n = 0;
    for (int i = 0; i < sup_service_count(s); i++) {
        FILE *f = fopen(sup_log_path(s, i), "r");
        if (!f)
            continue;
        char line[1024];
        while (fgets(line, sizeof line, f))
            if (strstr(line, "choreo: crash point ") && strstr(line, " fired"))
                n++;
        fclose(f);
    }
    return n;
}

static void print_json(const struct opts *o, const struct load_job *j, const struct tally *t,
                       const shop_check_report *c, bool checked, double wall_s)
{
    printf("{\"mode\": \"%s\", \"sagas\": %ld, \"placed\": %ld, \"failed_requests\": %ld, "
           "\"kills\": %d, \"broker_restarts\": %d, \"crashpoints_fired\": %ld, "
           "\"lost\": %ld, \"lost_events\": %ld, \"pending\": %ld, \"unknown_orders\": %ld, "
           "\"duplicated\": %ld, \"duplicated_events\": %ld, \"parked\": %ld, "
           "\"invariants_ok\": %s, \"violations\": %zu, \"completed\": %lld, "
           "\"cancelled\": %lld, \"unexpected_exits\": %d, \"seed\": %" PRIu64 ", "
           "\"crash_prob\": %g, \"wall_s\": %.1f}\n",
           o->naive ? "naive" : "outbox", o->sagas, atomic_load(&j->st.placed),
           atomic_load(&j->st.failed), t->kills, t->broker_restarts, t->crashpoints_fired,
           t->lost_sagas + t->pending + t->unknown_orders, t->lost_events, t->pending,
           t->unknown_orders, t->duplicated_sagas, t->duplicated_events, t->parked,
           checked && c->ok ? "true" : "false", checked ? c->nviolations : 0,
           checked ? (long long)c->completed : -1LL, checked ? (long long)c->cancelled : -1LL,
           t->unexpected_exits, o->seed, o->crash_prob, wall_s);
}

static void print_text(const struct opts *o, const struct load_job *j, const struct tally *t,
                       const shop_check_report *c, bool checked, double wall_s)
{
    printf("\nchaos (%s delivery): %ld sagas placed of %ld in %.1f s\n",
           o->naive ? "naive" : "outbox", atomic_load(&j->st.placed), o->sagas, wall_s);
    printf("  kills %d, broker restarts %d, crash points fired %ld, unexpected exits %d\n",
           t->kills, t->broker_restarts, t->crashpoints_fired, t->unexpected_exits);
    printf("  lost        %ld sagas (%ld events never applied by a consumer, %ld sagas never "
           "final, %ld orders unknown)\n",
           t->lost_sagas + t->pending + t->unknown_orders, t->lost_events, t->pending,
           t->unknown_orders);
    printf("  duplicated  %ld sagas (%ld events applied twice by the same consumer)\n",
           t->duplicated_sagas, t->duplicated_events);
    printf("  parked      %ld messages\n", t->parked);
    if (checked)
        shop_check_print(c, stdout);
}

static int run(const struct opts *o, sup *s, bool tty)
{
    int64_t t0 = now_ms();
    struct tally t = { 0 };
    if (sup_start_broker(s) != 0)
        return 1;
    for (int i = 0; i < sup_service_count(s); i++)
        if (start_service(s, i, &t) != 0)
            return 1;
    if (!o->json)
        fprintf(stderr, "shop-chaos: %s delivery, nats-server %s, work dir %s\n",
                o->naive ? "naive" : "outbox", sup_url(s), sup_workdir(s));
    shop_client *c = NULL;
    if (shop_client_create(&c, sup_url(s), "choreo") != CHOREO_OK) {
        fprintf(stderr, "shop-chaos: %s\n", shop_client_last_error());
        return 1;
    }
    shop_world w;
    char run_name[48];
    snprintf(run_name, sizeof run_name, "chaos%" PRIu64, o->seed);
    if (shop_world_plan(&w, o->sagas, o->seed, run_name) != CHOREO_OK) {
        shop_client_destroy(c);
        return 1;
    }
    /* Crash points are already on: a service may die while the world is
     * seeded. Seeding is idempotent, so restart what died and seed again. */
    for (int attempt = 1;; attempt++) {
        if (shop_world_seed(&w, c) == CHOREO_OK)
            break;
        if (attempt == 10 || interrupted || reap(s, &t, false) != 0) {
            fprintf(stderr, "shop-chaos: seeding failed: %s\n", shop_client_last_error());
            shop_world_free(&w);
            shop_client_destroy(c);
            return 1;
        }
    }
    struct pacer pace = { now_ms(), o->duration_s * 1000, o->sagas };
    struct load_job j = { .w = &w, .c = c };
    atomic_init(&j.done, false);
    j.o = (shop_load_opts){ .concurrency = 16, .timeout_ms = 2000, .attempts = 100,
                            .stop = &stop_load, .window = 1, .settled = paced,
                            .settled_user = &pace };
    pthread_t th;
    int rc = 1;
    shop_check_report rep;
    bool checked = false;
    if (pthread_create(&th, NULL, load_main, &j) != 0)
        goto out;
    int chaos_rc = chaos(o, s, &j, &t, tty);
    atomic_store(&stop_load, true);
    if (chaos_rc != 0)
        shop_client_cancel(c);
    pthread_join(th, NULL);
    if (tty)
        fprintf(stderr, "\n");
    if (chaos_rc != 0 || interrupted)
        goto out;
    if (!o->json)
        fprintf(stderr, "shop-chaos: load done; quiet period (crash points stay on)\n");
    bool final = quiet(o, s, &t, tty);
    /* Events still on their way (a deadline not yet due, a redelivery after
     * the last kill) are not lost: give them until the longest delay has
     * passed, with the services still running and crash points still on. */
    for (int64_t until = now_ms() + o->deadline_ms + 30000;;) {
        struct tally probe = { 0 };
        if (interrupted || reap(s, &t, tty) != 0 || audit(s, &w, &probe) != 0)
            goto out;
        if ((probe.lost_events == 0 && probe.unknown_orders == 0) || now_ms() > until)
            break;
        sleep_ms(500);
    }
    t.pending = count_pending(sup_db_path(s, 0));
    shop_check_paths p = { sup_db_path(s, 0), sup_db_path(s, 1), sup_db_path(s, 2),
                           sup_db_path(s, 3) };
    char err[512];
    checked = shop_check_wait(&p, true, 20000, &interrupted, &rep, err, sizeof err) == CHOREO_OK;
    if (!checked)
        fprintf(stderr, "shop-chaos: %s\n", err);
    if (audit(s, &w, &t) != 0)
        goto out;
    t.crashpoints_fired = crashpoints_in_logs(s);
    double wall_s = (double)(now_ms() - t0) / 1e3;
    if (o->json)
        print_json(o, &j, &t, &rep, checked, wall_s);
    else
        print_text(o, &j, &t, &rep, checked, wall_s);
    bool clean = final && checked && rep.ok && t.lost_events == 0 && t.pending == 0 &&
                 t.unknown_orders == 0 && t.duplicated_events == 0 && t.unexpected_exits == 0 &&
                 atomic_load(&j.st.failed) == 0;
    rc = clean || (o->naive && checked) ? 0 : 1;
    if (!clean && !o->naive && !o->json)
        printf("\nFAILED: see the logs and databases in %s\n", sup_workdir(s));
out:
    if (checked)
        shop_check_report_free(&rep);
    shop_world_free(&w);
    shop_client_destroy(c);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = { .sagas = 2000, .duration_s = 40, .kill_ms = 500, .restart_ms = 800,
                      .broker_ms = 10000, .quiet_s = 120, .deadline_ms = 8000,
                      .crash_prob = 0.0005, .seed = 1, .log_level = "warn" };
    int p = parse(argc, argv, &o);
    if (p)
        return p == 1 ? 0 : 2;
    rng_state = o.seed * 0x2545F4914F6CDD1DULL + 1;
    shop_catch_signals(on_signal);

    char build[PATH_MAX], bin[SHOP_SERVICES][SHOP_BIN_MAX];
    const char *const *names = shop_service_names;
    shop_build_dir(o.build_dir, build, sizeof build);
    if (shop_service_binaries(build, NULL, bin, "shop-chaos",
                              "build first (tools/chaos does), or pass --build-dir") != 0)
        return 2;
    sup_options so = { .workdir = o.dir, .fresh_name = "choreo-chaos", .log_level = o.log_level,
                       .cancel = &interrupted };
    sup *s = NULL;
    if (sup_create(&s, &so) != 0)
        return 1;
    char deadline[32], points[512], seeds[4][48];
    snprintf(deadline, sizeof deadline, "%" PRId64, o.deadline_ms);
    snprintf(points, sizeof points,
             "CHOREO_CRASHPOINTS=after_commit_before_ack=%g,after_commit_before_publish=%g,"
             "after_publish_before_mark=%g,inside_batch=%g,inside_mark=%g,"
             "between_fetch_and_dispatch=%g",
             o.crash_prob, o.crash_prob, o.crash_prob, o.crash_prob, o.crash_prob, o.crash_prob);
    const char *delivery = o.naive ? "naive" : "outbox";
    /* A short AckWait, so that work a killed process held is redelivered in
     * seconds rather than the default 30. */
    const char *order_args[] = { "--audit", "on", "--delivery", delivery, "--ack-wait-ms", "2000",
                                 "--deadline-ms", deadline, NULL };
    const char *other_args[] = { "--audit", "on", "--delivery", delivery, "--ack-wait-ms", "2000",
                                 NULL };
    for (int i = 0; i < 4; i++) {
        snprintf(seeds[i], sizeof seeds[i], "CHOREO_CRASH_SEED=%" PRIu64, o.seed * 4 + (uint64_t)i);
        const char *env[] = { points, seeds[i], NULL };
        sup_service_spec spec = { .name = names[i], .binary = bin[i],
                                  .args = i == 0 ? order_args : other_args,
                                  .env = o.crash_prob > 0 ? env : NULL, .ping = true };
        if (sup_add_service(s, &spec) != i) {
            sup_destroy(s);
            return 1;
        }
    }
    bool tty = isatty(STDERR_FILENO) && !o.json;
    int rc = run(&o, s, tty);
    sup_stop_all(s);
    if (interrupted) {
        fprintf(stderr, "shop-chaos: interrupted; stopped everything it started\n");
        rc = 130;
    }
    bool keep = rc != 0 && rc != 130;
    if (keep && !o.dir)
        fprintf(stderr, "shop-chaos: logs and databases kept in %s\n", sup_workdir(s));
    sup_keep_workdir(s, keep);
    sup_destroy(s);
    nats_Close();
    return rc;
}
