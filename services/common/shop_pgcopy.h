/* Reading a shop service that keeps its database in PostgreSQL with the
 * tools written for SQLite files: a snapshot copy. */
#ifndef SHOP_PGCOPY_H
#define SHOP_PGCOPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* Whether db is a postgresql:// (or postgres://) URL. */
bool shop_is_postgres_url(const char *db);

/* Copies every table of the database at url (public schema) into a new
 * SQLite file at path, replacing it, as of one moment. Returns 0, or -1
 * with the reason in err. */
int shop_pg_snapshot(const char *url, const char *path, char *err, size_t cap);

/* The one number sql returns on the database at url; -1 when it cannot be
 * read. */
long shop_pg_count(const char *url, const char *sql);

#endif
