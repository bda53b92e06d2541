/* The one seam between the normal delivery path and the demonstration and
 * testing machinery: naive delivery (delivery=naive), the audit trail
 * (audit=on), crash points (CHOREO_CRASHPOINTS) and injected faults
 * (CHOREO_FAULTS). The dispatcher, transactions and relay call the hooks
 * below at fixed places; with everything off (the default) each hook is a
 * test of one flag, and the normal path reads as if none of this existed. */
#ifndef CHOREO_EXTRAS_H
#define CHOREO_EXTRAS_H

#include <nats/nats.h>
#include <stdatomic.h>

#include "config.h"
#include "faults.h"
#include "log.h"
#include "naive.h"
#include "store.h"

typedef struct choreo_extras {
    bool naive;                 /* delivery=naive: no inbox, publish after commit */
    bool audit;                 /* audit=on: emitted and applied rows */
    choreo_crashpoints crash;
    choreo_faults faults;
    choreo_naive_list batch;    /* naive: the dispatcher batch's events (dispatcher only) */
    _Atomic(jsCtx *) js;        /* set while started: where naive events go, and
                                 * whether injected faults are armed */
} choreo_extras;

/* Reads the settings and environment; logs a warning for each thing on. */
choreo_status choreo__extras_init(choreo_extras *x, const choreo_config *cfg,
                                  const choreo_logger *log);
void choreo__extras_free(choreo_extras *x);

/* Crash point: may not return. Any thread. */
void choreo__extras_crash(choreo_extras *x, choreo_crashpoint_id id);

/* True when deliveries skip the inbox (naive mode). */
bool choreo__extras_skip_inbox(const choreo_extras *x);

/* Just before a handler runs: may sleep (slow handler), and returns true
 * when the handler must be replaced by a RETRY (retry_until_last). */
bool choreo__extras_before_handler(choreo_extras *x, const char *event_id, int64_t attempt,
                                   int64_t max_deliver);

/* After a handler returned DONE, inside its savepoint: the audit row. */
choreo_status choreo__extras_applied(choreo_extras *x, choreo_store *st, const char *consumer,
                                     const choreo_event *ev);

/* An emit: in naive mode an event due now is held in *naive for after the
 * commit (*taken true) instead of the outbox; with audit on, the emitted
 * row is written. */
choreo_status choreo__extras_emit(choreo_extras *x, choreo_naive_list *naive, choreo_store *st,
                                  const char *event_id, const char *type, const char *saga,
                                  const char *subject, const uint8_t *body, size_t len,
                                  int64_t ts_ms, bool due_now, bool *taken);

/* Just before a write that commits: CHOREO_ESTORE, with the error text of a
 * full disk, when an injected disk_full episode is under way or starts now;
 * CHOREO_OK otherwise. */
choreo_status choreo__extras_disk_full(choreo_extras *x);

/* Just before an event's inbox mark: CHOREO_ESTORE when the injected fault
 * mark_fail fires (the mark fails, the batch goes on); CHOREO_OK otherwise. */
choreo_status choreo__extras_mark_fail(choreo_extras *x);

/* Commits st's open transaction, or rolls it back and fails as on a full
 * disk when choreo__extras_disk_full says so. */
choreo_status choreo__extras_commit(choreo_extras *x, choreo_store *st);

/* After a commit: naive mode publishes the held events through x->js
 * (returns how many failed, which are lost: that is the demonstration). */
int choreo__extras_committed(choreo_extras *x, choreo_naive_list *naive);

/* A rolled-back handler or batch forgets its held events after mark. */
void choreo__extras_rolled_back(choreo_naive_list *naive, int mark);

#endif
