/* The naive delivery mode: a labelled demonstration of the dual write that
 * hand-written services do (publish after commit, no outbox, no inbox), so
 * that the chaos harness can show what it loses and doubles. Never a default. */
#ifndef CHOREO_NAIVE_H
#define CHOREO_NAIVE_H

#include <nats/nats.h>

#include "choreo.h"

typedef struct choreo_naive_msg {
    char *subject;
    uint8_t *body;
    size_t len;
} choreo_naive_msg;

/* Events waiting for their transaction's commit. */
typedef struct choreo_naive_list {
    choreo_naive_msg *v;
    int n, cap;
} choreo_naive_list;

/* Keeps a copy of an encoded event until the commit. */
choreo_status choreo__naive_add(choreo_naive_list *l, const char *subject, const uint8_t *body,
                                size_t len);
/* Forgets everything added after the first n (a rolled-back handler). */
void choreo__naive_truncate(choreo_naive_list *l, int n);
/* Publishes every event in order, then empties the list. Failures are only
 * logged by the caller: that is what loses events in this mode. Returns the
 * number that failed. */
int choreo__naive_publish(choreo_naive_list *l, jsCtx *js);
void choreo__naive_free(choreo_naive_list *l);

#endif
