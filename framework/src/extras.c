/* The hooks of extras.h: each returns at once unless its machinery is on,
 * so that turning a demonstration or a fault on never changes the order in
 * which the normal path does its work. */
#include "extras.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "clock.h"
#include "status.h"

choreo_status choreo__extras_init(choreo_extras *x, const choreo_config *cfg,
                                  const choreo_logger *log)
{
    memset(x, 0, sizeof *x);
    x->naive = strcmp(cfg->delivery, "naive") == 0;
    x->audit = strcmp(cfg->audit, "on") == 0;
    if (x->naive)
        CHOREO_LOG(log, CHOREO_LOG_WARN,
                   "delivery=naive: events are published after commit without outbox or inbox; "
                   "they can be lost or applied twice (demonstration only)", NULL);
    choreo_status s = choreo__crashpoints_load(&x->crash);
    if (s == CHOREO_OK)
        s = choreo__faults_load(&x->faults);
    if (s != CHOREO_OK)
        return s;
    if (x->crash.any)
        CHOREO_LOG(log, CHOREO_LOG_WARN, "crash points are on (testing only)", "spec=\"%s\"",
                   CHOREO_SAFE(getenv("CHOREO_CRASHPOINTS")));
    if (x->faults.any)
        CHOREO_LOG(log, CHOREO_LOG_WARN, "injected faults are on (testing only)", "spec=\"%s\"",
                   CHOREO_SAFE(getenv("CHOREO_FAULTS")));
    return CHOREO_OK;
}

void choreo__extras_free(choreo_extras *x)
{
    choreo__naive_free(&x->batch);
}

void choreo__extras_crash(choreo_extras *x, choreo_crashpoint_id id)
{
    if (x->crash.any)
        choreo__crashpoint(&x->crash, id);
}

bool choreo__extras_skip_inbox(const choreo_extras *x)
{
    return x->naive;
}

bool choreo__extras_before_handler(choreo_extras *x, const char *event_id, int64_t attempt,
                                   int64_t max_deliver)
{
    if (!x->faults.any)
        return false;
    choreo__fault_slow_handler(&x->faults);
    return choreo__fault_retry_until_last(&x->faults, event_id, attempt, max_deliver);
}

choreo_status choreo__extras_applied(choreo_extras *x, choreo_store *st, const char *consumer,
                                     const choreo_event *ev)
{
    if (!x->audit)
        return CHOREO_OK;
    return choreo__audit_applied(st, consumer, ev->type, ev->id, ev->saga, choreo__now_ms());
}

choreo_status choreo__extras_emit(choreo_extras *x, choreo_naive_list *naive, choreo_store *st,
                                  const char *event_id, const char *type, const char *saga,
                                  const char *subject, const uint8_t *body, size_t len,
                                  int64_t ts_ms, bool due_now, bool *taken)
{
    *taken = false;
    choreo_status s = CHOREO_OK;
    /* Delayed events keep using the outbox in naive mode too, so that the
     * comparison isolates the dual write and the missing inbox. */
    if (x->naive && naive && due_now) {
        s = choreo__naive_add(naive, subject, body, len);
        *taken = s == CHOREO_OK;
    }
    if (s == CHOREO_OK && x->audit)
        s = choreo__audit_emitted(st, event_id, type, saga, ts_ms);
    return s;
}

choreo_status choreo__extras_disk_full(choreo_extras *x)
{
    /* Only while the service runs: an injected fault at the service's own
     * set-up (its schema) would only stop it from starting. */
    if (!x->faults.any || !atomic_load(&x->js) || !choreo__fault_disk_full(&x->faults))
        return CHOREO_OK;
    return choreo__fail(CHOREO_ESTORE, "database or disk is full (injected fault disk_full)");
}

choreo_status choreo__extras_mark_fail(choreo_extras *x)
{
    if (!x->faults.any || !choreo__fault_mark_fail(&x->faults))
        return CHOREO_OK;
    return choreo__fail(CHOREO_ESTORE, "writing an inbox mark: permission denied (injected fault "
                        "mark_fail)");
}

choreo_status choreo__extras_commit(choreo_extras *x, choreo_store *st)
{
    choreo_status s = choreo__extras_disk_full(x);
    if (s != CHOREO_OK) {
        choreo__store_rollback(st);
        return s;
    }
    return choreo__store_commit(st);
}

int choreo__extras_committed(choreo_extras *x, choreo_naive_list *naive)
{
    if (!x->naive || !naive || naive->n == 0)
        return 0;
    jsCtx *js = atomic_load(&x->js);
    if (!js) {
        int lost = naive->n;
        choreo__naive_truncate(naive, 0);
        return lost; /* not connected: lost, as a naive service would lose them */
    }
    return choreo__naive_publish(naive, js);
}

void choreo__extras_rolled_back(choreo_naive_list *naive, int mark)
{
    if (naive)
        choreo__naive_truncate(naive, mark);
}
