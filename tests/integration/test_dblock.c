/* One process per database file: while a service runs, a second process on
 * its database fails at start with a message naming the database and the
 * running process, read-only tools still open it, and once the first
 * process is killed (its lock file left behind) a new one starts. The shop
 * services, whose paths come from SHOP_* variables set by meson, exit
 * non-zero with that message. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"


static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Waits up to timeout_ms for a byte on fd; true when one came. */
static bool wait_byte(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    return poll(&p, 1, timeout_ms) == 1 && read(fd, &c, 1) == 1;
}

/* A service process on dir/order.db that starts, says so on ready_fd, and
 * runs until killed. */
static pid_t spawn_running(const char *dir, const char *url, int ready_fd)
{
    pid_t pid = support_fork();
    if (pid == 0) {
        choreo_config *cfg = support_config(dir, "order", url, NULL);
        choreo_service *svc = NULL;
        if (choreo_service_create(&svc, cfg) != CHOREO_OK || choreo_service_start(svc) != CHOREO_OK)
            _exit(3);
        if (write(ready_fd, "r", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    return pid;
}

/* What a service's main does when it cannot create its service: print the
 * reason on stderr (into dir/second.err) and exit 1. Returns the exit
 * status. */
static int second_process(const char *dir, const char *url, char *err, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/second.err", dir);
    pid_t pid = support_fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(5);
        choreo_config *cfg = support_config(dir, "order", url, NULL);
        choreo_service *svc = NULL;
        choreo_status s = choreo_service_create(&svc, cfg);
        if (s != CHOREO_OK) {
            fprintf(stderr, "%s: %s\n", choreo_status_str(s), choreo_last_error());
            _exit(1);
        }
        choreo_service_destroy(svc);
        _exit(0);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    slurp(path, err, cap);
    cr_assert(WIFEXITED(status), "the second process died by a signal");
    return WEXITSTATUS(status);
}

Test(dblock, a_second_process_is_refused_until_the_first_is_killed, .timeout = 60)
{
    char dir[256], db[600], lock[700], want[800], err[4096], text[512];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(db, sizeof db, "%s/order.db", dir);
    snprintf(lock, sizeof lock, "%s.lock", db);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);

    pid_t first = spawn_running(dir, server.url, ready[1]);
    cr_assert(wait_byte(ready[0], 20000), "the first service did not start");
    cr_assert_eq(second_process(dir, server.url, err, sizeof err), 1,
                 "a second process on %s was not refused: %s", db, err);
    snprintf(want, sizeof want, "database %s is in use by service order (pid %ld, started ", db,
             (long)first);
    cr_assert(strstr(err, want), "the refusal does not name the holder: %s", err);
    cr_assert(strstr(err, "service already running in another process: "), "%s", err);
    cr_assert(strstr(err, "one process per database file"), "%s", err);

    /* Read-only tools are not refused: SQL and choreoctl's admin API. */
    cr_assert_eq(support_count(dir, "order", "SELECT COUNT(*) FROM choreo_dead"), 0);
    choreo_config *cfg = support_config(dir, "order", server.url, NULL);
    choreo_admin *adm = NULL;
    cr_assert_eq(choreo_admin_open(&adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_dead_entry *list = NULL;
    size_t n = 1;
    cr_assert_eq(choreo_admin_dead_list(adm, NULL, &list, &n), CHOREO_OK, "%s",
                 choreo_last_error());
    cr_assert_eq(n, 0);
    free(list);
    choreo_admin_close(adm);
    choreo_config_destroy(cfg);

    /* Killed without any chance to clean up: the lock file stays and still
     * names the dead process, but the kernel released the lock. */
    cr_assert_eq(kill(first, SIGKILL), 0);
    cr_assert_eq(waitpid(first, NULL, 0), first);
    slurp(lock, text, sizeof text);
    char pid_line[32];
    snprintf(pid_line, sizeof pid_line, "pid=%ld\n", (long)first);
    cr_assert(strstr(text, pid_line), "the lock file does not name the killed process: %s", text);

    pid_t next = spawn_running(dir, server.url, ready[1]);
    cr_assert(wait_byte(ready[0], 20000), "a new service did not start after a SIGKILL");
    slurp(lock, text, sizeof text);
    snprintf(pid_line, sizeof pid_line, "pid=%ld\n", (long)next);
    cr_assert(strstr(text, pid_line) && strstr(text, "service=order\n"),
              "the lock file does not name the new holder: %s", text);
    cr_assert_eq(kill(next, SIGKILL), 0);
    cr_assert_eq(waitpid(next, NULL, 0), next);
    close(ready[0]);
    close(ready[1]);
    natsd_stop(&server, SIGTERM);
}

Test(dblock, two_services_of_one_process_cannot_share_a_database_and_destroy_releases_it)
{
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    choreo_config *cfg = support_config(dir, "order", "nats://127.0.0.1:1", NULL);
    choreo_service *a = support_service(cfg), *b = NULL;
    cr_assert_eq(choreo_service_create(&b, cfg), CHOREO_ELOCKED);
    cr_assert_null(b);
    char want[100];
    snprintf(want, sizeof want, "service order (pid %ld, started ", (long)getpid());
    cr_assert(strstr(choreo_last_error(), want), "%s", choreo_last_error());
    choreo_service_destroy(a);
    b = support_service(cfg);
    choreo_service_destroy(b);
    choreo_config_destroy(cfg);
}

/* A directory given as the database is refused by name, and no lock file
 * is left beside it. */
Test(dblock, a_directory_given_as_the_database_is_refused_without_a_lock_file)
{
    char dir[256], db[300], lock[310];
    support_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/data", dir);
    cr_assert_eq(mkdir(db, 0700), 0);
    choreo_config *cfg = NULL;
    cr_assert_eq(choreo_config_create(&cfg), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "service", "order"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    choreo_service *svc = NULL;
    cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_ECONFIG);
    cr_assert_null(svc);
    cr_assert(strstr(choreo_last_error(), "is a directory"), "%s", choreo_last_error());
    snprintf(lock, sizeof lock, "%s.lock", db);
    cr_assert_neq(access(lock, F_OK), 0, "a lock file was left at %s", lock);
    choreo_config_destroy(cfg);
}

/* Runs a program with its stderr in err; CHOREO_* variables of the test's
 * environment are not passed on. Returns its exit status. */
static int run(const char *dir, char *const argv[], char *err, size_t cap)
{
    char err_path[600];
    snprintf(err_path, sizeof err_path, "%s/run.err", dir);
    char *envp[256];
    support_env_without_choreo(envp, 256);
    posix_spawn_file_actions_t fa;
    cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
    cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                                  O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s", argv[0], strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        cr_assert_eq(errno, EINTR);
    slurp(err_path, err, cap);
    cr_assert(WIFEXITED(st), "%s died by signal %d; stderr: %s", argv[0],
              WIFSIGNALED(st) ? WTERMSIG(st) : 0, err);
    return WEXITSTATUS(st);
}

Test(dblock, the_shop_services_exit_non_zero_when_their_database_is_taken, .timeout = 60)
{
    static const struct {
        const char *name, *env;
    } shop[] = {
        { "order", "SHOP_ORDER" },
        { "inventory", "SHOP_INVENTORY" },
        { "payment", "SHOP_PAYMENT" },
        { "points", "SHOP_POINTS" },
    };
    char dir[256];
    support_tmpdir(dir, sizeof dir);
    for (size_t i = 0; i < sizeof shop / sizeof shop[0]; i++) {
        const char *bin = getenv(shop[i].env);
        cr_assert(bin && *bin, "%s is not set: run this test through meson test", shop[i].env);
        /* This process holds the database, as a running service would. */
        choreo_config *cfg = support_config(dir, shop[i].name, "nats://127.0.0.1:1", NULL);
        choreo_service *holder = support_service(cfg);
        choreo_config_destroy(cfg);
        char db[600], err[4096], want[800];
        snprintf(db, sizeof db, "%s/%s.db", dir, shop[i].name);
        /* Without the lock it would run, fail to reach NATS within a
         * second, and exit non-zero with another message. */
        char *argv[] = { (char *)bin, "--db", db, "--nats-url", "nats://127.0.0.1:1",
                         "--connect-wait-ms", "1000", NULL };
        int status = run(dir, argv, err, sizeof err);
        cr_assert_neq(status, 0, "shop-%s started on a database in use: %s", shop[i].name, err);
        snprintf(want, sizeof want, "shop-%s: database %s is in use by service %s (pid %ld, ",
                 shop[i].name, db, shop[i].name, (long)getpid());
        cr_assert(strstr(err, want), "shop-%s: %s", shop[i].name, err);
        choreo_service_destroy(holder);
    }
}

/* A database choreo creates is readable by its owner only, and so are its
 * WAL files; one made by someone else keeps its mode, with a warning. */
Test(dblock, a_new_database_is_private_and_an_open_one_is_reported, .timeout = 60)
{
    char dir[256], path[600], log[600], text[8192];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    umask(022);
    choreo_config *cfg = support_config(dir, "private", server.url, NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Hello", "s1", 1, NULL);
    static const char *const files[] = { "private.db", "private.db-wal", "private.db-shm" };
    for (size_t i = 0; i < 3; i++) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(st.st_mode & 0777, 0600, "%s has mode %o", files[i], st.st_mode & 0777);
    }
    choreo_service_destroy(svc);

    /* Made by a tool with the usual umask: readable by everyone. */
    support_exec(dir, "shared", "CREATE TABLE t(x)");
    snprintf(path, sizeof path, "%s/shared.db", dir);
    chmod(path, 0644);
    snprintf(log, sizeof log, "%s/shared.log", dir);
    int saved = support_stderr_to(log);
    cfg = support_config(dir, "shared", server.url, "log_level=warn", NULL);
    svc = support_service(cfg);
    choreo_config_destroy(cfg);
    support_stderr_back(saved);
    slurp(log, text, sizeof text);
    cr_assert(strstr(text, "the database is open to other users") && strstr(text, "mode=0644"),
              "%s", text);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644, "choreo changed the mode of a file it did not create");
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

/* Another name for the database, by a symbolic link to the file or to a
 * directory on its way, leads to the same lock: a second service object on
 * it is refused (as a second process would be), also for a database the
 * first has not written yet. */
Test(dblock, a_database_named_through_a_symbolic_link_takes_the_same_lock)
{
    char dir[256], db[300], alias[300], lndir[300], via[320], fresh[320], fresh_via[330];
    support_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/order.db", dir);
    snprintf(alias, sizeof alias, "%s/alias.db", dir);
    snprintf(lndir, sizeof lndir, "%s/ln", dir);
    snprintf(via, sizeof via, "%s/order.db", lndir);
    cr_assert_eq(symlink("order.db", alias), 0);
    cr_assert_eq(symlink(".", lndir), 0);
    choreo_config *cfg = support_config(dir, "order", "nats://127.0.0.1:1", NULL);
    choreo_service *a = support_service(cfg);
    const char *names[] = { alias, via };
    for (int i = 0; i < 2; i++) {
        choreo_config *other = support_config(dir, "inventory", "nats://127.0.0.1:1", NULL);
        cr_assert_eq(choreo_config_set(other, "db", names[i]), CHOREO_OK);
        choreo_service *b = NULL;
        cr_assert_eq(choreo_service_create(&b, other), CHOREO_ELOCKED, "%s: %s", names[i],
                     choreo_last_error());
        cr_assert(strstr(choreo_last_error(), "in use by service order"), "%s",
                  choreo_last_error());
        choreo_config_destroy(other);
    }
    choreo_service_destroy(a);

    /* Not made yet: placed by its directory's real path. */
    snprintf(fresh, sizeof fresh, "%s/fresh.db", dir);
    snprintf(fresh_via, sizeof fresh_via, "%s/fresh.db", lndir);
    unlink(fresh);
    cr_assert_eq(choreo_config_set(cfg, "db", fresh_via), CHOREO_OK);
    a = support_service(cfg);
    choreo_config *other = support_config(dir, "inventory", "nats://127.0.0.1:1", NULL);
    cr_assert_eq(choreo_config_set(other, "db", fresh), CHOREO_OK);
    choreo_service *b = NULL;
    cr_assert_eq(choreo_service_create(&b, other), CHOREO_ELOCKED, "%s", choreo_last_error());
    choreo_config_destroy(other);
    choreo_service_destroy(a);
    choreo_config_destroy(cfg);
}

/* A database with a second name by a hard link is refused: SQLite would
 * keep a journal per name, and a lock per name would let two processes in. */
Test(dblock, a_database_with_a_hard_link_is_refused_by_name)
{
    char dir[256], db[300], hard[300];
    support_tmpdir(dir, sizeof dir);
    snprintf(db, sizeof db, "%s/order.db", dir);
    snprintf(hard, sizeof hard, "%s/hard.db", dir);
    choreo_config *cfg = support_config(dir, "order", "nats://127.0.0.1:1", NULL);
    choreo_service_destroy(support_service(cfg));
    cr_assert_eq(link(db, hard), 0);
    const char *names[] = { db, hard };
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(choreo_config_set(cfg, "db", names[i]), CHOREO_OK);
        choreo_service *svc = NULL;
        cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_ECONFIG, "%s", names[i]);
        cr_assert(strstr(choreo_last_error(), "has 2 names (hard links)") &&
                      strstr(choreo_last_error(), names[i]),
                  "%s", choreo_last_error());
    }
    cr_assert_eq(unlink(hard), 0);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    choreo_service_destroy(support_service(cfg));
    choreo_config_destroy(cfg);
}

static choreo_result ignore(choreo_tx *tx, const choreo_event *ev, void *user)
{
    (void)tx, (void)ev, (void)user;
    return CHOREO_DONE;
}

/* A service started on another service's database (a mistyped db setting)
 * is refused at start, naming the owner and how to rename a service, and
 * the owner's record stays; after the documented removal it starts. */
Test(dblock, a_service_is_refused_on_another_services_database, .timeout = 60)
{
    char dir[256], db[300];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    snprintf(db, sizeof db, "%s/inventory.db", dir);
    choreo_config *owner = support_config(dir, "inventory", server.url, NULL);
    choreo_service *svc = support_service(owner);
    cr_assert_eq(choreo_service_on(svc, "OrderCreated", ignore, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_stop(svc);
    cr_assert_eq(choreo_service_wait(svc), CHOREO_OK);
    choreo_service_destroy(svc);

    choreo_config *cfg = support_config(dir, "order", server.url, NULL);
    cr_assert_eq(choreo_config_set(cfg, "db", db), CHOREO_OK);
    svc = support_service(cfg);
    cr_assert_eq(choreo_service_on(svc, "StockReserved", ignore, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_ECONFIG, "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "belongs to service inventory") &&
                  strstr(choreo_last_error(), "DELETE FROM choreo_consumers WHERE service = "
                                              "'inventory'"),
              "%s", choreo_last_error());
    choreo_service_destroy(svc);
    cr_assert_eq(support_count(dir, "inventory",
                               "SELECT COUNT(*) FROM choreo_consumers WHERE service = 'inventory'"),
                 1);
    cr_assert_eq(support_count(dir, "inventory",
                               "SELECT COUNT(*) FROM choreo_consumers WHERE service = 'order'"),
                 0);

    support_exec(dir, "inventory", "DELETE FROM choreo_consumers WHERE service = 'inventory'");
    svc = support_service(cfg);
    cr_assert_eq(choreo_service_on(svc, "StockReserved", ignore, NULL), CHOREO_OK);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_stop(svc);
    cr_assert_eq(choreo_service_wait(svc), CHOREO_OK);
    choreo_service_destroy(svc);
    choreo_config_destroy(cfg);
    choreo_config_destroy(owner);
    natsd_stop(&server, SIGTERM);
}
