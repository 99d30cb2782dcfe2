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

/* Normalised mean squared error of a against the reference b, as llama.cpp's test-backend-ops
 * judges ops: sum (a-b)^2 / sum b^2 (0 when both are all zero). Non-finite values give INFINITY
 * unless they are identical in both. */
static inline double xt_nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) {
            if (memcmp(&a[i], &b[i], sizeof a[i])) return INFINITY;
            continue;
        }
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return num == 0 ? 0 : INFINITY;
    return num / den;
}

static inline int xt_test_finish(void)
{
    printf("%d passed, %d failed\n", xt_test_passed, xt_test_failed);
    return xt_test_failed ? 1 : 0;
}

#endif
