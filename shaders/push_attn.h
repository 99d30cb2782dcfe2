/* Push-constant blocks of the attention family (RMSNorm, RoPE, K/V store, attention, add), shared
 * by src/op_attn.c and the shaders. Element offsets (`*_off`) are in 32-bit words from the start
 * of a binding: the host binds at an offset aligned to minStorageBufferOffsetAlignment and passes
 * the remainder here, so activations may start at any multiple of 4 bytes.
 *
 * C sees every block; a shader sees only the one it selects before including this file
 * (`#define XT_PUSH_WANT_ROPE`), since GLSL allows one push-constant block, named `pc`. */
#ifndef XT_PUSH_ATTN_H
#define XT_PUSH_ATTN_H

#include "xt_shared.h"

#if !defined(VULKAN) || defined(XT_PUSH_WANT_RMS_NORM)
/* One workgroup per row: y[r] = x[r] * (1 / sqrt(mean(x[r]^2) + eps)) * w. */
XT_PUSH_BEGIN(xt_push_rms_norm)
    xt_u32 n_rows;
    xt_u32 n_cols;
    xt_f32 eps;
    xt_u32 x_off;
    xt_u32 w_off;
    xt_u32 y_off;
XT_PUSH_END(xt_push_rms_norm, 24)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_ROPE)
/* One invocation per rotated pair of x [n_rows][n_heads][head_dim] (in place allowed). */
XT_PUSH_BEGIN(xt_push_rope)
    xt_u32 n_rows;
    xt_u32 n_heads;
    xt_u32 head_dim;
    xt_u32 n_rot;       /* dims >= n_rot pass through; even, <= head_dim */
    xt_u32 neox;        /* 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2) */
    xt_f32 theta_scale; /* powf(freq_base, -2.0f / n_rot), computed on the host */
    xt_u32 x_off;
    xt_u32 pos_off;
    xt_u32 y_off;
XT_PUSH_END(xt_push_rope, 36)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_KV_STORE)
/* One invocation per element: K[slot[t]][i] = k[t][i], V[slot[t]][i] = v[t][i]. */
XT_PUSH_BEGIN(xt_push_kv_store)
    xt_u32 n_rows;
    xt_u32 width;   /* n_kv_head * head_dim */
    xt_u32 n_slots; /* rows of the K and V caches; a slot >= n_slots is skipped */
    xt_u32 k_off;
    xt_u32 v_off;
    xt_u32 slot_off;
XT_PUSH_END(xt_push_kv_store, 24)
#endif

#if !defined(VULKAN) || defined(XT_PUSH_WANT_ATTENTION)
/* One workgroup per (row, q head). Row descriptors are XT_ATTN_ROW_WORDS words each. */
XT_PUSH_BEGIN(xt_push_attention)
    xt_u32 n_rows;
    xt_u32 n_head;
    xt_u32 n_kv_head;
    xt_u32 n_slots; /* rows of the K and V caches */
    xt_f32 scale;   /* 1 / sqrt(head_dim) */
    xt_u32 q_off;
    xt_u32 row_off;
    xt_u32 out_off;
XT_PUSH_END(xt_push_attention, 32)
#endif

/* A row's keys: cache slots kv_base + j for j < n_prefix, then self_kv (always last). */
#define XT_ATTN_ROW_WORDS 3
#define XT_ATTN_ROW_KV_BASE 0
#define XT_ATTN_ROW_N_PREFIX 1
#define XT_ATTN_ROW_SELF_KV 2

#if !defined(VULKAN) || defined(XT_PUSH_WANT_ADD)
/* One invocation per element: y[r][c] = a[r][c] + b[r * b_row_stride + c] (b_row_stride 0:
 * a bias vector broadcast over rows). */
XT_PUSH_BEGIN(xt_push_add)
    xt_u32 n_rows;
    xt_u32 n_cols;
    xt_u32 b_row_stride;
    xt_u32 a_off;
    xt_u32 b_off;
    xt_u32 y_off;
XT_PUSH_END(xt_push_add, 24)
#endif

#endif
