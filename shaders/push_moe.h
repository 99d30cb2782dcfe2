/* Push constants and shared constants of the MoE op family (router, grouping, expert FFN
 * elementwise steps, patch injection), included by op_moe.c and by each MoE shader. A shader
 * defines XT_MOE_PUSH_<NAME> before including this file so that GLSL sees exactly one push block;
 * C sees all of them.
 */
#ifndef XT_PUSH_MOE_H
#define XT_PUSH_MOE_H

#include "xt_shared.h"

/* An id slot that names no expert: ids >= n_expert are "not routed" (grouping skips them, their
 * contribution is 0). Also the "not forced" marker of the router's force list. */
#define XT_MOE_NO_EXPERT 0xffffffffu

/* Router flags. */
#define XT_ROUTER_RENORM 1u      /* divide the k weights by their sum (qwen3moe, Mixtral) */
#define XT_ROUTER_MASK 2u        /* read the exclusion bitmask */
#define XT_ROUTER_FORCE 4u       /* read the forced id list */
#define XT_ROUTER_WRITE_PROBS 8u /* write the full softmax [T][E] */

/* Patch table: XT_PATCH_WORDS u32 words per entry, fields at these word indices. */
#define XT_PATCH_WORDS 8u
#define XT_PATCH_ROW 0u        /* row of the batch (index into the row-base table) */
#define XT_PATCH_POSITION 1u   /* position within the row: token = row_base[row] + position */
#define XT_PATCH_LAYER 2u
#define XT_PATCH_SITE 3u       /* xt_patch_site */
#define XT_PATCH_EXPERT 4u     /* expert id, for the two per-expert sites */
#define XT_PATCH_MODE 5u       /* xt_patch_mode */
#define XT_PATCH_SRC 6u        /* first float of the source vector in the source buffer */
#define XT_PATCH_RESERVED 7u   /* 0 */

/* Sites (where in the layer the patch pass runs). */
#define XT_SITE_RESIDUAL 0u      /* residual stream [T][n_embd] */
#define XT_SITE_ATTN_OUT 1u      /* attention output [T][n_embd] */
#define XT_SITE_MOE_OUT 2u       /* MoE block output [T][n_embd] */
#define XT_SITE_EXPERT 3u        /* one routed expert's contribution c [T*k][n_embd] */
#define XT_SITE_ROUTER_WEIGHT 4u /* one routed expert's router weight w [T*k] */
#define XT_SITE_SHARED_EXPERT 5u /* the shared expert's contribution [T][n_embd] */
#define XT_SITE_COUNT 6u

/* Modes. */
#define XT_PATCH_REPLACE 0u /* target = source */
#define XT_PATCH_ADD 1u     /* target += source */
#define XT_PATCH_ZERO 2u    /* target = 0 (source unused) */

#if !defined(VULKAN) || defined(XT_MOE_PUSH_ROUTER)
XT_PUSH_BEGIN(xt_push_router)
    xt_u32 n_tokens;   /* T */
    xt_u32 n_expert;   /* E */
    xt_u32 n_used;     /* k */
    xt_u32 flags;      /* XT_ROUTER_* */
    xt_u32 mask_words; /* u32 words per mask row: ceil(E / 32) */
    xt_u32 mask_rows;  /* 1: one mask for every token; else T */
XT_PUSH_END(xt_push_router, 24)
#endif

#if !defined(VULKAN) || defined(XT_MOE_PUSH_GROUP)
XT_PUSH_BEGIN(xt_push_moe_group)
    xt_u32 n_entries; /* T * k */
    xt_u32 n_expert;  /* E */
    xt_u32 n_blocks;  /* ceil(n_entries / block) */
    xt_u32 tile_rows;
    xt_u32 max_tiles;
XT_PUSH_END(xt_push_moe_group, 20)
#endif

#if !defined(VULKAN) || defined(XT_MOE_PUSH_ELEMENTWISE)
/* SwiGLU, weighting, shared-expert gate and combine: rows x width elementwise steps. */
XT_PUSH_BEGIN(xt_push_moe_elementwise)
    xt_u32 n_rows;   /* rows of the output (entries or tokens) */
    xt_u32 width;    /* floats per row */
    xt_u32 n_used;   /* k (combine, weight) */
    xt_u32 n_expert; /* E (weight: ids >= E contribute 0) */
    xt_u32 flags;    /* combine: 1 = add the shared-expert contribution */
XT_PUSH_END(xt_push_moe_elementwise, 20)
#endif

#if !defined(VULKAN) || defined(XT_MOE_PUSH_PATCH)
XT_PUSH_BEGIN(xt_push_patch)
    xt_u32 first;      /* table entries [first, first + count) are considered */
    xt_u32 count;
    xt_u32 layer;      /* the current layer: entries for other layers are skipped */
    xt_u32 site;       /* XT_SITE_* this dispatch patches */
    xt_u32 n_rows;     /* entries of the row-base table */
    xt_u32 n_tokens;   /* tokens in the target */
    xt_u32 width;      /* floats per target vector (1 for router weights) */
    xt_u32 n_used;     /* k, for the per-expert sites */
    xt_u32 src_floats; /* size of the source buffer, for bounds checks */
XT_PUSH_END(xt_push_patch, 36)
#endif

#endif
