// SwiGLU of an expert FFN, in place over the gate rows:  g[i] = silu(g[i]) * u[i],
// silu(x) = x / (1 + exp(-x)); rows x width elements (rows = entries or tokens).
#version 450
#define XT_MOE_PUSH_ELEMENTWISE
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) buffer Gate { float g[]; };        // [rows][width]
layout(std430, set = 0, binding = 1) readonly buffer Up { float u[]; }; // [rows][width]

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.width)) return;
    float x = g[i];
    precise float h = x / (1.0 + exp(-x)) * u[i];
    g[i] = h;
}
