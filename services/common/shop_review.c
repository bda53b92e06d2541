/* The demo's reviewer (see shop_review.h). Its thread owns the admin handle
 * and everything else in struct shop_reviewer except stop, which the
 * caller sets; the stats are read only after the thread has been joined.
 * Committed hold ids only grow (the service inserts them one writer at a
 * time), so the thread remembers the highest id it is done with instead
 * of every id. */
#include "shop_review.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shop_reviewer {
    shop_reviewer_opts o;
    char by[65];
    choreo_admin *adm;
    pthread_t thread;
    atomic_bool stop;
    int64_t done_id;     /* every hold up to this id is decided or left */
    shop_review_stats stats;
};

shop_review_choice shop_review_choose(int64_t id, uint64_t seed)
{
    return (shop_review_choice)(((uint64_t)id % 3 + seed % 3) % 3);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Decides hold h as shop_review_choose says. Returns false when the
 * decision failed in a way worth trying again (the database busy). */
static bool review(struct shop_reviewer *r, const choreo_hold_entry *h)
{
    shop_review_choice c = shop_review_choose(h->id, r->o.seed);
    if (c == SHOP_REVIEW_LEAVE) {
        r->stats.left++;
        return true;
    }
    bool approve = c == SHOP_REVIEW_APPROVE;
    char note[200];
    snprintf(note, sizeof note, "%s by the demo's reviewer: hold %lld, seed %llu",
             approve ? "approved" : "rejected", (long long)h->id,
             (unsigned long long)r->o.seed);
    choreo_status s = choreo_admin_hold_decide(r->adm, h->id, approve, note, r->by, NULL);
    if (s == CHOREO_OK || s == CHOREO_EDUPLICATE) {
        if (approve)
            r->stats.approved++;
        else
            r->stats.rejected++;
        return true;
    }
    if (s == CHOREO_ESTATE || s == CHOREO_ENOTFOUND) {
        /* It ended (its saga was compensated, or its deadline passed)
         * between the look and the decision: nothing left to decide. */
        r->stats.refused++;
        return true;
    }
    r->stats.failures++;
    return false;
}

/* One look: every undecided hold above done_id, oldest first. A decision
 * that failed stops the look, to be tried again at the next one. */
static void look(struct shop_reviewer *r)
{
    choreo_hold_entry *list = NULL;
    size_t n = 0;
    if (choreo_admin_holds(r->adm, "held", &list, &n) != CHOREO_OK) {
        r->stats.failures++;
        return;
    }
    for (size_t i = 0; i < n && !atomic_load(&r->stop); i++) {
        if (list[i].id <= r->done_id)
            continue;
        if (!review(r, &list[i]))
            break;
        r->done_id = list[i].id;
    }
    free(list);
}

static void *main_loop(void *arg)
{
    struct shop_reviewer *r = arg;
    while (!atomic_load(&r->stop)) {
        look(r);
        for (int waited = 0; waited < r->o.interval_ms && !atomic_load(&r->stop); waited += 10)
            sleep_ms(10);
    }
    return NULL;
}

choreo_status shop_reviewer_start(shop_reviewer **out, const shop_reviewer_opts *o)
{
    if (!out || !o || !o->db)
        return CHOREO_EINVAL;
    struct shop_reviewer *r = calloc(1, sizeof *r);
    if (!r)
        return CHOREO_ENOMEM;
    r->o = *o;
    snprintf(r->by, sizeof r->by, "%s", o->by && *o->by ? o->by : "demo-reviewer");
    if (r->o.interval_ms <= 0)
        r->o.interval_ms = 50;
    atomic_init(&r->stop, false);
    choreo_config *cfg = NULL;
    choreo_status s = choreo_config_create(&cfg);
    if (s == CHOREO_OK)
        s = choreo_config_set(cfg, "db", o->db);
    if (s == CHOREO_OK)
        s = choreo_admin_open(&r->adm, cfg);
    choreo_config_destroy(cfg);
    if (s == CHOREO_OK && pthread_create(&r->thread, NULL, main_loop, r) != 0)
        s = CHOREO_ENOMEM;
    if (s != CHOREO_OK) {
        choreo_admin_close(r->adm);
        free(r);
        return s;
    }
    *out = r;
    return CHOREO_OK;
}

void shop_reviewer_stop(shop_reviewer *r, shop_review_stats *stats)
{
    if (!r)
        return;
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    if (stats)
        *stats = r->stats;
    choreo_admin_close(r->adm);
    free(r);
}
