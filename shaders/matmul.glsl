// y = x . W^T with W dequantized in the shader: the body of matmul_<type>.comp (rows of a dense
// activation matrix) and, with XT_MATMUL_ID defined, matmul_id_<type>.comp (entries grouped by
// expert, moe_groups.h). The including file defines XT_WTYPE_<type> first.
//
// Reduction order (DESIGN.md §6): every output y[r][n] is one fp32 accumulator that adds
// w[k] * x[r][k] for k = 0, 1, ..., K-1 in order, with no contraction into FMAs (`precise`). The
// order does not depend on the tile shape, the rows per pass, the dispatch or the shader
// (matmul, matmul_id and logit_gather all do the same), which makes a row's result independent
// of its batch, and is exactly what the CPU reference (src/ref_matmul.c) computes.
//
// Work split: a workgroup of WG invocations (spec constant 0) owns WG output columns, one per
// invocation, and a pass of up to RPP rows (spec constant 1, <= XT_MM_MAX_ROWS); the rows' x
// values are staged in shared memory XT_MM_BK at a time, and each invocation dequantizes its
// weight row 32 elements at a time and uses each weight for all RPP rows.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#ifdef XT_MATMUL_ID
#define XT_PUSH_WANT_MATMUL_ID
#else
#define XT_PUSH_WANT_MATMUL
#endif
#include "push_matmul.h"
#include "quant.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in;
layout(constant_id = 1) const uint RPP = 8;  // rows per pass, 1..XT_MM_MAX_ROWS

layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };   // [rows][x_stride]
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };  // [rows][y_stride]
#ifdef XT_MATMUL_ID
layout(std430, set = 0, binding = 3) readonly buffer Order { uint order[]; };      // [T*k]
layout(std430, set = 0, binding = 4) readonly buffer Tiles { uint tiles[]; };      // [2*max_tiles]
layout(std430, set = 0, binding = 5) readonly buffer Offsets { uint offsets[]; };  // [E+1]
#endif

shared vec4 xs4[XT_MM_MAX_ROWS * XT_MM_BK / 4];  // x rows of this step, [RPP][BK]

// One pass: y[yrow[t]][ycol] = sum_k W[w_row][k] * x[xrow[t]][k] for t < n_rows_here. Every
// invocation of the workgroup calls it (barriers inside); those with !col_ok only help staging.
void xt_mm_pass(bool col_ok, uint w_row_byte, uint n_rows_here, uint xrow[XT_MM_MAX_ROWS],
                uint yrow[XT_MM_MAX_ROWS], uint ycol)
{
    const uint K = pc.k;
    const uint lid = gl_LocalInvocationID.x;
    precise float acc[XT_MM_MAX_ROWS];
    [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++) acc[t] = 0.0;

    for (uint k0 = 0u; k0 < K; k0 += XT_MM_BK) {
        barrier();  // the previous step's readers are done with xs
        for (uint i = lid; i < RPP * XT_MM_BK / 4u; i += gl_WorkGroupSize.x) {
            uint t = i / (XT_MM_BK / 4u), kk = k0 + 4u * (i % (XT_MM_BK / 4u));
            vec4 v = vec4(0.0);
            if (t < n_rows_here) {
                uint base = pc.x_off + xrow[t] * pc.x_stride + kk;
                [[unroll]] for (uint j = 0u; j < 4u; j++)
                    if (kk + j < K) v[j] = x[base + j];
            }
            xs4[i] = v;
        }
        barrier();
        if (!col_ok) continue;
        uint k_end = min(K - k0, XT_MM_BK);
        for (uint c = 0u; c < k_end; c += 32u) {
            uint nv = min(32u, k_end - c);
            float w[32];
            xt_dequant32(w_row_byte, k0 + c, nv, w);
            // Constant trip counts and indices (RPP is constant once specialized), so acc and w
            // stay in registers; x is read 4 values per shared-memory load, and each acc[t] still
            // adds k in order. Quantized rows are whole 32-element blocks (nv == 32).
            [[unroll]] for (uint i4 = 0u; i4 < 8u; i4++) {
                [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++) {
                    if (t < RPP) {
                        vec4 xv = xs4[(t * XT_MM_BK + c) / 4u + i4];
#ifdef XT_WFLOAT
                        [[unroll]] for (uint j = 0u; j < 4u; j++)
                            if (4u * i4 + j < nv) acc[t] = acc[t] + w[4u * i4 + j] * xv[j];
#else
                        acc[t] = acc[t] + w[4u * i4] * xv.x;
                        acc[t] = acc[t] + w[4u * i4 + 1u] * xv.y;
                        acc[t] = acc[t] + w[4u * i4 + 2u] * xv.z;
                        acc[t] = acc[t] + w[4u * i4 + 3u] * xv.w;
#endif
                    }
                }
            }
        }
    }
    if (col_ok) {
        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++)
            if (t < RPP && t < n_rows_here) y[pc.y_off + yrow[t] * pc.y_stride + ycol] = acc[t];
    }
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    uint xrow[XT_MM_MAX_ROWS], yrow[XT_MM_MAX_ROWS];
#ifndef XT_MATMUL_ID
    uint col = gl_WorkGroupID.x * gl_WorkGroupSize.x + lid;
    uint row0 = gl_WorkGroupID.y * RPP;
    if (row0 >= pc.rows) return;  // uniform over the workgroup
    uint n_here = min(RPP, pc.rows - row0);
    [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++) {
        xrow[t] = row0 + t;
        yrow[t] = row0 + t;
    }
    bool col_ok = col < pc.n_cols;
    xt_mm_pass(col_ok, (pc.w_row0 + col) * pc.row_bytes, n_here, xrow, yrow, pc.col0 + col);
#else
    // Everything up to the pass loop is uniform over the workgroup, so early returns are safe.
    uint tile = gl_WorkGroupID.x;
    if (tile >= pc.max_tiles) return;
    uint ex = tiles[2u * tile], first = tiles[2u * tile + 1u];
    if (ex >= pc.n_expert) return;
    uint end = min(offsets[ex + 1u], pc.n_entries);
    if (first >= end) return;
    uint count = min(pc.tile_rows, end - first);
    // This workgroup's weight rows ex * N + [n0, n0 + WG) against the chunk's rows.
    uint n0 = gl_WorkGroupID.y * gl_WorkGroupSize.x;
    uint g0 = ex * pc.n_out + n0;
    uint c_end = pc.chunk_row_begin + pc.chunk_row_count;
    if (n0 >= pc.n_out || g0 + gl_WorkGroupSize.x <= pc.chunk_row_begin || g0 >= c_end) return;
    uint n = n0 + lid, g = g0 + lid;
    bool col_ok = n < pc.n_out && g >= pc.chunk_row_begin && g < c_end;
    uint w_row_byte = col_ok ? (g - pc.chunk_row_begin) * pc.row_bytes : 0u;
    for (uint s = 0u; s < count; s += RPP) {
        uint n_here = min(RPP, count - s);
        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++) {
            uint e = t < n_here ? order[first + s + t] : 0u;
            bool ok = e < pc.n_entries && e / pc.x_row_div < pc.x_rows;
            // an entry index out of range (a corrupt order list) reads row 0 and writes nothing
            xrow[t] = ok ? e / pc.x_row_div : 0u;
            yrow[t] = ok ? e : pc.n_entries;
        }
        // rows past n_entries are not written: narrow the pass to the valid prefix
        uint valid = 0u;
        [[unroll]] for (uint t = 0u; t < XT_MM_MAX_ROWS; t++)
            if (t < n_here && yrow[t] < pc.n_entries && valid == t) valid = t + 1u;
        xt_mm_pass(col_ok, w_row_byte, valid, xrow, yrow, n);
    }
#endif
}
