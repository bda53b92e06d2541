/* Credentials and reachability at start: the right user and password,
 * token or nkey work, wrong ones fail at once with an error that says so
 * and never shows the secret (nor does the log or --help), nkey settings
 * that cannot work fail before connecting, and a missing server is
 * reported with what to do. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

    /* Credentials in the URL are credentials: the error says to check
     * them, not that none are set. */
    char url[800], setting[820];
    snprintf(url, sizeof url, "nats://alice:wrong@%s", server.url + strlen("nats://"));
    snprintf(setting, sizeof setting, "nats_url=%s", url);
    cfg = support_config(dir, "inurl", server.url, setting, NULL);
    svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_EAUTH, "%s", choreo_last_error());
    err = choreo_last_error();
    cr_assert(strstr(err, "check the user and password in nats_url"), "%s", err);
    cr_assert_null(strstr(err, "wrong"), "the password must never appear: %s", err);
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

/* A port that takes connections and never speaks NATS (a metrics port,
 * say): the start still gives up within connect_wait_ms, since each attempt
 * waits only for what is left of it (an attempt used to wait its 2 s
 * connect timeout whatever the limit, so 600 ms became 2 s). */
Test(auth, a_port_that_never_speaks_nats_is_given_up_within_connect_wait_ms, .timeout = 60)
{
    char dir[256], url[64];
    support_tmpdir(dir, sizeof dir);
    int port = support_free_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    cr_assert_eq(listen(fd, 16), 0); /* the kernel completes connections; no one answers */
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    choreo_config *cfg = support_config(dir, "lonely", url, "connect_wait_ms=600", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_ENOSERVER, "%s", choreo_last_error());
    const char *after = strstr(choreo_last_error(), " after ");
    cr_assert(after && strstr(choreo_last_error(), "no NATS server reachable"), "%s",
              choreo_last_error());
    long ms = strtol(after + 7, NULL, 10);
    cr_assert(ms >= 600 && ms < 1500, "gave up after %ld ms, for connect_wait_ms=600: %s", ms,
              choreo_last_error());
    choreo_service_destroy(svc);
    close(fd);
}

static bool published_one(void *svc)
{
    return support_stats(svc).published >= 1;
}

/* Starts a service with cfg (destroyed here) while stderr goes to
 * dir/<name>.log, and once started has one event published; the log's
 * text goes to log, the error's to err. */
static choreo_status start_logged(const char *dir, const char *name, choreo_config *cfg,
                                  char *err, size_t err_cap, char *log, size_t log_cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    int saved = support_stderr_to(path);
    choreo_status st = choreo_service_start(svc);
    snprintf(err, err_cap, "%s", choreo_last_error());
    bool published = false;
    if (st == CHOREO_OK) {
        support_emit(svc, "Hello", "s1", 1, NULL);
        published = support_wait(published_one, svc, 10000);
    }
    choreo_service_destroy(svc);
    support_stderr_back(saved);
    cr_assert(st != CHOREO_OK || published, "started, but the event was not published");
    support_slurp(path, log, log_cap);
    return st;
}

Test(auth, a_token_works_a_wrong_one_is_refused_and_neither_is_ever_shown, .timeout = 60)
{
    static const char token[] = "tok-7f3a9c-S3cret", wrong[] = "tok-wrong-5521";
    char dir[256], err[1024], log[8192];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_server_config(&server, dir, "authorization { token: \"tok-7f3a9c-S3cret\" }\n");

    choreo_config *cfg = support_config(dir, "good", server.url, "nats_token=tok-7f3a9c-S3cret",
                                        "log_level=debug", NULL);
    cr_assert_str_eq(choreo_config_get(cfg, "nats_token"), "***");
    cr_assert_eq(start_logged(dir, "good", cfg, err, sizeof err, log, sizeof log), CHOREO_OK,
                 "%s", err);
    cr_assert(strstr(log, "connected to NATS"), "the log was not captured: %s", log);
    cr_assert_null(strstr(log, token), "the token is in the log: %s", log);

    cfg = support_config(dir, "bad", server.url, "nats_token=tok-wrong-5521", NULL);
    cr_assert_eq(start_logged(dir, "bad", cfg, err, sizeof err, log, sizeof log), CHOREO_EAUTH,
                 "%s", err);
    cr_assert(strstr(err, "refused the credentials") && strstr(err, "check nats_token"), "%s",
              err);
    cr_assert(strstr(log, "refused the credentials"), "the log was not captured: %s", log);
    cr_assert_null(strstr(err, wrong), "the token is in the error: %s", err);
    cr_assert_null(strstr(log, wrong), "the token is in the log: %s", log);

    /* --help lists the settings, never a value given to them. */
    cfg = support_config(dir, "help", server.url, "nats_token=tok-7f3a9c-S3cret", NULL);
    char *help = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&help, &len);
    cr_assert_not_null(f);
    choreo_config_print_help(cfg, f);
    fclose(f);
    choreo_config_destroy(cfg);
    cr_assert(strstr(help, "--nats-token") && strstr(help, "--nats-nkey-seed"), "%s", help);
    cr_assert_null(strstr(help, token), "the token is in --help: %s", help);
    free(help);
    natsd_stop(&server, SIGTERM);
}

Test(auth, an_nkey_works_another_seed_is_refused_and_no_seed_is_ever_shown, .timeout = 60)
{
    char dir[256], err[1024], log[8192], conf[256], pub[64], other[64];
    char key[128], seed_path[600], other_seed[600], seed[128], seed2[128];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_nkey(dir, "user", pub);
    support_make_nkey(dir, "other", other);
    snprintf(seed_path, sizeof seed_path, "%s/user.nk", dir);
    snprintf(other_seed, sizeof other_seed, "%s/other.nk", dir);
    support_slurp(seed_path, seed, sizeof seed);
    support_slurp(other_seed, seed2, sizeof seed2);
    seed[strcspn(seed, "\n")] = seed2[strcspn(seed2, "\n")] = '\0';
    cr_assert(strncmp(seed, "SU", 2) == 0 && strlen(seed) == 58, "%s", seed);
    snprintf(conf, sizeof conf, "authorization { users = [ { nkey: %s } ] }\n", pub);
    support_server_config(&server, dir, conf);
    snprintf(key, sizeof key, "nats_nkey=%s", pub);

    char seed_setting[620];
    snprintf(seed_setting, sizeof seed_setting, "nats_nkey_seed=%s", seed_path);
    choreo_config *cfg = support_config(dir, "good", server.url, key, seed_setting,
                                        "log_level=debug", NULL);
    cr_assert_str_eq(choreo_config_get(cfg, "nats_nkey_seed"), seed_path);
    cr_assert_eq(start_logged(dir, "good", cfg, err, sizeof err, log, sizeof log), CHOREO_OK,
                 "%s", err);
    cr_assert(strstr(log, "connected to NATS"), "the log was not captured: %s", log);
    cr_assert_null(strstr(log, seed), "the seed is in the log: %s", log);

    snprintf(seed_setting, sizeof seed_setting, "nats_nkey_seed=%s", other_seed);
    cfg = support_config(dir, "bad", server.url, key, seed_setting, NULL);
    cr_assert_eq(start_logged(dir, "bad", cfg, err, sizeof err, log, sizeof log), CHOREO_EAUTH,
                 "%s", err);
    cr_assert(strstr(err, "refused the credentials") && strstr(err, "nats_nkey_seed"), "%s", err);
    cr_assert(strstr(log, "refused the credentials"), "the log was not captured: %s", log);
    cr_assert_null(strstr(err, seed2), "the seed is in the error: %s", err);
    cr_assert_null(strstr(log, seed2), "the seed is in the log: %s", log);

    /* The seed itself given where its file's path belongs is refused
     * without being repeated. */
    snprintf(seed_setting, sizeof seed_setting, "nats_nkey_seed=%s", seed);
    cfg = support_config(dir, "pasted", server.url, key, seed_setting, NULL);
    cr_assert_eq(start_logged(dir, "pasted", cfg, err, sizeof err, log, sizeof log),
                 CHOREO_ECONFIG, "%s", err);
    cr_assert(strstr(err, "setting nats_nkey_seed: its value is not the path of a file, and "
                          "looks like the secret itself"),
              "%s", err);
    cr_assert_null(strstr(err, seed), "the seed is in the error: %s", err);
    cr_assert_null(strstr(log, seed), "the seed is in the log: %s", log);
    natsd_stop(&server, SIGTERM);
}

/* nats.c 3.4.1 leaves the signature out of one connect in 256 with an
 * nkey; choreo connects again before it believes a refusal. Each
 * choreo_admin_consumers call opens a new connection: 1,000 of them hit the
 * bug with a probability of 98% (fewer when a slow build runs out of time,
 * which the bound on the time keeps within the test's timeout). */
Test(auth, an_nkey_is_never_refused_by_chance, .timeout = 120)
{
    char dir[256], conf[256], pub[64], key[128], seed[620];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_nkey(dir, "user", pub);
    snprintf(conf, sizeof conf, "authorization { users = [ { nkey: %s } ] }\n", pub);
    support_server_config(&server, dir, conf);
    snprintf(key, sizeof key, "nats_nkey=%s", pub);
    snprintf(seed, sizeof seed, "nats_nkey_seed=%s/user.nk", dir);
    choreo_config *cfg = support_config(dir, "steady", server.url, key, seed, NULL);
    choreo_service *svc = support_service(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    choreo_service_destroy(svc);

    choreo_admin *adm = NULL;
    cr_assert_eq(choreo_admin_open(&adm, cfg), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(cfg);
    int64_t began = support_mono_ms();
    for (int i = 0; i < 1000 && support_mono_ms() - began < 20000; i++) {
        choreo_consumer_entry *list = NULL;
        size_t n = 0;
        choreo_status st = choreo_admin_consumers(adm, "steady", &list, &n);
        cr_assert_eq(st, CHOREO_OK, "connection %d: %s", i + 1, choreo_last_error());
        free(list);
    }
    choreo_admin_close(adm);
    natsd_stop(&server, SIGTERM);
}

/* Applies "key=value" to cfg (asserting success). */
static void set_kv(choreo_config *cfg, const char *kv)
{
    char key[64];
    const char *eq = strchr(kv, '=');
    cr_assert_not_null(eq);
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    cr_assert_eq(choreo_config_set(cfg, key, eq + 1), CHOREO_OK, "%s", choreo_last_error());
}

Test(auth, nkey_settings_that_cannot_work_fail_before_connecting, .timeout = 60)
{
    char dir[256], pub[64], seed[128], path[600], kv[700];
    support_tmpdir(dir, sizeof dir);
    support_make_nkey(dir, "user", pub);
    snprintf(path, sizeof path, "%s/user.nk", dir);
    support_slurp(path, seed, sizeof seed);
    seed[strcspn(seed, "\n")] = '\0';

    /* Checked by choreo_config_validate (choreo_service_create runs it). */
    static const struct {
        const char *nkey, *seed; /* "pub", "seed" or "path": the test's own; NULL: unset */
        const char *extra[2];
        const char *want;
    } invalid[] = {
        { "pub", NULL, { NULL }, "nats_nkey and nats_nkey_seed go together" },
        { NULL, "path", { NULL }, "nats_nkey and nats_nkey_seed go together" },
        { "pub", "path", { "nats_token=t" }, "nats_nkey and nats_token are exclusive" },
        { "pub", "path", { "nats_user=u", "nats_password=p" },
          "nats_nkey and nats_user are exclusive" },
        { "pub", "path", { "nats_creds=/etc/hostname" }, "nats_nkey and nats_creds are exclusive" },
        { "seed", "path", { NULL }, "looks like a seed" },
        { "UABC", "path", { NULL }, "is not a user's public nkey" },
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        choreo_config *cfg = support_config(dir, "v", "nats://127.0.0.1:1", NULL);
        const char *nkey = invalid[i].nkey;
        if (nkey) {
            snprintf(kv, sizeof kv, "nats_nkey=%s", strcmp(nkey, "pub") == 0 ? pub
                                                    : strcmp(nkey, "seed") == 0 ? seed : nkey);
            set_kv(cfg, kv);
        }
        if (invalid[i].seed) {
            snprintf(kv, sizeof kv, "nats_nkey_seed=%s", path);
            set_kv(cfg, kv);
        }
        for (int j = 0; j < 2 && invalid[i].extra[j]; j++)
            set_kv(cfg, invalid[i].extra[j]);
        cr_assert_eq(choreo_config_validate(cfg), CHOREO_ECONFIG, "case %zu passed", i);
        const char *err = choreo_last_error();
        cr_assert(strstr(err, invalid[i].want), "case %zu: no \"%s\" in: %s", i, invalid[i].want,
                  err);
        cr_assert_null(strstr(err, seed), "case %zu: the seed is in the error: %s", i, err);
        choreo_service *svc = NULL;
        cr_assert_eq(choreo_service_create(&svc, cfg), CHOREO_ECONFIG, "case %zu", i);
        choreo_config_destroy(cfg);
    }

    /* Seed files that cannot work fail at start, before any connection
     * (nothing listens at the URL). A corrupt seed has one character
     * changed, which its checksum catches. */
    char garbage[600], corrupt[600], corrupt_seed[sizeof seed + 1];
    snprintf(garbage, sizeof garbage, "%s/garbage.nk", dir);
    support_write_file(garbage, "not a seed\n");
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.nk", dir);
    snprintf(corrupt_seed, sizeof corrupt_seed, "%s\n", seed);
    corrupt_seed[10] = corrupt_seed[10] == 'A' ? 'B' : 'A';
    support_write_file(corrupt, corrupt_seed);
    corrupt_seed[strlen(corrupt_seed) - 1] = '\0';
    const struct {
        const char *file, *want;
    } unusable[] = {
        { "missing.nk", "No such file or directory" },
        { "garbage.nk", "holds no valid user seed" },
        { "corrupt.nk", "holds no valid user seed" },
    };
    for (size_t i = 0; i < sizeof unusable / sizeof unusable[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "nats_nkey=%s", pub);
        snprintf(kv, sizeof kv, "nats_nkey_seed=%s/%s", dir, unusable[i].file);
        choreo_config *cfg = support_config(dir, "u", "nats://127.0.0.1:1", key, kv,
                                            "connect_wait_ms=3000", NULL);
        choreo_service *svc = support_service(cfg);
        choreo_config_destroy(cfg);
        cr_assert_eq(choreo_service_start(svc), CHOREO_ECONFIG, "%s: %s", unusable[i].file,
                     choreo_last_error());
        const char *err = choreo_last_error();
        cr_assert(strstr(err, "setting nats_nkey_seed") && strstr(err, unusable[i].file) &&
                      strstr(err, unusable[i].want),
                  "%s: %s", unusable[i].file, err);
        cr_assert_null(strstr(err, corrupt_seed), "the seed is in the error: %s", err);
        choreo_service_destroy(svc);
    }
}

Test(auth, a_missing_creds_file_fails_at_start_naming_nats_creds, .timeout = 60)
{
    char dir[256], creds[600];
    support_tmpdir(dir, sizeof dir);
    snprintf(creds, sizeof creds, "nats_creds=%s/missing.creds", dir);
    choreo_config *cfg = support_config(dir, "c", "nats://127.0.0.1:1", creds,
                                        "connect_wait_ms=3000", NULL);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_ECONFIG, "%s", choreo_last_error());
    const char *err = choreo_last_error();
    cr_assert(strstr(err, "setting nats_creds") && strstr(err, "missing.creds") &&
                  strstr(err, "No such file or directory"),
              "%s", err);
    choreo_service_destroy(svc);
}
