/* The conventions of the choreoctl command line: exit codes, one-line error
 * messages, the flags and ID of a command, and the settings every command
 * needs before it touches a database. */
#ifndef CHOREOCTL_CLI_H
#define CHOREOCTL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <choreo.h>

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAIL = 1,  /* the operation failed: database, NATS, unknown ID, wrong state */
    CTL_EXIT_USAGE = 2, /* the command line or the settings are wrong */
};

/* choreoctl's defaults of the settings whose defaults for a service do not
 * suit it; main applies them before the environment and the flags. A
 * command prints its result, and the library's info lines ("connected to
 * NATS") would only be noise. tail must say within seconds that a server
 * stopped answering: nats.c counts a connection lost at the third PING
 * interval without a PONG, about 6 s at 2000 ms (15 s at a service's 5000). */
#define CTL_DEFAULT_LOG_LEVEL "warn"
#define CTL_DEFAULT_PING_INTERVAL_MS "2000"

/* Prints "choreoctl: <message>" and a line break on stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The exit status of a library call that failed with st: a setting the
 * library refused (CHOREO_ECONFIG, such as a malformed database URL) is
 * the command line's fault, anything else the operation's. */
int ctl_exit_of(choreo_status st);

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

/* The value of the flag name at argv[*i], given as "--name VALUE" (*i then
 * moves to the value) or "--name=VALUE"; NULL when argv[*i] is another
 * flag, or when the value is missing, which sets *missing: none follows,
 * or what follows starts with "--" (the next flag; "--name=--x" gives such
 * a value). A flag that ctl_own_flags does not mark as repeating, given a
 * second time, ends choreoctl with a message and CTL_EXIT_USAGE. */
const char *ctl_flag_value(const char *name, int argc, char **argv, int *i, bool *missing);

/* An ID as the tables number their rows (dead list, review list): a
 * positive whole number in decimal, nothing else; *out is written only on
 * success. */
bool ctl_parse_id(const char *s, int64_t *out);

/* A whole number from 1 to max written in decimal, nothing else; *out is
 * written only on success. */
bool ctl_parse_count(const char *v, size_t max, size_t *out);

/* Most --db flags one command line may give (saga reads several). */
#define CTL_DB_MAX 64

/* The settings, from the environment and the command line. */
typedef struct ctl_settings {
    choreo_config *cfg;
    char env_error[512]; /* why the CHOREO_* variables were refused, or "" */
    /* Every --db given, in order (choreo_config_from_args keeps only the
     * last), and the NATS login as given: choreo_config_get shows secrets
     * as "***", but saga and tail connect to NATS themselves. All point
     * into argv or the environment; NULL when not given. */
    const char *dbs[CTL_DB_MAX];
    int ndbs;
    bool too_many_dbs;
    const char *nats_user, *nats_password, *nats_token;
} ctl_settings;

/* choreoctl's own flags, which choreo_config_from_args must leave in argv. */
typedef struct ctl_own_flag {
    const char *flag;
    bool takes_value;
    bool repeats; /* may be given more than once (--dir, --type); others only once */
} ctl_own_flag;

extern const ctl_own_flag ctl_own_flags[];
extern const size_t ctl_own_flag_count;

/* Reads, before choreo_config_from_args reorders argv, every --db and the
 * NATS login flags (--nats-user, --nats-password, --nats-token, falling
 * back to CHOREO_NATS_USER, ...), with the precedence the settings have:
 * the flag wins over the environment. It stops at "--".
 * choreo_config_from_args refuses a setting given twice, but status and
 * saga read several databases: every --db but the last is taken out of
 * argv (*argc shrinks), its value checked as the library checks a db
 * setting, and the last is left for choreo_config_from_args to set. A
 * "--db" without a value that can be taken ("--db --json") stays for the
 * library to refuse. Prints the problem and returns CTL_EXIT_USAGE, or
 * returns CTL_EXIT_OK. */
int ctl_settings_prescan(ctl_settings *s, int *argc, char **argv);

/* Checks the settings of a command that reads the stream and needs no
 * database setting (saga, tail): no refused CHOREO_* variable, and
 * settings that go together. Prints the problem and returns
 * CTL_EXIT_USAGE, or returns CTL_EXIT_OK. */
int ctl_settings_check_nats(ctl_settings *s);

/* Checks the settings a command needs: no refused CHOREO_* variable, a db,
 * and credentials that go together. Prints the problem after "<cmd>: " and
 * returns CTL_EXIT_USAGE, or returns CTL_EXIT_OK. */
int ctl_settings_check(const char *cmd, ctl_settings *s);

/* The first word after a command that has subcommands (dead, consumers):
 * none is a usage error naming the choices ("list or delete"), and --help
 * or -h prints help. Returns -1 when the subcommand in argv[0] is to be
 * run, else the exit status. */
int ctl_subcommand_intro(const char *cmd, const char *choices, int argc, char **argv,
                         void (*help)(FILE *f));

/* Checks the settings and the database they name (ctl_settings_check,
 * ctl_check_database), then opens it: to write (choreo_admin_open, which
 * brings choreo's tables up to this build's version) when writes, else to
 * read only (choreo_admin_open_readonly), so that a command that only reads takes no
 * write lock and leaves the schema of a database an older service runs on
 * as it is. Each error it prints starts with "<cmd>: " ("dead drop: "), as
 * the command's own do. *adm on CTL_EXIT_OK only. */
int ctl_admin_open(const char *cmd, ctl_settings *s, bool writes, choreo_admin **adm);

/* Refuses a database that is missing or is not a choreo database before
 * choreo_admin_open, which would create or migrate it: a SQLite path, or a
 * PostgreSQL URL (whose server must answer). Prints why after "<cmd>: "
 * and returns CTL_EXIT_FAIL, or returns CTL_EXIT_OK. */
int ctl_check_database(const char *cmd, const ctl_settings *s, const char *db);

/* Opens db (a choreo database, SQLite or PostgreSQL) to read it only
 * (choreo_admin_open_readonly) with the settings' busy_timeout_ms and
 * log_level; s->cfg is left as it is. The error is in choreo_last_error. */
choreo_status ctl_open_readonly(const ctl_settings *s, const char *db, choreo_admin **out);

/* Most bytes of a database's name as choreoctl shows it. */
#define CTL_DB_SHOWN_MAX 4096

/* db as choreoctl shows it (choreo_db_display: a PostgreSQL URL without
 * its password), malloc'd; NULL when out of memory. */
char *ctl_db_shown(const char *db);

/* Most --dir flags one command takes. */
#define CTL_DIR_MAX 16

/* Appends the --dir value v to dirs[0..*ndirs) (CTL_DIR_MAX of them). An
 * empty value would read no directory at all ("cannot read directory ")
 * and more than CTL_DIR_MAX do not fit: both print why after "<cmd>: "
 * and return CTL_EXIT_USAGE; else CTL_EXIT_OK. */
int ctl_dir_add(const char *cmd, const char *v, const char **dirs, int *ndirs);

/* The databases a command reads (saga, status): every --db given (or the
 * db setting), then every choreo database (*.db) of each --dir in name
 * order, each file once however it is named. The list owns its paths and
 * reasons. */
typedef struct ctl_db_list {
    char *path[CTL_DB_MAX * 2];
    char *why[CTL_DB_MAX * 2]; /* why path[i] is not a choreo database, or NULL */
    size_t n;
} ctl_db_list;

/* Fills l from s->dbs (after ctl_settings_check_nats) and the directories
 * dirs[0..ndirs): a --db (a file or a PostgreSQL URL) must be a choreo
 * database (ctl_check_database), a directory must hold at least one. With
 * keep_bad, a --db that is not one is listed all the same, with the reason
 * in l->why, for the command to report in its place; without, it is an
 * error. cmd ("status") starts the error messages. Prints the problem and
 * returns CTL_EXIT_FAIL (a path that cannot be read) or CTL_EXIT_USAGE
 * (too many databases), or returns CTL_EXIT_OK. Free l with
 * ctl_db_list_free in either case. */
int ctl_db_list_collect(const char *cmd, const ctl_settings *s, const char *const *dirs,
                        int ndirs, bool keep_bad, ctl_db_list *l);

/* Whether l holds path, under this or another name (a file is compared by
 * device and inode, a PostgreSQL URL as text). */
bool ctl_db_list_has(const ctl_db_list *l, const char *path);

/* Frees the paths of l and empties it. */
void ctl_db_list_free(ctl_db_list *l);

#endif
