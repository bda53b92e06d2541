/* Naive delivery: events are kept in memory and published right after the
 * commit. A crash between the commit and the publish loses them, and with
 * no inbox a redelivered event is applied again: exactly the failures the
 * outbox and the inbox exist to prevent, shown side by side by tools/chaos. */
#include "naive.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

choreo_status choreo__naive_add(choreo_naive_list *l, const char *subject, const uint8_t *body,
                                size_t len)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        choreo_naive_msg *v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v)
            return choreo__fail(CHOREO_ENOMEM, "out of memory keeping an event");
        l->v = v;
        l->cap = cap;
    }
    choreo_naive_msg *m = &l->v[l->n];
    m->subject = strdup(subject);
    m->body = malloc(len ? len : 1);
    if (!m->subject || !m->body) {
        free(m->subject);
        free(m->body);
        return choreo__fail(CHOREO_ENOMEM, "out of memory keeping an event");
    }
    memcpy(m->body, body, len);
    m->len = len;
    l->n++;
    return CHOREO_OK;
}

void choreo__naive_truncate(choreo_naive_list *l, int n)
{
    for (int i = n; i < l->n; i++) {
        free(l->v[i].subject);
        free(l->v[i].body);
    }
    if (n < l->n)
        l->n = n;
}

int choreo__naive_publish(choreo_naive_list *l, jsCtx *js)
{
    int failed = 0;
    for (int i = 0; i < l->n; i++) {
        jsPubAck *pa = NULL;
        if (js_Publish(&pa, js, l->v[i].subject, l->v[i].body, (int)l->v[i].len, NULL, NULL) !=
            NATS_OK)
            failed++;
        jsPubAck_Destroy(pa);
    }
    choreo__naive_truncate(l, 0);
    return failed;
}

void choreo__naive_free(choreo_naive_list *l)
{
    choreo__naive_truncate(l, 0);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}
