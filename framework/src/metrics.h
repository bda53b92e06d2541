/* Counters, gauges and histograms of a service, kept in atomics so that the
 * dispatcher, the relay and command threads record without locks, and
 * rendered in the Prometheus text format by the metrics endpoint's thread.
 *
 * What a transaction does (events emitted, compensations, saga ends) is
 * noted in a choreo_mlog while it runs and counted only when it commits, so
 * that a counter never runs ahead of the database. */
#ifndef CHOREO_METRICS_H
#define CHOREO_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"

/* Histogram buckets: times in microseconds, or plain counts. */
#define CHOREO_HIST_BOUNDS 14

typedef enum choreo_hist_kind { HIST_SECONDS, HIST_COUNT } choreo_hist_kind;

typedef struct choreo_hist {
    atomic_uint_fast64_t bucket[CHOREO_HIST_BOUNDS + 1]; /* not cumulative; last: +Inf */
    atomic_uint_fast64_t sum;                           /* microseconds, or the count */
} choreo_hist;

/* The upper bounds of a kind's buckets (microseconds for HIST_SECONDS). */
const int64_t *choreo__hist_bounds(choreo_hist_kind kind);

/* Records one value: microseconds for HIST_SECONDS. Any thread. */
void choreo__hist_observe(choreo_hist *h, choreo_hist_kind kind, int64_t v);

/* Outcomes of a delivery to an event handler, in label order. */
enum choreo_outcome { OUT_DONE, OUT_RETRY, OUT_REJECT, OUT_DUPLICATE, OUT_PARKED, OUT_N };

/* Per handler (route). The lag gauges are the sampler's, the rest the
 * dispatcher's. */
typedef struct choreo_route_metrics {
    atomic_uint_fast64_t outcome[OUT_N];
    choreo_hist handler;
    choreo_hist delivery; /* first deliveries: stored in the stream to taken up */
    atomic_uint_fast64_t comp_run, comp_null, late_skipped, comp_parked;
    atomic_bool compensation; /* the handler called the barrier as a compensation */
    atomic_bool lag_known;
    atomic_uint_fast64_t pending, ack_pending, redelivered;
} choreo_route_metrics;

enum choreo_req_outcome { REQ_DONE, REQ_REJECT, REQ_RETRY, REQ_N };

typedef struct choreo_request_metrics {
    atomic_uint_fast64_t outcome[REQ_N];
    choreo_hist duration;
} choreo_request_metrics;

/* Event types seen by emits, publishes and the relay's set-asides; the
 * last slot takes every type past the table's size. Slots are filled under
 * lock and read without it: a slot below n is complete. */
#define CHOREO_METRIC_TYPES 128

struct choreo_type_slot {
    char name[CHOREO_TYPE_MAX + 1];
    atomic_uint_fast64_t emitted, published, set_aside;
};

/* Saga ends by (outcome, reason); the last slot takes the rest. */
#define CHOREO_METRIC_SAGAS 64
#define CHOREO_SAGA_REASON_MAX 32

struct choreo_saga_slot {
    int outcome;
    char reason[CHOREO_SAGA_REASON_MAX + 1];
    atomic_uint_fast64_t count;
};

/* A parked count of the dead-letter table, as the sampler last read it. */
struct choreo_parked_row {
    char consumer[128];
    char type[CHOREO_TYPE_MAX + 1];
    int64_t count;
};

typedef struct choreo_metrics {
    struct choreo_type_slot types[CHOREO_METRIC_TYPES];
    atomic_int ntypes;
    struct choreo_saga_slot sagas[CHOREO_METRIC_SAGAS];
    atomic_int nsagas;
    pthread_mutex_t slots_lock; /* adding a type or saga slot */
    choreo_hist saga_duration[CHOREO_SAGA_TIMED_OUT + 1];
    choreo_hist commit, batch, relay;
    atomic_bool nats_up;   /* connected, and not closed since */
    atomic_int nats_down;  /* connections lost and not yet back */
    atomic_uint_fast64_t reconnects;
    /* JetStream objects found gone from the server while the service ran
     * and made again: [0] the stream, [1] a durable consumer. */
    atomic_uint_fast64_t remade[2];
    /* rows published: [0] from copies, [1] read, [2] sent by the committing
     * thread through the relay's window */
    atomic_uint_fast64_t relay_rows[3];
    /* When the dispatcher took up the work it is on (monotonic µs; 0 while
     * it waits for work). */
    atomic_int_fast64_t busy_since_us;
    /* The sampler's readings. */
    atomic_bool outbox_known;
    atomic_int_fast64_t outbox_due, outbox_delayed, outbox_oldest_us;
    pthread_mutex_t parked_lock;   /* parked and held */
    struct choreo_parked_row *parked;
    int nparked;
    struct choreo_parked_row *held; /* undecided holds by kind (in type) */
    int nheld;
    struct choreo_parked_row *running; /* saga instances not ended: definition
                                        * (in consumer) and phase (in type) */
    int nrunning;
} choreo_metrics;

void choreo__metrics_init(choreo_metrics *m);
void choreo__metrics_free(choreo_metrics *m);

/* The slot of a type, adding it when new; never fails (the last slot
 * takes the overflow). Any thread. */
int choreo__metrics_type(choreo_metrics *m, const char *type);

/* The slot of a saga end; the reason is checked by the caller. */
int choreo__metrics_saga(choreo_metrics *m, choreo_saga_outcome outcome, const char *reason);

/* What a transaction did, counted at its commit. */
enum choreo_mlog_kind {
    ML_EMIT,        /* slot: the event's type slot */
    ML_HANDLED,     /* route, slot: its enum choreo_outcome */
    ML_REQUEST,     /* route: the request's index, slot: its enum choreo_req_outcome */
    ML_COMP_RUN,    /* route */
    ML_COMP_NULL,   /* route */
    ML_LATE_SKIP,   /* route */
    ML_COMP_PARKED, /* route */
    ML_SAGA,        /* slot: the saga slot; value: duration in microseconds or -1 */
    ML_DECISION,    /* route: the decision function's index, slot: 1 approved, 0 rejected */
};

struct choreo_mlog_entry {
    uint8_t kind;
    int16_t route;
    int32_t slot;
    int64_t value;
};

typedef struct choreo_mlog {
    struct choreo_mlog_entry *e;
    int n, cap;
} choreo_mlog;

/* Notes one entry; on allocation failure the entry is not counted. */
void choreo__mlog_add(choreo_mlog *log, enum choreo_mlog_kind kind, int route, int slot,
                      int64_t value);
/* Forgets the entries from mark on (a rolled-back handler). */
void choreo__mlog_truncate(choreo_mlog *log, int mark);
void choreo__mlog_free(choreo_mlog *log);

#endif
