/* The test runner of the ThreadSanitizer build: runs each Test() of its
 * executable in a forked child, a few at a time, kills any that outlives its
 * timeout, prints each test's output and verdict, and ends with Criterion's
 * synthesis line, so tests count as in the other builds. The runner starts
 * no thread, so forking it is safe; all a test does happens in its child. */
#define _GNU_SOURCE /* FNM_EXTMATCH, for Criterion's !(pattern) filters */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_JOBS = 16, OUTPUT_SHOWN_MAX = 4 * 1024 * 1024 };

/* The exitcode that TSAN_OPTIONS sets (tests/meson.build, tools/test). */
enum { TSAN_EXIT_CODE = 66 };

/* A test without .timeout gets this many seconds. */
static const double DEFAULT_TIMEOUT_S = 300;

static struct crshim_test *first_test, *last_test;

/* Set in a test's child by any failed check, from whichever thread made it. */
static atomic_bool test_failed;

struct options {
    int jobs;
    const char *filter; /* extended fnmatch pattern on "suite/name", or NULL */
    double timeout_scale;
    bool races_only;    /* a failed check passes; reports, crashes, timeouts fail */
    bool list;
};

struct running {
    struct crshim_test *test;
    pid_t pid;
    int out;           /* the child's stdout and stderr, an unlinked file */
    double started;
    double deadline;
    bool killed;       /* by the runner, for outliving its timeout */
};

struct tally {
    int tested, passing, failing, crashing;
};

void crshim_register(struct crshim_test *t)
{
    t->next = NULL;
    if (last_test)
        last_test->next = t;
    else
        first_test = t;
    last_test = t;
}

void crshim_check(bool ok, bool fatal, const char *file, int line, const char *expr,
                  const char *fmt, ...)
{
    if (ok)
        return;
    atomic_store(&test_failed, true);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[----] %s:%d: %s\n[----]   %s%s\n", file, line,
            fatal ? "Assertion Failed" : "Expectation Failed",
            msg[0] ? msg : "The expression is false: ", msg[0] ? "" : expr);
    if (fatal) {
        /* Criterion ends the test here too; _exit because other threads of
         * the test may still run and exit handlers would race with them. */
        fflush(NULL);
        _exit(1);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *to)
{
    fputs("usage: TEST [--jobs N] [--filter PATTERN] [--timeout-scale F] [--races-only] [--list]\n"
          "Runs each test in a forked child, at most N at once (default 1), each for at most\n"
          "its .timeout times F seconds (default F 1). PATTERN matches suite/name as in\n"
          "Criterion, !(suite/name) included. --races-only is for a load test whose own\n"
          "timing checks cannot hold under ThreadSanitizer: a failed check passes, while a\n"
          "ThreadSanitizer report, a crash or a timeout still fails.\n",
          to);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .jobs = 1, .timeout_scale = 1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0 || strcmp(a, "-l") == 0) {
            o->list = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if ((strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0) && v) {
            o->jobs = (int)strtol(v, NULL, 10);
            i++;
        } else if (strncmp(a, "--jobs=", 7) == 0 || (strncmp(a, "-j", 2) == 0 && a[2])) {
            o->jobs = (int)strtol(a + (a[1] == 'j' ? 2 : 7), NULL, 10);
        } else if (strcmp(a, "--filter") == 0 && v) {
            o->filter = v;
            i++;
        } else if (strncmp(a, "--filter=", 9) == 0) {
            o->filter = a + 9;
        } else if (strcmp(a, "--races-only") == 0) {
            o->races_only = true;
        } else if (strcmp(a, "--timeout-scale") == 0 && v) {
            o->timeout_scale = strtod(v, NULL);
            i++;
        } else {
            fprintf(stderr, "unknown or incomplete option %s\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (o->jobs < 1 || o->jobs > MAX_JOBS || !(o->timeout_scale > 0)) {
        fprintf(stderr, "--jobs must be 1 to %d and --timeout-scale above 0\n", MAX_JOBS);
        return -1;
    }
    return 0;
}

static bool selected(const struct crshim_test *t, const char *filter)
{
    if (!filter)
        return true;
    char full[512];
    snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
    return fnmatch(filter, full, FNM_EXTMATCH) == 0;
}

/* The child's side: the test with its output into out. Never returns. */
static void run_child(const struct crshim_test *t, pid_t runner, int out)
{
    /* The runner's death ends the test, whose own children die with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != runner)
        _exit(1);
    if (dup2(out, STDOUT_FILENO) < 0 || dup2(out, STDERR_FILENO) < 0)
        _exit(1);
    close(out);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (t->init)
        t->init();
    t->fn();
    if (t->fini)
        t->fini();
    /* exit, not _exit: ThreadSanitizer's exit code for reports made without
     * halt_on_error is set by its exit handler. */
    exit(atomic_load(&test_failed) ? 1 : 0);
}

static int start(struct running *r, struct crshim_test *t, const struct options *o)
{
    /* Close-on-exec, so that what a test executes does not hold the other
     * tests' output files; dup2 clears the flag on the test's own. */
    char path[] = "/tmp/choreo-tsan-out-XXXXXX";
    int out = mkostemp(path, O_CLOEXEC);
    if (out < 0) {
        fprintf(stderr, "cannot create a file for %s::%s's output: %s\n", t->suite, t->name,
                strerror(errno));
        return -1;
    }
    unlink(path);
    fflush(NULL);
    pid_t runner = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "cannot fork for %s::%s: %s\n", t->suite, t->name, strerror(errno));
        close(out);
        return -1;
    }
    if (pid == 0)
        run_child(t, runner, out);
    double timeout = (t->timeout > 0 ? t->timeout : DEFAULT_TIMEOUT_S) * o->timeout_scale;
    *r = (struct running){ .test = t, .pid = pid, .out = out, .started = now_s() };
    r->deadline = r->started + timeout;
    return 0;
}

/* Copies the test's output to stdout (up to a cap) and says whether it
 * holds a ThreadSanitizer report. */
static bool show_output(int out)
{
    static char buf[OUTPUT_SHOWN_MAX + 1];
    size_t len = 0;
    off_t total = lseek(out, 0, SEEK_END);
    lseek(out, 0, SEEK_SET);
    while (len < OUTPUT_SHOWN_MAX) {
        ssize_t n = read(out, buf + len, OUTPUT_SHOWN_MAX - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    fwrite(buf, 1, len, stdout);
    if (len > 0 && buf[len - 1] != '\n')
        fputc('\n', stdout);
    if (total > (off_t)len)
        printf("[----] (%lld more bytes of output not shown)\n", (long long)(total - (off_t)len));
    return strstr(buf, "WARNING: ThreadSanitizer:") != NULL;
}

static void finish(struct running *r, int status, const struct options *o, struct tally *tally)
{
    const struct crshim_test *t = r->test;
    printf("[RUN ] %s::%s\n", t->suite, t->name);
    bool tsan_report = show_output(r->out);
    close(r->out);
    double took = now_s() - r->started;
    tally->tested++;
    if (r->killed) {
        tally->crashing++;
        printf("[FAIL] %s::%s: Timed out after %.0f s\n", t->suite, t->name,
               r->deadline - r->started);
    } else if (WIFSIGNALED(status)) {
        tally->crashing++;
        printf("[FAIL] %s::%s: CRASH! killed by signal %d (%s) (%.2fs)\n", t->suite, t->name,
               WTERMSIG(status), strsignal(WTERMSIG(status)), took);
    } else if (o->races_only && WEXITSTATUS(status) == 1 && !tsan_report) {
        tally->passing++;
        printf("[PASS] %s::%s: no race; its own check failed, which --races-only allows (%.2fs)\n",
               t->suite, t->name, took);
    } else if (WEXITSTATUS(status) != 0 || tsan_report) {
        tally->failing++;
        const char *why = "";
        if (tsan_report)
            why = ", ThreadSanitizer report above";
        else if (WEXITSTATUS(status) == TSAN_EXIT_CODE)
            why = ", ThreadSanitizer's exit status: its report is in TSAN_OPTIONS' log_path";
        printf("[FAIL] %s::%s: exit status %d%s (%.2fs)\n", t->suite, t->name,
               WEXITSTATUS(status), why, took);
    } else {
        tally->passing++;
        printf("[PASS] %s::%s: (%.2fs)\n", t->suite, t->name, took);
    }
    fflush(stdout);
}

/* Waits until one of the n running tests ends, killing those past their
 * deadline, and returns its index. */
static int reap_one(struct running *run, int n, const struct options *o, struct tally *tally)
{
    for (;;) {
        for (int i = 0; i < n; i++) {
            int status;
            pid_t got = waitpid(run[i].pid, &status, WNOHANG);
            if (got == run[i].pid) {
                finish(&run[i], status, o, tally);
                return i;
            }
            if (!run[i].killed && now_s() > run[i].deadline) {
                kill(run[i].pid, SIGKILL);
                run[i].killed = true;
            }
        }
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

/* Defined by the test program or not at all. */
extern void crshim_before_all(void) __attribute__((weak));
extern void crshim_after_all(bool failed) __attribute__((weak));

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return 2;
    if (o.list) {
        for (struct crshim_test *t = first_test; t; t = t->next)
            if (selected(t, o.filter))
                printf("%s::%s\n", t->suite, t->name);
        return 0;
    }
    struct running run[MAX_JOBS];
    int n = 0;
    struct tally tally = { 0 };
    if (crshim_before_all)
        crshim_before_all();
    for (struct crshim_test *t = first_test; t; t = t->next) {
        if (!selected(t, o.filter))
            continue;
        if (t->disabled) {
            printf("[SKIP] %s::%s: test is disabled\n", t->suite, t->name);
            continue;
        }
        if (n == o.jobs) {
            int done = reap_one(run, n, &o, &tally);
            run[done] = run[--n];
        }
        if (start(&run[n], t, &o) != 0) {
            tally.tested++;
            tally.crashing++;
            continue;
        }
        n++;
    }
    while (n > 0) {
        int done = reap_one(run, n, &o, &tally);
        run[done] = run[--n];
    }
    printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d\n",
           tally.tested, tally.passing, tally.failing, tally.crashing);
    if (crshim_after_all)
        crshim_after_all(tally.passing != tally.tested);
    return tally.passing == tally.tested ? 0 : 1;
}
