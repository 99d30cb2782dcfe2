// Routed contributions, in place: c[e][n] = w[e] * c[e][n] for entry e = t*k + slot, where c
// holds the down projection of the entry; entries with no expert (ids[e] >= E) become 0, so
// c[t][slot] is always that slot's exact share of the MoE output.
#version 450
#define XT_MOE_PUSH_ELEMENTWISE
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) buffer C { float c[]; };                // [T*k][width]
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };       // [T*k]
layout(std430, set = 0, binding = 2) readonly buffer Ids { uint ids[]; };    // [T*k]

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.width)) return;
    uint e = i / pc.width;
    precise float r = ids[e] < pc.n_expert ? w[e] * c[i] : 0.0;
    c[i] = r;
}
