/* A fresh database for store-level unit tests: a SQLite file in a temp
 * directory, or, when the test is built with UNIT_PG, a new database on
 * the private PostgreSQL server that tests/pg/with-postgres started
 * (CHOREO_TEST_PG). */
#ifndef CHOREO_TEST_UNIT_DB_H
#define CHOREO_TEST_UNIT_DB_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "natsd.h"
#include "../scratch.h"
#include "store.h"

#ifdef UNIT_PG
#include <libpq-fe.h>

/* A one-byte blob literal (0x80), a version query, and a query that
 * counts the named tables and indexes, in the engine's SQL. */
#define UNIT_BLOB80 "'\\x80'::bytea"
#define UNIT_SCHEMA_VERSION "SELECT version FROM choreo_schema"
#define UNIT_COUNT_NAMED "SELECT COUNT(*) FROM pg_class WHERE relname"
#include <string.h>

/* Creates database `name` on the test server and writes its URL to out. */
static inline void unit_pg_create(const char *name, char *out, size_t cap)
{
    const char *admin = getenv("CHOREO_TEST_PG");
    cr_assert_not_null(admin, "CHOREO_TEST_PG is not set: run under tests/pg/with-postgres");
    PGconn *c = PQconnectdb(admin);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    const char *slash = strrchr(admin, '/');
    cr_assert_not_null(slash);
    snprintf(out, cap, "%.*s/%s", (int)(slash - admin), admin, name);
}

static inline void unit_db_path(char *out, size_t cap)
{
    static int n;
    char name[64];
    snprintf(name, sizeof name, "unit_%ld_%d", (long)getpid(), ++n);
    unit_pg_create(name, out, cap);
}
#else
#define UNIT_BLOB80 "x'80'"
#define UNIT_SCHEMA_VERSION "PRAGMA user_version"
#define UNIT_COUNT_NAMED "SELECT COUNT(*) FROM sqlite_master WHERE name"

static inline void unit_db_path(char *out, size_t cap)
{
    char dir[200];
    cr_assert_eq(natsd_tmp_path(dir, sizeof dir, "choreo-unit-XXXXXX"), 0, "TMPDIR is too long");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out, cap, "%s/test.db", dir);
}
#endif

static inline choreo_store *unit_db_open(char *path, size_t cap)
{
    unit_db_path(path, cap);
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "normal", 1000), CHOREO_OK, "%s",
                 choreo_last_error());
    return st;
}

/* The first column of the first row of sql, as an integer. */
static inline long long unit_db_count(choreo_store *st, const char *sql)
{
    choreo_q *s;
    cr_assert_eq(choreo__q_prepare(st, sql, &s), SQLITE_OK, "%s", sql);
    cr_assert_eq(choreo__q_step(s), SQLITE_ROW, "%s", sql);
    long long n = choreo__q_int64(s, 0);
    choreo__q_finalize(s);
    return n;
}

#endif
