/* Bootstrap intervals and sign-flip tests (definitions in stats.h).
 *
 * Each call starts its stream at word 0, so a result depends only on the data, the desc and the
 * definitions, never on what was computed before it. Sums run strictly left to right: the
 * reference script reproduces them with plain Python floats.
 */
#include "stats.h"

#include <math.h>
#include <stdlib.h>

#include "noise.h"

typedef struct resolved {
    uint32_t n_resamples, n_flips;
    double level;
    uint32_t seed, stream;
} resolved;

static xt_status resolve(const xt_stats_desc *d, resolved *r, xt_error *err)
{
    xt_stats_desc zero = {0};
    if (!d) d = &zero;
    r->n_resamples = d->n_resamples ? d->n_resamples : XT_STATS_DEFAULT_RESAMPLES;
    r->n_flips = d->n_flips ? d->n_flips : XT_STATS_DEFAULT_FLIPS;
    r->level = d->level != 0 ? d->level : XT_STATS_DEFAULT_LEVEL;
    r->seed = d->seed;
    r->stream = d->stream;
    if (!(r->level > 0 && r->level < 1))
        return xt_error_set(err, XT_ERR_USAGE, "stats: level %g is outside (0, 1)", r->level);
    return XT_OK;
}

static xt_status check_finite(const double *x, uint32_t n, const char *what, xt_error *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return xt_error_set(err, XT_ERR_RANGE, "stats: %s[%u] = %g is not finite", what, i,
                                x[i]);
    return XT_OK;
}

double xt_stats_mean(const double *x, uint32_t n)
{
    if (n == 0) return NAN;
    double s = 0;
    for (uint32_t i = 0; i < n; i++) s += x[i];
    return s / n;
}

double xt_stats_percentile_sorted(const double *s, uint32_t n, double q)
{
    if (n == 0) return NAN;
    double v = (double)(n - 1) * q;
    double fi = floor(v);
    if (!(fi < (double)(n - 1))) return s[n - 1];
    if (fi < 0) return s[0];
    uint32_t i = (uint32_t)fi;
    double g = v - fi;
    double a = s[i], b = s[i + 1], d = b - a;
    /* numpy's _lerp: from whichever end is nearer, which keeps the result monotone in g. */
    return g >= 0.5 ? b - d * (1 - g) : a + d * g;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* Shared by the mean and the ratio: y == NULL resamples the mean of x. */
static xt_status bootstrap(const double *x, const double *y, uint32_t n, const resolved *r,
                           xt_ci *out, xt_error *err)
{
    double *stat = malloc((size_t)r->n_resamples * sizeof *stat);
    if (!stat)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "stats: %u bootstrap resamples",
                            r->n_resamples);
    xt_rng rng;
    xt_rng_init(&rng, r->seed, r->stream);
    int all_finite = 1;
    for (uint32_t b = 0; b < r->n_resamples; b++) {
        double sx = 0, sy = 0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = xt_rng_below(&rng, n);
            sx += x[k];
            if (y) sy += y[k];
        }
        stat[b] = y ? (sx / n) / (sy / n) : sx / n;
        if (!isfinite(stat[b])) all_finite = 0;
    }
    if (all_finite) {
        qsort(stat, r->n_resamples, sizeof *stat, cmp_double);
        out->lo = xt_stats_percentile_sorted(stat, r->n_resamples, (1 - r->level) / 2);
        out->hi = xt_stats_percentile_sorted(stat, r->n_resamples, (1 + r->level) / 2);
    } else {
        out->lo = out->hi = NAN;
    }
    free(stat);
    return XT_OK;
}

xt_status xt_stats_bootstrap_mean(const double *x, uint32_t n, const xt_stats_desc *desc,
                                  xt_ci *out, xt_error *err)
{
    resolved r;
    xt_status s = resolve(desc, &r, err);
    if (!s) s = check_finite(x, n, "x", err);
    if (s) return s;
    out->estimate = xt_stats_mean(x, n);
    out->lo = out->hi = NAN;
    if (n < 2) return XT_OK;
    return bootstrap(x, NULL, n, &r, out, err);
}

xt_status xt_stats_bootstrap_ratio(const double *x, const double *y, uint32_t n,
                                   const xt_stats_desc *desc, xt_ci *out, xt_error *err)
{
    resolved r;
    xt_status s = resolve(desc, &r, err);
    if (!s) s = check_finite(x, n, "x", err);
    if (!s) s = check_finite(y, n, "y", err);
    if (s) return s;
    double my = xt_stats_mean(y, n);
    out->estimate = my != 0 ? xt_stats_mean(x, n) / my : NAN;
    out->lo = out->hi = NAN;
    if (n < 2) return XT_OK;
    return bootstrap(x, y, n, &r, out, err);
}

xt_status xt_stats_sign_flip(const double *x, uint32_t n, const xt_stats_desc *desc,
                             xt_sign_flip *out, xt_error *err)
{
    resolved r;
    xt_status s = resolve(desc, &r, err);
    if (!s) s = check_finite(x, n, "x", err);
    if (s) return s;
    out->mean = xt_stats_mean(x, n);
    out->p = 1;
    out->n_flips = 0;
    out->n_extreme = 0;
    if (n < 2) return XT_OK;

    double abs_sum = 0;
    for (uint32_t i = 0; i < n; i++) abs_sum += fabs(x[i]);
    const double threshold = fabs(out->mean) - 1e-12 * (abs_sum / n);
    xt_rng rng;
    xt_rng_init(&rng, r.seed, r.stream);
    uint32_t extreme = 0;
    for (uint32_t f = 0; f < r.n_flips; f++) {
        double sum = 0;
        uint32_t word = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (i % 32 == 0) word = xt_rng_u32(&rng);
            sum += (word >> (i % 32)) & 1u ? -x[i] : x[i];
        }
        if (fabs(sum / n) >= threshold) extreme++;
    }
    out->n_flips = r.n_flips;
    out->n_extreme = extreme;
    out->p = (1.0 + extreme) / (1.0 + r.n_flips);
    return XT_OK;
}
