/* Shared between forward.c (batch planning, checks) and the two backends (forward_gpu.c,
 * forward_cpu.c). A batch is turned into one host-side plan that both backends execute the same
 * way, so they cannot disagree about which token is where. */
#ifndef XT_FORWARD_INTERNAL_H
#define XT_FORWARD_INTERNAL_H

#include "forward.h"
#include "op_moe.h"
#include "ref_attn.h"

/* A record resolved to a token of the submission. */
typedef struct fwd_rec {
    uint32_t tok; /* internal token index */
    uint32_t layer;
    xt_rec_site site;
    uint32_t dst, floats;
} fwd_rec;

typedef struct fwd_plan {
    bool wave;
    uint32_t n_tok;         /* tokens (prefill) or rows (wavefront) */
    uint32_t *ids;          /* [n_tok] token ids (prefill) */
    uint32_t *pos;          /* [n_tok] RoPE positions */
    uint32_t *slot;         /* [n_tok] K/V slot of each token */
    xt_attn_row *attn;      /* [n_tok] */
    uint32_t n_user_rows;   /* sequences or wavefront rows */
    uint32_t *row_base;     /* [n_user_rows] internal index of the row's position 0 */
    uint32_t *n_attn;       /* [n_layer] tokens whose attention part runs (a prefix) */
    uint32_t *n_moe;        /* [n_layer] tokens whose MoE part runs (a prefix, >= n_attn) */
    uint32_t *input;        /* wave: [n_tok] store index of the input vector */
    uint8_t *stage;         /* wave: [n_tok] xt_fwd_stage */
    uint32_t *start;        /* wave: [n_tok] first layer */
    uint32_t *user_of;      /* wave: [n_tok] user row of internal row i */
    xt_patch_entry *patches; /* sorted by layer (stable) */
    uint32_t n_patches;
    uint32_t *p_first, *p_count; /* [n_layer] range of the layer's patches */
    fwd_rec *recs;          /* sorted by layer (stable) */
    uint32_t n_recs;
    uint32_t *r_first, *r_count; /* [n_layer] */
    uint32_t n_out;         /* output rows */
    uint32_t *out_tok;      /* [n_out] internal token of each output row, in the caller's order */
    uint32_t *true_ids, *foil_ids; /* [n_out], when Δ is asked */
} fwd_plan;

void fwd_plan_free(fwd_plan *p);

/* A backend: the state behind xt_fwd. */
typedef struct fwd_backend_ops {
    xt_status (*run)(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b, xt_error *err);
    xt_status (*store_write)(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                             xt_error *err);
    xt_status (*store_read)(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err);
    void (*destroy)(xt_fwd *f);
} fwd_backend_ops;

struct xt_fwd {
    const xt_model *model;
    const xt_hparams *hp;
    xt_backend backend;
    uint32_t max_tokens, kv_slots, store_floats, max_patches, max_out_rows;
    /* the last prefill: where each sequence's K/V lives */
    uint32_t n_parents;
    uint32_t *parent_base, *parent_len; /* [max_tokens] */
    uint32_t prefill_tokens;
    uint64_t device_bytes, weight_bytes;
    xt_fwd_times times; /* the backend adds record_s and download_s; forward.c the rest */
    const fwd_backend_ops *ops;
    void *impl;
};

xt_status xt_fwd_gpu_init(xt_fwd *f, xt_vk_context *vk, xt_error *err);
xt_status xt_fwd_cpu_init(xt_fwd *f, xt_error *err);

/* True when site s is recorded after the layer's MoE block (false: at the layer's start or after
 * its attention). */
static inline bool fwd_site_is_pre(xt_rec_site s)
{
    return s == XT_REC_RESIDUAL_IN;
}

#endif
