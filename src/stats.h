/* Statistics of per-case values: mean, percentile-bootstrap confidence intervals (of a mean and
 * of a ratio of means) and the two-sided sign-flip test of mean = 0 (DESIGN.md §4 step 8).
 *
 *     xt_ci ci;
 *     xt_stats_bootstrap_mean(rescue, n, &(xt_stats_desc){.seed = 0, .stream = 3}, &ci, &err);
 *
 * Every random draw comes from one xt_rng stream (noise.h) named by (seed, stream), so a result
 * is reproduced exactly by any implementation that follows these definitions
 * (tests/reference/stats_reference.py does, with numpy.percentile for the percentiles):
 *
 * - Sums run left to right in double; mean = sum / n.
 * - Bootstrap of the mean: for b = 0..B-1, draw n indices k_1..k_n, each xt_rng_below(n) in that
 *   order, and m_b = (x[k_1] + ... + x[k_n]) / n. Sort m ascending; the CI is
 *   [P(q_lo), P(q_hi)] with q_lo = (1 - level) / 2 and q_hi = (1 + level) / 2 computed in double.
 * - Percentile P(q) of sorted s[0..B-1] (numpy's default 'linear' method, bit for bit):
 *   v = (B-1)*q, i = floor(v), g = v - i; if i >= B-1 the result is s[B-1]; else with d = s[i+1] - s[i] it is
 *   s[i+1] - d*(1-g) when g >= 0.5, s[i] + d*g otherwise.
 * - Bootstrap of a ratio of means: estimate mean(x) / mean(y); resample b draws the indices as
 *   above and uses both arrays at the same indices: r_b = (sx_b / n) / (sy_b / n). If mean(y) is 0
 *   the estimate is NaN; if any resample's r_b is not finite, the CI is [NaN, NaN].
 * - Sign flip: for f = 0..F-1, draw w = ceil(n/32) words; value i is negated when bit (i mod 32)
 *   of word i/32 is 1; mean_f = (sum of the signed values, left to right) / n. With scale =
 *   (|x_0| + ... + |x_{n-1}|) / n, p = (1 + #{f : |mean_f| >= |mean| - 1e-12 * scale}) / (1 + F);
 *   the tolerance counts flips that tie the observed mean up to rounding.
 * - n = 0: estimate and mean NaN, CI [NaN, NaN], p = 1 (no draws). n = 1: estimate x[0], CI
 *   [NaN, NaN] (one value says nothing about spread), p = 1 (no draws: both flips tie).
 */
#ifndef XT_STATS_H
#define XT_STATS_H

#include <stdint.h>

#include "expertrace/status.h"

#define XT_STATS_DEFAULT_RESAMPLES 5000u
#define XT_STATS_DEFAULT_FLIPS 10000u
#define XT_STATS_DEFAULT_LEVEL 0.95

/* Zero means default for the counts and the level; a NULL desc is all defaults (seed 0,
 * stream 0). */
typedef struct xt_stats_desc {
    uint32_t n_resamples; /* bootstrap resamples B (0: 5000) */
    uint32_t n_flips;     /* sign-flip draws F (0: 10000) */
    double level;         /* CI coverage in (0, 1) (0: 0.95) */
    uint32_t seed;        /* the xt_rng stream all draws come from */
    uint32_t stream;
} xt_stats_desc;

typedef struct xt_ci {
    double estimate; /* the statistic on the data itself */
    double lo, hi;   /* percentile-bootstrap interval */
} xt_ci;

typedef struct xt_sign_flip {
    double mean;        /* observed mean */
    double p;           /* two-sided p-value, in (0, 1] */
    uint32_t n_flips;   /* F actually drawn (0 when n < 2) */
    uint32_t n_extreme; /* flips with |mean_f| >= |mean| (less the tolerance) */
} xt_sign_flip;

/* Left-to-right mean; NaN when n = 0. */
double xt_stats_mean(const double *x, uint32_t n);

/* P(q) of s[n] sorted ascending, q in [0, 1] (definition above); NaN when n = 0. */
double xt_stats_percentile_sorted(const double *s, uint32_t n, double q);

/* Fail with XT_ERR_RANGE on a non-finite value, XT_ERR_USAGE on a level outside (0, 1),
 * XT_ERR_NO_MEMORY when the B resampled statistics cannot be held; out is written on success. */
xt_status xt_stats_bootstrap_mean(const double *x, uint32_t n, const xt_stats_desc *desc,
                                  xt_ci *out, xt_error *err);
xt_status xt_stats_bootstrap_ratio(const double *x, const double *y, uint32_t n,
                                   const xt_stats_desc *desc, xt_ci *out, xt_error *err);
xt_status xt_stats_sign_flip(const double *x, uint32_t n, const xt_stats_desc *desc,
                             xt_sign_flip *out, xt_error *err);

#endif
