/* A mutex-and-condvar ring buffer. Its bound is what gives backpressure: when
 * the dispatcher falls behind, fetch threads stop pulling from JetStream and
 * messages wait on the server, not in this process's memory. */
#include "queue.h"

#include <stdlib.h>

#include "clock.h"
#include "status.h"

choreo_status choreo__queue_init(choreo_queue *q, int cap)
{
    q->items = calloc((size_t)cap, sizeof *q->items);
    if (!q->items)
        return choreo__fail(CHOREO_ENOMEM, "out of memory creating the dispatch queue");
    q->cap = cap;
    q->head = q->count = 0;
    pthread_mutex_init(&q->lock, NULL);
    choreo__cond_init(&q->not_empty);
    choreo__cond_init(&q->not_full);
    return CHOREO_OK;
}

void choreo__queue_destroy(choreo_queue *q)
{
    if (!q->items)
        return;
    for (int i = 0; i < q->count; i++)
        natsMsg_Destroy(q->items[(q->head + i) % q->cap].msg);
    free(q->items);
    q->items = NULL;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}

int choreo__queue_push_many(choreo_queue *q, const choreo_item *items, int n,
                            const atomic_bool *stop)
{
    int done = 0;
    pthread_mutex_lock(&q->lock);
    while (done < n) {
        if (q->count == q->cap) {
            if (atomic_load(stop))
                break;
            pthread_cond_signal(&q->not_empty);
            struct timespec until = choreo__deadline_in_ms(50);
            pthread_cond_timedwait(&q->not_full, &q->lock, &until);
            continue;
        }
        q->items[(q->head + q->count) % q->cap] = items[done++];
        q->count++;
    }
    if (done > 0)
        pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
    return done;
}

bool choreo__queue_push(choreo_queue *q, const choreo_item *item, const atomic_bool *stop)
{
    return choreo__queue_push_many(q, item, 1, stop) == 1;
}

int choreo__queue_pop(choreo_queue *q, choreo_item *out, int max, int timeout_ms)
{
    pthread_mutex_lock(&q->lock);
    if (q->count == 0) {
        struct timespec until = choreo__deadline_in_ms(timeout_ms);
        while (q->count == 0)
            if (pthread_cond_timedwait(&q->not_empty, &q->lock, &until) != 0)
                break;
    }
    int n = q->count < max ? q->count : max;
    for (int i = 0; i < n; i++) {
        out[i] = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
    }
    q->count -= n;
    if (n > 0)
        pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
    return n;
}

int choreo__queue_space(choreo_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int n = q->cap - q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int choreo__queue_wait_space(choreo_queue *q, int want, int timeout_ms)
{
    pthread_mutex_lock(&q->lock);
    if (q->cap - q->count < want) {
        struct timespec until = choreo__deadline_in_ms(timeout_ms);
        while (q->cap - q->count < want)
            if (pthread_cond_timedwait(&q->not_full, &q->lock, &until) != 0)
                break;
    }
    int n = q->cap - q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

int choreo__queue_touch(choreo_queue *q, int64_t now_us, int64_t older_us,
                        void (*fn)(choreo_item *it, void *arg), void *arg)
{
    int touched = 0;
    pthread_mutex_lock(&q->lock);
    for (int i = 0; i < q->count; i++) {
        choreo_item *it = &q->items[(q->head + i) % q->cap];
        if (now_us - it->queued_us > older_us) {
            fn(it, arg);
            it->queued_us = now_us;
            touched++;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return touched;
}
