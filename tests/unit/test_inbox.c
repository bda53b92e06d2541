/* Inbox marks: the first delivery is fresh, later ones are duplicates; a
 * fresh one says what earlier deliveries left (a retry count, a park). */
#include <criterion/criterion.h>

#include "dead.h"
#include "inbox.h"
#include "unit_db.h"

Test(inbox, second_mark_of_the_same_event_is_a_duplicate)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    int64_t retried = 0;
    cr_assert_eq(choreo__inbox_mark(st, "pay_OrderCreated", "E1", 0, 1, &fresh, &retried, NULL),
                 CHOREO_OK);
    cr_assert(fresh);
    cr_assert_eq(choreo__inbox_mark(st, "pay_OrderCreated", "E1", 0, 2, &fresh, &retried, NULL),
                 CHOREO_OK);
    cr_assert_not(fresh);
    choreo__store_close(st);
}

Test(inbox, marks_are_per_consumer)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    int64_t retried = 0;
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "b", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert(fresh, "another consumer of the same event is not a duplicate");
    choreo__store_close(st);
}

Test(inbox, a_rolled_back_mark_does_not_count)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    int64_t retried = 0;
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    cr_assert_eq(choreo__store_savepoint(st), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert_eq(choreo__store_rollback_to(st), CHOREO_OK);
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 2, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert(fresh, "the handler's rollback must take the inbox mark with it");
    choreo__store_close(st);
}

/* The highest delivery whose handler asked for a retry comes back with the
 * next fresh mark, stays out of a rolled-back savepoint and goes once the
 * event is settled. */
Test(inbox, a_retried_delivery_count_comes_back_with_the_next_mark)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    int64_t retried = -1;
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert(fresh);
    cr_assert_eq(retried, 0);
    cr_assert_eq(choreo__store_exec(st, "DELETE FROM choreo_inbox"), CHOREO_OK);
    cr_assert_eq(choreo__inbox_retried(st, "a", "E1", 2, 10, "the bank is down"), CHOREO_OK);
    cr_assert_eq(choreo__inbox_retried(st, "a", "E1", 3, 11, "the bank said \"later\""),
                 CHOREO_OK);
    char reason[64];
    cr_assert_eq(choreo__inbox_retry_reason(st, "a", "E1", reason, sizeof reason), CHOREO_OK);
    cr_assert_str_eq(reason, "the bank said \"later\"", "the last retry's reason is kept");
    cr_assert_eq(choreo__inbox_retry_reason(st, "b", "E1", reason, sizeof reason), CHOREO_OK);
    cr_assert_str_eq(reason, "", "another consumer has none");
    cr_assert_eq(choreo__inbox_mark(st, "b", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert_eq(retried, 0, "another consumer's count");
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert(fresh);
    cr_assert_eq(retried, 3);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert_not(fresh);
    cr_assert_eq(retried, 0, "a duplicate reads no count");
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    cr_assert_eq(choreo__store_savepoint(st), CHOREO_OK);
    cr_assert_eq(choreo__inbox_settled(st, "a", "E1"), CHOREO_OK);
    cr_assert_eq(choreo__store_rollback_to(st), CHOREO_OK);
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
    cr_assert_eq(unit_db_count(st, "SELECT attempt FROM choreo_retries"), 3);
    cr_assert_eq(choreo__inbox_settled(st, "a", "E1"), CHOREO_OK);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_retries"), 0);
    choreo__store_close(st);
}

/* A fresh mark tells whether the event is parked (or dropped) for that
 * consumer: a copy of such an event that comes again must not run as a new
 * one. */
Test(inbox, a_fresh_mark_says_whether_the_event_is_parked_for_its_consumer)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    const uint8_t body[] = { 0x80 };
    choreo_dead_row row = { .consumer = "a", .event_id = "E1", .event_type = "T",
                            .subject = "choreo.T.s", .body = body, .body_len = 1,
                            .reason = "handler returned REJECT", .attempts = 1 };
    cr_assert_eq(choreo__dead_insert(st, &row, 5), CHOREO_OK, "%s", choreo_last_error());
    bool fresh = false, parked = false;
    int64_t retried = 0;
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert(fresh);
    cr_assert(parked, "E1 is parked for a");
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert_not(fresh);
    cr_assert_not(parked, "a duplicate reads nothing");
    cr_assert_eq(choreo__inbox_mark(st, "b", "E1", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert(fresh);
    cr_assert_not(parked, "parked for another consumer");
    cr_assert_eq(choreo__inbox_mark(st, "a", "E2", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert_not(parked, "another event");
    /* Dropped by an operator: never to run. Retried: it may run again. */
    cr_assert_eq(choreo__store_exec(st, "DELETE FROM choreo_inbox;"
                                        "UPDATE choreo_dead SET status = 'dropped'"),
                 CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert(fresh);
    cr_assert(parked, "a dropped message counts as parked");
    cr_assert_eq(choreo__store_exec(st, "DELETE FROM choreo_inbox;"
                                        "UPDATE choreo_dead SET status = 'retried'"),
                 CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 0, 1, &fresh, &retried, &parked), CHOREO_OK);
    cr_assert(fresh);
    cr_assert_not(parked, "a retried message is not parked");
    choreo__store_close(st);
}
