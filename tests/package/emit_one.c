/* emit_one: the order side of the package check (check_debs.sh). A service
 * named "order", with no handlers, emits one OrderCreated event in a command
 * transaction, waits until its relay has published it, and exits. It uses
 * only the public API of the installed choreo.h, and is built like any user's
 * program: cc emit_one.c $(pkg-config --cflags --libs choreo) -o emit_one
 *
 *   emit_one --db order.db --nats-url nats://127.0.0.1:4222
 *
 * Flags and CHOREO_* variables are choreo settings. Prints the event's id
 * and exits 0 once the event is published; exits 1 with choreo's error
 * otherwise. */
#define _POSIX_C_SOURCE 200809L

#include <choreo.h>
#include <stdio.h>
#include <time.h>

/* How long the relay may take to publish the committed event. */
#define PUBLISH_WAIT_MS 15000
#define POLL_MS 50

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Emits OrderCreated {sku: "apple", qty: 1} in a new saga and commits it.
 * The README's handler passes the data on without reading it. */
static choreo_status emit_order_created(choreo_service *svc, const choreo_mp_writer *data,
                                        char id[CHOREO_ID_SIZE], char saga[CHOREO_ID_SIZE])
{
    choreo_tx *tx = NULL;
    choreo_status s = choreo_service_begin(svc, &tx);
    if (s != CHOREO_OK)
        return s;
    choreo_saga_new(saga);
    s = choreo_tx_emit(tx, "OrderCreated", 1, saga, data->buf, data->len, id);
    if (s != CHOREO_OK) {
        /* Report before the rollback, which may clear the error text. */
        fprintf(stderr, "emit_one: %s\n", choreo_last_error());
        choreo_tx_rollback(tx);
        return s;
    }
    s = choreo_tx_commit(tx);
    if (s != CHOREO_OK)
        fprintf(stderr, "emit_one: %s\n", choreo_last_error());
    return s;
}

/* Waits until the relay has a PubAck for the event, at most
 * PUBLISH_WAIT_MS. */
static int wait_published(choreo_service *svc)
{
    for (int waited = 0; waited <= PUBLISH_WAIT_MS; waited += POLL_MS) {
        choreo_stats st;
        choreo_service_stats(svc, &st);
        if (st.published >= 1)
            return 1;
        sleep_ms(POLL_MS);
    }
    return 0;
}

int main(int argc, char **argv)
{
    choreo_config *cfg = NULL;
    choreo_service *svc = NULL;
    choreo_mp_writer data;
    char id[CHOREO_ID_SIZE], saga[CHOREO_ID_SIZE];
    int rc = 1;

    choreo_mp_writer_init(&data, 0);
    choreo_mp_write_map(&data, 2);
    choreo_mp_write_cstr(&data, "sku");
    choreo_mp_write_cstr(&data, "apple");
    choreo_mp_write_cstr(&data, "qty");
    choreo_mp_write_uint(&data, 1);
    if (choreo_mp_writer_status(&data) != CHOREO_OK) {
        fprintf(stderr, "emit_one: cannot encode the event data: %s\n",
                choreo_status_str(choreo_mp_writer_status(&data)));
        goto done;
    }

    /* A bounded connect wait, so that a missing broker fails the check
     * instead of hanging it; flags and variables may override it. */
    if (choreo_config_create(&cfg) != CHOREO_OK ||
        choreo_config_set(cfg, "service", "order") != CHOREO_OK ||
        choreo_config_set(cfg, "connect_wait_ms", "10000") != CHOREO_OK ||
        choreo_config_from_env(cfg) != CHOREO_OK ||
        choreo_config_from_args(cfg, &argc, argv) != CHOREO_OK) {
        fprintf(stderr, "emit_one: %s\n", choreo_last_error());
        goto done;
    }
    if (argc > 1) {
        fprintf(stderr, "emit_one: unknown argument %s: give choreo settings such as "
                        "--db order.db --nats-url nats://127.0.0.1:4222\n", argv[1]);
        goto done;
    }
    if (choreo_service_create(&svc, cfg) != CHOREO_OK || choreo_service_start(svc) != CHOREO_OK) {
        fprintf(stderr, "emit_one: %s\n", choreo_last_error());
        goto done;
    }
    if (emit_order_created(svc, &data, id, saga) != CHOREO_OK)
        goto done;
    if (!wait_published(svc)) {
        fprintf(stderr, "emit_one: OrderCreated %s was committed but not published within "
                        "%d ms: check that nats-server runs with JetStream (-js)\n",
                id, PUBLISH_WAIT_MS);
        goto done;
    }
    printf("emit_one: published OrderCreated %s in saga %s\n", id, saga);
    rc = 0;

done:
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
    choreo_mp_writer_free(&data);
    return rc;
}
