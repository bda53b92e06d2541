/* Transactions handed to handlers and to commands from outside. */
#ifndef CHOREO_TX_H
#define CHOREO_TX_H

#include "metrics.h"
#include "naive.h"
#include "outbox.h"
#include "service.h"
#include "trace.h"

struct choreo_tx {
    choreo_service *svc;
    choreo_store *st;
    const choreo_event *ev;  /* the event being handled, or NULL */
    int route;               /* its handler's index in svc->routes, or -1 */
    choreo_mlog *mlog;       /* notes counted at commit: the batch's, or mlog_own */
    choreo_mlog mlog_own;    /* the notes of a command transaction */
    int emitted;             /* outbox rows written, to wake the relay */
    bool command;            /* begun by choreo_service_begin */
    char reason[256];        /* set by choreo_tx_set_reason */
    char trace[CHOREO_TRACEPARENT_SIZE]; /* the trace of its emits outside a handler */
    choreo_naive_list *naive; /* delivery=naive: events held until the commit */
    choreo_naive_list naive_own; /* the list of a command transaction */
    choreo_outbox_copies *copies; /* its outbox rows, for the relay at commit */
    choreo_outbox_copies copies_own; /* the copies of a command transaction */
};

/* What emits add to a transaction besides their rows (naive events held
 * for the commit, metric notes, outbox copies for the relay, the count
 * that wakes it): marked before a savepoint, and forgotten back to the
 * mark when the savepoint is rolled back. */
typedef struct choreo_tx_mark {
    int naive, mlog, copies, emitted;
    bool copies_incomplete;
} choreo_tx_mark;

choreo_tx_mark choreo__tx_mark(const choreo_tx *tx);
void choreo__tx_undo(choreo_tx *tx, choreo_tx_mark m);

struct choreo_reply {
    uint8_t *data;
    size_t len;
    int64_t max_len; /* the server's max_payload when the handler began; 0: not known */
};

/* The headers of an outbox row ("Key: value" lines), as the relay puts
 * them on the wire; returns snprintf's length. */
int choreo__outbox_headers(char *out, size_t cap, const char *id, const char *type,
                           const char *saga, const char *source, const char *trace);

#endif
