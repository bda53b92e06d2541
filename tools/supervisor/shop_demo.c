/* shop-demo: the whole shop saga in one command (tools/demo runs it). It
 * starts nats-server and the four services through the supervisor, seeds
 * the world, places N orders in a mix that goes down every path, plays the
 * person who reviews the payments held for review (approving a third,
 * rejecting a third, leaving a third to their deadline), waits until every
 * saga is final, checks the invariants on the four databases, prints a
 * summary (or one JSON object), and stops everything it started, also on
 * Ctrl-C and SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <nats/nats.h>

#include "shop_check.h"
#include "shop_client.h"
#include "shop_review.h"
#include "shop_setup.h"
#include "shop_svc.h"
#include "shop_pgcopy.h"
#include "shop_world.h"
#include "shop_secure.h"
#include "supervisor.h"

static const char USAGE[] =
    "usage: shop-demo [--orders N] [--json] [--keep] [options]\n"
    "\n"
    "Runs the choreo shop demo: nats-server and the order, inventory, payment and\n"
    "points services as separate processes, N orders through the saga, then the\n"
    "invariant check on the four databases. Exit status 0 when every invariant holds.\n"
    "\n"
    "  --orders N          orders to place [1000]\n"
    "  --style STYLE       how the services run the saga: choreography (each reacts\n"
    "                      to the event before it), orchestration (the order service\n"
    "                      sends each step a command) or tcc (points, then stock and\n"
    "                      payment tried at once and confirmed or cancelled together)\n"
    "                      [choreography]\n"
    "  --json              print one JSON object instead of the text summary (also\n"
    "                      when the run fails: \"ok\": false and \"error\")\n"
    "  --keep              leave everything running afterwards, print how to talk\n"
    "                      to it, and stop it all on Ctrl-C or SIGTERM\n"
    "  --secure            TLS to nats-server (a CA and a certificate made with\n"
    "                      openssl), and one NATS user per service with only the\n"
    "                      permissions choreo-gen --nats-permissions gives it\n"
    "                      (choreography only)\n"
    "  --cluster           a three-node NATS cluster instead of one nats-server:\n"
    "                      every service gets the three URLs and stream_replicas=3\n"
    "  --store NAME=STORE  where service NAME keeps its database: sqlite (a file,\n"
    "                      one process) or postgres (a database on a private\n"
    "                      PostgreSQL server the demo starts) [sqlite]\n"
    "  --instances NAME=N  run N instances of service NAME on its one database\n"
    "                      (needs --store NAME=postgres) [1]\n"
    "  --concurrency C     PlaceOrder requests in flight at most [32]\n"
    "  --rate R            offer R orders per second, whether earlier ones finished\n"
    "                      or not (open loop: not with --window), and report\n"
    "                      whether that rate was sustained [off]\n"
    "  --window W          sagas in flight at most (placed, not yet final; orders\n"
    "                      held for review do not count); 0 = no limit [200]\n"
    "  --seed S            seed of the order mix [1]\n"
    "  --deadline-ms MS    saga deadline of the order service; with orchestration\n"
    "                      and tcc the timeout of each step [1500]\n"
    "  --synchronous MODE  SQLite synchronous of the services: off|normal|full|extra [full]\n"
    "  --dir DIR           work directory (kept) instead of a fresh temporary one;\n"
    "                      new or empty, as the summary counts all its databases hold\n"
    "  --build-dir DIR     where the service binaries were built [this program's build]\n"
    "  --timeout-s T       give up waiting for the sagas after T s [120]\n"
    "  --log-level L       log level of the services [warn]\n"
    "  --broker-profile-port P\n"
    "                      serve nats-server's profiles on 127.0.0.1:P: its CPU\n"
    "                      profile is http://127.0.0.1:P/debug/pprof/profile?seconds=S,\n"
    "                      which tools/perf/pprof_top.py prints (not with --cluster)\n"
    "  --bin NAME=PATH     run PATH as service NAME (order, inventory, payment,\n"
    "                      points) instead of the built shop-NAME\n";

/* Who the demo's reviewer decides as, in the payment database. */
#define REVIEWER "demo-reviewer"

static atomic_int interrupted; /* atomic: the handler may run on any thread */
/* --secure: certificates, users and passwords of this run. */
static shop_secure secure;
/* Set once the demo is only being kept running (--keep): a signal then is
 * the normal end, not an interruption. */
static bool keeping;
static atomic_bool stop_load;

static void on_signal(int sig)
{
    interrupted = sig;
    atomic_store(&stop_load, true);
}

/* Why the run failed, for the FAILED line and the JSON's "error": each
 * reason found, in order, separated by "; ". Empty while none. */
static char failure[600];
/* The summary was printed: with --json, a failure after it needs no
 * object of its own. */
static bool summarized;

static void failed(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void failed(const char *fmt, ...)
{
    size_t n = strlen(failure);
    if (n > 0 && n + 2 < sizeof failure) {
        memcpy(failure + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure + n, sizeof failure - n, fmt, ap);
    va_end(ap);
}

/* s as a JSON string. */
static void json_str(const char *s)
{
    putchar('"');
    for (const char *p = s; *p; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p >= 0x20)
            putchar(*p);
    putchar('"');
}

struct opts {
    long orders;
    bool json, keep, secure, cluster;
    int concurrency;
    long window;
    int64_t rate;       /* --rate, 0 when off */
    uint64_t seed;
    int64_t deadline_ms;
    shop_style style;
    const char *synchronous, *dir, *build_dir, *log_level;
    const char *bin[4]; /* --bin NAME=PATH overrides */
    int64_t timeout_s;
    shop_scale scale;   /* --store, --instances */
    int broker_profile_port; /* 0 when off */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Whether a TCP port of 127.0.0.1 can be listened on now; errno says why
 * not. */
static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* as the broker does */
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return ok;
}

static int parse(int argc, char **argv, struct opts *o)
{
    bool window_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
        } else if (strcmp(a, "--secure") == 0) {
            o->secure = true;
        } else if (strcmp(a, "--cluster") == 0) {
            o->cluster = true;
        } else if (!v) {
            fprintf(stderr, "shop-demo: %s needs a value, or is unknown (see --help)\n", a);
            return 2;
        } else if (strcmp(a, "--orders") == 0) {
            if (!shop_parse_i64(a, v, 1, 10000000, &n))
                return 2;
            o->orders = (long)n;
            i++;
        } else if (strcmp(a, "--concurrency") == 0) {
            if (!shop_parse_i64(a, v, 1, 1024, &n))
                return 2;
            o->concurrency = (int)n;
            i++;
        } else if (strcmp(a, "--rate") == 0) {
            if (!shop_parse_i64(a, v, 1, 1000000, &o->rate))
                return 2;
            i++;
        } else if (strcmp(a, "--window") == 0) {
            if (!shop_parse_i64(a, v, 0, 10000000, &n))
                return 2;
            o->window = (long)n;
            window_given = true;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            if (!shop_parse_i64(a, v, 0, INT64_MAX, &n))
                return 2;
            o->seed = (uint64_t)n;
            i++;
        } else if (strcmp(a, "--deadline-ms") == 0) {
            if (!shop_parse_i64(a, v, 1, 3600000, &o->deadline_ms))
                return 2;
            i++;
        } else if (strcmp(a, "--style") == 0) {
            if (!shop_style_parse(v, &o->style)) {
                fprintf(stderr, "shop-demo: --style \"%s\" is not a saga style: use %s\n", v,
                        SHOP_STYLES);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--timeout-s") == 0) {
            if (!shop_parse_i64(a, v, 1, 86400, &o->timeout_s))
                return 2;
            i++;
        } else if (strcmp(a, "--synchronous") == 0) {
            o->synchronous = v;
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = v;
            i++;
        } else if (strcmp(a, "--build-dir") == 0) {
            o->build_dir = v;
            i++;
        } else if (strcmp(a, "--bin") == 0) {
            static const char *names[] = { "order=", "inventory=", "payment=", "points=" };
            int k = 0;
            while (k < 4 && strncmp(v, names[k], strlen(names[k])) != 0)
                k++;
            if (k == 4) {
                fprintf(stderr, "shop-demo: --bin takes order=PATH, inventory=PATH, "
                        "payment=PATH or points=PATH\n");
                return 2;
            }
            o->bin[k] = v + strlen(names[k]);
            i++;
        } else if (strcmp(a, "--log-level") == 0) {
            o->log_level = v;
            i++;
        } else if (strcmp(a, "--broker-profile-port") == 0) {
            if (!shop_parse_i64(a, v, 1, 65535, &n))
                return 2;
            o->broker_profile_port = (int)n;
            i++;
        } else if (strcmp(a, "--store") == 0 || strcmp(a, "--instances") == 0) {
            if (shop_scale_flag(&o->scale, a, v, "shop-demo") != 0)
                return 2;
            i++;
        } else {
            fprintf(stderr, "shop-demo: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    /* The permissions choreo-gen writes from events/shop.services cover the
     * events the services' own code emits and handles, not an orchestrator's
     * commands, replies and ChoreoSagaTimeout. */
    if (shop_scale_check(&o->scale, "shop-demo") != 0)
        return 2;
    /* Checked here, as the services would, rather than by a service that
     * exits at start with its complaint in its log. */
    if (!shop_setting_valid("shop-demo", "--synchronous", o->synchronous) ||
        !shop_setting_valid("shop-demo", "--log-level", o->log_level))
        return 2;
    /* Each run counts what the databases hold: an earlier run's orders
     * would be taken for this one's. */
    char why[300];
    if (o->dir && sup_workdir_unused(o->dir, why, sizeof why) != 0) {
        fprintf(stderr, "shop-demo: --dir %s %s: pass an empty or new directory\n", o->dir, why);
        return 2;
    }
    if (window_given && o->rate > 0) {
        fprintf(stderr, "shop-demo: --window limits the sagas in flight of a closed loop, "
                "and --rate offers orders whether earlier ones finished or not: give one "
                "of them\n");
        return 2;
    }
    if (o->secure && o->cluster) {
        fprintf(stderr, "shop-demo: --secure and --cluster do not go together yet: the "
                "cluster's nodes have no TLS or users; drop one of them\n");
        return 2;
    }
    if (o->broker_profile_port && o->cluster) {
        fprintf(stderr, "shop-demo: --broker-profile-port profiles one nats-server, not the "
                "three of --cluster; drop one of them\n");
        return 2;
    }
    /* The broker would only exit at start, its reason in its own log. */
    if (o->broker_profile_port && !port_free(o->broker_profile_port)) {
        fprintf(stderr, "shop-demo: --broker-profile-port %d: 127.0.0.1:%d is taken (%s); "
                "give a free port\n", o->broker_profile_port, o->broker_profile_port,
                strerror(errno));
        return 2;
    }
    if (o->secure && o->style != SHOP_STYLE_CHOREOGRAPHY) {
        fprintf(stderr, "shop-demo: --secure runs the choreographed saga only: the NATS "
                "permissions of events/shop.services do not cover the %s style's commands "
                "and timeouts; drop --secure or --style %s\n", shop_style_name(o->style),
                shop_style_name(o->style));
        return 2;
    }
    return 0;
}

/* A read-only view of the order database for progress and the saga
 * window: orders, those still PENDING, and those settled (final, or of a
 * customer held for review, which wait for the reviewer or their deadline
 * rather than for the services). */
struct order_view {
    sqlite3 *db;
    sqlite3_stmt *count;
    int64_t total, pending;
    atomic_long settled;
};

static void view_refresh(struct order_view *v, const char *path)
{
    if (shop_is_postgres_url(path)) { /* the order service on PostgreSQL */
        long total = shop_pg_count(path, "SELECT COUNT(*) FROM orders");
        long pending = shop_pg_count(path, "SELECT COUNT(*) FROM orders WHERE state = 'PENDING'");
        long settled = shop_pg_count(path, "SELECT COUNT(*) FROM orders WHERE state != "
                                           "'PENDING' OR user_id LIKE 'review-%'");
        if (total >= 0 && pending >= 0 && settled >= 0) {
            v->total = total;
            v->pending = pending;
            atomic_store(&v->settled, settled);
        }
        return;
    }
    if (!v->db) {
        if (sqlite3_open_v2(path, &v->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            /* Read every 10 ms while the services run, so it costs no more
             * than the index: orders are never deleted (the largest rowid
             * counts them), and only the PENDING ones are visited. */
            sqlite3_prepare_v2(v->db,
                               "SELECT COALESCE((SELECT MAX(rowid) FROM orders), 0),"
                               " (SELECT COUNT(*) FROM orders WHERE state = 'PENDING'),"
                               " (SELECT COUNT(*) FROM orders WHERE state = 'PENDING'"
                               "  AND user_id LIKE 'review-%')",
                               -1, &v->count, NULL) != SQLITE_OK) {
            sqlite3_finalize(v->count);
            sqlite3_close(v->db);
            v->db = NULL;
            v->count = NULL;
            return;
        }
        sqlite3_busy_timeout(v->db, 2000);
    }
    if (sqlite3_step(v->count) == SQLITE_ROW) {
        v->total = sqlite3_column_int64(v->count, 0);
        v->pending = sqlite3_column_int64(v->count, 1);
        atomic_store(&v->settled,
                     (long)(v->total - v->pending + sqlite3_column_int64(v->count, 2)));
    }
    sqlite3_reset(v->count);
}

static void view_close(struct order_view *v)
{
    sqlite3_finalize(v->count);
    sqlite3_close(v->db);
    v->db = NULL;
    v->count = NULL;
}

static long view_settled(void *user)
{
    return atomic_load(&((struct order_view *)user)->settled);
}

static void progress(long n, long placed, int64_t final, int64_t held, int64_t t0_us)
{
    int width = 30, done = n ? (int)(final * width / n) : 0;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < done ? '#' : '-';
    bar[width] = '\0';
    printf("\r  [%s] placed %ld/%ld  final %lld/%ld  %.1f s", bar, placed, n, (long long)final, n,
           (double)(now_us() - t0_us) / 1e6);
    if (held > 0)
        printf("  (%lld held for review)", (long long)held);
    printf("\033[K");
    fflush(stdout);
}

struct load_job {
    shop_world *w;
    shop_client *c;
    shop_load_opts o;
    shop_load_stats st;
    choreo_status status;
    atomic_bool done;
};

static void *load_main(void *arg)
{
    struct load_job *j = arg;
    j->status = shop_world_load(j->w, j->c, &j->o, &j->st);
    atomic_store(&j->done, true);
    return NULL;
}

struct result {
    shop_check_report rep;
    shop_review_stats review; /* what the demo's reviewer did */
    bool final;   /* every saga placed was final in time */
    bool checked;
    int restarts;
    double wall_s;
    bool kept; /* the work directory outlives the run */
};

/* How the load went: the placements per second over the load and, when
 * paced, whether the offered rate held (at most 1% of the orders sent over
 * 100 ms late, and 95% of the rate placed). */
struct pace {
    double achieved;
    long late;
    bool sustained;
};

static struct pace pace_of(const struct opts *o, const struct load_job *j)
{
    struct pace p;
    double load_s = (double)(j->st.ended_us - j->st.started_us) / 1e6;
    p.achieved = load_s > 0 ? (double)atomic_load(&j->st.placed) / load_s : 0;
    p.late = atomic_load(&j->st.late);
    p.sustained = o->rate > 0 && p.late * 100 <= o->orders && p.achieved >= 0.95 * (double)o->rate;
    return p;
}

static void print_json(const struct opts *o, const sup *s, const struct load_job *j,
                       const struct result *r)
{
    const shop_check_report *c = &r->rep;
    double span_s = (double)(c->last_self_finished_us - c->first_created_us) / 1e6;
    int64_t self = c->orders - c->pending - c->by_reason[SHOP_REASON_DEADLINE];
    printf("{\"ok\": %s, \"error\": ", failure[0] ? "false" : "true");
    if (failure[0])
        json_str(failure);
    else
        printf("null");
    printf(", \"style\": \"%s\", \"orders\": %ld, \"placed\": %ld, \"completed\": %lld, "
           "\"cancelled\": %lld, \"pending\": %lld, \"all_final\": %s, \"by_reason\": {",
           shop_style_name(o->style), o->orders, atomic_load(&j->st.placed),
           (long long)c->completed, (long long)c->cancelled, (long long)c->pending,
           r->final ? "true" : "false");
    for (int i = 0; i < SHOP_REASON_COUNT; i++)
        printf("%s\"%s\": %lld", i ? ", " : "", shop_reason_name((shop_reason)i),
               (long long)c->by_reason[i]);
    printf("}, \"by_kind\": {");
    for (int i = 0; i < SHOP_KIND_COUNT; i++)
        printf("%s\"%s\": %ld", i ? ", " : "", shop_kind_name((shop_kind)i), j->w->kinds[i]);
    printf("}, \"compensations\": %lld, \"compensations_by_step\": {\"stock_released\": %lld, "
           "\"payments_unfrozen\": %lld, \"points_revoked\": %lld}, ",
           (long long)c->compensations, (long long)c->stock_released,
           (long long)c->payments_released, (long long)c->points_revoked);
    printf("\"held\": %lld, \"approved\": %lld, \"rejected\": %lld, \"expired\": %lld, "
           "\"reviewer\": {\"approved\": %ld, \"rejected\": %ld, \"left\": %ld, "
           "\"refused\": %ld}, ",
           (long long)c->holds, (long long)c->holds_approved, (long long)c->holds_rejected,
           (long long)c->holds_expired, r->review.approved, r->review.rejected, r->review.left,
           r->review.refused);
    printf("\"invariants_ok\": %s, \"violations\": %zu, \"violation_samples\": [",
           r->checked && c->ok ? "true" : "false", c->nviolations);
    for (size_t i = 0; i < c->nkept && i < 10; i++) {
        printf("%s", i ? ", " : "");
        json_str(c->violations[i]);
    }
    printf("], \"sagas_per_s\": %.1f, \"p50_ms\": %.2f, \"p90_ms\": %.2f, \"p99_ms\": %.2f, "
           "\"max_ms\": %.2f, \"held_sagas\": %lld, \"held_p50_ms\": %.2f, "
           "\"held_p99_ms\": %.2f, \"held_max_ms\": %.2f, \"events\": %lld, "
           "\"events_per_s\": %.1f, ",
           span_s > 0 ? (double)self / span_s : 0.0, (double)c->p50_us / 1e3,
           (double)c->p90_us / 1e3, (double)c->p99_us / 1e3, (double)c->max_us / 1e3,
           (long long)c->held_sagas, (double)c->held_p50_us / 1e3, (double)c->held_p99_us / 1e3,
           (double)c->held_max_us / 1e3, (long long)c->events,
           span_s > 0 ? (double)c->events / span_s : 0.0);
    struct pace p = pace_of(o, j);
    if (o->rate > 0)
        printf("\"offered_rate\": %" PRId64 ", \"achieved_rate\": %.1f, \"late_orders\": %ld, "
               "\"rate_sustained\": %s, ",
               o->rate, p.achieved, p.late, p.sustained ? "true" : "false");
    else
        printf("\"offered_rate\": null, \"achieved_rate\": %.1f, ", p.achieved);
    printf("\"deadline_ms\": %" PRId64 ", \"wall_s\": %.2f, \"stock\": {\"restocked\": %lld, "
           "\"available\": %lld, \"reserved\": %lld, \"sold\": %lld}, \"money_cents\": "
           "{\"deposited\": %lld, \"balance\": %lld, \"frozen\": %lld, \"spent\": %lld}, "
           "\"points_held\": %lld, ",
           o->deadline_ms, r->wall_s, (long long)c->stock_restocked,
           (long long)c->stock_available, (long long)c->stock_reserved,
           (long long)c->stock_sold, (long long)c->money_deposited,
           (long long)c->money_balance, (long long)c->money_frozen, (long long)c->money_spent,
           (long long)c->points_held);
    printf("\"idempotent_replays\": %ld, \"idempotent_replays_same\": %ld, "
           "\"requests_retried\": %ld, \"service_restarts\": %d, \"synchronous\": \"%s\", "
           "\"secure\": %s, \"nats_nodes\": %d, \"workdir\": ",
           j->st.replays, j->st.replays_same, atomic_load(&j->st.retried), r->restarts,
           o->synchronous, o->secure ? "true" : "false", sup_nats_nodes(s));
    if (r->kept)
        json_str(sup_workdir(s));
    else
        printf("null");
    printf(", \"metrics\": {");
    for (int i = 0; i < sup_service_count(s); i++)
        printf("%s\"%s\": \"http://%s/metrics\"", i ? ", " : "", sup_service_name(s, i),
               sup_metrics_addr(s, i));
    printf("}}\n");
}

static void print_text(const struct opts *o, const sup *s, const struct load_job *j,
                       const struct result *r)
{
    const shop_check_report *c = &r->rep;
    double span_s = (double)(c->last_self_finished_us - c->first_created_us) / 1e6;
    int64_t self = c->orders - c->pending - c->by_reason[SHOP_REASON_DEADLINE];
    printf("\nmix         ");
    for (int i = 0; i < SHOP_KIND_COUNT; i++)
        printf("%s%s %ld", i ? ", " : "", shop_kind_name((shop_kind)i), j->w->kinds[i]);
    printf("\n");
    shop_check_print(c, stdout);
    printf("reviewer    %s approved %ld, rejected %ld, left %ld to their deadline", REVIEWER,
           r->review.approved, r->review.rejected, r->review.left);
    if (r->review.refused)
        printf(" (%ld decisions refused: the hold had ended first)", r->review.refused);
    printf("\n");
    printf("throughput  %.0f sagas/s (%lld sagas that ended on their own in %.2f s), "
           "%.0f events/s (%lld events)\n",
           span_s > 0 ? (double)self / span_s : 0.0, (long long)self, span_s,
           span_s > 0 ? (double)c->events / span_s : 0.0, (long long)c->events);
    if (o->rate > 0) {
        struct pace p = pace_of(o, j);
        printf("pace        offered %" PRId64 " orders/s, placed %.1f/s, %ld sent over 100 ms "
               "late: %s\n",
               o->rate, p.achieved, p.late,
               p.sustained ? "sustained"
                           : "NOT sustained (wanted 95% of the rate placed and at most 1% late)");
    }
    printf("latency     p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (placed -> final, "
           "straight through)\n",
           (double)c->p50_us / 1e3, (double)c->p90_us / 1e3, (double)c->p99_us / 1e3,
           (double)c->max_us / 1e3);
    printf("            held for review: %lld sagas, p50 %.1f ms, p99 %.1f ms (they wait for the "
           "reviewer); deadline expiries excluded, they take %" PRId64 " ms by design\n",
           (long long)c->held_sagas, (double)c->held_p50_us / 1e3,
           (double)c->held_p99_us / 1e3, o->deadline_ms);
    printf("idempotency %ld of %ld re-sent PlaceOrder keys returned their first order\n",
           j->st.replays_same, j->st.replays);
    if (r->restarts)
        printf("restarts    %d service(s) died and were restarted (see the logs in %s)\n",
               r->restarts, sup_workdir(s));
    printf("wall time   %.1f s, SQLite synchronous=%s\n", r->wall_s, o->synchronous);
}

static void print_keep(const sup *s, const char *build, FILE *f)
{
    fprintf(f, "\nThe shop is still running; Ctrl-C (or SIGTERM to pid %d) stops all of it.\n",
            (int)getpid());
    fprintf(f, "  nats-server  %s  pid %d  store %s/nats\n", sup_url(s), (int)sup_broker_pid(s),
            sup_workdir(s));
    for (int i = 0; i < sup_service_count(s); i++)
        fprintf(f, "  %-11s  pid %-7d db %s  log %s\n               metrics "
                   "http://%s/metrics\n",
                sup_service_name(s, i), (int)sup_service_pid(s, i), sup_db_path(s, i),
                sup_log_path(s, i), sup_metrics_addr(s, i));
    if (secure.config[0])
        fprintf(f, "TLS and users are on (--secure): the shop client needs\n"
                   "  export CHOREO_TLS_CA=%s CHOREO_NATS_USER=%s "
                   "CHOREO_NATS_INBOX_PREFIX=%s\n"
                   "  export CHOREO_NATS_PASSWORD=$(sed -n 's/^%s_PASSWORD: \"\\(.*\\)\"$/\\1/p' "
                   "%s)\n",
                secure.ca, SHOP_SECURE_CLIENT, SHOP_SECURE_CLIENT_INBOX, "SHOP", secure.config);
    if (secure.config[0])
        fprintf(f, "and choreoctl, in a shell of its own, the operator's user:\n"
                   "  export CHOREO_TLS_CA=%s CHOREO_NATS_USER=" SHOP_SECURE_OPERATOR " "
                   "CHOREO_NATS_INBOX_PREFIX=_INBOX_" SHOP_SECURE_OPERATOR "\n"
                   "  export CHOREO_NATS_PASSWORD=$(sed -n "
                   "'s/^CHOREOCTL_PASSWORD: \"\\(.*\\)\"$/\\1/p' %s)\n",
                secure.ca, secure.config);
    fprintf(f, "Try:\n"
               "  %s/tools/shop/shop --nats-url %s place --user user-000 --product apple "
               "--qty 2 --wait\n"
               "  %s/tools/shop/shop --nats-url %s place --user broke-000 --product pear "
               "--qty 1 --wait\n"
               "  %s/tools/shop/shop --nats-url %s place --user review-000 --product plum "
               "--qty 1   (held for review)\n"
               "  %s/tools/shop/shop --nats-url %s status ORDER_ID\n"
               "  %s/tools/shop/shop check --dir %s --final\n"
               "  sqlite3 %s/order.db \"SELECT state, reason, COUNT(*) FROM orders "
               "GROUP BY 1, 2\"\n"
               "  %s/tools/choreoctl/choreoctl --nats-url %s saga SAGA_ID --dir %s   "
               "(the order id is the saga id)\n"
               "  %s/tools/choreoctl/choreoctl --nats-url %s tail\n"
               "  %s/tools/choreoctl/choreoctl --db %s/payment.db review list   "
               "(then review approve|reject ID)\n"
               "  %s/tools/choreoctl/choreoctl --nats-url %s status --dir %s\n"
               "  curl -s http://%s/metrics   (every service has its endpoint, above)\n",
            build, sup_url(s), build, sup_url(s), build, sup_url(s), build, sup_url(s), build,
            sup_workdir(s), sup_workdir(s), build, sup_url(s), sup_workdir(s), build,
            sup_url(s), build, sup_workdir(s), build, sup_url(s), sup_workdir(s),
            sup_metrics_addr(s, 0));
}

/* Waits until every placed order is final, showing progress on a terminal
 * and keeping the saga window's count fresh. Services that die are
 * restarted (and counted). Returns false on timeout, a service that does
 * not start again (both said with failed()) or interruption. */
static bool wait_final(const struct opts *o, sup *s, struct load_job *j, struct order_view *v,
                       int64_t t0_us, bool tty, int *restarts)
{
    const char *path = sup_db_path(s, sup_find(s, "order"));
    int64_t limit_us = now_us() + o->timeout_s * 1000000, drawn_us = 0;
    for (;;) {
        if (interrupted)
            return false;
        if (sup_poll(s) > 0) {
            /* Ctrl-C on a terminal reaches the services too: they may
             * exit a moment before this process sees its own SIGINT. */
            sleep_ms(100);
            if (interrupted)
                return false;
            for (int i = 0; i < sup_service_count(s); i++) {
                if (sup_service_running(s, i))
                    continue;
                fprintf(stderr, "\nshop-demo: %s exited unexpectedly (status %d); restarting it; "
                        "see %s\n", sup_service_name(s, i), sup_service_exit_status(s, i),
                        sup_log_path(s, i));
                (*restarts)++;
                if (sup_start_service(s, i) != 0) {
                    if (!interrupted)
                        failed("%s exited and did not start again; see %s",
                               sup_service_name(s, i), sup_log_path(s, i));
                    return false;
                }
            }
        }
        bool loaded = atomic_load(&j->done);
        view_refresh(v, path);
        long placed = atomic_load(&j->st.placed);
        if (tty && now_us() - drawn_us > 100000) {
            progress(o->orders, placed, v->total - v->pending,
                     atomic_load(&v->settled) - (v->total - v->pending), t0_us);
            drawn_us = now_us();
        }
        if (loaded && v->total >= placed && v->pending == 0) {
            if (tty)
                progress(o->orders, placed, v->total - v->pending, 0, t0_us);
            return true;
        }
        if (now_us() > limit_us) {
            const char *sagas = v->pending == 1 ? "saga" : "sagas";
            if (!loaded)
                failed("only %ld of %ld orders placed after %" PRId64 " s", placed, o->orders,
                       o->timeout_s);
            if (v->pending > 0 || loaded)
                failed("%lld %s still not final after %" PRId64 " s", (long long)v->pending,
                       sagas, o->timeout_s);
            fprintf(stderr, "\nshop-demo: %s\n", failure);
            return false;
        }
        sleep_ms(10);
    }
}

/* Final sagas may still have compensations or confirmations in flight in
 * the other services: check until the invariants hold or 20 s pass. */
static void settle(sup *s, struct result *r)
{
    shop_check_paths p = { sup_db_path(s, 0), sup_db_path(s, 1), sup_db_path(s, 2),
                           sup_db_path(s, 3) };
    char err[512];
    r->checked = shop_check_wait(&p, true, 20000, &interrupted, &r->rep, err, sizeof err) ==
                 CHOREO_OK;
    if (!r->checked && !interrupted) {
        fprintf(stderr, "shop-demo: %s\n", err);
        failed("the invariants could not be checked: %s", err);
    }
}

/* What did not start, after sup_start_all failed (it said why on stderr). */
static void start_failed(const sup *s)
{
    if (sup_broker_pid(s) <= 0) {
        failed("nats-server did not start (see the messages on stderr)");
        return;
    }
    for (int i = 0; i < sup_service_count(s); i++)
        if (!sup_service_running(s, i)) {
            failed("the %s service did not start; see %s", sup_service_name(s, i),
                   sup_log_path(s, i));
            return;
        }
    failed("the services did not start (see the messages on stderr)");
}

static int run(const struct opts *o, sup *s, const char *build, bool tty)
{
    int64_t t0 = now_us();
    if (!o->json)
        printf("choreo shop demo: %ld orders through order -> inventory -> payment -> points "
               "(%s)\n  work dir %s\n", o->orders, shop_style_name(o->style), sup_workdir(s));
    if (sup_start_all(s) != 0) {
        if (!interrupted)
            start_failed(s);
        return 1;
    }
    if (!o->json)
        printf("  nats-server %s and 4 services running (pids %d %d %d %d %d)\n", sup_url(s),
               (int)sup_broker_pid(s), (int)sup_service_pid(s, 0), (int)sup_service_pid(s, 1),
               (int)sup_service_pid(s, 2), (int)sup_service_pid(s, 3));
    shop_client *c = NULL;
    const shop_secure *sec = o->secure ? &secure : NULL;
    /* One node's URL: the client learns the others from it (--cluster). */
    if (shop_client_create_secure(&c, sup_node_url(s, 0), "choreo",
                                  sec ? SHOP_SECURE_CLIENT : NULL,
                                  sec ? sec->password[SHOP_SERVICES] : NULL,
                                  sec ? sec->ca : NULL,
                                  sec ? SHOP_SECURE_CLIENT_INBOX : NULL) != CHOREO_OK) {
        fprintf(stderr, "shop-demo: %s\n", shop_client_last_error());
        failed("the shop client cannot connect: %s", shop_client_last_error());
        return 1;
    }
    shop_world w;
    char run_name[48];
    snprintf(run_name, sizeof run_name, "demo%" PRIu64, o->seed);
    int rc = 1;
    struct load_job j = { .w = &w, .c = c };
    atomic_init(&j.done, false);
    struct result r = { 0 };
    if (shop_world_plan(&w, o->orders, o->seed, run_name) != CHOREO_OK) {
        failed("cannot plan the orders: out of memory");
        shop_client_destroy(c);
        return 1;
    }
    if (shop_world_seed(&w, c) != CHOREO_OK) {
        fprintf(stderr, "shop-demo: seeding failed: %s\n", shop_client_last_error());
        failed("seeding failed: %s", shop_client_last_error());
        goto out;
    }
    struct order_view view = { 0 };
    atomic_init(&view.settled, 0);
    j.o = (shop_load_opts){ .concurrency = o->concurrency, .stop = &stop_load,
                            .window = o->window, .settled = view_settled,
                            .settled_user = &view, .rate = (double)o->rate };
    /* The reviewer decides while the orders go through, straight on the
     * payment database (the service created it when it started). */
    shop_reviewer *reviewer = NULL;
    shop_reviewer_opts ro = { .db = sup_db_path(s, sup_find(s, "payment")), .seed = o->seed,
                              .by = REVIEWER };
    if (shop_reviewer_start(&reviewer, &ro) != CHOREO_OK) {
        fprintf(stderr, "shop-demo: the reviewer cannot open %s: %s\n", ro.db,
                choreo_last_error());
        failed("the reviewer cannot open %s: %s", ro.db, choreo_last_error());
        goto out;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, load_main, &j) != 0) {
        shop_reviewer_stop(reviewer, NULL);
        fprintf(stderr, "shop-demo: cannot start the thread that places the orders\n");
        failed("cannot start the thread that places the orders");
        goto out;
    }
    int64_t t_load = now_us();
    r.final = wait_final(o, s, &j, &view, t_load, tty, &r.restarts);
    shop_reviewer_stop(reviewer, &r.review);
    atomic_store(&stop_load, true);
    if (interrupted)
        shop_client_cancel(c); /* requests in flight return now */
    pthread_join(th, NULL);
    view_close(&view);
    if (tty)
        printf("\n");
    if (interrupted)
        goto out;
    if (!r.final)
        fprintf(stderr, "shop-demo: not every saga finished; checking what there is\n");
    settle(s, &r);
    if (interrupted)
        goto out;
    r.wall_s = (double)(now_us() - t0) / 1e6;
    if (j.status != CHOREO_OK)
        failed("placing the orders failed: %s", choreo_status_str(j.status));
    long refused = atomic_load(&j.st.failed);
    if (refused > 0)
        failed("%ld PlaceOrder request%s failed", refused, refused == 1 ? "" : "s");
    if (j.st.replays_same != j.st.replays)
        failed("%ld of %ld re-sent PlaceOrder keys did not return their first order",
               j.st.replays - j.st.replays_same, j.st.replays);
    if (r.checked && !r.rep.ok)
        failed("%zu invariant violation%s", r.rep.nviolations,
               r.rep.nviolations == 1 ? "" : "s");
    /* Every failure above said why; an unknown one still fails. */
    if (!r.final && !failure[0])
        failed("not every saga is final");
    rc = failure[0] ? 1 : 0;
    r.kept = o->keep || o->dir || rc != 0;
    if (o->json)
        print_json(o, s, &j, &r);
    else
        print_text(o, s, &j, &r);
    summarized = true;
    if (rc != 0 && !o->json)
        printf("\nFAILED: %s; the logs are in %s\n", failure, sup_workdir(s));
    if (o->keep && !interrupted) {
        print_keep(s, build, o->json ? stderr : stdout);
        fflush(stdout);
        keeping = true;
        while (!interrupted) {
            sleep_ms(200);
            sup_poll(s);
        }
    }
out:
    if (r.checked)
        shop_check_report_free(&r.rep);
    shop_world_free(&w);
    shop_client_destroy(c);
    return rc;
}

/* With --json, a run that ends before its summary still prints one object,
 * so that a caller reading stdout learns that it failed and why. */
static void print_json_failure(const struct opts *o, const char *workdir)
{
    printf("{\"ok\": false, \"error\": ");
    json_str(failure[0] ? failure : "failed (see the messages on stderr)");
    printf(", \"style\": \"%s\", \"orders\": %ld, \"workdir\": ", shop_style_name(o->style),
           o->orders);
    if (workdir)
        json_str(workdir);
    else
        printf("null");
    printf("}\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct opts o = { .orders = 1000, .concurrency = 32, .window = 200, .seed = 1,
                      .deadline_ms = 1500, .synchronous = "full", .timeout_s = 120,
                      .log_level = "warn" };
    shop_set_program("shop-demo");
    int p = parse(argc, argv, &o);
    if (p)
        return p == 1 ? 0 : 2;
    shop_catch_signals(on_signal);

    char build[PATH_MAX], bin[SHOP_SERVICES][SHOP_BIN_MAX];
    const char *const *names = shop_service_names;
    shop_build_dir(o.build_dir, build, sizeof build);
    if (shop_service_binaries(build, o.bin, bin, "shop-demo",
                              "build first (tools/demo does), or pass --build-dir") != 0)
        return 2;
    sup_options so = { .workdir = o.dir, .fresh_name = "choreo-demo", .log_level = o.log_level,
                       .metrics = true, .cluster = o.cluster,
                       .broker_profile_port = o.broker_profile_port, .cancel = &interrupted };
    sup *s = NULL;
    if (sup_create(&s, &so) != 0) {
        failed("cannot make the work directory (see the messages on stderr)");
        if (o.json)
            print_json_failure(&o, NULL);
        return 1;
    }
    char deadline[32];
    snprintf(deadline, sizeof deadline, "%" PRId64, o.deadline_ms);
    /* --style goes to every service, but only when it is not the default
     * (style NULL ends the lists early), so that a --bin service written
     * without styles (such as the README's) still runs the choreographed
     * demo. */
    const char *style = o.style == SHOP_STYLE_CHOREOGRAPHY ? NULL : "--style";
    const char *order_args[] = { "--synchronous", o.synchronous, "--deadline-ms", deadline,
                                 style, shop_style_name(o.style), NULL };
    const char *other_args[] = { "--synchronous", o.synchronous, style, shop_style_name(o.style),
                                 NULL };
    /* The payment service learns the deadline, so that a review can be
     * decided until the saga stops waiting for it. A decision enters its
     * outbox from another process (the reviewer's), which its relay finds
     * at its next scan: every 50 ms rather than every 500, so that a
     * review decided while the shop is quiet is carried out at once. A
     * payment service of one's own (--bin payment=PATH) gets the others'
     * flags. */
    const char *payment_args[] = { "--synchronous", o.synchronous, "--deadline-ms", deadline,
                                   "--relay-scan-ms", "50", style, shop_style_name(o.style),
                                   NULL };
    if (o.secure) {
        if (shop_secure_setup(&secure, sup_workdir(s), SHOP_CHOREO_GEN,
                              SHOP_EVENTS_DIR "/shop.events",
                              SHOP_EVENTS_DIR "/shop.services") != 0) {
            failed("cannot set up TLS and the NATS users (see the messages on stderr)");
            if (o.json)
                print_json_failure(&o, o.dir);
            sup_destroy(s);
            return 1;
        }
        sup_secure(s, secure.config, SHOP_SECURE_CLIENT, secure.password[SHOP_SERVICES],
                   secure.ca, SHOP_SECURE_CLIENT_INBOX);
    }
    sup_service_spec specs[SHOP_SERVICES];
    for (int i = 0; i < SHOP_SERVICES; i++) {
        const char *const *args = other_args;
        if (i == 0)
            args = order_args;
        else if (strcmp(names[i], "payment") == 0 && !o.bin[i])
            args = payment_args;
        specs[i] = (sup_service_spec){ .name = names[i], .binary = bin[i], .args = args,
                                       .ping = true, .env = o.secure ? secure.envp[i] : NULL };
    }
    if (shop_scale_add(s, &o.scale, specs) != 0) {
        failed("cannot set up the services (see the messages on stderr)");
        if (o.json)
            print_json_failure(&o, o.dir);
        sup_destroy(s);
        return 1;
    }
    bool tty = isatty(STDOUT_FILENO) && !o.json;
    int rc = run(&o, s, build, tty);
    sup_stop_all(s);
    if (interrupted) {
        fprintf(stderr, "shop-demo: %s; stopped everything it started\n",
                keeping ? "signal received" : "interrupted");
        if (!keeping) {
            rc = 128 + interrupted; /* as a shell reports a process a signal ended */
            /* What failed meanwhile (a start cut short, say) is the
             * signal's doing. */
            failure[0] = '\0';
            failed("interrupted by %s", interrupted == SIGINT    ? "SIGINT"
                                        : interrupted == SIGTERM ? "SIGTERM"
                                                                 : "SIGHUP");
        }
    }
    /* A fresh directory is removed after a clean or interrupted run, and
     * kept when asked for or when something failed, for its logs and
     * databases. */
    bool keep_dir = o.keep || (rc != 0 && !interrupted);
    if (keep_dir && !o.dir)
        fprintf(stderr, "shop-demo: logs and databases kept in %s\n", sup_workdir(s));
    if (o.json && rc != 0 && !summarized)
        print_json_failure(&o, keep_dir || o.dir ? sup_workdir(s) : NULL);
    sup_keep_workdir(s, keep_dir);
    sup_destroy(s);
    nats_CloseAndWait(SHOP_NATS_CLOSE_WAIT_MS);
    return rc;
}
