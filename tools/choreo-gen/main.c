/* choreo-gen: the command line. Reads an event schema and writes its C API,
 * checks a schema, compares two versions of one for compatibility, checks
 * a consumer's subset of a schema against the producer's, or writes the NATS
 * permissions of the services a *.services file describes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "emit.h"
#include "perms.h"
#include "schema.h"
#include "services.h"

enum {
    EXIT_INCOMPATIBLE = 1,
    EXIT_SCHEMA = 2,
    EXIT_IO = 3,
    EXIT_USAGE = 64,
};

static const char usage_text[] =
    "Usage: choreo-gen [-p PREFIX] [-o DIR] [--force] SCHEMA.events\n"
    "       choreo-gen --check SCHEMA.events\n"
    "       choreo-gen --check-compat OLD.events NEW.events\n"
    "       choreo-gen --check-consumer PRODUCER.events CONSUMER.events\n"
    "       choreo-gen --nats-permissions SERVICES.services SCHEMA.events\n"
    "                  [--subject-prefix PREFIX] [--stream NAME] [--no-users]\n"
    "                  [--private-inboxes] [-o FILE [--force]]\n"
    "\n"
    "Generates the C API of an event schema: PREFIX_events.h and PREFIX_events.c,\n"
    "with a struct per event and record, encode/decode/check/free functions, typed\n"
    "emits (choreo_tx_emit) and typed handler registration (choreo_service_on).\n"
    "With --nats-permissions, writes the authorization part of a nats-server\n"
    "configuration instead: what each service, client and operator of SERVICES\n"
    "may publish and subscribe to, for the events of SCHEMA.\n"
    "Both languages are described in events/README.md.\n"
    "\n"
    "Options:\n"
    "  -p, --prefix PREFIX      start of every generated name and of the file names:\n"
    "                           [a-z][a-z0-9]*(_[a-z0-9]+)* (a letter first, single\n"
    "                           '_' between words), at most 32 characters, and\n"
    "                           none of choreo, sqlite, sqlite3, atomic, alone or\n"
    "                           followed by _... (names of libchoreo, SQLite and\n"
    "                           <stdatomic.h>, which the generated code includes)\n"
    "                           (default: the schema's file name without .events)\n"
    "  -o, --output-dir DIR     directory to write the two files into (default: .);\n"
    "                           both are replaced together or not at all\n"
    "      --force              replace output files choreo-gen did not write (it\n"
    "                           refuses to, to keep a file of yours of that name)\n"
    "      --check              read and check the schema only; write nothing\n"
    "      --check-compat OLD NEW\n"
    "                           compare two versions of a schema and print one line\n"
    "                           per change: file:line: breaking|warning|compatible: ...\n"
    "      --check-consumer PRODUCER CONSUMER\n"
    "                           check that the events and fields a consumer declares\n"
    "                           (a subset of the producer's schema: what it reads)\n"
    "                           are met by the producer's schema; one line per finding,\n"
    "                           as for --check-compat\n"
    "      --nats-permissions SERVICES SCHEMA\n"
    "                           write nats-server permissions: a NAME_PERMISSIONS\n"
    "                           variable per service, client and operator of\n"
    "                           SERVICES, and an authorization block with a user\n"
    "                           per name whose password is $NAME_PASSWORD, taken\n"
    "                           from nats-server's environment; to standard output,\n"
    "                           or to FILE with -o (written whole or not at all;\n"
    "                           --force as for the C API)\n"
    "      --subject-prefix PREFIX\n"
    "                           the services' prefix setting (default: choreo)\n"
    "      --stream NAME        the services' stream setting (default: CHOREO)\n"
    "      --no-users           write the NAME_PERMISSIONS variables only, for users\n"
    "                           of your own (nkeys, say)\n"
    "      --private-inboxes    let each user receive replies on _INBOX_<name>.> only,\n"
    "                           instead of _INBOX.>; every program must then use\n"
    "                           the inbox prefix _INBOX_<name>\n"
    "  -o, --output FILE        with --nats-permissions: the file to write\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n"
    "\n"
    "Exit status:\n"
    "  0   success; for --check-compat, NEW can replace OLD; for --check-consumer,\n"
    "      PRODUCER meets what CONSUMER expects\n"
    "  1   --check-compat or --check-consumer found something breaking\n"
    "  2   a schema or services file has errors, printed as\n"
    "      file:line:col: error: ...\n"
    "  3   a file could not be read or written, or an output path holds a file\n"
    "      choreo-gen did not write (see --force)\n"
    "  64  wrong usage\n";

static int usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("choreo-gen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'choreo-gen --help'.\n", stderr);
    return EXIT_USAGE;
}

/* An option given a second time, as `again` after `first` (two spellings
 * of one option, or the same one): refused rather than letting the last
 * win, since one of the two values would be ignored without a word. */
static int given_twice(const char *first, const char *again)
{
    if (strcmp(first, again) == 0)
        return usage_error("%s is given twice: give it once", again);
    return usage_error("%s and %s are both given: they are the same option, give it once", first,
                       again);
}

/* Whether path can be opened for reading as a file; says why not (exit
 * status 3). `what` names the kind of file expected ("an events file"). */
static int readable(const char *path, const char *what)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    bool dir = f && fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!f || dir) {
        if (dir)
            fprintf(stderr, "choreo-gen: cannot read %s: it is a directory, not %s\n", path,
                    what);
        else
            fprintf(stderr, "choreo-gen: cannot read %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return EXIT_IO;
    }
    fclose(f);
    return 0;
}

/* Loads a schema; exit code in *code when it returns NULL. */
static gen_schema *load(const char *path, int *code)
{
    *code = readable(path, "an events file");
    if (*code)
        return NULL;
    gen_diags diags;
    memset(&diags, 0, sizeof diags);
    gen_schema *s = gen_schema_load(path, &diags);
    if (!s) {
        gen_diags_print(&diags, stderr);
        *code = EXIT_SCHEMA;
    }
    return s;
}

/* Output files are written in two steps: each is staged, whole, in a
 * temporary file beside its target, and only when every file of the run is
 * staged are they renamed into place. A build never sees half a file, and
 * a failure leaves the previous header and source as they were, a pair. */
typedef struct out_file {
    char path[4096], tmp[4096], old[4096]; /* old: a link to the replaced file */
    bool staged, existed, has_old;
} out_file;

/* Text every file choreo-gen writes has in its first lines. */
static const char marker[] = "Generated by choreo-gen";
enum { MARKER_LINES = 8 };

/* Whether path may be replaced: absent, or a regular file choreo-gen wrote
 * (or any regular file, with force). Someone's own file that happens to
 * have the name of an output is refused rather than lost. */
static int check_target(const char *path, bool force)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "choreo-gen: cannot write %s: %s\n", path, strerror(errno));
        return EXIT_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        fprintf(stderr, "choreo-gen: cannot write %s: it is %s; move it away\n", path,
                S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
        return EXIT_IO;
    }
    if (force)
        return 0;
    char head[2048];
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n = fread(head, 1, sizeof head - 1, f);
        fclose(f);
    }
    head[n] = '\0';
    char *p = head;
    for (int line = 0; line < MARKER_LINES && p; line++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (p)
        *p = '\0';
    if (strstr(head, marker))
        return 0;
    fprintf(stderr, "choreo-gen: refusing to replace %s: choreo-gen did not write it (its first "
            "lines lack \"%s\"); move it away, or give --force to replace it\n", path, marker);
    return EXIT_IO;
}

/* Writes b to a new temporary file beside dir/name, created with the mode
 * the umask leaves of 0666, as any file a build writes. */
static int stage(out_file *o, const char *dir, const char *name, const gen_buf *b, bool force)
{
    memset(o, 0, sizeof *o);
    if (snprintf(o->path, sizeof o->path, "%s/%s", dir, name) >= (int)sizeof o->path) {
        fprintf(stderr, "choreo-gen: output path %s/%s is too long\n", dir, name);
        return EXIT_IO;
    }
    int code = check_target(o->path, force);
    if (code)
        return code;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        if (snprintf(o->tmp, sizeof o->tmp, "%s/.%s.%ld.%d", dir, name, (long)getpid(),
                     attempt) >= (int)sizeof o->tmp) {
            fprintf(stderr, "choreo-gen: output path %s/%s is too long\n", dir, name);
            return EXIT_IO;
        }
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        fprintf(stderr, "choreo-gen: cannot create a file in %s: %s\n", dir, strerror(errno));
        return EXIT_IO;
    }
    o->staged = true;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "choreo-gen: cannot write %s: %s\n", o->path, strerror(errno));
        close(fd);
        return EXIT_IO;
    }
    size_t n = fwrite(b->data, 1, b->len, f);
    int err = errno;
    if (fclose(f) != 0 && n == b->len) {
        n = 0;
        err = errno;
    }
    if (n != b->len) {
        fprintf(stderr, "choreo-gen: cannot write %s: %s\n", o->path, strerror(err));
        return EXIT_IO;
    }
    return 0;
}

/* Removes what staging and installing left behind. */
static void discard(out_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (files[i].staged)
            unlink(files[i].tmp);
        if (files[i].has_old)
            unlink(files[i].old);
        files[i].staged = files[i].has_old = false;
    }
}

/* Renames every staged file into place. Should a rename fail half-way, the
 * files already replaced get their old versions back (kept as hard links
 * meanwhile; a file that did not exist is removed again). */
static int install(out_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        files[i].existed = access(files[i].path, F_OK) == 0;
        bool fits = snprintf(files[i].old, sizeof files[i].old, "%s.old", files[i].tmp) <
                    (int)sizeof files[i].old;
        files[i].has_old = fits && files[i].existed && link(files[i].path, files[i].old) == 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (rename(files[i].tmp, files[i].path) == 0) {
            files[i].staged = false;
            continue;
        }
        int err = errno;
        fprintf(stderr, "choreo-gen: cannot write %s: %s\n", files[i].path, strerror(err));
        for (size_t j = 0; j < i; j++) {
            bool back = files[j].has_old ? rename(files[j].old, files[j].path) == 0
                                         : !files[j].existed && unlink(files[j].path) == 0;
            if (back)
                files[j].has_old = false;
            else
                fprintf(stderr, "choreo-gen: %s was already replaced and could not be put "
                        "back: run choreo-gen again\n", files[j].path);
        }
        discard(files, n);
        return EXIT_IO;
    }
    discard(files, n);
    return 0;
}

/* Writes data to dir/name, as a pair of one. */
static int write_file(const char *dir, const char *name, const gen_buf *b, bool force)
{
    out_file o;
    int code = stage(&o, dir, name, b, force);
    if (code == 0)
        code = install(&o, 1);
    discard(&o, 1);
    return code;
}

/* Writes data to path, as write_file does. */
static int write_path(const char *path, const gen_buf *b, bool force)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return write_file(".", path, b, force);
    if (slash[1] == '\0') {
        fprintf(stderr, "choreo-gen: cannot write %s: it names a directory, not a file\n", path);
        return EXIT_IO;
    }
    if ((size_t)(slash - path) >= sizeof dir) {
        fprintf(stderr, "choreo-gen: output path %s is too long\n", path);
        return EXIT_IO;
    }
    snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return write_file(dir, slash + 1, b, force);
}

/* "dir/shop.events" -> "shop.events" */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int generate(const char *schema_path, const char *prefix, const char *dir, bool force)
{
    char derived[64];
    const char *base = base_name(schema_path);
    if (!prefix) {
        size_t n = strlen(base);
        if (n > 7 && strcmp(base + n - 7, ".events") == 0)
            n -= 7;
        snprintf(derived, sizeof derived, "%.*s", (int)(n < 63 ? n : 63), base);
        prefix = derived;
        const char *why = gen_prefix_problem(prefix);
        if (why)
            return usage_error("the schema's file name gives the prefix '%s': %s; give the "
                               "prefix with --prefix (e.g. --prefix shop)", prefix, why);
    } else {
        const char *why = gen_prefix_problem(prefix);
        if (why)
            return usage_error("bad --prefix '%s': %s", prefix, why);
    }
    int code = 0;
    gen_schema *s = load(schema_path, &code);
    if (!s)
        return code;
    char hname[80], cname[80];
    snprintf(hname, sizeof hname, "%s_events.h", prefix);
    snprintf(cname, sizeof cname, "%s_events.c", prefix);
    gen_buf h = {0}, c = {0};
    gen_emit(s, prefix, base, hname, &h, &c);
    out_file files[2];
    code = stage(&files[0], dir, hname, &h, force);
    if (code == 0) {
        code = stage(&files[1], dir, cname, &c, force);
        if (code == 0)
            code = install(files, 2);
        discard(&files[1], 1);
    }
    discard(&files[0], 1);
    gen_buf_free(&h);
    gen_buf_free(&c);
    gen_schema_free(s);
    return code;
}

/* --check-compat OLD NEW, or --check-consumer PRODUCER CONSUMER: data flows
 * from the first schema to the second. */
static int check_pair(bool consumer, const char *from_path, const char *to_path)
{
    int code = 0;
    gen_schema *from = load(from_path, &code);
    gen_schema *to = from ? load(to_path, &code) : NULL;
    if (!from || !to) {
        gen_schema_free(from);
        return code;
    }
    gen_compat_counts k = consumer ? gen_compat_consumer(from, to, stdout)
                                   : gen_compat_check(from, to, stdout);
    fflush(stdout);
    fprintf(stderr, "choreo-gen: %s -> %s: %zu breaking, %zu warnings, %zu compatible\n",
            from_path, to_path, k.breaking, k.warnings, k.compatible);
    gen_schema_free(from);
    gen_schema_free(to);
    return k.breaking ? EXIT_INCOMPATIBLE : 0;
}

/* --nats-permissions SERVICES SCHEMA: the permissions of the roles the
 * services file declares, to out_path or to standard output when NULL. */
static int nats_permissions(const char *services_path, const char *schema_path,
                            gen_perms_opts *o, const char *out_path, bool force)
{
    if (!gen_subject_prefix_valid(o->subject_prefix))
        return usage_error("bad --subject-prefix '%s': use dot-separated tokens of A-Z a-z 0-9 "
                           "_ -, at most 32 characters (the services' prefix setting)",
                           o->subject_prefix);
    if (!gen_stream_name_valid(o->stream))
        return usage_error("bad --stream '%s': use 1 to 64 characters from A-Z a-z 0-9 _ - "
                           "(the services' stream setting)", o->stream);
    int code = 0;
    gen_schema *schema = load(schema_path, &code);
    if (!schema)
        return code;
    code = readable(services_path, "a services file");
    if (code) {
        gen_schema_free(schema);
        return code;
    }
    gen_diags diags;
    memset(&diags, 0, sizeof diags);
    gen_services *s = gen_services_load(services_path, schema, &diags);
    if (!s) {
        gen_diags_print(&diags, stderr);
        gen_schema_free(schema);
        return EXIT_SCHEMA;
    }
    o->services_name = base_name(services_path);
    o->schema_name = base_name(schema_path);
    gen_buf b = {0};
    gen_perms_emit(s, o, &b);
    if (out_path) {
        code = write_path(out_path, &b, force);
    } else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "choreo-gen: cannot write to standard output: %s\n", strerror(errno));
        code = EXIT_IO;
    }
    gen_buf_free(&b);
    gen_services_free(s);
    gen_schema_free(schema);
    return code;
}

/* The two files an option of a pair names, for usage errors. */
static const char *pair_files(const char *opt)
{
    if (strcmp(opt, "--nats-permissions") == 0)
        return "SERVICES.services SCHEMA.events";
    if (strcmp(opt, "--check-consumer") == 0)
        return "PRODUCER.events CONSUMER.events";
    return "OLD.events NEW.events";
}

int main(int argc, char **argv)
{
    const char *prefix = NULL, *out = NULL, *schema = NULL, *pair[2] = {NULL, NULL};
    const char *pair_opt = NULL; /* --check-compat, --check-consumer or --nats-permissions */
    const char *out_opt = NULL;  /* the spelling -o was given with */
    const char *prefix_opt = NULL; /* the spelling -p was given with */
    const char *perms_only = NULL; /* an option that goes with --nats-permissions only */
    gen_perms_opts po = {.subject_prefix = "choreo", .stream = "CHOREO"};
    bool check_only = false, subject_prefix_set = false, stream_set = false, force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        size_t optlen = 0;
        if (strncmp(a, "--", 2) == 0 && strchr(a, '=')) {
            optlen = (size_t)(strchr(a, '=') - a);
            val = a + optlen + 1;
        }
#define IS(opt) (val ? (strlen(opt) == optlen && strncmp(a, opt, optlen) == 0) : strcmp(a, opt) == 0)
#define TAKE()                                                               \
    do {                                                                     \
        if (!val) {                                                          \
            if (i + 1 >= argc)                                               \
                return usage_error("option %s needs a value", a);            \
            val = argv[++i];                                                 \
        }                                                                    \
    } while (0)
        if ((IS("-h") || IS("--help")) && !val) {
            fputs(usage_text, stdout);
            return 0;
        } else if ((IS("-V") || IS("--version")) && !val) {
            puts("choreo-gen 0.1.0");
            return 0;
        } else if (IS("-p") || IS("--prefix")) {
            const char *spelling = IS("-p") ? "-p" : "--prefix";
            if (prefix_opt)
                return given_twice(prefix_opt, spelling);
            prefix_opt = spelling;
            TAKE();
            prefix = val;
        } else if (IS("-o") || IS("--output-dir") || IS("--output")) {
            const char *spelling = IS("-o") ? "-o" : IS("--output") ? "--output" : "--output-dir";
            if (out_opt)
                return given_twice(out_opt, spelling);
            out_opt = spelling;
            TAKE();
            out = val;
        } else if (IS("--subject-prefix") || IS("--stream")) {
            bool is_prefix = IS("--subject-prefix");
            bool *set = is_prefix ? &subject_prefix_set : &stream_set;
            perms_only = is_prefix ? "--subject-prefix" : "--stream";
            if (*set)
                return given_twice(perms_only, perms_only);
            *set = true;
            TAKE();
            if (is_prefix)
                po.subject_prefix = val;
            else
                po.stream = val;
        } else if (IS("--no-users") && !val) {
            if (po.no_users)
                return given_twice(a, a);
            perms_only = a;
            po.no_users = true;
        } else if (IS("--private-inboxes") && !val) {
            if (po.private_inboxes)
                return given_twice(a, a);
            perms_only = a;
            po.private_inboxes = true;
        } else if (IS("--force") && !val) {
            if (force)
                return given_twice(a, a);
            force = true;
        } else if (IS("--check") && !val) {
            if (check_only)
                return given_twice(a, a);
            check_only = true;
        } else if ((IS("--check-compat") || IS("--check-consumer") || IS("--nats-permissions")) &&
                   !val) {
            if (i + 2 >= argc)
                return usage_error("%s needs two files: %s", a, pair_files(a));
            if (pair_opt && strcmp(pair_opt, a) == 0)
                return usage_error("%s is given twice: give it once, with one pair of files", a);
            if (pair_opt)
                return usage_error("%s", "give one of --check-compat, --check-consumer and "
                                         "--nats-permissions, not two");
            pair_opt = a;
            pair[0] = argv[++i];
            pair[1] = argv[++i];
        } else if (strcmp(a, "--") == 0) {
            if (i + 1 < argc && !schema)
                schema = argv[++i];
            if (i + 1 < argc)
                return usage_error("unexpected argument '%s'", argv[i + 1]);
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a);
        } else if (!schema) {
            schema = a;
        } else {
            return usage_error("unexpected argument '%s': give one schema file", a);
        }
#undef IS
#undef TAKE
    }
    bool perms = pair_opt && strcmp(pair_opt, "--nats-permissions") == 0;
    /* An empty name is a mistake in a script (an unset variable, say), not
     * a wish: as a directory it would put the files at the root, as a
     * file it has no name to open. */
    if (out && !*out)
        return usage_error("bad %s '': give the %s", out_opt,
                           perms ? "file to write (without the option, the permissions go to "
                                         "standard output)"
                                 : "directory to write into (. for the current one)");
    if (pair_opt && (!*pair[0] || !*pair[1]))
        return usage_error("%s needs two files: %s; one of the names given is empty", pair_opt,
                           pair_files(pair_opt));
    if (schema && !*schema)
        return usage_error("%s", "the schema file name is empty: name a SCHEMA.events file");
    if (perms_only && !perms)
        return usage_error("%s goes with --nats-permissions only", perms_only);
    if (perms) {
        if (schema || check_only || prefix)
            return usage_error("%s", "--nats-permissions takes exactly two files, and no other "
                                     "mode or --prefix");
        if (out_opt && strcmp(out_opt, "--output-dir") == 0)
            return usage_error("%s", "--nats-permissions writes one file: name it with -o FILE "
                                     "(or --output FILE), not --output-dir");
        if (force && !out)
            return usage_error("%s", "--force only applies when a file is written: with "
                                     "--nats-permissions, give it with -o FILE");
        return nats_permissions(pair[0], pair[1], &po, out, force);
    }
    if (out_opt && strcmp(out_opt, "--output") == 0)
        return usage_error("%s", "--output FILE goes with --nats-permissions; the C API is two "
                                 "files: give their directory with -o DIR (--output-dir DIR)");
    if (pair_opt && (schema || check_only))
        return usage_error("%s takes exactly two files and no other mode", pair_opt);
    /* Checks write nothing: a prefix or a directory given with one would be
     * ignored, so it is more likely a mistake than a wish. */
    const char *mode = pair_opt ? pair_opt : check_only ? "--check" : NULL;
    if (mode && (prefix_opt || out_opt || force))
        return usage_error("%s only applies when generating code, and %s writes nothing: "
                           "drop it", prefix_opt ? prefix_opt : out_opt ? out_opt : "--force",
                           mode);
    if (pair_opt)
        return check_pair(strcmp(pair_opt, "--check-consumer") == 0, pair[0], pair[1]);
    if (!schema)
        return usage_error("%s", "no schema file given");
    if (check_only) {
        int code = 0;
        gen_schema *s = load(schema, &code);
        gen_schema_free(s);
        return s ? 0 : code;
    }
    return generate(schema, prefix, out ? out : ".", force);
}
