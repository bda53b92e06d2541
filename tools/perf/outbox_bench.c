/* How the relay's outbox queries scale with unpublished rows: fills a fresh
 * database with delayed rows (and optionally due ones) and prints the mean
 * time of next_due, pending and one due batch, as the relay calls them.
 *   choreo-outbox-bench [DELAYED [DUE [RUNS]]]   defaults 1000000 0 20 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "outbox.h"
#include "store.h"

#define BATCH 256 /* rows per due call, as the relay reads them */

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
        exit(1);
    }
}

static long parse(const char *s, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "outbox-bench: %s must be a whole number >= 0, not \"%s\"\n", what, s);
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
    long delayed = argc > 1 ? parse(argv[1], "DELAYED") : 1000000;
    long due = argc > 2 ? parse(argv[2], "DUE") : 0;
    long runs = argc > 3 ? parse(argv[3], "RUNS") : 20;
    if (runs < 1)
        runs = 1;
    char dir[] = "/tmp/choreo-outbox-bench-XXXXXX", path[128];
    if (!mkdtemp(dir)) {
        perror("outbox-bench: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/bench.db", dir);
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
    printf("next_due  %10.3f ms   (next due in %lld ms)\n", next_s * 1000 / (double)runs,
           (long long)(next - now));
    printf("pending   %10.3f ms   (%lld rows)\n", pending_s * 1000 / (double)runs,
           (long long)pending);
    printf("due       %10.3f ms   (%d rows of a batch of %d)\n", due_s * 1000 / (double)runs, got,
           BATCH);
    choreo__store_close(st);
    char sidecar[160];
    unlink(path);
    snprintf(sidecar, sizeof sidecar, "%s-wal", path);
    unlink(sidecar);
    snprintf(sidecar, sizeof sidecar, "%s-shm", path);
    unlink(sidecar);
    rmdir(dir);
    return 0;
}
