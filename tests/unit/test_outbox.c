/* Outbox rows: insert, due order, delayed rows, marking and failures. */
#include <criterion/criterion.h>
#include <string.h>

#include "outbox.h"
#include "unit_db.h"

static void insert(choreo_store *st, const char *id, int64_t publish_at)
{
    choreo_outbox_row row = { .event_id = id, .subject = "choreo.T.s", .headers = "Nats-Msg-Id: x\n",
                              .body = (const uint8_t *)"\x80", .body_len = 1,
                              .created_us = 1, .publish_at = publish_at };
    cr_assert_eq(choreo__outbox_insert(st, &row), CHOREO_OK, "%s", choreo_last_error());
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
    cr_assert_eq(choreo__outbox_insert(st, &row), CHOREO_EDUPLICATE);
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
