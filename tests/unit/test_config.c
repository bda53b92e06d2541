/* Configuration: defaults, flags, environment variables and their errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

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
    cr_assert_null(choreo_config_get(c, "no_such_key"));
    choreo_config_destroy(c);
}

Test(config, flags_are_consumed_and_other_arguments_kept_in_order)
{
    choreo_config *c = fresh();
    char *argv[] = { "prog", "--service", "order", "keep1", "--db=/tmp/x.db",
                     "--log-level", "debug", "--unknown", "--", "--service", NULL };
    int argc = 10;
    cr_assert_eq(choreo_config_from_args(c, &argc, argv), CHOREO_OK, "%s", choreo_last_error());
    cr_assert_eq(argc, 5);
    cr_assert_str_eq(argv[1], "keep1");
    cr_assert_str_eq(argv[2], "--unknown");
    cr_assert_str_eq(argv[3], "--");
    cr_assert_str_eq(argv[4], "--service");
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
    { "max_deliver", "1", "whole number from 2 to 1000" },
    { "ack_wait_ms", "ten", "whole number" },
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
