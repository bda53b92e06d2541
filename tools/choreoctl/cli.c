/* Command-line parsing shared by choreoctl's commands. Settings flags (--db,
 * --nats-url, ...) have already been taken out of argv by
 * choreo_config_from_args; what is left here is the command's own flags and
 * its ID, and anything else is a usage error with a pointer to --help. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ctl_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("choreoctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int ctl_exit_of(choreo_status st)
{
    return st == CHOREO_ECONFIG ? CTL_EXIT_USAGE : CTL_EXIT_FAIL;
}

const ctl_own_flag ctl_own_flags[] = {
    /* flag, takes a value, may repeat */
    { "--json",           false, false },
    { "--all",            false, false },
    { "--status",         true,  false },
    { "--force",          false, false },
    { "--help-settings",  false, false },
    { "--dir",            true,  true },
    { "--svg",            true,  false },
    { "--limit",          true,  false },
    { "--type",           true,  true },
    { "--saga",           true,  false },
    { "--from-start",     false, false },
    { "--state",          true,  false },
    { "--note",           true,  false },
    { "--by",             true,  false },
};
const size_t ctl_own_flag_count = sizeof ctl_own_flags / sizeof ctl_own_flags[0];

/* Whether the flag (up to any '=') is one of ours that takes no value. */
static bool own_flag_without_value(const char *arg, size_t len)
{
    for (size_t i = 0; i < ctl_own_flag_count; i++)
        if (strlen(ctl_own_flags[i].flag) == len && strncmp(arg, ctl_own_flags[i].flag, len) == 0)
            return !ctl_own_flags[i].takes_value;
    return strncmp(arg, "--help", len) == 0 && len == 6;
}

/* Checks the value of a --db taken out of argv the way
 * choreo_config_from_args checks the one left to it, so that each --db is
 * refused with the same words ("flag --db: must not be empty"). */
static int check_db_flag(char *flag, char *value)
{
    choreo_config *cfg = NULL;
    char prog[] = "choreoctl";
    char *args[] = { prog, flag, value, NULL };
    int n = value ? 3 : 2;
    choreo_status st = choreo_config_create(&cfg);
    if (st == CHOREO_OK)
        st = choreo_config_from_args(cfg, &n, args);
    choreo_config_destroy(cfg);
    if (st == CHOREO_OK)
        return CTL_EXIT_OK;
    const char *why = choreo_last_error();
    ctl_error("%s%s", why, strstr(why, "--help") ? "" : " (see choreoctl --help)");
    return ctl_exit_of(st);
}

int ctl_settings_prescan(ctl_settings *s, int *argc, char **argv)
{
    s->nats_user = getenv("CHOREO_NATS_USER");
    s->nats_password = getenv("CHOREO_NATS_PASSWORD");
    s->nats_token = getenv("CHOREO_NATS_TOKEN");
    /* The last --db that can be taken out, as argv[last .. last + span). */
    int last = -1, span = 0, i = 1;
    for (; i < *argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value = NULL;
        int at = i;
        if (eq)
            value = eq + 1;
        else if (!own_flag_without_value(arg, len) && i + 1 < *argc)
            value = argv[++i];
        if (!value)
            continue;
        /* Every choreo setting takes a value, so skipping one keeps the
         * scan in step with choreo_config_from_args. */
        if (len == 4 && strncmp(arg, "--db", 4) == 0) {
            if (s->ndbs < CTL_DB_MAX)
                s->dbs[s->ndbs++] = value;
            else
                s->too_many_dbs = true;
            /* "--db --json" forgot the value: the library says so. */
            if (!eq && strncmp(value, "--", 2) == 0)
                continue;
            /* Only the last is left in argv; the one before it goes now
             * (the scan has passed it, so blanking it is safe). */
            if (last >= 0) {
                int rc = check_db_flag(argv[last], span == 2 ? argv[last + 1] : NULL);
                if (rc != CTL_EXIT_OK)
                    return rc;
                for (int k = 0; k < span; k++)
                    argv[last + k] = NULL;
            }
            last = at;
            span = i - at + 1;
        } else if (len == 11 && strncmp(arg, "--nats-user", 11) == 0) {
            s->nats_user = value;
        } else if (len == 15 && strncmp(arg, "--nats-password", 15) == 0) {
            s->nats_password = value;
        } else if (len == 12 && strncmp(arg, "--nats-token", 12) == 0) {
            s->nats_token = value;
        }
    }
    int out = 1;
    for (int k = 1; k < *argc; k++)
        if (argv[k])
            argv[out++] = argv[k];
    *argc = out;
    argv[out] = NULL;
    return CTL_EXIT_OK;
}

int ctl_settings_check_nats(ctl_settings *s)
{
    if (s->env_error[0]) {
        ctl_error("%s", s->env_error);
        return CTL_EXIT_USAGE;
    }
    if (s->too_many_dbs) {
        ctl_error("more than %d --db flags: put the databases in one directory and pass --dir",
                  CTL_DB_MAX);
        return CTL_EXIT_USAGE;
    }
    /* Without a --db flag, the db setting (CHOREO_DB) is the one database. */
    const char *db = choreo_config_get(s->cfg, "db");
    if (s->ndbs == 0 && db)
        s->dbs[s->ndbs++] = db;
    /* The library's checks of the other settings (credentials and TLS
     * files that go together, ...) want a service and a database; these
     * commands read databases only through s->dbs, so placeholders stand
     * in for them. */
    if (!choreo_config_get(s->cfg, "service") &&
        choreo_config_set(s->cfg, "service", "choreoctl") != CHOREO_OK) {
        ctl_error("%s", choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    if (!db && choreo_config_set(s->cfg, "db", "-") != CHOREO_OK) {
        ctl_error("%s", choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    if (choreo_config_validate(s->cfg) != CHOREO_OK) {
        ctl_error("%s", choreo_last_error());
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

bool ctl_parse_id(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            return false;
        v = v * 10 + digit;
    }
    if (v == 0)
        return false;
    *out = v;
    return true;
}

static int set_status(const char *cmd, const char *value, ctl_args *a)
{
    static const char *const known[] = { "parked", "retried", "dropped" };
    if (strcmp(value, "all") == 0) {
        a->status = NULL;
        return CTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(value, known[i]) == 0) {
            a->status = known[i];
            return CTL_EXIT_OK;
        }
    }
    ctl_error("%s: unknown status \"%s\": use parked, retried, dropped or all", cmd, value);
    return CTL_EXIT_USAGE;
}

static int positional(const char *cmd, unsigned allowed, const char *arg, ctl_args *a)
{
    if (!(allowed & CTL_OPT_ID) || a->id > 0) {
        ctl_error("%s: unexpected argument \"%s\": see choreoctl %s --help", cmd, arg, cmd);
        return CTL_EXIT_USAGE;
    }
    if (!ctl_parse_id(arg, &a->id)) {
        ctl_error("%s: invalid ID \"%s\": an ID is a positive whole number of at most 19 "
                  "digits, as in the ID column of choreoctl dead list", cmd, arg);
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

int ctl_args_parse(const char *cmd, unsigned allowed, int argc, char **argv, ctl_args *a)
{
    memset(a, 0, sizeof *a);
    a->status = "parked";
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            a->help = true;
            return CTL_EXIT_OK;
        }
    }
    bool flags = true;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *v;
        bool missing = false;
        int rc = CTL_EXIT_OK;
        /* "-12" is a wrong ID rather than an unknown flag. */
        bool flag = flags && arg[0] == '-' && arg[1] != '\0' && !(arg[1] >= '0' && arg[1] <= '9');
        if (flags && strcmp(arg, "--") == 0) {
            flags = false;
        } else if (!flag) {
            rc = positional(cmd, allowed, arg, a);
        } else if ((allowed & CTL_OPT_JSON) && strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if ((allowed & CTL_OPT_ALL) && strcmp(arg, "--all") == 0) {
            a->all = true;
        } else if ((allowed & CTL_OPT_STATUS) &&
                   (v = ctl_flag_value("--status", argc, argv, &i, &missing)) != NULL) {
            rc = set_status(cmd, v, a);
        } else if (missing) {
            ctl_error("%s: --status needs a value: parked, retried, dropped or all", cmd);
            rc = CTL_EXIT_USAGE;
        } else {
            ctl_error("%s: unknown flag %s: see choreoctl %s --help", cmd, arg, cmd);
            rc = CTL_EXIT_USAGE;
        }
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    if ((allowed & CTL_OPT_ID) && a->id > 0 && a->all) {
        ctl_error("%s: give either an ID or --all, not both", cmd);
        return CTL_EXIT_USAGE;
    }
    if ((allowed & CTL_OPT_ID) && a->id == 0 && !a->all) {
        ctl_error("%s: missing ID%s: give the number from the ID column of choreoctl dead list",
                  cmd, (allowed & CTL_OPT_ALL) ? " (or --all)" : "");
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* Whether ctl_own_flags marks the flag name as one that may repeat. */
static bool repeats(const char *name)
{
    for (size_t i = 0; i < ctl_own_flag_count; i++)
        if (strcmp(ctl_own_flags[i].flag, name) == 0)
            return ctl_own_flags[i].repeats;
    return false;
}

/* Whether argv[i] gives the flag name ("--name" or "--name=..."). */
static bool gives(const char *arg, const char *name, size_t n)
{
    return strncmp(arg, name, n) == 0 && (arg[n] == '=' || arg[n] == '\0');
}

const char *ctl_flag_value(const char *name, int argc, char **argv, int *i, bool *missing)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (!gives(arg, name, n))
        return NULL;
    /* A flag of one value given twice would keep the last silently, and
     * the first may be the one meant; --dir and --type add up instead. */
    if (!repeats(name))
        for (int k = 0; k < *i && strcmp(argv[k], "--") != 0; k++)
            if (gives(argv[k], name, n)) {
                ctl_error("%s is given twice: give it once", name);
                exit(CTL_EXIT_USAGE);
            }
    if (arg[n] == '=')
        return arg + n + 1;
    /* "--svg --json" forgot the file name: taking "--json" for it would
     * write a file of that name and lose the flag. */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

bool ctl_parse_count(const char *v, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || *end || !(v[0] >= '0' && v[0] <= '9') || n < 1 || n > max)
        return false;
    *out = (size_t)n;
    return true;
}

int ctl_settings_check(const char *cmd, ctl_settings *s)
{
    if (s->env_error[0]) {
        ctl_error("%s: %s", cmd, s->env_error);
        return CTL_EXIT_USAGE;
    }
    if (!choreo_config_get(s->cfg, "db")) {
        ctl_error("%s: no database given: pass --db FILE (the service's SQLite file) or --db "
                  "postgresql://USER@HOST:PORT/DBNAME, or set CHOREO_DB", cmd);
        return CTL_EXIT_USAGE;
    }
    /* choreoctl is not a service, but the library's checks of the other
     * settings (credentials that go together, ...) apply to it as well, and
     * they want a service name; it also names choreoctl in log lines. */
    if (!choreo_config_get(s->cfg, "service") &&
        choreo_config_set(s->cfg, "service", "choreoctl") != CHOREO_OK) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return CTL_EXIT_FAIL;
    }
    if (choreo_config_validate(s->cfg) != CHOREO_OK) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return CTL_EXIT_USAGE;
    }
    return CTL_EXIT_OK;
}

/* The settings a read-only handle uses, in a configuration of its own:
 * s->cfg's db setting may be what s->dbs points to. */
static choreo_status readonly_config(const ctl_settings *s, const char *db, choreo_config **out)
{
    static const char *const kept[] = { "busy_timeout_ms", "log_level" };
    choreo_config *cfg = NULL;
    choreo_status st = choreo_config_create(&cfg);
    if (st == CHOREO_OK)
        st = choreo_config_set(cfg, "service", "choreoctl");
    if (st == CHOREO_OK)
        st = choreo_config_set(cfg, "db", db);
    for (size_t i = 0; st == CHOREO_OK && i < sizeof kept / sizeof kept[0]; i++) {
        const char *v = choreo_config_get(s->cfg, kept[i]);
        if (v)
            st = choreo_config_set(cfg, kept[i], v);
    }
    if (st != CHOREO_OK) {
        choreo_config_destroy(cfg);
        return st;
    }
    *out = cfg;
    return CHOREO_OK;
}

choreo_status ctl_open_readonly(const ctl_settings *s, const char *db, choreo_admin **out)
{
    choreo_config *cfg = NULL;
    choreo_status st = readonly_config(s, db, &cfg);
    if (st == CHOREO_OK)
        st = choreo_admin_open_readonly(out, cfg);
    choreo_config_destroy(cfg);
    return st;
}

char *ctl_db_shown(const char *db)
{
    char shown[CTL_DB_SHOWN_MAX];
    choreo_db_display(db, shown, sizeof shown);
    return strdup(shown);
}

/* A PostgreSQL database has no file to look at: opening it to read says
 * whether the server answers and whether it holds choreo's tables. */
static int check_postgres(const ctl_settings *s, const char *db, char *why, size_t cap)
{
    choreo_admin *adm = NULL;
    choreo_status st = ctl_open_readonly(s, db, &adm);
    if (st != CHOREO_OK) {
        snprintf(why, cap, "%s", choreo_last_error());
        return ctl_exit_of(st);
    }
    choreo_admin_close(adm);
    return CTL_EXIT_OK;
}

/* ctl_check_database, with the reason in why (size cap) instead of on
 * stderr. */
static int check_database(const ctl_settings *s, const char *db, char *why, size_t cap)
{
    if (choreo_db_is_postgres(db))
        return check_postgres(s, db, why, cap);
    struct stat st;
    if (stat(db, &st) != 0) {
        snprintf(why, cap, "cannot open database %s: %s; pass the service's SQLite file with "
                 "--db FILE", db, strerror(errno));
        return CTL_EXIT_FAIL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, cap, "%s is not a file: pass the service's SQLite file with --db FILE", db);
        return CTL_EXIT_FAIL;
    }
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(h, 5000);
        rc = sqlite3_prepare_v2(h,
                                "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'choreo_dead'",
                                -1, &q, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    int out = CTL_EXIT_OK;
    if (rc == SQLITE_DONE) {
        snprintf(why, cap, "%s is not a choreo service's database (it has no table "
                 "choreo_dead): pass the service's db setting with --db FILE", db);
        out = CTL_EXIT_FAIL;
    } else if (rc != SQLITE_ROW) {
        /* A reader of a WAL database still writes its -shm file, beside it. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", db);
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir] = '\0'; /* "/x.db": the directory is "/" */
        else
            snprintf(dir, sizeof dir, ".");
        const char *hint =
            access(db, R_OK) != 0
                ? "this user may not read it: run choreoctl as the service's user"
            : access(dir, W_OK | X_OK) != 0
                ? "this user may not write its directory, where SQLite keeps the -shm file "
                  "that even a reader of a WAL database writes: run choreoctl as the "
                  "service's user"
                : "check that it is the service's SQLite file";
        snprintf(why, cap, "cannot read database %s: %s; %s", db,
                 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc), hint);
        out = CTL_EXIT_FAIL;
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    return out;
}

/* Refuses a path that is missing or is not a choreo database before
 * choreo_admin_open, which would create or migrate it: a typo in --db must
 * not leave a new database behind. */
int ctl_check_database(const char *cmd, const ctl_settings *s, const char *db)
{
    char why[CTL_DB_SHOWN_MAX + 512];
    int rc = check_database(s, db, why, sizeof why);
    if (rc != CTL_EXIT_OK)
        ctl_error("%s: %s", cmd, why);
    return rc;
}

int ctl_subcommand_intro(const char *cmd, const char *choices, int argc, char **argv,
                         void (*help)(FILE *f))
{
    if (argc == 0) {
        ctl_error("%s: missing subcommand: use %s (see choreoctl %s --help)", cmd, choices, cmd);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        help(stdout);
        return CTL_EXIT_OK;
    }
    return -1;
}

int ctl_admin_open(const char *cmd, ctl_settings *s, bool writes, choreo_admin **adm)
{
    int rc = ctl_settings_check(cmd, s);
    if (rc == CTL_EXIT_OK)
        rc = ctl_check_database(cmd, s, choreo_config_get(s->cfg, "db"));
    if (rc != CTL_EXIT_OK)
        return rc;
    choreo_status st = writes ? choreo_admin_open(adm, s->cfg)
                              : choreo_admin_open_readonly(adm, s->cfg);
    if (st != CHOREO_OK) {
        ctl_error("%s: %s", cmd, choreo_last_error());
        return ctl_exit_of(st);
    }
    return CTL_EXIT_OK;
}

int ctl_dir_add(const char *cmd, const char *v, const char **dirs, int *ndirs)
{
    if (!*v) {
        ctl_error("%s: --dir is empty: give the directory that holds the services' databases "
                  "(see choreoctl %s --help)", cmd, cmd);
        return CTL_EXIT_USAGE;
    }
    if (*ndirs == CTL_DIR_MAX) {
        ctl_error("%s: more than %d --dir flags: put the databases in fewer directories, or "
                  "name them with --db", cmd, CTL_DIR_MAX);
        return CTL_EXIT_USAGE;
    }
    dirs[(*ndirs)++] = v;
    return CTL_EXIT_OK;
}

/* Whether the file is a choreo database (has choreo's tables). */
static bool is_choreo_db(const char *path)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    bool yes = false;
    if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                              "'choreo_inbox'", -1, &q, NULL) == SQLITE_OK)
        yes = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    sqlite3_close(h);
    return yes;
}

/* Each database is read once, however it is named (CHOREO_DB and a --dir
 * holding the same file, say). */
bool ctl_db_list_has(const ctl_db_list *l, const char *path)
{
    struct stat a, b;
    if (choreo_db_is_postgres(path)) {
        for (size_t i = 0; i < l->n; i++)
            if (strcmp(l->path[i], path) == 0)
                return true;
        return false;
    }
    if (stat(path, &a) != 0)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (stat(l->path[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
            return true;
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.db files of dir, malloc'd "dir/name" paths in name order. */
static int dir_files(const char *cmd, const char *dir, char **found, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) {
        ctl_error("%s: cannot read directory %s: %s; pass --dir with the directory that "
                  "holds the services' databases", cmd, dir, strerror(errno));
        return CTL_EXIT_FAIL;
    }
    int rc = CTL_EXIT_OK;
    struct dirent *de;
    *n = 0;
    while (rc == CTL_EXIT_OK && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 4 || strcmp(de->d_name + len - 3, ".db") != 0)
            continue;
        if (*n == CTL_DB_MAX) {
            ctl_error("%s: %s holds more than %d *.db files; pass the services' ones with "
                      "--db", cmd, dir, CTL_DB_MAX);
            rc = CTL_EXIT_USAGE;
            break;
        }
        size_t cap = strlen(dir) + len + 2;
        if ((found[*n] = malloc(cap)) == NULL) {
            ctl_error("%s: out of memory", cmd);
            rc = CTL_EXIT_FAIL;
            break;
        }
        snprintf(found[(*n)++], cap, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    qsort(found, *n, sizeof *found, by_name);
    return rc;
}

static int add_dir(const char *cmd, ctl_db_list *l, const char *dir)
{
    char *found[CTL_DB_MAX];
    size_t n = 0, used = 0;
    int rc = dir_files(cmd, dir, found, &n);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        /* Other SQLite files may share the directory: only choreo's count. */
        bool take = rc == CTL_EXIT_OK && stat(found[i], &st) == 0 && S_ISREG(st.st_mode) &&
                    is_choreo_db(found[i]);
        if (take && ctl_db_list_has(l, found[i])) {
            used++;
            take = false;
        } else if (take && l->n == sizeof l->path / sizeof l->path[0]) {
            ctl_error("%s: more than %zu databases: pass fewer --db and --dir", cmd,
                      sizeof l->path / sizeof l->path[0]);
            rc = CTL_EXIT_USAGE;
            take = false;
        }
        if (!take) {
            free(found[i]);
            continue;
        }
        l->path[l->n++] = found[i];
        used++;
    }
    if (rc == CTL_EXIT_OK && used == 0) {
        ctl_error("%s: no choreo service database (*.db) in %s; pass the directory the "
                  "services keep their databases in, or --db FILE", cmd, dir);
        rc = CTL_EXIT_FAIL;
    }
    return rc;
}

int ctl_db_list_collect(const char *cmd, const ctl_settings *s, const char *const *dirs,
                        int ndirs, bool keep_bad, ctl_db_list *l)
{
    memset(l, 0, sizeof *l);
    for (int i = 0; i < s->ndbs; i++) {
        char why[CTL_DB_SHOWN_MAX + 512];
        int rc = check_database(s, s->dbs[i], why, sizeof why);
        if (rc != CTL_EXIT_OK && !keep_bad) {
            ctl_error("%s", why);
            return rc;
        }
        if (ctl_db_list_has(l, s->dbs[i]))
            continue;
        if ((l->path[l->n] = strdup(s->dbs[i])) == NULL ||
            (rc != CTL_EXIT_OK && (l->why[l->n] = strdup(why)) == NULL)) {
            free(l->path[l->n]);
            l->path[l->n] = NULL;
            ctl_error("%s: out of memory", cmd);
            return CTL_EXIT_FAIL;
        }
        l->n++;
    }
    for (int i = 0; i < ndirs; i++) {
        int rc = add_dir(cmd, l, dirs[i]);
        if (rc != CTL_EXIT_OK)
            return rc;
    }
    return CTL_EXIT_OK;
}

void ctl_db_list_free(ctl_db_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->path[i]);
        free(l->why[i]);
        l->why[i] = NULL;
    }
    l->n = 0;
}
