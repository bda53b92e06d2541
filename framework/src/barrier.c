/* The saga barrier (as in DTM): rows (saga, step, op) inserted with INSERT OR
 * IGNORE in the handler's own transaction decide whether a forward step or
 * its compensation may run. A compensation first claims its own row (a
 * repeat finds it taken), then the action's row: if it gets that one too,
 * the action never ran, so the compensation does nothing and the action,
 * should it arrive late, finds its row taken and is skipped. */
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "status.h"
#include "tx.h"

/* Inserts (saga, step, op); *inserted tells whether the row is new. */
static choreo_status claim(choreo_tx *tx, const char *saga, const char *step, const char *op,
                           bool *inserted)
{
    choreo_q *s = choreo__store_stmt(tx->st, STMT_BARRIER_INSERT,
        "INSERT INTO choreo_barrier(saga, step, op, created_at) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT DO NOTHING");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, saga, -1);
    choreo__q_bind_text(s, 2, step, -1);
    choreo__q_bind_text(s, 3, op, -1);
    choreo__q_bind_int64(s, 4, choreo__now_ms());
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_DONE)
        return choreo__store_error(tx->st, rc, "writing a barrier row");
    *inserted = choreo__store_changes(tx->st) == 1;
    return CHOREO_OK;
}

/* Whether (saga, step, op) is taken. */
static choreo_status taken(choreo_tx *tx, const char *saga, const char *step, const char *op,
                           bool *out)
{
    choreo_q *s = choreo__store_stmt(tx->st, STMT_BARRIER_HAS,
        "SELECT 1 FROM choreo_barrier WHERE saga = ?1 AND step = ?2 AND op = ?3");
    if (!s)
        return CHOREO_ESTORE;
    choreo__q_bind_text(s, 1, saga, -1);
    choreo__q_bind_text(s, 2, step, -1);
    choreo__q_bind_text(s, 3, op, -1);
    int rc = choreo__q_step(s);
    choreo__q_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return choreo__store_error(tx->st, rc, "reading a barrier row");
    *out = rc == SQLITE_ROW;
    return CHOREO_OK;
}

/* Notes what the barrier decided, for the metrics of the handler's
 * consumer (commands have none). */
static void note(choreo_tx *tx, enum choreo_mlog_kind kind)
{
    if (tx->route >= 0 && tx->mlog)
        choreo__mlog_add(tx->mlog, kind, tx->route, 0, 0);
}

choreo_status choreo_tx_barrier(choreo_tx *tx, const char *saga, const char *step,
                                choreo_barrier_op op, bool *run)
{
    if (!tx || !step || !run)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_barrier: tx, step and run must not be NULL");
    if (!saga)
        saga = tx->ev ? tx->ev->saga : NULL;
    if (!saga || !choreo__saga_valid(saga, strlen(saga)))
        return choreo__fail(CHOREO_EINVAL,
                            "choreo_tx_barrier: a valid saga id is needed (outside a handler, "
                            "pass it explicitly)");
    size_t n = strlen(step);
    if (n == 0 || n > 64)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_barrier: step must be 1 to 64 characters");
    bool inserted;
    choreo_status s;
    if (op == CHOREO_BARRIER_ACTION) {
        s = claim(tx, saga, step, "action", &inserted);
        bool late = false;
        if (s == CHOREO_OK && !inserted)
            s = taken(tx, saga, step, "compensation", &late);
        if (s != CHOREO_OK)
            return s;
        if (late)
            note(tx, ML_LATE_SKIP);
        *run = inserted;
        return CHOREO_OK;
    }
    if (op != CHOREO_BARRIER_COMPENSATION)
        return choreo__fail(CHOREO_EINVAL, "choreo_tx_barrier: unknown op %d", (int)op);
    /* The handler is a compensation: its parked messages need a person. */
    if (tx->route >= 0)
        atomic_store_explicit(&tx->svc->routes[tx->route].m.compensation, true,
                              memory_order_relaxed);
    s = claim(tx, saga, step, "compensation", &inserted);
    if (s != CHOREO_OK)
        return s;
    if (!inserted) { /* a repeated compensation */
        *run = false;
        return CHOREO_OK;
    }
    bool action_was_free;
    s = claim(tx, saga, step, "action", &action_was_free);
    if (s != CHOREO_OK)
        return s;
    *run = !action_was_free; /* free: the action never ran (null compensation) */
    note(tx, *run ? ML_COMP_RUN : ML_COMP_NULL);
    return CHOREO_OK;
}
