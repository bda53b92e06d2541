/* A SQLite VFS over the default one that gathers a connection's writes to
 * its WAL file and sends them to the file in one write when they must be
 * there: SQLite writes each WAL frame in two calls (its 24-byte header, then
 * the page), so a commit of a dozen pages was two dozen pwrite(2)s, and a
 * system call is dear on a virtual machine.
 *
 * Only connections with synchronous=FULL or EXTRA use it (CHOREO_WAL_VFS):
 * they sync the WAL at every commit before its header is published in the
 * wal-index, so the gathered frames are written, and a failed write is
 * reported (by xSync, as SQLite reports a failed sync), before any reader can
 * know of them. Every other call on the WAL file (read, size, truncate,
 * lock, close) and the main file's shared-memory barrier and locks write
 * what is gathered first, so nothing in the file is ever older than what
 * SQLite believes it wrote, except the frames of a commit still in progress.
 * A crash loses those, as it loses a commit whose writes had not all been
 * made. The other files (the database, its journal) are passed through.
 *
 * State: one struct wfile per open file, used by the one connection (and
 * thread) that opened it. A main file knows its WAL file while both are
 * open (wal), found through sqlite3_database_file_object. */
#include "walvfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The most a WAL file gathers before it writes: a commit larger than this
 * is written in several pieces of about this size. The unix VFS writes at
 * most 128 KiB - 1 in one call (and reports a longer write as a full disk). */
#define GATHER_MAX (64 * 1024)

struct wfile {
    sqlite3_file base;
    struct wfile *wal;  /* main file: its WAL file while open */
    struct wfile *main; /* WAL file: its main file */
    bool is_wal;
    unsigned char *buf; /* GATHER_MAX bytes, allocated by the first write */
    size_t len;
    sqlite3_int64 at; /* file offset of buf[0] */
    sqlite3_file *real; /* the default VFS's file, after this struct */
};

static sqlite3_vfs vfs;
static sqlite3_vfs *below;
/* methods[v - 1] has the methods of version v, as the file below has:
 * SQLite reads iVersion to know which shared-memory and fetch methods it
 * may call. */
static sqlite3_io_methods methods[3];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int registered = SQLITE_ERROR;

static int flush(struct wfile *f)
{
    if (f == NULL || f->len == 0)
        return SQLITE_OK;
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    f->len = 0;
    return rc;
}

static int w_close(sqlite3_file *file)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    if (f->main && f->main->wal == f)
        f->main->wal = NULL;
    if (f->wal)
        f->wal->main = NULL;
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    free(f->buf);
    f->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int w_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    struct wfile *f = (struct wfile *)file;
    if (!f->is_wal)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->len > 0 && (off != f->at + (sqlite3_int64)f->len || f->len + (size_t)amt > GATHER_MAX)) {
        int rc = flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (f->buf == NULL)
        f->buf = malloc(GATHER_MAX);
    if (f->buf == NULL || (size_t)amt > GATHER_MAX)
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->len == 0)
        f->at = off;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    return SQLITE_OK;
}

static int w_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int w_sync(sqlite3_file *file, int flags)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int w_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int w_lock(sqlite3_file *file, int level)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int w_unlock(sqlite3_file *file, int level)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int w_check_reserved(sqlite3_file *file, int *out)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int w_file_control(sqlite3_file *file, int op, void *arg)
{
    struct wfile *f = (struct wfile *)file;
    if (op == SQLITE_FCNTL_VFSNAME) {
        /* As other shims do: say this VFS's name before the one below. */
        int rc = f->real->pMethods->xFileControl(f->real, op, arg);
        if (rc == SQLITE_OK) {
            char *under = *(char **)arg;
            *(char **)arg = sqlite3_mprintf("%s/%s", vfs.zName, under ? under : "");
            sqlite3_free(under);
        }
        return rc;
    }
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int w_sector_size(sqlite3_file *file)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int w_device_characteristics(sqlite3_file *file)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int w_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

/* The wal-index header of a commit is published around this barrier, and
 * its locks taken and given up: the WAL's gathered writes go first. */
static int w_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f->wal);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void w_shm_barrier(sqlite3_file *file)
{
    struct wfile *f = (struct wfile *)file;
    /* Under FULL and EXTRA the commit's xSync wrote everything already. A
     * write that fails here could not be reported, and the header about to
     * be published would name frames the file does not hold: stopping is
     * safer, as recovery at the next open drops a commit whose frames are
     * not all there. */
    if (flush(f->wal) != SQLITE_OK)
        abort();
    f->real->pMethods->xShmBarrier(f->real);
}

static int w_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int w_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    struct wfile *f = (struct wfile *)file;
    int rc = flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int w_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct wfile *f = (struct wfile *)file;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static bool is_ours(const sqlite3_file *file)
{
    return file->pMethods >= &methods[0] && file->pMethods <= &methods[2];
}

static int w_open(sqlite3_vfs *v, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)v;
    struct wfile *f = (struct wfile *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = below->xOpen(below, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || f->real->pMethods == NULL) {
        f->base.pMethods = NULL;
        return rc;
    }
    int version = f->real->pMethods->iVersion;
    f->base.pMethods = &methods[version < 1 ? 0 : version > 3 ? 2 : version - 1];
    if ((flags & SQLITE_OPEN_WAL) && name) {
        f->is_wal = true;
        f->main = (struct wfile *)sqlite3_database_file_object(name);
        if (f->main && is_ours(&f->main->base))
            f->main->wal = f;
        else
            f->main = NULL;
    }
    return SQLITE_OK;
}

static int w_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
    (void)v;
    return below->xDelete(below, name, sync_dir);
}

static int w_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    (void)v;
    return below->xAccess(below, name, flags, out);
}

static int w_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    (void)v;
    return below->xFullPathname(below, name, n, out);
}

static void *w_dl_open(sqlite3_vfs *v, const char *name)
{
    (void)v;
    return below->xDlOpen(below, name);
}

static void w_dl_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    below->xDlError(below, n, out);
}

static void (*w_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
    (void)v;
    return below->xDlSym(below, h, sym);
}

static void w_dl_close(sqlite3_vfs *v, void *h)
{
    (void)v;
    below->xDlClose(below, h);
}

static int w_randomness(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return below->xRandomness(below, n, out);
}

static int w_sleep(sqlite3_vfs *v, int us)
{
    (void)v;
    return below->xSleep(below, us);
}

static int w_current_time(sqlite3_vfs *v, double *out)
{
    (void)v;
    return below->xCurrentTime(below, out);
}

static int w_last_error(sqlite3_vfs *v, int n, char *out)
{
    (void)v;
    return below->xGetLastError ? below->xGetLastError(below, n, out) : 0;
}

static int w_current_time_int64(sqlite3_vfs *v, sqlite3_int64 *out)
{
    (void)v;
    return below->xCurrentTimeInt64(below, out);
}

static void register_once(void)
{
    below = sqlite3_vfs_find(NULL);
    if (!below || below->iVersion < 2 || !below->xCurrentTimeInt64)
        return;
    methods[2] = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = w_close,
        .xRead = w_read,
        .xWrite = w_write,
        .xTruncate = w_truncate,
        .xSync = w_sync,
        .xFileSize = w_file_size,
        .xLock = w_lock,
        .xUnlock = w_unlock,
        .xCheckReservedLock = w_check_reserved,
        .xFileControl = w_file_control,
        .xSectorSize = w_sector_size,
        .xDeviceCharacteristics = w_device_characteristics,
        .xShmMap = w_shm_map,
        .xShmLock = w_shm_lock,
        .xShmBarrier = w_shm_barrier,
        .xShmUnmap = w_shm_unmap,
        .xFetch = w_fetch,
        .xUnfetch = w_unfetch,
    };
    methods[1] = methods[2];
    methods[1].iVersion = 2;
    methods[1].xFetch = NULL;
    methods[1].xUnfetch = NULL;
    methods[0] = methods[1];
    methods[0].iVersion = 1;
    methods[0].xShmMap = NULL;
    methods[0].xShmLock = NULL;
    methods[0].xShmBarrier = NULL;
    methods[0].xShmUnmap = NULL;
    vfs = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(struct wfile) + below->szOsFile,
        .mxPathname = below->mxPathname,
        .zName = CHOREO_WAL_VFS,
        .xOpen = w_open,
        .xDelete = w_delete,
        .xAccess = w_access,
        .xFullPathname = w_full_pathname,
        .xDlOpen = w_dl_open,
        .xDlError = w_dl_error,
        .xDlSym = w_dl_sym,
        .xDlClose = w_dl_close,
        .xRandomness = w_randomness,
        .xSleep = w_sleep,
        .xCurrentTime = w_current_time,
        .xGetLastError = w_last_error,
        .xCurrentTimeInt64 = w_current_time_int64,
    };
    registered = sqlite3_vfs_register(&vfs, 0);
}

bool choreo__walvfs_ready(void)
{
    pthread_once(&once, register_once);
    return registered == SQLITE_OK;
}
