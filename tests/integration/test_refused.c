/* Events the broker refuses for good, against a real nats-server: an emit
 * larger than the server's max_payload is refused at the emit; a row that
 * got into the outbox anyway (emitted before the limit was known, or over a
 * stream's own size limit) is set aside into choreo_dead where choreoctl
 * shows it, and the relay keeps publishing the rows after it. */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

static atomic_int small_seen, big_seen;

static choreo_result on_big(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&big_seen, 1);
    return CHOREO_DONE;
}

static bool big_arrived(void *p)
{
    return atomic_load(&big_seen) >= 1;
}

static choreo_result on_small(choreo_tx *tx, const choreo_event *ev, void *user)
{
    atomic_fetch_add(&small_seen, 1);
    return CHOREO_DONE;
}

static bool small_arrived(void *p)
{
    return atomic_load(&small_seen) >= 1;
}

/* Emits type with a data map {"b": <len bytes>} in its own transaction. */
static choreo_status emit_big(choreo_service *svc, const char *type, size_t len)
{
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    char *blob = calloc(1, len);
    cr_assert_not_null(blob);
    choreo_mp_write_map(&w, 1);
    choreo_mp_write_cstr(&w, "b");
    choreo_mp_write_bin(&w, blob, len);
    free(blob);
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK, "%s", choreo_last_error());
    choreo_status s = choreo_tx_emit(tx, type, 1, "big-1", w.buf, w.len, NULL);
    choreo_mp_writer_free(&w);
    if (s == CHOREO_OK)
        cr_assert_eq(choreo_tx_commit(tx), CHOREO_OK, "%s", choreo_last_error());
    else
        choreo_tx_rollback(tx);
    return s;
}

/* Waits up to 5 s for a row in choreo_dead. */
static bool wait_parked(const char *dir)
{
    return support_wait_count(dir, "worker", "SELECT COUNT(*) > 0 FROM choreo_dead", 1, 5000);
}

/* Waits up to 5 s until no outbox row is left unpublished (the relay marks
 * a batch published once the next one is on its way, or at its next scan). */
static bool wait_all_published(const char *dir)
{
    return support_wait_count(dir, "worker",
                              "SELECT COUNT(*) FROM choreo_outbox WHERE published_at IS NULL", 0,
                              5000);
}

static choreo_service *worker(const char *dir, const char *url)
{
    choreo_config *cfg = support_config(dir, "worker", url, "log_level=error", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, "Small", on_small, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_on(svc, "Big", on_big, NULL), CHOREO_OK);
    return svc;
}

Test(refused, an_emit_over_the_servers_max_payload_is_refused_at_the_emit, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = worker(dir, server.url);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    /* The envelope fits max_event_bytes (1 MiB) but not, with its headers,
     * the server's default max_payload of 1 MiB. */
    choreo_status s = emit_big(svc, "Big", 1048400);
    cr_assert_eq(s, CHOREO_ETOOBIG, "status %d: %s", s, choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "max_payload"), "%s", choreo_last_error());
    support_emit(svc, "Small", "s1", 1, NULL);
    cr_assert(support_wait(small_arrived, NULL, 10000));
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(refused, a_row_over_max_payload_is_set_aside_and_the_relay_goes_on, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    choreo_service *svc = worker(dir, server.url);
    /* Before start the server's limit is not known yet: the row is kept. */
    cr_assert_eq(emit_big(svc, "Big", 1048400), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Small", "s1", 1, NULL);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(support_wait(small_arrived, NULL, 10000),
              "the relay stopped at the row the broker refuses");
    cr_assert(wait_parked(dir), "the refused row was not set aside");
    cr_assert(wait_all_published(dir), "rows are left unpublished in the outbox");
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE"
                                              " consumer = '(outbox)' AND event_type = 'Big'"
                                              " AND reason LIKE '%max_payload%'"), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(refused, a_row_over_the_streams_size_limit_is_set_aside_and_the_relay_goes_on,
     .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    /* The stream exists already with a 2,000-byte message limit. */
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = { "choreo.>" };
    sc.Name = "CHOREO";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.MaxMsgSize = 2000;
    sc.MaxAge = 3600 * 1000000000LL;
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_AddStream(&si, js, &sc, NULL, NULL), NATS_OK);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);

    choreo_service *svc = worker(dir, server.url);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(emit_big(svc, "Big", 3000), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Small", "s1", 1, NULL);
    cr_assert(support_wait(small_arrived, NULL, 10000),
              "the relay stopped at the row the stream refuses");
    cr_assert(wait_parked(dir), "the refused row was not set aside");
    cr_assert_eq(support_count(dir, "worker", "SELECT COUNT(*) FROM choreo_dead WHERE"
                                              " consumer = '(outbox)' AND event_type = 'Big'"
                                              " AND reason LIKE '%10054%'"), 1);
    cr_assert(wait_all_published(dir), "rows are left unpublished in the outbox");

    /* The operator raises the stream's limit and retries the row: it reaches
     * its consumer, once. */
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    sc.MaxMsgSize = -1;
    cr_assert_eq(js_UpdateStream(&si, js, &sc, NULL, NULL), NATS_OK);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    choreo_config *acfg = support_config(dir, "worker", server.url, "log_level=error", NULL);
    choreo_admin *adm = NULL;
    cr_assert_eq(choreo_admin_open(&adm, acfg), CHOREO_OK, "%s", choreo_last_error());
    long long id = support_count(dir, "worker", "SELECT id FROM choreo_dead");
    cr_assert_eq(choreo_admin_dead_retry(adm, id), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(support_wait(big_arrived, NULL, 10000), "the retried row never arrived");
    choreo_admin_close(adm);
    choreo_config_destroy(acfg);
    sleep(1);
    cr_assert_eq(atomic_load(&big_seen), 1);
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}
