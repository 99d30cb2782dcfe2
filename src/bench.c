/* Shared printing for the op micro-benchmarks (see bench.h). */
#include "bench.h"

#include <stdlib.h>

void xt_bench_header(const xt_bench *b)
{
    fprintf(b->out, "peak: %.1f GFLOP/s (fp32 FMA), %.2f GB/s (copy)\n",
            b->peak.flops_per_s * 1e-9, b->peak.bytes_per_s * 1e-9);
    fprintf(b->out, "%-14s %-22s %6s %11s %10s %7s %9s %7s\n", "op", "detail", "tokens", "time_ms",
            "GFLOP/s", "%peak", "GB/s", "%peak");
}

void xt_bench_row(const xt_bench *b, const char *op, const char *detail, uint32_t tokens,
                  double ns, double flop, double bytes)
{
    double s = ns * 1e-9;
    double fl = s > 0 ? flop / s : 0, by = s > 0 ? bytes / s : 0;
    double pf = b->peak.flops_per_s > 0 ? 100.0 * fl / b->peak.flops_per_s : 0;
    double pb = b->peak.bytes_per_s > 0 ? 100.0 * by / b->peak.bytes_per_s : 0;
    fprintf(b->out, "%-14s %-22s %6u %11.3f %10.2f %6.1f%% %9.2f %6.1f%%\n", op, detail, tokens,
            ns * 1e-6, fl * 1e-9, pf, by * 1e-9, pb);
    fflush(b->out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double xt_bench_median(double *v, uint32_t n)
{
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
