/* The generated typed emits and handler registration against a real service
 * (its SQLite file in a temp directory; no NATS needed before start): an
 * emit writes an outbox row whose envelope carries the event's type, version
 * and data, and a registered handler receives decoded values or never runs
 * when the data does not decode. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "gt_events.h"
#include "natsd.h"
#include "service.h"
#include "tx.h"

/* The temp directories this test made, removed with what is in them when
 * it ends. */
static char made_dirs[4][200];
static int n_made_dirs;

static void remove_made_dirs(void)
{
    for (int i = 0; i < n_made_dirs; i++)
        natsd_remove_tree(made_dirs[i]);
    n_made_dirs = 0;
}

TestSuite(gen_service, .fini = remove_made_dirs);

/* A service named name on a new SQLite file, with key set to value when
 * key is not NULL. */
static choreo_service *make_service_with(const char *name, const char *key, const char *value)
{
    char dir[200], db[300];
    cr_assert_eq(natsd_tmp_path(dir, sizeof dir, "choreo-gen-XXXXXX"), 0, "TMPDIR is too long");
    cr_assert_lt(n_made_dirs, 4, "a test makes at most 4 services");
    cr_assert_not_null(mkdtemp(dir));
    memcpy(made_dirs[n_made_dirs++], dir, sizeof dir);
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    choreo_config *cfg;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "service", name), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "log_level", "error"), CHOREO_OK);
    if (key)
        cr_assert_eq(choreo_config_set(cfg, key, value), CHOREO_OK, "%s", choreo_last_error());
    choreo_service *svc;
    cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
    return svc;
}

static choreo_service *make_service(const char *name)
{
    return make_service_with(name, NULL, NULL);
}

/* Reads the envelope of the outbox row of event `id` within tx. */
static void read_outbox(choreo_tx *tx, const char *id, choreo_envelope *env, uint8_t *body,
                        size_t cap, int64_t *publish_at)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(choreo_tx_db(tx),
                                    "SELECT body, publish_at FROM choreo_outbox WHERE event_id = ?",
                                    -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "no outbox row for %s", id);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    cr_assert_leq(n, cap);
    memcpy(body, sqlite3_column_blob(st, 0), n);
    *publish_at = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    cr_assert_eq(choreo__envelope_decode(env, body, n, 1 << 20), CHOREO_OK, "%s",
                 choreo_last_error());
}

static long long outbox_rows(choreo_tx *tx)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(choreo_tx_db(tx), "SELECT count(*) FROM choreo_outbox", -1,
                                    &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

Test(gen_service, emit_writes_the_type_version_and_encoded_data)
{
    choreo_service *svc = make_service("emitter");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    gt_point pt = {5, 6, NULL};
    gt_all_types v;
    gt_all_types_init(&v);
    v.s = "hello";
    v.n32 = -7;
    v.point = pt;
    char id[CHOREO_ID_SIZE];
    cr_assert_eq(gt_emit_all_types(tx, "saga-1", &v, id), CHOREO_OK, "%s", choreo_last_error());
    choreo_envelope env;
    uint8_t body[4096];
    int64_t publish_at;
    read_outbox(tx, id, &env, body, sizeof body, &publish_at);
    cr_assert_str_eq(env.type, GT_ALL_TYPES_TYPE);
    cr_assert_str_eq(env.type, "AllTypes");
    cr_assert_eq(env.version, GT_ALL_TYPES_VERSION);
    cr_assert_eq(env.version, 3);
    cr_assert_str_eq(env.saga, "saga-1");
    cr_assert_str_eq(env.src, "emitter");
    cr_assert_leq(publish_at, env.ts_ms);
    gt_all_types out;
    char err[256];
    cr_assert_eq(gt_all_types_decode(&out, env.data, env.data_len, err, sizeof err), CHOREO_OK,
                 "%s", err);
    cr_assert_str_eq(out.s, "hello");
    cr_assert_eq(out.n32, -7);
    cr_assert_eq(out.point.x, 5);
    cr_assert_eq(out.point.y, 6);
    gt_all_types_free(&out);
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);
}

Test(gen_service, emit_after_delays_publication)
{
    choreo_service *svc = make_service("delayer");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    gt_empty e;
    gt_empty_init(&e);
    char id[CHOREO_ID_SIZE];
    cr_assert_eq(gt_emit_empty_after(tx, 60000, "saga-2", &e, id), CHOREO_OK, "%s",
                 choreo_last_error());
    choreo_envelope env;
    uint8_t body[1024];
    int64_t publish_at;
    read_outbox(tx, id, &env, body, sizeof body, &publish_at);
    cr_assert_str_eq(env.type, "Empty");
    cr_assert_eq(publish_at - env.ts_ms, 60000);
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);
}

Test(gen_service, emit_at_publishes_at_a_time)
{
    choreo_service *svc = make_service("scheduler");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    gt_empty e;
    gt_empty_init(&e);
    char id[CHOREO_ID_SIZE];
    const int64_t at = 4102444800000; /* 2100-01-01 */
    cr_assert_eq(gt_emit_empty_at(tx, at, "saga-4", &e, id), CHOREO_OK, "%s",
                 choreo_last_error());
    choreo_envelope env;
    uint8_t body[1024];
    int64_t publish_at;
    read_outbox(tx, id, &env, body, sizeof body, &publish_at);
    cr_assert_eq(publish_at, at);
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);
}

Test(gen_service, an_invalid_value_is_not_emitted)
{
    choreo_service *svc = make_service("refuser");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    gt_all_types v;
    gt_all_types_init(&v);
    v.sb = "far too long for eight";
    cr_assert_eq(gt_emit_all_types(tx, "saga-3", &v, NULL), CHOREO_ETOOBIG);
    cr_assert_eq(gt_emit_all_types(NULL, "saga-3", &v, NULL), CHOREO_EINVAL);
    cr_assert_eq(gt_emit_all_types(tx, "saga-3", NULL, NULL), CHOREO_EINVAL);
    cr_assert_eq(outbox_rows(tx), 0);
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);
}

/* A typed emit takes as much data as the service's max_event_bytes allows,
 * past the default 1 MiB, and past it is refused with an error that names
 * the setting. */
Test(gen_service, a_typed_emit_takes_data_up_to_max_event_bytes)
{
    const size_t mib = 1024 * 1024;
    uint8_t *blob = calloc(5 * mib, 1);
    cr_assert_not_null(blob);
    gt_all_types v;
    gt_all_types_init(&v);
    v.s = "s";
    v.sb = "sb";
    v.b.data = blob;
    v.b.len = 2 * mib;
    choreo_service *svc = make_service_with("big", "max_event_bytes", "4194304");
    choreo_tx *tx;
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    cr_assert_eq(gt_emit_all_types(tx, "saga-big", &v, NULL), CHOREO_OK, "%s",
                 choreo_last_error());
    v.b.len = 5 * mib;
    cr_assert_eq(gt_emit_all_types(tx, "saga-big", &v, NULL), CHOREO_ETOOBIG);
    cr_assert(strstr(choreo_last_error(), "max_event_bytes of 4194304"), "%s",
              choreo_last_error());
    cr_assert_eq(outbox_rows(tx), 1);
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);

    svc = make_service("small"); /* the default: 1 MiB */
    cr_assert_eq(choreo_service_begin(svc, &tx), CHOREO_OK);
    v.b.len = 2 * mib;
    cr_assert_eq(gt_emit_all_types(tx, "saga-big", &v, NULL), CHOREO_ETOOBIG);
    cr_assert(strstr(choreo_last_error(), "max_event_bytes of 1048576"), "%s",
              choreo_last_error());
    choreo_tx_rollback(tx);
    choreo_service_destroy(svc);
    free(blob);
}

typedef struct seen {
    int calls;
    int32_t x, y;
    const char *name_seen;
    char saga[CHOREO_SAGA_MAX + 1];
} seen;

static choreo_result on_point_event(choreo_tx *tx, const choreo_event *meta,
                                    const gt_all_types *v, void *user)
{
    seen *s = user;
    s->calls++;
    s->x = v->point.x;
    s->y = v->point.y;
    snprintf(s->saga, sizeof s->saga, "%s", meta->saga);
    return CHOREO_DONE;
}

static choreo_route *route_of(choreo_service *svc, const char *type)
{
    for (int i = 0; i < svc->nroutes; i++)
        if (strcmp(svc->routes[i].type, type) == 0)
            return &svc->routes[i];
    cr_assert_fail("no route for %s", type);
    return NULL;
}

static choreo_event event_with(const uint8_t *data, size_t len)
{
    choreo_event ev = {
        .id = "01JD0000000000000000000001",
        .type = "AllTypes",
        .version = 3,
        .saga = "saga-9",
        .cause = "",
        .source = "test",
        .ts_ms = 1,
        .data = data,
        .data_len = len,
        .attempt = 1,
    };
    return ev;
}

Test(gen_service, a_registered_handler_receives_the_decoded_event)
{
    choreo_service *svc = make_service("handler");
    seen s = {0};
    cr_assert_eq(gt_on_all_types(svc, on_point_event, &s), CHOREO_OK, "%s", choreo_last_error());
    choreo_route *r = route_of(svc, GT_ALL_TYPES_TYPE);
    gt_all_types v;
    gt_all_types_init(&v);
    v.point.x = 11;
    v.point.y = 12;
    choreo_mp_writer w;
    choreo_mp_writer_init(&w, 0);
    cr_assert_eq(gt_all_types_encode(&v, &w), CHOREO_OK);
    choreo_event ev = event_with(w.buf, w.len);
    cr_assert_eq(r->fn(NULL, &ev, r->user), CHOREO_DONE);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.x, 11);
    cr_assert_eq(s.y, 12);
    cr_assert_str_eq(s.saga, "saga-9");
    choreo_mp_writer_free(&w);
    choreo_service_destroy(svc);
}

Test(gen_service, data_that_does_not_decode_is_rejected_with_the_reason_and_no_handler_call)
{
    choreo_service *svc = make_service("rejecter");
    seen s = {0};
    cr_assert_eq(gt_on_all_types(svc, on_point_event, &s), CHOREO_OK);
    choreo_route *r = route_of(svc, GT_ALL_TYPES_TYPE);
    choreo_tx tx = {0};
    static const uint8_t not_a_map[] = {0x91, 0x01};
    choreo_event ev = event_with(not_a_map, sizeof not_a_map);
    cr_assert_eq(r->fn(&tx, &ev, r->user), CHOREO_REJECT);
    cr_assert_str_eq(tx.reason, "AllTypes: expected a map, found an array");
    static const uint8_t missing[] = {0x80};
    ev = event_with(missing, sizeof missing);
    cr_assert_eq(r->fn(&tx, &ev, r->user), CHOREO_REJECT);
    cr_assert_str_eq(tx.reason, "AllTypes: required field 's' is missing");
    cr_assert_eq(s.calls, 0);
    choreo_service_destroy(svc);
}

Test(gen_service, registration_errors_come_from_the_service)
{
    choreo_service *svc = make_service("twice");
    seen s = {0};
    cr_assert_eq(gt_on_all_types(svc, on_point_event, &s), CHOREO_OK);
    cr_assert_eq(gt_on_all_types(svc, on_point_event, &s), CHOREO_EDUPLICATE);
    cr_assert_eq(gt_on_all_types(NULL, on_point_event, &s), CHOREO_EINVAL);
    cr_assert_eq(gt_on_all_types(svc, NULL, &s), CHOREO_EINVAL);
    choreo_service_destroy(svc);
}

Test(gen_service, the_same_handler_and_user_share_one_binding)
{
    seen s = {0}, t = {0};
    choreo_service *a = make_service("first");
    choreo_service *b = make_service("second");
    cr_assert_eq(gt_on_all_types(a, on_point_event, &s), CHOREO_OK);
    cr_assert_eq(gt_on_all_types(b, on_point_event, &s), CHOREO_OK);
    cr_assert_eq(route_of(a, "AllTypes")->user, route_of(b, "AllTypes")->user);
    choreo_service_destroy(b);
    b = make_service("third");
    cr_assert_eq(gt_on_all_types(b, on_point_event, &t), CHOREO_OK);
    cr_assert_neq(route_of(a, "AllTypes")->user, route_of(b, "AllTypes")->user);
    choreo_service_destroy(a);
    choreo_service_destroy(b);
}
