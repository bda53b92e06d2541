/* The demo's reviewer: a thread that plays the person who reviews the
 * payments held for review (the payment service's holds of kind
 * payment-review). Every interval it lists the undecided holds with the
 * admin API, straight on the payment database, and decides each new one:
 * by its id and the seed, a third approved, a third rejected, and a third
 * left alone until its saga's deadline ends it. A decision needs no NATS
 * and no running service (choreo_admin_hold_decide writes it and its
 * event into the database), so the reviewer keeps working while the
 * payment service is killed and restarted. A person does the same with
 * choreoctl --db DIR/payment.db review list|approve|reject. */
#ifndef SHOP_REVIEW_H
#define SHOP_REVIEW_H

#include <stdint.h>

#include <choreo.h>

typedef enum shop_review_choice {
    SHOP_REVIEW_APPROVE = 0,
    SHOP_REVIEW_REJECT = 1,
    SHOP_REVIEW_LEAVE = 2, /* no decision: the saga's deadline ends the hold */
} shop_review_choice;

/* What the reviewer does with hold id: (id + seed) mod 3 picks approve,
 * reject or leave, so that of any three holds in a row each goes one way,
 * and with seed 1 the first hold is left to its deadline. */
shop_review_choice shop_review_choose(int64_t id, uint64_t seed);

typedef struct shop_reviewer_opts {
    const char *db;      /* the payment service's database file; it must exist */
    uint64_t seed;       /* as for shop_review_choose */
    const char *by;      /* who decides, 1 to 64 characters [demo-reviewer] */
    int interval_ms;     /* between two looks at the holds [50] */
} shop_reviewer_opts;

/* What the reviewer did, for the reports; the outcomes themselves are in
 * the payment database's choreo_holds (shop_check_report counts them). */
typedef struct shop_review_stats {
    long approved, rejected;  /* decisions given */
    long left;                /* holds left to their deadline */
    long refused;             /* decisions refused: the hold had ended first */
    long failures;            /* looks or decisions that failed and were tried again
                                 (the database busy, say) */
} shop_review_stats;

typedef struct shop_reviewer shop_reviewer;

/* Opens the payment database (choreo_admin_open; o is copied) and starts
 * the reviewer's thread. *out is written only on success; on failure
 * choreo_last_error says why. */
CHOREO_WUR choreo_status shop_reviewer_start(shop_reviewer **out, const shop_reviewer_opts *o);

/* Stops the thread after its current look, writes what it did into stats
 * (may be NULL), closes the database and frees r. NULL-safe. */
void shop_reviewer_stop(shop_reviewer *r, shop_review_stats *stats);

#endif
