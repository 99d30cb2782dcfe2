/* Op micro-benchmarks (issue: GPU kernels): each op family times its kernels with GPU
 * timestamps at Qwen3-30B-A3B layer shapes and prints rows through xt_bench_row, next to the
 * device's measured peak FLOP/s and bytes/s (xt_vk_measure_peak). Figures, not pass/fail. */
#ifndef XT_BENCH_H
#define XT_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"
#include "forward.h"
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

/* ---- whole-forward benchmark (bench_forward.c) ----------------------------------------------
 * Forward tokens/s of xt_fwd_prefill on a real GGUF model: each workload is n_seq prompts of
 * n_tok tokens in one submission, logits of each prompt's last position copied to the host (what
 * tests/reference/bench_llama.py times in llama.cpp). Wall-clock around xt_fwd_prefill after one
 * warm-up run, best and median of `repeats`. Workload names: "batchNxM" (N prompts × M tokens)
 * and "prefillM" (one prompt of M tokens). Token ids come from bench_llama.py's OUT_PREFIX.json
 * ("prompts": {workload: [[ids...], ...]}) so both engines run identical input, or, without a
 * file, from a fixed-seed generator. Achieved FLOP/s counts the matmuls (projections, router,
 * the routed experts' FFNs, shared expert or dense FFN, lm head at the output rows) and the
 * causal attention products, next to the device's measured peak when one is given. */
typedef struct xt_bench_fwd_desc {
    const char *model_path;
    const char *tokens_file;            /* NULL: fixed-seed ids */
    const char *const *workloads;       /* names as above */
    uint32_t n_workloads;
    xt_backend backend;
    xt_vk_context *vk;                  /* GPU backend */
    const xt_peak *peak;                /* optional: printed next to the achieved FLOP/s */
    uint32_t repeats;                   /* timed runs after the warm-up; 0: 3 */
    bool json;                          /* one JSON object instead of a table */
    FILE *out;
} xt_bench_fwd_desc;

/* Checks a workload name; fills n_seq and n_tok. */
bool xt_bench_fwd_parse_workload(const char *name, uint32_t *n_seq, uint32_t *n_tok);
xt_status xt_bench_forward(const xt_bench_fwd_desc *d, xt_error *err);

#endif
