#version 450
// Two logits per row instead of the whole lm head, for rows that need only the contrast: built
// once per weight type as logit_gather_<type> (CMakeLists.txt passes XT_WTYPE_<type>).
//
// Pass 1 (finish = 0), one dispatch per chunk of W: invocation (t, which) computes
// logits[t][which] = W[id] . h[t] for id = true_ids[t] (which 0) or foil_ids[t] (which 1) when
// that row is in the chunk, with the matmul shaders' reduction order (one accumulator, k = 0..K-1
// in order, each step one `fma` under `precise`), so each logit equals the full matmul's entry
// bit for bit. An id past the tensor gets a NaN logit (written by the first_chunk dispatch) and
// sets the flag.
// Pass 2 (finish = 1), after a barrier: diff[t] = logits[t][0] - logits[t][1].
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"
#define XT_PUSH_WANT_LOGIT_GATHER
#include "push_matmul.h"
#include "quant.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 1) readonly buffer H { float h[]; };           // [rows][h_stride]
layout(std430, set = 0, binding = 2) readonly buffer TrueIds { uint true_ids[]; }; // [rows]
layout(std430, set = 0, binding = 3) readonly buffer FoilIds { uint foil_ids[]; }; // [rows]
layout(std430, set = 0, binding = 4) buffer Logits { float logits[]; };          // [rows][2]
layout(std430, set = 0, binding = 5) writeonly buffer Diff { float diff[]; };    // [rows]
layout(std430, set = 0, binding = 6) buffer Flag { uint flag[]; };

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (pc.finish != 0u) {
        if (!xt_in_bounds(i, pc.rows)) return;
        precise float d = logits[pc.logits_off + 2u * i] - logits[pc.logits_off + 2u * i + 1u];
        diff[pc.diff_off + i] = d;
        return;
    }
    if (!xt_in_bounds(i, 2u * pc.rows)) return;
    uint t = i / 2u, which = i % 2u;
    uint id = which == 0u ? true_ids[pc.true_off + t] : foil_ids[pc.foil_off + t];
    if (id >= pc.n_total_rows) {
        if (pc.first_chunk == 0u) return;
        logits[pc.logits_off + i] = uintBitsToFloat(0x7fc00000u);  // quiet NaN
        if (pc.has_flag != 0u) atomicOr(flag[pc.flag_off], XT_MM_FLAG_ID_OUT_OF_RANGE);
        return;
    }
    if (id < pc.chunk_row_begin || id - pc.chunk_row_begin >= pc.chunk_row_count) return;
    uint row_byte = (id - pc.chunk_row_begin) * pc.row_bytes;
    uint hb = pc.h_off + t * pc.h_stride;
    precise float acc = 0.0;
    for (uint k0 = 0u; k0 < pc.k; k0 += 32u) {
        uint nv = min(32u, pc.k - k0);
        float w[32];
        xt_dequant32(row_byte, k0, nv, w);
        [[unroll]] for (uint j = 0u; j < 32u; j++)
            if (j < nv) acc = fma(w[j], h[hb + k0 + j], acc);
    }
    logits[pc.logits_off + i] = acc;
}
