/* The shop's invariant checker. It reads the four services' databases
 * read-only (while they run or after) and says whether every order had the
 * effect its final state promises, naming each order and amount that does
 * not add up:
 *   - a COMPLETED order moved its stock (SOLD), its money (CAPTURED) and
 *     its points (AWARDED) exactly once, with the order's quantities;
 *   - a CANCELLED order left no net effect (nothing SOLD, CAPTURED or
 *     AWARDED; what was reserved, frozen or awarded was given back), and
 *     the service named by its reason did reject it;
 *   - stock and money are conserved per product and per account
 *     (available + reserved + sold = restocked, balance + frozen + spent =
 *     deposited), points equal the awards kept, and the running totals
 *     agree with the per-order rows;
 *   - no service holds a row for an order the order service does not know;
 *   - a payment held for review (a hold of the payment database) went the
 *     way its decision says: its order is COMPLETED only after an
 *     approval, and never cancelled as payment_rejected after one;
 *   - with require_final: no order is PENDING, nothing is left reserved,
 *     frozen or held, no review is left undecided (its saga's end ends
 *     it), and every decision was carried out by the payment service.
 * Used by the demo, the chaos harness and the tests. */
#ifndef SHOP_CHECK_H
#define SHOP_CHECK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <choreo.h>

#include "shop_domain.h"

typedef struct shop_check_paths {
    const char *order, *inventory, *payment, *points; /* database files */
} shop_check_paths;

/* Violations kept as text (all are counted). */
#define SHOP_CHECK_KEEP 50

typedef struct shop_check_report {
    bool ok;                  /* no violation */
    bool require_final;       /* as passed to shop_check_run */
    int64_t orders, pending, completed, cancelled;
    int64_t by_reason[SHOP_REASON_COUNT]; /* cancelled orders by reason */
    /* Compensations that gave something back. */
    int64_t stock_released, payments_released, points_revoked;
    int64_t compensations;    /* the sum of the three */
    int64_t events;           /* emitted by the four services: their outbox rows */
    /* Totals. */
    int64_t stock_restocked, stock_available, stock_reserved, stock_sold;
    int64_t money_deposited, money_balance, money_frozen, money_spent;
    int64_t points_held;
    /* Payments held for review (the payment database's choreo_holds):
     * every hold made, those approved, rejected, or ended undecided with
     * their saga (expired), and those still waiting for a decision. */
    int64_t holds, holds_approved, holds_rejected, holds_expired, holds_waiting;
    /* Saga timing from the order database (unix us): first order placed,
     * last order finished, and latency quantiles of finished sagas, apart
     * from those the deadline ended (those take the deadline by design).
     * Sagas of customers held for review wait for a person's decision:
     * they have quantiles of their own (held_*), and the others' are the
     * straight-through latency the framework is answerable for. */
    int64_t first_created_us, last_finished_us, last_self_finished_us;
    int64_t p50_us, p90_us, p99_us, max_us;
    int64_t held_sagas, held_p50_us, held_p99_us, held_max_us;
    /* Violations: count, and the first SHOP_CHECK_KEEP as sentences. */
    size_t nviolations;
    size_t nkept;
    char *violations[SHOP_CHECK_KEEP];
} shop_check_report;

/* Runs every check. Fails (with a sentence in err) only when a database
 * cannot be read; a broken invariant is a success of this call with
 * out->ok false. Free out with shop_check_report_free. */
CHOREO_WUR choreo_status shop_check_run(const shop_check_paths *paths, bool require_final,
                                        shop_check_report *out, char *err, size_t errlen);

/* For a system that has just gone quiet: the last confirmations and
 * compensations of final sagas may still be on their way, so runs
 * shop_check_run every 100 ms until the invariants hold, timeout_ms pass,
 * or *cancel (when not NULL) becomes non-zero. out holds the last report
 * (free it with shop_check_report_free). */
CHOREO_WUR choreo_status shop_check_wait(const shop_check_paths *paths, bool require_final,
                                         int timeout_ms, const atomic_int *cancel,
                                         shop_check_report *out, char *err, size_t errlen);

void shop_check_report_free(shop_check_report *r);

/* Prints the report for people: outcomes, compensations, totals and every
 * kept violation. */
void shop_check_print(const shop_check_report *r, FILE *f);

#endif
