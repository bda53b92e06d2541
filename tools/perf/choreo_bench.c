/* choreo-bench: measures the raw JetStream pipeline and one choreo hop on
 * this machine and prints the figures (see tools/bench --help). The
 * consumer service runs in its own process (this program re-executed with
 * --role consumer) so that its peak RSS is its own. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "choreo.h"
#include "natsd.h"

struct opts {
    long events;
    long per_tx;
    long lat_events;
    long lat_rate;
    long metrics_pairs;
    const char *synchronous;
    bool json;
    /* --data-scale: the hop against full tables (0: not run) */
    long inbox_rows, delayed_rows;
    long demo_orders; /* the shop demo's orders (0: not run) */
    /* consumer role */
    const char *role, *url, *db, *type, *metrics_addr;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_us(int64_t us)
{
    struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Waits for pid to end; its wait status. */
static int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
}

/* ---- stopping: on an error, or on SIGINT, SIGTERM or SIGHUP ---- */

/* The work directory while it exists, "" before and after: a run that
 * dies keeps it, and says where; an interrupted one removes it. */
static char work_dir[200];
/* What else an interrupted run must stop or remove, while it is there. */
static natsd *live_server;
static pid_t live_consumer, live_demo;
static char demo_errpath[600];

/* The signal that came, 0 before: the run stops at its next check of it
 * (atomic: the handler may run on any thread). */
static atomic_int interrupted;

static void on_signal(int sig)
{
    atomic_store(&interrupted, sig);
}

/* Stops an interrupted run: the processes it started, then its files, and
 * exits with 128 + the signal, as a shell reports a process that the
 * signal ended. _exit: the producer's threads, a scraper or the raw
 * pipeline's consumer may still be running, and nothing is owed to
 * stdout. Whichever thread comes second waits for the first to exit. */
static _Noreturn void stop_interrupted(void)
{
    static atomic_flag stopping = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&stopping))
        for (;;)
            pause();
    int sig = atomic_load(&interrupted);
    if (live_consumer > 0) {
        kill(live_consumer, SIGKILL);
        reap(live_consumer);
    }
    if (live_demo > 0) { /* a demo stopped so removes its own directory */
        kill(live_demo, SIGTERM);
        reap(live_demo);
    }
    if (demo_errpath[0])
        unlink(demo_errpath);
    if (live_server)
        natsd_stop(live_server, SIGKILL); /* what it stores is removed next */
    if (work_dir[0])
        natsd_remove_tree(work_dir);
    fprintf(stderr, "choreo-bench: %s received; stopped what it started and removed its files\n",
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
    /* A Ctrl-C reaches the consumer and nats-server too, and what fails
     * because they have gone may fail a moment before this process sees
     * its own SIGINT: an interruption, not an error. */
    if (work_dir[0] && !atomic_load(&interrupted))
        sleep_us(100000);
    stop_if_interrupted();
    fprintf(stderr, "choreo-bench: %s: %s\n", what, detail ? detail : "");
    if (work_dir[0])
        fprintf(stderr, "choreo-bench: its databases and stream are kept in %s\n", work_dir);
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct(int64_t *v, long n, double q)
{
    if (n == 0)
        return 0;
    long i = (long)(q * (double)n);
    return v[i >= n ? n - 1 : i];
}

/* ---- raw pipeline: js_PublishAsync into a stream, a pull consumer acks ---- */

struct raw_consumer {
    jsCtx *js;
    long want;
    atomic_long got;
    int64_t done_us;
};

static void *raw_consume(void *arg)
{
    struct raw_consumer *rc = arg;
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 20000;
    jsErrCode jerr;
    if (js_PullSubscribe(&sub, rc->js, "rawbench.>", "rawbench", NULL, &so, &jerr) != NATS_OK)
        die("raw pull subscribe", nats_GetLastError(NULL));
    while (atomic_load(&rc->got) < rc->want && !atomic_load(&interrupted)) {
        natsMsgList list = { 0 };
        natsStatus s = natsSubscription_Fetch(&list, sub, 256, 1000, NULL);
        if (s != NATS_OK && s != NATS_TIMEOUT && atomic_load(&interrupted))
            break; /* the main thread stops the run */
        if (s != NATS_OK && s != NATS_TIMEOUT)
            die("raw fetch", natsStatus_GetText(s));
        for (int i = 0; i < list.Count; i++)
            natsMsg_Ack(list.Msgs[i], NULL);
        atomic_fetch_add(&rc->got, list.Count);
        natsMsgList_Destroy(&list);
    }
    rc->done_us = now_us();
    natsSubscription_Destroy(sub);
    return NULL;
}

static double raw_pipeline(const char *url, long n)
{
    natsOptions *o;
    natsConnection *nc;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url);
    natsOptions_SetSendAsap(o, true);
    if (natsConnection_Connect(&nc, o) != NATS_OK)
        die("raw connect", nats_GetLastError(NULL));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4000;
    jsCtx *js;
    natsConnection_JetStream(&js, nc, &jo);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subj[] = { "rawbench.>" };
    sc.Name = "RAWBENCH";
    sc.Subjects = subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsErrCode jerr;
    if (js_AddStream(NULL, js, &sc, NULL, &jerr) != NATS_OK)
        die("raw stream", nats_GetLastError(NULL));
    struct raw_consumer rc = { .js = js, .want = n };
    pthread_t t;
    pthread_create(&t, NULL, raw_consume, &rc);
    char body[128];
    memset(body, 'x', sizeof body);
    int64_t start = now_us();
    for (long i = 0; i < n; i++) {
        stop_if_interrupted();
        natsMsg *m;
        char id[32];
        snprintf(id, sizeof id, "raw-%ld", i);
        natsMsg_Create(&m, "rawbench.e", NULL, body, sizeof body);
        natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (js_PublishMsgAsync(js, &m, NULL) != NATS_OK)
            die("raw publish", nats_GetLastError(NULL));
        natsMsg_Destroy(m);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 1000; /* 30 s in all, a signal heard every second */
    for (int s = 0; s < 30 && js_PublishAsyncComplete(js, &po) == NATS_TIMEOUT; s++)
        stop_if_interrupted();
    pthread_join(t, NULL);
    stop_if_interrupted();
    double rate = (double)n / ((double)(rc.done_us - start) / 1e6);
    js_DeleteStream(js, "RAWBENCH", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return rate;
}

/* ---- consumer role: a service whose handler writes one business row ---- */

struct consumer {
    long want;
    atomic_long got;
    int64_t *lat;
};

static choreo_result on_bench(choreo_tx *tx, const choreo_event *ev, void *user)
{
    struct consumer *c = user;
    choreo_mp_reader r;
    choreo_mp_reader_init(&r, ev->data, ev->data_len);
    uint32_t n;
    const char *k;
    uint32_t klen;
    int64_t sent = 0;
    if (choreo_mp_read_map(&r, &n) != CHOREO_OK || n != 1 ||
        choreo_mp_read_str(&r, &k, &klen) != CHOREO_OK || choreo_mp_read_int(&r, &sent) != CHOREO_OK)
        return CHOREO_REJECT;
    sqlite3_stmt *s;
    if (choreo_tx_prepare(tx, "INSERT INTO bench(event_id, sent_us) VALUES (?1, ?2)", &s) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    sqlite3_bind_text(s, 1, ev->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, sent);
    if (sqlite3_step(s) != SQLITE_DONE)
        return CHOREO_RETRY;
    long i = atomic_fetch_add(&c->got, 1);
    if (i < c->want)
        c->lat[i] = now_us() - sent;
    return CHOREO_DONE;
}

static long committed_rows(sqlite3 *db)
{
    sqlite3_stmt *s;
    long n = -1;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM bench", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
}

static int consumer_main(const struct opts *o)
{
    sqlite3 *db;
    sqlite3_open(o->db, &db);
    sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS bench(event_id TEXT PRIMARY KEY, sent_us INTEGER)",
                 NULL, NULL, NULL);
    choreo_config *cfg;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", "benchsink") != CHOREO_OK ||
        choreo_config_set(cfg, "db", o->db) != CHOREO_OK ||
        choreo_config_set(cfg, "nats_url", o->url) != CHOREO_OK ||
        choreo_config_set(cfg, "synchronous", o->synchronous) != CHOREO_OK ||
        choreo_config_set(cfg, "log_level", "warn") != CHOREO_OK ||
        (o->metrics_addr && choreo_config_set(cfg, "metrics_addr", o->metrics_addr) != CHOREO_OK))
        die("consumer config", choreo_last_error());
    struct consumer c = { .want = o->events };
    c.lat = calloc((size_t)o->events, sizeof *c.lat);
    if (!c.lat)
        die("consumer", "out of memory for the latencies");
    choreo_service *svc;
    if (choreo_service_create(&svc, cfg) != CHOREO_OK ||
        choreo_service_on(svc, o->type, on_bench, &c) != CHOREO_OK ||
        choreo_service_start(svc) != CHOREO_OK)
        die("consumer start", choreo_last_error());
    printf("ready\n");
    fflush(stdout);
    int64_t last = 0;
    for (int64_t deadline = now_us() + 600 * 1000000LL; now_us() < deadline;) {
        if (atomic_load(&c.got) >= c.want && committed_rows(db) >= c.want) {
            last = now_us();
            break;
        }
        sleep_us(1000);
    }
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
    sqlite3_close(db);
    long got = atomic_load(&c.got);
    long n = got < c.want ? got : c.want;
    qsort(c.lat, (size_t)n, sizeof *c.lat, cmp_i64);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("handled=%ld last_us=%" PRId64 " p50_us=%" PRId64 " p99_us=%" PRId64 " rss_kb=%ld\n", got,
           last, pct(c.lat, n, 0.50), pct(c.lat, n, 0.99), ru.ru_maxrss);
    free(c.lat);
    return last ? 0 : 1;
}

/* ---- producer side ---- */

struct child {
    pid_t pid;
    int out; /* read end of its stdout */
};

/* How a consumer that ended with wait status st ended, for a message. */
static const char *how_ended(int st)
{
    static char text[96];
    if (WIFSIGNALED(st))
        snprintf(text, sizeof text, "it was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else
        snprintf(text, sizeof text, "it exited with status %d", WEXITSTATUS(st));
    return text;
}

/* Dies when the consumer has ended: the producer would go on emitting into
 * the stream, and its disk, for an answer that never comes. */
static void check_consumer(const struct child *c)
{
    stop_if_interrupted();
    int st;
    if (waitpid(c->pid, &st, WNOHANG) != c->pid)
        return;
    char why[160];
    live_consumer = 0;
    snprintf(why, sizeof why, "ended during the run: %s", how_ended(st));
    die("consumer", why);
}

/* Reads a line of fd into line (without its newline, cut at cap - 1);
 * false at the end of the output. A byte at a time: the lines are few and
 * short, and nothing read past one is left in a buffer. Waits in steps of
 * 100 ms, so that a signal, which may go to another thread, stops the run
 * while the child works. */
static bool read_line(int fd, char *line, size_t cap)
{
    size_t len = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        stop_if_interrupted();
        int ready = poll(&p, 1, 100);
        if (ready == 0 || (ready < 0 && errno == EINTR))
            continue;
        char ch;
        ssize_t n = read(fd, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || ch == '\n') {
            line[len] = '\0';
            return n == 1;
        }
        if (len + 1 < cap)
            line[len++] = ch;
    }
}

static struct child spawn_consumer(const struct opts *o, const char *db, const char *type,
                                   long events, const char *metrics_addr)
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe", strerror(errno));
    char n[32];
    snprintf(n, sizeof n, "%ld", events);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("consumer", strerror(errno));
    if (pid == 0) {
        /* It must not outlive a producer that dies (it waits 600 s). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(127);
        close(fds[0]);
        execl("/proc/self/exe", "choreo-bench", "--role", "consumer", "--url", o->url, "--db", db,
              "--type", type, "--events", n, "--synchronous", o->synchronous,
              metrics_addr ? "--metrics-addr" : (char *)NULL, metrics_addr, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    live_consumer = pid;
    struct child c = { pid, fds[0] };
    char line[256];
    if (!read_line(c.out, line, sizeof line)) {
        char why[160];
        int st = reap(pid);
        live_consumer = 0;
        snprintf(why, sizeof why, "did not start: %s", how_ended(st));
        die("consumer", why);
    }
    if (strncmp(line, "ready", 5) != 0)
        die("consumer", "did not start");
    return c;
}

struct result {
    long handled;
    int64_t last_us, p50, p99;
    long rss_kb;
};

static struct result wait_consumer(struct child c)
{
    struct result r = { 0 };
    char line[256];
    bool said = read_line(c.out, line, sizeof line);
    close(c.out);
    int st = reap(c.pid);
    live_consumer = 0;
    if (!said) {
        char why[160];
        snprintf(why, sizeof why, "ended during the run: %s", how_ended(st));
        die("consumer", why);
    }
    if (sscanf(line, "handled=%ld last_us=%" SCNd64 " p50_us=%" SCNd64 " p99_us=%" SCNd64
                     " rss_kb=%ld",
               &r.handled, &r.last_us, &r.p50, &r.p99, &r.rss_kb) != 5)
        die("consumer", "no result");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("consumer", "did not handle every event in time");
    return r;
}

static choreo_service *producer(const struct opts *o, const char *db, const char *metrics_addr)
{
    choreo_config *cfg;
    choreo_service *svc;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        (metrics_addr && choreo_config_set(cfg, "metrics_addr", metrics_addr) != CHOREO_OK) ||
        choreo_config_set(cfg, "service", "benchsource") != CHOREO_OK ||
        choreo_config_set(cfg, "db", db) != CHOREO_OK ||
        choreo_config_set(cfg, "nats_url", o->url) != CHOREO_OK ||
        choreo_config_set(cfg, "synchronous", o->synchronous) != CHOREO_OK ||
        choreo_config_set(cfg, "log_level", "warn") != CHOREO_OK ||
        choreo_service_create(&svc, cfg) != CHOREO_OK || choreo_service_start(svc) != CHOREO_OK)
        die("producer start", choreo_last_error());
    choreo_config_destroy(cfg);
    return svc;
}

static void emit_batch(choreo_service *svc, const char *type, long count)
{
    choreo_tx *tx;
    if (choreo_service_begin(svc, &tx) != CHOREO_OK)
        die("begin", choreo_last_error());
    char saga[CHOREO_ID_SIZE];
    for (long i = 0; i < count; i++) {
        uint8_t buf[32];
        choreo_mp_writer w = { .buf = buf, .cap = sizeof buf, .max = sizeof buf };
        choreo_mp_write_map(&w, 1);
        choreo_mp_write_cstr(&w, "t");
        choreo_mp_write_int(&w, now_us());
        choreo_saga_new(saga);
        if (choreo_tx_emit(tx, type, 1, saga, w.buf, w.len, NULL) != CHOREO_OK)
            die("emit", choreo_last_error());
    }
    if (choreo_tx_commit(tx) != CHOREO_OK)
        die("commit", choreo_last_error());
}

/* ---- metrics on and off ---- */

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("free port", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* Reads http://127.0.0.1:port/metrics once; returns the bytes read. */
static long scrape(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    long total = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
        if (write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1)) {
            char buf[16384];
            for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
                total += n;
        }
    }
    if (fd >= 0)
        close(fd);
    return total;
}

/* Reads both services' endpoints every second while a run goes, as a
 * Prometheus server would: serving metrics includes being read. */
struct scraper {
    int ports[2];
    atomic_bool stop;
    long scrapes;
};

static void *scrape_main(void *arg)
{
    struct scraper *sc = arg;
    while (!atomic_load(&sc->stop)) {
        for (int i = 0; i < 2; i++)
            if (scrape(sc->ports[i]) > 0)
                sc->scrapes++;
        for (int slept = 0; slept < 1000 && !atomic_load(&sc->stop); slept += 50)
            sleep_us(50000);
    }
    return NULL;
}

/* One hop run on fresh databases and a fresh event type BenchHop<tag>:
 * o->events events in transactions of o->per_tx, with or without metrics
 * endpoints (scraped every second). Returns events/s from the first emit
 * to the consumer's last commit. */
/* Rows put into a database before a hop runs on it: inbox marks of another
 * consumer in the sink's (made now, so within the inbox retention: marks
 * older than that would be pruned during the run instead), delayed events
 * not due for years in the source's outbox. */
struct prefill {
    long inbox_rows, delayed_rows;
};

/* SQLite's progress handler: a fill of millions of rows takes a while,
 * and ends at once when a signal came (die then stops the run). */
static int sql_interrupted(void *unused)
{
    (void)unused;
    return atomic_load(&interrupted) != 0;
}

/* Runs sql on the database file path, dying on an error. */
static void sql_file(const char *path, const char *sql)
{
    sqlite3 *db;
    char *err = NULL;
    if (sqlite3_open(path, &db) == SQLITE_OK)
        sqlite3_progress_handler(db, 100000, sql_interrupted, NULL);
    if (sqlite3_errcode(db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        die(path, err ? err : sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* Creates a service's database (the framework's tables) at path. */
static void make_db(const struct opts *o, const char *path)
{
    choreo_config *cfg;
    choreo_service *svc;
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", "benchprep") != CHOREO_OK ||
        choreo_config_set(cfg, "db", path) != CHOREO_OK ||
        choreo_config_set(cfg, "nats_url", o->url) != CHOREO_OK ||
        choreo_service_create(&svc, cfg) != CHOREO_OK)
        die("prefill", choreo_last_error());
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
}

static void fill(const struct opts *o, const struct prefill *p, const char *source,
                 const char *sink)
{
    char sql[1024];
    if (p->inbox_rows > 0) {
        make_db(o, sink);
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
                 " INSERT INTO choreo_inbox(consumer, event_id, processed_at)"
                 " SELECT 'benchold_Old', printf('%%026d', i),"
                 " CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM n",
                 p->inbox_rows);
        sql_file(sink, sql);
    }
    if (p->delayed_rows > 0) {
        make_db(o, source);
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
                 " INSERT INTO choreo_outbox(event_id, subject, headers, body, created_at,"
                 " publish_at) SELECT printf('D%%025d', i), 'choreo.BenchLater.s', '', x'80',"
                 " 0, 4102444800000 FROM n", /* 2100-01-01 */
                 p->delayed_rows);
        sql_file(source, sql);
    }
}

static double hop_run(const struct opts *o, const char *dir, const char *tag, bool metrics,
                      struct result *out, const struct prefill *pre)
{
    char db_a[300], db_b[300], type[64], addr_a[32], addr_b[32];
    snprintf(db_a, sizeof db_a, "%s/source-%s.db", dir, tag);
    snprintf(db_b, sizeof db_b, "%s/sink-%s.db", dir, tag);
    if (pre)
        fill(o, pre, db_a, db_b);
    snprintf(type, sizeof type, "BenchHop%s", tag);
    struct scraper sc = { .ports = { free_port(), free_port() } };
    snprintf(addr_a, sizeof addr_a, "127.0.0.1:%d", sc.ports[0]);
    snprintf(addr_b, sizeof addr_b, "127.0.0.1:%d", sc.ports[1]);
    struct child c = spawn_consumer(o, db_b, type, o->events, metrics ? addr_b : NULL);
    choreo_service *src = producer(o, db_a, metrics ? addr_a : NULL);
    pthread_t t;
    if (metrics && pthread_create(&t, NULL, scrape_main, &sc) != 0)
        die("scraper", strerror(errno));
    int64_t start = now_us();
    for (long done = 0; done < o->events; done += o->per_tx) {
        check_consumer(&c);
        emit_batch(src, type, o->events - done < o->per_tx ? o->events - done : o->per_tx);
    }
    struct result r = wait_consumer(c);
    if (metrics) {
        atomic_store(&sc.stop, true);
        pthread_join(t, NULL);
        if (sc.scrapes == 0)
            die("metrics", "no endpoint could be read during the run");
    }
    choreo_service_destroy(src);
    if (out)
        *out = r;
    return (double)o->events / ((double)(r.last_us - start) / 1e6);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the shop demo in the same run ---- */

struct demo {
    double sagas_per_s, events_per_s;
};

/* A number after "key": in the demo's JSON line, or -1. */
static double json_number(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(json, pat);
    return at ? strtod(at + strlen(pat), NULL) : -1;
}

/* Prints the last lines (its last 8 KiB at most) of the file at path to
 * stderr, under a heading. */
static void print_tail(const char *path, const char *heading)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fseek(f, -8192, SEEK_END) != 0)
        rewind(f);
    static char text[8193];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *from = text;
    if (len == sizeof text - 1 && strchr(text, '\n'))
        from = strchr(text, '\n') + 1; /* a cut first line */
    fprintf(stderr, "%s\n%s", heading, from);
}

/* Runs the shop demo (built next to this program) with `orders` orders at
 * its default window and reads its JSON summary. What the demo prints on
 * stderr goes to a temporary file, whose end is shown when it fails. */
static struct demo run_demo(long orders)
{
    char self[512], prog[600], n[32];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        die("demo", "cannot find this program's directory");
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(prog, sizeof prog, "%s/../supervisor/shop-demo", self);
    snprintf(n, sizeof n, "%ld", orders);
    if (natsd_tmp_path(demo_errpath, sizeof demo_errpath, "choreo-bench-demo.XXXXXX") != 0) {
        demo_errpath[0] = '\0';
        die("TMPDIR is too long for the demo's messages", getenv("TMPDIR"));
    }
    int err = mkstemp(demo_errpath);
    if (err < 0) {
        demo_errpath[0] = '\0';
        die("demo: cannot create a file for the demo's messages", strerror(errno));
    }
    int out[2];
    if (pipe(out) != 0)
        die("pipe", strerror(errno));
    /* Its own process, not popen's shell: a signal to this program is
     * passed on to it (see stop_interrupted). */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        die("demo", strerror(errno));
    if (pid == 0) {
        /* A demo that is stopped removes its own directory. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent || dup2(out[1], STDOUT_FILENO) < 0 ||
            dup2(err, STDERR_FILENO) < 0)
            _exit(127);
        close(out[0]);
        close(out[1]);
        close(err);
        execl(prog, "shop-demo", "--orders", n, "--json", (char *)NULL);
        _exit(127);
    }
    live_demo = pid;
    close(out[1]);
    close(err);
    static char line[1 << 16];
    static char last[sizeof line];
    last[0] = '\0';
    while (read_line(out[0], line, sizeof line))
        if (line[0] == '{')
            snprintf(last, sizeof last, "%s", line);
    close(out[0]);
    int st = reap(pid);
    live_demo = 0;
    struct demo d = { json_number(last, "sagas_per_s"), json_number(last, "events_per_s") };
    bool ok = st == 0 && d.sagas_per_s > 0 && d.events_per_s > 0 &&
              strstr(last, "\"invariants_ok\": true");
    if (!ok) {
        print_tail(demo_errpath, "choreo-bench: the shop demo's last messages:");
        if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && !last[0])
            fprintf(stderr, "choreo-bench: cannot run %s\n", prog);
        if (last[0])
            fprintf(stderr, "choreo-bench: the shop demo's summary: %s\n", last);
    }
    unlink(demo_errpath);
    demo_errpath[0] = '\0';
    if (!ok)
        die("demo", "the shop demo failed or its invariants did not hold (its messages are "
                    "above); run tools/demo to see it on its own");
    return d;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: choreo-bench [--events N] [--per-tx K] [--latency-events M]\n"
            "                    [--latency-rate R] [--synchronous full|normal]\n"
            "                    [--metrics-pairs P] [--data-scale] [--demo-orders N]\n"
            "                    [--json]\n"
            "  --events N          events in the raw and the hop throughput runs,\n"
            "                      1 to 10000000 [20000]\n"
            "  --per-tx K          events the producer emits per transaction, 1 to 100000 [100]\n"
            "  --latency-events M  events in the paced latency run, 1 to 1000000 [1000]\n"
            "  --latency-rate R    events per second in the latency run, one per transaction,\n"
            "                      1 to 100000 [500]\n"
            "  --synchronous S     SQLite synchronous setting of both services [full]\n"
            "  --metrics-pairs P   hop runs with metrics endpoints off and on, alternating, P\n"
            "                      of each, 1 to 50; their medians are compared [3]\n"
            "  --data-scale        also run the hop with the sink's inbox holding\n"
            "                      --inbox-rows old marks [10000000] and the source's outbox\n"
            "                      --delayed-rows events not yet due [1000000] (each 1 to\n"
            "                      100000000), against empty tables (inbox_10m_ratio,\n"
            "                      delayed_1m_ratio)\n"
            "  --demo-orders N     orders of the shop demo run after the pipelines, 0 to\n"
            "                      10000000; its events/s over the raw pipeline's is\n"
            "                      demo_ratio (0: not run) [5000]\n"
            "  --json              print one JSON object\n");
}

/* The value of a flag that takes a count, or exit status 2 naming the flag
 * and its range. Out of range includes what strtol cannot hold: it gives
 * LONG_MAX then (ERANGE), and a run of LONG_MAX events never ends. */
static long count(const char *flag, const char *s, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < min || v > max) {
        fprintf(stderr, "choreo-bench: --%s takes a whole number from %ld to %ld, not \"%s\"\n",
                flag, min, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    struct opts o = { .events = 20000, .per_tx = 100, .lat_events = 1000, .lat_rate = 500,
                      .metrics_pairs = 3, .synchronous = "full", .role = "main",
                      .inbox_rows = 10000000, .delayed_rows = 1000000, .demo_orders = 5000 };
    bool data_scale = false;
    static const struct option longs[] = {
        { "events", 1, 0, 'n' }, { "per-tx", 1, 0, 'k' }, { "latency-events", 1, 0, 'm' },
        { "latency-rate", 1, 0, 'r' }, { "synchronous", 1, 0, 's' }, { "json", 0, 0, 'j' },
        { "role", 1, 0, 'R' }, { "url", 1, 0, 'u' }, { "db", 1, 0, 'd' }, { "type", 1, 0, 't' },
        { "metrics-pairs", 1, 0, 'P' }, { "metrics-addr", 1, 0, 'M' },
        { "data-scale", 0, 0, 'D' }, { "inbox-rows", 1, 0, 'I' }, { "delayed-rows", 1, 0, 'L' },
        { "demo-orders", 1, 0, 'O' },
        { "help", 0, 0, 'h' }, { 0, 0, 0, 0 } };
    for (int c; (c = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
        switch (c) {
        case 'n': o.events = count("events", optarg, 1, 10000000); break;
        case 'k': o.per_tx = count("per-tx", optarg, 1, 100000); break;
        case 'm': o.lat_events = count("latency-events", optarg, 1, 1000000); break;
        case 'r': o.lat_rate = count("latency-rate", optarg, 1, 100000); break;
        case 's': o.synchronous = optarg; break;
        case 'j': o.json = true; break;
        case 'R': o.role = optarg; break;
        case 'u': o.url = optarg; break;
        case 'd': o.db = optarg; break;
        case 't': o.type = optarg; break;
        case 'P': o.metrics_pairs = count("metrics-pairs", optarg, 1, 50); break;
        case 'M': o.metrics_addr = optarg; break;
        case 'D': data_scale = true; break;
        case 'I': o.inbox_rows = count("inbox-rows", optarg, 1, 100000000); break;
        case 'L': o.delayed_rows = count("delayed-rows", optarg, 1, 100000000); break;
        case 'O': o.demo_orders = count("demo-orders", optarg, 0, 10000000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "choreo-bench: \"%s\" is not an option: every setting is a flag "
                "(see --help)\n", argv[optind]);
        return 2;
    }
    if (strcmp(o.synchronous, "full") != 0 && strcmp(o.synchronous, "normal") != 0) {
        fprintf(stderr, "choreo-bench: --synchronous takes full or normal, not \"%s\"\n",
                o.synchronous);
        return 2;
    }
    umask(077); /* databases of business rows are private */
    if (strcmp(o.role, "consumer") == 0)
        return consumer_main(&o);
    /* From here a signal stops the run with what it started, and removes
     * its files; SA_RESTART, because the run's waits poll for it and the
     * libraries' calls must not fail with EINTR meanwhile. */
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    char dir[200];
    if (natsd_tmp_path(dir, sizeof dir, "choreo-bench-XXXXXX") != 0)
        die("TMPDIR is too long for the work directory", getenv("TMPDIR"));
    if (!mkdtemp(dir))
        die("cannot create a work directory (set TMPDIR to a writable one)", strerror(errno));
    snprintf(work_dir, sizeof work_dir, "%s", dir);
    char sd[256];
    snprintf(sd, sizeof sd, "%s/nats", dir);
    natsd server;
    if (natsd_start(&server, sd, 0, NULL, NULL) != 0)
        die("nats-server", "could not start");
    live_server = &server;
    o.url = server.url;

    /* The hop as a service runs it: metrics endpoints on, read every second. */
    struct result hop;
    double hop_rate = hop_run(&o, dir, "Main", true, &hop, NULL);

    /* latency: one event per transaction at a steady rate */
    char db_a[300], db_b[300], addr_a[32], addr_b[32];
    snprintf(db_b, sizeof db_b, "%s/sink-lat.db", dir);
    snprintf(db_a, sizeof db_a, "%s/source-lat.db", dir);
    snprintf(addr_a, sizeof addr_a, "127.0.0.1:%d", free_port());
    snprintf(addr_b, sizeof addr_b, "127.0.0.1:%d", free_port());
    struct child c2 = spawn_consumer(&o, db_b, "BenchLat", o.lat_events, addr_b);
    choreo_service *src = producer(&o, db_a, addr_a);
    int64_t gap = 1000000 / o.lat_rate, next = now_us();
    for (long i = 0; i < o.lat_events; i++) {
        check_consumer(&c2);
        emit_batch(src, "BenchLat", 1);
        next += gap;
        int64_t wait = next - now_us();
        if (wait > 0)
            sleep_us(wait);
    }
    struct result lat = wait_consumer(c2);
    choreo_stats st;
    choreo_service_stats(src, &st);
    choreo_service_destroy(src);

    /* What the metrics cost: hop runs with the endpoints off and on,
     * alternating which goes first so that a drift of the machine falls
     * on both. */
    double *off = calloc((size_t)o.metrics_pairs, sizeof *off);
    double *on = calloc((size_t)o.metrics_pairs, sizeof *on);
    if (!off || !on)
        die("metrics runs", "out of memory");
    for (long i = 0; i < o.metrics_pairs; i++) {
        char tag_off[32], tag_on[32];
        snprintf(tag_off, sizeof tag_off, "Off%ld", i);
        snprintf(tag_on, sizeof tag_on, "On%ld", i);
        if (i % 2 == 0) {
            off[i] = hop_run(&o, dir, tag_off, false, NULL, NULL);
            on[i] = hop_run(&o, dir, tag_on, true, NULL, NULL);
        } else {
            on[i] = hop_run(&o, dir, tag_on, true, NULL, NULL);
            off[i] = hop_run(&o, dir, tag_off, false, NULL, NULL);
        }
    }
    double off_med = median(off, o.metrics_pairs), on_med = median(on, o.metrics_pairs);
    free(off);
    free(on);

    /* Scale of data: the hop with the sink's inbox full of old marks, and
     * with the source's outbox full of delayed events not yet due, against
     * the empty tables of hop runs on each side of them. */
    double empty_before = 0, empty_after = 0, inbox_rate = 0, delayed_rate = 0;
    if (data_scale) {
        struct prefill inbox = { o.inbox_rows, 0 }, delayed = { 0, o.delayed_rows };
        empty_before = hop_run(&o, dir, "EmptyA", true, NULL, NULL);
        inbox_rate = hop_run(&o, dir, "Inbox", true, NULL, &inbox);
        delayed_rate = hop_run(&o, dir, "Delayed", true, NULL, &delayed);
        empty_after = hop_run(&o, dir, "EmptyB", true, NULL, NULL);
    }
    double empty_rate = (empty_before + empty_after) / 2;

    double raw_rate = raw_pipeline(server.url, o.events);
    natsd_stop(&server, SIGTERM);
    live_server = NULL;
    /* The databases and the stream (about 170 MB with the defaults) are
     * of no use once measured. A run that dies keeps them. */
    natsd_remove_tree(dir);
    work_dir[0] = '\0';
    /* The whole saga: the shop demo, with its own server, after this one
     * has stopped. */
    struct demo demo = { 0, 0 };
    if (o.demo_orders > 0)
        demo = run_demo(o.demo_orders);
    long rss = hop.rss_kb > lat.rss_kb ? hop.rss_kb : lat.rss_kb;
    double ratio = hop_rate / raw_rate;
    if (o.json) {
        printf("{\"events\": %ld, \"per_tx\": %ld, \"synchronous\": \"%s\", "
               "\"raw_events_per_s\": %.0f, \"hop_events_per_s\": %.0f, \"hop_ratio\": %.3f, "
               "\"relay_p50_us\": %" PRId64 ", \"relay_p99_us\": %" PRId64 ", "
               "\"hop_p50_us\": %" PRId64 ", \"hop_p99_us\": %" PRId64 ", \"service_rss_kb\": %ld, "
               "\"metrics_pairs\": %ld, \"hop_metrics_off_events_per_s\": %.0f, "
               "\"hop_metrics_on_events_per_s\": %.0f, \"metrics_on_off_ratio\": %.3f, "
               "\"broker_gomaxprocs\": %ld",
               o.events, o.per_tx, o.synchronous, raw_rate, hop_rate, ratio, st.relay_p50_us,
               st.relay_p99_us, lat.p50, lat.p99, rss, o.metrics_pairs, off_med, on_med,
               on_med / off_med, natsd_gomaxprocs());
        if (o.demo_orders > 0)
            printf(", \"demo_orders\": %ld, \"demo_sagas_per_s\": %.1f, "
                   "\"demo_events_per_s\": %.0f, \"demo_ratio\": %.3f",
                   o.demo_orders, demo.sagas_per_s, demo.events_per_s,
                   demo.events_per_s / raw_rate);
        if (data_scale)
            printf(", \"inbox_rows\": %ld, \"delayed_rows\": %ld, "
                   "\"hop_empty_events_per_s\": %.0f, \"hop_inbox_full_events_per_s\": %.0f, "
                   "\"hop_delayed_full_events_per_s\": %.0f, \"inbox_10m_ratio\": %.3f, "
                   "\"delayed_1m_ratio\": %.3f",
                   o.inbox_rows, o.delayed_rows, empty_rate, inbox_rate, delayed_rate,
                   inbox_rate / empty_rate, delayed_rate / empty_rate);
        else /* said, not left out: filling the tables takes a while */
            printf(", \"inbox_10m_ratio\": null, \"delayed_1m_ratio\": null, "
                   "\"data_scale\": \"not run: add --data-scale (it fills the tables first)\"");
        printf("}\n");
    } else {
        printf("choreo-bench: %ld events, %ld per producer transaction, synchronous=%s, "
               "nats-server GOMAXPROCS=%ld\n",
               o.events, o.per_tx, o.synchronous, natsd_gomaxprocs());
        printf("  raw JetStream pipeline   %10.0f events/s\n", raw_rate);
        printf("  one choreo hop           %10.0f events/s   (ratio %.3f)\n", hop_rate, ratio);
        printf("  latency run: %ld events at %ld/s, one per transaction\n", o.lat_events, o.lat_rate);
        printf("  relay insert->PubAck     p50 %6" PRId64 " us   p99 %6" PRId64 " us\n",
               st.relay_p50_us, st.relay_p99_us);
        printf("  emit->handled            p50 %6" PRId64 " us   p99 %6" PRId64 " us\n", lat.p50, lat.p99);
        printf("  consumer peak RSS        %10ld KiB\n", rss);
        printf("  metrics endpoints off    %10.0f events/s   (median of %ld hop runs)\n", off_med,
               o.metrics_pairs);
        printf("  metrics endpoints on     %10.0f events/s   (ratio on/off %.3f)\n", on_med,
               on_med / off_med);
        if (o.demo_orders > 0)
            printf("  shop demo, %ld orders   %10.0f events/s   (ratio %.3f; %.0f sagas/s)\n",
                   o.demo_orders, demo.events_per_s, demo.events_per_s / raw_rate,
                   demo.sagas_per_s);
        if (data_scale) {
            printf("  hop, empty tables        %10.0f events/s   (mean of the runs before and "
                   "after)\n", empty_rate);
            printf("  hop, %ld inbox marks %10.0f events/s   (ratio %.3f)\n", o.inbox_rows,
                   inbox_rate, inbox_rate / empty_rate);
            printf("  hop, %ld delayed rows %9.0f events/s   (ratio %.3f)\n", o.delayed_rows,
                   delayed_rate, delayed_rate / empty_rate);
        } else {
            printf("  hop with 10 million inbox marks and 1 million delayed rows: not run "
                   "(--data-scale: it fills the tables first)\n");
        }
    }
    return 0;
}
