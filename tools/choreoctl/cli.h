/* The conventions of the choreoctl command line: exit codes, one-line error
 * messages, the flags and ID of a command, and the settings every command
 * needs before it touches a database. */
#ifndef CHOREOCTL_CLI_H
#define CHOREOCTL_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <choreo.h>

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,  /* the operation failed: database, NATS, unknown ID, wrong state */
    CTL_EXIT_USAGE = 2, /* the command line or the settings are wrong */
};

/* Prints "choreoctl: <message>" and a line break on stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What may follow a command's name. */
enum ctl_opt {
    CTL_OPT_JSON = 1,   /* --json */
    CTL_OPT_STATUS = 2, /* --status parked|retried|dropped|all */
    CTL_OPT_ID = 4,     /* one ID, required */
    CTL_OPT_ALL = 8,    /* --all, instead of the ID */
};

typedef struct ctl_args {
    bool help;
    bool json;
    bool all;
    const char *status; /* "parked", "retried", "dropped", or NULL for all */
    int64_t id;         /* > 0 when an ID was given */
} ctl_args;

/* Parses the arguments after the command cmd (e.g. "dead list"), which takes
 * the options in allowed. Returns CTL_EXIT_OK, with a->help set when --help
 * or -h was given (nothing else is checked then), or prints an error naming
 * the problem and returns CTL_EXIT_USAGE. */
int ctl_args_parse(const char *cmd, unsigned allowed, int argc, char **argv, ctl_args *a);

/* The settings, from the environment and the command line. */
typedef struct ctl_settings {
    choreo_config *cfg;
    char env_error[512]; /* why the CHOREO_* variables were refused, or "" */
} ctl_settings;

/* Checks the settings a command needs: no refused CHOREO_* variable, a db,
 * and credentials that go together. Prints the problem and returns
 * CTL_EXIT_USAGE, or returns CTL_EXIT_OK. */
int ctl_settings_check(ctl_settings *s);

/* Refuses a path that is missing or is not a choreo database before
 * choreo_admin_open, which would create or migrate it. Prints why and
 * returns CTL_EXIT_FAIL, or returns CTL_EXIT_OK. */
int ctl_check_database(const char *db);

#endif
