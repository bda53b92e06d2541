/* shop-chaos: the shop demo under fire (tools/chaos runs it). While orders
 * are placed at a steady pace, a chaos loop SIGKILLs random services and
 * restarts them, restarts others with SIGTERM as a deploy would, restarts
 * nats-server now and then (SIGKILL or SIGTERM), and the services run with
 * crash points on and, when asked, injected faults (a full disk, slow
 * handlers, events that succeed only on their last delivery).
 * A reviewer decides the payments held for review throughout, straight on
 * the payment database, while the payment service is killed and restarted.
 * After the load it does what an operator would (restart the services
 * without faults, retry every parked message with choreoctl), checks the
 * invariants and counts, from the services' audit trails (audit=on), every
 * event some consumer never applied (lost) and every event a consumer
 * applied twice (duplicated). A service that exits in any way other than a
 * crash point or one of the harness's own kills fails the run. --naive runs
 * the same services with delivery=naive, the dual write choreo replaces. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <sqlite3.h>

#include "shop_check.h"
#include "shop_client.h"
#include "shop_pgcopy.h"
#include "shop_review.h"
#include "shop_setup.h"
#include "shop_svc.h"
#include "shop_world.h"
#include "supervisor.h"

static const char USAGE[] =
    "usage: shop-chaos [--sagas N] [--json] [--naive] [--faults] [options]\n"
    "\n"
    "Runs the shop demo while killing its services and its broker, with crash points\n"
    "on (and with --faults, injected faults), then does what an operator would (restart\n"
    "the services without faults, retry every parked message with choreoctl), and\n"
    "proves from the audit trails that no event was lost, applied twice or applied\n"
    "without a committed transaction that emitted it, and that every invariant holds.\n"
    "Any exit of a service that is neither a crash point nor one of the harness's own\n"
    "kills (an abort, a crash, exit 1, a sanitizer report) fails the run. Exit status\n"
    "0 when all is well (with --naive: when the run completed with no such exit; its\n"
    "losses are the point of it), 1 otherwise, 2 for bad flags.\n"
    "\n"
    "Load and chaos:\n"
    "  --sagas N                  orders to place [2000]\n"
    "  --duration-s D             spread the orders over D s of chaos [sagas/50, at least 10]\n"
    "  --kill-interval-ms K       mean time between service kills [500]; a service is\n"
    "                             also restarted with SIGTERM every 4 x K ms on average\n"
    "  --min-kills N              once every order is placed, go on killing until N\n"
    "                             kills in all (for at most 3 x D s more) [0]\n"
    "  --min-instance-kills N     the same for kills of an instance of a service\n"
    "                             with several (--instances) [0]\n"
    "  --restart-delay-ms R       a killed service restarts after 0..R ms [800]\n"
    "  --broker-interval-ms B     mean time between restarts [10000; 5000 with --cluster]\n"
    "  --pause-interval-ms P      mean time between pauses: a service, or every third\n"
    "                             time the broker (a node with --cluster), is stopped with\n"
    "                             SIGSTOP for 0.5 to 4 s (beyond --ack-wait-ms more\n"
    "                             often than not), as a stalled or frozen host would\n"
    "                             be, then continued with SIGCONT [6000]\n"
    "  --min-pauses N             like --min-kills, for pauses [0]\n"
    "  --consumer-delete-interval-ms C  mean time between deletions of a random durable\n"
    "                             consumer on the server while its service runs (the\n"
    "                             service makes it again) [15000]\n"
    "  --second-copy-interval-ms C  mean time between starts of a second process of a\n"
    "                             running service on its SQLite database, or (every\n"
    "                             other one) on a new file, half of those with the first\n"
    "                             frozen; each must be refused at once and leave the\n"
    "                             first untouched [10000]\n"
    "  --db-lock-interval-ms L    mean time between write locks of a running service's\n"
    "                             SQLite database held from outside (BEGIN IMMEDIATE,\n"
    "                             as a sqlite3 shell would) for 0.2 to 3 s, the second\n"
    "                             of every four past busy_timeout_ms: 5.5 to 8 s [8000]\n";

static const char USAGE_MORE[] =
    "  --crash-prob P             probability of each crash point per pass [0.0005]\n"
    "  --seed S                   seed of the order mix, the chaos and the faults [1]\n"
    "  --quiet-s Q                after the load, wait at most Q s for every saga\n"
    "                             [120 + sagas/50]\n"
    "  --deadline-ms MS           saga deadline; with orchestration and tcc the timeout\n"
    "                             of each step [8000]\n"
    "  --style STYLE              how the services run the saga: choreography,\n"
    "                             orchestration or tcc [choreography]\n"
    "  --naive                    services use delivery=naive (no outbox, no inbox)\n"
    "  --store NAME=STORE         sqlite, or postgres (a private server) [sqlite]\n"
    "  --instances NAME=N         N instances of NAME on its database (needs --store\n"
    "                             NAME=postgres); a kill of one is an instance kill [1]\n"
    "  --postgres-interval-ms P   with a service on PostgreSQL: mean time between\n"
    "                             restarts of its server (SIGKILL or SIGINT) [15000]\n"
    "  --relay-freeze-interval-ms F  with a service in several instances: mean time\n"
    "                             between freezes (SIGSTOP) of the instance whose relay\n"
    "                             is active, for its relay_lease_ms (set to 2000) and 1\n"
    "                             to 3 s more while the chaos goes on; another\n"
    "                             instance's relay must take over meanwhile [10000]\n"
    "  --min-relay-freezes N      like --min-kills, for relay freezes [0]\n"
    "  --cluster                  a three-node NATS cluster instead of one nats-server\n"
    "                             (services get the three URLs and stream_replicas=3):\n"
    "                             every --broker-interval-ms a node is SIGKILLed (every\n"
    "                             other time the stream's leader) and restarted 1 to 4 s\n"
    "                             later, instead of restarting the one server; in the\n"
    "                             second outage of every three, two nodes at once (no\n"
    "                             quorum); in the third, the node also loses its store\n"
    "                             (a disk replaced) and comes back empty\n"
    "\n";

static const char USAGE_FAULTS[] =
    "Faults (each off unless given; --faults turns on every one not given, with the\n"
    "value in brackets):\n"
    "  --faults                   all of the faults below\n"
    "  --disk-full-prob P         probability that a commit starts a \"disk full\"\n"
    "                             episode, in which every commit of that process fails\n"
    "                             [0.002]\n"
    "  --disk-full-ms MS          length of an episode [1000]\n"
    "  --slow-handler-prob P      a handler first sleeps --slow-handler-ms [0.001]\n"
    "  --slow-handler-ms MS       longer than --ack-wait-ms, so batches outlast it [1500]\n"
    "  --retry-until-last-prob P  share of events retried on every delivery before the\n"
    "                             last one on which the handler may run [0.01]\n"
    "  --mark-fail-prob P         probability that an event's inbox mark fails while its\n"
    "                             batch commits, as a revoked privilege or a full disk\n"
    "                             under PostgreSQL fail a statement [0.002]\n"
    "  --last-delivery-kill-prob P  crash point last_delivery: before the commit of a\n"
    "                             batch holding an event on one of its last two\n"
    "                             deliveries [0.25]\n"
    "\n"
    "Service settings:\n"
    "  --ack-wait-ms MS           JetStream AckWait [2000; 1000 with slow handlers]\n"
    "  --max-deliver N            deliveries before a message is parked [choreo's, 10]\n"
    "  --retry-base-ms MS         first RETRY delay [choreo's; 20 with faults]\n"
    "  --retry-cap-ms MS          longest RETRY delay [choreo's; 100 with faults]\n"
    "  --log-level L              log level of the services [warn]\n"
    "\n"
    "Output and files:\n"
    "  --json                     print one JSON object on stdout\n"
    "  --dir DIR                  work directory (kept) instead of a fresh one; new or\n"
    "                             empty, as the counts take all its databases hold\n"
    "  --build-dir DIR            where the services and choreoctl were built\n"
    "                             [this program's build]\n";

static atomic_int interrupted; /* atomic: the handler may run on any thread */
static atomic_bool stop_load;

static void on_signal(int sig)
{
    interrupted = sig;
    atomic_store(&stop_load, true);
}

/* Values below zero are "not given" until resolve() fills them in. */
struct opts {
    long sagas;
    int64_t duration_s, kill_ms, min_kills, min_instance_kills, min_pauses, restart_ms,
        broker_ms, postgres_ms, pause_ms, consumer_delete_ms, second_copy_ms, db_lock_ms,
        quiet_s, deadline_ms, relay_freeze_ms, min_relay_freezes;
    int64_t ack_wait_ms, max_deliver, retry_base_ms, retry_cap_ms;
    int64_t disk_full_ms, slow_handler_ms;
    double crash_prob, disk_full_prob, slow_handler_prob, retry_until_last_prob,
        last_delivery_prob, mark_fail_prob;
    uint64_t seed;
    bool json, naive, faults, cluster;
    shop_style style;
    const char *dir, *build_dir, *log_level;
    shop_scale scale; /* --store, --instances */
};

/* Processes: the four services, then further instances of some. */
#define PROCS (SHOP_SERVICES * 8)

/* The service (0..3) each process runs, set once the processes are added. */
static int service_of[PROCS];

static bool faulty(const struct opts *o)
{
    return o->disk_full_prob > 0 || o->slow_handler_prob > 0 || o->retry_until_last_prob > 0 ||
           o->last_delivery_prob > 0 || o->mark_fail_prob > 0;
}

/* Unexpected exits kept with their details (all are counted). */
#define EXITS_KEPT 32

struct bad_exit {
    int service;
    char status[48];   /* "signal 6", "exit 1", "no answer to Ping" */
    const char *phase;
};

/* What the run does, in order; the report says how long each took. */
static const char *const PHASES[] = { "start", "seed", "load", "quiet", "repair", "check", "stop" };
#define NPHASES (sizeof PHASES / sizeof PHASES[0])

/* --cluster: the NATS nodes down, and when they come back. */
struct node_outage {
    int node[2];     /* -1 when not used; node[0] -1 when every node runs */
    int64_t back_at; /* ms */
};

struct tally {
    /* --cluster: the nodes the chaos loop has down, which come back before
     * any service is (re)started, so that a start never waits on a cluster
     * the harness itself keeps without a quorum. */
    struct node_outage down;
    const char *phase; /* one of PHASES */
    int64_t phase_since_ms;
    double phase_s[NPHASES];
    int kills, broker_restarts, crash_exits, unexpected_exits;
    int graceful_restarts;        /* SIGTERM under load, exit 0, started again */
    int node_kills, leader_kills; /* --cluster */
    int quorum_losses;            /* --cluster: two of the three nodes down at once */
    int store_losses;             /* --cluster: a node restarted with its store deleted */
    int instance_kills;           /* kills of an instance of a service with several */
    int postgres_restarts;        /* of the PostgreSQL server (a service on it) */
    int pauses, broker_pauses;    /* SIGSTOP ... SIGCONT, of a service or the broker */
    int relay_freezes;            /* of the instance whose relay is active */
    int relay_takeovers;          /* ... during which another instance's relay took over */
    int relays_not_one;           /* scaled services without exactly one active relay at the
                                   * end */
    struct {
        int i;                    /* the process frozen, while pid > 0 */
        pid_t pid;
        int64_t thaw_at, look_at;
        bool taken_over;
    } freeze;
    int consumers_deleted;        /* durable consumers deleted on the server */
    int second_copies;            /* second processes of a running one: every other on its
                                   * database, the rest on a new file of their own */
    int second_copy_failures;     /* ... that were not refused at once */
    int frozen_copies;            /* ... of them on a database of their own, the first frozen */
    int db_locks;                 /* a service's SQLite database write-locked from outside */
    struct bad_exit bad[EXITS_KEPT];
    long crashpoints_fired, last_delivery_kills, disk_full_episodes, slow_handlers,
        retry_until_last, mark_failures;
    long sanitizer_reports; /* AddressSanitizer, UBSan, LeakSanitizer, TSan in the logs */
    bool audited;
    long lost_events, lost_sagas, duplicated_events, duplicated_sagas, phantom_events, pending;
    long unknown_orders; /* placed (the client got an id) but not in the order database */
    long parked, parked_retried, still_parked, retry_failures;
    int metrics_unanswered; /* endpoints that did not answer, or not connected, at the end */
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

/* Moves the run to the next phase, adding the time spent to the last. */
static void enter(struct tally *t, const char *phase)
{
    int64_t now = now_ms();
    for (size_t k = 0; k < NPHASES && t->phase; k++)
        if (strcmp(PHASES[k], t->phase) == 0)
            t->phase_s[k] += (double)(now - t->phase_since_ms) / 1e3;
    t->phase = phase;
    t->phase_since_ms = now;
}

/* Uniform in [mean/2, 3*mean/2]. */
static int64_t around(int64_t mean)
{
    return mean / 2 + (int64_t)(rnd() % (uint64_t)(mean + 1));
}

/* ---- flags ---- */

static bool parse_prob(const char *flag, const char *v, double *out)
{
    char *end;
    double p = strtod(v, &end);
    if (end == v || *end || !(p >= 0 && p <= 1)) {
        fprintf(stderr, "shop-chaos: %s takes a probability from 0 to 1, not \"%s\"\n", flag, v);
        return false;
    }
    *out = p;
    return true;
}

/* Flags taking an integer: name, bounds and field. */
static bool parse_int_flag(struct opts *o, const char *a, const char *v, bool *known)
{
    static const struct {
        const char *name;
        int64_t min, max;
        size_t off;
    } flags[] = {
        { "--duration-s", 1, 86400, offsetof(struct opts, duration_s) },
        { "--kill-interval-ms", 10, 3600000, offsetof(struct opts, kill_ms) },
        { "--min-kills", 0, 100000, offsetof(struct opts, min_kills) },
        { "--min-instance-kills", 0, 100000, offsetof(struct opts, min_instance_kills) },
        { "--min-pauses", 0, 100000, offsetof(struct opts, min_pauses) },
        { "--min-relay-freezes", 0, 100000, offsetof(struct opts, min_relay_freezes) },
        { "--relay-freeze-interval-ms", 100, 3600000, offsetof(struct opts, relay_freeze_ms) },
        { "--restart-delay-ms", 0, 600000, offsetof(struct opts, restart_ms) },
        { "--broker-interval-ms", 100, 3600000, offsetof(struct opts, broker_ms) },
        { "--postgres-interval-ms", 100, 3600000, offsetof(struct opts, postgres_ms) },
        { "--pause-interval-ms", 100, 3600000, offsetof(struct opts, pause_ms) },
        { "--consumer-delete-interval-ms", 100, 3600000,
          offsetof(struct opts, consumer_delete_ms) },
        { "--second-copy-interval-ms", 100, 3600000, offsetof(struct opts, second_copy_ms) },
        { "--db-lock-interval-ms", 100, 3600000, offsetof(struct opts, db_lock_ms) },
        { "--quiet-s", 1, 86400, offsetof(struct opts, quiet_s) },
        { "--deadline-ms", 100, 3600000, offsetof(struct opts, deadline_ms) },
        { "--ack-wait-ms", 100, 3600000, offsetof(struct opts, ack_wait_ms) },
        { "--max-deliver", 2, 1000, offsetof(struct opts, max_deliver) },
        { "--retry-base-ms", 1, 3600000, offsetof(struct opts, retry_base_ms) },
        { "--retry-cap-ms", 1, 86400000, offsetof(struct opts, retry_cap_ms) },
        { "--disk-full-ms", 0, 3600000, offsetof(struct opts, disk_full_ms) },
        { "--slow-handler-ms", 0, 3600000, offsetof(struct opts, slow_handler_ms) },
    };
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        if (strcmp(a, flags[k].name) != 0)
            continue;
        *known = true;
        return shop_parse_i64(a, v, flags[k].min, flags[k].max,
                              (int64_t *)((char *)o + flags[k].off));
    }
    *known = false;
    return true;
}

static bool parse_prob_flag(struct opts *o, const char *a, const char *v, bool *known)
{
    static const struct {
        const char *name;
        size_t off;
    } flags[] = {
        { "--crash-prob", offsetof(struct opts, crash_prob) },
        { "--disk-full-prob", offsetof(struct opts, disk_full_prob) },
        { "--slow-handler-prob", offsetof(struct opts, slow_handler_prob) },
        { "--retry-until-last-prob", offsetof(struct opts, retry_until_last_prob) },
        { "--mark-fail-prob", offsetof(struct opts, mark_fail_prob) },
        { "--last-delivery-kill-prob", offsetof(struct opts, last_delivery_prob) },
    };
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        if (strcmp(a, flags[k].name) != 0)
            continue;
        *known = true;
        return parse_prob(a, v, (double *)((char *)o + flags[k].off));
    }
    *known = false;
    return true;
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        bool known;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(USAGE, stdout);
            fputs(USAGE_MORE, stdout);
            fputs(USAGE_FAULTS, stdout);
            return 1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        } else if (strcmp(a, "--naive") == 0) {
            o->naive = true;
            continue;
        } else if (strcmp(a, "--faults") == 0) {
            o->faults = true;
            continue;
        } else if (strcmp(a, "--cluster") == 0) {
            o->cluster = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "shop-chaos: %s needs a value, or is unknown (see --help)\n", a);
            return 2;
        }
        i++;
        if (!parse_int_flag(o, a, v, &known) || (!known && !parse_prob_flag(o, a, v, &known)))
            return 2;
        if (known)
            continue;
        if (strcmp(a, "--sagas") == 0) {
            if (!shop_parse_i64(a, v, 1, 1000000, &n))
                return 2;
            o->sagas = (long)n;
        } else if (strcmp(a, "--seed") == 0) {
            if (!shop_parse_i64(a, v, 0, INT64_MAX, &n))
                return 2;
            o->seed = (uint64_t)n;
        } else if (strcmp(a, "--style") == 0) {
            if (!shop_style_parse(v, &o->style)) {
                fprintf(stderr, "shop-chaos: --style \"%s\" is not a saga style: use %s\n", v,
                        SHOP_STYLES);
                return 2;
            }
        } else if (strcmp(a, "--dir") == 0) {
            /* The audit trails and counts of an earlier run there would be
             * taken for this one's. */
            char why[300];
            if (sup_workdir_unused(v, why, sizeof why) != 0) {
                fprintf(stderr, "shop-chaos: --dir %s %s: pass an empty or new directory\n", v,
                        why);
                return 2;
            }
            o->dir = v;
        } else if (strcmp(a, "--build-dir") == 0) {
            o->build_dir = v;
        } else if (strcmp(a, "--log-level") == 0) {
            /* Checked here rather than by services that exit at start. */
            if (!shop_setting_valid("shop-chaos", a, v))
                return 2;
            o->log_level = v;
        } else if (strcmp(a, "--store") == 0 || strcmp(a, "--instances") == 0) {
            if (shop_scale_flag(&o->scale, a, v, "shop-chaos") != 0)
                return 2;
        } else {
            fprintf(stderr, "shop-chaos: unknown option %s (see --help)\n", a);
            return 2;
        }
    }
    return shop_scale_check(&o->scale, "shop-chaos") != 0 ? 2 : 0;
}

/* Fills in what was not given: the length of the run from its size, the
 * faults --faults turns on, and settings that suit the faults. */
static void resolve(struct opts *o)
{
    if (o->duration_s < 0)
        o->duration_s = o->sagas / 50 > 10 ? o->sagas / 50 : 10;
    if (o->quiet_s < 0)
        o->quiet_s = 120 + o->sagas / 50;
    /* A node's kill takes it down 1 to 4 s and the cluster then settles for
     * half the interval, and a restarted node takes a few seconds to rejoin:
     * at 5 s a 2,000-saga run sees three or more. */
    if (o->broker_ms < 0)
        o->broker_ms = o->cluster ? 5000 : 10000;
    struct {
        double *p, def;
    } probs[] = {
        { &o->disk_full_prob, 0.002 },
        { &o->slow_handler_prob, 0.001 },
        { &o->retry_until_last_prob, 0.01 },
        { &o->last_delivery_prob, 0.25 },
        { &o->mark_fail_prob, 0.002 },
    };
    for (size_t k = 0; k < sizeof probs / sizeof probs[0]; k++)
        if (*probs[k].p < 0)
            *probs[k].p = o->faults ? probs[k].def : 0;
    if (o->disk_full_ms < 0)
        o->disk_full_ms = 1000;
    if (o->slow_handler_ms < 0)
        o->slow_handler_ms = 1500;
    /* A short AckWait, so that work a killed process held is redelivered in
     * seconds rather than the default 30; shorter than a slow handler, so
     * that its batch is redelivered while it still runs. */
    if (o->ack_wait_ms < 0)
        o->ack_wait_ms = o->slow_handler_prob > 0 ? 1000 : 2000;
    /* Events retried until their last delivery finish within the run. */
    if (faulty(o) && o->retry_base_ms < 0)
        o->retry_base_ms = 20;
    if (faulty(o) && o->retry_cap_ms < 0)
        o->retry_cap_ms = 100;
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

/* ---- how services exit ---- */

/* Prints the last lines of a service's log, to show why it died. */
static void print_tail(const char *path, int lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[8192];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
    size_t n = fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    fclose(f);
    buf[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "    (the log is empty)\n");
        return;
    }
    char *start = buf + n;
    for (int seen = 0; start > buf; start--)
        if (start[-1] == '\n' && start != buf + n && ++seen >= lines)
            break;
    for (char *line = start, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) {
            fprintf(stderr, "    | %s\n", line);
            break;
        }
        fprintf(stderr, "    | %.*s\n", (int)(nl - line), line);
    }
}

/* Whether service i's latest process wrote its crash point line before it
 * died: a crash point is the only SIGKILL the harness did not send itself
 * that is expected (the kernel's OOM killer, say, is not). */
static bool crash_point_fired(const sup *s, int i)
{
    char want[48];
    snprintf(want, sizeof want, " fired (pid %d)", (int)sup_service_last_pid(s, i));
    FILE *f = fopen(sup_log_path(s, i), "r");
    if (!f)
        return false;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        fseek(f, size > 65536 ? size - 65536 : 0, SEEK_SET);
    }
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "choreo: crash point ") && strstr(line, want);
    fclose(f);
    return found;
}

static void describe_status(int st, char *out, size_t cap)
{
    if (st == -1)
        snprintf(out, cap, "exit status unknown");
    else if (WIFSIGNALED(st))
        snprintf(out, cap, "signal %d", WTERMSIG(st));
    else if (WIFEXITED(st))
        snprintf(out, cap, "exit %d", WEXITSTATUS(st));
    else
        snprintf(out, cap, "wait status %d", st);
}

/* Records an exit the harness did not cause, and shows the end of the log. */
static void unexpected(struct tally *t, const sup *s, int i, const char *status, bool tty)
{
    if (t->unexpected_exits < EXITS_KEPT) {
        struct bad_exit *b = &t->bad[t->unexpected_exits];
        b->service = i;
        snprintf(b->status, sizeof b->status, "%s", status);
        b->phase = t->phase;
    }
    t->unexpected_exits++;
    fprintf(stderr, "%sshop-chaos: UNEXPECTED: %s (pid %d) %s during %s, neither a crash point "
            "nor a kill of shop-chaos; the end of %s:\n",
            tty ? "\n" : "", sup_service_name(s, i), (int)sup_service_last_pid(s, i), status,
            t->phase, sup_log_path(s, i));
    print_tail(sup_log_path(s, i), 25);
}

/* Judges a service that died on its own: a crash point is expected,
 * anything else fails the run, except a stop once shop-chaos is
 * interrupted: Ctrl-C on a terminal reaches the services too, and they
 * exit (0, or 1 when it came while they started, or by the signal) before
 * shop-chaos stops them, maybe a moment before it sees its own SIGINT. A
 * crash is reported even then. */
static void judge_exit(const sup *s, int i, struct tally *t, bool tty)
{
    int st = sup_service_exit_status(s, i);
    if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && crash_point_fired(s, i)) {
        t->crash_exits++;
        return;
    }
    int sig = st != -1 && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    bool stopped = (st != -1 && WIFEXITED(st)) || sig == SIGINT || sig == SIGTERM ||
                   sig == SIGHUP;
    if (stopped && !interrupted)
        sleep_ms(100);
    if (stopped && interrupted)
        return;
    char what[48];
    describe_status(st, what, sizeof what);
    if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        snprintf(what, sizeof what, "signal 9 without a crash point");
    unexpected(t, s, i, what, tty);
}

/* Restarts the nodes that are down, if any: both of a quorum loss before
 * either is waited for, since neither is healthy without the other. */
static int node_back(sup *s, struct node_outage *out)
{
    int n = out->node[1] >= 0 ? 2 : out->node[0] >= 0 ? 1 : 0;
    int rc = n ? sup_start_nodes(s, out->node, n) : 0;
    out->node[0] = out->node[1] = -1;
    return rc;
}

/* Starts service i. A crash point may fire while it starts (it works right
 * away: the relay publishes, fetches begin), which is followed by another
 * start. Any other failure is an unexpected exit; after three of them in a
 * row it gives up. */
static int start_service(sup *s, int i, struct tally *t, bool tty)
{
    if (t->down.node[1] >= 0 && node_back(s, &t->down) != 0)
        return -1;
    int failures = 0;
    for (int attempt = 0; attempt < 50 && !interrupted; attempt++) {
        int starts = sup_service_starts(s, i);
        if (sup_start_service(s, i) == 0)
            return 0;
        if (interrupted || sup_service_starts(s, i) == starts)
            return -1; /* not even started: the supervisor said why */
        int before = t->unexpected_exits;
        if (sup_service_running(s, i)) {
            sup_kill_service(s, i, SIGKILL);
            unexpected(t, s, i, "no answer to Ping", tty);
        } else {
            judge_exit(s, i, t, tty);
        }
        if (t->unexpected_exits > before && ++failures == 3) {
            fprintf(stderr, "shop-chaos: %s failed to start three times; giving up\n",
                    sup_service_name(s, i));
            return -1;
        }
    }
    return -1;
}

/* Reaps services that died on their own since the last look, judges each
 * and sets died[i]. Returns how many died. */
static int poll_exits(sup *s, struct tally *t, bool tty, bool died[PROCS])
{
    bool was[PROCS];
    for (int i = 0; i < sup_service_count(s); i++) {
        was[i] = sup_service_running(s, i);
        died[i] = false;
    }
    if (sup_poll(s) == 0)
        return 0;
    int n = 0;
    for (int i = 0; i < sup_service_count(s); i++) {
        died[i] = was[i] && !sup_service_running(s, i);
        if (died[i]) {
            judge_exit(s, i, t, tty);
            n++;
        }
    }
    return n;
}

/* Judges and restarts services that died on their own. */
static int reap(sup *s, struct tally *t, bool tty)
{
    bool died[PROCS];
    if (poll_exits(s, t, tty, died) == 0)
        return 0;
    for (int i = 0; i < sup_service_count(s); i++)
        if (died[i] && start_service(s, i, t, tty) != 0)
            return -1;
    return 0;
}

/* Waits for service i, which has its SIGTERM, SIGKILLing it after the
 * supervisor's grace, and judges how it went: exit status 0 (returns true),
 * or a crash point that fired on the way out; still running after the
 * grace, or any other exit, is a failure. */
static bool judge_stop(sup *s, int i, struct tally *t, bool tty)
{
    sup_kill_service(s, i, 0);
    int st = sup_service_exit_status(s, i);
    if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return true;
    if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !crash_point_fired(s, i))
        unexpected(t, s, i, "still running after SIGTERM and the grace", tty);
    else
        judge_exit(s, i, t, tty);
    return false;
}

/* Stops every service with SIGTERM, as an operator would, and judges how
 * each went (judge_stop). */
static void stop_services(sup *s, struct tally *t, bool tty)
{
    bool died[PROCS];
    poll_exits(s, t, tty, died);
    for (int i = 0; i < sup_service_count(s); i++)
        if (sup_service_running(s, i))
            kill(sup_service_pid(s, i), SIGTERM);
    for (int i = 0; i < sup_service_count(s); i++)
        if (sup_service_running(s, i))
            judge_stop(s, i, t, tty);
}

/* ---- chaos ---- */

static void progress(const struct load_job *j, long n, const struct tally *t, int64_t t0)
{
    fprintf(stderr, "\r  placed %ld/%ld  kills %d  broker restarts %d  crashes %d  %.0f s\033[K",
            atomic_load(&j->st.placed), n, t->kills, t->broker_restarts, t->crash_exits,
            (double)(now_ms() - t0) / 1e3);
}

/* The first instance of a scaled service from i on, the frozen one left
 * out; i itself when there is none. */
static int instance_from(const struct opts *o, const sup *s, const struct tally *t, int i)
{
    int n = sup_service_count(s);
    for (int k = 0; k < n; k++) {
        int j = (i + k) % n;
        if (o->scale.instances[service_of[j]] > 1 && !(t->freeze.pid > 0 && j == t->freeze.i))
            return j;
    }
    return i;
}

/* SIGKILLs one service at random and restarts it after a random delay.
 * Until there were --min-instance-kills, every other kill goes to an
 * instance of a scaled service: left to the draw, with one instance of
 * five frozen much of the time, a slow run of 17 kills had hit one once. */
static int kill_one(const struct opts *o, sup *s, struct tally *t, bool tty)
{
    int i = (int)(rnd() % (uint64_t)sup_service_count(s));
    if (t->instance_kills < o->min_instance_kills && t->kills % 2 == 1)
        i = instance_from(o, s, t, i);
    /* Not the instance frozen for its relay: its death would end its
     * session, and the takeover would prove nothing about the freeze. */
    if (t->freeze.pid > 0 && i == t->freeze.i)
        i = (i + 1) % sup_service_count(s);
    if (sup_kill_service(s, i, SIGKILL) != 0)
        return -1;
    /* It may have died on its own just before the kill; then its status
     * says how, and that is judged like any other exit. */
    int st = sup_service_exit_status(s, i);
    if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        t->kills++;
        t->instance_kills += o->scale.instances[service_of[i]] > 1;
    } else
        judge_exit(s, i, t, tty);
    sleep_ms(o->restart_ms ? (int64_t)(rnd() % (uint64_t)(o->restart_ms + 1)) : 0);
    return start_service(s, i, t, tty);
}

/* SIGKILLs one NATS node: in every other outage the stream's leader, as the
 * monitoring endpoint names it (a random node when none is named). In the
 * second outage of every three a second node goes with it, and the cluster
 * has lost its quorum until they are back: nothing can be published or
 * fetched. In the third, the node loses its store as well, as with a disk
 * that failed and was replaced: it comes back empty and takes the stream
 * and its consumers back from the other two. A service the harness
 * (re)starts meanwhile is started as the nodes come back (start_service),
 * and waits at start for JetStream. */
static void kill_node(sup *s, struct tally *t, struct node_outage *out)
{
    int nodes = sup_nats_nodes(s), outages = t->node_kills - t->quorum_losses;
    int leader = outages % 2 == 0 ? sup_stream_leader(s, "CHOREO") : -1;
    int i = leader >= 0 ? leader : (int)(rnd() % (uint64_t)nodes);
    bool quorum = outages % 3 == 1;
    sup_stop_node(s, i, SIGKILL);
    out->node[0] = i;
    out->node[1] = -1;
    if (outages % 3 == 2 && sup_lose_node_store(s, i) == 0)
        t->store_losses++;
    if (quorum) {
        out->node[1] = (i + 1 + (int)(rnd() % (uint64_t)(nodes - 1))) % nodes;
        sup_stop_node(s, out->node[1], SIGKILL);
        t->quorum_losses++;
    }
    t->node_kills += quorum ? 2 : 1;
    t->leader_kills += leader >= 0;
    out->back_at = now_ms() + 1000 + (int64_t)(rnd() % 3001);
}

/* Stops a process with SIGSTOP and continues it 0.5 to 4 s later: every
 * thread of it stalls at once, its connections stay open and its
 * transaction, pull requests and unacknowledged deliveries wait, as with a
 * host that froze or a process swapped out. The second pause of every
 * three stops the broker (with --cluster a random node) instead of a
 * service. Waits out the pause: nothing else happens meanwhile, so no
 * process is killed or stopped while it is stopped. */
static void pause_one(sup *s, struct tally *t)
{
    pid_t pid = 0;
    bool broker = t->pauses % 3 == 1;
    if (broker) {
        int nodes = sup_nats_nodes(s);
        pid = nodes > 1 ? sup_node_pid(s, (int)(rnd() % (uint64_t)nodes)) : sup_broker_pid(s);
    } else {
        pid = sup_service_pid(s, (int)(rnd() % (uint64_t)sup_service_count(s)));
    }
    if (pid <= 0 || kill(pid, SIGSTOP) != 0)
        return; /* not running just now (a node down, a service restarting) */
    sleep_ms(500 + (int64_t)(rnd() % 3501));
    kill(pid, SIGCONT);
    t->pauses++;
    t->broker_pauses += broker;
}

/* The relay_lease_ms of the services: a relay frozen this long loses the
 * relay to another instance (PostgreSQL), and pauses of 0.5 to 4 s, of a
 * service or of the broker (whose PubAcks a relay then waits for), pass it
 * more often than not. */
#define CHAOS_RELAY_LEASE_MS 2000

/* Whether process i's metrics give gauge the value 1. */
static bool gauge_is_1(const sup *s, int i, const char *gauge)
{
    static char text[262144];
    char want[128];
    snprintf(want, sizeof want, "\n%s{service=\"%s\"} 1\n", gauge,
             shop_service_names[service_of[i]]);
    return sup_scrape(s, i, text, sizeof text) == 200 && strstr(text, want) != NULL;
}

/* Whether process i says its relay is the one publishing the outbox. */
static bool relay_active(const sup *s, int i)
{
    return gauge_is_1(s, i, "choreo_relay_active");
}

/* Restarts one service as a deploy would, under load: SIGTERM, which it
 * must answer by finishing the batch in hand, handing back what it fetched
 * and exiting 0 within the grace, then a start straight away. Only one that
 * is connected, so running choreo_service_run: before it, a shop service
 * still sets up its schema (waiting for PostgreSQL while the harness has it
 * down) with SIGTERM's default action, which ends it; and the first
 * instance of a scaled service counts as started once either instance
 * answers its Ping. */
static int restart_one(sup *s, struct tally *t, bool tty)
{
    int i = (int)(rnd() % (uint64_t)sup_service_count(s));
    if ((t->freeze.pid > 0 && i == t->freeze.i) || !sup_service_running(s, i) ||
        !gauge_is_1(s, i, "choreo_nats_connected"))
        return 0;
    kill(sup_service_pid(s, i), SIGTERM);
    t->graceful_restarts += judge_stop(s, i, t, tty);
    return start_service(s, i, t, tty);
}

/* Stops (SIGSTOP) the instance whose relay is active, of a service that
 * runs several on one PostgreSQL database, as a host that froze: it keeps
 * its connections and its relay lock while its machine answers, and the
 * database must end its session after relay_lease_ms for another instance
 * to take the relay over. The chaos goes on meanwhile; thaw_relay continues
 * it relay_lease_ms and 1 to 3 s later. */
static void freeze_relay(const struct opts *o, sup *s, struct tally *t)
{
    for (int i = 0; i < sup_service_count(s); i++) {
        if (o->scale.instances[service_of[i]] < 2 || !relay_active(s, i))
            continue;
        pid_t pid = sup_service_pid(s, i);
        if (pid <= 0 || kill(pid, SIGSTOP) != 0)
            return;
        t->freeze.i = i;
        t->freeze.pid = pid;
        t->freeze.thaw_at = now_ms() + CHAOS_RELAY_LEASE_MS + 1000 + (int64_t)(rnd() % 2001);
        t->freeze.look_at = now_ms() + CHAOS_RELAY_LEASE_MS;
        t->freeze.taken_over = false;
        t->relay_freezes++;
        return;
    }
}

/* While an instance is frozen, looks every 250 ms from its lease on for
 * another instance of its service whose relay is active (the frozen one,
 * killed and started again meanwhile, counts as another). */
static void watch_freeze(sup *s, struct tally *t)
{
    int64_t now = now_ms();
    if (t->freeze.taken_over || now < t->freeze.look_at)
        return;
    t->freeze.look_at = now + 250;
    int i = t->freeze.i;
    for (int k = 0; k < sup_service_count(s) && !t->freeze.taken_over; k++)
        if (service_of[k] == service_of[i] &&
            (k != i || sup_service_pid(s, i) != t->freeze.pid) && relay_active(s, k))
            t->freeze.taken_over = true;
}

/* Continues the frozen process (unless it was killed and started again
 * meanwhile), counting the freeze as taken over if it was. */
static void thaw_relay(sup *s, struct tally *t)
{
    t->freeze.look_at = 0; /* a last look: a pause elsewhere may have held up the loop */
    watch_freeze(s, t);
    t->relay_takeovers += t->freeze.taken_over;
    if (sup_service_pid(s, t->freeze.i) == t->freeze.pid)
        kill(t->freeze.pid, SIGCONT);
    t->freeze.pid = 0;
}

/* Deletes one durable consumer of the stream, picked at random, on the
 * server, as a person or a clean-up script might while its service runs:
 * the service has to notice and make it again, and the events it delivers
 * anew reach an inbox that drops those already applied. Quietly does
 * nothing when the broker cannot be asked just now. Called while every
 * node runs, so the first one answers. */
static void delete_consumer(sup *s, struct tally *t)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerNamesList *names = NULL;
    if (natsConnection_ConnectTo(&nc, sup_node_url(s, 0)) == NATS_OK &&
        natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
        js_ConsumerNames(&names, js, "CHOREO", NULL, NULL) == NATS_OK && names->Count > 0) {
        const char *name = names->List[rnd() % (uint64_t)names->Count];
        if (js_DeleteConsumer(js, "CHOREO", name, NULL, NULL) == NATS_OK)
            t->consumers_deleted++;
    }
    jsConsumerNamesList_Destroy(names);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* Whether the file at path holds text. */
static bool file_has(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* A running service on SQLite picked at random, the order service left out
 * when but_order; -1 when there is none. */
static int pick_sqlite_service(const struct opts *o, const sup *s, bool but_order)
{
    int pick[PROCS], n = 0;
    for (int k = 0; k < sup_service_count(s); k++)
        if (!o->scale.postgres[service_of[k]] && sup_service_running(s, k) &&
            !(but_order && service_of[k] == 0))
            pick[n++] = k;
    return n ? pick[rnd() % (uint64_t)n] : -1;
}

/* A second process of a running service started on its SQLite database (a
 * deploy that overlaps the old process, an operator's slip) must be refused
 * at once, naming the process that holds the database, and leave that one
 * untouched. Every other copy goes on a new database file of its own (a
 * wrong path, a copy on another file), half of those while the first is
 * frozen (SIGSTOP) for its whole start, so that it looks gone: it must be
 * refused for its consumers' binding to the first database. One that runs
 * on, or exits for another reason, fails the run. Services on PostgreSQL
 * are left out: their instances share a database by design. When the
 * first process died meanwhile (a crash point), the copy on its database
 * may have had it to itself: it is stopped like a killed service and not
 * judged. */
static int second_copy(const struct opts *o, sup *s, struct tally *t, bool tty)
{
    if (reap(s, t, tty) != 0) /* one that died since the loop's last look */
        return -1;
    int i = pick_sqlite_service(o, s, false);
    if (i < 0)
        return 0;
    char log[700], other[700];
    snprintf(log, sizeof log, "%s/%s-second.log", sup_workdir(s), sup_service_name(s, i));
    unlink(log);
    bool elsewhere = t->second_copies % 2 == 1;
    pid_t frozen = elsewhere && t->second_copies % 4 == 1 ? sup_service_pid(s, i) : 0;
    if (elsewhere) {
        snprintf(other, sizeof other, "%s/%s-other.db", sup_workdir(s), sup_service_name(s, i));
        unlink(other);
    }
    if (frozen > 0 && kill(frozen, SIGSTOP) != 0)
        frozen = 0;
    /* On a cluster the copy's start may wait out the elections after nodes
     * came back before it can look at the consumers. */
    int wait_ms = sup_nats_nodes(s) > 1 ? 60000 : 15000;
    int st = 0;
    int rc = sup_run_second_copy(s, i, elsewhere ? other : NULL, wait_ms, log, &st);
    if (frozen > 0)
        kill(frozen, SIGCONT);
    bool died[PROCS];
    poll_exits(s, t, tty, died);
    for (int k = 0; k < sup_service_count(s); k++)
        if (died[k] && start_service(s, k, t, tty) != 0)
            return -1;
    if (rc < 0)
        return -1;
    if (rc == 2 || died[i])
        return 0;
    t->second_copies++;
    t->frozen_copies += frozen > 0;
    if (rc == 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0 &&
        file_has(log, elsewhere ? "is bound to another database" : "is in use by service"))
        return 0;
    char what[48];
    describe_status(st, what, sizeof what);
    if (rc == 1)
        snprintf(what, sizeof what, "it still ran after %d s", wait_ms / 1000);
    t->second_copy_failures++;
    fprintf(stderr, "%sshop-chaos: a second %s started on %s%s was not refused (%s); the end "
            "of %s:\n",
            tty ? "\n" : "", sup_service_name(s, i),
            elsewhere ? "a database of its own" : "the database of the running one",
            frozen > 0 ? ", the running one frozen" : "",
            what, log);
    print_tail(log, 25);
    return 0;
}

/* Holds the write lock of a running service's SQLite database from
 * outside, as a script or a sqlite3 shell with a transaction open would:
 * the service's commits, relay marks, delayed-event scans and prunes meet
 * SQLITE_BUSY and must lose nothing. Most holds last 0.2 to 3 s, within
 * busy_timeout_ms (5 s), so the service waits them out; the second of
 * every four lasts 5.5 to 8 s, past it, so its transactions fail to begin
 * and are retried (never the order service's: the load's orders would
 * fail, and retrying a refused command is its client's part). Waits out
 * the hold, as pause_one does. */
static int lock_db(const struct opts *o, sup *s, struct tally *t, bool tty)
{
    bool past_timeout = t->db_locks % 4 == 1;
    if (reap(s, t, tty) != 0)
        return -1;
    int i = pick_sqlite_service(o, s, past_timeout);
    if (i < 0)
        return 0;
    int rc = 0;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(sup_db_path(s, i), &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 1000);
        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
            int64_t until = now_ms() + (past_timeout ? 5500 + (int64_t)(rnd() % 2501)
                                                     : 200 + (int64_t)(rnd() % 2801));
            /* The other services that die meanwhile (crash points) are
             * restarted now, not after the hold; the locked one after it. */
            bool died[PROCS] = { false };
            while (rc == 0 && !died[i] && now_ms() < until) {
                sleep_ms(100);
                poll_exits(s, t, tty, died);
                for (int k = 0; k < sup_service_count(s) && rc == 0; k++)
                    if (died[k] && k != i && start_service(s, k, t, tty) != 0)
                        rc = -1;
            }
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            t->db_locks++;
            if (rc == 0 && died[i] && start_service(s, i, t, tty) != 0)
                rc = -1;
        }
    }
    sqlite3_close(db);
    return rc;
}

/* Kills and restarts until the load has placed every order, then on until
 * there were --min-kills kills, --min-instance-kills kills of an instance
 * and --min-pauses pauses, for at most three times --duration-s more: each
 * kill waits for its restart, which on a slow machine or a sanitized build
 * leaves fewer kills than the interval promises (under ThreadSanitizer, with
 * other tests beside it, a restart took about 4 s). */
static int chaos_loop(const struct opts *o, sup *s, struct load_job *j, struct tally *t,
                      bool tty)
{
    int64_t t0 = now_ms(), next_kill = t0 + around(o->kill_ms),
            next_broker = t0 + around(o->broker_ms), next_postgres = t0 + around(o->postgres_ms),
            next_pause = t0 + around(o->pause_ms),
            next_delete = t0 + around(o->consumer_delete_ms),
            next_copy = t0 + around(o->second_copy_ms), next_lock = t0 + around(o->db_lock_ms),
            next_freeze = t0 + around(o->relay_freeze_ms),
            next_restart = t0 + around(4 * o->kill_ms), drawn = 0, placed_at = 0;
    bool scaled = false;
    for (int k = 0; k < SHOP_SERVICES; k++)
        scaled = scaled || o->scale.instances[k] > 1;
    struct node_outage *down = &t->down;
    for (;;) {
        if (atomic_load(&j->done) && placed_at == 0)
            placed_at = now_ms();
        if (placed_at != 0 &&
            ((t->kills >= o->min_kills && t->instance_kills >= o->min_instance_kills &&
              t->pauses >= o->min_pauses &&
              (!scaled || t->relay_freezes >= o->min_relay_freezes) && t->freeze.pid == 0) ||
             now_ms() - placed_at > 3 * o->duration_s * 1000))
            break;
        if (interrupted || reap(s, t, tty) != 0)
            return -1;
        int64_t now = now_ms();
        if (now >= next_kill) {
            if (kill_one(o, s, t, tty) != 0)
                return -1;
            next_kill = now_ms() + around(o->kill_ms);
        }
        if (now >= next_restart) {
            if (restart_one(s, t, tty) != 0)
                return -1;
            next_restart = now_ms() + around(4 * o->kill_ms);
        }
        if (down->node[0] >= 0 && now >= down->back_at) {
            if (node_back(s, down) != 0)
                return -1;
            /* The cluster settles before the next kill, however long the
             * restart took. */
            if (next_broker < now_ms() + o->broker_ms / 2)
                next_broker = now_ms() + o->broker_ms / 2;
        }
        if (now >= next_broker && o->cluster && down->node[0] < 0) {
            kill_node(s, t, down);
            next_broker = now_ms() + around(o->broker_ms);
        } else if (now >= next_broker && !o->cluster) {
            sup_stop_broker(s, rnd() % 2 ? SIGKILL : SIGTERM);
            sleep_ms((int64_t)(rnd() % 1000));
            if (sup_start_broker(s) != 0)
                return -1;
            t->broker_restarts++;
            next_broker = now_ms() + around(o->broker_ms);
        }
        /* Not while an instance is frozen for its relay: a pause holds up
         * this loop, and of the other instance, the takeover too. */
        if (now >= next_pause && down->node[0] < 0 && t->freeze.pid == 0) {
            pause_one(s, t);
            next_pause = now_ms() + around(o->pause_ms);
        }
        if (t->freeze.pid > 0)
            watch_freeze(s, t);
        if (t->freeze.pid > 0 && now >= t->freeze.thaw_at) {
            thaw_relay(s, t);
            next_freeze = now_ms() + around(o->relay_freeze_ms);
        } else if (scaled && t->freeze.pid == 0 && now >= next_freeze) {
            freeze_relay(o, s, t);
            next_freeze = now_ms() + around(o->relay_freeze_ms);
        }
        if (now >= next_delete && down->node[0] < 0) {
            delete_consumer(s, t);
            next_delete = now_ms() + around(o->consumer_delete_ms);
        }
        /* Not while cluster nodes are down: the copy's start waits for
         * JetStream, which a lost quorum keeps away until node_back, and
         * node_back waits for this loop, so the copy could never be
         * refused in time. */
        if (now >= next_copy && down->node[0] < 0) {
            if (second_copy(o, s, t, tty) != 0)
                return -1;
            next_copy = now_ms() + around(o->second_copy_ms);
        }
        if (now >= next_lock) {
            if (lock_db(o, s, t, tty) != 0)
                return -1;
            next_lock = now_ms() + around(o->db_lock_ms);
        }
        /* The database of the services on PostgreSQL crashes or is
         * restarted: every connection drops, open transactions roll back.
         * Not while an instance is frozen for its relay (see kill_one). */
        if (now >= next_postgres && sup_postgres_pid(s) > 0 && t->freeze.pid == 0) {
            if (sup_restart_postgres(s, rnd() % 2 ? SIGKILL : SIGINT) != 0)
                return -1;
            t->postgres_restarts++;
            next_postgres = now_ms() + around(o->postgres_ms);
        }
        if (tty && now - drawn > 200) {
            progress(j, o->sagas, t, t0);
            drawn = now;
        }
        sleep_ms(10);
    }
    return node_back(s, down);
}

/* The chaos loop, leaving no process frozen however it ends. */
static int chaos(const struct opts *o, sup *s, struct load_job *j, struct tally *t, bool tty)
{
    int rc = chaos_loop(o, s, j, t, tty);
    if (t->freeze.pid > 0)
        thaw_relay(s, t);
    return rc;
}

/* ---- reading the databases ---- */

/* One number from a database opened read-only (a SQLite file, or a
 * PostgreSQL database); -1 when it cannot be read. */
static long db_count(const char *path, const char *sql)
{
    if (shop_is_postgres_url(path))
        return shop_pg_count(path, sql);
    sqlite3 *db;
    long n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        sqlite3_busy_timeout(db, 2000);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static long count_pending(const sup *s)
{
    return db_count(sup_db_path(s, 0), "SELECT COUNT(*) FROM orders WHERE state = 'PENDING'");
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

static const char AUDIT_SQL[] =
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
    "  SELECT consumer, event_id, status FROM s0.choreo_dead UNION ALL"
    "  SELECT consumer, event_id, status FROM s1.choreo_dead UNION ALL"
    "  SELECT consumer, event_id, status FROM s2.choreo_dead UNION ALL"
    "  SELECT consumer, event_id, status FROM s3.choreo_dead;"
    "CREATE TEMP TABLE consumers AS SELECT DISTINCT consumer, type FROM applied;"
    /* A message still parked is not lost: a person sees it in dead list.
     * One the operator retried counts once its consumer applied it. */
    "CREATE TEMP TABLE missing AS"
    "  SELECT e.event_id, e.saga, c.consumer FROM emitted e JOIN consumers c ON c.type = e.type"
    "  WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.event_id = e.event_id"
    "                    AND a.consumer = c.consumer)"
    "    AND NOT EXISTS (SELECT 1 FROM dead d WHERE d.event_id = e.event_id"
    "                    AND d.consumer = c.consumer AND d.status = 'parked');"
    "CREATE TEMP TABLE doubled AS"
    "  SELECT consumer, event_id, saga FROM applied GROUP BY consumer, event_id"
    "  HAVING COUNT(*) > 1;"
    /* An event applied that no service's committed transaction emitted:
     * published from a transaction that rolled back. The decisions on held
     * steps are written by choreoctl, not by a service, and have no audit
     * row. */
    "CREATE TEMP TABLE phantom AS"
    "  SELECT a.consumer, a.event_id, a.saga FROM applied a"
    "  WHERE a.type <> 'ChoreoHoldDecided'"
    "    AND NOT EXISTS (SELECT 1 FROM emitted e WHERE e.event_id = a.event_id);";

/* The audit trails of the four services, read together: an emitted event
 * that a consumer of its type never applied (and that is not parked there)
 * is lost; a (consumer, event) applied more than once is duplicated; an
 * applied event that no committed transaction emitted is a phantom. */
static int audit(const sup *s, const shop_world *w, struct tally *t)
{
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return -1;
    for (int i = 0; i < 4; i++) {
        /* A service on PostgreSQL is read from a snapshot of its database. */
        char copy[PATH_MAX];
        const char *path = sup_db_path(s, i);
        if (shop_is_postgres_url(path)) {
            char why[512];
            snprintf(copy, sizeof copy, "%s/%s-snapshot.db", sup_workdir(s), shop_service_names[i]);
            if (shop_pg_snapshot(path, copy, why, sizeof why) != 0) {
                fprintf(stderr, "shop-chaos: cannot read %s: %s\n", path, why);
                sqlite3_close(db);
                return -1;
            }
            path = copy;
        }
        char *sql = sqlite3_mprintf("ATTACH 'file:%q?mode=ro' AS s%d", path, i);
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            fprintf(stderr, "shop-chaos: cannot read %s: %s\n", sup_db_path(s, i),
                    sqlite3_errmsg(db));
            sqlite3_close(db);
            return -1;
        }
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, AUDIT_SQL, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "shop-chaos: cannot read the audit trails: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    t->lost_events = one_number(db, "SELECT COUNT(*) FROM missing");
    t->lost_sagas = one_number(db, "SELECT COUNT(DISTINCT saga) FROM missing");
    t->duplicated_events = one_number(db, "SELECT COUNT(*) FROM doubled");
    t->duplicated_sagas = one_number(db, "SELECT COUNT(DISTINCT saga) FROM doubled");
    t->phantom_events = one_number(db, "SELECT COUNT(*) FROM phantom");
    t->parked = one_number(db, "SELECT COUNT(*) FROM dead");
    t->parked_retried = one_number(db, "SELECT COUNT(*) FROM dead WHERE status = 'retried'");
    t->still_parked = one_number(db, "SELECT COUNT(*) FROM dead WHERE status = 'parked'");
    /* Orders the client was told exist must exist. */
    t->unknown_orders = 0;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM s0.orders WHERE order_id = ?1", -1, &st,
                           NULL) != SQLITE_OK) {
        fprintf(stderr, "shop-chaos: cannot look up orders: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    for (long i = 0; i < w->norders; i++) {
        if (!w->orders[i].order_id[0])
            continue;
        sqlite3_bind_text(st, 1, w->orders[i].order_id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) == 0)
            t->unknown_orders++;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    bool unread = t->lost_events < 0 || t->duplicated_events < 0 || t->phantom_events < 0 ||
                  t->parked < 0;
    return unread ? -1 : 0;
}

/* Crash points and faults that fired, from the lines the services wrote
 * in their logs ("choreo: crash point NAME fired (pid N)", "choreo: fault
 * NAME fired (pid N)"), and sanitizer reports, which fail the run even when
 * the sanitizer was told to carry on. */
static void count_log_lines(const sup *s, struct tally *t)
{
    static const struct {
        const char *needle;
        size_t off;
    } lines[] = {
        { "choreo: crash point last_delivery fired", offsetof(struct tally, last_delivery_kills) },
        { "choreo: crash point ", offsetof(struct tally, crashpoints_fired) },
        { "choreo: fault disk_full fired", offsetof(struct tally, disk_full_episodes) },
        { "choreo: fault slow_handler fired", offsetof(struct tally, slow_handlers) },
        { "choreo: fault retry_until_last fired", offsetof(struct tally, retry_until_last) },
        { "choreo: fault mark_fail fired", offsetof(struct tally, mark_failures) },
        { "runtime error: ", offsetof(struct tally, sanitizer_reports) },
        { "ERROR: AddressSanitizer", offsetof(struct tally, sanitizer_reports) },
        { "ERROR: LeakSanitizer", offsetof(struct tally, sanitizer_reports) },
        { "WARNING: ThreadSanitizer", offsetof(struct tally, sanitizer_reports) },
    };
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++)
        *(long *)((char *)t + lines[k].off) = 0;
    for (int i = 0; i < sup_service_count(s); i++) {
        FILE *f = fopen(sup_log_path(s, i), "r");
        if (!f)
            continue;
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++) {
                const char *p = strstr(line, lines[k].needle);
                if (p && (strncmp(p, "choreo: ", 8) != 0 || strstr(p, " fired")))
                    (*(long *)((char *)t + lines[k].off))++;
            }
        }
        fclose(f);
    }
}

/* ---- after the storm ---- */

/* Rows that grow while sagas make progress (events emitted and applied,
 * messages parked, in each database) and the pending sagas: while anything
 * moves, one of them changes. */
struct activity {
    long rows[SHOP_SERVICES][3];
    long pending;
};

static void measure(const sup *s, struct activity *a)
{
    static const char *const sql[3] = { "SELECT COUNT(*) FROM choreo_audit_emitted",
                                        "SELECT COUNT(*) FROM choreo_audit_applied",
                                        "SELECT COUNT(*) FROM choreo_dead" };
    memset(a, 0, sizeof *a);
    for (int i = 0; i < SHOP_SERVICES; i++)
        for (int k = 0; k < 3; k++)
            a->rows[i][k] = db_count(sup_db_path(s, i), sql[k]);
    a->pending = count_pending(s);
}

/* Waits (still restarting crashed services) until no saga is pending, or,
 * when still_ms > 0, until nothing has moved for still_ms: with faults on,
 * a saga whose event is parked stays pending until the operator retries
 * it, and waiting longer would not change that. */
static int quiet(const struct opts *o, sup *s, struct tally *t, bool tty, int64_t still_ms,
                 bool *final)
{
    int64_t drawn = 0, measured_at = 0, moved_at = now_ms();
    struct activity last, now;
    memset(&last, 0, sizeof last);
    *final = false;
    for (int64_t until = now_ms() + o->quiet_s * 1000; now_ms() < until;) {
        if (interrupted || reap(s, t, tty) != 0)
            return -1;
        long pending = count_pending(s);
        if (pending == 0) {
            *final = true;
            break;
        }
        if (still_ms > 0 && now_ms() - measured_at >= 1000) {
            measure(s, &now);
            measured_at = now_ms();
            if (memcmp(&now, &last, sizeof now) != 0)
                moved_at = measured_at;
            else if (measured_at - moved_at >= still_ms)
                break;
            last = now;
        }
        if (tty && now_ms() - drawn > 500) {
            fprintf(stderr, "\r  %s: %ld sagas pending\033[K", t->phase, pending);
            drawn = now_ms();
        }
        sleep_ms(50);
    }
    if (tty)
        fprintf(stderr, "\r\033[K");
    return 0;
}

/* Events still on their way (a deadline not yet due, a redelivery after the
 * last kill, a retried message) are not lost: gives them until the longest
 * delay has passed, with the services still running. */
static int in_flight(const struct opts *o, sup *s, const shop_world *w, struct tally *t, bool tty)
{
    for (int64_t until = now_ms() + o->deadline_ms + 30000;;) {
        struct tally probe = { 0 };
        if (interrupted || reap(s, t, tty) != 0 || audit(s, w, &probe) != 0)
            return -1;
        if ((probe.lost_events == 0 && probe.unknown_orders == 0) || now_ms() > until)
            return 0;
        sleep_ms(500);
    }
}

/* Runs choreoctl with args, its output appended to log; waits at most
 * two minutes. Returns its wait status, or -1 when it could not run. */
static int run_choreoctl(const char *const *args, const char *log)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "shop-chaos: cannot open %s: %s\n", log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGPIPE, SIG_DFL); /* ignored here, and that would be inherited */
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    close(fd);
    if (pid < 0) {
        fprintf(stderr, "shop-chaos: cannot fork for choreoctl: %s\n", strerror(errno));
        return -1;
    }
    int st = -1;
    for (int64_t until = now_ms() + 120000; waitpid(pid, &st, WNOHANG) == 0;) {
        if (now_ms() > until || interrupted) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        sleep_ms(20);
    }
    return st;
}

/* Waits until nothing has moved for still_ms (at most --quiet-s). */
static int wait_still(const struct opts *o, sup *s, struct tally *t, bool tty, int64_t still_ms)
{
    struct activity last, now;
    measure(s, &last);
    for (int64_t moved = now_ms(), until = moved + o->quiet_s * 1000;
         now_ms() - moved < still_ms && now_ms() < until;) {
        for (int k = 0; k < 20; k++) {
            if (interrupted || reap(s, t, tty) != 0)
                return -1;
            sleep_ms(50);
        }
        measure(s, &now);
        if (memcmp(&now, &last, sizeof now) != 0)
            moved = now_ms();
        last = now;
    }
    return 0;
}

static long count_parked(const sup *s, int i)
{
    return db_count(sup_db_path(s, i), "SELECT COUNT(*) FROM choreo_dead WHERE status = 'parked'");
}

/* Messages parked in all four databases (those that can be read). */
static long total_parked(const sup *s)
{
    long n = 0;
    for (int i = 0; i < SHOP_SERVICES; i++) {
        long k = count_parked(s, i);
        n += k > 0 ? k : 0;
    }
    return n;
}

/* choreoctl dead retry --all on every database that has parked messages. */
static void retry_parked(const char *choreoctl, const sup *s, struct tally *t)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/choreoctl.log", sup_workdir(s));
    for (int i = 0; i < SHOP_SERVICES; i++) { /* once per database */
        if (count_parked(s, i) <= 0)
            continue;
        const char *db = sup_db_path(s, i);
        const char *args[] = { choreoctl, "--db", db, "--nats-url", sup_url(s), "dead", "retry",
                               "--all", NULL };
        int st = run_choreoctl(args, log);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char what[48];
            describe_status(st, what, sizeof what);
            fprintf(stderr, "shop-chaos: choreoctl dead retry --all for %s failed (%s); the end "
                    "of %s:\n", sup_service_name(s, i), what, log);
            print_tail(log, 15);
            t->retry_failures++;
        }
    }
}

/* What an operator does after the incident: restart the services with the
 * faults off (crash points stay on), let what was on its way arrive (a
 * message redelivered on its last delivery is parked only now), and retry
 * every parked message with choreoctl dead retry; then look again, since
 * a message can be parked while the retries run, at most three rounds. */
static int repair(const struct opts *o, const char *choreoctl, sup *s,
                  const char *const *const env[], struct tally *t, bool tty)
{
    stop_services(s, t, tty);
    for (int i = 0; i < sup_service_count(s); i++)
        if (sup_set_service_env(s, i, env[service_of[i]]) != 0 ||
            start_service(s, i, t, tty) != 0)
            return -1;
    for (int round = 0; round < 3; round++) {
        if (wait_still(o, s, t, tty, 2 * o->ack_wait_ms + 1000) != 0)
            return -1;
        long parked = total_parked(s);
        if (parked == 0)
            break;
        if (!o->json)
            fprintf(stderr, "shop-chaos: retrying %ld parked messages with choreoctl\n", parked);
        retry_parked(choreoctl, s, t);
    }
    return 0;
}

/* ---- the report ---- */

/* Writes s as a JSON string (the harness's own texts and paths). */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

struct outcome {
    const struct opts *o;
    const struct load_job *j;
    const struct tally *t;
    const shop_check_report *c;
    const shop_review_stats *review;
    bool checked, ok;
    const char *error;   /* why the run ended early, or NULL */
    const char *faults;  /* CHOREO_FAULTS as given to the services */
    const sup *s;
    double wall_s;
};

/* The value, or -1 when the run ended before the audit measured it. */
static long measured(const struct tally *t, long v)
{
    return t->audited ? v : -1;
}

static long lost_total(const struct tally *t)
{
    return measured(t, t->lost_sagas + t->pending + t->unknown_orders);
}

static void print_json(const struct outcome *r)
{
    const struct opts *o = r->o;
    const struct tally *t = r->t;
    printf("{\"mode\": \"%s\", \"style\": \"%s\", \"ok\": %s, \"sagas\": %ld, \"placed\": %ld, "
           "\"failed_requests\": %ld, \"kills\": %d, \"graceful_restarts\": %d, "
           "\"broker_restarts\": %d, "
           "\"nats_nodes\": %d, \"node_kills\": %d, \"leader_kills\": %d, \"quorum_losses\": %d, "
           "\"store_losses\": %d, "
           "\"processes\": %d, \"instance_kills\": %d, \"postgres_restarts\": %d, "
           "\"pauses\": %d, \"broker_pauses\": %d, \"consumers_deleted\": %d, "
           "\"second_copies\": %d, \"second_copies_elsewhere\": %d, \"frozen_copies\": %d, "
           "\"second_copy_failures\": %d, \"db_locks\": %d, "
           "\"crashpoints_fired\": %ld, \"last_delivery_kills\": %ld, "
           "\"disk_full_episodes\": %ld, \"slow_handlers\": %ld, \"retry_until_last\": %ld, "
           "\"mark_failures\": %ld, \"relay_freezes\": %d, \"relay_takeovers\": %d, "
           "\"relays_not_one\": %d, ",
           o->naive ? "naive" : "outbox", shop_style_name(o->style), r->ok ? "true" : "false",
           o->sagas, atomic_load(&r->j->st.placed), atomic_load(&r->j->st.failed), t->kills,
           t->graceful_restarts, t->broker_restarts, o->cluster ? 3 : 1, t->node_kills,
           t->leader_kills, t->quorum_losses, t->store_losses, sup_service_count(r->s),
           t->instance_kills, t->postgres_restarts,
           t->pauses, t->broker_pauses, t->consumers_deleted, t->second_copies,
           t->second_copies / 2, t->frozen_copies, t->second_copy_failures, t->db_locks,
           t->crashpoints_fired, t->last_delivery_kills,
           t->disk_full_episodes, t->slow_handlers, t->retry_until_last, t->mark_failures,
           t->relay_freezes, t->relay_takeovers, t->relays_not_one);
    printf("\"lost\": %ld, \"lost_events\": %ld, \"pending\": %ld, \"unknown_orders\": %ld, "
           "\"duplicated\": %ld, \"duplicated_events\": %ld, \"phantom_events\": %ld, "
           "\"parked\": %ld, "
           "\"parked_retried\": %ld, \"still_parked\": %ld, \"retry_failures\": %ld, ",
           lost_total(t), measured(t, t->lost_events), measured(t, t->pending),
           measured(t, t->unknown_orders), measured(t, t->duplicated_sagas),
           measured(t, t->duplicated_events), measured(t, t->phantom_events),
           measured(t, t->parked),
           measured(t, t->parked_retried), measured(t, t->still_parked), t->retry_failures);
    const shop_check_report *c = r->c;
    printf("\"held\": %lld, \"approved\": %lld, \"rejected\": %lld, \"expired\": %lld, "
           "\"reviewer\": {\"approved\": %ld, \"rejected\": %ld, \"left\": %ld, "
           "\"refused\": %ld, \"failures\": %ld}, ",
           r->checked ? (long long)c->holds : -1LL,
           r->checked ? (long long)c->holds_approved : -1LL,
           r->checked ? (long long)c->holds_rejected : -1LL,
           r->checked ? (long long)c->holds_expired : -1LL, r->review->approved,
           r->review->rejected, r->review->left, r->review->refused, r->review->failures);
    printf("\"invariants_ok\": %s, \"violations\": %zu, \"completed\": %lld, "
           "\"cancelled\": %lld, \"sanitizer_reports\": %ld, \"metrics_unanswered\": %d, "
           "\"unexpected_exits\": %d, \"unexpected\": [",
           r->checked && r->c->ok ? "true" : "false", r->checked ? r->c->nviolations : 0,
           r->checked ? (long long)r->c->completed : -1LL,
           r->checked ? (long long)r->c->cancelled : -1LL, t->sanitizer_reports,
           t->metrics_unanswered, t->unexpected_exits);
    for (int k = 0; k < t->unexpected_exits && k < EXITS_KEPT; k++)
        printf("%s{\"service\": \"%s\", \"status\": \"%s\", \"phase\": \"%s\"}", k ? ", " : "",
               sup_service_name(r->s, t->bad[k].service), t->bad[k].status, t->bad[k].phase);
    printf("], \"phase_s\": {");
    for (size_t k = 0; k < NPHASES; k++)
        printf("%s\"%s\": %.1f", k ? ", " : "", PHASES[k], t->phase_s[k]);
    printf("}, \"faults\": ");
    json_str(r->faults);
    printf(", \"seed\": %" PRIu64 ", \"crash_prob\": %g, \"last_delivery_kill_prob\": %g, "
           "\"duration_s\": %" PRId64 ", \"wall_s\": %.1f, \"error\": ",
           o->seed, o->crash_prob, o->last_delivery_prob, o->duration_s, r->wall_s);
    if (r->error)
        json_str(r->error);
    else
        printf("null");
    if (!r->ok) {
        printf(", \"workdir\": ");
        json_str(sup_workdir(r->s));
    }
    printf("}\n");
}

static void print_text(const struct outcome *r)
{
    const struct tally *t = r->t;
    printf("\nchaos (%s delivery, %s): %ld sagas placed of %ld in %.1f s\n",
           r->o->naive ? "naive" : "outbox", shop_style_name(r->o->style),
           atomic_load(&r->j->st.placed), r->o->sagas, r->wall_s);
    printf("  kills %d, restarts with SIGTERM %d, broker restarts %d, crash points fired %ld, "
           "unexpected exits %d\n",
           t->kills, t->graceful_restarts, t->broker_restarts, t->crashpoints_fired,
           t->unexpected_exits);
    printf("  pauses (SIGSTOP, then SIGCONT 0.5 to 4 s later) %d, %d of them the broker's; "
           "durable consumers deleted %d\n",
           t->pauses, t->broker_pauses, t->consumers_deleted);
    printf("  second processes of a running service %d (%d on a database of their own, %d of "
           "those with the first frozen), %d of them not refused; databases write-locked from "
           "outside %d\n",
           t->second_copies, t->second_copies / 2, t->frozen_copies, t->second_copy_failures,
           t->db_locks);
    if (r->o->cluster)
        printf("  NATS cluster of 3: %d node kills (SIGKILL), %d of them the stream's leader; "
               "%d times two nodes at once (no quorum); %d nodes restarted with their store "
               "deleted\n",
               t->node_kills, t->leader_kills, t->quorum_losses, t->store_losses);
    if (t->instance_kills)
        printf("  instances of scaled services killed (SIGKILL): %d\n", t->instance_kills);
    if (t->postgres_restarts)
        printf("  PostgreSQL server restarts (SIGKILL or SIGINT): %d\n", t->postgres_restarts);
    if (t->relay_freezes || t->relays_not_one)
        printf("  instances frozen (SIGSTOP) while their relay was active: %d, taken over by "
               "another instance meanwhile %d; services without one active relay at the end "
               "%d\n",
               t->relay_freezes, t->relay_takeovers, t->relays_not_one);
    if (t->sanitizer_reports > 0)
        printf("  sanitizer reports in the services' logs: %ld\n", t->sanitizer_reports);
    if (t->metrics_unanswered)
        printf("  metrics endpoints not answering (or not connected) at the end: %d\n",
               t->metrics_unanswered);
    for (int k = 0; k < t->unexpected_exits && k < EXITS_KEPT; k++)
        printf("    %s: %s during %s\n", sup_service_name(r->s, t->bad[k].service),
               t->bad[k].status, t->bad[k].phase);
    if (*r->faults || r->o->last_delivery_prob > 0)
        printf("  faults: %ld disk full episodes, %ld slow handlers, %ld events retried until "
               "their last delivery, %ld last-delivery kills, %ld failed inbox marks\n",
               t->disk_full_episodes, t->slow_handlers, t->retry_until_last,
               t->last_delivery_kills, t->mark_failures);
    printf("  phases:");
    for (size_t k = 0; k < NPHASES; k++)
        printf(" %s %.1f s%s", PHASES[k], t->phase_s[k], k + 1 < NPHASES ? "," : "\n");
    if (r->error)
        printf("  the run ended early: %s\n", r->error);
    if (!t->audited)
        return;
    printf("  lost        %ld sagas (%ld events never applied by a consumer, %ld sagas never "
           "final, %ld orders unknown)\n",
           lost_total(t), t->lost_events, t->pending, t->unknown_orders);
    printf("  duplicated  %ld sagas (%ld events applied twice by the same consumer)\n",
           t->duplicated_sagas, t->duplicated_events);
    printf("  phantom     %ld events applied that no committed transaction emitted\n",
           t->phantom_events);
    printf("  parked      %ld messages (%ld retried with choreoctl, %ld still parked)\n",
           t->parked, t->parked_retried, t->still_parked);
    if (r->checked)
        shop_check_print(r->c, stdout);
    printf("reviewer    approved %ld, rejected %ld, left %ld to their deadline, %ld decisions "
           "refused (the hold had ended first), %ld tried again\n",
           r->review->approved, r->review->rejected, r->review->left, r->review->refused,
           r->review->failures);
}

/* ---- the run ---- */

/* The environments of the services: with the faults during the chaos,
 * without them once the operator has restarted the services. */
struct envs {
    char faults[256];
    const char *const *chaos[SHOP_SERVICES];
    const char *const *repair[SHOP_SERVICES];
};

struct run {
    const struct opts *o;
    sup *s;
    const struct envs *env;
    const char *choreoctl;
    bool tty;
    struct tally t;
    shop_world w;
    shop_client *c;
    struct load_job j;
    shop_reviewer *reviewer;
    shop_review_stats review;
    shop_check_report rep;
    bool checked, final;
    const char *error;
};

/* Starts everything and seeds the world. Crash points are already on: a
 * service may die while the world is seeded. Seeding is idempotent, so it
 * restarts what died and seeds again. */
static int set_up(struct run *r)
{
    enter(&r->t, "start");
    if (sup_start_broker(r->s) != 0)
        return r->error = "nats-server did not start", -1;
    for (int i = 0; i < sup_service_count(r->s); i++)
        if (start_service(r->s, i, &r->t, false) != 0)
            return r->error = "a service did not start", -1;
    if (!r->o->json)
        fprintf(stderr, "shop-chaos: %s delivery, nats-server %s, work dir %s\n",
                r->o->naive ? "naive" : "outbox", sup_url(r->s), sup_workdir(r->s));
    /* One node's URL: the client learns the others from it (--cluster). */
    if (shop_client_create(&r->c, sup_node_url(r->s, 0), "choreo") != CHOREO_OK) {
        fprintf(stderr, "shop-chaos: %s\n", shop_client_last_error());
        return r->error = "cannot connect the client", -1;
    }
    char run_name[48];
    snprintf(run_name, sizeof run_name, "chaos%" PRIu64, r->o->seed);
    if (shop_world_plan(&r->w, r->o->sagas, r->o->seed, run_name) != CHOREO_OK)
        return r->error = "cannot plan the orders", -1;
    enter(&r->t, "seed");
    for (int attempt = 1;; attempt++) {
        if (shop_world_seed(&r->w, r->c) == CHOREO_OK)
            return 0;
        if (attempt == 10 || interrupted || reap(r->s, &r->t, false) != 0) {
            fprintf(stderr, "shop-chaos: seeding failed: %s\n", shop_client_last_error());
            return r->error = "seeding failed", -1;
        }
    }
}

/* The paced load, with the chaos loop on this thread. */
static int load(struct run *r)
{
    const struct opts *o = r->o;
    struct pacer pace = { now_ms(), o->duration_s * 1000, o->sagas };
    r->j.w = &r->w;
    r->j.c = r->c;
    /* The client waits up to about a minute for an answer (300 attempts,
     * 200 ms apart when nobody listens). Faults stack up: a restart waits
     * out an outside lock (up to 8 s), a leader election with --cluster
     * (4 to 8 s), a kill at start or a second crash on a last delivery.
     * Under ThreadSanitizer a CI run once saw the order service silent for
     * longer than the 20 s that 100 attempts gave. */
    r->j.o = (shop_load_opts){ .concurrency = 16, .timeout_ms = 2000, .attempts = 300,
                               .stop = &stop_load, .window = 1, .settled = paced,
                               .settled_user = &pace };
    enter(&r->t, "load");
    /* The reviewer runs until the check, through the kills, the quiet
     * period and the repair: its decisions go to the payment database,
     * which the killed service finds at its next start. */
    shop_reviewer_opts ro = { .db = sup_db_path(r->s, sup_find(r->s, "payment")),
                              .seed = o->seed, .by = "chaos-reviewer" };
    if (shop_reviewer_start(&r->reviewer, &ro) != CHOREO_OK) {
        fprintf(stderr, "shop-chaos: the reviewer cannot open %s: %s\n", ro.db,
                choreo_last_error());
        return r->error = "cannot start the reviewer", -1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, load_main, &r->j) != 0)
        return r->error = "cannot start the load", -1;
    int rc = chaos(o, r->s, &r->j, &r->t, r->tty);
    atomic_store(&stop_load, true);
    if (rc != 0)
        shop_client_cancel(r->c);
    pthread_join(th, NULL);
    if (r->tty)
        fprintf(stderr, "\n");
    if (rc != 0)
        r->error = "the chaos loop could not restart a service or the broker";
    return rc;
}

/* After the load: the sagas settle with the chaos over (crash points and
 * faults still on); then, when faults were on or messages were parked, the
 * operator's repair and the sagas settle again. */
static int settle(struct run *r)
{
    const struct opts *o = r->o;
    if (!o->json)
        fprintf(stderr, "shop-chaos: load done; quiet period (crash points%s stay on)\n",
                faulty(o) ? " and faults" : "");
    enter(&r->t, "quiet");
    /* Before a repair, it is enough that nothing moves any more, for longer
     * than a deadline takes to fire. */
    bool repairs = faulty(o) && !o->naive;
    if (quiet(o, r->s, &r->t, r->tty, repairs ? o->deadline_ms + 5000 : 0, &r->final) != 0 ||
        (!repairs && in_flight(o, r->s, &r->w, &r->t, r->tty) != 0))
        return r->error = "a service could not be restarted after the load", -1;
    long parked = total_parked(r->s);
    if (o->naive || (!repairs && parked == 0))
        return 0;
    if (!o->json)
        fprintf(stderr, "shop-chaos: the operator's repair: restarting the services without "
                "faults; %ld messages are parked\n", parked);
    enter(&r->t, "repair");
    if (repair(o, r->choreoctl, r->s, r->env->repair, &r->t, r->tty) != 0)
        return r->error = "a service did not restart for the repair", -1;
    if (quiet(o, r->s, &r->t, r->tty, 0, &r->final) != 0 ||
        in_flight(o, r->s, &r->w, &r->t, r->tty) != 0)
        return r->error = "a service could not be restarted after the repair", -1;
    return 0;
}

/* The invariants and the audit, with the services still running, since the
 * last confirmations of final sagas may still be on their way. */
static void check(struct run *r)
{
    enter(&r->t, "check");
    shop_reviewer_stop(r->reviewer, &r->review);
    r->reviewer = NULL;
    r->t.pending = count_pending(r->s);
    shop_check_paths p = { sup_db_path(r->s, 0), sup_db_path(r->s, 1), sup_db_path(r->s, 2),
                           sup_db_path(r->s, 3) };
    char err[512] = "";
    /* Crash points are still on: a service that dies now (its relay
     * publishing a last confirmation, say) is restarted as in the other
     * phases, so each wait of a second starts with a reap. */
    for (int64_t until = now_ms() + 20000;;) {
        if (reap(r->s, &r->t, r->tty) != 0) {
            r->error = "a service could not be restarted during the check";
            snprintf(err, sizeof err, "%s", r->error);
            r->checked = false;
            break;
        }
        r->checked = shop_check_wait(&p, true, 1000, &interrupted, &r->rep, err, sizeof err) ==
                     CHOREO_OK;
        if (!r->checked || r->rep.ok || now_ms() >= until || interrupted)
            break;
        shop_check_report_free(&r->rep);
    }
    if (!r->checked)
        fprintf(stderr, "shop-chaos: %s\n", err);
    if (reap(r->s, &r->t, r->tty) != 0)
        r->error = "a service could not be restarted during the check";
    r->t.audited = audit(r->s, &r->w, &r->t) == 0;
    if (!r->t.audited)
        r->error = "cannot read the audit trails";
    /* Every service's metrics endpoint outlived the faults and says it is
     * connected again. */
    static char text[262144];
    for (int i = 0; i < sup_service_count(r->s); i++) {
        char want[96];
        snprintf(want, sizeof want, "\nchoreo_nats_connected{service=\"%s\"} 1\n",
                 shop_service_names[service_of[i]]);
        int status = -1;
        for (int attempt = 0; attempt < 20; attempt++) { /* up to 10 s after a restart */
            if (reap(r->s, &r->t, r->tty) != 0)
                break;
            status = sup_scrape(r->s, i, text, sizeof text);
            if (status == 200 && strstr(text, want))
                break;
            sleep_ms(500);
        }
        if (status != 200 || !strstr(text, want)) {
            r->t.metrics_unanswered++;
            fprintf(stderr, "shop-chaos: %s's metrics endpoint http://%s/metrics: %s\n",
                    sup_service_name(r->s, i), sup_metrics_addr(r->s, i),
                    status != 200 ? "no answer" : "not connected to NATS");
        }
    }
    /* Each service in several instances has one active relay again: the
     * one that took over from a frozen instance, or that instance, which
     * found its session ended and stands by. */
    for (int svc = 0; svc < SHOP_SERVICES; svc++) {
        if (r->o->scale.instances[svc] < 2)
            continue;
        int active = 0;
        for (int attempt = 0; attempt < 20; attempt++) { /* a takeover: lease and 0.5 s */
            active = 0;
            for (int i = 0; i < sup_service_count(r->s); i++)
                active += service_of[i] == svc && relay_active(r->s, i);
            if (active == 1)
                break;
            sleep_ms(500);
        }
        if (active != 1) {
            r->t.relays_not_one++;
            fprintf(stderr, "shop-chaos: %d instances of %s say their relay is active, not 1\n",
                    active, shop_service_names[svc]);
        }
    }
}

static int run(const struct opts *o, sup *s, const struct envs *env, const char *choreoctl,
               bool tty)
{
    int64_t t0 = now_ms();
    struct run r;
    memset(&r, 0, sizeof r);
    r.t.down = (struct node_outage){ { -1, -1 }, 0 };
    r.o = o;
    r.s = s;
    r.env = env;
    r.choreoctl = choreoctl;
    r.tty = tty;
    atomic_init(&r.j.done, false);
    if (set_up(&r) == 0 && load(&r) == 0 && !interrupted && settle(&r) == 0 && !interrupted)
        check(&r);
    shop_reviewer_stop(r.reviewer, &r.review); /* when the run ended before the check */
    enter(&r.t, "stop");
    stop_services(s, &r.t, tty);
    enter(&r.t, NULL);
    count_log_lines(s, &r.t);
    const struct tally *t = &r.t;
    bool clean = !r.error && r.final && r.checked && r.rep.ok && t->audited &&
                 t->lost_events == 0 && t->pending == 0 && t->unknown_orders == 0 &&
                 t->duplicated_events == 0 && t->phantom_events == 0 &&
                 t->retry_failures == 0 && t->second_copy_failures == 0 &&
                 t->metrics_unanswered == 0 && t->relays_not_one == 0 &&
                 atomic_load(&r.j.st.failed) == 0;
    /* An exit the harness did not cause, or a sanitizer report, fails every
     * run, naive ones too. */
    bool ok = t->unexpected_exits == 0 && t->sanitizer_reports == 0 && !interrupted &&
              (clean || (o->naive && !r.error && r.checked));
    struct outcome out = { .o = o, .j = &r.j, .t = t, .c = &r.rep, .review = &r.review,
                           .checked = r.checked,
                           .ok = ok, .error = r.error, .faults = env->faults, .s = s,
                           .wall_s = (double)(now_ms() - t0) / 1e3 };
    if (!interrupted) { /* when interrupted, main says so and nothing was measured */
        if (o->json)
            print_json(&out);
        else
            print_text(&out);
        if (!ok && !o->json)
            printf("\nFAILED: see the logs and databases in %s\n", sup_workdir(s));
    }
    if (r.checked)
        shop_check_report_free(&r.rep);
    shop_world_free(&r.w);
    shop_client_destroy(r.c);
    return ok ? 0 : 1;
}

/* ---- setting up the services ---- */

/* Arguments and environments of the four services; everything a spec
 * points to lives here until the supervisor has copied it. */
struct setup {
    char ack[24], deadline[24], max_deliver[24], retry_base[24], retry_cap[24], lease[24];
    const char *args[3][20]; /* order, payment, the others */
    char points[640], points_repair[640], faults_var[300], seeds[SHOP_SERVICES][48];
    const char *env_chaos[SHOP_SERVICES][4], *env_repair[SHOP_SERVICES][4];
};

/* A flag and its value, appended when the value was given. */
static void add_arg(const char **args, int *n, const char *flag, char *buf, size_t cap,
                    int64_t v)
{
    if (v < 0)
        return;
    snprintf(buf, cap, "%" PRId64, v);
    args[(*n)++] = flag;
    args[(*n)++] = buf;
}

/* The order service and the payment service learn the deadline: the order
 * service runs the saga by it, the payment service lets a review be decided
 * until then. */
static void build_args(const struct opts *o, struct setup *u)
{
    for (int k = 0; k < 3; k++) { /* 0: order, 1: payment, 2: the others */
        const char **a = u->args[k];
        int n = 0;
        a[n++] = "--audit";
        a[n++] = "on";
        a[n++] = "--delivery";
        a[n++] = o->naive ? "naive" : "outbox";
        add_arg(a, &n, "--ack-wait-ms", u->ack, sizeof u->ack, o->ack_wait_ms);
        add_arg(a, &n, "--max-deliver", u->max_deliver, sizeof u->max_deliver, o->max_deliver);
        add_arg(a, &n, "--retry-base-ms", u->retry_base, sizeof u->retry_base, o->retry_base_ms);
        add_arg(a, &n, "--retry-cap-ms", u->retry_cap, sizeof u->retry_cap, o->retry_cap_ms);
        add_arg(a, &n, "--relay-lease-ms", u->lease, sizeof u->lease, CHAOS_RELAY_LEASE_MS);
        if (k < 2)
            add_arg(a, &n, "--deadline-ms", u->deadline, sizeof u->deadline, o->deadline_ms);
        if (o->style != SHOP_STYLE_CHOREOGRAPHY) {
            a[n++] = "--style";
            a[n++] = shop_style_name(o->style);
        }
        a[n] = NULL;
    }
}

/* CHOREO_CRASHPOINTS, CHOREO_FAULTS and CHOREO_CRASH_SEED. The repair
 * environment keeps the crash points but not last_delivery nor the faults. */
static void build_env(const struct opts *o, struct setup *u, struct envs *e)
{
    double p = o->crash_prob;
    int len = snprintf(u->points, sizeof u->points,
                       "CHOREO_CRASHPOINTS=after_commit_before_ack=%g,"
                       "after_commit_before_publish=%g,after_publish_before_mark=%g,"
                       "inside_batch=%g,inside_mark=%g,between_fetch_and_dispatch=%g,"
                       "orchestrator_after_reply=%g,orchestrator_between_compensations=%g,"
                       "after_committer_send=%g",
                       p, p, p, p, p, p, p, p, p);
    snprintf(u->points_repair, sizeof u->points_repair, "%s", u->points);
    if (o->last_delivery_prob > 0 && len > 0 && (size_t)len < sizeof u->points)
        snprintf(u->points + len, sizeof u->points - (size_t)len, ",last_delivery=%g",
                 o->last_delivery_prob);
    char *f = e->faults;
    size_t cap = sizeof e->faults, used = 0;
    f[0] = '\0';
    if (o->disk_full_prob > 0)
        used += (size_t)snprintf(f + used, cap - used, "disk_full=%g,disk_full_ms=%" PRId64 ",",
                                 o->disk_full_prob, o->disk_full_ms);
    if (o->slow_handler_prob > 0 && used < cap)
        used += (size_t)snprintf(f + used, cap - used, "slow_handler=%g,slow_handler_ms=%" PRId64
                                 ",", o->slow_handler_prob, o->slow_handler_ms);
    if (o->retry_until_last_prob > 0 && used < cap)
        used += (size_t)snprintf(f + used, cap - used, "retry_until_last=%g,",
                                 o->retry_until_last_prob);
    if (o->mark_fail_prob > 0 && used < cap)
        used += (size_t)snprintf(f + used, cap - used, "mark_fail=%g,", o->mark_fail_prob);
    if (used > 0 && used < cap)
        f[used - 1] = '\0'; /* the last comma */
    snprintf(u->faults_var, sizeof u->faults_var, "CHOREO_FAULTS=%s", f);
    bool points = p > 0 || o->last_delivery_prob > 0;
    for (int i = 0; i < SHOP_SERVICES; i++) {
        snprintf(u->seeds[i], sizeof u->seeds[i], "CHOREO_CRASH_SEED=%" PRIu64,
                 o->seed * 4 + (uint64_t)i);
        int n = 0, m = 0;
        u->env_chaos[i][n++] = u->seeds[i];
        u->env_repair[i][m++] = u->seeds[i];
        if (points)
            u->env_chaos[i][n++] = u->points;
        if (p > 0)
            u->env_repair[i][m++] = u->points_repair;
        if (f[0])
            u->env_chaos[i][n++] = u->faults_var;
        u->env_chaos[i][n] = NULL;
        u->env_repair[i][m] = NULL;
        e->chaos[i] = u->env_chaos[i];
        e->repair[i] = u->env_repair[i];
    }
}

int main(int argc, char **argv)
{
    struct opts o = { .sagas = 2000, .duration_s = -1, .kill_ms = 500, .restart_ms = 800,
                      .broker_ms = -1, .postgres_ms = 15000, .pause_ms = 6000,
                      .consumer_delete_ms = 15000, .second_copy_ms = 10000,
                      .db_lock_ms = 8000, .relay_freeze_ms = 10000,
                      .quiet_s = -1, .deadline_ms = 8000,
                      .ack_wait_ms = -1, .max_deliver = -1, .retry_base_ms = -1,
                      .retry_cap_ms = -1, .disk_full_ms = -1, .slow_handler_ms = -1,
                      .crash_prob = 0.0005, .disk_full_prob = -1, .slow_handler_prob = -1,
                      .retry_until_last_prob = -1, .last_delivery_prob = -1,
                      .mark_fail_prob = -1, .seed = 1,
                      .log_level = "warn" };
    shop_set_program("shop-chaos");
    int p = parse(argc, argv, &o);
    if (p)
        return p == 1 ? 0 : 2;
    resolve(&o);
    rng_state = o.seed * 0x2545F4914F6CDD1DULL + 1;
    shop_catch_signals(on_signal);

    char build[PATH_MAX], bin[SHOP_SERVICES][SHOP_BIN_MAX], choreoctl[PATH_MAX + 32];
    shop_build_dir(o.build_dir, build, sizeof build);
    if (shop_service_binaries(build, NULL, bin, "shop-chaos",
                              "build first (tools/chaos does), or pass --build-dir") != 0)
        return 2;
    snprintf(choreoctl, sizeof choreoctl, "%s/tools/choreoctl/choreoctl", build);
    if (!o.naive && access(choreoctl, X_OK) != 0) {
        fprintf(stderr, "shop-chaos: %s is missing: the repair after the load retries parked "
                "messages with it; build first (tools/chaos does), or pass --build-dir\n",
                choreoctl);
        return 2;
    }
    sup_options so = { .workdir = o.dir, .fresh_name = "choreo-chaos", .log_level = o.log_level,
                       .metrics = true, .cluster = o.cluster, .cancel = &interrupted };
    sup *s = NULL;
    if (sup_create(&s, &so) != 0)
        return 1;
    static struct setup u;
    struct envs env;
    build_args(&o, &u);
    build_env(&o, &u, &env);
    sup_service_spec specs[SHOP_SERVICES];
    for (int i = 0; i < SHOP_SERVICES; i++) {
        int k = i == 0 ? 0 : strcmp(shop_service_names[i], "payment") == 0 ? 1 : 2;
        specs[i] = (sup_service_spec){ .name = shop_service_names[i], .binary = bin[i],
                                       .args = u.args[k], .env = env.chaos[i], .ping = true };
    }
    if (shop_scale_add(s, &o.scale, specs) != 0) {
        sup_destroy(s);
        return 1;
    }
    /* Instances come after the four services, labelled NAME-2 and so on. */
    for (int i = 0; i < sup_service_count(s) && i < PROCS; i++) {
        service_of[i] = i < SHOP_SERVICES ? i : 0;
        for (int k = 0; k < SHOP_SERVICES && i >= SHOP_SERVICES; k++) {
            size_t len = strlen(shop_service_names[k]);
            if (strncmp(sup_service_name(s, i), shop_service_names[k], len) == 0 &&
                sup_service_name(s, i)[len] == '-')
                service_of[i] = k;
        }
    }
    bool tty = isatty(STDERR_FILENO) && !o.json;
    int rc = run(&o, s, &env, choreoctl, tty);
    sup_stop_all(s);
    if (interrupted) {
        fprintf(stderr, "shop-chaos: interrupted; stopped everything it started\n");
        if (o.json) /* a caller reading stdout learns that the run did not end */
            printf("{\"ok\": false, \"error\": \"interrupted\"}\n");
        rc = 128 + interrupted; /* as a shell reports a process a signal ended */
    }
    bool keep = rc != 0 && !interrupted;
    if (keep && !o.dir)
        fprintf(stderr, "shop-chaos: logs and databases kept in %s\n", sup_workdir(s));
    sup_keep_workdir(s, keep);
    sup_destroy(s);
    nats_CloseAndWait(SHOP_NATS_CLOSE_WAIT_MS);
    return rc;
}
