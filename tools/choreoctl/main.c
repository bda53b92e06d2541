/* choreoctl: the operator's tool for a choreo service's parked messages,
 * durable consumers, status at a glance, orchestrated sagas and held steps,
 * and the events of the stream (saga timelines, tail).
 * Settings come exactly as for services (CHOREO_* variables, then flags);
 * what is left on the command line is the command and its own flags. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <choreo.h>

#include "cli.h"
#include "consumers.h"
#include "dead.h"
#include "help.h"
#include "review.h"
#include "saga.h"
#include "sagas.h"
#include "status.h"
#include "tail.h"

static int run(ctl_settings *s, int argc, char **argv)
{
    if (argc == 0) {
        ctl_error("missing command: try choreoctl --db FILE dead list, or see choreoctl --help");
        return CTL_EXIT_USAGE;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        ctl_help_main(stdout);
        return CTL_EXIT_OK;
    }
    if (strcmp(cmd, "--help-settings") == 0) {
        ctl_help_settings(stdout, s->cfg);
        return CTL_EXIT_OK;
    }
    if (strcmp(cmd, "dead") == 0)
        return ctl_dead_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "consumers") == 0)
        return ctl_consumers_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return ctl_status_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "sagas") == 0)
        return ctl_sagas_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "saga") == 0)
        return ctl_saga_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0)
        return ctl_tail_main(s, argc - 1, argv + 1);
    if (strcmp(cmd, "review") == 0)
        return ctl_review_main(s, argc - 1, argv + 1);
    if (cmd[0] == '-')
        ctl_error("unknown flag %s: see choreoctl --help for the settings and commands", cmd);
    else
        ctl_error("unknown command \"%s\": choreoctl has the commands dead (list, show, "
                  "retry, drop), consumers (list, delete), status, sagas, saga, tail and review "
                  "(list, approve, reject); see choreoctl --help",
                  cmd);
    return CTL_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    ctl_settings s;
    memset(&s, 0, sizeof s);
    if (choreo_config_create(&s.cfg) != CHOREO_OK) {
        ctl_error("%s", choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    int rc;
    /* choreoctl's own defaults (see cli.h); the CHOREO_* variables and the
     * flags still win. */
    if (choreo_config_set(s.cfg, "log_level", CTL_DEFAULT_LOG_LEVEL) != CHOREO_OK ||
        choreo_config_set(s.cfg, "nats_ping_interval_ms", CTL_DEFAULT_PING_INTERVAL_MS) !=
            CHOREO_OK) {
        ctl_error("%s", choreo_last_error());
        rc = CTL_EXIT_FAIL;
        goto done;
    }
    /* A refused variable is reported only when a command needs the
     * settings, so that --help works in any environment. */
    if (choreo_config_from_env(s.cfg) != CHOREO_OK)
        snprintf(s.env_error, sizeof s.env_error, "%s", choreo_last_error());
    /* The commands' own flags; any other --flag is refused as a typo. */
    for (size_t i = 0; i < ctl_own_flag_count; i++) {
        if (choreo_config_accept_flag(s.cfg, ctl_own_flags[i].flag,
                                      ctl_own_flags[i].takes_value) != CHOREO_OK) {
            ctl_error("%s", choreo_last_error());
            rc = CTL_EXIT_FAIL;
            goto done;
        }
    }
    /* Before the settings parse reorders argv, which must hold one --db
     * at most by then. */
    if ((rc = ctl_settings_prescan(&s, &argc, argv)) != CTL_EXIT_OK)
        goto done;
    if (choreo_config_from_args(s.cfg, &argc, argv) != CHOREO_OK) {
        const char *why = choreo_last_error();
        ctl_error("%s%s", why, strstr(why, "--help") ? "" : " (see choreoctl --help)");
        rc = CTL_EXIT_USAGE;
        goto done;
    }
    rc = run(&s, argc - 1, argv + 1);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl_error("cannot write the output: the terminal or pipe was closed");
        rc = CTL_EXIT_FAIL;
    }
done:
    choreo_config_destroy(s.cfg);
    return rc;
}
