/* Pruning keeps the framework tables bounded: 100,000 events through one hop
 * with short retention, sampling the outbox and inbox sizes as they go; and
 * a service refuses to start when its inbox marks would be pruned before the
 * real stream forgets their events. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

#define EVENTS 100000
#define PER_TX 200
#define MAX_LAG 2000
#define RATE 5000 /* events per second: the run lasts 20 s, longer than every retention */

static choreo_result count_it(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return CHOREO_DONE;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(prune, outbox_and_inbox_stay_bounded_over_100000_events, .timeout = 300)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    const char *retention[] = { "stream_max_age_s=2", "inbox_retention_s=3",
                                "outbox_retention_s=1", "prune_interval_s=1",
                                "stream_dup_window_s=1" };
    choreo_config *cfg = support_config(dir, "sink", server.url, retention[0], retention[1],
                                        retention[2], retention[3], retention[4], NULL);
    choreo_service *sink = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(sink, "Tick", count_it, NULL), CHOREO_OK);
    cfg = support_config(dir, "source", server.url, retention[0], retention[1], retention[2],
                         retention[3], retention[4], NULL);
    choreo_service *source = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(source), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());

    long long max_outbox = 0, max_inbox = 0, max_outbox_age = 0, max_inbox_age = 0;
    int64_t last_sample = 0, start = now_ms();
    uint8_t data[] = { 0x80 };
    for (long sent = 0; sent < EVENTS;) {
        if (sent > (now_ms() - start) * RATE / 1000) {
            usleep(2000);
            continue;
        }
        /* Keep the consumer at most MAX_LAG events behind, so that nothing
         * outlives the stream's short max age before it is consumed. */
        if ((long)sent - (long)support_stats(sink).handled > MAX_LAG) {
            usleep(2000);
            continue;
        }
        choreo_tx *tx;
        cr_assert_eq(choreo_service_begin(source, &tx), CHOREO_OK);
        for (int i = 0; i < PER_TX; i++)
            cr_assert_eq(choreo_tx_emit(tx, "Tick", 1, "prune", data, 1, NULL), CHOREO_OK);
        cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK);
        sent += PER_TX;
        if (now_ms() - last_sample >= 500) {
            last_sample = now_ms();
            long long o = support_count(dir, "source", "SELECT COUNT(*) FROM choreo_outbox");
            long long in = support_count(dir, "sink", "SELECT COUNT(*) FROM choreo_inbox");
            max_outbox = o > max_outbox ? o : max_outbox;
            max_inbox = in > max_inbox ? in : max_inbox;
            char sql[160];
            snprintf(sql, sizeof sql,
                     "SELECT COALESCE(%lld - MIN(published_at), 0) FROM choreo_outbox"
                     " WHERE published_at IS NOT NULL", (long long)last_sample);
            long long age = support_count(dir, "source", sql);
            max_outbox_age = age > max_outbox_age ? age : max_outbox_age;
            snprintf(sql, sizeof sql,
                     "SELECT COALESCE(%lld - MIN(processed_at), 0) FROM choreo_inbox",
                     (long long)last_sample);
            age = support_count(dir, "sink", sql);
            max_inbox_age = age > max_inbox_age ? age : max_inbox_age;
        }
    }
    for (int64_t until = now_ms() + 120000;
         now_ms() < until && support_stats(sink).handled < EVENTS;)
        usleep(20000);
    cr_assert_eq(support_stats(sink).handled, EVENTS);
    /* Once the retention periods pass, the tables drain to empty. */
    long long outbox_end = -1, inbox_end = -1;
    for (int64_t until = now_ms() + 15000; now_ms() < until && (outbox_end || inbox_end);) {
        outbox_end = support_count(dir, "source", "SELECT COUNT(*) FROM choreo_outbox");
        inbox_end = support_count(dir, "sink", "SELECT COUNT(*) FROM choreo_inbox");
        usleep(200000);
    }
    fprintf(stderr,
            "prune: max outbox %lld rows (oldest %lld ms), max inbox %lld rows (oldest %lld ms),"
            " at the end %lld and %lld rows\n",
            max_outbox, max_outbox_age, max_inbox, max_inbox_age, outbox_end, inbox_end);
    /* What pruning promises is an age: no published outbox row outlives
     * outbox_retention_s, nor an inbox mark inbox_retention_s, by much more
     * than a prune interval (1 s here; 2 s more for a slow pass under load).
     * Without pruning the oldest row's age grows to the whole 20 s run. The
     * row counts follow from the age and the rate: at RATE events/s about
     * 10,000 and 20,000, more after the source catches up with a stall. */
    cr_assert_lt(max_outbox_age, (1 + 1 + 2) * 1000, "an outbox row lived %lld ms",
                 max_outbox_age);
    cr_assert_lt(max_inbox_age, (3 + 1 + 2) * 1000, "an inbox mark lived %lld ms", max_inbox_age);
    cr_assert_lt(max_outbox, EVENTS / 2, "outbox grew to %lld rows", max_outbox);
    cr_assert_lt(max_inbox, EVENTS / 2, "inbox grew to %lld rows", max_inbox);
    cr_assert_eq(outbox_end, 0);
    cr_assert_eq(inbox_end, 0);
    choreo_service_destroy(source);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
}

/* The stream a service joins may not be the one its settings would create:
 * start compares the inbox retention with the real stream's max age. */
Test(prune, start_refuses_a_stream_that_keeps_events_longer_than_the_inbox_marks, .timeout = 60)
{
    static const struct {
        int64_t max_age_s;     /* of the existing stream; 0 = unlimited */
        const char *retention; /* inbox_retention_s */
        const char *says;      /* NULL: starts */
    } cases[] = {
        { 3600, "120", "keeps its messages for 3600 s (its max age), but inbox_retention_s=120" },
        { 120, "120", "keeps its messages for 120 s (its max age), but inbox_retention_s=120" },
        { 0, "120", "keeps its messages forever (max age unlimited), but inbox_retention_s=120" },
        { 60, "120", NULL },
        { 0, "0", NULL },
    };
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char stream[16], subject[16], prefix[16], name[16], set_stream[32], set_prefix[32],
            set_retention[48];
        snprintf(stream, sizeof stream, "S%zu", i);
        snprintf(prefix, sizeof prefix, "p%zu", i);
        snprintf(subject, sizeof subject, "p%zu.>", i);
        snprintf(name, sizeof name, "svc%zu", i);
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subjects[] = { subject };
        sc.Name = stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.MaxAge = cases[i].max_age_s * 1000000000LL;
        sc.Duplicates = 30 * 1000000000LL;
        cr_assert_eq(js_AddStream(NULL, js, &sc, NULL, NULL), NATS_OK);
        /* Settings that pass validation: a configured max age of 60 s,
         * which does not change the existing stream. */
        snprintf(set_stream, sizeof set_stream, "stream=%s", stream);
        snprintf(set_prefix, sizeof set_prefix, "prefix=%s", prefix);
        snprintf(set_retention, sizeof set_retention, "inbox_retention_s=%s", cases[i].retention);
        choreo_config *cfg = support_config(dir, name, server.url, set_stream, set_prefix,
                                            set_retention, "stream_max_age_s=60",
                                            "stream_dup_window_s=30", "connect_wait_ms=5000",
                                            NULL);
        choreo_service *svc = support_service(cfg);
        choreo_config_destroy(cfg);
        choreo_status s = choreo_service_start(svc);
        if (cases[i].says) {
            cr_assert_eq(s, CHOREO_ECONFIG, "case %zu started: %s", i, choreo_last_error());
            cr_assert(strstr(choreo_last_error(), cases[i].says), "case %zu: %s", i,
                      choreo_last_error());
            cr_assert(strstr(choreo_last_error(), stream), "case %zu: %s", i, choreo_last_error());
        } else {
            cr_assert_eq(s, CHOREO_OK, "case %zu: %s", i, choreo_last_error());
        }
        choreo_service_destroy(svc);
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsd_stop(&server, SIGTERM);
}
