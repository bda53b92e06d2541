/* One process per database file: an exclusive lock on a file next to the
 * database, held for a service's whole life. */
#ifndef CHOREO_DBLOCK_H
#define CHOREO_DBLOCK_H

#include "choreo.h"

typedef struct choreo_dblock choreo_dblock;

/* Takes the lock of database db for service, without waiting: an exclusive
 * flock() on "<db>.lock", created if absent, into which the holder's pid,
 * service name and start time are written so that a refusal can name it.
 * Fails with CHOREO_ELOCKED, naming the holder, when another process (or
 * another service object of this process) holds it, and with
 * CHOREO_ESTORE when the lock file cannot be created. The kernel drops the
 * lock when its holder dies, however it dies, so a stale lock file never
 * blocks a restart. SQLite's own locks are untouched: other connections
 * and read-only tools open the database as before. In-memory databases
 * (":memory:" or "") need no lock; *out is then NULL. */
choreo_status choreo__dblock_acquire(choreo_dblock **out, const char *db, const char *service);

/* Releases the lock and sets *lk to NULL. NULL-safe. The lock file stays:
 * removing it would let two later processes lock two different files. */
void choreo__dblock_release(choreo_dblock **lk);

#endif
