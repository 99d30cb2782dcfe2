/* The forward pass the tracer drives (DESIGN.md §5): a batch of prefill sequences of different
 * lengths in one submission, then wavefront rows — single-token rows that start inside layer l
 * of a parent sequence's final position from a given residual vector and attend to the parent's
 * K/V above l — in later submissions of the same pass. Per layer, sites can be recorded into the
 * store (a float array on the device) and patched through a patch table whose sources live in the
 * store too. Two backends with one API: the GPU (shaders, src/op_*.h) and the CPU (the xt_ref_*
 * references: the cross-check for any GPU).
 *
 *     xt_fwd *f;
 *     xt_fwd_create(&(xt_fwd_desc){.model = m, .vk = vk, .max_tokens = 256}, &f, &err);
 *     xt_fwd_seq seqs[2] = {{ids_a, 7}, {ids_b, 12}};
 *     float logits[2 * n_vocab];
 *     xt_fwd_prefill(f, &(xt_fwd_batch){.seqs = seqs, .n_seqs = 2, .logits = logits}, &err);
 *     ...xt_fwd_wavefront(f, &(xt_fwd_batch){.rows = rows, .n_rows = n, .delta = d, ...}, &err);
 *     xt_fwd_destroy(f);
 *
 * Numerics: the GPU path is deterministic and batch invariant (a token's bits do not depend on
 * which other tokens share its batch, or on whether it is a prefill token or a wavefront row);
 * the CPU path is its reference (same op order, fp32, NMSE ~1e-12 against it on lavapipe).
 */
#ifndef XT_FORWARD_H
#define XT_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/model.h"
#include "expertrace/status.h"
#include "expertrace/vk.h"

/* One patch: what xt_op_patch applies (op_moe.h's xt_patch_entry, same layout; checked in
 * forward.c). Sites and modes are op_moe.h's XT_SITE_* / XT_PATCH_* numbers, repeated here so
 * that this header stands alone. */
typedef struct xt_fwd_patch {
    uint32_t row;      /* prefill: sequence index; wavefront: row index */
    uint32_t position; /* position within the row (0 for wavefront rows) */
    uint32_t layer;
    uint32_t site;     /* XT_FWD_SITE_* */
    uint32_t expert;   /* per-expert sites: the routed expert (not routed: no-op) */
    uint32_t mode;     /* XT_FWD_PATCH_* */
    uint32_t src;      /* float index into the store of the source vector */
    uint32_t reserved; /* 0 */
} xt_fwd_patch;

enum {
    XT_FWD_SITE_RESIDUAL = 0,      /* the residual entering the layer */
    XT_FWD_SITE_ATTN_OUT = 1,      /* attention output, before the residual add */
    XT_FWD_SITE_MOE_OUT = 2,       /* MoE block (or dense FFN) output, before the residual add */
    XT_FWD_SITE_EXPERT = 3,        /* one routed expert's weighted contribution */
    XT_FWD_SITE_ROUTER_WEIGHT = 4, /* one routed expert's router weight (1 float) */
    XT_FWD_SITE_SHARED_EXPERT = 5, /* the gated shared-expert contribution */
};
enum { XT_FWD_PATCH_REPLACE = 0, XT_FWD_PATCH_ADD = 1, XT_FWD_PATCH_ZERO = 2 };

typedef enum xt_backend { XT_BACKEND_GPU = 0, XT_BACKEND_CPU = 1 } xt_backend;

/* Sites that can be recorded (per layer, at one token). Widths: xt_fwd_site_floats. */
typedef enum xt_rec_site {
    XT_REC_RESIDUAL_IN = 0, /* [n_embd] the residual entering the layer */
    XT_REC_ATTN_OUT,        /* [n_embd] attention output after attn_output (post patch) */
    XT_REC_RESIDUAL_MID,    /* [n_embd] residual after the attention add: a MoE-stage row's input */
    XT_REC_MOE_IN,          /* [n_embd] ffn_norm output (the MoE / FFN input) */
    XT_REC_ROUTER_LOGITS,   /* [E] ffn_gate_inp logits */
    XT_REC_ROUTER_PROBS,    /* [E] softmax over all experts */
    XT_REC_EXPERT_IDS,      /* [k] routed experts in slot order (u32 bit patterns) */
    XT_REC_EXPERT_WEIGHTS,  /* [k] router weights in slot order (after patches) */
    XT_REC_EXPERT_CONTRIB,  /* [k][n_embd] weighted contribution of each routed slot */
    XT_REC_SHARED,          /* [n_embd] gated shared-expert contribution (qwen2moe) */
    XT_REC_MOE_OUT,         /* [n_embd] MoE block (or dense FFN) output (post patch) */
    XT_REC_RESIDUAL_OUT,    /* [n_embd] the residual leaving the layer */
    XT_REC_COUNT
} xt_rec_site;

const char *xt_rec_site_name(xt_rec_site s);
/* Floats a record of site s takes; 0 when the model has no such site (MoE sites of a dense model,
 * the shared expert of a model without one). */
uint32_t xt_fwd_site_floats(const xt_hparams *hp, xt_rec_site s);

/* Copy one site's vector at (row, position, layer) to store[dst, dst + floats). In a prefill, row
 * is the sequence index; in a wavefront submission, the row index (position 0). */
typedef struct xt_fwd_record {
    uint32_t row, position, layer;
    xt_rec_site site;
    uint32_t dst; /* float index into the store */
} xt_fwd_record;

typedef struct xt_fwd_seq {
    const int32_t *tokens;
    uint32_t n_tokens; /* >= 1 */
} xt_fwd_seq;

/* Where a wavefront row starts inside its first layer. */
typedef enum xt_fwd_stage {
    XT_STAGE_LAYER = 0, /* input = the residual entering `layer` (XT_REC_RESIDUAL_IN) */
    XT_STAGE_MOE = 1,   /* input = the residual after layer's attention (XT_REC_RESIDUAL_MID):
                           the row recomputes layer's MoE block (with its patches) and goes on */
} xt_fwd_stage;

typedef struct xt_fwd_row {
    uint32_t parent;  /* sequence index in the last xt_fwd_prefill */
    uint32_t layer;   /* first layer the row computes (part of) */
    xt_fwd_stage stage;
    uint32_t input;   /* float index into the store of its input vector [n_embd] */
} xt_fwd_row;

/* One submission. Prefill: seqs. Wavefront: rows (after a prefill whose K/V they read). */
typedef struct xt_fwd_batch {
    const xt_fwd_seq *seqs;
    uint32_t n_seqs;
    const xt_fwd_row *rows;
    uint32_t n_rows;
    const xt_fwd_record *records;
    uint32_t n_records;
    const xt_fwd_patch *patches; /* row/position as records; src indexes the store */
    uint32_t n_patches;
    /* Outputs (host arrays, each optional). An output row is a sequence (prefill, last position
     * unless all_positions) or a wavefront row. */
    bool all_positions;  /* prefill: logits at every position, [sum n_tokens][n_vocab] in order */
    float *logits;       /* [out rows][n_vocab] */
    const uint32_t *true_ids, *foil_ids; /* [out rows]: compute Δ without the full lm head */
    float *delta;        /* [out rows]: logit(true) - logit(foil) */
    float *true_foil;    /* [out rows][2]: (logit true, logit foil), optional */
} xt_fwd_batch;

typedef struct xt_fwd_desc {
    const xt_model *model;
    xt_backend backend;
    xt_vk_context *vk;     /* GPU backend */
    uint32_t max_tokens;   /* tokens (prefill) or rows (wavefront) per submission; 0: 512 */
    uint32_t kv_slots;     /* K/V entries per layer; 0: 2 * max_tokens (prefill + wavefront) */
    uint32_t store_floats; /* 0: 1 Mi floats */
    uint32_t max_patches;  /* 0: 4096 */
    uint32_t max_out_rows; /* rows of full logits per submission; 0: max_tokens */
} xt_fwd_desc;

typedef struct xt_fwd xt_fwd;

/* Creates the forward state: on the GPU, plans the memory (weights per xt_model_plan plus
 * activations, caches and the store) and fails with XT_ERR_DEVICE_MEMORY naming the figures
 * before uploading anything when it does not fit the device's heaps; then uploads every weight
 * once. The model must outlive the result. */
xt_status xt_fwd_create(const xt_fwd_desc *desc, xt_fwd **out, xt_error *err);
void xt_fwd_destroy(xt_fwd *f);

const xt_hparams *xt_fwd_hparams(const xt_fwd *f);
xt_backend xt_fwd_backend(const xt_fwd *f);
/* Device bytes the GPU state holds (weights + buffers); 0 for the CPU backend. */
uint64_t xt_fwd_device_bytes(const xt_fwd *f, uint64_t *weight_bytes);

/* Runs seqs: one submission, K/V of every token kept (slot = token index in the batch) for the
 * wavefront rows that follow. Records, patches and outputs as the batch says. */
xt_status xt_fwd_prefill(xt_fwd *f, const xt_fwd_batch *b, xt_error *err);
/* Runs rows against the K/V of the last prefill. */
xt_status xt_fwd_wavefront(xt_fwd *f, const xt_fwd_batch *b, xt_error *err);

/* Where a forward's time went, summed over its submissions (host clock): the figures that say
 * whether recording command buffers anew per submission costs anything next to the work. */
typedef struct xt_fwd_times {
    uint64_t submissions;
    double plan_s;     /* host planning: positions, K/V slots, the patch table */
    double record_s;   /* GPU backend: uploading the plan and recording the command buffer */
    double execute_s;  /* submit to completion (GPU); the whole computation (CPU backend) */
    double download_s; /* outputs back to the host */
} xt_fwd_times;
void xt_fwd_times_get(const xt_fwd *f, xt_fwd_times *out);

/* The store: host <-> store[first, first + n). */
xt_status xt_fwd_store_write(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                             xt_error *err);
xt_status xt_fwd_store_read(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err);
uint32_t xt_fwd_store_floats(const xt_fwd *f);

#endif
