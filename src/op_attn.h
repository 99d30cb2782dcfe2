/* GPU ops of the attention family: RMSNorm, RoPE, the K/V store, causal GQA attention over a K/V
 * cache with prefill and wavefront rows (DESIGN.md §5), residual and bias add. Each records one
 * dispatch into an xt_cmd and never submits. CPU references with the same semantics: ref_attn.h.
 *
 *     xt_op_rms_norm(k, cmd, &(xt_rms_norm_desc){.x = &h, .w = &norm_w, .y = &hn,
 *                                                 .n_rows = T, .n_cols = 2048, .eps = 1e-6f}, &err);
 *     xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
 *     ...
 *
 * Barriers: an op inserts none. Between an op that writes a buffer and one that reads (or
 * overwrites) it, the caller records xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE); after an
 * upload or fill, XT_BARRIER_TRANSFER_TO_COMPUTE.
 *
 * Buffers are fp32 (positions, slots and row descriptors u32), row-major, given as a buffer and a
 * byte offset (a multiple of 4; any alignment beyond that is handled). Every range an op touches
 * is checked against the buffer's size on the host (XT_ERR_RANGE naming it) and the binding limit;
 * the shaders bounds-check against the same counts. Zero rows record nothing.
 *
 * Numerics (DESIGN.md §6): fp32 everywhere, fixed reduction orders that depend only on the row
 * (never on the batch), no atomics — a row's bits do not depend on its batch.
 */
#ifndef XT_OP_ATTN_H
#define XT_OP_ATTN_H

#include <stdint.h>

#include "expertrace/status.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "ref_attn.h"

/* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, one row per token (or per token and head for
 * qwen3's per-head q/k norm: n_rows = T * n_head, n_cols = head_dim). */
typedef struct xt_rms_norm_desc {
    const xt_buffer *x; /* [n_rows][n_cols] */
    VkDeviceSize x_offset;
    const xt_dtensor *w_tensor; /* F32 {n_cols} (a GGUF norm weight), or NULL and w below */
    const xt_buffer *w;         /* [n_cols] */
    VkDeviceSize w_offset;
    const xt_buffer *y; /* [n_rows][n_cols]; may be x at the same offset (in place) */
    VkDeviceSize y_offset;
    uint32_t n_rows, n_cols;
    float eps; /* ARCH.attention.layer_norm_rms_epsilon */
} xt_rms_norm_desc;
xt_status xt_op_rms_norm(xt_kernels *k, xt_cmd *cmd, const xt_rms_norm_desc *d, xt_error *err);

/* RoPE of q or k [n_rows][n_heads][head_dim] at per-row positions. */
typedef struct xt_rope_desc {
    const xt_buffer *x; /* [n_rows][n_heads][head_dim] */
    VkDeviceSize x_offset;
    const xt_buffer *pos; /* u32 [n_rows] */
    VkDeviceSize pos_offset;
    const xt_buffer *y; /* like x; may be x (in place) */
    VkDeviceSize y_offset;
    uint32_t n_rows, n_heads, head_dim;
    uint32_t n_rot;  /* rope.dimension_count; 0: head_dim. Even, <= head_dim */
    float freq_base; /* rope.freq_base */
    xt_rope_mode mode;
} xt_rope_desc;
xt_status xt_op_rope(xt_kernels *k, xt_cmd *cmd, const xt_rope_desc *d, xt_error *err);

/* k_cache[slots[r]] = k[r], v_cache[slots[r]] = v[r]: the batch's keys and values into the
 * layer's cache. Slots >= n_slots are skipped; two rows with one slot is a caller error. */
typedef struct xt_kv_store_desc {
    const xt_buffer *k, *v; /* [n_rows][width] each: RoPE'd keys, values */
    VkDeviceSize k_offset, v_offset;
    const xt_buffer *slots; /* u32 [n_rows] */
    VkDeviceSize slots_offset;
    const xt_buffer *k_cache, *v_cache; /* [n_slots][width] each, from offset 0 */
    uint32_t n_rows, width, n_slots;    /* width = n_kv_head * head_dim */
} xt_kv_store_desc;
xt_status xt_op_kv_store(xt_kernels *k, xt_cmd *cmd, const xt_kv_store_desc *d, xt_error *err);

/* Causal GQA attention over the cache. Each row's keys are given by an xt_attn_row (ref_attn.h)
 * in the rows buffer, visited in one fixed order, so a wavefront row and the last token of its
 * parent prefill give identical bits when their q and own K/V are identical. Any number of keys
 * per row (online softmax over tiles of 64); head_dim <= 256. */
typedef struct xt_attention_desc {
    const xt_buffer *q; /* [n_rows][n_head][head_dim] */
    VkDeviceSize q_offset;
    const xt_buffer *k_cache, *v_cache; /* [n_slots][n_kv_head][head_dim] each, from offset 0 */
    const xt_buffer *rows;              /* xt_attn_row [n_rows] (3 x u32 each) */
    VkDeviceSize rows_offset;
    const xt_buffer *out; /* [n_rows][n_head * head_dim]; must not overlap the inputs */
    VkDeviceSize out_offset;
    uint32_t n_rows, n_head, n_kv_head, head_dim, n_slots;
    float scale; /* 0: 1 / sqrtf(head_dim) */
} xt_attention_desc;
xt_status xt_op_attention(xt_kernels *k, xt_cmd *cmd, const xt_attention_desc *d, xt_error *err);

/* y[r][c] = a[r][c] + b[r][c] (residual add; y may be a or b for in place) when b_row_stride is
 * n_cols, or y[r][c] = a[r][c] + b[c] (bias add, b a vector) when it is 0. */
typedef struct xt_add_desc {
    const xt_buffer *a; /* [n_rows][n_cols] */
    VkDeviceSize a_offset;
    const xt_dtensor *b_tensor; /* F32 bias {n_cols} (qwen2's attn_q/k/v.bias), or NULL and b */
    const xt_buffer *b;         /* [n_rows][n_cols], or [n_cols] when bias */
    VkDeviceSize b_offset;
    const xt_buffer *y; /* [n_rows][n_cols] */
    VkDeviceSize y_offset;
    uint32_t n_rows, n_cols;
    bool bias; /* b is one row broadcast over all rows (implied by b_tensor) */
} xt_add_desc;
xt_status xt_op_add(xt_kernels *k, xt_cmd *cmd, const xt_add_desc *d, xt_error *err);

#endif
