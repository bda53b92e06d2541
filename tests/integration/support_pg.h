/* The integration tests' side door into a PostgreSQL database (run under
 * tests/pg/with-postgres, which starts a private server and exports its
 * URL as CHOREO_TEST_PG): SQL run directly, and one-number queries. */
#ifndef CHOREO_TEST_SUPPORT_PG_H
#define CHOREO_TEST_SUPPORT_PG_H

/* Runs sql on the database at url, asserting success. */
void support_pg_exec(const char *url, const char *sql);

/* The one number sql returns, or -1 (with the server's complaint logged). */
long long support_pg_count(const char *url, const char *sql);

#endif
