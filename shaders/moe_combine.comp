// MoE block output: y[t][n] = c[t*k][n] + c[t*k+1][n] + ... + c[t*k+k-1][n] (slot order, fixed),
// then + shared[t][n] when flags & 1. No contraction (precise), so the sum is the same rounding
// on every device and equals the CPU reference bit for bit.
#version 450
#define XT_MOE_PUSH_ELEMENTWISE
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer C { float c[]; };        // [T*k][width]
layout(std430, set = 0, binding = 1) readonly buffer S { float shared_c[]; }; // [T][width]
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };       // [T][width]

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.width)) return;
    uint t = i / pc.width, n = i % pc.width;
    precise float acc = c[(t * pc.n_used) * pc.width + n];
    for (uint s = 1u; s < pc.n_used; s++) acc += c[(t * pc.n_used + s) * pc.width + n];
    if ((pc.flags & 1u) != 0u) acc += shared_c[i];
    y[i] = acc;
}
