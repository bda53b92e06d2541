/* The metric store: atomics, slot tables and the after-commit log. */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds: 0.5 ms to 10 s, and 1 to 1024 messages. */
static const int64_t seconds_us[CHOREO_HIST_BOUNDS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000,
};
static const int64_t counts[CHOREO_HIST_BOUNDS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192,
};

const int64_t *choreo__hist_bounds(choreo_hist_kind kind)
{
    return kind == HIST_SECONDS ? seconds_us : counts;
}

void choreo__hist_observe(choreo_hist *h, choreo_hist_kind kind, int64_t v)
{
    const int64_t *b = choreo__hist_bounds(kind);
    if (v < 0)
        v = 0;
    int i = 0;
    while (i < CHOREO_HIST_BOUNDS && v > b[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (uint64_t)v, memory_order_relaxed);
}

void choreo__metrics_init(choreo_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->slots_lock, NULL);
    pthread_mutex_init(&m->parked_lock, NULL);
}

void choreo__metrics_free(choreo_metrics *m)
{
    pthread_mutex_destroy(&m->slots_lock);
    pthread_mutex_destroy(&m->parked_lock);
    free(m->parked);
    free(m->held);
    free(m->running);
    m->parked = m->held = m->running = NULL;
}

int choreo__metrics_type(choreo_metrics *m, const char *type)
{
    int n = atomic_load_explicit(&m->ntypes, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(m->types[i].name, type) == 0)
            return i;
    pthread_mutex_lock(&m->slots_lock);
    n = atomic_load_explicit(&m->ntypes, memory_order_relaxed);
    int found = -1;
    for (int i = 0; i < n && found < 0; i++)
        if (strcmp(m->types[i].name, type) == 0)
            found = i;
    if (found < 0) {
        found = n < CHOREO_METRIC_TYPES - 1 ? n : CHOREO_METRIC_TYPES - 1;
        if (found == n) {
            /* The overflow slot is named for what it holds. */
            snprintf(m->types[n].name, sizeof m->types[n].name, "%s",
                     n == CHOREO_METRIC_TYPES - 1 ? "_other" : type);
            atomic_store_explicit(&m->ntypes, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&m->slots_lock);
    return found;
}

int choreo__metrics_saga(choreo_metrics *m, choreo_saga_outcome outcome, const char *reason)
{
    int n = atomic_load_explicit(&m->nsagas, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (m->sagas[i].outcome == (int)outcome && strcmp(m->sagas[i].reason, reason) == 0)
            return i;
    pthread_mutex_lock(&m->slots_lock);
    n = atomic_load_explicit(&m->nsagas, memory_order_relaxed);
    int found = -1;
    for (int i = 0; i < n && found < 0; i++)
        if (m->sagas[i].outcome == (int)outcome && strcmp(m->sagas[i].reason, reason) == 0)
            found = i;
    if (found < 0) {
        /* Past the table: outcome kept, reason "other". */
        bool full = n >= CHOREO_METRIC_SAGAS - (CHOREO_SAGA_TIMED_OUT + 1);
        for (int i = 0; i < n && found < 0 && full; i++)
            if (m->sagas[i].outcome == (int)outcome && strcmp(m->sagas[i].reason, "other") == 0)
                found = i;
        if (found < 0) {
            m->sagas[n].outcome = (int)outcome;
            snprintf(m->sagas[n].reason, sizeof m->sagas[n].reason, "%s",
                     full ? "other" : reason);
            found = n;
            atomic_store_explicit(&m->nsagas, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&m->slots_lock);
    return found;
}

void choreo__mlog_add(choreo_mlog *log, enum choreo_mlog_kind kind, int route, int slot,
                      int64_t value)
{
    if (log->n == log->cap) {
        int cap = log->cap ? log->cap * 2 : 64;
        struct choreo_mlog_entry *e = realloc(log->e, sizeof *e * (size_t)cap);
        if (!e)
            return;
        log->e = e;
        log->cap = cap;
    }
    log->e[log->n++] = (struct choreo_mlog_entry){ (uint8_t)kind, (int16_t)route, slot, value };
}

void choreo__mlog_truncate(choreo_mlog *log, int mark)
{
    if (mark < log->n)
        log->n = mark < 0 ? 0 : mark;
}

void choreo__mlog_free(choreo_mlog *log)
{
    free(log->e);
    *log = (choreo_mlog){ 0 };
}
