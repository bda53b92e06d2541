/* W3C trace context across services, against a real nats-server: an event
 * emitted outside a handler starts a trace; each handler's emits carry the
 * trace id of the event it handles with a parent id of their own, over
 * three hops; an event published without a traceparent reaches its handler
 * with "" and the handler's emits start a new trace; handled lines in the
 * log name the trace. */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "support.h"

/* The traceparent each hop's handler saw, by hop 1..3 (Hop1 is emitted by
 * a command); the last hop emits nothing. */
static char seen[4][64];
static atomic_bool ran[4];

static choreo_result relay_on(choreo_tx *tx, const choreo_event *ev, void *user)
{
    int hop = (int)(intptr_t)user;
    snprintf(seen[hop], sizeof seen[hop], "%s", ev->traceparent ? ev->traceparent : "(null)");
    atomic_store(&ran[hop], true);
    if (hop == 3)
        return CHOREO_DONE;
    char next[16];
    snprintf(next, sizeof next, "Hop%d", hop + 1);
    return choreo_tx_emit(tx, next, 1, NULL, ev->data, ev->data_len, NULL) == CHOREO_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

static choreo_service *hop_service(const char *dir, const char *url, int hop, const char *level)
{
    char name[16], type[16];
    snprintf(name, sizeof name, "hop%d", hop);
    snprintf(type, sizeof type, "Hop%d", hop);
    choreo_config *cfg = support_config(dir, name, url, level, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_on(svc, type, relay_on, (void *)(intptr_t)hop), CHOREO_OK);
    return svc;
}

static bool all_seen(void *p)
{
    (void)p;
    return atomic_load(&ran[1]) && atomic_load(&ran[2]) && atomic_load(&ran[3]);
}

static bool valid(const char *t)
{
    if (strlen(t) != 55 || strncmp(t, "00-", 3) != 0 || t[35] != '-' || t[52] != '-')
        return false;
    for (int i = 3; i < 55; i++)
        if (i != 35 && i != 52 && !strchr("0123456789abcdef", t[i]))
            return false;
    return strspn(t + 3, "0") < 32 && strspn(t + 36, "0") < 16;
}

Test(trace, a_trace_survives_three_hops_and_is_logged, .timeout = 90)
{
    char dir[256], log[600], text[65536];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4; i++)
        atomic_store(&ran[i], false);
    snprintf(log, sizeof log, "%s/hops.log", dir);
    int saved = support_stderr_to(log);
    choreo_service *svcs[4];
    for (int hop = 1; hop <= 3; hop++) {
        svcs[hop] = hop_service(dir, server.url, hop, "log_level=debug");
        cr_assert_eq(choreo_service_start(svcs[hop]), CHOREO_OK, "%s", choreo_last_error());
    }
    choreo_config *cfg = support_config(dir, "origin", server.url, "log_level=error", NULL);
    svcs[0] = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svcs[0]), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svcs[0], "Hop1", "saga-t", 1, NULL);
    bool done = support_wait(all_seen, NULL, 20000);
    for (int i = 0; i < 4; i++)
        choreo_service_destroy(svcs[i]);
    support_stderr_back(saved);
    cr_assert(done, "not every hop ran: [%s] [%s] [%s]", seen[1], seen[2], seen[3]);
    for (int hop = 1; hop <= 3; hop++)
        cr_assert(valid(seen[hop]), "hop %d got \"%s\"", hop, seen[hop]);
    /* One trace id, a new parent id at every hop. */
    for (int hop = 2; hop <= 3; hop++) {
        cr_assert_eq(strncmp(seen[hop] + 3, seen[1] + 3, 32), 0, "hop %d is in another trace: %s vs %s",
                     hop, seen[hop], seen[1]);
        cr_assert_neq(strncmp(seen[hop] + 36, seen[hop - 1] + 36, 16), 0,
                      "hop %d kept its parent's id: %s", hop, seen[hop]);
    }
    support_slurp(log, text, sizeof text);
    char want[64];
    snprintf(want, sizeof want, "trace=%.32s", seen[1] + 3);
    int lines = 0;
    for (const char *p = text; (p = strstr(p, want)) != NULL; p++)
        lines++;
    cr_assert_geq(lines, 3, "the handled lines of the three hops do not name the trace %s:\n%s",
                  want, text);
    natsd_stop(&server, SIGTERM);
}

Test(trace, an_event_without_a_traceparent_starts_a_new_trace_at_its_handler, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 4; i++)
        atomic_store(&ran[i], false);
    choreo_service *svcs[4];
    for (int hop = 1; hop <= 3; hop++) {
        svcs[hop] = hop_service(dir, server.url, hop, "log_level=error");
        cr_assert_eq(choreo_service_start(svcs[hop]), CHOREO_OK, "%s", choreo_last_error());
    }
    /* A Hop1 event from a producer that knows nothing of trace context: a
     * valid envelope (written by a service that is never started, so that
     * its row stays in the outbox), published by hand with no traceparent. */
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char path[600];
    choreo_config *cfg = support_config(dir, "origin", server.url, "log_level=error", NULL);
    choreo_service *origin = support_service(cfg);
    choreo_config_destroy(cfg);
    support_emit(origin, "Hop1", "saga-b", 1, NULL);
    choreo_service_destroy(origin);
    snprintf(path, sizeof path, "%s/origin.db", dir);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT subject, body, event_id FROM choreo_outbox", -1,
                                    &q, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, server.url), NATS_OK);
    jsCtx *js;
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    natsMsg *m = NULL;
    cr_assert_eq(natsMsg_Create(&m, (const char *)sqlite3_column_text(q, 0), NULL,
                                sqlite3_column_blob(q, 1), sqlite3_column_bytes(q, 1)),
                 NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(m, "Nats-Msg-Id", (const char *)sqlite3_column_text(q, 2)),
                 NATS_OK);
    cr_assert_eq(js_PublishMsg(NULL, js, m, NULL, NULL), NATS_OK);
    natsMsg_Destroy(m);
    sqlite3_finalize(q);
    sqlite3_close(db);

    bool done = support_wait(all_seen, NULL, 20000);
    for (int hop = 1; hop <= 3; hop++)
        choreo_service_destroy(svcs[hop]);
    cr_assert(done, "not every hop ran: [%s] [%s] [%s]", seen[1], seen[2], seen[3]);
    cr_assert_str_eq(seen[1], "", "an event without a header reached its handler with \"%s\"",
                     seen[1]);
    cr_assert(valid(seen[2]) && valid(seen[3]), "[%s] [%s]", seen[2], seen[3]);
    cr_assert_eq(strncmp(seen[2] + 3, seen[3] + 3, 32), 0, "the new trace did not carry on");
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsd_stop(&server, SIGTERM);
}
