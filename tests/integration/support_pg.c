/* See support_pg.h. */
#include "support_pg.h"

#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdlib.h>

void support_pg_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

long long support_pg_count(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    long long n = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = atoll(PQgetvalue(r, 0, 0));
    else
        cr_log_warn("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return n;
}
