/* TLS to NATS against a real nats-server, with certificates each test
 * makes: a server verified with tls_ca carries events; a certificate from
 * another CA, an expired one or one for another host fails at start, at
 * once, with CHOREO_ETLS and a sentence naming the setting and the cause;
 * mutual TLS needs tls_cert and tls_key; a file that cannot be used fails
 * naming its setting and the file. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "support.h"

/* Starts a TLS server with the certificate dir/<cert>.pem and its key
 * dir/<key>-key.pem, trusting clients signed by dir/ca.pem; verify makes
 * it require a client certificate. */
static void tls_server(natsd *d, const char *dir, const char *cert, const char *key, bool verify)
{
    char conf[2048];
    snprintf(conf, sizeof conf,
             "tls {\n"
             "  cert_file: \"%s/%s.pem\"\n"
             "  key_file: \"%s/%s-key.pem\"\n"
             "  ca_file: \"%s/ca.pem\"\n"
             "  verify: %s\n"
             "}\n",
             dir, cert, dir, key, dir, verify ? "true" : "false");
    support_server_config(d, dir, conf);
}

/* "key=dir/file", for support_config. */
static const char *setting(char *buf, size_t cap, const char *key, const char *dir,
                           const char *file)
{
    snprintf(buf, cap, "%s=%s/%s", key, dir, file);
    return buf;
}

static bool published_one(void *svc)
{
    return support_stats(svc).published >= 1;
}

/* Starts a service with cfg (destroyed here), emits one event and waits
 * until the relay has published it. */
static void start_and_publish(choreo_config *cfg)
{
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    cr_assert_eq(choreo_service_start(svc), CHOREO_OK, "%s", choreo_last_error());
    support_emit(svc, "Hello", "s1", 1, NULL);
    cr_assert(support_wait(published_one, svc, 10000), "the event was not published");
    choreo_service_destroy(svc);
}

struct watchdog {
    choreo_service *svc;
    atomic_bool done;
};

/* Stops the service if start has not returned within 5 s: a failure taken
 * for a passing one would otherwise be retried until the test's timeout. */
static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    for (int waited = 0; waited < 5000 && !atomic_load(&w->done); waited += 10)
        support_sleep_ms(10);
    if (!atomic_load(&w->done))
        choreo_service_stop(w->svc);
    return NULL;
}

/* Starts a service with cfg (destroyed here; connect_wait_ms 0, so only a
 * failure taken as permanent returns by itself) and asserts that it fails
 * with want within 5 s and without a single retry; the error text goes to
 * err. Its log goes to dir/start.log. */
static void start_fails(const char *dir, choreo_config *cfg, choreo_status want, char *err,
                        size_t cap)
{
    char path[600], log[8192];
    snprintf(path, sizeof path, "%s/start.log", dir);
    choreo_service *svc = support_service(cfg);
    choreo_config_destroy(cfg);
    struct watchdog w = { .svc = svc };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watchdog_main, &w), 0);
    int saved = support_stderr_to(path);
    int64_t began = support_mono_ms();
    choreo_status st = choreo_service_start(svc);
    int64_t took = support_mono_ms() - began;
    snprintf(err, cap, "%s", choreo_last_error());
    support_stderr_back(saved);
    atomic_store(&w.done, true);
    pthread_join(t, NULL);
    choreo_service_destroy(svc);
    support_slurp(path, log, sizeof log);
    cr_assert_eq(st, want, "start returned %d (%s) after %lld ms, not %d (%s): %s", st,
                 choreo_status_str(st), (long long)took, want, choreo_status_str(want), err);
    cr_assert_lt(took, 5000, "start failed only after %lld ms: %s", (long long)took, err);
    cr_assert(strstr(log, "start failed"), "the log was not captured: %s", log);
    cr_assert_null(strstr(log, "retrying"), "start took the failure for a passing one: %s", log);
    cr_assert_null(strstr(log, "trying again"), "start took the failure for a passing one: %s",
                   log);
}

Test(tls, a_server_verified_with_tls_ca_carries_events_and_unverified_it_is_refused,
     .timeout = 60)
{
    char dir[256], ca[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "server", "server", false);

    start_and_publish(support_config(dir, "good", server.url,
                                     setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"), NULL));

    /* The same server without tls_ca: nats.c upgrades to TLS since the
     * server requires it, and the system's CAs do not know the test CA. */
    start_fails(dir, support_config(dir, "plain", server.url, NULL), CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "requires TLS") && strstr(err, "set tls_ca"), "%s", err);
    cr_assert(strstr(err, "certificate verification failed"), "%s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, a_server_certificate_from_another_ca_fails_at_once_naming_tls_ca, .timeout = 60)
{
    char dir[256], ca[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "server", "server", false);
    start_fails(dir, support_config(dir, "fooled", server.url,
                               setting(ca, sizeof ca, "tls_ca", dir, "wrong-ca.pem"), NULL),
                CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "not signed by the CA in tls_ca"), "%s", err);
    cr_assert(strstr(err, "wrong-ca.pem"), "the error should name the CA file: %s", err);
    cr_assert(strstr(err, "certificate verification failed"), "%s", err);
    cr_assert(strstr(err, server.url), "the error should name the server: %s", err);
    cr_assert_null(strstr(err, "no NATS server reachable"), "%s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, an_expired_server_certificate_fails_at_once_saying_so, .timeout = 60)
{
    char dir[256], ca[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "expired", "server", false);
    start_fails(dir, support_config(dir, "late", server.url,
                               setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"), NULL),
                CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "presented a certificate that has expired"), "%s", err);
    cr_assert(strstr(err, "renew the server's certificate"), "%s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, a_server_certificate_for_another_host_fails_naming_the_host, .timeout = 60)
{
    char dir[256], ca[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "otherhost", "otherhost", false);
    start_fails(dir, support_config(dir, "astray", server.url,
                               setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"), NULL),
                CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "a certificate for another host") && strstr(err, "nats_url"), "%s",
              err);
    cr_assert(strstr(err, "IP address mismatch"), "%s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, mutual_tls_works_with_tls_cert_and_tls_key_and_fails_naming_them_without,
     .timeout = 60)
{
    char dir[256], ca[600], cert[600], key[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "server", "server", true);
    setting(ca, sizeof ca, "tls_ca", dir, "ca.pem");

    start_and_publish(support_config(dir, "mutual", server.url, ca,
                                     setting(cert, sizeof cert, "tls_cert", dir, "client.pem"),
                                     setting(key, sizeof key, "tls_key", dir, "client-key.pem"),
                                     NULL));

    start_fails(dir, support_config(dir, "anonymous", server.url, ca, NULL), CHOREO_ETLS, err,
                sizeof err);
    cr_assert(strstr(err, "got no client certificate"), "%s", err);
    cr_assert(strstr(err, "set tls_cert and tls_key"), "%s", err);

    start_fails(dir, support_config(dir, "stranger", server.url, ca,
                               setting(cert, sizeof cert, "tls_cert", dir, "stranger.pem"),
                               setting(key, sizeof key, "tls_key", dir, "stranger-key.pem"),
                               NULL),
                CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "refused the client certificate in tls_cert"), "%s", err);
    cr_assert(strstr(err, "stranger.pem"), "the error should name the file: %s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, a_tls_file_that_cannot_be_used_fails_at_start_naming_its_setting, .timeout = 60)
{
    char dir[256], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "server", "server", true);
    static const struct {
        const char *ca, *cert, *key; /* files in dir, NULL for none */
        const char *want[3];         /* texts the error must hold */
    } cases[] = {
        { "missing-ca.pem", NULL, NULL,
          { "setting tls_ca", "missing-ca.pem", "No such file or directory" } },
        { "cadb", NULL, NULL, { "setting tls_ca", "cadb is not a file", "give the path" } },
        { "ca.srl", NULL, NULL, { "setting tls_ca", "ca.srl holds no certificate", "PEM" } },
        { "ca.pem", "client.pem", "missing-key.pem",
          { "setting tls_key", "missing-key.pem", "No such file or directory" } },
        { "ca.pem", "client.pem", "server-key.pem",
          { "setting tls_key", "server-key.pem", "not the key of the certificate" } },
        { "ca.pem", "client-key.pem", "client-key.pem",
          { "setting tls_cert", "client-key.pem holds no certificate", "PEM" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], ca[600], cert[600], key[600];
        snprintf(name, sizeof name, "case%zu", i);
        setting(ca, sizeof ca, "tls_ca", dir, cases[i].ca);
        choreo_config *cfg;
        if (cases[i].cert)
            cfg = support_config(dir, name, server.url, ca,
                                 setting(cert, sizeof cert, "tls_cert", dir, cases[i].cert),
                                 setting(key, sizeof key, "tls_key", dir, cases[i].key), NULL);
        else
            cfg = support_config(dir, name, server.url, ca, NULL);
        start_fails(dir, cfg, CHOREO_ECONFIG, err, sizeof err);
        for (int j = 0; j < 3; j++)
            cr_assert(strstr(err, cases[i].want[j]), "case %zu: no \"%s\" in: %s", i,
                      cases[i].want[j], err);
    }

    /* The key itself given where its file's path belongs is refused
     * without being repeated. */
    char path[600], pem[4096], setting_key[4200], ca[600], cert[600];
    snprintf(path, sizeof path, "%s/client-key.pem", dir);
    support_slurp(path, pem, sizeof pem);
    cr_assert(strstr(pem, "PRIVATE KEY"), "%s", pem);
    snprintf(setting_key, sizeof setting_key, "tls_key=%s", pem);
    start_fails(dir,
                support_config(dir, "pasted", server.url,
                               setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"),
                               setting(cert, sizeof cert, "tls_cert", dir, "client.pem"),
                               setting_key, NULL),
                CHOREO_ECONFIG, err, sizeof err);
    cr_assert(strstr(err, "setting tls_key: its value is not the path of a file, and looks like "
                          "the secret itself"),
              "%s", err);
    cr_assert_null(strstr(err, "PRIVATE"), "%s", err);
    natsd_stop(&server, SIGTERM);
}

Test(tls, tls_settings_against_a_server_without_tls_fail_naming_them, .timeout = 60)
{
    char dir[256], ca[600], err[1024];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    support_server(&server, dir, NULL, NULL);
    start_fails(dir, support_config(dir, "hopeful", server.url,
                               setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"), NULL),
                CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "tls_ca is set, but the NATS server at") &&
                  strstr(err, "does not offer TLS"),
              "%s", err);

    /* A tls:// URL asks for TLS too: nats.c alone would talk to this
     * server in plain text. */
    char tls_url[800];
    snprintf(tls_url, sizeof tls_url, "tls://%s", server.url + strlen("nats://"));
    start_fails(dir, support_config(dir, "scheme", tls_url, NULL), CHOREO_ETLS, err, sizeof err);
    cr_assert(strstr(err, "nats_url asks for TLS (tls://), but the NATS server at") &&
                  strstr(err, "does not offer TLS"),
              "%s", err);
    natsd_stop(&server, SIGTERM);
}

/* A tls:// URL turns TLS on by itself, verified with tls_ca. */
Test(tls, a_tls_url_talks_tls, .timeout = 60)
{
    char dir[256], ca[600], tls_url[800];
    natsd server;
    support_tmpdir(dir, sizeof dir);
    support_make_certs(dir);
    tls_server(&server, dir, "server", "server", false);
    snprintf(tls_url, sizeof tls_url, "tls://%s", server.url + strlen("nats://"));
    start_and_publish(support_config(dir, "good", tls_url,
                                     setting(ca, sizeof ca, "tls_ca", dir, "ca.pem"), NULL));
    natsd_stop(&server, SIGTERM);
}
