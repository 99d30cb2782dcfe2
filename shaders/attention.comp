// Causal attention with GQA over a K/V cache, one workgroup per (row, q head):
//     out[r][h] = sum_j softmax_j(scale * q[r][h] . K[key_j][kvh]) * V[key_j][kvh]
// where the row's keys are cache slots kv_base + j for j < n_prefix, then self_kv (the row's own
// entry, always last), and kvh = h / (n_head / n_kv_head). A prefill token at position p and a
// wavefront row (same prefix, own K/V elsewhere) walk the same key sequence, so they give the same
// bits when their inputs are equal.
//
// Fixed reduction order (DESIGN.md §6): keys go in tiles of WG, key j of a tile to invocation
// j % WG. Per tile: scores (a sequential dot over head_dim), the tile's max and sum in key order
// (computed by every invocation alike), then an online-softmax update of the running (max, sum,
// accumulator), where invocation t < head_dim/4 owns output dims 4t .. 4t+3 and adds the tile's
// p_j * v_j in key order. Every step depends only on key indices and WG, never on the batch.
// Any number of keys (tested to 1500).
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_ATTENTION
#include "push_attn.h"
#include "attn.glsl"

// WG (keys per tile): specialization constant 0, a power of two <= XT_ATTN_MAX_WG.
layout(local_size_x_id = 0, local_size_x = 64) in;
// head_dim: specialization constant 1; a multiple of 4, <= 4 * WG and <= XT_ATTN_MAX_WG.
layout(constant_id = 1) const uint HEAD_DIM = 128;
const uint HD4 = HEAD_DIM / 4u;  // K/V rows are read as vec4: a quarter of the loads

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };       // [rows][n_head][hd]
layout(std430, set = 0, binding = 1) readonly buffer K { vec4 k_cache[]; };  // [n_slots][n_kv][hd/4]
layout(std430, set = 0, binding = 2) readonly buffer V { vec4 v_cache[]; };  // [n_slots][n_kv][hd/4]
layout(std430, set = 0, binding = 3) readonly buffer R { uint rows[]; };     // [rows][3]
layout(std430, set = 0, binding = 4) writeonly buffer O { float o[]; };      // [rows][n_head*hd]

shared vec4 q_s[XT_ATTN_MAX_WG / 4u];  // this head's query
shared float s_s[XT_ATTN_MAX_WG];  // the tile's scores (-inf for keys past the end)
shared float p_s[XT_ATTN_MAX_WG];  // the tile's probabilities (0 for keys past the end)

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

    if (t < HD4) {
        uint qb = pc.q_off + g * HEAD_DIM + 4u * t;
        q_s[t] = vec4(q[qb], q[qb + 1u], q[qb + 2u], q[qb + 3u]);
    }

    uint rb = pc.row_off + row * XT_ATTN_ROW_WORDS;
    uint kv_base = rows[rb + XT_ATTN_ROW_KV_BASE];
    uint n_prefix = rows[rb + XT_ATTN_ROW_N_PREFIX];
    uint self_kv = rows[rb + XT_ATTN_ROW_SELF_KV];
    // Bounds: prefix keys past the cache are dropped, an out-of-range self key is masked.
    n_prefix = kv_base < pc.n_slots ? min(n_prefix, pc.n_slots - kv_base) : 0u;
    bool self_ok = self_kv < pc.n_slots;
    uint n_keys = n_prefix + 1u;
    uint kv_stride = pc.n_kv_head * HD4;  // in vec4
    barrier();

    float m = NEG_INF;  // running max of scores
    float l = 0.0;      // running sum of exp(score - m)
    vec4 acc = vec4(0.0);  // output dims 4t .. 4t+3 (invocations t < HD4)
    for (uint j0 = 0u; j0 < n_keys; j0 += WG) {
        uint tile_n = min(WG, n_keys - j0);
        uint j = j0 + t;
        bool valid = j < n_keys && (j < n_prefix || self_ok);
        float s = NEG_INF;
        if (valid) {
            uint kb = key_slot(j, kv_base, n_prefix, self_kv) * kv_stride + kvh * HD4;
            float dot = 0.0;  // summed in dim order
            for (uint d4 = 0u; d4 < HD4; d4++) {
                vec4 qv = q_s[d4], kv = k_cache[kb + d4];
                dot += qv.x * kv.x;
                dot += qv.y * kv.y;
                dot += qv.z * kv.z;
                dot += qv.w * kv.w;
            }
            s = dot * pc.scale;
        }
        s_s[t] = s;
        barrier();
        // Every invocation reduces the tile itself, in key order: the same value everywhere,
        // and one barrier instead of a tree of them.
        float tile_max = NEG_INF;
        for (uint jj = 0u; jj < tile_n; jj++) tile_max = max(tile_max, s_s[jj]);
        float m_new = max(m, tile_max);
        p_s[t] = valid ? exp(s - m_new) : 0.0;
        barrier();
        float tile_sum = 0.0;
        for (uint jj = 0u; jj < tile_n; jj++) tile_sum += p_s[jj];
        // m == -inf only before the first valid key, when l and acc are still 0.
        float alpha = m == NEG_INF ? 0.0 : exp(m - m_new);
        l = l * alpha + tile_sum;
        if (t < HD4) {
            vec4 tile_acc = vec4(0.0);  // summed in key order
            for (uint jj = 0u; jj < tile_n; jj++) {
                uint jk = j0 + jj;
                if (jk >= n_prefix && !self_ok) continue;
                uint vb = key_slot(jk, kv_base, n_prefix, self_kv) * kv_stride + kvh * HD4;
                tile_acc += p_s[jj] * v_cache[vb + t];
            }
            acc = acc * alpha + tile_acc;
        }
        m = m_new;
        // No barrier needed here: the next tile writes s_s (read by all before the barrier
        // above) and then p_s only after its own first barrier, when every read of p_s here
        // is done.
    }

    float inv_l = l > 0.0 ? 1.0 / l : 0.0;
    uint ob = pc.out_off + g * HEAD_DIM;
    if (t < HD4) {
        vec4 r = acc * inv_l;
        o[ob + 4u * t] = r.x;
        o[ob + 4u * t + 1u] = r.y;
        o[ob + 4u * t + 2u] = r.z;
        o[ob + 4u * t + 3u] = r.w;
    }
}
