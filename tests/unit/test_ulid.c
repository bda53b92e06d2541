/* ULID event ids: format, validity and ordering. */
#include <criterion/criterion.h>
#include <string.h>

#include "ulid.h"

Test(ulid, known_time_and_randomness_format_as_expected)
{
    uint8_t zero[10] = { 0 }, ones[10];
    memset(ones, 0xff, sizeof ones);
    char id[CHOREO_ID_SIZE];
    choreo__ulid_format(id, 0, zero);
    cr_assert_str_eq(id, "00000000000000000000000000");
    choreo__ulid_format(id, 0xFFFFFFFFFFFFULL, ones);
    cr_assert_str_eq(id, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    choreo__ulid_format(id, 1469918176385ULL, zero);
    cr_assert_eq(strncmp(id, "01ARYZ6S41", 10), 0, "time part was %s", id);
}

Test(ulid, new_ids_are_valid_and_strictly_increasing)
{
    char prev[CHOREO_ID_SIZE] = "", id[CHOREO_ID_SIZE];
    for (int i = 0; i < 10000; i++) {
        choreo__ulid_new(id);
        cr_assert(choreo__ulid_valid(id, strlen(id)), "invalid %s", id);
        cr_assert_gt(strcmp(id, prev), 0, "%s not after %s", id, prev);
        memcpy(prev, id, sizeof id);
    }
}

Test(ulid, validity_rejects_bad_text)
{
    cr_assert_not(choreo__ulid_valid("01ARYZ6S41", 10));
    cr_assert_not(choreo__ulid_valid("01ARYZ6S41TSV4RRFFQ69G5FAU", 26)); /* U not in alphabet */
    cr_assert_not(choreo__ulid_valid("81ARYZ6S41TSV4RRFFQ69G5FAV", 26)); /* overflows 128 bits */
    cr_assert_not(choreo__ulid_valid("01aryz6s41tsv4rrffq69g5fav", 26));
    cr_assert(choreo__ulid_valid("01ARYZ6S41TSV4RRFFQ69G5FAV", 26));
}
