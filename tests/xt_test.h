/* Minimal test harness: CHECK-style macros that count, and a closing "N passed, N failed" line.
 *
 *     static void parse_should_reject_truncated_header(void) { CHECK(...); }
 *     int main(void) { RUN(parse_should_reject_truncated_header); return xt_test_finish(); }
 */
#ifndef XT_TEST_H
#define XT_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int xt_test_passed, xt_test_failed, xt_test_case_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
            xt_test_case_failed = 1;                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_MSG(cond, ...)                                                               \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            xt_test_case_failed = 1;                                                       \
        }                                                                                  \
    } while (0)

/* A test function is one behaviour; it passes when none of its CHECKs failed. */
#define RUN(fn)                                                                            \
    do {                                                                                   \
        xt_test_case_failed = 0;                                                           \
        fn();                                                                              \
        if (xt_test_case_failed) {                                                         \
            xt_test_failed++;                                                              \
            fprintf(stderr, "FAIL %s\n", #fn);                                             \
        } else {                                                                           \
            xt_test_passed++;                                                              \
            fprintf(stdout, "ok   %s\n", #fn);                                             \
        }                                                                                  \
    } while (0)

static inline int xt_test_finish(void)
{
    printf("%d passed, %d failed\n", xt_test_passed, xt_test_failed);
    return xt_test_failed ? 1 : 0;
}

#endif
