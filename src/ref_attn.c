/* CPU reference of the attention family (see ref_attn.h). */
#include "ref_attn.h"

#include <math.h>
#include <stddef.h>

void xt_ref_rms_norm(const float *x, const float *w, float *y, uint32_t n_rows, uint32_t n_cols,
                     float eps)
{
    for (uint32_t r = 0; r < n_rows; r++) {
        const float *xr = x + (size_t)r * n_cols;
        float *yr = y + (size_t)r * n_cols;
        float sum = 0.0f;
        for (uint32_t c = 0; c < n_cols; c++) sum += xr[c] * xr[c];
        float mean = sum / (float)n_cols;
        float scale = 1.0f / sqrtf(mean + eps);
        for (uint32_t c = 0; c < n_cols; c++) yr[c] = (xr[c] * scale) * w[c];
    }
}

float xt_rope_theta_scale(float freq_base, uint32_t n_rot)
{
    return powf(freq_base, -2.0f / (float)n_rot);
}

void xt_ref_rope(const float *x, const uint32_t *pos, float *y, uint32_t n_rows, uint32_t n_heads,
                 uint32_t head_dim, uint32_t n_rot, float freq_base, xt_rope_mode mode)
{
    const float theta_scale = xt_rope_theta_scale(freq_base, n_rot);
    const uint32_t half_rot = n_rot / 2;
    for (uint32_t r = 0; r < n_rows; r++) {
        for (uint32_t h = 0; h < n_heads; h++) {
            const float *xh = x + ((size_t)r * n_heads + h) * head_dim;
            float *yh = y + ((size_t)r * n_heads + h) * head_dim;
            float theta = (float)pos[r];
            for (uint32_t i = 0; i < half_rot; i++) {
                uint32_t d0 = mode == XT_ROPE_NEOX ? i : 2 * i;
                uint32_t d1 = mode == XT_ROPE_NEOX ? i + half_rot : 2 * i + 1;
                float c = cosf(theta), s = sinf(theta);
                float x0 = xh[d0], x1 = xh[d1];
                yh[d0] = x0 * c - x1 * s;
                yh[d1] = x0 * s + x1 * c;
                theta *= theta_scale;
            }
            for (uint32_t d = n_rot; d < head_dim; d++) yh[d] = xh[d];
        }
    }
}

void xt_ref_kv_store(const float *k, const float *v, const uint32_t *slots, float *k_cache,
                     float *v_cache, uint32_t n_rows, uint32_t width, uint32_t n_slots)
{
    for (uint32_t r = 0; r < n_rows; r++) {
        if (slots[r] >= n_slots) continue;
        for (uint32_t i = 0; i < width; i++) {
            k_cache[(size_t)slots[r] * width + i] = k[(size_t)r * width + i];
            v_cache[(size_t)slots[r] * width + i] = v[(size_t)r * width + i];
        }
    }
}

/* scale * (q . k) over head_dim, summed in dim order. */
static float score(const float *q, const float *k, uint32_t head_dim, float scale)
{
    float dot = 0.0f;
    for (uint32_t d = 0; d < head_dim; d++) dot += q[d] * k[d];
    return dot * scale;
}

void xt_ref_attention(const float *q, const float *k_cache, const float *v_cache,
                      const xt_attn_row *rows, float *out, uint32_t n_rows, uint32_t n_head,
                      uint32_t n_kv_head, uint32_t head_dim, uint32_t n_slots, float scale)
{
    const uint32_t group = n_head / n_kv_head; /* q heads per kv head */
    const size_t kv_stride = (size_t)n_kv_head * head_dim;
    for (uint32_t r = 0; r < n_rows; r++) {
        const xt_attn_row row = rows[r];
        /* the row's keys: slots kv_base .. kv_base + n_prefix - 1 (those inside the cache),
         * then self_kv when it is inside the cache */
        uint32_t n_prefix = row.kv_base < n_slots ? row.n_prefix : 0;
        if (n_prefix > n_slots - row.kv_base) n_prefix = n_slots - row.kv_base;
        const uint32_t n_keys = n_prefix + (row.self_kv < n_slots ? 1 : 0);

        for (uint32_t h = 0; h < n_head; h++) {
            const float *qh = q + ((size_t)r * n_head + h) * head_dim;
            const size_t kv_off = (size_t)(h / group) * head_dim;
            float *oh = out + ((size_t)r * n_head + h) * head_dim;

            /* pass 1: the largest score */
            float max = -INFINITY;
            for (uint32_t j = 0; j < n_keys; j++) {
                size_t slot = j < n_prefix ? row.kv_base + j : row.self_kv;
                float s = score(qh, k_cache + slot * kv_stride + kv_off, head_dim, scale);
                if (s > max) max = s;
            }
            /* pass 2: p_j = exp(s_j - max), their sum, and sum_j p_j v_j (in oh) */
            float sum = 0.0f;
            for (uint32_t d = 0; d < head_dim; d++) oh[d] = 0.0f;
            for (uint32_t j = 0; j < n_keys; j++) {
                size_t slot = j < n_prefix ? row.kv_base + j : row.self_kv;
                float p = expf(score(qh, k_cache + slot * kv_stride + kv_off, head_dim, scale) -
                               max);
                sum += p;
                const float *vj = v_cache + slot * kv_stride + kv_off;
                for (uint32_t d = 0; d < head_dim; d++) oh[d] += p * vj[d];
            }
            for (uint32_t d = 0; d < head_dim; d++) oh[d] = sum > 0.0f ? oh[d] / sum : 0.0f;
        }
    }
}

void xt_ref_add(const float *a, const float *b, float *y, uint32_t n_rows, uint32_t n_cols,
                uint32_t b_row_stride)
{
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t c = 0; c < n_cols; c++)
            y[(size_t)r * n_cols + c] =
                a[(size_t)r * n_cols + c] + b[(size_t)r * b_row_stride + c];
}
