/* The service object shared by the dispatcher, relay and transaction
 * modules. Fields are set before the threads start unless marked. */
#ifndef CHOREO_SERVICE_H
#define CHOREO_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "crashpoint.h"
#include "latency.h"
#include "log.h"
#include "naive.h"
#include "queue.h"
#include "store.h"
#include "transport.h"

typedef struct choreo_route {
    char type[CHOREO_TYPE_MAX + 1];
    char consumer[128];      /* durable name and inbox key: <service>_<type> */
    char filter[160];        /* <prefix>.<type>.* */
    choreo_handler_fn fn;
    void *user;
    uint32_t min_version, max_version; /* accepted schema versions */
    natsSubscription *sub;
    pthread_t fetcher;
    bool fetcher_started;
    struct choreo_service *svc;
} choreo_route;

typedef struct choreo_request_route {
    char name[CHOREO_TYPE_MAX + 1];
    char subject[200];
    choreo_request_fn fn;
    void *user;
    natsSubscription *sub;
    struct choreo_service *svc;
} choreo_request_route;

typedef struct choreo_relay choreo_relay;

struct choreo_stats_atomic {
    atomic_uint_fast64_t handled, duplicates, retried, parked, published, publish_errors,
        batches, outbox_pending;
};

struct choreo_service {
    choreo_config *cfg;
    choreo_logger log;
    choreo_store *store;       /* the dispatcher's connection */
    choreo_store *cmd_store;   /* commands from outside, under cmd_lock */
    pthread_mutex_t cmd_lock;
    choreo_transport *tp;
    choreo_relay *relay;
    choreo_queue queue;
    choreo_route *routes;
    int nroutes;
    choreo_request_route *requests;
    int nrequests;
    pthread_t dispatcher;
    bool started;              /* threads running (until wait joins them) */
    atomic_bool stop;          /* set by stop(), any thread or signal handler */
    atomic_bool dispatcher_done;
    struct choreo_stats_atomic stats;
    choreo_latency relay_latency;
    choreo_crashpoints crash;
    uint64_t jitter_state;     /* dispatcher thread only */
    bool naive;                /* delivery=naive: see naive.h */
    bool audit;                /* audit=on: see audit.h */
    choreo_naive_list naive_batch; /* dispatcher thread only */
};

#endif
