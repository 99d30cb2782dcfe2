/* Op micro-benchmarks (issue: GPU kernels): each op family times its kernels with GPU
 * timestamps at Qwen3-30B-A3B layer shapes and prints rows through xt_bench_row, next to the
 * device's measured peak FLOP/s and bytes/s (xt_vk_measure_peak). Figures, not pass/fail. */
#ifndef XT_BENCH_H
#define XT_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"
#include "kernels.h"

typedef struct xt_bench {
    xt_kernels *k;
    FILE *out;
    xt_peak peak;       /* measured once per run */
    uint32_t repeats;   /* timed runs per row; the median is reported */
    const uint32_t *tokens; /* token counts to run, e.g. {1, 16, 256, 2048} */
    uint32_t n_tokens;
    const uint32_t *types;  /* weight types (xt_type) for families that take one; */
    uint32_t n_types;       /* 0: each family's defaults */
} xt_bench;

/* One result: op (e.g. "matmul"), detail (weight type or shape), tokens, GPU time of one run
 * in ns, and the FLOP and bytes (read + written) that one run must do at least. */
void xt_bench_row(const xt_bench *b, const char *op, const char *detail, uint32_t tokens,
                  double ns, double flop, double bytes);
void xt_bench_header(const xt_bench *b);
/* Median of n values (sorts v). */
double xt_bench_median(double *v, uint32_t n);

/* Each op family's rows: matmul/embedding/logit gather (bench_matmul.c), norms, RoPE and
 * attention (bench_attn.c), routing, grouping, expert FFN and patching (bench_moe.c). */
xt_status xt_bench_matmul(xt_bench *b, xt_error *err);
xt_status xt_bench_attn(xt_bench *b, xt_error *err);
xt_status xt_bench_moe(xt_bench *b, xt_error *err);

#endif
