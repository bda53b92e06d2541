/* shop-points: loyalty points of the shop demo, the saga's last step.
 * PaymentAuthorized adds the order's points and answers PointsAwarded, or
 * PointsRejected when the customer opted out of points or would pass the
 * account's cap (a deterministic rule, set per account with Enroll).
 * OrderCancelled takes awarded points back, behind the saga barrier. */
#include <stdio.h>
#include <string.h>

#include "shop_domain.h"
#include "shop_events.h"
#include "shop_msg.h"
#include "shop_svc.h"

/* points of an account always equals the points of its AWARDED rows. */
static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS accounts("
    "  user_id TEXT PRIMARY KEY,"
    "  points INTEGER NOT NULL CHECK (points >= 0),"
    "  cap INTEGER NOT NULL CHECK (cap >= 0),"
    "  no_points INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS awards("
    "  order_id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL,"
    "  points INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('AWARDED', 'REVOKED', 'REJECTED')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  updated_us INTEGER NOT NULL);";

enum { Q_OPEN, Q_ACCOUNT, Q_ADD, Q_INSERT, Q_AWARD_GET, Q_REVOKE, Q_AWARD_SET, Q_ENROLL };

struct points_svc {
    shop_stmts st;
    int64_t default_cap;
};

static bool record(struct points_svc *p, sqlite3 *db, const shop_payment_authorized *v,
                   const char *state, const char *reason)
{
    return shop_sql(&p->st, db, Q_INSERT,
                    "INSERT INTO awards(order_id, user_id, points, state, reason, updated_us) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    "ttitti", v->order_id, v->user_id, v->points, state, reason,
                    shop_now_us()) == SQLITE_DONE;
}

/* The business rule: no points for an account that opted out, nor beyond
 * its cap. Returns NULL when the points may be added, else why not. */
static const char *refusal(bool no_points, int64_t have, int64_t cap, int64_t add)
{
    if (no_points)
        return "the customer opted out of points";
    if (add < 0)
        return "invalid points";
    if (have > cap - add)
        return "the account's points cap would be exceeded";
    return NULL;
}

static choreo_result on_payment_authorized(choreo_tx *tx, const choreo_event *meta,
                                           const shop_payment_authorized *v, void *user)
{
    struct points_svc *p = user;
    sqlite3 *db = choreo_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_AWARD, CHOREO_BARRIER_ACTION, &run) != CHOREO_OK)
        return CHOREO_RETRY;
    if (!run) {
        shop_log(SHOP_INFO, "points skipped: the order was cancelled first", "order=%s",
                 v->order_id);
        return CHOREO_DONE;
    }
    /* Customers without an account get one with the default cap. */
    if (shop_sql(&p->st, db, Q_OPEN,
                 "INSERT OR IGNORE INTO accounts(user_id, points, cap, no_points) "
                 "VALUES (?1, 0, ?2, 0)",
                 "ti", v->user_id, p->default_cap) != SQLITE_DONE)
        return CHOREO_RETRY;
    if (shop_sql(&p->st, db, Q_ACCOUNT,
                 "SELECT points, cap, no_points FROM accounts WHERE user_id = ?1", "t",
                 v->user_id) != SQLITE_ROW)
        return CHOREO_RETRY;
    sqlite3_stmt *s = shop_sql_stmt(&p->st, Q_ACCOUNT);
    const char *why = refusal(sqlite3_column_int64(s, 2) != 0, sqlite3_column_int64(s, 0),
                              sqlite3_column_int64(s, 1), v->points);
    shop_sql_reset(&p->st, Q_ACCOUNT);
    if (why) {
        if (!record(p, db, v, "REJECTED", why))
            return CHOREO_RETRY;
        shop_points_rejected out;
        shop_points_rejected_init(&out);
        out.order_id = v->order_id;
        out.reason = why;
        return shop_emit_points_rejected(tx, NULL, &out, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                            : CHOREO_RETRY;
    }
    if (shop_sql(&p->st, db, Q_ADD, "UPDATE accounts SET points = points + ?2 WHERE user_id = ?1",
                 "ti", v->user_id, v->points) != SQLITE_DONE ||
        !record(p, db, v, "AWARDED", ""))
        return CHOREO_RETRY;
    shop_points_awarded out;
    shop_points_awarded_init(&out);
    out.order_id = v->order_id;
    out.user_id = v->user_id;
    out.points = v->points;
    return shop_emit_points_awarded(tx, NULL, &out, NULL) == CHOREO_OK ? CHOREO_DONE
                                                                       : CHOREO_RETRY;
}

/* Cancel: take awarded points back, at most once and only if awarded. */
static choreo_result on_order_cancelled(choreo_tx *tx, const choreo_event *meta,
                                        const shop_order_cancelled *v, void *user)
{
    struct points_svc *p = user;
    sqlite3 *db = choreo_tx_db(tx);
    bool run;
    if (choreo_tx_barrier(tx, NULL, SHOP_STEP_AWARD, CHOREO_BARRIER_COMPENSATION, &run) !=
        CHOREO_OK)
        return CHOREO_RETRY;
    if (!run)
        return CHOREO_DONE;
    int rc = shop_sql(&p->st, db, Q_AWARD_GET,
                      "SELECT user_id, points, state FROM awards WHERE order_id = ?1", "t",
                      v->order_id);
    if (rc == SQLITE_DONE)
        return CHOREO_DONE;
    if (rc != SQLITE_ROW)
        return CHOREO_RETRY;
    sqlite3_stmt *s = shop_sql_stmt(&p->st, Q_AWARD_GET);
    char user_id[80], state[16];
    snprintf(user_id, sizeof user_id, "%s", (const char *)sqlite3_column_text(s, 0));
    int64_t points = sqlite3_column_int64(s, 1);
    snprintf(state, sizeof state, "%s", (const char *)sqlite3_column_text(s, 2));
    shop_sql_reset(&p->st, Q_AWARD_GET);
    if (strcmp(state, "AWARDED") != 0)
        return CHOREO_DONE; /* rejected: nothing was added */
    if (shop_sql(&p->st, db, Q_REVOKE,
                 "UPDATE accounts SET points = points - ?2 WHERE user_id = ?1", "ti", user_id,
                 points) != SQLITE_DONE ||
        shop_sql(&p->st, db, Q_AWARD_SET,
                 "UPDATE awards SET state = 'REVOKED', updated_us = ?2 WHERE order_id = ?1", "ti",
                 v->order_id, shop_now_us()) != SQLITE_DONE)
        return CHOREO_RETRY;
    return CHOREO_DONE;
}

/* Enroll {user_id, cap?, no_points?} -> {ok, error}: opens or updates an
 * account's rule. Setting the same values again changes nothing. */
static choreo_result enroll(choreo_tx *tx, const void *req, size_t len, choreo_reply *reply,
                            void *user)
{
    struct points_svc *p = user;
    char user_id[80] = "", err[200] = "";
    int64_t cap = p->default_cap;
    bool no_points = false, ok = false;
    shop_field in[] = { SHOP_FIELD_STR("user_id", user_id, true),
                        SHOP_FIELD_I64("cap", &cap, false),
                        SHOP_FIELD_BOOL("no_points", &no_points, false) };
    if (shop_msg_decode(req, len, in, 3, err, sizeof err) != CHOREO_OK) {
        /* err says why */
    } else if (!user_id[0] || cap < 0) {
        snprintf(err, sizeof err, "user_id must not be empty and cap not negative");
    } else {
        if (shop_sql(&p->st, choreo_tx_db(tx), Q_ENROLL,
                     "INSERT INTO accounts(user_id, points, cap, no_points) VALUES (?1, 0, ?2, ?3) "
                     "ON CONFLICT (user_id) DO UPDATE SET cap = excluded.cap, "
                     "no_points = excluded.no_points",
                     "tii", user_id, cap, (int64_t)no_points) != SQLITE_DONE)
            return CHOREO_RETRY;
        ok = true;
    }
    shop_field out[] = { SHOP_FIELD_BOOL("ok", &ok, false), SHOP_FIELD_STR("error", err, false) };
    return shop_msg_reply(reply, out, 2);
}

static choreo_status register_handlers(choreo_service *svc, void *user)
{
    choreo_status s;
    if ((s = shop_on_payment_authorized(svc, on_payment_authorized, user)) ||
        (s = shop_on_order_cancelled(svc, on_order_cancelled, user)) ||
        (s = choreo_service_on_request(svc, SHOP_RQ_ENROLL, enroll, user)))
        return s;
    return CHOREO_OK;
}

static int flag(int argc, char **argv, int *i, void *user)
{
    struct points_svc *p = user;
    if (strcmp(argv[*i], "--default-cap") != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "shop-points: --default-cap needs a value\n");
        return -1;
    }
    *i += 1;
    return shop_parse_i64("--default-cap", argv[*i], 0, INT64_MAX, &p->default_cap) ? 1 : -1;
}

static void cleanup(void *user)
{
    shop_stmts_clear(&((struct points_svc *)user)->st);
}

int main(int argc, char **argv)
{
    struct points_svc p = { .default_cap = INT64_C(1000000000) };
    shop_service_def def = {
        .name = "points",
        .schema_sql = SCHEMA,
        .usage = "  --default-cap N   points cap of accounts opened by a first award "
                 "[1000000000]\n",
        .flags = (const char *const[]){ "--default-cap", NULL },
        .flag = flag,
        .register_handlers = register_handlers,
        .cleanup = cleanup,
        .user = &p,
    };
    return shop_service_main(&def, argc, argv);
}
