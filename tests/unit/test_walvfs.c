/* The VFS that gathers a commit's WAL writes (walvfs.c), against real
 * files: what another connection reads, a process killed in the middle of
 * commits, and a write the kernel refuses. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "unit_db.h"

static void assert_intact(choreo_store *st)
{
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(st->db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
}

/* One transaction: row id with a blob of size bytes (its bytes are id). */
static int put(choreo_store *st, int id, int size)
{
    if (choreo__store_begin(st) != CHOREO_OK)
        return -1;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db, "INSERT INTO t(id, size, body) VALUES (?, ?, ?)", -1,
                                &s, NULL);
    unsigned char *body = malloc((size_t)size);
    memset(body, id & 0xff, (size_t)size);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(s, 1, id);
        sqlite3_bind_int(s, 2, size);
        sqlite3_bind_blob(s, 3, body, size, SQLITE_TRANSIENT);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(s);
    free(body);
    if (rc != SQLITE_OK || choreo__store_commit(st) != CHOREO_OK) {
        choreo__store_rollback(st);
        return -1;
    }
    return 0;
}

static void make_table(choreo_store *st)
{
    cr_assert_eq(choreo__store_exec(st, "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, "
                                        "size INTEGER NOT NULL, body BLOB NOT NULL)"),
                 CHOREO_OK, "%s", choreo_last_error());
}

/* A new database file at path holding the empty table t. */
static void new_table_db(char *path, size_t cap)
{
    choreo_store *st = unit_db_open(path, cap);
    make_table(st);
    choreo__store_close(st);
}

/* A child process with a pipe p to its parent (p[1] is the child's end). */
static pid_t fork_with_pipe(int p[2])
{
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    return pid;
}

/* Every row's blob has its size and holds only its id's low byte. */
static void assert_rows_whole(choreo_store *st)
{
    sqlite3_stmt *s = NULL;
    cr_assert_eq(sqlite3_prepare_v2(st->db, "SELECT id, size, body FROM t", -1, &s, NULL),
                 SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        int id = sqlite3_column_int(s, 0), size = sqlite3_column_int(s, 1);
        const unsigned char *b = sqlite3_column_blob(s, 2);
        cr_assert_eq(sqlite3_column_bytes(s, 2), size, "row %d has a blob of another size", id);
        for (int i = 0; i < size; i++)
            cr_assert_eq(b[i], id & 0xff, "row %d holds a byte of another row at %d", id, i);
    }
    sqlite3_finalize(s);
}

Test(walvfs, a_syncing_connection_uses_it_and_another_connection_reads_every_commit)
{
    char path[256];
    unit_db_path(path, sizeof path);
    choreo_store *w = NULL;
    cr_assert_eq(choreo__store_open(&w, path, "full", 1000), CHOREO_OK, "%s", choreo_last_error());
    make_table(w);
    char *name = NULL;
    cr_assert_eq(sqlite3_file_control(w->db, "main", SQLITE_FCNTL_VFSNAME, &name), SQLITE_OK);
    cr_assert(name && strncmp(name, "choreo-wal/", 11) == 0, "vfs is %s", name ? name : "?");
    sqlite3_free(name);
    choreo_store *r = NULL;
    cr_assert_eq(choreo__store_open(&r, path, "normal", 1000), CHOREO_OK, "%s",
                 choreo_last_error());
    /* Sizes from one row in a page to commits of several gathered writes. */
    const int sizes[] = { 10, 3000, 4096, 70000, 200000, 1, 130000, 500, 300000, 8 };
    sqlite3_int64 total = 0;
    for (int i = 0; i < 200; i++) {
        int size = sizes[i % 10];
        cr_assert_eq(put(w, i + 1, size), 0, "commit %d failed: %s", i + 1, choreo_last_error());
        total += size;
        cr_assert_eq(unit_db_count(r, "SELECT COUNT(*) FROM t"), i + 1);
        cr_assert_eq(unit_db_count(r, "SELECT SUM(size) FROM t"), total);
        if (i % 50 == 49)
            cr_assert_eq(choreo__store_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)"), CHOREO_OK);
    }
    /* A rolled-back transaction leaves nothing behind. */
    cr_assert_eq(choreo__store_begin(w), CHOREO_OK);
    cr_assert_eq(choreo__store_exec(w, "INSERT INTO t VALUES (100000, 1, x'00')"), CHOREO_OK);
    choreo__store_rollback(w);
    cr_assert_eq(unit_db_count(r, "SELECT COUNT(*) FROM t WHERE id = 100000"), 0);
    assert_rows_whole(r);
    assert_intact(r);
    choreo__store_close(r);
    choreo__store_close(w);
    cr_assert_eq(choreo__store_open(&r, path, "full", 1000), CHOREO_OK);
    cr_assert_eq(unit_db_count(r, "SELECT COUNT(*) FROM t"), 200);
    assert_intact(r);
    choreo__store_close(r);
}

/* The writer commits rows 1, 2, 3, ... and writes each id to fd after its
 * commit returned, until killed. */
static void write_until_killed(const char *path, int fd, int first)
{
    choreo_store *st = NULL;
    if (choreo__store_open(&st, path, "full", 5000) != CHOREO_OK)
        _exit(3);
    for (int id = first;; id++) {
        int size = 1 + (int)(((unsigned)id * 2654435761u) % 150000u);
        if (put(st, id, size) != 0)
            _exit(4);
        if (write(fd, &id, sizeof id) != sizeof id)
            _exit(5);
    }
}

Test(walvfs, a_process_killed_between_or_inside_commits_loses_no_commit_that_returned,
     .timeout = 120)
{
    char path[256];
    new_table_db(path, sizeof path);
    choreo_store *st = NULL;
    int next = 1;
    for (int round = 0; round < 12; round++) {
        int p[2];
        pid_t pid = fork_with_pipe(p);
        if (pid == 0) {
            close(p[0]);
            write_until_killed(path, p[1], next);
        }
        close(p[1]);
        struct timespec pause = { 0, (30 + 37 * round % 200) * 1000000L };
        nanosleep(&pause, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "the writer stopped by itself (exit %d)",
                  WEXITSTATUS(status));
        int id, last = next - 1;
        while (read(p[0], &id, sizeof id) == sizeof id)
            last = id;
        close(p[0]);
        cr_assert_eq(choreo__store_open(&st, path, "full", 5000), CHOREO_OK, "%s",
                     choreo_last_error());
        assert_intact(st);
        long long max = unit_db_count(st, "SELECT COALESCE(MAX(id), 0) FROM t");
        cr_assert_geq(max, last, "round %d: commit %d returned but row %lld is the last", round,
                      last, max);
        cr_assert_leq(max, last + 1, "round %d: more rows than commits begun", round);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM t"), max,
                     "round %d: a row is missing", round);
        assert_rows_whole(st);
        choreo__store_close(st);
        next = (int)max + 1;
    }
    cr_assert_gt(next, 12, "the writer committed almost nothing");
}

Test(walvfs, a_write_the_kernel_refuses_fails_the_commit_and_keeps_the_earlier_ones,
     .timeout = 60)
{
    char path[256];
    new_table_db(path, sizeof path);
    choreo_store *st = NULL;
    int p[2];
    pid_t pid = fork_with_pipe(p);
    if (pid == 0) {
        close(p[0]);
        /* Files may not grow past 2 MiB: a write beyond fails with EFBIG. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = { 2 << 20, 2 << 20 };
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(3);
        if (choreo__store_open(&st, path, "full", 5000) != CHOREO_OK)
            _exit(4);
        int id = 1;
        for (; id < 1000; id++) {
            if (put(st, id, 20000) != 0)
                break;
            if (write(p[1], &id, sizeof id) != sizeof id)
                _exit(5);
        }
        if (id == 1000)
            _exit(6); /* never refused */
        /* The connection still works for what fits. */
        choreo__store_close(st);
        _exit(0);
    }
    close(p[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    int id, last = 0;
    while (read(p[0], &id, sizeof id) == sizeof id)
        last = id;
    close(p[0]);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer ended with status %d",
              status);
    cr_assert_gt(last, 10, "too few commits before the limit: %d", last);
    cr_assert_eq(choreo__store_open(&st, path, "full", 5000), CHOREO_OK, "%s",
                 choreo_last_error());
    assert_intact(st);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM t"), last);
    cr_assert_eq(unit_db_count(st, "SELECT MAX(id) FROM t"), last);
    assert_rows_whole(st);
    choreo__store_close(st);
}
