/* A NATS outage: events emitted while nats-server is down are published
 * after it comes back, and the consumer gets every one of them. */
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "support.h"

static choreo_result record(choreo_tx *tx, const choreo_event *ev, void *user)
{
    char sql[96];
    snprintf(sql, sizeof sql, "INSERT INTO got(n) VALUES (%lld)", (long long)support_data_n(ev));
    return sqlite3_exec(choreo_tx_db(tx), sql, NULL, NULL, NULL) == SQLITE_OK ? CHOREO_DONE
                                                                             : CHOREO_RETRY;
}

struct count_arg {
    const char *dir;
    long long want;
};

static bool all_arrived(void *p)
{
    struct count_arg *a = p;
    return support_count(a->dir, "sink", "SELECT COUNT(DISTINCT n) FROM got") >= a->want;
}

Test(outage, events_emitted_while_nats_is_down_for_5s_all_arrive_afterwards, .timeout = 120)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "sink", "CREATE TABLE got(n INTEGER)");
    choreo_config *cfg = support_config(dir, "sink", server.url, NULL);
    choreo_service *sink = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(sink, "Tick", record, NULL), CHOREO_OK);
    cfg = support_config(dir, "source", server.url, NULL);
    choreo_service *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(source), CHOREO_OK, "%s", choreo_last_error());

    support_emit(source, "Tick", "before", 0, NULL);
    struct count_arg first = { dir, 1 };
    cr_assert(support_wait(all_arrived, &first, 10000));

    natsd_stop(&server, SIGTERM);
    int emitted = 0;
    for (int i = 1; i <= 50; i++) { /* 50 events over 5 s of outage */
        support_emit(source, "Tick", "during", i, NULL);
        emitted++;
        struct timespec ts = { 0, 100 * 1000000 };
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(natsd_restart(&server), 0);

    struct count_arg all = { dir, 1 + emitted };
    cr_assert(support_wait(all_arrived, &all, 60000), "only %lld of %d events arrived",
              support_count(dir, "sink", "SELECT COUNT(DISTINCT n) FROM got"), 1 + emitted);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM got"), 1 + emitted,
                 "an event was applied twice");
    /* The relay marks a batch published once the next one is on the wire,
     * or at its next scan: every row is marked soon after. */
    cr_assert(support_wait_count(dir, "source",
                                 "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0,
                                 5000),
              "rows stayed unpublished after their events arrived");
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
}
