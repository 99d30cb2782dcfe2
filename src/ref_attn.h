/* CPU reference of the attention family: RMSNorm, RoPE, the K/V store, causal attention over a
 * K/V cache with prefill and wavefront rows, residual and bias add. Plain C, fp32, deterministic;
 * the oracle the GPU ops (op_attn.h) are tested against and, assembled, the `--backend cpu` path.
 * Written to be read, not to be fast.
 *
 * Layouts (row-major, a "row" is one token of the batch):
 *     x, y       [n_rows][n_cols]                activations
 *     q          [n_rows][n_head][head_dim]      after RoPE
 *     k_cache    [n_slots][n_kv_head][head_dim]  one per layer, likewise v_cache
 *     rows       [n_rows] xt_attn_row            which cache entries each row attends to
 *     out        [n_rows][n_head * head_dim]
 */
#ifndef XT_REF_ATTN_H
#define XT_REF_ATTN_H

#include <stdint.h>

typedef enum xt_rope_mode {
    XT_ROPE_NORM = 0, /* pairs (2i, 2i+1): llama, Mixtral */
    XT_ROPE_NEOX = 1, /* pairs (i, i + n_rot/2): qwen2/3(moe), olmoe */
} xt_rope_mode;

/* The keys of one attention row, in the order they are visited: cache slots kv_base + j for
 * j < n_prefix, then self_kv last. A prefill token at position p of a sequence whose K/V start at
 * kv_base: {kv_base, p, kv_base + p}. A wavefront row (DESIGN.md §5) patched at final position p
 * of a parent sequence: {parent kv_base, p, its own slot}. Same layout as the device buffer
 * (XT_ATTN_ROW_* in shaders/push_attn.h). */
typedef struct xt_attn_row {
    uint32_t kv_base;
    uint32_t n_prefix;
    uint32_t self_kv;
} xt_attn_row;

/* y[r][c] = (x[r][c] * scale) * w[c], scale = 1 / sqrtf(sum_c x[r][c]^2 / n_cols + eps): the
 * mean of squares in fp32 (summed in column order), then the reciprocal square root, as
 * llama.cpp's rms_norm followed by the weight multiply. y may equal x. */
void xt_ref_rms_norm(const float *x, const float *w, float *y, uint32_t n_rows, uint32_t n_cols,
                     float eps);

/* powf(freq_base, -2.0f / n_rot): the ratio between the angles of consecutive pairs. */
float xt_rope_theta_scale(float freq_base, uint32_t n_rot);

/* RoPE of x [n_rows][n_heads][head_dim] at positions pos [n_rows]. Pair i < n_rot/2 turns by
 * theta_i = pos * theta_scale^i, where the power is formed by repeated multiplication in fp32
 * (theta_0 = pos, theta_{i+1} = theta_i * theta_scale) as ggml's CPU rope cache does; the GPU
 * shader forms it the same way, so only cosf/sinf differ between them. Dims >= n_rot are copied.
 * n_rot even and <= head_dim, head_dim even. y may equal x. */
void xt_ref_rope(const float *x, const uint32_t *pos, float *y, uint32_t n_rows, uint32_t n_heads,
                 uint32_t head_dim, uint32_t n_rot, float freq_base, xt_rope_mode mode);

/* k_cache[slots[r]][i] = k[r][i], likewise v, for i < width; slots >= n_slots are skipped. */
void xt_ref_kv_store(const float *k, const float *v, const uint32_t *slots, float *k_cache,
                     float *v_cache, uint32_t n_rows, uint32_t width, uint32_t n_slots);

/* Causal GQA attention over the cache: for row r and q head h (kv head h / (n_head/n_kv_head)),
 * scores s_j = scale * (q . K[key_j]) over the row's keys, softmax in fp32 (max subtracted),
 * out = sum_j p_j V[key_j] / sum_j p_j, all sums in key (or dim) order. Keys outside the cache
 * are dropped. n_kv_head divides n_head; scale is usually 1 / sqrtf(head_dim); out must not
 * overlap q or the caches. */
void xt_ref_attention(const float *q, const float *k_cache, const float *v_cache,
                      const xt_attn_row *rows, float *out, uint32_t n_rows, uint32_t n_head,
                      uint32_t n_kv_head, uint32_t head_dim, uint32_t n_slots, float scale);

/* y[r][c] = a[r][c] + b[r * b_row_stride + c]: residual add (b_row_stride = n_cols) or bias add
 * (b_row_stride = 0). y may equal a or b. */
void xt_ref_add(const float *a, const float *b, float *y, uint32_t n_rows, uint32_t n_cols,
                uint32_t b_row_stride);

#endif
