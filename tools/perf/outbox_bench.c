/* How the relay's outbox queries scale with unpublished rows: fills a fresh
 * database with delayed rows (and optionally due ones) and prints the mean
 * time of next_due, pending and one due batch, as the relay calls them.
 *   choreo-outbox-bench [DELAYED [DUE [RUNS]]]   defaults 1000000 0 20 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "outbox.h"
#include "store.h"

#define BATCH 256 /* rows per due call, as the relay reads them */
#define ROWS_MAX 100000000L /* 100 million rows: about 20 GiB of database */
#define RUNS_MAX 100000L

static const char usage[] =
    "usage: choreo-outbox-bench [DELAYED [DUE [RUNS]]]\n"
    "\n"
    "How the relay's outbox queries scale with unpublished rows: fills a fresh\n"
    "SQLite database (in $TMPDIR, else /tmp; removed at the end, on Ctrl-C and\n"
    "on SIGTERM) with DELAYED rows due in an hour and DUE rows due now, then\n"
    "prints the mean time of the relay's three queries over RUNS rounds:\n"
    "next_due, pending, and one batch of due rows.\n"
    "\n"
    "  DELAYED  rows due in an hour, 0 to 100000000 [1000000]\n"
    "  DUE      rows due now, 0 to 100000000 [0]\n"
    "  RUNS     rounds of the three queries, 1 to 100000 [20]\n";

/* The database's files, for the signal handler to remove: unlink and rmdir
 * are safe to call there. */
static char dir[1024], path[1100], wal[1120], shm[1120];

static void remove_files(void)
{
    unlink(path);
    unlink(wal);
    unlink(shm);
    rmdir(dir);
}

static void on_signal(int sig)
{
    remove_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(choreo_status s, const char *what)
{
    if (s != CHOREO_OK) {
        fprintf(stderr, "outbox-bench: %s: %s\n", what, choreo_last_error());
        remove_files();
        exit(1);
    }
}

static long parse(const char *s, const char *what, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "outbox-bench: %s takes a whole number from %ld to %ld, not \"%s\" "
                "(see --help)\n", what, min, max, s);
        exit(2);
    }
    return v;
}

/* Inserts n rows due at publish_at, in transactions of 10,000 rows. */
static void fill(choreo_store *st, long n, int64_t publish_at, const char *tag)
{
    static const uint8_t body[64];
    char id[40];
    for (long i = 0; i < n;) {
        check(choreo__store_begin(st), "begin");
        for (long end = i + 10000; i < n && i < end; i++) {
            snprintf(id, sizeof id, "%s%ld", tag, i);
            choreo_outbox_row row = { .event_id = id, .subject = "choreo.Deadline.saga",
                                      .headers = "Nats-Msg-Id: x\n", .body = body,
                                      .body_len = sizeof body, .created_us = choreo__now_us(),
                                      .publish_at = publish_at };
            check(choreo__outbox_insert(st, &row, NULL), "insert");
        }
        check(choreo__store_commit(st), "commit");
    }
}

static bool count_row(const choreo_outbox_row *row, void *user)
{
    (*(int *)user)++;
    return true;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 4) {
        fprintf(stderr, "outbox-bench: too many arguments (%d); it takes DELAYED, DUE and RUNS "
                "(see --help)\n", argc - 1);
        return 2;
    }
    long delayed = argc > 1 ? parse(argv[1], "DELAYED", 0, ROWS_MAX) : 1000000;
    long due = argc > 2 ? parse(argv[2], "DUE", 0, ROWS_MAX) : 0;
    long runs = argc > 3 ? parse(argv[3], "RUNS", 1, RUNS_MAX) : 20;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/choreo-outbox-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "outbox-bench: cannot make a directory %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/bench.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    choreo_store *st = NULL;
    check(choreo__store_open(&st, path, "off", 5000), "open");
    int64_t now = choreo__now_ms();
    double t0 = now_s();
    fill(st, delayed, now + 3600 * 1000, "d");
    fill(st, due, now, "n");
    printf("%ld delayed rows (due in 1 h) and %ld due rows written in %.1f s\n", delayed, due,
           now_s() - t0);

    int64_t next = 0, pending = 0;
    int got = 0;
    double next_s = 0, pending_s = 0, due_s = 0;
    for (long r = 0; r < runs; r++) {
        double a = now_s();
        check(choreo__outbox_next_due(st, &next), "next_due");
        double b = now_s();
        check(choreo__outbox_pending(st, &pending), "pending");
        double c = now_s();
        got = 0;
        check(choreo__outbox_due(st, now + 1, 0, BATCH, count_row, &got), "due");
        double d = now_s();
        next_s += b - a;
        pending_s += c - b;
        due_s += d - c;
    }
    if (next != INT64_MAX)
        printf("next_due  %10.3f ms   (next due in %lld ms)\n", next_s * 1000 / (double)runs,
               (long long)(next - now));
    else
        printf("next_due  %10.3f ms   (no row waiting)\n", next_s * 1000 / (double)runs);
    printf("pending   %10.3f ms   (%lld rows)\n", pending_s * 1000 / (double)runs,
           (long long)pending);
    printf("due       %10.3f ms   (%d rows of a batch of %d)\n", due_s * 1000 / (double)runs, got,
           BATCH);
    choreo__store_close(st);
    remove_files();
    return 0;
}
