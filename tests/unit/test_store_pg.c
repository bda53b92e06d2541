/* What only the PostgreSQL store has: several connections (instances of a
 * service) on one database. Two instances claiming the same event in the
 * inbox, the relay's advisory lock, the NOTIFY a commit with outbox rows
 * sends, a connection the server dropped, a commit the server turned into
 * a rollback, and blobs with every byte value. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "inbox.h"
#include "outbox.h"
#include "unit_db.h"

static choreo_store *open_again(const char *path)
{
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "normal", 5000), CHOREO_OK, "%s",
                 choreo_last_error());
    return st;
}

struct racer {
    choreo_store *st;
    atomic_bool *first_done; /* set by the first instance just before it ends */
    bool fresh;
    int64_t retried;
    bool first_was_done;     /* first_done, as seen when the mark returned */
    choreo_status s;
};

static void *second_instance(void *arg)
{
    struct racer *r = arg;
    r->s = choreo__store_begin(r->st);
    if (r->s == CHOREO_OK)
        r->s = choreo__inbox_mark(r->st, "pay_OrderPlaced", "E1", 0, 1, &r->fresh, &r->retried,
                                  NULL);
    r->first_was_done = atomic_load(r->first_done);
    choreo__store_commit(r->st);
    return NULL;
}

/* Instance A holds an uncommitted mark; instance B's mark of the same event
 * waits for A's transaction and then sees A's outcome. */
static void race(bool first_commits)
{
    char path[256];
    choreo_store *a = unit_db_open(path, sizeof path);
    atomic_bool first_done = false;
    struct racer b = { .st = open_again(path), .first_done = &first_done };
    bool fresh = false;
    int64_t retried = 0;
    cr_assert_eq(choreo__store_begin(a), CHOREO_OK);
    cr_assert_eq(choreo__inbox_mark(a, "pay_OrderPlaced", "E1", 0, 1, &fresh, &retried, NULL),
                 CHOREO_OK);
    cr_assert(fresh);
    pthread_t t;
    pthread_create(&t, NULL, second_instance, &b);
    choreo__sleep_ms(300); /* B is now waiting on A's row */
    atomic_store(&first_done, true);
    if (first_commits)
        cr_assert_eq(choreo__store_commit(a), CHOREO_OK, "%s", choreo_last_error());
    else
        choreo__store_rollback(a);
    pthread_join(t, NULL);
    cr_assert_eq(b.s, CHOREO_OK, "%s", choreo_last_error());
    cr_assert(b.first_was_done, "the second mark returned before the first transaction ended");
    cr_assert_eq(b.fresh, !first_commits, "%s",
                 first_commits ? "both instances would apply the event"
                               : "the event would be applied by neither instance");
    cr_assert_eq(unit_db_count(a, "SELECT COUNT(*) FROM choreo_inbox"), 1);
    choreo__store_close(b.st);
    choreo__store_close(a);
}

Test(store_pg, a_second_instance_marking_the_same_event_waits_and_finds_it_taken)
{
    race(true);
}

Test(store_pg, a_second_instance_applies_the_event_when_the_first_rolls_back)
{
    race(false);
}

struct opener {
    const char *path;
    choreo_status s;
    char err[256];
};

static void *open_one(void *arg)
{
    struct opener *o = arg;
    choreo_store *st = NULL;
    o->s = choreo__store_open(&st, o->path, "normal", 10);
    snprintf(o->err, sizeof o->err, "%s", o->s == CHOREO_OK ? "" : choreo_last_error());
    choreo__store_close(st);
    return NULL;
}

/* Instances starting together all migrate a new database at once: one
 * does the work, the others wait for it (however short lock_timeout_ms is)
 * and find the schema done. */
Test(store_pg, instances_starting_together_migrate_a_new_database_once)
{
    char path[256];
    unit_db_path(path, sizeof path);
    struct opener o[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        o[i] = (struct opener){ .path = path };
        pthread_create(&t[i], NULL, open_one, &o[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(o[i].s, CHOREO_OK, "instance %d: %s", i, o[i].err);
    }
    choreo_store *st = open_again(path);
    cr_assert_eq(unit_db_count(st, UNIT_SCHEMA_VERSION), CHOREO_SCHEMA_VERSION);
    choreo__store_close(st);
}

/* A starting service waits for a server that is away (or restarting) up
 * to its wait, but not for one that answers and refuses: a wrong database
 * name fails at its second refusal, a quarter of a second later. */
Test(store_pg, opening_waits_for_a_server_that_is_away_not_for_one_that_refuses)
{
    choreo_store *st = NULL;
    int64_t began = choreo__mono_us();
    cr_assert_eq(choreo__store_open_wait(&st, "postgresql://postgres@127.0.0.1:1/x", "full", 10,
                                         1000, 0),
                 CHOREO_ESTORE);
    int64_t waited_ms = (choreo__mono_us() - began) / 1000;
    cr_assert_geq(waited_ms, 900, "gave up on a server that is away after %lld ms",
                  (long long)waited_ms);
    cr_assert(strstr(choreo_last_error(), "cannot connect to the PostgreSQL database"), "%s",
              choreo_last_error());
    char path[256];
    unit_db_path(path, sizeof path);
    char *slash = strrchr(path, '/');
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "no_such_database");
    began = choreo__mono_us();
    cr_assert_eq(choreo__store_open_wait(&st, path, "full", 10, 5000, 0), CHOREO_ESTORE);
    waited_ms = (choreo__mono_us() - began) / 1000;
    cr_assert_lt(waited_ms, 1000, "waited %lld ms for a database that does not exist",
                 (long long)waited_ms);
    /* TLS asked of a server without it: an answer, not an absence. */
    char tls[300];
    unit_db_path(path, sizeof path);
    snprintf(tls, sizeof tls, "%s?sslmode=require", path);
    began = choreo__mono_us();
    cr_assert_eq(choreo__store_open_wait(&st, tls, "full", 10, 5000, 0), CHOREO_ESTORE);
    waited_ms = (choreo__mono_us() - began) / 1000;
    cr_assert_lt(waited_ms, 2000, "waited %lld ms for a server without TLS",
                 (long long)waited_ms);
    cr_assert(strstr(choreo_last_error(), "does not support SSL"), "%s", choreo_last_error());
}

/* libpq would take what follows a password's @ for the host, and name it
 * in its errors: such a URL is refused before it is tried, without its
 * password. */
Test(store_pg, a_url_with_an_at_sign_in_its_password_is_refused_without_showing_it)
{
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open_wait(&st, "postgresql://bob:Pg@S3cret@127.0.0.1:1/shop",
                                         "full", 10, 5000, 0),
                 CHOREO_ECONFIG);
    cr_assert_null(strstr(choreo_last_error(), "S3cret"), "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "postgresql://127.0.0.1:1/shop") &&
                  strstr(choreo_last_error(), "holds a '@', where libpq would end it") &&
                  strstr(choreo_last_error(), "%40"),
              "%s", choreo_last_error());
    /* The same for a / or a ? in the password, and a bad percent escape,
     * which libpq quotes in its error. */
    static const char *const bad[][2] = {
        { "postgresql://bob:Pa/ss?w0rd@127.0.0.1:1/shop", "holds a '/'" },
        { "postgresql://bob:Pass?w0rd@127.0.0.1:1/shop", "holds a '?'" },
        { "postgresql://127.0.0.1:1/shop?user=bob&password=Secr%zzet", "not followed by two hex" },
        { "postgresql://bob@127.0.0.1:1/shop?options=-c%20lock_timeout%3D0", "sets options=" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(choreo__store_open_wait(&st, bad[i][0], "full", 10, 5000, 0), CHOREO_ECONFIG,
                     "%s", bad[i][0]);
        cr_assert(strstr(choreo_last_error(), bad[i][1]), "%s: %s", bad[i][0],
                  choreo_last_error());
        cr_assert_null(strstr(choreo_last_error(), "w0rd"), "%s", choreo_last_error());
        cr_assert_null(strstr(choreo_last_error(), "zzet"), "%s", choreo_last_error());
    }
}

/* A URL whose port or options libpq cannot use is a setting to fix, said
 * with libpq's reason, not a server to wait for. */
Test(store_pg, a_url_libpq_cannot_use_is_refused_at_once)
{
    static const char *const bad[][2] = {
        { "postgresql://127.0.0.1:99999/shop", "invalid port number" },
        { "postgresql://127.0.0.1:1,127.0.0.1:0/shop", "invalid port number" },
        { "postgresql://127.0.0.1:1/shop?sslmode=bogus", "invalid sslmode value" },
        { "postgresql://127.0.0.1:1/shop?colour=blue", "invalid URI query parameter" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        choreo_store *st = NULL;
        int64_t began = choreo__mono_us();
        cr_assert_eq(choreo__store_open_wait(&st, bad[i][0], "full", 10, 5000, 0), CHOREO_ECONFIG,
                     "%s: %s", bad[i][0], choreo_last_error());
        int64_t took_ms = (choreo__mono_us() - began) / 1000;
        cr_assert_lt(took_ms, 1000, "%s: waited %lld ms", bad[i][0], (long long)took_ms);
        cr_assert(strstr(choreo_last_error(), "cannot be used") &&
                      strstr(choreo_last_error(), bad[i][1]) &&
                      strstr(choreo_last_error(), "fix the URL"),
                  "%s: %s", bad[i][0], choreo_last_error());
    }
}

/* A server that takes the connection and never answers (a frozen one,
 * or something else on its port) fails the open after libpq's connect
 * timeout and db_wait_ms, instead of blocking it for ever. */
Test(store_pg, a_server_that_never_answers_fails_the_open_in_bounded_time, .timeout = 60)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 8), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/x", ntohs(a.sin_port));
    choreo_store *st = NULL;
    int64_t began = choreo__mono_us();
    cr_assert_eq(choreo__store_open_wait(&st, url, "full", 10, 1000, 0), CHOREO_ESTORE);
    int64_t took_ms = (choreo__mono_us() - began) / 1000;
    cr_assert_lt(took_ms, 20000, "the open took %lld ms", (long long)took_ms);
    cr_assert(strstr(choreo_last_error(), "cannot connect to the PostgreSQL database"), "%s",
              choreo_last_error());
    close(fd);
}

/* A user that may not create choreo's tables gets an error that says what
 * to grant. */
Test(store_pg, a_user_without_create_rights_is_told_what_to_grant)
{
    char path[256];
    unit_db_path(path, sizeof path);
    PGconn *c = PQconnectdb(getenv("CHOREO_TEST_PG"));
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "DROP ROLE IF EXISTS lowly; CREATE ROLE lowly LOGIN");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    /* postgresql://postgres@host:port/db becomes lowly@... */
    char url[300];
    const char *at = strchr(path, '@');
    cr_assert_not_null(at);
    snprintf(url, sizeof url, "postgresql://lowly%s", at);
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, url, "full", 1000), CHOREO_ESTORE);
    cr_assert(strstr(choreo_last_error(), "permission denied") &&
                  strstr(choreo_last_error(), "GRANT CREATE ON SCHEMA public TO the user"),
              "%s", choreo_last_error());
    cr_assert_null(strstr(choreo_last_error(), "code"), "%s", choreo_last_error());
}

Test(store_pg, one_relay_holds_the_advisory_lock_until_its_connection_ends)
{
    char path[256];
    choreo_store *a = unit_db_open(path, sizeof path);
    choreo_store *b = open_again(path);
    bool got = false;
    cr_assert_eq(choreo__store_try_lock(a, 42, &got), CHOREO_OK, "%s", choreo_last_error());
    cr_assert(got);
    cr_assert_eq(choreo__store_try_lock(b, 42, &got), CHOREO_OK);
    cr_assert_not(got, "two connections hold the relay lock");
    choreo__store_close(a);
    bool taken = false;
    for (int i = 0; i < 50 && !taken; i++) {
        cr_assert_eq(choreo__store_try_lock(b, 42, &taken), CHOREO_OK);
        if (!taken)
            choreo__sleep_ms(20);
    }
    cr_assert(taken, "the lock stayed with a closed connection");
    choreo__store_close(b);
}

static bool wait_notified(choreo_store *st, int ms)
{
    int64_t until = choreo__mono_us() + ms * 1000;
    while (choreo__mono_us() < until) {
        if (choreo__store_notified(st))
            return true;
        struct pollfd p = { .fd = choreo__store_socket(st), .events = POLLIN };
        poll(&p, 1, 20);
    }
    return choreo__store_notified(st);
}

static void insert(choreo_store *st, const char *id)
{
    choreo_outbox_row row = { .event_id = id, .subject = "choreo.T.s", .headers = "",
                              .body = (const uint8_t *)"\x80", .body_len = 1,
                              .created_us = 1, .publish_at = 1 };
    cr_assert_eq(choreo__outbox_insert(st, &row, NULL), CHOREO_OK, "%s", choreo_last_error());
}

Test(store_pg, a_commit_with_outbox_rows_notifies_the_listening_relay)
{
    char path[256];
    choreo_store *writer = unit_db_open(path, sizeof path);
    choreo_store *relay = open_again(path);
    cr_assert_eq(choreo__store_listen(relay, CHOREO_PG_OUTBOX_CHANNEL), CHOREO_OK);
    /* A transaction that wrote no outbox rows says nothing. */
    cr_assert_eq(choreo__store_begin(writer), CHOREO_OK);
    cr_assert_eq(choreo__store_exec(writer, "CREATE TABLE biz(x INTEGER)"), CHOREO_OK);
    cr_assert_eq(choreo__store_commit(writer), CHOREO_OK);
    cr_assert_not(wait_notified(relay, 200));
    /* Nor does one that rolls back. */
    cr_assert_eq(choreo__store_begin(writer), CHOREO_OK);
    insert(writer, "gone");
    choreo__store_note_outbox(writer);
    choreo__store_rollback(writer);
    cr_assert_not(wait_notified(relay, 200));
    cr_assert_eq(choreo__store_begin(writer), CHOREO_OK);
    insert(writer, "e1");
    choreo__store_note_outbox(writer);
    cr_assert_not(wait_notified(relay, 100), "notified before the commit");
    cr_assert_eq(choreo__store_commit(writer), CHOREO_OK);
    cr_assert(wait_notified(relay, 2000), "the commit did not wake the relay");
    choreo__store_close(relay);
    choreo__store_close(writer);
}

Test(store_pg, a_connection_the_server_dropped_fails_once_and_is_made_again)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    choreo_store *admin = open_again(path);
    long long pid = unit_db_count(st, "SELECT pg_backend_pid()");
    int session = choreo__store_session(st);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)::int", pid);
    cr_assert_eq(unit_db_count(admin, sql), 1);
    int64_t pending = 0;
    choreo__sleep_ms(100);
    cr_assert_neq(choreo__outbox_pending(st, &pending), CHOREO_OK,
                  "a statement on a dropped connection succeeded");
    cr_assert_eq(choreo__outbox_pending(st, &pending), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_neq(choreo__store_session(st), session, "the new session was not noted");
    /* with the session's settings of the first */
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid ="
                                   " pg_backend_pid() AND application_name = 'choreo'"), 1);
    cr_assert_eq(unit_db_count(st, "SELECT CASE WHEN current_setting('lock_timeout') = '1s'"
                                   " THEN 1 ELSE 0 END"), 1);
    choreo__store_close(admin);
    choreo__store_close(st);
}

/* Only the server's silence is waited out (a restart drops the
 * connection): its refusal (a missing table) is returned at once, where it
 * was retried for db_wait_ms as if the server were away. */
Test(store_pg, only_the_servers_silence_is_waited_out)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    choreo_store *admin = open_again(path);
    int64_t far = choreo__mono_us() + 60 * 1000000LL;
    cr_assert_eq(choreo__store_exec(st, "SELECT * FROM no_such_table"), CHOREO_ESTORE);
    cr_assert_not(choreo__store_retry_away(st, CHOREO_ESTORE, far),
                  "a refusal was taken for the server's absence");
    long long pid = unit_db_count(st, "SELECT pg_backend_pid()");
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)::int", pid);
    cr_assert_eq(unit_db_count(admin, sql), 1);
    choreo__sleep_ms(100);
    cr_assert_eq(choreo__store_exec(st, "SELECT 1"), CHOREO_ESTORE);
    cr_assert(choreo__store_retry_away(st, CHOREO_ESTORE, far),
              "a dropped connection was not waited out: %s", choreo_last_error());
    choreo__store_close(admin);
    choreo__store_close(st);
}

/* Another application's table named choreo_schema is not read as choreo's
 * version (which ran the wrong migrations): the open says what is in the
 * way. */
Test(store_pg, a_choreo_schema_table_of_another_application_is_refused)
{
    char path[256];
    unit_db_path(path, sizeof path);
    PGconn *c = PQconnectdb(path);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "CREATE TABLE choreo_schema (name text, version text);"
                            "INSERT INTO choreo_schema VALUES ('billing', '2.1')");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    choreo_store *st = NULL;
    cr_assert_eq(choreo__store_open(&st, path, "full", 1000), CHOREO_ESTORE);
    cr_assert(strstr(choreo_last_error(), "holds a table choreo_schema that is not choreo's") &&
                  strstr(choreo_last_error(), "name:text version:text"),
              "%s", choreo_last_error());
}

/* A batch whose connection the server dropped: the statements after the
 * drop run on a new connection, with no transaction open, and the commit
 * must fail rather than "commit" nothing (the batch is then redelivered). */
Test(store_pg, a_transaction_open_when_the_connection_dropped_does_not_commit)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    choreo_store *admin = open_again(path);
    long long pid = unit_db_count(st, "SELECT pg_backend_pid()");
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    insert(st, "lost");
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)::int", pid);
    cr_assert_eq(unit_db_count(admin, sql), 1);
    choreo__sleep_ms(100);
    bool fresh = false;
    int64_t retried = 0;
    cr_assert_neq(choreo__inbox_mark(st, "c", "E", 0, 1, &fresh, &retried, NULL),
                  CHOREO_OK); /* the drop */
    /* Nothing more of the transaction runs, not on a new connection either,
     * where it would commit on its own. */
    cr_assert_neq(choreo__inbox_mark(st, "c", "E2", 0, 1, &fresh, &retried, NULL), CHOREO_OK);
    cr_assert_neq(choreo__store_commit(st), CHOREO_OK, "a lost transaction committed");
    cr_assert(strstr(choreo_last_error(), "connection to the server was lost"), "%s",
              choreo_last_error());
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_outbox"), 0);
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_inbox"), 0);
    choreo__store_close(admin);
    choreo__store_close(st);
}

Test(store_pg, a_commit_after_a_failed_statement_is_a_failure)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    insert(st, "kept?");
    cr_assert_neq(choreo__store_exec(st, "SELECT * FROM no_such_table"), CHOREO_OK);
    cr_assert_neq(choreo__store_commit(st), CHOREO_OK, "COMMIT of an aborted transaction passed");
    cr_assert(strstr(choreo_last_error(), "rolled it back"), "%s", choreo_last_error());
    cr_assert_eq(unit_db_count(st, "SELECT COUNT(*) FROM choreo_outbox"), 0);
    /* The connection works on. */
    cr_assert_eq(choreo__store_begin(st), CHOREO_OK);
    insert(st, "e2");
    cr_assert_eq(choreo__store_commit(st), CHOREO_OK, "%s", choreo_last_error());
    choreo__store_close(st);
}

static bool first_body(const choreo_outbox_row *row, void *user)
{
    uint8_t *out = user;
    cr_assert_eq(row->body_len, 256);
    memcpy(out, row->body, 256);
    return false;
}

Test(store_pg, blobs_keep_every_byte_value)
{
    char path[256];
    choreo_store *st = unit_db_open(path, sizeof path);
    uint8_t body[256], back[256] = { 0 };
    for (int i = 0; i < 256; i++)
        body[i] = (uint8_t)i;
    choreo_outbox_row row = { .event_id = "b", .subject = "choreo.T.s", .headers = "h: 'q' ?",
                              .body = body, .body_len = sizeof body, .created_us = 1,
                              .publish_at = 1 };
    cr_assert_eq(choreo__outbox_insert(st, &row, NULL), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo__outbox_due(st, 10, 0, 5, first_body, back), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_arr_eq(body, back, sizeof body);
    choreo__store_close(st);
}
