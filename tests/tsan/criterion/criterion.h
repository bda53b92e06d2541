/* A stand-in for <criterion/criterion.h> in the ThreadSanitizer build, where
 * Criterion's own runner cannot start (it fails to set up its inheritable
 * arena under TSan: Criterion issue 274). It offers the part of Criterion
 * that choreo's integration and demo tests use: Test() with .timeout, .init,
 * .fini and .disabled, and the cr_assert and cr_expect families. The tests
 * register themselves before main; runner.c runs each in a forked child. */
#ifndef CHOREO_TSAN_CRITERION_H
#define CHOREO_TSAN_CRITERION_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

struct crshim_test {
    const char *suite;
    const char *name;
    void (*fn)(void);
    void (*init)(void);      /* run before fn in the child, may be NULL */
    void (*fini)(void);      /* run after fn when it returns, may be NULL */
    double timeout;          /* seconds; 0 is the runner's default */
    bool disabled;
    const char *description; /* accepted, not used */
    struct crshim_test *next;
};

/* Adds t to the tests of this executable; called by Test() before main. */
void crshim_register(struct crshim_test *t);

/* Called by the runner, when the test program defines them (tests/scratch.h
 * does), before its first test and after its last. */
void crshim_before_all(void);
void crshim_after_all(bool failed);

/* Reports a failed check: prints where, expr and the message (fmt and its
 * arguments; fmt may be ""), marks the test failed, and ends the test
 * process at once when fatal. Returns when ok. Callable from any thread. */
void crshim_check(bool ok, bool fatal, const char *file, int line, const char *expr,
                  const char *fmt, ...);

/* Test(suite, name, .timeout = 60, ...) { body }. The trailing .next gives
 * the option list one entry even when the test has none, which ISO C's
 * variadic macros require. */
#define Test(...) CRSHIM_TEST(__VA_ARGS__, .next = NULL)
#define CRSHIM_TEST(suite_, name_, ...)                                                    \
    static void suite_##_##name_##_fn(void);                                               \
    static struct crshim_test suite_##_##name_##_test = {                                  \
        .suite = #suite_, .name = #name_, .fn = suite_##_##name_##_fn, __VA_ARGS__         \
    };                                                                                     \
    __attribute__((constructor)) static void suite_##_##name_##_register(void)            \
    {                                                                                      \
        crshim_register(&suite_##_##name_##_test);                                         \
    }                                                                                      \
    static void suite_##_##name_##_fn(void)

/* Every check takes an optional printf-style message after its operands.
 * The "" appended here keeps the argument list non-empty when there is
 * none; printf ignores an argument its format does not use. */
#define CRSHIM_BOOL(fatal, cond, ...)                                                      \
    crshim_check((cond) ? true : false, fatal, __FILE__, __LINE__, #cond, __VA_ARGS__)
#define CRSHIM_NOT(fatal, cond, ...)                                                       \
    crshim_check((cond) ? false : true, fatal, __FILE__, __LINE__, "!(" #cond ")", __VA_ARGS__)
#define CRSHIM_CMP(fatal, op, a, b, ...)                                                   \
    crshim_check((a) op (b), fatal, __FILE__, __LINE__, #a " " #op " " #b, __VA_ARGS__)
#define CRSHIM_NULL(fatal, op, a, ...)                                                     \
    crshim_check((a) op NULL, fatal, __FILE__, __LINE__, #a " " #op " NULL", __VA_ARGS__)
#define CRSHIM_STR(fatal, op, a, b, ...)                                                   \
    crshim_check(strcmp((a), (b)) op 0, fatal, __FILE__, __LINE__,                         \
                 "strcmp(" #a ", " #b ") " #op " 0", __VA_ARGS__)
#define CRSHIM_EMPTY(fatal, op, a, ...)                                                    \
    crshim_check((a)[0] op '\0', fatal, __FILE__, __LINE__, #a "[0] " #op " '\\0'", __VA_ARGS__)

#define cr_assert(...) CRSHIM_BOOL(true, __VA_ARGS__, "")
#define cr_assert_not(...) CRSHIM_NOT(true, __VA_ARGS__, "")
#define cr_assert_eq(...) CRSHIM_CMP(true, ==, __VA_ARGS__, "")
#define cr_assert_neq(...) CRSHIM_CMP(true, !=, __VA_ARGS__, "")
#define cr_assert_lt(...) CRSHIM_CMP(true, <, __VA_ARGS__, "")
#define cr_assert_leq(...) CRSHIM_CMP(true, <=, __VA_ARGS__, "")
#define cr_assert_gt(...) CRSHIM_CMP(true, >, __VA_ARGS__, "")
#define cr_assert_geq(...) CRSHIM_CMP(true, >=, __VA_ARGS__, "")
#define cr_assert_null(...) CRSHIM_NULL(true, ==, __VA_ARGS__, "")
#define cr_assert_not_null(...) CRSHIM_NULL(true, !=, __VA_ARGS__, "")
#define cr_assert_str_eq(...) CRSHIM_STR(true, ==, __VA_ARGS__, "")
#define cr_assert_str_neq(...) CRSHIM_STR(true, !=, __VA_ARGS__, "")
#define cr_assert_str_empty(...) CRSHIM_EMPTY(true, ==, __VA_ARGS__, "")
#define cr_assert_str_not_empty(...) CRSHIM_EMPTY(true, !=, __VA_ARGS__, "")

#define cr_expect(...) CRSHIM_BOOL(false, __VA_ARGS__, "")
#define cr_expect_not(...) CRSHIM_NOT(false, __VA_ARGS__, "")
#define cr_expect_eq(...) CRSHIM_CMP(false, ==, __VA_ARGS__, "")
#define cr_expect_neq(...) CRSHIM_CMP(false, !=, __VA_ARGS__, "")
#define cr_expect_lt(...) CRSHIM_CMP(false, <, __VA_ARGS__, "")
#define cr_expect_leq(...) CRSHIM_CMP(false, <=, __VA_ARGS__, "")
#define cr_expect_gt(...) CRSHIM_CMP(false, >, __VA_ARGS__, "")
#define cr_expect_geq(...) CRSHIM_CMP(false, >=, __VA_ARGS__, "")
#define cr_expect_null(...) CRSHIM_NULL(false, ==, __VA_ARGS__, "")
#define cr_expect_not_null(...) CRSHIM_NULL(false, !=, __VA_ARGS__, "")
#define cr_expect_str_eq(...) CRSHIM_STR(false, ==, __VA_ARGS__, "")
#define cr_expect_str_neq(...) CRSHIM_STR(false, !=, __VA_ARGS__, "")
#define cr_expect_str_empty(...) CRSHIM_EMPTY(false, ==, __VA_ARGS__, "")
#define cr_expect_str_not_empty(...) CRSHIM_EMPTY(false, !=, __VA_ARGS__, "")

/* Criterion's log lines: to stderr, prefixed as Criterion prefixes them. */
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn(...) (fprintf(stderr, "[WARN] " __VA_ARGS__), fputc('\n', stderr))

#endif
