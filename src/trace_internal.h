/* What the tracer's files share: one case's state through the passes, the run, and the
 * functions of each stage (trace_case.c: facts to cases; trace_exec.c: rows on the forward;
 * trace_stats.c: selection and tables; trace_io.c: JSONL, resume, summary). */
#ifndef XT_TRACE_INTERNAL_H
#define XT_TRACE_INTERNAL_H

#include <cjson/cJSON.h>

#include "trace.h"

enum { XT_SPLIT_NONE = -1, XT_SPLIT_DISCOVERY = 0, XT_SPLIT_VALIDATION = 1 };
enum { XT_ROME_RESIDUAL = 0, XT_ROME_ATTN = 1, XT_ROME_MOE = 2, XT_ROME_KINDS = 3 };

typedef struct trace_case {
    /* from the facts file and the tokenizer */
    int64_t case_id;
    uint32_t record;           /* index in the facts file */
    char *prompt, *subject, *target_true, *target_foil, *relation;
    int32_t *tokens;           /* [n_tokens], BOS included when used */
    uint32_t n_tokens;
    uint32_t subj_begin, subj_end; /* token positions [begin, end) */
    int32_t true_id, foil_id;

    /* pass 1: filter and layer sweep */
    bool swept;                /* pass 1 result present (run or read back) */
    bool passed;               /* the filter's verdict */
    float delta_clean;
    float *delta_noised;       /* [draws] */
    double delta_noised_mean;
    double *layer_rescue;      /* [L] mean over draws; NULL when not passed */
    uint32_t *route_clean;     /* [L][k] expert ids at the final position (clean) */
    float *route_clean_w;      /* [L][k] */
    uint32_t *route_noised;    /* [L][k] draw 0 */
    float *route_noised_w;

    /* selection */
    int split;                 /* XT_SPLIT_* */

    /* pass 2: the expert pass at expert_layer */
    bool expert_done;
    uint32_t expert_layer;
    uint32_t *experts;         /* [k] clean-routed experts, slot order */
    float *expert_weight;      /* [k] clean router weights */
    double *expert_rescue;     /* [k] mean over draws */
    double *equal_norm_rescue; /* [k] random direction of ||δ_e|| */
    double *delta_norm;        /* [k] ||δ_e|| (draw 0) */
    double layer_patch_rescue; /* the layer patch at expert_layer */
    double coalition_top, coalition_union;
    uint32_t n_noised_only;    /* noised-routed experts not in the clean top-k (draw 0) */
    uint32_t noised_only[64];

    /* ROME-style grid: [kind][layer][position] restored metric − noised metric (draw 0), or
     * NULL; rome_base: the metric of the clean and the noised run */
    double *rome;
    double rome_base[2];
} trace_case;

typedef struct trace_run {
    const xt_model *model;
    const xt_hparams *hp;
    xt_fwd *fwd;
    const xt_trace_opts *o;
    xt_tokenizer *tok;
    bool bos;                  /* BOS used (from o->bos and the vocabulary) */
    double sigma, embd_std;    /* noise σ and the std it scales */
    uint32_t L, k, D, draws;

    trace_case *cases;         /* valid cases, in file order */
    uint32_t n_cases;
    uint32_t *order;           /* [n_cases] indices into cases: the examination order */
    uint32_t n_order;
    uint32_t n_records, n_rejected;
    cJSON *rejected;           /* [{record, case_id, reason}] */

    uint32_t *selected;        /* [n_selected] indices into cases, discovery first */
    uint32_t n_selected, n_discovery_sel;
    uint32_t examined;         /* cases examined by pass 1 */

    int32_t layer;             /* l* (-1 before selection) */
    int32_t expert;            /* e* (-1 before selection) */
    bool layer_forced, expert_forced;

    /* counters for the benchmark figures */
    uint64_t prefill_rows, prefill_tokens, wave_rows, submissions, timed_cases;
    double seconds_pass1, seconds_pass2, seconds_rome;

    FILE *sweep_f, *cases_f;   /* open for appending */
} trace_run;

/* trace_case.c */
xt_status trace_cases_load(trace_run *r, xt_error *err);
xt_status trace_noise_sigma(trace_run *r, xt_error *err);
void trace_cases_free(trace_run *r);
bool trace_filter_pass(const trace_run *r, const trace_case *c);

/* trace_exec.c */
xt_status trace_pass1(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err);
xt_status trace_pass2(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err);
xt_status trace_rome(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err);
/* Rows of full logits per submission the ROME pass needs (1 unless the metric is p(true)). */
uint32_t trace_rome_out_rows(const xt_model *model, const xt_trace_opts *o);

/* trace_stats.c */
int32_t trace_select_layer(const trace_run *r);
int32_t trace_select_expert(const trace_run *r);
cJSON *trace_summary(const trace_run *r, xt_error *err);
void trace_print_summary(const trace_run *r, const cJSON *summary, FILE *f);

/* trace_io.c */
cJSON *trace_case_sweep_json(const trace_run *r, const trace_case *c);
cJSON *trace_case_json(const trace_run *r, const trace_case *c);
xt_status trace_resume(trace_run *r, xt_error *err);
xt_status trace_append(FILE *f, const char *path, const cJSON *line, xt_error *err);
xt_status trace_write_json(const char *path, const cJSON *j, xt_error *err);
/* out_dir/rome.jsonl: one line per case with a ROME grid (tokens, span, metric of the clean and
 * noised runs, [layer][position] per kind), written whole (the ROME pass is not resumed). */
xt_status trace_write_rome(const trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err);
const char *trace_rome_metric_name(xt_rome_metric m);
cJSON *trace_read_json(const char *path, xt_error *err);

/* small helpers */
void *trace_calloc(size_t n, size_t size);
cJSON *trace_num(double v); /* a number that round-trips (NaN/inf as null) */

#endif
