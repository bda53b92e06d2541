/* The choreo-gen program as a build or a person runs it: exit codes, the
 * files it writes, its messages, and --help. $CHOREO_GEN names the program
 * and $GEN_TEST_DIR this folder (both set by meson). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "natsd.h"

/* Runs argv[0] (a path, or a name looked up in PATH) with its arguments;
 * its stdout and stderr together go to out. Returns the exit code. */
static int run_argv(char *out, size_t cap, char **argv)
{
    const char *prog = argv[0];
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execvp(prog, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t k;
    while ((k = read(fds[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "%s was killed by signal %d", prog, WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* Runs prog with the given arguments (NULL-ended), as run_argv does. */
static int vrun(const char *prog, char *out, size_t cap, va_list ap)
{
    char *argv[24];
    int argc = 0;
    argv[argc++] = (char *)prog;
    for (char *a; argc < 23 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    argv[argc] = NULL;
    return run_argv(out, cap, argv);
}

/* Runs choreo-gen with the given arguments (NULL-ended). */
static int run(char *out, size_t cap, ...)
{
    const char *prog = getenv("CHOREO_GEN");
    cr_assert_not_null(prog, "CHOREO_GEN must name the choreo-gen program");
    va_list ap;
    va_start(ap, cap);
    int code = vrun(prog, out, cap, ap);
    va_end(ap);
    return code;
}

/* Runs the program $var names (a compiler meson found) with the given
 * arguments; -1 when the variable is empty (no such compiler). */
static int run_tool(const char *var, char *out, size_t cap, ...)
{
    const char *prog = getenv(var);
    cr_assert_not_null(prog, "%s must be set (by meson)", var);
    if (!*prog)
        return -1;
    va_list ap;
    va_start(ap, cap);
    int code = vrun(prog, out, cap, ap);
    va_end(ap);
    return code;
}

/* The temp directories this test made, removed with what is in them when
 * it ends. */
static char made_dirs[8][200];
static int n_made_dirs;

static void remove_made_dirs(void)
{
    for (int i = 0; i < n_made_dirs; i++)
        natsd_remove_tree(made_dirs[i]);
    n_made_dirs = 0;
}

TestSuite(gen_cli, .fini = remove_made_dirs);

static void tmpdir(char *out, size_t cap)
{
    cr_assert_eq(natsd_tmp_path(out, cap, "choreo-gen-cli-XXXXXX"), 0, "TMPDIR is too long");
    cr_assert_lt(n_made_dirs, 8, "a test makes at most 8 temp directories");
    cr_assert_lt(strlen(out), sizeof made_dirs[0]);
    cr_assert_not_null(mkdtemp(out));
    strcpy(made_dirs[n_made_dirs++], out);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static bool exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static size_t count_entries(const char *dir)
{
    char cmd[600], out[64];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    cr_assert_not_null(fgets(out, sizeof out, p));
    pclose(p);
    return (size_t)strtoul(out, NULL, 10);
}

/* A schema with an error at 1:7, in a new temporary directory. */
static void broken_schema(char *out, size_t cap)
{
    char dir[200];
    tmpdir(dir, sizeof dir);
    snprintf(out, cap, "%s/broken.events", dir);
    write_text(out, "event {\n");
}

static void schema_path(char *out, size_t cap, const char *name)
{
    const char *dir = getenv("GEN_TEST_DIR");
    cr_assert_not_null(dir, "GEN_TEST_DIR must name tests/unit/gen");
    snprintf(out, cap, "%s/%s", dir, name);
}

Test(gen_cli, help_describes_every_option_and_exit_code)
{
    char out[8192];
    cr_assert_eq(run(out, sizeof out, "--help", NULL), 0);
    static const char *const must[] = {"--prefix", "--output-dir", "--check", "--check-compat",
                                       "--check-consumer PRODUCER CONSUMER", "--version",
                                       "--nats-permissions SERVICES SCHEMA",
                                       "--subject-prefix PREFIX", "--stream NAME", "--no-users",
                                       "--private-inboxes", "-o, --output FILE",
                                       "events/README.md", "  0 ", "  1 ", "  2 ", "  3 ",
                                       "  64 "};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        cr_expect(strstr(out, must[i]), "--help does not mention %s", must[i]);
    cr_assert_eq(run(out, sizeof out, "-h", NULL), 0);
    cr_assert_eq(run(out, sizeof out, "--version", NULL), 0);
    cr_assert(strncmp(out, "choreo-gen ", 11) == 0, "%s", out);
}

Test(gen_cli, generates_the_header_and_source_named_after_the_prefix)
{
    char dir[200], schema[512], out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, "--prefix", "demo", "-o", dir, schema, NULL), 0, "%s", out);
    cr_assert_str_eq(out, "");
    cr_assert(exists(dir, "demo_events.h"));
    cr_assert(exists(dir, "demo_events.c"));
    cr_assert_eq(count_entries(dir), 2, "temporary files were left behind");
    char h[512];
    snprintf(h, sizeof h, "%s/demo_events.h", dir);
    FILE *f = fopen(h, "r");
    cr_assert_not_null(f);
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    cr_assert(strstr(text, "#ifndef DEMO_EVENTS_H"));
    cr_assert(strstr(text, "choreo_status demo_emit_all_types(choreo_tx *tx, const char *saga,"));
    cr_assert(strstr(text, "from all_types.events."), "the header names its schema");
}

Test(gen_cli, the_prefix_defaults_to_the_schema_file_name)
{
    char dir[200], schema[512], out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(run(out, sizeof out, schema, NULL), 0, "%s", out);
    cr_assert(exists(dir, "all_types_events.h"));
    cr_assert(exists(dir, "all_types_events.c"));
    char sub[256];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(run(out, sizeof out, "--output-dir=sub", "--prefix=x", schema, NULL), 0, "%s",
                 out);
    cr_assert(exists(sub, "x_events.h"));
}

Test(gen_cli, schema_errors_exit_2_with_file_line_and_column)
{
    char dir[200], path[512], out[4096];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.events", dir);
    write_text(path, "event A v1 {\n  n: integer\n  n: i32\n}\n");
    cr_assert_eq(run(out, sizeof out, "-o", dir, path, NULL), 2);
    char want[1024];
    snprintf(want, sizeof want,
             "%s:2:6: error: unknown type 'integer': use string, bytes, bool, i32, i64, u64, "
             "f64, timestamp, list<T> or a record declared above\n",
             path);
    cr_assert(strstr(out, want), "got:\n%s", out);
    cr_assert_eq(count_entries(dir), 1, "nothing may be written for a bad schema");
    cr_assert_eq(run(out, sizeof out, "--check", path, NULL), 2);
}

/* Nesting deep enough to overflow a recursive parser's stack. */
Test(gen_cli, deeply_nested_schemas_exit_2_in_every_mode)
{
    static const char *const opens[] = {"[", "list<"};
    char dir[200], path[512];
    static char out[16384];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/deep.events", dir);
    for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(i == 0 ? "event A v1 {\n  x: list<i32> = " : "event A v1 {\n  x: ", f);
        for (int k = 0; k < 50000; k++)
            fputs(opens[i], f);
        fputs(i == 0 ? "\n}\n" : "i32\n}\n", f);
        fclose(f);
        cr_expect_eq(run(out, sizeof out, "-o", dir, path, NULL), 2, "%s", out);
        cr_expect(strstr(out, "nested more than 64 levels deep"), "%s", out);
        cr_expect_eq(run(out, sizeof out, "--check", path, NULL), 2, "%s", out);
        cr_expect_eq(run(out, sizeof out, "--check-compat", path, path, NULL), 2, "%s", out);
        cr_expect_eq(run(out, sizeof out, "--check-consumer", path, path, NULL), 2, "%s", out);
    }
    cr_assert_eq(count_entries(dir), 1, "nothing may be written for a bad schema");
}

/* Comments and defaults holding what C reads specially in a comment: the
 * start of a comment ("/" "*": -Wcomment) and a trigraph ("?" "?" "/" at the end
 * of a line splices the next one in C11, and g++ warns that it ignores it). */
Test(gen_cli, generated_code_compiles_cleanly_whatever_comments_and_defaults_hold)
{
    char dir[200], path[512], src[512], hdr_user[512], inc[600];
    static char out[16384];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.events", dir);
    write_text(path, "# Paths look like /*.txt\n"
                     "event A v1 {\n"
                     "  glob: string = \"/*\"\n"
                     "  # what? ?\?/\n"
                     "  # more\n"
                     "  x: i32\n"
                     "  odd: string = \"a?\?/b*/c?\?\?/*\"  # ends */ /* ?\?=\n"
                     "  globs: list<string> = [\"/*\", \"?\", \"?/\"]\n"
                     "}\n");
    cr_assert_eq(run(out, sizeof out, "-p", "c", "-o", dir, path, NULL), 0, "%s", out);
    const char *fw = getenv("GEN_CHOREO_INCLUDE");
    cr_assert_not_null(fw);
    snprintf(inc, sizeof inc, "-I%s", fw);
    char dir_inc[256];
    snprintf(dir_inc, sizeof dir_inc, "-I%s", dir);
    snprintf(src, sizeof src, "%s/c_events.c", dir);
    char obj[256];
    snprintf(obj, sizeof obj, "%s/c_events.o", dir);
    cr_expect_eq(run_tool("GEN_CC", out, sizeof out, "-std=c11", "-Wall", "-Wextra", "-Wpedantic",
                          "-Werror", inc, dir_inc, "-c", src, "-o", obj, NULL),
                 0, "the generated source does not compile cleanly:\n%s", out);
    snprintf(hdr_user, sizeof hdr_user, "%s/user.cc", dir);
    write_text(hdr_user, "#include \"c_events.h\"\n");
    int code = run_tool("GEN_CXX", out, sizeof out, "-std=c++17", "-Wall", "-Wextra", "-Werror",
                        "-x", "c++", "-fsyntax-only", inc, dir_inc, hdr_user, NULL);
    if (code < 0)
        cr_log_warn("no C++ compiler found: the header was not compiled as C++");
    else
        cr_expect_eq(code, 0, "the generated header does not compile as C++:\n%s", out);
}

static void read_file(const char *dir, const char *name, char *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* A file of the user's that happens to have an output's name is kept,
 * unless --force says to replace it; choreo-gen's own files are replaced. */
Test(gen_cli, files_choreo_gen_did_not_write_are_replaced_only_with_force)
{
    char dir[200], path[512], schema[512], services[512], events[512];
    static char out[4096], text[65536];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, "-p", "demo", "-o", dir, schema, NULL), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out, "-p", "demo", "-o", dir, schema, NULL), 0,
                 "choreo-gen's own files must be replaced: %s", out);
    snprintf(path, sizeof path, "%s/demo_events.c", dir);
    write_text(path, "/* my own code */\n");
    cr_assert_eq(run(out, sizeof out, "-p", "demo", "-o", dir, schema, NULL), 3, "%s", out);
    char want[1024];
    snprintf(want, sizeof want, "choreo-gen: refusing to replace %s: choreo-gen did not write it "
             "(its first lines lack \"Generated by choreo-gen\"); move it away, or give --force "
             "to replace it\n", path);
    cr_assert_str_eq(out, want);
    read_file(dir, "demo_events.c", text, sizeof text);
    cr_assert_str_eq(text, "/* my own code */\n");
    cr_assert_eq(count_entries(dir), 2, "temporary files were left behind");
    cr_assert_eq(run(out, sizeof out, "-p", "demo", "-o", dir, "--force", schema, NULL), 0, "%s",
                 out);
    read_file(dir, "demo_events.c", text, sizeof text);
    cr_assert(strncmp(text, "/* Generated by choreo-gen ", 27) == 0, "%.80s", text);

    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    write_text(path, "# my server's configuration\n");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", path, NULL),
                 3, "%s", out);
    cr_assert(strstr(out, "refusing to replace"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", path,
                     "--force", NULL),
                 0, "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", path, NULL),
                 0, "its own permissions file must be replaced: %s", out);
    cr_assert_eq(run(out, sizeof out, "--check", "--force", schema, NULL), 64, "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "--force", NULL),
                 64, "%s", out);
}

/* The header and the source are one pair: when one of them cannot be
 * written, neither is replaced. */
Test(gen_cli, a_failed_write_leaves_the_previous_pair_untouched)
{
    char dir[200], path[512], schema[512], sub[256];
    static char out[4096], before[131072], after[131072];
    tmpdir(dir, sizeof dir);
    snprintf(schema, sizeof schema, "%s/demo.events", dir);
    snprintf(sub, sizeof sub, "%s/out", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    write_text(schema, "event A v1 {\n  x: i32\n}\n");
    cr_assert_eq(run(out, sizeof out, "-o", sub, schema, NULL), 0, "%s", out);
    read_file(sub, "demo_events.h", before, sizeof before);
    snprintf(path, sizeof path, "%s/demo_events.c", sub);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(mkdir(path, 0755), 0);
    write_text(schema, "event A v1 {\n  x: i32\n  y: i32 = 0\n}\n");
    cr_assert_eq(run(out, sizeof out, "-o", sub, schema, NULL), 3, "%s", out);
    char want[1024];
    snprintf(want, sizeof want, "cannot write %s: it is a directory", path);
    cr_assert(strstr(out, want), "%s", out);
    read_file(sub, "demo_events.h", after, sizeof after);
    cr_assert_str_eq(after, before, "the header was replaced without its source");
    cr_assert_eq(count_entries(sub), 2, "temporary files were left behind");
}

/* Generated files are ordinary files of the build: their mode is what the
 * umask leaves of 0666, as for any file a compiler writes. */
Test(gen_cli, output_files_get_the_mode_the_umask_gives)
{
    static const struct {
        mode_t umask, mode;
    } cases[] = {{077, 0600}, {022, 0644}, {002, 0664}};
    char dir[200], schema[512], services[512], events[512], path[512];
    static char out[4096];
    schema_path(schema, sizeof schema, "all_types.events");
    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tmpdir(dir, sizeof dir);
        umask(cases[i].umask); /* this test's own process: criterion forks one per test */
        snprintf(path, sizeof path, "%s/nats.conf", dir);
        cr_assert_eq(run(out, sizeof out, "-p", "demo", "-o", dir, schema, NULL), 0, "%s", out);
        cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", path,
                         NULL),
                     0, "%s", out);
        static const char *const names[] = {"demo_events.h", "demo_events.c", "nats.conf"};
        for (size_t k = 0; k < 3; k++) {
            char file[512];
            struct stat st;
            snprintf(file, sizeof file, "%s/%s", dir, names[k]);
            cr_assert_eq(stat(file, &st), 0);
            cr_expect_eq(st.st_mode & 0777, cases[i].mode, "%s under umask %03o: mode %03o",
                         names[k], (unsigned)cases[i].umask, (unsigned)(st.st_mode & 0777));
        }
    }
}

Test(gen_cli, check_writes_nothing)
{
    char dir[200], schema[512], out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(run(out, sizeof out, "--check", schema, NULL), 0, "%s", out);
    cr_assert_eq(count_entries(dir), 0);
}

Test(gen_cli, io_errors_exit_3)
{
    char out[4096], schema[512];
    cr_assert_eq(run(out, sizeof out, "/nonexistent/shop.events", NULL), 3);
    cr_assert(strstr(out, "cannot read /nonexistent/shop.events: No such file or directory"),
              "%s", out);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, "-o", "/nonexistent/dir", schema, NULL), 3);
    cr_assert(strstr(out, "cannot create a file in /nonexistent/dir"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--check", "/tmp", NULL), 3, "%s", out);
    cr_assert(strstr(out, "cannot read /tmp: it is a directory, not an events file"), "%s", out);
    char events[512];
    schema_path(events, sizeof events, "perms/mini.events");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", "/tmp", events, NULL), 3, "%s", out);
    cr_assert(strstr(out, "cannot read /tmp: it is a directory, not a services file"), "%s",
              out);
}

/* Some editors start UTF-8 files with a byte order mark; it means nothing
 * in UTF-8 and is read as if it were not there. */
Test(gen_cli, a_leading_byte_order_mark_is_ignored)
{
    char dir[200], path[512], services[512], events[512];
    static char out[16384];
    tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bom.events", dir);
    write_text(path, "\xef\xbb\xbf" "event A v1 {\n  x: i3\n}\n");
    cr_assert_eq(run(out, sizeof out, "--check", path, NULL), 2, "%s", out);
    char want[1024];
    snprintf(want, sizeof want, "%s:2:6: error: unknown type 'i3'; did you mean 'i32'?\n", path);
    cr_assert_str_eq(out, want, "one error, at its place");
    write_text(path, "\xef\xbb\xbf" "event A v1 {\n  x: i32\n}\n");
    cr_assert_eq(run(out, sizeof out, "-o", dir, path, NULL), 0, "%s", out);
    cr_assert(exists(dir, "bom_events.h"));
    schema_path(events, sizeof events, "perms/mini.events");
    snprintf(services, sizeof services, "%s/bom.services", dir);
    write_text(services, "\xef\xbb\xbf" "service depot {\n  emits ParcelBooked\n}\n");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, NULL), 0, "%s",
                 out);
}

Test(gen_cli, usage_errors_exit_64)
{
    char out[4096], schema[512];
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, NULL), 64);
    cr_assert(strstr(out, "no schema file given"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--frobnicate", NULL), 64);
    cr_assert(strstr(out, "unknown option '--frobnicate'"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--help=x", NULL), 64);
    cr_assert(strstr(out, "unknown option '--help=x'"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--version=1", NULL), 64);
    cr_assert(strstr(out, "unknown option '--version=1'"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--prefix", "Shop", schema, NULL), 64);
    cr_assert(strstr(out, "bad --prefix 'Shop'"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--prefix", NULL), 64);
    cr_assert_eq(run(out, sizeof out, schema, schema, NULL), 64);
    cr_assert_eq(run(out, sizeof out, "--check-compat", schema, NULL), 64);
    char dir[200], odd[512];
    tmpdir(dir, sizeof dir);
    snprintf(odd, sizeof odd, "%s/my-shop.events", dir);
    write_text(odd, "");
    cr_assert_eq(run(out, sizeof out, odd, NULL), 64);
    cr_assert(strstr(out, "the schema's file name gives the prefix 'my-shop': use lowercase "
                          "letters"),
              "%s", out);
    cr_assert(strstr(out, "give the prefix with --prefix"), "%s", out);
}

/* Generated names would share libchoreo's (choreo_event, choreo_tx, ...). */
Test(gen_cli, prefixes_of_libchoreos_names_are_refused)
{
    char dir[200], path[512], schema[512];
    static char out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, "-p", "choreo", "-o", dir, schema, NULL), 64, "%s", out);
    cr_assert(strstr(out, "bad --prefix 'choreo': names starting with choreo_ are libchoreo's "
                          "own (choreo_event, choreo_status, choreo_tx, ...)"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--prefix=choreo_shop", "-o", dir, schema, NULL), 64, "%s",
                 out);
    snprintf(path, sizeof path, "%s/choreo.events", dir);
    write_text(path, "event A v1 {\n  x: i32\n}\n");
    cr_assert_eq(run(out, sizeof out, "-o", dir, path, NULL), 64, "%s", out);
    cr_assert(strstr(out, "the schema's file name gives the prefix 'choreo': names starting "
                          "with choreo_ are libchoreo's own"),
              "%s", out);
    cr_assert_eq(count_entries(dir), 1, "nothing may be written");
}

/* SQLite's names share the generated names' shape (choreo.h includes
 * sqlite3.h): prefix sqlite3 and record Stmt would declare sqlite3_stmt. */
Test(gen_cli, prefixes_of_sqlites_names_are_refused)
{
    char dir[200], path[512], schema[512];
    static char out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    cr_assert_eq(run(out, sizeof out, "-p", "sqlite", "-o", dir, schema, NULL), 64, "%s", out);
    cr_assert(strstr(out, "bad --prefix 'sqlite': names starting with sqlite_ or SQLITE_ are "
                          "SQLite's"),
              "%s", out);
    snprintf(path, sizeof path, "%s/sqlite3.events", dir);
    write_text(path, "record Stmt {\n  x: i32\n}\n");
    cr_assert_eq(run(out, sizeof out, "--check", path, NULL), 0, "%s", out);
    cr_assert_eq(run(out, sizeof out, "-o", dir, path, NULL), 64, "%s", out);
    cr_assert(strstr(out, "the schema's file name gives the prefix 'sqlite3': names starting "
                          "with sqlite3_ are SQLite's"),
              "%s", out);
    cr_assert_eq(count_entries(dir), 1, "nothing may be written");
}

/* The files a case of arguments names by letter: S a schema, D a
 * directory, V and E a services file and its schema. */
struct case_files {
    const char *schema, *dir, *services, *events;
};

/* argv for choreo-gen from a case's arguments (at most max, NULL-ended
 * early), the letters replaced by the files they stand for. */
static void case_argv(char **argv, const char *const *args, size_t max,
                      const struct case_files *f)
{
    int argc = 0;
    argv[argc++] = getenv("CHOREO_GEN");
    for (size_t k = 0; k < max && args[k]; k++) {
        const char *a = args[k];
        argv[argc++] = (char *)(strcmp(a, "S") == 0   ? f->schema
                                : strcmp(a, "D") == 0 ? f->dir
                                : strcmp(a, "V") == 0 ? f->services
                                : strcmp(a, "E") == 0 ? f->events
                                                      : a);
    }
    argv[argc] = NULL;
}

/* An empty name, from an unset variable in a script say, is wrong usage
 * naming the option: as a directory it once put the files at the root
 * ("" + "/x_events.h"), as a file it named none. */
Test(gen_cli, empty_file_and_directory_names_are_usage_errors)
{
    char dir[200], schema[512], services[512], events[512];
    static char out[4096];
    tmpdir(dir, sizeof dir);
    cr_assert_eq(chdir(dir), 0);
    schema_path(schema, sizeof schema, "all_types.events");
    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    /* S: a schema, V and E: a services file and its schema. */
    static const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{"-p", "gen_cli_empty_o", "-o", "", "S"},
         "bad -o '': give the directory to write into (. for the current one)"},
        {{"-p", "gen_cli_empty_o", "--output-dir=", "S"},
         "bad --output-dir '': give the directory to write into"},
        {{"--nats-permissions", "V", "E", "-o", ""},
         "bad -o '': give the file to write (without the option, the permissions go to "
         "standard output)"},
        {{"--nats-permissions", "V", "E", "--output="}, "bad --output '': give the file to write"},
        {{"-p", "", "S"}, "bad --prefix '': use 1 to 32 characters"},
        {{""}, "the schema file name is empty: name a SCHEMA.events file"},
        {{"--check", ""}, "the schema file name is empty"},
        {{"--", ""}, "the schema file name is empty"},
        {{"--check-compat", "", "S"},
         "--check-compat needs two files: OLD.events NEW.events; one of the names given is "
         "empty"},
        {{"--check-consumer", "S", ""},
         "--check-consumer needs two files: PRODUCER.events CONSUMER.events; one of the names "
         "given is empty"},
        {{"--nats-permissions", "", "E"},
         "--nats-permissions needs two files: SERVICES.services SCHEMA.events; one of the names "
         "given is empty"},
        {{"--nats-permissions", "V", "E", "--stream", ""}, "bad --stream ''"},
        {{"--nats-permissions", "V", "E", "--subject-prefix="}, "bad --subject-prefix ''"},
    };
    const struct case_files files = { schema, dir, services, events };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[12];
        case_argv(argv, cases[i].args, 8, &files);
        cr_expect_eq(run_argv(out, sizeof out, argv), 64, "case %zu: %s", i, out);
        cr_expect(strstr(out, cases[i].says), "case %zu:\n got:  %s\nwant: %s", i, out,
                  cases[i].says);
    }
    static const char *const at_root[] = {"/gen_cli_empty_o_events.h", "/gen_cli_empty_o_events.c"};
    for (size_t k = 0; k < 2; k++)
        cr_expect(unlink(at_root[k]) != 0, "%s was written", at_root[k]);
    cr_assert_eq(count_entries(dir), 0, "nothing may be written");
}

/* A second value, or an option the chosen mode does not use, would be
 * ignored without a word: both are refused, naming the option. */
Test(gen_cli, options_given_twice_or_without_effect_exit_64)
{
    char schema[512], dir[200], services[512], events[512];
    static char out[4096];
    tmpdir(dir, sizeof dir);
    schema_path(schema, sizeof schema, "all_types.events");
    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    /* S: a schema, D: a directory, V and E: a services file and its schema. */
    static const struct {
        const char *args[10];
        const char *says;
    } cases[] = {
        {{"-p", "a", "-p", "b", "S"}, "-p is given twice: give it once"},
        {{"-p", "a", "--prefix=b", "S"},
         "-p and --prefix are both given: they are the same option, give it once"},
        {{"-o", "D", "-o", "D", "S"}, "-o is given twice: give it once"},
        {{"--output-dir", "D", "-o", "D", "S"}, "--output-dir and -o are both given"},
        {{"--check-compat", "S", "S", "--check-compat", "S", "S"},
         "--check-compat is given twice: give it once, with one pair of files"},
        {{"--check-consumer", "S", "S", "--check-consumer", "S", "S"},
         "--check-consumer is given twice"},
        {{"--check", "--check", "S"}, "--check is given twice"},
        {{"--nats-permissions", "V", "E", "--stream", "A", "--stream", "B"},
         "--stream is given twice"},
        {{"--nats-permissions", "V", "E", "--no-users", "--no-users"},
         "--no-users is given twice"},
        {{"--nats-permissions", "V", "E", "-o", "D", "--output", "D"},
         "-o and --output are both given"},
        {{"--check", "-p", "shop", "S"},
         "-p only applies when generating code, and --check writes nothing: drop it"},
        {{"--check", "--prefix", "Bad", "S"}, "--prefix only applies when generating code"},
        {{"--check", "-o", "D", "S"}, "-o only applies when generating code"},
        {{"--check-compat", "S", "S", "--prefix", "x"},
         "--prefix only applies when generating code, and --check-compat writes nothing"},
        {{"--check-consumer", "S", "S", "--output-dir", "D"},
         "--output-dir only applies when generating code, and --check-consumer writes nothing"},
    };
    const struct case_files files = { schema, dir, services, events };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *argv[16];
        case_argv(argv, cases[i].args, 10, &files);
        cr_expect_eq(run_argv(out, sizeof out, argv), 64, "case %zu: %s", i, out);
        cr_expect(strstr(out, cases[i].says), "case %zu:\n got:  %s\nwant: %s", i, out,
                  cases[i].says);
    }
    cr_assert_eq(count_entries(dir), 0, "nothing may be written");
}

Test(gen_cli, check_compat_exit_codes)
{
    char out[8192], a[512], b[512], c[512];
    schema_path(a, sizeof a, "compat/add_optional_field.old.events");
    schema_path(b, sizeof b, "compat/add_optional_field.new.events");
    cr_assert_eq(run(out, sizeof out, "--check-compat", a, b, NULL), 0, "%s", out);
    cr_assert(strstr(out, ": compatible: event OrderCreated: optional field 'coupon' was added"),
              "%s", out);
    cr_assert(strstr(out, "0 breaking, 0 warnings, 1 compatible"), "%s", out);
    schema_path(a, sizeof a, "compat/change_type.old.events");
    schema_path(b, sizeof b, "compat/change_type.new.events");
    cr_assert_eq(run(out, sizeof out, "--check-compat", a, b, NULL), 1, "%s", out);
    cr_assert(strstr(out, "change_type.new.events:8: breaking: event OrderCreated: field 'qty' "
                          "changed type from i32 to i64"),
              "%s", out);
    broken_schema(c, sizeof c);
    cr_assert_eq(run(out, sizeof out, "--check-compat", a, c, NULL), 2, "%s", out);
    cr_assert(strstr(out, "broken.events:1:7: error: expected an event name after 'event'"),
              "%s", out);
}

Test(gen_cli, check_consumer_exit_codes)
{
    char out[8192], p[512], c[512];
    schema_path(p, sizeof p, "../../../events/shop.events");
    schema_path(c, sizeof c, "shipping.events");
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, c, NULL), 0, "%s", out);
    cr_assert(strstr(out, "shipping.events: 0 breaking, 0 warnings, 0 compatible"), "%s", out);
    schema_path(p, sizeof p, "compat/missing_required_field.producer.events");
    schema_path(c, sizeof c, "compat/missing_required_field.consumer.events");
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, c, NULL), 1, "%s", out);
    cr_assert(strstr(out, "missing_required_field.consumer.events:3: breaking: event "
                          "OrderCreated: required field 'coupon' is not declared by the "
                          "producer"),
              "%s", out);
    char broken[256];
    broken_schema(broken, sizeof broken);
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, broken, NULL), 2, "%s", out);
    cr_assert(strstr(out, "broken.events:1:7: error: expected an event name after 'event'"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--check-consumer", "/nonexistent/p.events", c, NULL), 3,
                 "%s", out);
}

Test(gen_cli, check_consumer_usage_errors_exit_64)
{
    char out[4096], p[512], c[512];
    schema_path(p, sizeof p, "compat/subset_met.producer.events");
    schema_path(c, sizeof c, "compat/subset_met.consumer.events");
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, NULL), 64);
    cr_assert(strstr(out, "--check-consumer needs two files: PRODUCER.events CONSUMER.events"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--check-consumer", NULL), 64);
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, c, p, NULL), 64);
    cr_assert(strstr(out, "--check-consumer takes exactly two files and no other mode"), "%s",
              out);
    cr_assert_eq(run(out, sizeof out, "--check", "--check-consumer", p, c, NULL), 64);
    cr_assert_eq(run(out, sizeof out, "--check-consumer", p, c, "--check-compat", p, c, NULL), 64);
    cr_assert(strstr(out, "give one of --check-compat, --check-consumer and --nats-permissions, "
                          "not two"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--check-consumer=x", p, c, NULL), 64);
    cr_assert(strstr(out, "unknown option '--check-consumer=x'"), "%s", out);
}

/* ------------------------------------------------------------------------ */
/* --nats-permissions */

static void read_text(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot read %s", path);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

Test(gen_cli, nats_permissions_writes_the_golden_text_to_stdout_or_a_file)
{
    char dir[200], services[512], events[512], golden_path[512], file[512];
    static char out[65536], again[65536], golden[65536], written[65536];
    tmpdir(dir, sizeof dir);
    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    schema_path(golden_path, sizeof golden_path, "perms/mini.conf");
    read_text(golden_path, golden, sizeof golden);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, NULL), 0, "%s",
                 out);
    cr_assert_str_eq(out, golden);
    cr_assert_eq(run(again, sizeof again, "--nats-permissions", services, events, NULL), 0);
    cr_assert_str_eq(again, out, "two runs gave different bytes");

    snprintf(file, sizeof file, "%s/nats.conf", dir);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", file, NULL),
                 0, "%s", out);
    cr_assert_str_eq(out, "");
    read_text(file, written, sizeof written);
    cr_assert_str_eq(written, golden);
    cr_assert_eq(count_entries(dir), 1, "temporary files were left behind");

    schema_path(golden_path, sizeof golden_path, "perms/mini-options.conf");
    read_text(golden_path, golden, sizeof golden);
    cr_assert_eq(run(out, sizeof out, "--subject-prefix", "acme.choreo", "--stream=ACME",
                     "--nats-permissions", services, events, "--no-users", "--private-inboxes",
                     "--output", file, NULL),
                 0, "%s", out);
    read_text(file, written, sizeof written);
    cr_assert_str_eq(written, golden);
}

Test(gen_cli, nats_permissions_accepts_the_shops_description)
{
    char services[512], events[512];
    static char out[65536];
    schema_path(services, sizeof services, "../../../events/shop.services");
    schema_path(events, sizeof events, "../../../events/shop.events");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, NULL), 0, "%s",
                 out);
    cr_assert(strstr(out, "POINTS_PERMISSIONS = {\n"), "%s", out);
    cr_assert(strstr(out, "{ user: \"choreoctl\", password: $CHOREOCTL_PASSWORD, "
                          "permissions: $CHOREOCTL_PERMISSIONS }"),
              "%s", out);
}

Test(gen_cli, nats_permissions_errors_exit_2_or_3_and_write_nothing)
{
    char dir[200], services[512], events[512], file[512], want[2048];
    static char out[16384];
    tmpdir(dir, sizeof dir);
    schema_path(events, sizeof events, "perms/mini.events");
    snprintf(services, sizeof services, "%s/bad.services", dir);
    snprintf(file, sizeof file, "%s/nats.conf", dir);
    write_text(services, "service depot {\n  emits ParcelBoked\n  handles Address\n}\n");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o", file, NULL),
                 2, "%s", out);
    snprintf(want, sizeof want,
             "%s:2:9: error: unknown event 'ParcelBoked'; did you mean 'ParcelBooked'?\n"
             "%s:3:11: error: 'Address' is a record in %s, not an event: only events are "
             "emitted and handled\n",
             services, services, events);
    cr_assert_str_eq(out, want);
    cr_assert_eq(count_entries(dir), 1, "nothing may be written for a bad description");

    char broken[256];
    broken_schema(broken, sizeof broken);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, broken, NULL), 2);
    cr_assert(strstr(out, "broken.events:1:7: error:"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", "/nonexistent/x.services", events,
                     NULL),
                 3);
    cr_assert(strstr(out, "cannot read /nonexistent/x.services: No such file or directory"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, "/nonexistent/x.events",
                     NULL),
                 3);
    schema_path(services, sizeof services, "perms/mini.services");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "-o",
                     "/nonexistent/dir/nats.conf", NULL),
                 3);
    cr_assert(strstr(out, "cannot create a file in /nonexistent/dir"), "%s", out);
}

Test(gen_cli, nats_permissions_usage_errors_exit_64)
{
    char services[512], events[512];
    static char out[8192];
    schema_path(services, sizeof services, "perms/mini.services");
    schema_path(events, sizeof events, "perms/mini.events");
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, NULL), 64);
    cr_assert(strstr(out, "--nats-permissions needs two files: SERVICES.services SCHEMA.events"),
              "%s", out);
    cr_assert_eq(run(out, sizeof out, "--stream", "X", events, NULL), 64);
    cr_assert(strstr(out, "--stream goes with --nats-permissions only"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--no-users", events, NULL), 64);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "--output-dir",
                     "/tmp", NULL),
                 64);
    cr_assert(strstr(out, "writes one file: name it with -o FILE"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--output", "/tmp/x", events, NULL), 64);
    cr_assert(strstr(out, "--output FILE goes with --nats-permissions"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "--prefix", "x",
                     NULL),
                 64);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "--check-compat",
                     events, events, NULL),
                 64);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events,
                     "--subject-prefix", "choreo.>", NULL),
                 64);
    cr_assert(strstr(out, "bad --subject-prefix 'choreo.>'"), "%s", out);
    cr_assert_eq(run(out, sizeof out, "--nats-permissions", services, events, "--stream",
                     "MY.STREAM", NULL),
                 64);
    cr_assert(strstr(out, "bad --stream 'MY.STREAM'"), "%s", out);
}
