/* A fresh SQLite file in a temp directory for store-level unit tests. */
#ifndef CHOREO_TEST_UNIT_DB_H
#define CHOREO_TEST_UNIT_DB_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"

static inline void unit_db_path(char *out, size_t cap)
{
    char dir[] = "/tmp/choreo-unit-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out, cap, "%s/test.db", dir);
}

static inline choreo_store *unit_db_open(char *path, size_t cap)
{
    unit_db_path(path, cap);
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "normal", 1000), CHOREO_OK, "%s",
                 choreo_last_error());
    return st;
}

static inline long long unit_db_count(choreo_store *st, const char *sql)
{
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL), SQLITE_OK, "%s", sql);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    long long n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return n;
}

#endif
