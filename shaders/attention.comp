// Causal attention with GQA over a K/V cache, one workgroup per (row, q head):
//     out[r][h] = sum_j softmax_j(scale * q[r][h] . K[key_j][kvh]) * V[key_j][kvh]
// where the row's keys are cache slots kv_base + j for j < n_prefix, then self_kv (the row's own
// entry, always last), and kvh = h / (n_head / n_kv_head). A prefill token at position p and a
// wavefront row (same prefix, own K/V elsewhere) walk the same key sequence, so they give the same
// bits when their inputs are equal.
//
// Fixed reduction order (DESIGN.md §6): keys go in tiles of WG, key j of a tile to invocation
// j % WG. Per tile: scores (a sequential dot over head_dim), a binary-tree max and sum over the
// WG invocations, then an online-softmax update of the running (max, sum, accumulator), where
// invocation t owns output dims t, t + WG, ... and adds the tile's p_j * v_j in key order. Every
// step depends only on key indices and WG, never on the batch. Any number of keys.
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_ATTENTION
#include "push_attn.h"
#include "attn.glsl"

// WG (keys per tile): specialization constant 0, a power of two <= XT_ATTN_MAX_WG.
layout(local_size_x_id = 0, local_size_x = 64) in;
// head_dim: specialization constant 1; <= 4 * WG and <= XT_ATTN_MAX_WG.
layout(constant_id = 1) const uint HEAD_DIM = 128;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };       // [rows][n_head][hd]
layout(std430, set = 0, binding = 1) readonly buffer K { float k_cache[]; }; // [n_slots][n_kv][hd]
layout(std430, set = 0, binding = 2) readonly buffer V { float v_cache[]; }; // [n_slots][n_kv][hd]
layout(std430, set = 0, binding = 3) readonly buffer R { uint rows[]; };     // [rows][3]
layout(std430, set = 0, binding = 4) writeonly buffer O { float o[]; };      // [rows][n_head*hd]

shared float q_s[XT_ATTN_MAX_WG];  // this head's query
shared float p_s[XT_ATTN_MAX_WG];  // the tile's probabilities (0 for keys past the end)
shared float red[XT_ATTN_MAX_WG];  // reduction scratch

// The cache slot of key j; j < n_keys.
uint key_slot(uint j, uint kv_base, uint n_prefix, uint self_kv)
{
    return j < n_prefix ? kv_base + j : self_kv;
}

void main()
{
    const uint WG = gl_WorkGroupSize.x;
    const float NEG_INF = uintBitsToFloat(0xff800000u);
    uint g = xt_group_linear();
    if (!xt_in_bounds(g, pc.n_rows * pc.n_head)) return;  // uniform across the workgroup
    uint row = g / pc.n_head, h = g % pc.n_head;
    uint kvh = h / (pc.n_head / pc.n_kv_head);
    uint t = gl_LocalInvocationID.x;

    for (uint d = t; d < HEAD_DIM; d += WG) q_s[d] = q[pc.q_off + g * HEAD_DIM + d];

    uint rb = pc.row_off + row * XT_ATTN_ROW_WORDS;
    uint kv_base = rows[rb + XT_ATTN_ROW_KV_BASE];
    uint n_prefix = rows[rb + XT_ATTN_ROW_N_PREFIX];
    uint self_kv = rows[rb + XT_ATTN_ROW_SELF_KV];
    // Bounds: prefix keys past the cache are dropped, an out-of-range self key is masked.
    n_prefix = kv_base < pc.n_slots ? min(n_prefix, pc.n_slots - kv_base) : 0u;
    bool self_ok = self_kv < pc.n_slots;
    uint n_keys = n_prefix + 1u;
    uint kv_stride = pc.n_kv_head * HEAD_DIM;
    barrier();

    float m = NEG_INF;  // running max of scores
    float l = 0.0;      // running sum of exp(score - m)
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);  // output dims t + i*WG
    for (uint j0 = 0u; j0 < n_keys; j0 += WG) {
        uint j = j0 + t;
        bool valid = j < n_keys && (j < n_prefix || self_ok);
        float s = NEG_INF;
        if (valid) {
            uint kb = key_slot(j, kv_base, n_prefix, self_kv) * kv_stride + kvh * HEAD_DIM;
            float dot = 0.0;
            for (uint d = 0u; d < HEAD_DIM; d++) dot += q_s[d] * k_cache[kb + d];
            s = dot * pc.scale;
        }
        red[t] = s;
        barrier();
        for (uint k = WG / 2u; k > 0u; k >>= 1u) {
            if (t < k) red[t] = max(red[t], red[t + k]);
            barrier();
        }
        float m_new = max(m, red[0]);
        barrier();  // red[0] read by all before it is reused
        float p = valid ? exp(s - m_new) : 0.0;
        p_s[t] = p;
        red[t] = p;
        barrier();
        for (uint k = WG / 2u; k > 0u; k >>= 1u) {
            if (t < k) red[t] += red[t + k];
            barrier();
        }
        float tile_sum = red[0];
        // m == -inf only before the first valid key, when l and acc are still 0.
        float alpha = m == NEG_INF ? 0.0 : exp(m - m_new);
        l = l * alpha + tile_sum;
        uint tile_n = min(WG, n_keys - j0);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uint d = t + i * WG;
            if (d >= HEAD_DIM) break;
            float tile_acc = 0.0;
            for (uint jj = 0u; jj < tile_n; jj++) {
                uint jk = j0 + jj;
                if (jk >= n_prefix && !self_ok) continue;
                uint vb = key_slot(jk, kv_base, n_prefix, self_kv) * kv_stride + kvh * HEAD_DIM;
                tile_acc += p_s[jj] * v_cache[vb + d];
            }
            acc[i] = acc[i] * alpha + tile_acc;
        }
        m = m_new;
        barrier();  // p_s and red are rewritten by the next tile
    }

    float inv_l = l > 0.0 ? 1.0 / l : 0.0;
    uint ob = pc.out_off + g * HEAD_DIM;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint d = t + i * WG;
        if (d < HEAD_DIM) o[ob + d] = acc[i] * inv_l;
    }
}
