/* Opening a service database: pragmas and migrations. */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit_db.h"

Test(store, a_new_database_gets_the_current_schema)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(unit_db_count(st, UNIT_SCHEMA_VERSION), CHOREO_SCHEMA_VERSION);
#ifndef UNIT_PG
    sqlite3_stmt *s;
    sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s, NULL);
    sqlite3_step(s);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
#endif
    const char *tables[] = { "choreo_outbox", "choreo_inbox", "choreo_barrier", "choreo_dead",
                             "choreo_holds", "choreo_outbox_due", "choreo_barrier_age" };
    for (int i = 0; i < 7; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, UNIT_COUNT_NAMED " = '%s'", tables[i]);
        cr_assert_eq(unit_db_count(st, sql), 1, "%s missing", tables[i]);
    }
    choreo__store_close(st);
}

/* A database is named in logs and errors without the user and password of
 * its URL, also when the password holds a / or a ? that libpq would
 * misread (such a URL is then refused, naming it so). */
Test(store, a_database_is_shown_without_its_password)
{
    static const char *const cases[][2] = {
        { "postgresql://bob:S3cret@10.0.0.3:5432/pay?sslmode=require",
          "postgresql://10.0.0.3:5432/pay" },
        { "postgres://bob:Pa/ss?w0rd@10.0.0.3/pay", "postgresql://10.0.0.3/pay" },
        { "postgresql://bob:Pg@S3cret@10.0.0.3:1/shop", "postgresql://10.0.0.3:1/shop" },
        { "postgresql://10.0.0.3/pay", "postgresql://10.0.0.3/pay" },
        { "/var/lib/pay/pay.db", "/var/lib/pay/pay.db" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char shown[200];
        choreo__store_display(cases[i][0], shown, sizeof shown);
        cr_assert_str_eq(shown, cases[i][1], "%s", cases[i][0]);
    }
}

Test(store, reopening_keeps_rows_and_does_not_migrate_twice)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(choreo__store_exec(st, "CREATE TABLE biz(x INTEGER); INSERT INTO biz VALUES (1);"), CHOREO_OK);
    choreo__store_close(st);
    cr_assert_eq(choreo__store_open(&st, path, "full", 1000), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM biz"), 1);
    cr_assert_eq(unit_db_count(st, UNIT_SCHEMA_VERSION), CHOREO_SCHEMA_VERSION);
    choreo__store_close(st);
}

Test(store, a_database_from_a_newer_build_is_refused)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
#ifdef UNIT_PG
    cr_assert_eq(choreo__store_exec(st, "UPDATE choreo_schema SET version = 99"), CHOREO_OK);
#else
    cr_assert_eq(choreo__store_exec(st, "PRAGMA user_version = 99"), CHOREO_OK);
#endif
    choreo__store_close(st);
    st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "full", 1000), CHOREO_ESTORE);
    cr_assert_null(st);
    cr_assert(strstr(choreo_last_error(), "newer than this build"), "%s", choreo_last_error());
}

#ifdef UNIT_PG
Test(store, a_server_that_does_not_answer_gets_a_clear_error)
{
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, "postgresql://postgres@127.0.0.1:1/none", "full", 100),
                 CHOREO_ESTORE);
    cr_assert(strstr(choreo_last_error(), "cannot connect to the PostgreSQL database "
                                          "postgresql://127.0.0.1:1/none"),
              "%s", choreo_last_error());
}
#else
Test(store, an_unwritable_path_gets_a_clear_error)
{
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, "/nonexistent-dir/x.db", "full", 100), CHOREO_ESTORE);
    cr_assert(strstr(choreo_last_error(), "/nonexistent-dir/x.db"), "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "its directory does not exist"), "%s",
              choreo_last_error());
}

/* Opens path as the user nobody when running as root (as a test on a
 * fresh machine does), else as this user; the error's hint in why. */
static void open_as_other(const char *path, char *why, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);
        choreo_store *st = NULL;
        choreo_status s = choreo__store_open(&st, path, "full", 100);
        const char *e = s == CHOREO_OK ? "opened" : choreo_last_error();
        ssize_t w = write(fds[1], e, strlen(e));
        _exit(w < 0);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], why, cap - 1);
    why[n > 0 ? n : 0] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed: %s", why);
}

/* A database that cannot be opened says what to check: a directory given as
 * the file, a file this user may not read and write, a directory it may not
 * write (SQLite's -wal and -shm files go there). */
Test(store, an_unopenable_database_says_what_to_check)
{
    char dir[] = "/tmp/choreo-open-XXXXXX", path[300], why[1024];
    cr_assert_not_null(mkdtemp(dir));
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, dir, "full", 100), CHOREO_ESTORE);
    cr_assert(strstr(choreo_last_error(), "that is a directory"), "%s", choreo_last_error());

    snprintf(path, sizeof path, "%s/svc.db", dir);
    cr_assert_eq(choreo__store_open(&st, path, "full", 100), CHOREO_OK, "%s",
                 choreo_last_error());
    choreo__store_close(st);
    cr_assert_eq(chmod(dir, 0777), 0);
    cr_assert_eq(chmod(path, 0600), 0);
    if (geteuid() != 0)
        cr_assert_eq(chmod(path, 0), 0);
    open_as_other(path, why, sizeof why);
    cr_assert(strstr(why, "this user may not read and write the file"), "%s", why);

    cr_assert_eq(chmod(path, 0666), 0);
    cr_assert_eq(chmod(dir, geteuid() == 0 ? 0755 : 0555), 0);
    char wal[320], shm[320];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    remove(wal), remove(shm);
    open_as_other(path, why, sizeof why);
    cr_assert(strstr(why, "this user may not write its directory"), "%s", why);
    cr_assert_eq(chmod(dir, 0700), 0);
    remove(path), remove(wal), remove(shm);
    rmdir(dir);
}

#endif

Test(store, savepoints_roll_back_one_message_and_keep_the_others)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(choreo__store_exec(st, "CREATE TABLE biz(x INTEGER)"), CHOREO_OK);
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    cr_assert_eq(choreo__store_savepoint(st), CHOREO_OK);
    cr_assert_eq(choreo__store_exec(st, "INSERT INTO biz VALUES (1)"), CHOREO_OK);
    cr_assert_eq(choreo__store_release(st), CHOREO_OK);
    cr_assert_eq(choreo__store_savepoint(st), CHOREO_OK);
    cr_assert_eq(choreo__store_exec(st, "INSERT INTO biz VALUES (2)"), CHOREO_OK);
    cr_assert_eq(choreo__store_rollback_to(st), CHOREO_OK);
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM biz"), 1);
    cr_assert_eq(unit_db_count(st, "SELECT SUM(x) FROM biz"), 1);
    choreo__store_close(st);
}

Test(store, each_database_has_one_identity_of_its_own_that_stays)
{
    char p1[256], p2[256];
    choreo_store *a = unit_db_open(p1, sizeof p1), *b = unit_db_open(p2, sizeof p2);
    int64_t ia = 0, ib = 0, again = 0;
    cr_assert_eq(choreo__store_identity(a, &ia), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo__store_identity(b, &ib), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_gt(ia, 0);
    cr_assert_gt(ib, 0);
    cr_assert_neq(ia, ib);
    choreo__store_close(a);
    cr_assert_eq(choreo__store_open(&a, p1, "normal", 1000), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo__store_identity(a, &again), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(again, ia);
    cr_assert_eq(unit_db_count(a, "SELECT COUNT(*) FROM choreo_identity"), 1);
    /* Without its row a database says so rather than binding nothing. */
    cr_assert_eq(choreo__store_exec(a, "DELETE FROM choreo_identity"), CHOREO_OK);
    cr_assert_eq(choreo__store_identity(a, &again), CHOREO_ESTATE);
    cr_assert(strstr(choreo_last_error(), "no identity"), "%s", choreo_last_error());
    choreo__store_close(a);
    choreo__store_close(b);
}

#ifndef UNIT_PG /* SQLite files of every older schema version */
/* What each migration added, undone newest first to make an older file. */
static const char *const undo[] = {
    NULL,
    "DROP TABLE choreo_audit_emitted; DROP TABLE choreo_audit_applied;",
    "DROP INDEX choreo_outbox_due; DROP INDEX choreo_barrier_age;",
    "DROP TABLE choreo_consumers;",
    "DROP TABLE choreo_saga_instances; DROP TABLE choreo_saga_transitions;",
    "DROP TABLE choreo_holds;",
    "DROP TABLE choreo_retries;",
    "DROP INDEX choreo_dead_event;",
    "DROP TABLE choreo_identity;",
    "ALTER TABLE choreo_retries DROP COLUMN reason;",
    "ALTER TABLE choreo_inbox DROP COLUMN digest;",
};

Test(store, an_older_schema_is_migrated_forward)
{
    for (int from = 1; from < CHOREO_SCHEMA_VERSION; from++) {
        char path[256];
        choreo_store *st = unit_db_open(path, sizeof path);
        /* Turn the file back into a version `from` database, with rows. */
        for (int v = CHOREO_SCHEMA_VERSION - 1; v >= from; v--)
            cr_assert_eq(choreo__store_exec(st, undo[v]), CHOREO_OK, "%s", choreo_last_error());
        char sql[400];
        snprintf(sql, sizeof sql,
                 "PRAGMA user_version = %d;"
                 "INSERT INTO choreo_barrier VALUES ('s', 'reserve', 'action', 1);"
                 "INSERT INTO choreo_outbox(event_id, subject, headers, body, created_at,"
                 " publish_at) VALUES ('e', 'choreo.T.s', '', x'80', 1, 5);", from);
        cr_assert_eq(choreo__store_exec(st, sql), CHOREO_OK, "%s", choreo_last_error());
        choreo__store_close(st);
        cr_assert_eq(choreo__store_open(&st, path, "full", 1000), CHOREO_OK, "from %d: %s", from,
                     choreo_last_error());
        cr_assert_eq(unit_db_count(st, "PRAGMA user_version"), CHOREO_SCHEMA_VERSION);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_audit_applied"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                                       " ('choreo_outbox_due', 'choreo_barrier_age')"), 2,
                     "from %d: the version 3 indexes are missing", from);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_consumers"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_saga_instances"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_saga_transitions"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_holds"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_retries"), 0);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM pragma_table_info('choreo_retries')"
                                       " WHERE name = 'reason'"), 1,
                     "from %d: the version 10 column is missing", from);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM sqlite_master WHERE name ="
                                       " 'choreo_dead_event'"), 1,
                     "from %d: the version 8 index is missing", from);
        /* An identity of its own, one row. */
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_identity WHERE id > 0"), 1,
                     "from %d: no identity", from);
        cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_barrier"), 1);
        cr_assert_eq(unit_db_count(st, "SELECT MIN(publish_at) FROM choreo_outbox"
                                       " WHERE published_at IS NULL"), 5);
        choreo__store_close(st);
    }
}
#endif
