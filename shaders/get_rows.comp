#version 450
// Embedding rows: y[t][0..K) = dequant(W[ids[t]]), built once per weight type as get_rows_<type>
// (CMakeLists.txt passes XT_WTYPE_<type>). One invocation per (row, 32 elements); one dispatch per
// chunk of W, each writing the rows whose id falls in its chunk. An id past the tensor (>=
// n_total_rows) reads nothing: the dispatch with first_chunk = 1 writes a zero row for it and
// sets XT_MM_FLAG_ID_OUT_OF_RANGE in the flag word (when has_flag). Values are bit-identical to
// the CPU dequantizers.
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#define XT_PUSH_WANT_GET_ROWS
#include "push_matmul.h"
#include "quant.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 1) readonly buffer Ids { uint ids[]; };  // [rows]
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };   // [rows][y_stride]
layout(std430, set = 0, binding = 3) buffer Flag { uint flag[]; };

void main()
{
    uint n_chunks32 = (pc.k + 31u) / 32u;
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.rows * n_chunks32)) return;
    uint t = i / n_chunks32, k0 = (i % n_chunks32) * 32u;
    uint id = ids[pc.ids_off + t];
    uint nv = min(32u, pc.k - k0);
    uint out_base = pc.y_off + t * pc.y_stride + k0;
    if (id >= pc.n_total_rows) {
        if (pc.first_chunk == 0u) return;
        for (uint j = 0u; j < nv; j++) y[out_base + j] = 0.0;
        if (pc.has_flag != 0u && k0 == 0u) atomicOr(flag[pc.flag_off], XT_MM_FLAG_ID_OUT_OF_RANGE);
        return;
    }
    if (id < pc.chunk_row_begin || id - pc.chunk_row_begin >= pc.chunk_row_count) return;
    float w[32];
    xt_dequant32((id - pc.chunk_row_begin) * pc.row_bytes, k0, nv, w);
    [[unroll]] for (uint j = 0u; j < 32u; j++)
        if (j < nv) y[out_base + j] = w[j];
}
