// Shared-expert contribution, in place: s[t][n] = sigmoid(g[t]) * s[t][n], where g[t] is
// dot(ffn_gate_inp_shexp, x[t]) and s holds the shared expert's down projection (qwen2moe).
// sigmoid(x) = 1 / (1 + exp(-x)).
#version 450
#define XT_MOE_PUSH_ELEMENTWISE
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) buffer S { float s[]; };                 // [T][width]
layout(std430, set = 0, binding = 1) readonly buffer G { float gate[]; };     // [T]

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.width)) return;
    precise float sg = 1.0 / (1.0 + exp(-gate[i / pc.width]));
    precise float r = sg * s[i];
    s[i] = r;
}
