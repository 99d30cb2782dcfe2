/* The tracing controller: the protocol of DESIGN.md §4 on one model and one facts file, run as
 * DESIGN.md §5 plans it (clean and noised prefill rows, then single-token wavefront rows that
 * patch the final position of one layer), with per-case JSONL output, a resumable checkpoint and a
 * summary JSON holding the paper's tables.
 *
 *     xt_trace_opts o;
 *     xt_trace_opts_init(&o);             // the defaults of DESIGN.md §4
 *     o.facts_path = "facts.json"; o.out_dir = "results";
 *     xt_status s = xt_trace_run(model, fwd, &o, &err);
 *
 * Passes, each resumable from the files in out_dir:
 *   1. filter + layer sweep: cases in the order of a seeded shuffle; clean and noised prefills;
 *      Δ = logit(true) − logit(foil) at the final position; cases passing the filter get one
 *      wavefront row per (layer, draw) whose MoE-block output at the final position is replaced
 *      by the clean one. One line per examined case in out_dir/sweep.jsonl.
 *   2. selection of l* (argmax mean rescue on discovery, or forced), then the expert pass at l*:
 *      one row per clean-routed expert (δ_e added), an equal-norm control per expert, the two
 *      coalitions and the layer patch; one line per case in out_dir/cases.jsonl.
 *   3. selection of e* (recurrence-first), controls, coalitions, bootstrap CIs and sign-flip tests
 *      in out_dir/summary.json.
 * Optionally (rome_cases > 0) ROME-style restorations of the residual / attention / MoE output at
 * every (position, layer), windowed, for the first cases: the layer × position grid, with Δ or
 * p(true) as the metric; averaged in summary.json, per case in out_dir/rome.jsonl.
 *
 * Patched MoE outputs of the expert pass are assembled on the host from the recorded routed
 * contributions (trace_exec.c: patched_output) in the order the GPU's combine adds them, so that
 * D_union reproduces the layer patch bit for bit on models without a shared expert.
 */
#ifndef XT_TRACE_H
#define XT_TRACE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "expertrace/model.h"
#include "expertrace/status.h"
#include "expertrace/tokenizer.h"
#include "forward.h"

typedef enum xt_filter_mode {
    XT_FILTER_STRICT = 0, /* Δ_clean >= 1.0 and Δ_clean − Δ_noised >= 0.5 */
    XT_FILTER_RELAXED,    /* 0.5 and 0.25 */
    XT_FILTER_NONE,       /* every resolvable case passes (e.g. given case ids) */
} xt_filter_mode;

typedef enum xt_noise_std {
    XT_NOISE_STD_EMBEDDING = 0, /* σ = k × std of the whole token_embd matrix */
    XT_NOISE_STD_SUBJECT,       /* σ = k × std of the subject tokens' embeddings (ROME) */
} xt_noise_std;

typedef enum xt_rome_metric {
    XT_ROME_METRIC_DELTA = 0, /* Δ = logit(true) − logit(foil), the protocol's metric */
    XT_ROME_METRIC_PROB,      /* p(true) = softmax over the whole vocabulary (ROME's metric) */
} xt_rome_metric;

#define XT_TRACE_MAX_FORCED_EXPERTS 64

typedef struct xt_trace_opts {
    const char *facts_path;
    const char *out_dir;
    const char *cases_path;  /* optional: JSON of case ids (list, or {discovery, validation}) */
    const char *cases_key;   /* with cases_path: the top-level key holding them (paper file) */
    uint32_t n_cases;        /* cases to select (default 256) */
    uint32_t n_discovery;    /* of which discovery (default n_cases / 2) */
    xt_filter_mode filter;
    uint32_t shuffle_seed;   /* default 0 */
    uint32_t noise_seed;     /* default 0: key (seed, case_id) of the noise */
    uint32_t stats_seed;     /* default 0: bootstrap, sign flips, random controls */
    double noise_scale;      /* k (default 3) */
    xt_noise_std noise_std;
    uint32_t draws;          /* noise draws per case (default 1) */
    xt_bos_mode bos;
    int32_t layer;           /* -1: select; else forced l* */
    uint32_t n_forced_experts; /* 0: select e*; else the first is e*, all are reported */
    uint32_t forced_experts[XT_TRACE_MAX_FORCED_EXPERTS];
    uint32_t bootstrap;      /* resamples (default 5000) */
    uint32_t flips;          /* sign flips (default 10000) */
    uint32_t batch_tokens;   /* tokens per prefill submission (the forward's max_tokens) */
    bool full_recompute;     /* run every patch as a full prefill instead of a wavefront row */
    uint32_t rome_cases;     /* ROME-style grids for the first N selected cases (0: none) */
    uint32_t rome_window;    /* layers per attention / MoE restoration window (default 10) */
    xt_rome_metric rome_metric;
    bool progress;           /* progress bar on stderr */
    bool quiet;              /* no terminal summary */
    /* recorded in the results as the run's environment */
    const char *device_name, *driver, *features, *backend_name;
} xt_trace_opts;

void xt_trace_opts_init(xt_trace_opts *o);

/* Runs (or resumes) the whole trace; fwd must have been created for model with
 * xt_trace_fwd_desc's sizes. Writes out_dir/{sweep.jsonl, cases.jsonl, summary.json}. */
xt_status xt_trace_run(const xt_model *model, xt_fwd *fwd, const xt_trace_opts *o,
                       xt_error *err);

/* The forward sizes the trace needs for a model and options (max_tokens, store, patches). */
void xt_trace_fwd_desc(const xt_model *model, const xt_trace_opts *o, xt_fwd_desc *d);

/* Compares two result directories case by case (same cases, same split, same l* and e*, Δ and
 * rescues within tol absolute); prints every difference to out; *same false on any. */
xt_status xt_trace_compare(const char *dir_a, const char *dir_b, double tol, FILE *out,
                           bool *same, xt_error *err);

#endif
