/* A SQLite VFS that writes a commit's WAL frames in one write: see walvfs.c. */
#ifndef CHOREO_WALVFS_H
#define CHOREO_WALVFS_H

#include <sqlite3.h>
#include <stdbool.h>

#define CHOREO_WAL_VFS "choreo-wal"

/* Registers the VFS (once, not as the default) over the default VFS.
 * Returns whether it can be used; when not, open with the default VFS. Only
 * for connections with synchronous=FULL or EXTRA. Any thread. */
bool choreo__walvfs_ready(void);

#endif
