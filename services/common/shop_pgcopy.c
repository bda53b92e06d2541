/* A SQLite snapshot of a service's PostgreSQL database, so that the shop's
 * invariant checker and the chaos harness's audit, which join the services'
 * SQLite files, read a service on PostgreSQL the same way: every table of
 * the public schema, copied in one REPEATABLE READ transaction (one
 * consistent moment), integers as integers, bytea as blobs. */
#include "shop_pgcopy.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

bool shop_is_postgres_url(const char *db)
{
    return db && (strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0);
}

#ifndef SHOP_HAVE_PG

long shop_pg_count(const char *url, const char *sql)
{
    (void)url, (void)sql;
    return -1;
}

int shop_pg_snapshot(const char *url, const char *path, char *err, size_t cap)
{
    (void)path;
    snprintf(err, cap, "cannot read %s: this build has no PostgreSQL support (libpq)", url);
    return -1;
}

#else

#include <libpq-fe.h>

enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23 };

static bool is_int(Oid t)
{
    return t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL;
}

/* Copies the rows of res (all of table) into a new SQLite table. */
static int copy_table(sqlite3 *lite, const char *table, PGresult *res, char *err, size_t cap)
{
    int nf = PQnfields(res);
    char sql[4096];
    size_t n = (size_t)snprintf(sql, sizeof sql, "CREATE TABLE \"%s\" (", table);
    for (int f = 0; f < nf && n < sizeof sql; f++) {
        Oid t = PQftype(res, f);
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s\"%s\" %s", f ? ", " : "",
                              PQfname(res, f),
                              is_int(t) ? "INTEGER" : t == OID_BYTEA ? "BLOB" : "TEXT");
    }
    if (n + 2 >= sizeof sql) {
        snprintf(err, cap, "table %s has too many columns to copy", table);
        return -1;
    }
    snprintf(sql + n, sizeof sql - n, ")");
    if (sqlite3_exec(lite, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, cap, "copying %s: %s", table, sqlite3_errmsg(lite));
        return -1;
    }
    n = (size_t)snprintf(sql, sizeof sql, "INSERT INTO \"%s\" VALUES (", table);
    for (int f = 0; f < nf && n < sizeof sql; f++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?", f ? ", " : "");
    snprintf(sql + n, sizeof sql - n, ")");
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(lite, sql, -1, &ins, NULL) != SQLITE_OK) {
        snprintf(err, cap, "copying %s: %s", table, sqlite3_errmsg(lite));
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        sqlite3_reset(ins);
        for (int f = 0; f < nf; f++) {
            const char *v = PQgetvalue(res, r, f);
            Oid t = PQftype(res, f);
            if (PQgetisnull(res, r, f)) {
                sqlite3_bind_null(ins, f + 1);
            } else if (t == OID_BOOL) {
                sqlite3_bind_int64(ins, f + 1, v[0] == 't');
            } else if (is_int(t)) {
                sqlite3_bind_int64(ins, f + 1, strtoll(v, NULL, 10));
            } else if (t == OID_BYTEA) {
                size_t len = 0;
                unsigned char *b = PQunescapeBytea((const unsigned char *)v, &len);
                sqlite3_bind_blob(ins, f + 1, b ? b : (const unsigned char *)"", (int)len,
                                  SQLITE_TRANSIENT);
                PQfreemem(b);
            } else {
                sqlite3_bind_text(ins, f + 1, v, PQgetlength(res, r, f), SQLITE_TRANSIENT);
            }
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            snprintf(err, cap, "copying %s: %s", table, sqlite3_errmsg(lite));
            rc = -1;
        }
    }
    sqlite3_finalize(ins);
    return rc;
}

static int copy_all(PGconn *pg, sqlite3 *lite, char *err, size_t cap)
{
    PGresult *tables = PQexec(pg, "SELECT table_name FROM information_schema.tables"
                                  " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'");
    if (PQresultStatus(tables) != PGRES_TUPLES_OK) {
        snprintf(err, cap, "listing tables: %s", PQresultErrorMessage(tables));
        PQclear(tables);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(tables) && rc == 0; i++) {
        const char *table = PQgetvalue(tables, i, 0);
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", table);
        PGresult *res = PQexec(pg, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            snprintf(err, cap, "reading %s: %s", table, PQresultErrorMessage(res));
            rc = -1;
        } else {
            rc = copy_table(lite, table, res, err, cap);
        }
        PQclear(res);
    }
    PQclear(tables);
    return rc;
}

long shop_pg_count(const char *url, const char *sql)
{
    PGconn *pg = PQconnectdb(url);
    long n = -1;
    if (PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(pg);
    return n;
}

int shop_pg_snapshot(const char *url, const char *path, char *err, size_t cap)
{
    PGconn *pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK) {
        snprintf(err, cap, "cannot connect to %s:%s/%s: %s", PQhost(pg) ? PQhost(pg) : "?",
                 PQport(pg) ? PQport(pg) : "?", PQdb(pg) ? PQdb(pg) : "?", PQerrorMessage(pg));
        PQfinish(pg);
        return -1;
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    unlink(tmp);
    sqlite3 *lite = NULL;
    int rc = sqlite3_open(tmp, &lite) == SQLITE_OK ? 0 : -1;
    if (rc != 0)
        snprintf(err, cap, "cannot create %s: %s", tmp, sqlite3_errmsg(lite));
    PGresult *b = PQexec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    PQclear(b);
    if (rc == 0)
        rc = sqlite3_exec(lite, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN", NULL,
                          NULL, NULL) == SQLITE_OK ? 0 : -1;
    if (rc == 0)
        rc = copy_all(pg, lite, err, cap);
    if (rc == 0 && sqlite3_exec(lite, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, cap, "writing %s: %s", tmp, sqlite3_errmsg(lite));
        rc = -1;
    }
    PQclear(PQexec(pg, "COMMIT"));
    PQfinish(pg);
    sqlite3_close(lite);
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, cap, "cannot rename %s to %s", tmp, path);
        rc = -1;
    }
    if (rc != 0)
        unlink(tmp);
    return rc;
}

#endif
