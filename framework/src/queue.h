/* The bounded queue between fetch threads (and request callbacks) and the
 * dispatcher thread. */
#ifndef CHOREO_QUEUE_H
#define CHOREO_QUEUE_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "choreo.h"

typedef enum choreo_item_kind { ITEM_EVENT, ITEM_REQUEST } choreo_item_kind;

typedef struct choreo_item {
    natsMsg *msg;          /* owned by the queue until popped */
    choreo_item_kind kind;
    int route;             /* index of the handler or request handler */
    int64_t queued_us;     /* monotonic: when queued, or last told in progress */
} choreo_item;

typedef struct choreo_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    choreo_item *items;
    int cap, head, count;
} choreo_queue;

choreo_status choreo__queue_init(choreo_queue *q, int cap);
void choreo__queue_destroy(choreo_queue *q); /* destroys messages still queued */

/* Adds an item, waiting while the queue is full. Gives up (returning false,
 * item not taken) once *stop becomes true. */
bool choreo__queue_push(choreo_queue *q, const choreo_item *item, const atomic_bool *stop);

/* Adds n items in order under one lock and one wake-up, waiting for room
 * as needed. Returns how many were taken (all n unless *stop became true);
 * the caller keeps the rest. */
int choreo__queue_push_many(choreo_queue *q, const choreo_item *items, int n,
                            const atomic_bool *stop);

/* Takes up to max items that are already queued, waiting at most
 * timeout_ms for the first. Returns how many were taken. */
int choreo__queue_pop(choreo_queue *q, choreo_item *out, int max, int timeout_ms);

/* Calls fn(item, arg), under the queue's lock, on every queued item that
 * has waited more than older_us since its queued_us, and sets that to
 * now_us; returns how many. fn must not block long nor touch the queue. */
int choreo__queue_touch(choreo_queue *q, int64_t now_us, int64_t older_us,
                        void (*fn)(choreo_item *it, void *arg), void *arg);

/* Free slots right now (a hint for fetch sizes). */
int choreo__queue_space(choreo_queue *q);

/* Waits at most timeout_ms until want slots are free; returns the free
 * slots then. */
int choreo__queue_wait_space(choreo_queue *q, int want, int timeout_ms);

#endif
