/* Credentials and reachability at start: the right user and password work,
 * wrong ones fail at once with an error that says so, and a missing server
 * is reported with what to do. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

Test(auth, right_credentials_work_and_wrong_ones_fail_at_start, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, "alice", "s3cret-pw");

    choreo_config *cfg = support_config(dir, "good", server.url, "nats_user=alice",
                                        "nats_password=s3cret-pw", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Hello", "s1", 1, NULL);
    choreo_service_destroy(svc);

    cfg = support_config(dir, "bad", server.url, "nats_user=alice", "nats_password=wrong", NULL);
    svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_EAUTH);
    const char *err = choreo_last_error();
    cr_assert(strstr(err, "refused the credentials"), "error was: %s", err);
    cr_assert(strstr(err, "nats_password"), "the error should say which settings to check: %s", err);
    cr_assert_null(strstr(err, "wrong"), "the password must never appear: %s", err);
    choreo_service_destroy(svc);

    cfg = support_config(dir, "anon", server.url, NULL);
    svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_EAUTH, "%s", choreo_last_error());
    choreo_service_destroy(svc);
    natsd_stop(&server, SIGTERM);
}

Test(auth, a_missing_server_is_reported_with_what_to_do, .timeout = 60)
{
    char dir[256];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server(&server, dir, NULL, NULL);
    char url[64];
    snprintf(url, sizeof url, "%s", server.url);
    natsd_stop(&server, SIGTERM); /* a port where nothing listens now */
    choreo_config *cfg = support_config(dir, "lonely", url, "connect_wait_ms=600", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_ENOSERVER);
    cr_assert(strstr(choreo_last_error(), "no NATS server reachable"), "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), url), "%s", choreo_last_error());
    choreo_service_destroy(svc);
}
