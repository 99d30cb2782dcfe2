#version 450
// y = x . W^T with W dequantized in the shader. One source, built per weight type and per
// variant (CMakeLists.txt passes the defines): XT_WTYPE_<type> selects the weight type,
// XT_MATMUL_ID the expert GEMM over entries grouped by expert (moe_groups.h) instead of the rows
// of a dense activation matrix, and XT_MM_STAGED the GPU tile instead of the CPU-device one.
//
// Reduction order (the numerics contract): every output y[r][n] is one fp32 accumulator that
// adds w[k] * x[r][k] for k = 0, 1, ..., K-1 in order, each step one `fma` under `precise`
// (fused or not is the device's choice, the same for every dispatch on one device). The order
// does not depend on the tile shape, the rows per tile, the dispatch or the variant, which makes
// a row's result independent of its batch; src/ref_matmul.c computes the same thing on the CPU.
//
// Two tile shapes, chosen per device class by src/op_matmul.c through specialization constants:
//
// - direct (CPU devices such as lavapipe, and GPU dispatches of fewer than 8 rows): a workgroup
//   of WG invocations owns WG * NR weight rows and TT token rows; each invocation keeps an
//   NR x TT register tile, dequantizes its own NR weight rows 32 elements at a time and reads x
//   straight from the buffer (the x index is the same in every invocation of the workgroup, so
//   a CPU device loads it once per SIMD batch). No shared memory, no barrier, no divergent
//   control flow in the loop: out-of-range rows and columns are clamped to valid ones and only
//   the final store is masked.
// - staged (GPUs): a workgroup of WG = WN * WT invocations owns a tile of WN * NR weight rows x
//   TT token rows. Per step of XT_MM_BK elements of K the workgroup dequantizes the tile's
//   weights cooperatively (one 32-element piece per invocation) into shared memory and stages
//   the token rows (consecutive invocations along K: coalesced), then each invocation runs an
//   NR x RT register tile of fma chains (RT = TT / WT) out of shared memory.
#extension GL_EXT_control_flow_attributes : require
#ifndef XT_MM_STAGED
#extension GL_KHR_shader_subgroup_ballot : require
#endif
#include "common.glsl"
#ifdef XT_MATMUL_ID
#define XT_PUSH_WANT_MATMUL_ID
#else
#define XT_PUSH_WANT_MATMUL
#endif
#include "push_matmul.h"
#include "quant.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in;
layout(constant_id = 1) const uint TT = 8;  // token rows of a tile, 1..XT_MM_MAX_TD (direct) or XT_MM_MAX_T
layout(constant_id = 2) const uint NR = 1;  // weight rows per invocation, 1..XT_MM_MAX_N
#ifdef XT_MM_STAGED
layout(constant_id = 3) const uint WT = 8;  // token lanes: invocations WN = WG / WT per row
#define RT (TT / WT)                        // token rows per invocation, 1..XT_MM_MAX_RT
#else
// Subgroup size the x loads are spread over (0: every invocation loads every x value). A CPU
// device runs loads inside loops one SIMD lane at a time, so each lane loads a different x value
// and subgroupBroadcast hands it to the others: SG times fewer loads. The host passes SG only
// where the pipeline's subgroups are known to have SG invocations (a required subgroup size,
// or a device whose only size is SG) and SG divides 32.
layout(constant_id = 4) const uint SG = 0;
#endif

layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };   // [rows][x_stride]
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };  // [rows][y_stride]
#ifdef XT_MATMUL_ID
layout(std430, set = 0, binding = 3) readonly buffer Order { uint order[]; };      // [T*k]
layout(std430, set = 0, binding = 4) readonly buffer Tiles { uint tiles[]; };      // [2*max_tiles]
layout(std430, set = 0, binding = 5) readonly buffer Offsets { uint offsets[]; };  // [E+1]
#endif

#ifdef XT_MM_STAGED
#define XT_MM_TMAX XT_MM_MAX_T
#else
#define XT_MM_TMAX XT_MM_MAX_TD
#endif

// A tile's rows: x row start (element index, clamped to a valid row) and y row start per token
// row, and how many token rows are real (the store mask).
struct xt_mm_rows {
    uint xb[XT_MM_TMAX];
    uint yb[XT_MM_TMAX];
    uint n;
};

#ifndef XT_MM_STAGED
// ---- direct tile ------------------------------------------------------------------------------
// This invocation's weight rows: byte offset in the chunk (clamped to a valid row), the output
// column, and whether it is stored.
struct xt_mm_cols {
    uint wb[XT_MM_MAX_N];
    uint col[XT_MM_MAX_N];
    bool ok[XT_MM_MAX_N];
};

void xt_mm_tile(xt_mm_cols c, xt_mm_rows r)
{
    const uint K = pc.k;
    precise float acc[XT_MM_MAX_N][XT_MM_MAX_TD];
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_TD; t++) acc[j][t] = 0.0;

    const bool spread = SG > 0u;  // a specialization constant: one of the two paths is compiled
    xt_wseq seq[XT_MM_MAX_N];  // each weight row's shared words, read once (quant.glsl)
    for (uint k0 = 0u; k0 < K; k0 += 32u) {
        uint nv = min(32u, K - k0);
        float w[XT_MM_MAX_N][32];
        [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
            if (j < NR) xt_dequant32_seq(c.wb[j], k0, nv, seq[j], w[j]);
        // Constant trip counts and indices once TT, NR and SG are specialized: acc and w stay in
        // registers. Quantized rows are whole 32-element blocks (nv == 32); the tests on nv are
        // uniform and only float rows of a length that is not a multiple of 32 take them.
        if (spread) {
            [[unroll]] for (uint i0 = 0u; i0 < 32u; i0 += max(SG, 1u)) {
                float xl[XT_MM_MAX_TD];
                uint kl = k0 + i0 + gl_SubgroupInvocationID;
#ifdef XT_WFLOAT
                kl = min(kl, K - 1u);
#endif
                [[unroll]] for (uint t = 0u; t < XT_MM_MAX_TD; t++)
                    if (t < TT) xl[t] = x[r.xb[t] + kl];
                [[unroll]] for (uint ii = 0u; ii < 32u; ii++) {
                    if (ii < SG && i0 + ii < nv) {
                        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_TD; t++) {
                            if (t < TT) {
                                float xv = subgroupBroadcast(xl[t], ii);
                                [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
                                    if (j < NR) acc[j][t] = fma(w[j][i0 + ii], xv, acc[j][t]);
                            }
                        }
                    }
                }
            }
            continue;
        }
        [[unroll]] for (uint i = 0u; i < 32u; i++) {
            if (i < nv) {
                [[unroll]] for (uint t = 0u; t < XT_MM_MAX_TD; t++) {
                    if (t < TT) {
                        float xv = x[r.xb[t] + k0 + i];
                        [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
                            if (j < NR) acc[j][t] = fma(w[j][i], xv, acc[j][t]);
                    }
                }
            }
        }
    }
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_TD; t++)
            if (j < NR && t < TT && c.ok[j] && t < r.n) y[r.yb[t] + c.col[j]] = acc[j][t];
}

#else
// ---- staged tile ------------------------------------------------------------------------------
// Dequantized weights [WN * NR][XT_MM_BK] and token rows [TT][XT_MM_BK] of one K step; rows are
// padded by one element so that the invocations of a row of lanes hit different banks.
#define XT_MM_LD (XT_MM_BK + 1u)
shared float wsh[XT_MM_MAX_BN * XT_MM_LD];
shared float xsh[XT_MM_MAX_T * XT_MM_LD];

// Tile columns: tile row i (0..WN*NR-1) is weight row at byte wb_of(i) of the chunk.
struct xt_mm_cols {
    uint wb0;      // byte offset of tile row 0 (clamped rows are handled by n_ok)
    uint n_ok;     // tile rows that are real weight rows; the others read row 0 of the tile
    uint col0;     // output column of tile row 0
};

void xt_mm_tile(xt_mm_cols c, xt_mm_rows r)
{
    const uint K = pc.k;
    const uint lid = gl_LocalInvocationID.x;
    const uint WG = gl_WorkGroupSize.x;
    const uint WN = WG / WT;
    const uint BN = WN * NR;
    const uint ln = lid % WN, lt = lid / WN;
    precise float acc[XT_MM_MAX_N][XT_MM_MAX_RT];
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
        [[unroll]] for (uint q = 0u; q < XT_MM_MAX_RT; q++) acc[j][q] = 0.0;

    for (uint k0 = 0u; k0 < K; k0 += XT_MM_BK) {
        barrier();  // the previous step's readers are done with wsh and xsh
        for (uint p = lid; p < BN * (XT_MM_BK / 32u); p += WG) {
            uint i = p / (XT_MM_BK / 32u), kp = 32u * (p % (XT_MM_BK / 32u));
            float w[32];
            if (k0 + kp < K) {
                uint row = i < c.n_ok ? i : 0u;
                xt_dequant32(c.wb0 + row * pc.row_bytes, k0 + kp, min(32u, K - k0 - kp), w);
            } else {
                [[unroll]] for (uint e = 0u; e < 32u; e++) w[e] = 0.0;
            }
            [[unroll]] for (uint e = 0u; e < 32u; e++) wsh[i * XT_MM_LD + kp + e] = w[e];
        }
        for (uint p = lid; p < TT * XT_MM_BK; p += WG) {
            uint t = p / XT_MM_BK, kk = p % XT_MM_BK;
            xsh[t * XT_MM_LD + kk] = k0 + kk < K ? x[r.xb[t] + k0 + kk] : 0.0;
        }
        barrier();
        uint k_end = min(XT_MM_BK, K - k0);
        [[unroll]] for (uint kk = 0u; kk < XT_MM_BK; kk++) {
            if (kk < k_end) {  // uniform: only the last step of a float row can be partial
                float wv[XT_MM_MAX_N], xv[XT_MM_MAX_RT];
                [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
                    if (j < NR) wv[j] = wsh[(ln + j * WN) * XT_MM_LD + kk];
                [[unroll]] for (uint q = 0u; q < XT_MM_MAX_RT; q++)
                    if (q < RT) xv[q] = xsh[(lt + q * WT) * XT_MM_LD + kk];
                [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
                    [[unroll]] for (uint q = 0u; q < XT_MM_MAX_RT; q++)
                        if (j < NR && q < RT) acc[j][q] = fma(wv[j], xv[q], acc[j][q]);
            }
        }
    }
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++)
        [[unroll]] for (uint q = 0u; q < XT_MM_MAX_RT; q++) {
            uint i = ln + j * WN, t = lt + q * WT;
            if (j < NR && q < RT && i < c.n_ok && t < r.n)
                y[r.yb[t] + c.col0 + i] = acc[j][q];
        }
}
#endif

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint WG = gl_WorkGroupSize.x;
#ifdef XT_MM_STAGED
    const uint BN = (WG / WT) * NR;
#else
    const uint BN = WG * NR;
#endif
    xt_mm_rows r;
#ifndef XT_MATMUL_ID
    uint row0 = gl_WorkGroupID.y * TT;
    if (row0 >= pc.rows) return;  // uniform over the workgroup
    r.n = min(TT, pc.rows - row0);
    [[unroll]] for (uint t = 0u; t < XT_MM_TMAX; t++) {
        uint row = row0 + min(t, r.n - 1u);
        r.xb[t] = pc.x_off + row * pc.x_stride;
        r.yb[t] = pc.y_off + (row0 + t) * pc.y_stride;
    }
    uint n0 = gl_WorkGroupID.x * BN;  // first column of this workgroup
    xt_mm_cols c;
#ifdef XT_MM_STAGED
    c.n_ok = min(BN, pc.n_cols - n0);
    c.wb0 = (pc.w_row0 + n0) * pc.row_bytes;
    c.col0 = pc.col0 + n0;
#else
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++) {
        uint n = n0 + j * WG + lid;
        c.ok[j] = n < pc.n_cols;
        c.wb[j] = (pc.w_row0 + (c.ok[j] ? n : 0u)) * pc.row_bytes;
        c.col[j] = pc.col0 + n;
    }
#endif
    xt_mm_tile(c, r);
#else
    // Everything up to the tile loop is uniform over the workgroup, so early returns are safe.
    uint tile = gl_WorkGroupID.x;
    if (tile >= pc.max_tiles) return;
    uint ex = tiles[2u * tile], first = tiles[2u * tile + 1u];
    if (ex >= pc.n_expert) return;
    uint end = min(offsets[ex + 1u], pc.n_entries);
    if (first >= end) return;
    uint count = min(pc.tile_rows, end - first);
    // This workgroup's weight rows ex * N + [n0, n0 + BN) against the chunk's rows.
    uint n0 = gl_WorkGroupID.y * BN;
    uint g0 = ex * pc.n_out + n0;
    uint c_end = pc.chunk_row_begin + pc.chunk_row_count;
    if (n0 >= pc.n_out || g0 + BN <= pc.chunk_row_begin || g0 >= c_end) return;
    xt_mm_cols c;
#ifdef XT_MM_STAGED
    // Chunks hold whole experts unless one expert's matrix is larger than a binding; then this
    // tile's rows may start before the chunk: those are skipped (another dispatch has them).
    uint lo = max(g0, pc.chunk_row_begin);
    uint hi = min(min(g0 + BN, ex * pc.n_out + pc.n_out), c_end);
    if (lo >= hi) return;  // the chunk's rows past lo belong to the next expert
    uint skip = lo - g0;
    c.wb0 = (lo - pc.chunk_row_begin) * pc.row_bytes;
    c.n_ok = hi - lo;
    c.col0 = n0 + skip;
#else
    [[unroll]] for (uint j = 0u; j < XT_MM_MAX_N; j++) {
        uint n = n0 + j * WG + lid, g = g0 + j * WG + lid;
        c.ok[j] = n < pc.n_out && g >= pc.chunk_row_begin && g < c_end;
        c.wb[j] = c.ok[j] ? (g - pc.chunk_row_begin) * pc.row_bytes : 0u;
        c.col[j] = n;
    }
#endif
    for (uint s = 0u; s < count; s += TT) {
        // An entry index out of range (a corrupt order list) reads row 0 and writes nothing:
        // the tile narrows to the valid prefix.
        r.n = 0u;
        [[unroll]] for (uint t = 0u; t < XT_MM_TMAX; t++) {
            uint e = t < min(TT, count - s) ? order[first + s + t] : pc.n_entries;
            bool ok = e < pc.n_entries && e / pc.x_row_div < pc.x_rows;
            if (ok && r.n == t) r.n = t + 1u;
        }
        [[unroll]] for (uint t = 0u; t < XT_MM_TMAX; t++) {
            uint e = order[first + s + min(t, max(r.n, 1u) - 1u)];
            bool ok = r.n > 0u;
            r.xb[t] = pc.x_off + (ok ? e / pc.x_row_div : 0u) * pc.x_stride;
            r.yb[t] = pc.y_off + (ok ? e : 0u) * pc.y_stride;
        }
        xt_mm_tile(c, r);
    }
#endif
}
