// RMSNorm with weight, one workgroup per row:
//     y[r][c] = (x[r][c] * scale_r) * w[c],  scale_r = 1 / sqrt(sum_c(x[r][c]^2) / n_cols + eps)
// as llama.cpp computes it (mean of squares in fp32, then the reciprocal square root, then x times
// the scale, then times the weight). The sum has a fixed order: invocation t adds columns
// t, t + WG, ... in turn, then a binary tree over invocations. It depends on nothing but the row,
// so a row's bits do not depend on its batch. In place (y aliasing x) is allowed.
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_RMS_NORM
#include "push_attn.h"
#include "attn.glsl"

// WG: specialization constant 0, a power of two <= XT_ATTN_MAX_WG.
layout(local_size_x_id = 0, local_size_x = 128) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };   // (x_off + n_rows*n_cols)
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };   // (w_off + n_cols)
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };            // (y_off + n_rows*n_cols)

shared float partial[XT_ATTN_MAX_WG];

void main()
{
    const uint WG = gl_WorkGroupSize.x;
    uint row = xt_group_linear();
    if (!xt_in_bounds(row, pc.n_rows)) return;  // uniform across the workgroup
    uint t = gl_LocalInvocationID.x;
    uint xb = pc.x_off + row * pc.n_cols;
    uint yb = pc.y_off + row * pc.n_cols;

    float s = 0.0;
    for (uint c = t; c < pc.n_cols; c += WG) {
        float v = x[xb + c];
        s += v * v;
    }
    partial[t] = s;
    barrier();
    for (uint k = WG / 2u; k > 0u; k >>= 1u) {
        if (t < k) partial[t] += partial[t + k];
        barrier();
    }
    float mean = partial[0] / float(pc.n_cols);
    float scale = 1.0 / sqrt(mean + pc.eps);
    for (uint c = t; c < pc.n_cols; c += WG) {
        precise float r = (x[xb + c] * scale) * w[pc.w_off + c];
        y[yb + c] = r;
    }
}
