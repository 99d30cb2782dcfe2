/* CPU reference of the MoE op family: router, grouping by expert, the expert FFN steps, the whole
 * MoE block and the patch-injection pass. Plain C, one thread, fixed evaluation order: the oracle
 * the shaders of op_moe.c are checked against, and the MoE part of a later `--backend cpu`.
 *
 * Layouts are those of op_moe.h: activations fp32 row-major [rows][width]; routing per token t
 * and slot s at entry e = t*k + s; ids >= E (XT_MOE_NO_EXPERT) mean "no expert".
 */
#ifndef XT_REF_MOE_H
#define XT_REF_MOE_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/status.h"
#include "push_moe.h" /* host/GLSL constants (shaders/) */

/* Router (see shaders/router.comp for the exact rules). flags: XT_ROUTER_*; mask: bit e of row
 * (mask_rows == 1 ? 0 : t) excludes expert e, ceil(E/32) words a row, read when flags has
 * XT_ROUTER_MASK; force [T][k] read when flags has XT_ROUTER_FORCE; probs [T][E] written when
 * non-NULL. ids, weights [T][k]. */
void xt_ref_router(const float *logits, uint32_t n_tokens, uint32_t n_expert, uint32_t n_used,
                   uint32_t flags, const uint32_t *mask, uint32_t mask_rows, const uint32_t *force,
                   uint32_t *ids, float *weights, float *probs);

/* Grouping (src/moe_groups.h): counts [E], offsets [E+1], order [n_entries] (positions past
 * offsets[E] untouched), tiles [2*max_tiles]; returns the tile count. */
uint32_t xt_ref_moe_group(const uint32_t *ids, uint32_t n_entries, uint32_t n_expert,
                          uint32_t tile_rows, uint32_t max_tiles, uint32_t *counts,
                          uint32_t *offsets, uint32_t *order, uint32_t *tiles);

/* g[i] = silu(g[i]) * u[i] for i < n. */
void xt_ref_moe_swiglu(float *g, const float *u, uint64_t n);
/* c[e][n] = ids[e] < E ? w[e] * c[e][n] : 0 for e < n_entries, n < width. */
void xt_ref_moe_weight(float *c, const float *w, const uint32_t *ids, uint32_t n_entries,
                       uint32_t width, uint32_t n_expert);
/* s[t][n] = sigmoid(gate[t]) * s[t][n]. */
void xt_ref_moe_shared_gate(float *s, const float *gate, uint32_t n_tokens, uint32_t width);
/* y[t][n] = sum over slots in order of c[t*k+s][n], + shared[t][n] when shared != NULL. */
void xt_ref_moe_combine(const float *c, const float *shared, float *y, uint32_t n_tokens,
                        uint32_t n_used, uint32_t width);

/* A weight tensor as stored in GGUF: packed rows of ne[0] elements of `type`. */
typedef struct xt_ref_tensor {
    uint32_t type;    /* xt_type */
    int64_t ne[3];    /* ggml order; 3-D for expert tensors {K, N, E} */
    const void *data; /* NULL: the tensor is absent */
} xt_ref_tensor;

/* y[r][n] = sum_k W[slab][n][k] * x[r][k] (k ascending, fp32), W dequantized with xt_dequantize;
 * x [rows][K], y [rows][N]. */
xt_status xt_ref_moe_matvec(const xt_ref_tensor *w, uint32_t slab, const float *x, uint32_t rows,
                            float *y, xt_error *err);

typedef struct xt_ref_moe_weights {
    xt_ref_tensor gate_inp;       /* {n_embd, E} */
    xt_ref_tensor gate_exps;      /* {n_embd, n_ff, E} */
    xt_ref_tensor up_exps;        /* {n_embd, n_ff, E} */
    xt_ref_tensor down_exps;      /* {n_ff, n_embd, E} */
    xt_ref_tensor gate_inp_shexp; /* {n_embd} or absent (no shared expert) */
    xt_ref_tensor gate_shexp;     /* {n_embd, n_ff_s} */
    xt_ref_tensor up_shexp;       /* {n_embd, n_ff_s} */
    xt_ref_tensor down_shexp;     /* {n_ff_s, n_embd} */
    uint32_t n_used;              /* k */
    bool renorm;                  /* qwen3moe, Mixtral: true; qwen2moe, olmoe: false */
} xt_ref_moe_weights;

/* Everything the MoE block produces; NULL members are not written (y is required). */
typedef struct xt_ref_moe_out {
    float *y;        /* [T][n_embd] MoE block output */
    float *contrib;  /* [T*k][n_embd] per (token, slot) weighted expert output */
    float *shared;   /* [T][n_embd] gated shared-expert output */
    uint32_t *ids;   /* [T*k] */
    float *weights;  /* [T*k] */
    float *probs;    /* [T][E] */
} xt_ref_moe_out;

/* The MoE block from its post-norm input x [T][n_embd]. */
xt_status xt_ref_moe_layer(const xt_ref_moe_weights *w, const float *x, uint32_t n_tokens,
                           const xt_ref_moe_out *out, xt_error *err);

/* The patch pass (shaders/patch_apply.comp): entries [first, first+count) of table (XT_PATCH_WORDS
 * words each) for this layer and site applied in table order to target (n_tokens vectors of
 * width floats, or n_tokens*k for the per-expert sites, which need ids). */
void xt_ref_patch_apply(const uint32_t *table, uint32_t first, uint32_t count, uint32_t layer,
                        uint32_t site, const uint32_t *row_base, uint32_t n_rows, const float *src,
                        uint32_t src_floats, float *target, uint32_t n_tokens, uint32_t width,
                        const uint32_t *ids, uint32_t n_used);

#endif
