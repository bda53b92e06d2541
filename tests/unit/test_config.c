/* Configuration: defaults, flags, environment variables and their errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "faults.h"

static choreo_config *fresh(void)
{
    choreo_config *c;
    cr_assert_eq(choreo_config_create(&c), CHOREO_OK);
    return c;
}

Test(config, defaults_are_set)
{
    choreo_config *c = fresh();
    cr_assert_str_eq(choreo_config_get(c, "stream"), "CHOREO");
    cr_assert_str_eq(choreo_config_get(c, "prefix"), "choreo");
    cr_assert_str_eq(choreo_config_get(c, "synchronous"), "full");
    cr_assert_str_eq(choreo_config_get(c, "max_deliver"), "10");
    cr_assert_str_eq(choreo_config_get(c, "nats_ping_interval_ms"), "5000");
    cr_assert_str_eq(choreo_config_get(c, "take_over_consumers"), "off");
    cr_assert_str_eq(choreo_config_get(c, "binding_check_s"), "60");
    cr_assert_null(choreo_config_get(c, "no_such_key"));
    choreo_config_destroy(c);
}

Test(config, flags_are_consumed_and_other_arguments_kept_in_order)
{
    choreo_config *c = fresh();
    char *argv[] = { "prog", "--service", "order", "keep1", "--db=/tmp/x.db",
                     "--log-level", "debug", "-v", "--help", "--", "--service", NULL };
    int argc = 11;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(argc, 6);
    cr_assert_str_eq(argv[1], "keep1");
    cr_assert_str_eq(argv[2], "-v");
    cr_assert_str_eq(argv[3], "--help");
    cr_assert_str_eq(argv[4], "--");
    cr_assert_str_eq(argv[5], "--service");
    cr_assert_str_eq(choreo_config_get(c, "service"), "order");
    cr_assert_str_eq(choreo_config_get(c, "db"), "/tmp/x.db");
    cr_assert_str_eq(choreo_config_get(c, "log_level"), "debug");
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK);
    choreo_config_destroy(c);
}

struct bad { const char *key, *value, *expect; };

static const struct bad bad[] = {
    { "service", "has space", "not a valid name" },
    { "service", "", "not a valid name" },
    { "prefix", "a..b", "not a valid subject prefix" },
    { "prefix", "a.>", "not a valid subject prefix" },
    { "log_level", "loud", "not one of error|warn|info|debug" },
    { "synchronous", "fast", "not one of off|normal|full|extra" },
    { "take_over_consumers", "yes", "not one of off|on" },
    { "binding_check_s", "-1", "whole number from 0 to 86400" },
    { "max_deliver", "1", "whole number from 2 to 1000" },
    { "ack_wait_ms", "ten", "whole number" },
    { "nats_ping_interval_ms", "50", "whole number from 100 to 600000" },
    { "batch_max", "99999999999999999999", "whole number" },
    { "db", "", "must not be empty" },
    { "colour", "red", "unknown setting \"colour\"" },
};

Test(config, invalid_values_name_the_setting_and_what_is_accepted)
{
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        choreo_config *c = fresh();
        cr_expect_eq(choreo_config_set(c, bad[k].key, bad[k].value), CHOREO_ECONFIG, "%s",
                     bad[k].key);
        cr_expect(strstr(choreo_last_error(), bad[k].expect), "%s=%s: \"%s\"", bad[k].key,
                  bad[k].value, choreo_last_error());
        choreo_config_destroy(c);
    }
}

Test(config, flag_errors_name_the_flag)
{
    choreo_config *c = fresh();
    char *argv[] = { "prog", "--max-deliver", "0", NULL };
    int argc = 3;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "flag --max-deliver"), "%s", choreo_last_error());
    char *argv2[] = { "prog", "--db", NULL };
    argc = 2;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv2), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "needs a value"));
    /* A forgotten value is not filled with the next flag. */
    char *argv3[] = { "prog", "--service", "--db", "a.db", NULL };
    argc = 4;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv3), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "flag --service needs a value, but --db follows it"),
              "%s", choreo_last_error());
    cr_assert_eq(choreo_config_accept_flag(c, "--orders", true), CHOREO_OK);
    char *argv4[] = { "prog", "--orders", "--service", "a", NULL };
    argc = 4;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv4), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "flag --orders needs a value, but --service"), "%s",
              choreo_last_error());
    /* With =, a value may start with --; and a value that is no flag passes. */
    char *argv5[] = { "prog", "--nats-password=--secret", "--nats-user", "--me", NULL };
    argc = 4;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv5), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_str_eq(choreo_config_get(c, "nats_user"), "***"); /* set, and not shown */
    /* A setting given twice, in either spelling: refused, its values not
     * shown (one may be a password), rather than the last taken. */
    char *argv6[] = { "prog", "--db", "a.db", "--db=b.db", NULL };
    argc = 4;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv6), CHOREO_ECONFIG);
    cr_assert_str_eq(choreo_last_error(), "flag --db is given twice: give it once");
    char *argv7[] = { "prog", "--nats-password", "one", "--nats_password", "two", NULL };
    argc = 5;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv7), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "--nats-password is given twice") &&
                  !strstr(choreo_last_error(), "one") && !strstr(choreo_last_error(), "two"),
              "%s", choreo_last_error());
    choreo_config_destroy(c);
}

Test(config, an_unknown_flag_is_an_error_naming_it_and_the_closest_flag)
{
    choreo_config *c = fresh();
    char *argv[] = { "prog", "--service", "order", "--nats-ulr", "nats://10.0.0.1:4222", NULL };
    int argc = 5;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv), CHOREO_ECONFIG);
    cr_assert_eq(argc, 5, "argc is unchanged on failure");
    cr_assert(strstr(choreo_last_error(), "unknown flag --nats-ulr (did you mean --nats-url?)"),
              "%s", choreo_last_error());
    cr_assert_str_eq(choreo_config_get(c, "nats_url"), "nats://127.0.0.1:4222");
    char *argv2[] = { "prog", "--zzzzzzzz=1", NULL };
    argc = 2;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv2), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "unknown flag --zzzzzzzz: see --help"), "%s",
              choreo_last_error());
    choreo_config_destroy(c);
}

Test(config, a_programs_own_flags_are_left_with_their_values)
{
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_accept_flag(c, "--orders", true), CHOREO_OK);
    cr_assert_eq(choreo_config_accept_flag(c, "json", false), CHOREO_OK);
    char *argv[] = { "prog", "--orders", "--7", "--json", "--db", "x.db", "--orders=5", NULL };
    int argc = 7;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(argc, 5);
    cr_assert_str_eq(argv[1], "--orders");
    cr_assert_str_eq(argv[2], "--7", "the value of --orders stays with it");
    cr_assert_str_eq(argv[3], "--json");
    cr_assert_str_eq(argv[4], "--orders=5");
    cr_assert_str_eq(choreo_config_get(c, "db"), "x.db");
    char *argv2[] = { "prog", "--ordres", "1", NULL };
    argc = 3;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv2), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "(did you mean --orders?)"), "%s", choreo_last_error());
    cr_assert_eq(choreo_config_accept_flag(c, "--nats-url", true), CHOREO_EINVAL);
    cr_assert(strstr(choreo_last_error(), "is a choreo setting"), "%s", choreo_last_error());
    cr_assert_eq(choreo_config_accept_flag(c, "--a=b", false), CHOREO_EINVAL);
    cr_assert_eq(choreo_config_accept_flag(c, "--", false), CHOREO_EINVAL);
    /* A service's copy of the configuration does not carry them. */
    choreo_config *copy = choreo__config_clone(c);
    cr_assert_not_null(copy);
    cr_assert_eq(copy->nown_flags, 0);
    choreo_config_destroy(copy);
    choreo_config_destroy(c);
}

Test(config, consumer_start_takes_all_new_or_a_time)
{
    choreo_config *c = fresh();
    cr_assert_str_eq(choreo_config_get(c, "consumer_start"), "all");
    cr_assert_eq(c->consumer_start_ns, CHOREO_START_ALL);
    cr_assert_eq(choreo_config_set(c, "consumer_start", "new"), CHOREO_OK);
    cr_assert_eq(c->consumer_start_ns, CHOREO_START_NEW);
    cr_assert_eq(choreo_config_set(c, "consumer_start", "2026-11-30T08:00:00Z"), CHOREO_OK);
    cr_assert_eq(c->consumer_start_ns, INT64_C(1796025600) * 1000000000);
    cr_assert_eq(choreo_config_set(c, "consumer_start", "2026-11-30T09:30:00.25+01:30"),
                 CHOREO_OK);
    cr_assert_eq(c->consumer_start_ns, INT64_C(1796025600) * 1000000000 + 250000000);
    static const char *const bad_times[] = { "yesterday", "2026-11-30", "2026-11-30T08:00:00",
                                             "2026-02-30T08:00:00Z", "2026-11-30T24:00:00Z",
                                             "2026-11-30T08:00:00Zx", "1969-12-31T23:59:59Z",
                                             "2026-11-30T08:00:00.Z", "" };
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++) {
        cr_expect_eq(choreo_config_set(c, "consumer_start", bad_times[i]), CHOREO_ECONFIG, "%s",
                     bad_times[i]);
        cr_expect(strstr(choreo_last_error(), "is not all, new or a UTC time"), "%s",
                  choreo_last_error());
    }
    cr_assert_str_eq(choreo_config_get(c, "consumer_start"), "2026-11-30T09:30:00.25+01:30");
    choreo_config_destroy(c);
}

Test(config, environment_variables_apply_and_unknown_ones_are_errors)
{
    choreo_config *c = fresh();
    setenv("CHOREO_SERVICE", "payment", 1);
    setenv("CHOREO_BATCH_MAX", "64", 1);
    cr_assert_eq(choreo_config_from_env(c), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_str_eq(choreo_config_get(c, "service"), "payment");
    cr_assert_str_eq(choreo_config_get(c, "batch_max"), "64");
    setenv("CHOREO_BACH_MAX", "64", 1);
    cr_assert_eq(choreo_config_from_env(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "CHOREO_BACH_MAX"), "%s", choreo_last_error());
    unsetenv("CHOREO_BACH_MAX");
    setenv("CHOREO_LOG_LEVEL", "chatty", 1);
    cr_assert_eq(choreo_config_from_env(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "environment variable CHOREO_LOG_LEVEL"), "%s",
              choreo_last_error());
    unsetenv("CHOREO_LOG_LEVEL");
    /* The fault injection's own variables are read elsewhere; a misspelling
     * of one is as unknown as any other. */
    setenv("CHOREO_CRASHPOINTS", "", 1);
    setenv("CHOREO_CRASH_SEED", "1", 1);
    cr_assert_eq(choreo_config_from_env(c), CHOREO_OK, "%s", choreo_last_error());
    const char *typos[] = { "CHOREO_CRASHPOINT", "CHOREO_CRASH_SEEDS", "CHOREO_FAULT" };
    for (size_t i = 0; i < sizeof typos / sizeof typos[0]; i++) {
        setenv(typos[i], "1", 1);
        cr_expect_eq(choreo_config_from_env(c), CHOREO_ECONFIG, "%s", typos[i]);
        cr_expect(strstr(choreo_last_error(), typos[i]), "%s", choreo_last_error());
        unsetenv(typos[i]);
    }
    unsetenv("CHOREO_CRASHPOINTS");
    unsetenv("CHOREO_CRASH_SEED");
    choreo_config_destroy(c);
}

/* A mistyped crash point is refused with every point it could have meant,
 * each name as the parser knows it, and the probabilities are checked. */
Test(config, an_unknown_crash_point_is_refused_with_the_known_ones)
{
    choreo_crashpoints cp;
    setenv("CHOREO_CRASHPOINTS", "inside_batch=0.5,after_comitter_send", 1);
    cr_assert_eq(choreo__crashpoints_load(&cp), CHOREO_ECONFIG);
    const char *e = choreo_last_error();
    cr_expect(strstr(e, "unknown point \"after_comitter_send\""), "%s", e);
    for (int i = 0; i < CP_COUNT; i++)
        cr_expect(strstr(e, choreo__crashpoint_name((choreo_crashpoint_id)i)), "%s lacks %s", e,
                  choreo__crashpoint_name((choreo_crashpoint_id)i));
    setenv("CHOREO_CRASHPOINTS", "inside_batch=1.5", 1);
    cr_expect_eq(choreo__crashpoints_load(&cp), CHOREO_ECONFIG);
    cr_expect(strstr(choreo_last_error(), "probability of inside_batch"), "%s",
              choreo_last_error());
    setenv("CHOREO_CRASHPOINTS", "inside_batch=0.5,after_committer_send", 1);
    cr_assert_eq(choreo__crashpoints_load(&cp), CHOREO_OK, "%s", choreo_last_error());
    cr_expect(cp.any);
    unsetenv("CHOREO_CRASHPOINTS");
}

/* A db of a mistyped scheme would be opened as a SQLite path, and every
 * message would show its password: refused when set, without it. */
Test(config, a_db_url_of_a_mistyped_scheme_is_refused_without_its_password)
{
    const char *typed[] = { "postgressql://alice:hunter2@127.0.0.1:1/db",
                          "POSTGRESQL://alice:hunter2@h/db", "postgresql:/alice:hunter2@h/db",
                          " postgresql://alice:hunter2@h/db", "mysql://alice:hunter2@h/db" };
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        choreo_config *c = fresh();
        cr_expect_eq(choreo_config_set(c, "db", typed[i]), CHOREO_ECONFIG, "%s", typed[i]);
        cr_expect(strstr(choreo_last_error(), "is not a PostgreSQL URL") &&
                      strstr(choreo_last_error(), "***@") &&
                      !strstr(choreo_last_error(), "hunter2"),
                  "%s: %s", typed[i], choreo_last_error());
        choreo_config_destroy(c);
    }
    const char *good[] = { "postgresql://alice:hunter2@h/db", "postgres://h/db", "/tmp/a.db",
                           "file:/tmp/a.db", "relative/a:b.db", "/tmp/a:/b.db" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        choreo_config *c = fresh();
        cr_expect_eq(choreo_config_set(c, "db", good[i]), CHOREO_OK, "%s: %s", good[i],
                     choreo_last_error());
        choreo_config_destroy(c);
    }
}

Test(config, get_with_no_key_or_no_config_gives_null)
{
    choreo_config *c = fresh();
    cr_assert_null(choreo_config_get(c, NULL));
    cr_assert_null(choreo_config_get(NULL, "service"));
    choreo_config_destroy(c);
}

Test(config, validation_names_missing_and_conflicting_settings)
{
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "service is required"));
    cr_assert_eq(choreo_config_set(c, "service", "s"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "db is required"));
    cr_assert_eq(choreo_config_set(c, "db", "x.db"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "nats_user", "u"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "nats_user and nats_password"));
    cr_assert_eq(choreo_config_set(c, "nats_password", "secret"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK);
    cr_assert_str_eq(choreo_config_get(c, "nats_password"), "***", "secrets are never shown");
    choreo_config_destroy(c);
}

/* One way to log in to NATS: a user and password, a token or a credentials
 * file (the nkey's own checks are in the auth integration tests). */
Test(config, the_ways_to_log_in_are_exclusive)
{
    static const struct {
        const char *set[3][2];
        const char *want;
    } cases[] = {
        { { { "nats_user", "u" }, { "nats_password", "p" }, { "nats_token", "t" } },
          "settings nats_token and nats_user are exclusive" },
        { { { "nats_user", "u" }, { "nats_password", "p" }, { "nats_creds", "/x.creds" } },
          "settings nats_creds and nats_user are exclusive" },
        { { { "nats_token", "t" }, { "nats_creds", "/x.creds" }, { NULL, NULL } },
          "settings nats_creds and nats_token are exclusive" },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        choreo_config *c = fresh();
        cr_assert_eq(choreo_config_set(c, "service", "s"), CHOREO_OK);
        cr_assert_eq(choreo_config_set(c, "db", "x.db"), CHOREO_OK);
        for (int i = 0; i < 3 && cases[k].set[i][0]; i++)
            cr_assert_eq(choreo_config_set(c, cases[k].set[i][0], cases[k].set[i][1]), CHOREO_OK);
        cr_expect_eq(choreo_config_validate(c), CHOREO_ECONFIG, "case %zu", k);
        cr_expect(strstr(choreo_last_error(), cases[k].want), "case %zu: %s", k,
                  choreo_last_error());
        choreo_config_destroy(c);
    }
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_set(c, "service", "s"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "db", "x.db"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "nats_creds", "/x.creds"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(c);
}

Test(config, retry_and_retention_settings_must_agree)
{
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_set(c, "service", "s"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "db", "x.db"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "retry_base_ms", "500"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "retry_cap_ms", "100"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "retry_cap_ms"), "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "retry_cap_ms", "1000"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "stream_max_age_s", "3600"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "inbox_retention_s", "600"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "inbox_retention_s"), "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "stream_max_age_s", "0"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG, "an unlimited stream needs inbox marks kept");
    cr_assert_eq(choreo_config_set(c, "inbox_retention_s", "0"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK, "%s", choreo_last_error());
    choreo_config_destroy(c);
}

/* On PostgreSQL the relay's lease must outlast the wait between its rounds;
 * on SQLite, where there is no lease, the two do not meet. */
Test(config, the_relay_lease_must_outlast_two_scans_on_postgresql)
{
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_set(c, "service", "s"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "db", "x.db"), CHOREO_OK);
    cr_assert_eq(choreo_config_set(c, "relay_scan_ms", "10000"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "db", "postgresql://u@127.0.0.1/shop"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_ECONFIG);
    cr_assert(strstr(choreo_last_error(), "relay_lease_ms (10000)") &&
                  strstr(choreo_last_error(), "relay_scan_ms (10000)"),
              "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "relay_lease_ms", "21000"), CHOREO_OK);
    cr_assert_eq(choreo_config_validate(c), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "relay_lease_ms", "999"), CHOREO_ECONFIG);
    choreo_config_destroy(c);
}

/* A nats_url that can never connect is refused when set, not retried for
 * ever at start; a password in it is not shown. */
Test(config, nats_urls_that_cannot_work_are_refused_when_set)
{
    static const struct {
        const char *url, *why;
    } bad_urls[] = {
        { "foo://bar baz", "a space" },
        { "http://127.0.0.1:4222", "scheme is not nats:// or tls://" },
        { "nats://127.0.0.1:99999", "port is not a number from 1 to 65535" },
        { "nats://127.0.0.1:0", "port is not a number" },
        { "nats://h:", "port is not a number" },
        { "nats://:4222", "names no host" },
        { "nats://[::1", "no closing ]" },
        { "nats://ho$t:4222", "host has a character" },
        { "nats://127.0.0.1:4222/", "a path follows its host" },
        { "nats://h/choreo", "a path follows its host" },
        { "nats://[::1]:4222/x", "a path follows its host" },
        { "nats://127.0.0.1:4222,nats://b:x", "\"nats://b:x\"" },
        { ",", "names no NATS server" },
        { " , ,", "names no NATS server" },
    };
    for (size_t k = 0; k < sizeof bad_urls / sizeof bad_urls[0]; k++) {
        choreo_config *c = fresh();
        cr_expect_eq(choreo_config_set(c, "nats_url", bad_urls[k].url), CHOREO_ECONFIG, "%s",
                     bad_urls[k].url);
        cr_expect(strstr(choreo_last_error(), bad_urls[k].why), "%s: \"%s\"", bad_urls[k].url,
                  choreo_last_error());
        choreo_config_destroy(c);
    }
    const char *good[] = { "nats://127.0.0.1:4222", "localhost", "tls://a.example:4443",
                           "nats://u:p@h:4222", "[::1]:4222", "NATS://h",
                           "nats://a:1, nats://b:2 ,nats://c:3" };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        choreo_config *c = fresh();
        cr_expect_eq(choreo_config_set(c, "nats_url", good[k]), CHOREO_OK, "%s: %s", good[k],
                     choreo_last_error());
        choreo_config_destroy(c);
    }
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_set(c, "nats_url", "nats://user:s3cret@h:x"), CHOREO_ECONFIG);
    cr_assert_null(strstr(choreo_last_error(), "s3cret"), "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "nats://***@h:x"), "%s", choreo_last_error());
    /* A password with an @ in it is hidden whole. */
    cr_assert_eq(choreo_config_set(c, "nats_url", "nats://user:s3c@ret@h:x"), CHOREO_ECONFIG);
    cr_assert_null(strstr(choreo_last_error(), "ret"), "%s", choreo_last_error());
    cr_assert(strstr(choreo_last_error(), "nats://***@h:x"), "%s", choreo_last_error());
    choreo_config_destroy(c);
}

/* --help shows a program's values as the defaults, but not a password in
 * nats_url or in a PostgreSQL db URL. */
Test(config, help_shows_no_password_of_a_url)
{
    choreo_config *c = fresh();
    cr_assert_eq(choreo_config_set(c, "nats_url", "nats://alice:S3c@retPW@127.0.0.1:4299"),
                 CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(choreo_config_set(c, "db", "postgresql://bob:PgS3cret@127.0.0.1/shop"),
                 CHOREO_OK, "%s", choreo_last_error());
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    choreo_config_print_help(c, f);
    fclose(f);
    cr_assert_null(strstr(text, "S3c"), "%s", text);
    cr_assert_null(strstr(text, "retPW"), "%s", text);
    cr_assert(strstr(text, "[nats://***@127.0.0.1:4299]"), "%s", text);
    cr_assert(strstr(text, "[postgresql://127.0.0.1/shop]"), "%s", text);
    free(text);
    choreo_config_destroy(c);
}
