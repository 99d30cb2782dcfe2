// y[r][c] = a[r][c] + b[r * b_row_stride + c]: the residual add (b_row_stride = n_cols) and the
// bias add (b_row_stride = 0, b a vector). One invocation per element; y may alias a or b.
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_ADD
#include "push_attn.h"
#include "attn.glsl"

layout(local_size_x_id = 0, local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };  // (a_off + rows*cols)
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };  // (b_off + ...)
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };           // (y_off + rows*cols)

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.n_cols)) return;
    uint row = i / pc.n_cols, col = i % pc.n_cols;
    y[pc.y_off + i] = a[pc.a_off + i] + b[pc.b_off + row * pc.b_row_stride + col];
}
