/* Outbox rows: insert, due order, delayed rows, marking and failures. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "tuning.h"
#include "unit_db.h"

static void insert(choreo_store *st, const char *id, int64_t publish_at)
{
    choreo_outbox_row row = { .event_id = id, .subject = "choreo.T.s", .headers = "Nats-Msg-Id: x\n",
                              .body = (const uint8_t *)"\x80", .body_len = 1,
                              .created_us = 1, .publish_at = publish_at };
    cr_assert_eq(choreo__outbox_insert(st, &row, NULL), CHOREO_OK, "%s", choreo_last_error());
}

struct seen { int n; int64_t seq[16]; char ids[16][8]; };

static bool collect(const choreo_outbox_row *row, void *user)
{
    struct seen *s = user;
    s->seq[s->n] = row->seq;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", row->event_id);
    s->n++;
    return true;
}

Test(outbox, due_rows_come_in_seq_order_and_delayed_rows_wait)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert(st, "a", 100);
    insert(st, "b", 5000); /* delayed */
    insert(st, "c", 100);
    struct seen s = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1000, 0, 10, collect, &s), CHOREO_OK);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.ids[0], "a");
    cr_assert_str_eq(s.ids[1], "c");
    int64_t next;
    cr_assert_eq(choreo__outbox_next_due(st, &next), CHOREO_OK);
    cr_assert_eq(next, 100);
    cr_assert_eq(choreo__outbox_mark_published(st, s.seq, s.n, 1000, NULL), CHOREO_OK);
    cr_assert_eq(choreo__outbox_next_due(st, &next), CHOREO_OK);
    cr_assert_eq(next, 5000);
    struct seen later = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 6000, 0, 10, collect, &later), CHOREO_OK);
    cr_assert_eq(later.n, 1);
    cr_assert_str_eq(later.ids[0], "b");
    int64_t pending;
    cr_assert_eq(choreo__outbox_pending(st, &pending), CHOREO_OK);
    cr_assert_eq(pending, 1);
    choreo__store_close(st);
}

Test(outbox, rows_at_or_below_the_cursor_are_skipped)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert(st, "a", 0);
    insert(st, "b", 0);
    insert(st, "c", 0);
    struct seen all = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1, 0, 10, collect, &all), CHOREO_OK);
    struct seen after = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1, all.seq[1], 10, collect, &after), CHOREO_OK);
    cr_assert_eq(after.n, 1);
    cr_assert_str_eq(after.ids[0], "c");
    choreo__store_close(st);
}

Test(outbox, limit_bounds_a_batch)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    char id[8];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "e%d", i);
        insert(st, id, 0);
    }
    struct seen s = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1, 0, 4, collect, &s), CHOREO_OK);
    cr_assert_eq(s.n, 4);
    choreo__store_close(st);
}

Test(outbox, a_duplicate_event_id_is_refused)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert(st, "same", 0);
    choreo_outbox_row row = { .event_id = "same", .subject = "s", .headers = "",
                              .body = (const uint8_t *)"\x80", .body_len = 1 };
    cr_assert_eq(choreo__outbox_insert(st, &row, NULL), CHOREO_EDUPLICATE);
    choreo__store_close(st);
}

Test(outbox, failures_are_recorded_and_the_row_stays_due)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert(st, "a", 0);
    struct seen s = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1, 0, 10, collect, &s), CHOREO_OK);
    cr_assert_eq(choreo__outbox_record_failure(st, s.seq[0], "no PubAck"), CHOREO_OK);
    cr_assert_eq(unit_db_count(st, "SELECT attempts FROM choreo_outbox"), 1);
    struct seen again = { 0 };
    cr_assert_eq(choreo__outbox_due(st, 1, 0, 10, collect, &again), CHOREO_OK);
    cr_assert_eq(again.n, 1);
    choreo__store_close(st);
}

Test(outbox, rows_written_in_a_rolled_back_transaction_vanish)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    insert(st, "gone", 0);
    choreo__store_rollback(st);
    int64_t pending = -1;
    cr_assert_eq(choreo__outbox_pending(st, &pending), CHOREO_OK);
    cr_assert_eq(pending, 0);
    choreo__store_close(st);
}

#ifndef UNIT_PG /* SQLite's query plans and VM steps */
/* The SQL of a cached statement, run once so that it is prepared. */
static const char *stmt_sql(choreo_store *st, enum choreo_stmt id)
{
    cr_assert_not_null(st->stmt[id], "statement %d was never prepared", (int)id);
    return sqlite3_sql(choreo__q_sqlite(st->stmt[id]));
}

/* Asserts that the plan of sql reads choreo_outbox only by key or through
 * an index; with scan_ok, a scan of a covering partial index on unpublished
 * rows is allowed too (counting them has to visit each one). */
static void plan_uses_indexes(choreo_store *st, const char *sql, bool scan_ok)
{
    char eqp[4096];
    snprintf(eqp, sizeof eqp, "EXPLAIN QUERY PLAN %s", sql);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(st->db, eqp, -1, &s, NULL), SQLITE_OK, "%s",
                 sqlite3_errmsg(st->db));
    sqlite3_bind_int64(s, 1, 1000);
    sqlite3_bind_int(s, 2, 10);
    sqlite3_bind_int64(s, 3, 0);
    while (sqlite3_step(s) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(s, 3);
        bool scan = strncmp(d, "SCAN choreo_outbox", 18) == 0 || strncmp(d, "SCAN o", 6) == 0;
        bool allowed = scan_ok && (strstr(d, "USING COVERING INDEX choreo_outbox_due") ||
                                   strstr(d, "USING COVERING INDEX choreo_outbox_pending"));
        cr_assert(!scan || allowed, "\"%s\" reads the outbox row by row: %s", sql, d);
    }
    sqlite3_finalize(s);
}

static void insert_n(choreo_store *st, const char *tag, int n, int64_t publish_at)
{
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    char id[32];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s%d", tag, i);
        insert(st, id, publish_at);
    }
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
}

static bool count_rows(const choreo_outbox_row *row, void *user)
{
    (*(int *)user)++;
    return true;
}

Test(outbox, the_relay_queries_use_indexes_not_table_scans)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert_n(st, "d", 50, 5000);
    insert_n(st, "n", 5, 100);
    int64_t v;
    int got = 0;
    cr_assert_eq(choreo__outbox_due(st, 1000, 0, 10, count_rows, &got), CHOREO_OK);
    cr_assert_eq(choreo__outbox_next_due(st, &v), CHOREO_OK);
    cr_assert_eq(choreo__outbox_pending(st, &v), CHOREO_OK);
    plan_uses_indexes(st, stmt_sql(st, STMT_OUTBOX_DUE), false);
    plan_uses_indexes(st, stmt_sql(st, STMT_OUTBOX_NEXT_DUE), false);
    plan_uses_indexes(st, stmt_sql(st, STMT_OUTBOX_PENDING), true);
    choreo__store_close(st);
}

/* Virtual machine steps of the statement's last run: the work it did. */
static int vm_steps(choreo_store *st, enum choreo_stmt id)
{
    return sqlite3_stmt_status(choreo__q_sqlite(st->stmt[id]), SQLITE_STMTSTATUS_VM_STEP, 1);
}

Test(outbox, finding_due_rows_does_not_walk_the_delayed_ones)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    insert_n(st, "d", 20000, 1000000); /* deadlines, all before the due rows */
    insert_n(st, "n", 3, 100);
    int got = 0;
    int64_t next;
    /* Once to prepare, then measured. */
    cr_assert_eq(choreo__outbox_due(st, 1000, 0, 256, count_rows, &got), CHOREO_OK);
    cr_assert_eq(choreo__outbox_next_due(st, &next), CHOREO_OK);
    vm_steps(st, STMT_OUTBOX_DUE);
    vm_steps(st, STMT_OUTBOX_NEXT_DUE);
    got = 0;
    cr_assert_eq(choreo__outbox_due(st, 1000, 0, 256, count_rows, &got), CHOREO_OK);
    cr_assert_eq(got, 3);
    cr_assert_eq(choreo__outbox_next_due(st, &next), CHOREO_OK);
    cr_assert_eq(next, 100);
    /* A few dozen steps per row read, for at most 2 x 256 rows: far below
     * one step per delayed row. */
    int due_steps = vm_steps(st, STMT_OUTBOX_DUE), next_steps = vm_steps(st, STMT_OUTBOX_NEXT_DUE);
    cr_expect_lt(due_steps, 20000, "due took %d steps", due_steps);
    cr_expect_lt(next_steps, 100, "next_due took %d steps", next_steps);
    choreo__store_close(st);
}
#endif

struct relay_sim {
    int n;
    int64_t seq[64];
    int64_t prev;
    bool ordered;
};

static bool take(const choreo_outbox_row *row, void *user)
{
    struct relay_sim *r = user;
    if (row->seq <= r->prev)
        r->ordered = false;
    r->prev = row->seq;
    r->seq[r->n++] = row->seq;
    return true;
}

/* The relay's loop over a mix of due and delayed rows, with a batch smaller
 * than the due rows: every due row is read exactly once (marked published
 * after each batch), each batch in seq order, and nothing not yet due. */
Test(outbox, a_relay_loop_reads_every_due_row_once_and_in_seq_order)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    static const int64_t at[] = { 900, 5000, 100, 5000, 950, 100, 5000, 999, 100,
                                  1000, 5000, 300, 100, 5000, 1, 700, 5000, 100 };
    int n = (int)(sizeof at / sizeof at[0]), due_rows = 0;
    char id[16];
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "r%d", i);
        insert(st, id, at[i]);
        due_rows += at[i] <= 1000;
    }
    int seen[32] = { 0 }, reads = 0;
    int64_t cursor = 0;
    for (int round = 0; round < 100; round++) {
        struct relay_sim r = { .ordered = true };
        cr_assert_eq(choreo__outbox_due(st, 1000, cursor, 4, take, &r), CHOREO_OK);
        cr_assert(r.ordered, "round %d is not in seq order", round);
        if (r.n == 0) {
            if (cursor == 0)
                break;
            cursor = 0; /* the relay rewinds when a round finds nothing */
            continue;
        }
        for (int i = 0; i < r.n; i++) {
            cr_assert_leq(at[r.seq[i] - 1], 1000, "row %lld is not due", (long long)r.seq[i]);
            seen[r.seq[i]]++;
            reads++;
        }
        cr_assert_eq(choreo__outbox_mark_published(st, r.seq, r.n, 1000, NULL), CHOREO_OK);
        cursor = r.seq[r.n - 1];
    }
    cr_assert_eq(reads, due_rows);
    for (int i = 1; i <= n; i++)
        cr_assert_eq(seen[i], at[i - 1] <= 1000 ? 1 : 0, "row %d read %d times", i, seen[i]);
    int64_t pending;
    cr_assert_eq(choreo__outbox_pending(st, &pending), CHOREO_OK);
    cr_assert_eq(pending, n - due_rows);
    choreo__store_close(st);
}

static choreo_outbox_row copy_of(int64_t seq, const uint8_t *body, size_t len)
{
    return (choreo_outbox_row){ .seq = seq, .event_id = "01J0000000000000000000000", .subject =
                                "choreo.T.s", .headers = "Nats-Msg-Id: x\n", .body = body,
                                .body_len = len };
}

/* A commit's copies hold at most a relay round: CHOREO_RELAY_BATCH rows or
 * CHOREO_RELAY_COPY_BYTES; past either the list says incomplete (the relay
 * reads the table) and keeps nothing more, and the byte count follows a
 * rolled-back savepoint's truncation. */
Test(outbox, copies_stop_at_a_round_of_rows_or_of_bytes)
{
    static const uint8_t small[1] = { 0x80 };
    choreo_outbox_copies l = { 0 };
    for (int i = 1; i <= CHOREO_RELAY_BATCH; i++) {
        choreo_outbox_row row = copy_of(i, small, 1);
        choreo__outbox_copy(&l, &row);
    }
    cr_assert_eq(l.n, CHOREO_RELAY_BATCH);
    cr_assert_not(l.incomplete);
    choreo_outbox_row one = copy_of(CHOREO_RELAY_BATCH + 1, small, 1);
    choreo__outbox_copy(&l, &one);
    cr_assert(l.incomplete, "a row past a round was kept");
    choreo__outbox_copies_truncate(&l, 0);
    cr_assert_eq(l.bytes, 0);
    cr_assert_not(l.incomplete);

    size_t big = CHOREO_RELAY_COPY_BYTES / 4;
    uint8_t *body = calloc(1, big);
    cr_assert_not_null(body);
    for (int i = 1; i <= 2; i++) {
        choreo_outbox_row row = copy_of(i, body, big);
        choreo__outbox_copy(&l, &row);
    }
    cr_assert_eq(l.n, 2);
    size_t two = l.bytes;
    cr_assert_gt(two, 2 * big);
    choreo__outbox_copies_truncate(&l, 1); /* a savepoint rolled back */
    cr_assert_eq(l.bytes, two / 2);
    for (int i = 2; i <= 3; i++) {
        choreo_outbox_row row = copy_of(i, body, big);
        choreo__outbox_copy(&l, &row);
    }
    cr_assert_eq(l.n, 3);
    cr_assert_not(l.incomplete);
    choreo_outbox_row last = copy_of(4, body, big);
    choreo__outbox_copy(&l, &last);
    cr_assert(l.incomplete, "copies past %d bytes were kept", CHOREO_RELAY_COPY_BYTES);
    cr_assert_eq(l.n, 3);

    /* Moving two lists together obeys the same bound. */
    choreo_outbox_copies a = { 0 }, b = { 0 };
    for (int i = 1; i <= 2; i++) {
        choreo_outbox_row row = copy_of(i, body, big);
        choreo__outbox_copy(&a, &row);
        row.seq = 10 + i;
        choreo__outbox_copy(&b, &row);
    }
    choreo__outbox_copies_move(&a, &b);
    cr_assert(a.incomplete, "a move past %d bytes was kept", CHOREO_RELAY_COPY_BYTES);
    cr_assert_eq(b.n, 0);
    cr_assert_eq(b.bytes, 0);
    free(body);
    choreo__outbox_copies_free(&l);
    choreo__outbox_copies_free(&a);
    choreo__outbox_copies_free(&b);
}
