/* The service object shared by the dispatcher, relay and transaction
 * modules. Fields are set before the threads start and only read by them,
 * unless marked. start, wait and destroy run on the thread that owns the
 * object; stop may come from any thread or a signal handler. */
#ifndef CHOREO_SERVICE_H
#define CHOREO_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "dblock.h"
#include "extras.h"
#include "holds.h"
#include "latency.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
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
    choreo_puller pull;      /* the fetch thread's subscription and requests */
    pthread_t fetcher;
    bool fetcher_started;
    struct choreo_service *svc;
    choreo_route_metrics m;
} choreo_route;

typedef struct choreo_request_route {
    char name[CHOREO_TYPE_MAX + 1];
    char subject[200];
    choreo_request_fn fn;
    void *user;
    natsSubscription *sub;
    struct choreo_service *svc;
    choreo_request_metrics m;
} choreo_request_route;

typedef struct choreo_relay choreo_relay;
struct MHD_Daemon;

struct choreo_stats_atomic {
    atomic_uint_fast64_t handled, duplicates, retried, parked, published, publish_errors,
        batches, outbox_pending;
    atomic_bool relay_active; /* this instance's relay publishes the outbox */
};

struct choreo_service {
    choreo_config *cfg;
    choreo_logger log;
    choreo_dblock *dblock;     /* held from create to destroy: one process per db */
    choreo_store *store;       /* the dispatcher's connection */
    choreo_store *cmd_store;   /* commands from outside, under cmd_lock */
    int64_t db_id;             /* the database's identity, bound into its consumers */
    pthread_mutex_t cmd_lock;
    /* The thread holding cmd_lock for an open command (0: none), so that the
     * same thread beginning again or starting the service is told at once
     * instead of waiting on itself. */
    atomic_uintptr_t cmd_owner;
    choreo_transport *tp;
    choreo_relay *relay;
    choreo_queue queue;
    choreo_route *routes;
    int nroutes;
    choreo_request_route *requests;
    int nrequests;
    struct choreo_saga_def *sagas; /* orchestrated saga definitions, a list */
    choreo_decision_route *decisions; /* held steps' decision functions */
    int ndecisions;
    pthread_t dispatcher;
    bool dispatcher_started;   /* owner thread: dispatcher must be joined */
    bool started;              /* owner thread: start succeeded, wait not yet run */
    atomic_bool stop;          /* threads end: set by stop(), and by start to undo itself */
    atomic_bool stop_requested; /* set only by stop(), any thread or signal handler */
    atomic_bool dispatcher_done;
    /* Why the service stopped itself while it ran (CHOREO_OK: it did not),
     * for choreo_service_run to return; the first reason wins. */
    atomic_int failed;
    char failed_text[1024]; /* written once, by the thread that set failed */
    atomic_int_fast64_t max_payload; /* the server's limit, 0 until connected */
    struct choreo_stats_atomic stats;
    choreo_latency relay_latency;
    choreo_metrics metrics;
    choreo_nats_watch watch;   /* the log and metrics the NATS callbacks report to */
    choreo_mlog batch_mlog;    /* dispatcher thread: the batch's notes, counted at commit */
    choreo_outbox_copies batch_copies; /* dispatcher thread: the batch's outbox rows, handed
                                        * to the relay at commit */
    struct MHD_Daemon *httpd;  /* owner thread: the metrics endpoint, NULL when off */
    char metrics_bound[300];   /* the address it listens on */
    choreo_store *sampler_store; /* the sampler thread's connection */
    pthread_t sampler;
    bool sampler_started;      /* owner thread */
    uint64_t jitter_state;     /* dispatcher thread only */
    int64_t queue_touched_us;  /* dispatcher thread only: the queue's last keep-alive */
    choreo_extras extras;      /* demonstration and testing machinery */
};

/* Stops a running service from one of its own threads, for the reason
 * why (choreo_last_error() saying what), which choreo_service_run then
 * returns. */
void choreo__service_fail(choreo_service *svc, choreo_status why);

/* Whether the calling thread has a command of svc open (cmd_owner). */
static inline bool choreo__command_open_here(choreo_service *svc)
{
    return atomic_load(&svc->cmd_owner) == (uintptr_t)pthread_self();
}

#endif
