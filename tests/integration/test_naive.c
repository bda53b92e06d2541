/* delivery=naive, the labelled demonstration mode, really shows the two
 * failures choreo exists to prevent: an event lost when the process dies
 * between commit and publish, and an event applied twice when it dies
 * between commit and ack. (The same crashes with the default delivery are
 * in test_pipeline.c and lose and double nothing.) */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

static choreo_result apply(choreo_tx *tx, const choreo_event *ev, void *user)
{
    return sqlite3_exec(choreo_tx_db(tx), "INSERT INTO applied(x) VALUES (1)", NULL, NULL, NULL) ==
                   SQLITE_OK
               ? CHOREO_DONE
               : CHOREO_RETRY;
}

static choreo_service *naive_service(const char *dir, const char *name, const char *url,
                                     bool consumer)
{
    choreo_config *cfg = support_config(dir, name, url, "delivery=naive", "log_level=error",
                                        "audit=on", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    if (consumer)
        cr_assert_eq(choreo_service_on(svc, "Job", apply, NULL), CHOREO_OK);
    return svc;
}

static void wait_child_killed(pid_t child)
{
    int status;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "status %d", status);
}

Test(naive, a_crash_between_commit_and_publish_loses_the_event, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "sink", "CREATE TABLE applied(x)");
    pid_t child = support_fork();
    if (child == 0) {
        setenv("CHOREO_CRASHPOINTS", "after_commit_before_publish", 1);
        choreo_service *src = naive_service(dir, "source", server.url, false);
        if (choreo_service_start(src) != CHOREO_OK)
            _exit(3);
        support_emit(src, "Job", "lost", 1, NULL);
        _exit(4);
    }
    wait_child_killed(child);
    choreo_service *sink = naive_service(dir, "sink", server.url, true);
    choreo_service *src = naive_service(dir, "source", server.url, false);
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_service_start(src), CHOREO_OK, "%s", choreo_last_error());
    support_emit(src, "Job", "later", 2, NULL); /* proves the path works */
    for (int i = 0; i < 300 && support_count(dir, "sink", "SELECT COUNT(*) FROM applied") < 1; i++)
        usleep(10000);
    sleep(1);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM applied"), 1,
                 "only the later event arrives: the first one was lost");
    cr_assert_eq(support_count(dir, "source", "SELECT COUNT(*) FROM choreo_outbox"), 0,
                 "naive mode writes no outbox rows");
    cr_assert_eq(support_count(dir, "source", "SELECT COUNT(*) FROM choreo_audit_emitted"), 2,
                 "the audit trail knows both events were emitted (committed)");
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM choreo_audit_applied"), 1);
    choreo_service_destroy(src);
    choreo_service_destroy(sink);
    natsd_stop(&server, SIGTERM);
}

Test(naive, a_crash_between_commit_and_ack_applies_the_event_twice, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    support_exec(dir, "sink", "CREATE TABLE applied(x)");
    pid_t child = support_fork();
    if (child == 0) {
        setenv("CHOREO_CRASHPOINTS", "after_commit_before_ack", 1);
        choreo_service *sink = naive_service(dir, "sink", server.url, true);
        if (choreo_service_start(sink) != CHOREO_OK)
            _exit(3);
        sleep(30);
        _exit(4);
    }
    choreo_service *src = naive_service(dir, "source", server.url, false);
    cr_assert_eq(choreo_service_start(src), CHOREO_OK, "%s", choreo_last_error());
    support_emit(src, "Job", "twice", 1, NULL);
    wait_child_killed(child);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM applied"), 1);
    choreo_service *sink = naive_service(dir, "sink", server.url, true);
    cr_assert_eq(choreo_service_start(sink), CHOREO_OK, "%s", choreo_last_error());
    for (int i = 0; i < 1000 && support_count(dir, "sink", "SELECT COUNT(*) FROM applied") < 2; i++)
        usleep(10000);
    cr_assert_eq(support_count(dir, "sink", "SELECT COUNT(*) FROM applied"), 2,
                 "with no inbox the redelivered event is applied a second time");
    cr_assert_eq(support_count(dir, "sink",
                               "SELECT COUNT(*) FROM choreo_audit_applied GROUP BY event_id"), 2,
                 "the audit trail shows the same event id applied twice");
    choreo_service_destroy(sink);
    choreo_service_destroy(src);
    natsd_stop(&server, SIGTERM);
}
