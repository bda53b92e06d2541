/* choreo-scale-bench: the throughput of a payment-like service on
 * PostgreSQL with one instance, then two, in the same run (same nats-server,
 * same PostgreSQL server, same backlog size). Each round puts N events in
 * the stream first, then starts the instances, each a process of its own on
 * the one database, and times them from the first applied event until all
 * N are applied and every event they emitted is published. Its handler
 * takes one of A accounts' balance down, records a payment row and emits an
 * event: the shape of the shop's payment step.
 *
 *   choreo-scale-bench [--events N] [--accounts A] [--json]
 */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <choreo.h>

#include "natsd.h"
#include "pgserver.h"

struct opts {
    long events, accounts;
    bool json;
    const char *url; /* nats */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- stopping: on an error, or on SIGINT, SIGTERM or SIGHUP ---- */

/* The work directory while it exists, "" before and after: a run that
 * dies keeps it (and the PostgreSQL server's), an interrupted one removes
 * them. */
static char work_dir[200];
/* What else an interrupted run must stop, while it is there. */
static natsd *live_server;
static pgserver pg;
static pid_t workers[8];
static int nworkers;

/* The signal that came, 0 before: the run stops at its next check of it
 * (atomic: the handler may run on any thread). */
static atomic_int interrupted;

static void on_signal(int sig)
{
    atomic_store(&interrupted, sig);
}

/* Stops an interrupted run: the instances, the PostgreSQL server (which
 * removes its directory) and nats-server, then the work directory, and
 * exits with 128 + the signal, as a shell reports a process that the
 * signal ended. _exit: the producer's threads are still running, and
 * nothing is owed to stdout. */
static _Noreturn void stop_interrupted(void)
{
    int sig = atomic_load(&interrupted);
    for (int i = 0; i < nworkers; i++) {
        kill(workers[i], SIGKILL);
        while (waitpid(workers[i], NULL, 0) < 0 && errno == EINTR) {
        }
    }
    pgserver_stop(&pg);
    if (live_server)
        natsd_stop(live_server, SIGKILL); /* what it stores is removed next */
    if (work_dir[0])
        natsd_remove_tree(work_dir);
    fprintf(stderr, "choreo-scale-bench: %s received; stopped what it started and removed its "
                    "files\n",
            sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP");
    _exit(128 + sig);
}

static void stop_if_interrupted(void)
{
    if (atomic_load(&interrupted))
        stop_interrupted();
}

static void die(const char *what, const char *detail)
{
    /* A Ctrl-C reaches the instances and both servers too, and what fails
     * because they have gone may fail a moment before this process sees
     * its own SIGINT: an interruption, not an error. */
    if (work_dir[0] && !atomic_load(&interrupted))
        usleep(100000);
    stop_if_interrupted();
    fprintf(stderr, "choreo-scale-bench: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static void pg_exec(const char *db, const char *sql)
{
    PGconn *c = PQconnectdb(db);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static long pg_count(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return n;
}

/* The worker's handler: one account down, one payment row, one event. */
static choreo_result on_pay(choreo_tx *tx, const choreo_event *ev, void *user)
{
    const long *accounts = user;
    char account[32], amount[8] = "1";
    snprintf(account, sizeof account, "a%ld",
             (long)(strtoull(ev->id + 16, NULL, 36) % (unsigned long)*accounts));
    const char *debit[] = { account, amount };
    PGresult *r = PQexecParams(choreo_tx_pg(tx),
                               "UPDATE accounts SET balance = balance - $2 WHERE user_id = $1", 2,
                               NULL, debit, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    const char *pay[] = { ev->id, account, amount };
    if (ok) {
        r = PQexecParams(choreo_tx_pg(tx),
                         "INSERT INTO payments(event_id, user_id, amount) VALUES ($1, $2, $3)", 3,
                         NULL, pay, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    if (!ok)
        return CHOREO_RETRY; /* a lock another instance holds, or a deadlock */
    return choreo_tx_emit(tx, "Paid", 1, NULL, ev->data, ev->data_len, NULL) == CHOREO_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

/* One instance of service name on db, until killed. */
static pid_t spawn_worker(const struct opts *o, const char *name, const char *type,
                          const char *db, const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Not this program's handlers: a Ctrl-C, which reaches it too, ends
     * it as it ends the rest (and the program stops it in any case). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (getppid() != parent || !freopen(log, "a", stderr))
        _exit(1);
    choreo_config *cfg;
    choreo_service *svc;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", name) != CHOREO_OK ||
        choreo_config_set(cfg, "db", db) != CHOREO_OK ||
        choreo_config_set(cfg, "nats_url", o->url) != CHOREO_OK ||
        choreo_config_set(cfg, "synchronous", "full") != CHOREO_OK ||
        choreo_config_set(cfg, "log_level", "warn") != CHOREO_OK ||
        choreo_service_create(&svc, cfg) != CHOREO_OK ||
        choreo_service_on(svc, type, on_pay, (void *)&o->accounts) != CHOREO_OK ||
        choreo_service_start(svc) != CHOREO_OK) {
        fprintf(stderr, "worker: %s\n", choreo_last_error());
        _exit(3);
    }
    for (;;)
        pause();
}

static choreo_service *producer(const struct opts *o, const char *db)
{
    choreo_config *cfg;
    choreo_service *svc;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", "scalesource") != CHOREO_OK ||
        choreo_config_set(cfg, "db", db) != CHOREO_OK ||
        choreo_config_set(cfg, "nats_url", o->url) != CHOREO_OK ||
        choreo_config_set(cfg, "synchronous", "normal") != CHOREO_OK ||
        choreo_config_set(cfg, "log_level", "warn") != CHOREO_OK ||
        choreo_service_create(&svc, cfg) != CHOREO_OK || choreo_service_start(svc) != CHOREO_OK)
        die("producer", choreo_last_error());
    choreo_config_destroy(cfg);
    return svc;
}

/* Emits n events of type and waits until the producer's outbox is empty
 * (all of them in the stream). */
static void fill(choreo_service *src, const char *type, long n)
{
    static const uint8_t data[] = { 0x81, 0xa1, 'n', 0x01 };
    static uint64_t emitted; /* by this producer, over the rounds */
    emitted += (uint64_t)n;
    for (long done = 0; done < n;) {
        stop_if_interrupted();
        choreo_tx *tx;
        if (choreo_service_begin(src, &tx) != CHOREO_OK)
            die("begin", choreo_last_error());
        for (int k = 0; k < 200 && done < n; k++, done++) {
            char saga[CHOREO_ID_SIZE];
            choreo_saga_new(saga);
            if (choreo_tx_emit(tx, type, 1, saga, data, sizeof data, NULL) != CHOREO_OK)
                die("emit", choreo_last_error());
        }
        if (choreo_tx_commit(tx) != CHOREO_OK)
            die("commit", choreo_last_error());
    }
    for (int waited = 0; waited < 120000; waited += 50) {
        stop_if_interrupted();
        choreo_stats st;
        choreo_service_stats(src, &st);
        if (st.outbox_pending == 0 && st.published >= emitted)
            return;
        usleep(50000);
    }
    die("fill", "the producer's outbox did not drain in 120 s");
}

/* One round: n events, k instances; returns events per second. */
static double round_of(const struct opts *o, choreo_service *src, int k, const char *dir)
{
    char name[32], type[32], db[300], sql[200];
    snprintf(name, sizeof name, "pay%d", k);
    snprintf(type, sizeof type, "Pay%d", k);
    if (pgserver_database(&pg, name, db, sizeof db) != 0)
        die("database", name);
    pg_exec(db, "CREATE TABLE accounts(user_id TEXT PRIMARY KEY, balance BIGINT NOT NULL);"
                "CREATE TABLE payments(event_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
                " amount BIGINT NOT NULL)");
    snprintf(sql, sizeof sql,
             "INSERT INTO accounts SELECT 'a' || i, 1000000000 FROM generate_series(0, %ld) i",
             o->accounts - 1);
    pg_exec(db, sql);
    fill(src, type, o->events);
    for (int i = 0; i < k; i++) {
        char log[600];
        snprintf(log, sizeof log, "%s/%s-%d.log", dir, name, i + 1);
        workers[i] = spawn_worker(o, name, type, db, log);
        nworkers = i + 1;
    }
    PGconn *c = PQconnectdb(db);
    int64_t first = 0, last = 0;
    for (int64_t until = now_us() + 600 * 1000000LL; now_us() < until;) {
        stop_if_interrupted();
        long applied = pg_count(c, "SELECT COUNT(*) FROM payments");
        if (applied > 0 && !first)
            first = now_us();
        if (applied >= o->events &&
            pg_count(c, "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL") == 0) {
            last = now_us();
            break;
        }
        usleep(2000);
    }
    PQfinish(c);
    nworkers = 0; /* a signal now: they have PR_SET_PDEATHSIG */
    for (int i = 0; i < k; i++) {
        kill(workers[i], SIGKILL);
        waitpid(workers[i], NULL, 0);
    }
    if (!last)
        die("round", "the instances did not apply every event within 600 s");
    return (double)o->events / ((double)(last - first) / 1e6);
}

int main(int argc, char **argv)
{
    struct opts o = { .events = 20000, .accounts = 1000 };
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            o.json = true;
        } else if ((strcmp(argv[i], "--events") == 0 || strcmp(argv[i], "--accounts") == 0) &&
                   i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            long v = strtol(argv[i + 1], &end, 10);
            if (errno || end == argv[i + 1] || *end || v < 1 || v > 10000000) {
                fprintf(stderr, "choreo-scale-bench: %s takes a whole number from 1 to "
                        "10,000,000, not \"%s\"\n", argv[i], argv[i + 1]);
                return 2;
            }
            *(strcmp(argv[i], "--events") == 0 ? &o.events : &o.accounts) = v;
            i++;
        } else {
            bool help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
            if (!help)
                fprintf(stderr, "choreo-scale-bench: %s %s\n", argv[i],
                        strcmp(argv[i], "--events") == 0 || strcmp(argv[i], "--accounts") == 0
                            ? "needs a number"
                            : "is not an option");
            fprintf(help ? stdout : stderr,
                    "usage: choreo-scale-bench [--events N] [--accounts A] [--json]\n"
                    "  --events N    events in each round, 1 to 10,000,000 [20000]\n"
                    "  --accounts A  accounts the payments take from, 1 to 10,000,000 [1000]\n"
                    "  --json        print one JSON object\n");
            return help ? 0 : 2;
        }
    }
    /* From here a signal stops the run with what it started, and removes
     * its files and the PostgreSQL server's; SA_RESTART, because the run's
     * waits poll for it and the libraries' calls must not fail with EINTR
     * meanwhile. */
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    char dir[200], path[600];
    if (natsd_tmp_path(dir, sizeof dir, "choreo-scale-XXXXXX") != 0)
        die("TMPDIR is too long for the work directory", getenv("TMPDIR"));
    if (!mkdtemp(dir))
        die("cannot create a work directory (set TMPDIR to a writable one)", strerror(errno));
    snprintf(work_dir, sizeof work_dir, "%s", dir);
    natsd server;
    if (natsd_start(&server, dir, 0, NULL, NULL) != 0)
        die("nats-server", "did not start");
    live_server = &server;
    o.url = server.url;
    snprintf(path, sizeof path, "%s/postgres.log", dir);
    if (pgserver_start(&pg, path) != 0)
        die("PostgreSQL", "did not start");
    stop_if_interrupted(); /* before a minute of rounds */
    snprintf(path, sizeof path, "%s/source.db", dir);
    choreo_service *src = producer(&o, path);
    double one = round_of(&o, src, 1, dir);
    double two = round_of(&o, src, 2, dir);
    choreo_service_destroy(src);
    pgserver_stop(&pg);
    natsd_stop(&server, SIGTERM);
    live_server = NULL;
    /* The databases, logs and stream are of no use once measured; a run
     * that dies keeps them. */
    natsd_remove_tree(dir);
    work_dir[0] = '\0';
    if (o.json)
        printf("{\"events\": %ld, \"accounts\": %ld, \"one_instance_events_per_s\": %.0f, "
               "\"two_instances_events_per_s\": %.0f, \"two_to_one_ratio\": %.3f}\n",
               o.events, o.accounts, one, two, two / one);
    else
        printf("payment-like service on PostgreSQL, %ld events over %ld accounts:\n"
               "  one instance    %8.0f events/s\n  two instances   %8.0f events/s  (x%.2f)\n",
               o.events, o.accounts, one, two, two / one);
    return 0;
}
