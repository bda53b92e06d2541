/* Inbox marks: the first delivery is fresh, later ones are duplicates. */
#include <criterion/criterion.h>

#include "inbox.h"
#include "unit_db.h"

Test(inbox, second_mark_of_the_same_event_is_a_duplicate)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    cr_assert_eq(choreo__inbox_mark(st, "pay_OrderCreated", "E1", 1, &fresh), CHOREO_OK);
    cr_assert(fresh);
    cr_assert_eq(choreo__inbox_mark(st, "pay_OrderCreated", "E1", 2, &fresh), CHOREO_OK);
    cr_assert_not(fresh);
    choreo__store_close(st);
}

Test(inbox, marks_are_per_consumer)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 1, &fresh), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "b", "E1", 1, &fresh), CHOREO_OK);
    cr_assert(fresh, "another consumer of the same event is not a duplicate");
    choreo__store_close(st);
}

Test(inbox, a_rolled_back_mark_does_not_count)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    bool fresh = false;
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    cr_assert_eq(choreo__store_savepoint(st), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 1, &fresh), CHOREO_OK);
    cr_assert_eq(choreo__store_rollback_to(st), CHOREO_OK);
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(st, "a", "E1", 2, &fresh), CHOREO_OK);
    cr_assert(fresh, "the handler's rollback must take the inbox mark with it");
    choreo__store_close(st);
}
