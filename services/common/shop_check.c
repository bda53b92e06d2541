/* The invariant checker: the four databases are attached read-only to one
 * SQLite connection, so that each rule is a query; the rules themselves
 * (what each order's final state requires of the other services' rows)
 * are in C below, where each violation gets its own sentence. */
#include "shop_check.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shop_pgcopy.h"

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void violation(shop_check_report *r, const char *fmt, ...)
{
    r->ok = false;
    if (r->nkept < SHOP_CHECK_KEEP) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        r->violations[r->nkept] = strdup(buf);
        if (r->violations[r->nkept])
            r->nkept++;
    }
    r->nviolations++;
}

/* file: URI of a path opened read-only; %, ? and # are escaped. */
static void ro_uri(char *out, size_t cap, const char *path)
{
    size_t n = (size_t)snprintf(out, cap, "file:");
    for (const char *p = path; *p && n + 4 < cap; p++) {
        if (*p == '%' || *p == '?' || *p == '#')
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            out[n++] = *p;
    }
    snprintf(out + n, cap - n, "?mode=ro");
}

static const char *text(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? (const char *)t : "";
}

static bool is(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* What one order's final state requires of the other services' rows. */
struct order_row {
    const char *id, *state, *reason, *product, *user;
    int64_t qty, amount, points;
    const char *r_state, *r_product; /* reservation (inventory) */
    int64_t r_qty;
    const char *p_state, *p_user;    /* payment */
    int64_t p_amount;
    const char *a_state, *a_user;    /* points award */
    int64_t a_points;
};

static void check_completed(shop_check_report *r, const struct order_row *o)
{
    if (!is(o->r_state, "SOLD"))
        violation(r, "order %s is COMPLETED but its stock reservation is %s (expected SOLD)",
                  o->id, o->r_state[0] ? o->r_state : "missing");
    else if (o->r_qty != o->qty || !is(o->r_product, o->product))
        violation(r, "order %s is COMPLETED for %lld x %s but inventory sold %lld x %s", o->id,
                  (long long)o->qty, o->product, (long long)o->r_qty, o->r_product);
    if (!is(o->p_state, "CAPTURED"))
        violation(r, "order %s is COMPLETED but its payment is %s (expected CAPTURED)", o->id,
                  o->p_state[0] ? o->p_state : "missing");
    else if (o->p_amount != o->amount || !is(o->p_user, o->user))
        violation(r, "order %s is COMPLETED for %lld cents from %s but payment captured %lld "
                  "from %s", o->id, (long long)o->amount, o->user, (long long)o->p_amount,
                  o->p_user);
    if (!is(o->a_state, "AWARDED"))
        violation(r, "order %s is COMPLETED but its points are %s (expected AWARDED)", o->id,
                  o->a_state[0] ? o->a_state : "missing");
    else if (o->a_points != o->points || !is(o->a_user, o->user))
        violation(r, "order %s is COMPLETED with %lld points for %s but %lld were awarded to %s",
                  o->id, (long long)o->points, o->user, (long long)o->a_points, o->a_user);
}

static void check_cancelled(shop_check_report *r, const struct order_row *o)
{
    /* No net effect: a row either never existed, was a rejection, or was
     * given back by its compensation. */
    if (o->r_state[0] && !is(o->r_state, "REJECTED") && !is(o->r_state, "RELEASED"))
        violation(r, "order %s is CANCELLED (%s) but its stock reservation is %s (expected "
                  "none, REJECTED or RELEASED)", o->id, o->reason, o->r_state);
    if (o->p_state[0] && !is(o->p_state, "REJECTED") && !is(o->p_state, "RELEASED"))
        violation(r, "order %s is CANCELLED (%s) but its payment is %s (expected none, "
                  "REJECTED or RELEASED)", o->id, o->reason, o->p_state);
    if (o->a_state[0] && !is(o->a_state, "REJECTED") && !is(o->a_state, "REVOKED"))
        violation(r, "order %s is CANCELLED (%s) but its points are %s (expected none, "
                  "REJECTED or REVOKED)", o->id, o->reason, o->a_state);
    /* The service the reason names must have said no. */
    int reason = -1;
    for (int i = 0; i < SHOP_REASON_COUNT; i++)
        if (is(o->reason, shop_reason_name((shop_reason)i)))
            reason = i;
    if (reason < 0)
        violation(r, "order %s is CANCELLED with unknown reason \"%s\"", o->id, o->reason);
    else
        r->by_reason[reason]++;
    if (reason == SHOP_REASON_STOCK && !is(o->r_state, "REJECTED"))
        violation(r, "order %s was cancelled as stock_rejected but inventory shows %s", o->id,
                  o->r_state[0] ? o->r_state : "no rejection");
    if (reason == SHOP_REASON_PAYMENT && !is(o->p_state, "REJECTED"))
        violation(r, "order %s was cancelled as payment_rejected but payment shows %s", o->id,
                  o->p_state[0] ? o->p_state : "no rejection");
    if (reason == SHOP_REASON_POINTS && !is(o->a_state, "REJECTED"))
        violation(r, "order %s was cancelled as points_rejected but points shows %s", o->id,
                  o->a_state[0] ? o->a_state : "no rejection");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t quantile(const int64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)n);
    return v[i >= n ? n - 1 : i];
}

static const char ORDERS_SQL[] =
    "SELECT o.order_id, o.state, o.reason, o.product_id, o.user_id, o.qty, o.amount_cents, "
    "       o.points, o.created_us, o.finished_us,"
    "       r.state, r.product_id, r.qty, p.state, p.user_id, p.amount_cents,"
    "       a.state, a.user_id, a.points "
    "FROM main.orders o"
    "  LEFT JOIN inv.reservations r ON r.order_id = o.order_id"
    "  LEFT JOIN pay.payments p ON p.order_id = o.order_id"
    "  LEFT JOIN pts.awards a ON a.order_id = o.order_id";

/* A growing list of latencies; one that cannot grow drops the value. */
struct lats {
    int64_t *v;
    size_t n, cap;
};

static void lats_add(struct lats *l, int64_t us)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 1024;
        int64_t *more = realloc(l->v, cap * sizeof *more);
        if (!more)
            return;
        l->v = more;
        l->cap = cap;
    }
    l->v[l->n++] = us;
}

static int check_orders(sqlite3 *db, bool require_final, shop_check_report *r)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, ORDERS_SQL, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    struct lats straight = { 0 }, held = { 0 };
    r->first_created_us = INT64_MAX;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct order_row o = {
            .id = text(s, 0), .state = text(s, 1), .reason = text(s, 2), .product = text(s, 3),
            .user = text(s, 4), .qty = sqlite3_column_int64(s, 5),
            .amount = sqlite3_column_int64(s, 6), .points = sqlite3_column_int64(s, 7),
            .r_state = text(s, 10), .r_product = text(s, 11), .r_qty = sqlite3_column_int64(s, 12),
            .p_state = text(s, 13), .p_user = text(s, 14), .p_amount = sqlite3_column_int64(s, 15),
            .a_state = text(s, 16), .a_user = text(s, 17), .a_points = sqlite3_column_int64(s, 18),
        };
        int64_t created = sqlite3_column_int64(s, 8), finished = sqlite3_column_int64(s, 9);
        r->orders++;
        if (created < r->first_created_us)
            r->first_created_us = created;
        if (is(o.state, SHOP_PENDING)) {
            r->pending++;
            if (require_final)
                violation(r, "order %s is still PENDING", o.id);
            continue;
        }
        if (finished > r->last_finished_us)
            r->last_finished_us = finished;
        if (is(o.state, SHOP_COMPLETED)) {
            r->completed++;
            check_completed(r, &o);
        } else {
            r->cancelled++;
            check_cancelled(r, &o);
        }
        if (is(o.reason, "deadline"))
            continue;
        if (finished > r->last_self_finished_us)
            r->last_self_finished_us = finished;
        lats_add(strncmp(o.user, "review-", 7) == 0 ? &held : &straight, finished - created);
    }
    sqlite3_finalize(s);
    if (r->first_created_us == INT64_MAX)
        r->first_created_us = 0;
    if (straight.n > 1) /* none: v is NULL, which qsort must not get */
        qsort(straight.v, straight.n, sizeof *straight.v, cmp_i64);
    r->p50_us = quantile(straight.v, straight.n, 0.50);
    r->p90_us = quantile(straight.v, straight.n, 0.90);
    r->p99_us = quantile(straight.v, straight.n, 0.99);
    r->max_us = straight.n ? straight.v[straight.n - 1] : 0;
    if (held.n > 1)
        qsort(held.v, held.n, sizeof *held.v, cmp_i64);
    r->held_sagas = (int64_t)held.n;
    r->held_p50_us = quantile(held.v, held.n, 0.50);
    r->held_p99_us = quantile(held.v, held.n, 0.99);
    r->held_max_us = held.n ? held.v[held.n - 1] : 0;
    free(straight.v);
    free(held.v);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Rows in a service's table whose order the order service does not know. */
static int check_orphans(sqlite3 *db, shop_check_report *r)
{
    static const char *tables[][2] = { { "inv.reservations", "inventory reservation" },
                                       { "pay.payments", "payment" },
                                       { "pts.awards", "points award" } };
    for (int i = 0; i < 3; i++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT order_id, state FROM %s WHERE order_id NOT IN "
                 "(SELECT order_id FROM main.orders)",
                 tables[i][0]);
        sqlite3_stmt *s = NULL;
        int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
            return rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW)
            violation(r, "%s for order %s (%s) has no order in the order service",
                      tables[i][1], text(s, 0), text(s, 1));
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE)
            return rc;
    }
    return SQLITE_OK;
}

/* Stock per product: restocked = available + reserved + sold, and reserved
 * and sold agree with the reservations. */
static const char STOCK_SQL[] =
    "WITH ids AS (SELECT product_id FROM inv.products UNION SELECT product_id FROM inv.restocks)"
    " SELECT ids.product_id, COALESCE(p.available, 0), COALESCE(p.reserved, 0),"
    "  COALESCE(p.sold, 0),"
    "  (SELECT COALESCE(SUM(qty), 0) FROM inv.restocks x WHERE x.product_id = ids.product_id),"
    "  (SELECT COALESCE(SUM(qty), 0) FROM inv.reservations x"
    "     WHERE x.product_id = ids.product_id AND x.state = 'RESERVED'),"
    "  (SELECT COALESCE(SUM(qty), 0) FROM inv.reservations x"
    "     WHERE x.product_id = ids.product_id AND x.state = 'SOLD')"
    " FROM ids LEFT JOIN inv.products p ON p.product_id = ids.product_id";

static const char MONEY_SQL[] =
    "WITH ids AS (SELECT user_id FROM pay.accounts UNION SELECT user_id FROM pay.deposits)"
    " SELECT ids.user_id, COALESCE(a.balance, 0), COALESCE(a.frozen, 0), COALESCE(a.spent, 0),"
    "  (SELECT COALESCE(SUM(amount_cents), 0) FROM pay.deposits x WHERE x.user_id = ids.user_id),"
    "  (SELECT COALESCE(SUM(amount_cents), 0) FROM pay.payments x"
    "     WHERE x.user_id = ids.user_id AND x.state IN ('FROZEN', 'HELD')),"
    "  (SELECT COALESCE(SUM(amount_cents), 0) FROM pay.payments x"
    "     WHERE x.user_id = ids.user_id AND x.state = 'CAPTURED')"
    " FROM ids LEFT JOIN pay.accounts a ON a.user_id = ids.user_id";

/* One row per product or account: name, have (3 columns), put in, and the
 * two sums of rows that must match the middle and last column. */
static int check_ledger(sqlite3 *db, const char *sql, bool money, bool require_final,
                        shop_check_report *r)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    const char *what = money ? "account" : "product";
    const char *a = money ? "balance" : "available", *b = money ? "frozen" : "reserved",
               *c = money ? "spent" : "sold", *in = money ? "deposited" : "restocked";
    const char *rows_b = money ? "FROZEN or HELD payments" : "RESERVED reservations";
    const char *rows_c = money ? "CAPTURED payments" : "SOLD reservations";
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *id = text(s, 0);
        int64_t va = sqlite3_column_int64(s, 1), vb = sqlite3_column_int64(s, 2),
                vc = sqlite3_column_int64(s, 3), vin = sqlite3_column_int64(s, 4),
                sum_b = sqlite3_column_int64(s, 5), sum_c = sqlite3_column_int64(s, 6);
        if (money) {
            r->money_balance += va;
            r->money_frozen += vb;
            r->money_spent += vc;
            r->money_deposited += vin;
        } else {
            r->stock_available += va;
            r->stock_reserved += vb;
            r->stock_sold += vc;
            r->stock_restocked += vin;
        }
        if (va + vb + vc != vin)
            violation(r, "%s %s is not conserved: %s %lld + %s %lld + %s %lld = %lld, but %lld "
                      "were %s", what, id, a, (long long)va, b, (long long)vb, c, (long long)vc,
                      (long long)(va + vb + vc), (long long)vin, in);
        if (vb != sum_b)
            violation(r, "%s %s has %s %lld but its %s add up to %lld", what, id, b,
                      (long long)vb, rows_b, (long long)sum_b);
        if (vc != sum_c)
            violation(r, "%s %s has %s %lld but its %s add up to %lld", what, id, c,
                      (long long)vc, rows_c, (long long)sum_c);
        if (require_final && vb != 0)
            violation(r, "%s %s still has %lld %s although every saga is final", what, id,
                      (long long)vb, b);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Each hold of the payment database with its order's state and reason. */
static const char HOLDS_SQL[] =
    "SELECT h.id, h.saga, h.state, h.applied, o.state, o.reason"
    " FROM pay.choreo_holds h LEFT JOIN main.orders o ON o.order_id = h.saga ORDER BY h.id";

static int check_holds(sqlite3 *db, bool require_final, shop_check_report *r)
{
    sqlite3_stmt *s = NULL;
    /* A payment database that never ran this version of choreo has no
     * holds. */
    int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pay.sqlite_master WHERE type = 'table'"
                                " AND name = 'choreo_holds'", -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    bool present = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    if (!present)
        return SQLITE_OK;
    if ((rc = sqlite3_prepare_v2(db, HOLDS_SQL, -1, &s, NULL)) != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(s, 0);
        const char *order = text(s, 1), *state = text(s, 2), *o_state = text(s, 4),
                   *o_reason = text(s, 5);
        bool applied = sqlite3_column_int(s, 3) != 0;
        bool decided = is(state, "approved") || is(state, "rejected");
        r->holds++;
        if (is(state, "approved"))
            r->holds_approved++;
        else if (is(state, "rejected"))
            r->holds_rejected++;
        else if (is(state, "expired"))
            r->holds_expired++;
        else
            r->holds_waiting++;
        if (!o_state[0]) {
            violation(r, "the payment's review hold %lld is for order %s, which the order "
                      "service does not know", id, order);
            continue;
        }
        if (is(o_state, SHOP_COMPLETED) && !is(state, "approved"))
            violation(r, "order %s is COMPLETED but its payment's review (hold %lld) is %s: only "
                      "an approval lets a held payment through", order, id, state);
        if (is(o_state, SHOP_CANCELLED) && is(state, "approved") &&
            is(o_reason, shop_reason_name(SHOP_REASON_PAYMENT)))
            violation(r, "order %s was cancelled as payment_rejected although its payment's "
                      "review (hold %lld) was approved", order, id);
        if (require_final && is(state, "held") && !is(o_state, SHOP_PENDING))
            violation(r, "order %s is %s but its payment's review (hold %lld) still waits for a "
                      "decision: the saga's end did not end it", order, o_state, id);
        if (require_final && decided && !applied)
            violation(r, "the %s review of order %s (hold %lld) was never carried out by the "
                      "payment service", state, order, id);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static const char POINTS_SQL[] =
    "SELECT a.user_id, a.points, (SELECT COALESCE(SUM(points), 0) FROM pts.awards x"
    "   WHERE x.user_id = a.user_id AND x.state = 'AWARDED') FROM pts.accounts a";

static int check_points(sqlite3 *db, shop_check_report *r)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(db, POINTS_SQL, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t have = sqlite3_column_int64(s, 1), awarded = sqlite3_column_int64(s, 2);
        r->points_held += have;
        if (have != awarded)
            violation(r, "points account %s holds %lld points but its kept awards add up to %lld",
                      text(s, 0), (long long)have, (long long)awarded);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int64_t count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

static choreo_status check_files(const shop_check_paths *paths, bool require_final,
                                 shop_check_report *out, char *err, size_t errlen);

/* A service on PostgreSQL is read from a snapshot of its database in a
 * temporary SQLite file (shop_pgcopy.h), which the checks then join as
 * they do the others. */
choreo_status shop_check_run(const shop_check_paths *paths, bool require_final,
                             shop_check_report *out, char *err, size_t errlen)
{
    shop_check_paths files = *paths;
    const char **each[4] = { &files.order, &files.inventory, &files.payment, &files.points };
    char copies[4][64] = { "", "", "", "" };
    choreo_status s = CHOREO_OK;
    for (int i = 0; i < 4 && s == CHOREO_OK; i++) {
        if (!shop_is_postgres_url(*each[i]))
            continue;
        snprintf(copies[i], sizeof copies[i], "/tmp/shop-check-%d-%d.db", (int)getpid(), i);
        char why[512];
        if (shop_pg_snapshot(*each[i], copies[i], why, sizeof why) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "cannot read %s: %s", *each[i], why);
            memset(out, 0, sizeof *out);
            s = CHOREO_ESTORE;
        }
        *each[i] = copies[i];
    }
    if (s == CHOREO_OK)
        s = check_files(&files, require_final, out, err, errlen);
    for (int i = 0; i < 4; i++)
        if (copies[i][0])
            unlink(copies[i]);
    return s;
}

static choreo_status check_files(const shop_check_paths *paths, bool require_final,
                                 shop_check_report *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->ok = true;
    out->require_final = require_final;
    char uri[1200];
    sqlite3 *db = NULL;
    ro_uri(uri, sizeof uri, paths->order);
    int rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    const char *failed = paths->order;
    if (rc == SQLITE_OK)
        sqlite3_busy_timeout(db, 5000);
    const char *attach[][2] = { { paths->inventory, "inv" }, { paths->payment, "pay" },
                                { paths->points, "pts" } };
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++) {
        ro_uri(uri, sizeof uri, attach[i][0]);
        sqlite3_stmt *s = NULL;
        failed = attach[i][0];
        rc = sqlite3_prepare_v2(db, "ATTACH ?1 AS ?2", -1, &s, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(s, 1, uri, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, attach[i][1], -1, SQLITE_STATIC);
            rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        }
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_OK) {
        failed = "the four databases";
        rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = check_orders(db, require_final, out);
    if (rc == SQLITE_OK)
        rc = check_orphans(db, out);
    if (rc == SQLITE_OK)
        rc = check_ledger(db, STOCK_SQL, false, require_final, out);
    if (rc == SQLITE_OK)
        rc = check_ledger(db, MONEY_SQL, true, require_final, out);
    if (rc == SQLITE_OK)
        rc = check_points(db, out);
    if (rc == SQLITE_OK)
        rc = check_holds(db, require_final, out);
    if (rc == SQLITE_OK) {
        out->stock_released = count(db, "SELECT COUNT(*) FROM inv.reservations "
                                        "WHERE state = 'RELEASED'");
        out->payments_released = count(db, "SELECT COUNT(*) FROM pay.payments "
                                           "WHERE state = 'RELEASED'");
        out->points_revoked = count(db, "SELECT COUNT(*) FROM pts.awards WHERE state = 'REVOKED'");
        out->compensations = out->stock_released + out->payments_released + out->points_revoked;
        static const char *const outboxes[] = {
            "SELECT COUNT(*) FROM main.choreo_outbox", "SELECT COUNT(*) FROM inv.choreo_outbox",
            "SELECT COUNT(*) FROM pay.choreo_outbox", "SELECT COUNT(*) FROM pts.choreo_outbox"
        };
        for (int i = 0; i < 4; i++) {
            int64_t n = count(db, outboxes[i]);
            out->events += n > 0 ? n : 0;
        }
    }
    choreo_status st = CHOREO_OK;
    if (rc != SQLITE_OK) {
        if (err && errlen)
            snprintf(err, errlen, "cannot read %s: %s", failed,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        shop_check_report_free(out);
        st = CHOREO_ESTORE;
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return st;
}

choreo_status shop_check_wait(const shop_check_paths *paths, bool require_final, int timeout_ms,
                              const atomic_int *cancel, shop_check_report *out,
                              char *err, size_t errlen)
{
    for (int waited = 0;; waited += 100) {
        choreo_status s = shop_check_run(paths, require_final, out, err, errlen);
        if (s != CHOREO_OK || out->ok || waited >= timeout_ms || (cancel && *cancel))
            return s;
        shop_check_report_free(out);
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

void shop_check_report_free(shop_check_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nkept; i++)
        free(r->violations[i]);
    r->nkept = 0;
}

void shop_check_print(const shop_check_report *r, FILE *f)
{
    fprintf(f, "orders      %lld: %lld completed, %lld cancelled, %lld pending\n",
            (long long)r->orders, (long long)r->completed, (long long)r->cancelled,
            (long long)r->pending);
    fprintf(f, "cancelled   ");
    for (int i = 0; i < SHOP_REASON_COUNT; i++)
        fprintf(f, "%s%s %lld", i ? ", " : "", shop_reason_name((shop_reason)i),
                (long long)r->by_reason[i]);
    fprintf(f, "\ncompensated %lld: stock released %lld, payments unfrozen %lld, points "
               "revoked %lld\n",
            (long long)r->compensations, (long long)r->stock_released,
            (long long)r->payments_released, (long long)r->points_revoked);
    fprintf(f, "stock       restocked %lld = available %lld + reserved %lld + sold %lld\n",
            (long long)r->stock_restocked, (long long)r->stock_available,
            (long long)r->stock_reserved, (long long)r->stock_sold);
    fprintf(f, "money       deposited %lld = balance %lld + frozen %lld + spent %lld (cents)\n",
            (long long)r->money_deposited, (long long)r->money_balance,
            (long long)r->money_frozen, (long long)r->money_spent);
    fprintf(f, "points      %lld held\n", (long long)r->points_held);
    fprintf(f, "reviews     held %lld for review: %lld approved, %lld rejected, %lld expired "
               "with their saga",
            (long long)r->holds, (long long)r->holds_approved, (long long)r->holds_rejected,
            (long long)r->holds_expired);
    if (r->holds_waiting)
        fprintf(f, ", %lld waiting for a decision", (long long)r->holds_waiting);
    fprintf(f, "\n");
    if (r->ok) {
        fprintf(f, "invariants  OK: every completed order moved its stock, money and points "
                   "once, every cancelled one left no net effect, stock, money and points add "
                   "up%s\n",
                r->require_final ? ", nothing is left reserved or frozen" : "");
        return;
    }
    fprintf(f, "invariants  VIOLATED (%zu):\n", r->nviolations);
    for (size_t i = 0; i < r->nkept; i++)
        fprintf(f, "  - %s\n", r->violations[i]);
    if (r->nviolations > r->nkept)
        fprintf(f, "  ... and %zu more\n", r->nviolations - r->nkept);
}
