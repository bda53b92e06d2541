/* A test program's scratch directory. Before the first test the runner
 * makes one under TMPDIR and points TMPDIR at it, so that every directory
 * the tests make (databases, streams, logs) is made in it. After the last
 * test it is removed when every test passed, and kept, with its path on
 * stderr, when one failed or crashed.
 *
 * Include it in one file of each test program: Criterion's hooks, and the
 * functions the ThreadSanitizer build's runner calls instead, are functions
 * of that program. */
#ifndef CHOREO_TESTS_SCRATCH_H
#define CHOREO_TESTS_SCRATCH_H

#include <criterion/criterion.h>
#ifndef CHOREO_TSAN_CRITERION_H
#include <criterion/hooks.h>
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "natsd.h"

static char scratch_dir[512];

static void scratch_begin(void)
{
    if (natsd_tmp_path(scratch_dir, sizeof scratch_dir, "choreo-tests-XXXXXX") != 0 ||
        !mkdtemp(scratch_dir)) {
        /* The tests then make their directories in TMPDIR itself, as before. */
        fprintf(stderr, "tests: cannot make a scratch directory %s; the tests' files stay in "
                        "TMPDIR\n", scratch_dir);
        scratch_dir[0] = '\0';
        return;
    }
    setenv("TMPDIR", scratch_dir, 1);
}

static void scratch_end(bool failed)
{
    if (!scratch_dir[0])
        return;
    if (failed)
        fprintf(stderr, "tests: the failed tests' files are kept in %s\n", scratch_dir);
    else
        natsd_remove_tree(scratch_dir);
}

#ifdef CHOREO_TSAN_CRITERION_H /* the ThreadSanitizer build's runner (tests/tsan) */
void crshim_before_all(void)
{
    scratch_begin();
}

void crshim_after_all(bool failed)
{
    scratch_end(failed);
}
#else
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    scratch_begin();
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    scratch_end(stats->tests_failed > 0 || stats->tests_crashed > 0);
}
#endif

#endif
