/* libpq is loaded when a PostgreSQL database is first opened: a process
 * that only opens SQLite files never maps it, and a library that cannot be
 * loaded is refused with what to install. This program links no libpq. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pq.h"
#include "store.h"

/* Whether a library whose path contains name is mapped in this process. */
static bool mapped(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

Test(pq, a_sqlite_database_does_not_load_libpq_and_a_postgresql_url_does)
{
    char dir[] = "/tmp/choreo-pq-XXXXXX", path[300];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/svc.db", dir);
    cr_assert(!mapped("libpq"), "libpq mapped before any database was opened");
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "full", 1000), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(!mapped("libpq"), "opening a SQLite file loaded libpq");
    choreo__store_close(st);
    /* Nothing listens on port 1: the connect fails, after libpq loaded. */
    choreo_store *pg = NULL;
    choreo_status s = choreo__store_open(&pg, "postgresql://choreo@127.0.0.1:1/none", "full", 1000);
    cr_assert_eq(s, CHOREO_ESTORE, "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "cannot connect to the PostgreSQL database"),
              "%s", choreo_last_error());
    cr_assert(mapped(CHOREO_LIBPQ), "a postgresql:// URL did not load %s", CHOREO_LIBPQ);
    remove(path);
    rmdir(dir);
}

/* libpq quotes a URL it cannot read in its error, password and all: the
 * error choreo gives shows it without the user and password. Such a URL is
 * a setting to fix; a server that does not answer is one to wait for. */
Test(pq, a_url_libpq_cannot_read_is_shown_without_its_password)
{
    const char *urls[] = { "postgresql://u:s3cret@[::1]x/db", "postgresql://u:s3cret@[::1",
                           "postgresql://u:s3cret@127.0.0.1:1/db" };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        choreo_store *pg = NULL;
        bool readable = i == 2;
        cr_assert_eq(choreo__store_open(&pg, urls[i], "full", 1000),
                     readable ? CHOREO_ESTORE : CHOREO_ECONFIG, "%s", choreo_last_error());
        const char *why = choreo_last_error();
        cr_assert(strstr(why, readable ? "cannot connect to the PostgreSQL database postgresql://"
                                       : "the PostgreSQL URL postgresql://"),
                  "%s", why);
        cr_assert_null(strstr(why, "s3cret"), "%s", why);
        cr_assert_null(strstr(why, "postgresql://:"), "a garbled URL: %s", why);
    }
}

Test(pq, every_function_choreo_calls_is_found_in_the_installed_libpq)
{
    cr_assert_eq(choreo__pq_try(CHOREO_LIBPQ), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo__pq_load(), CHOREO_OK, "%s", choreo_last_error());
}

Test(pq, a_missing_client_library_is_refused_with_what_to_install)
{
    choreo_status s = choreo__pq_try("libpq-that-is-not-installed.so.5");
    cr_assert_eq(s, CHOREO_ECONFIG);
    const char *e = choreo_last_error();
    cr_assert(strstr(e, "libpq-that-is-not-installed.so.5"), "%s", e);
    cr_assert(strstr(e, "apt install libpq5"), "%s", e);
    cr_assert(strstr(e, "or use a SQLite file"), "%s", e);
    /* A library that loads but is not libpq lacks its functions. */
    s = choreo__pq_try("libc.so.6");
    cr_assert_eq(s, CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "has no function PQ"), "%s", choreo_last_error());
}
