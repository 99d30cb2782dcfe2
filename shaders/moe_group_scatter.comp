// Grouping pass 3: each entry goes to its stable position in `order`.
//   order[scratch[b][x] + #{ j < i in block b : ids[j] == x }] = entry i   (x = ids[i] < E)
#version 450
#define XT_MOE_PUSH_GROUP
#include "common.glsl"
#include "push_moe.h"
#include "moe.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in; // the block size of moe_group_count

layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };         // [T*k]
layout(std430, set = 0, binding = 1) readonly buffer Scratch { uint scratch[]; }; // [blocks][E]
layout(std430, set = 0, binding = 2) writeonly buffer Order { uint order[]; };    // [T*k]

shared uint s_ids[XT_MOE_GROUP_MAX_BLOCK];

void main()
{
    uint b = gl_WorkGroupID.x, B = gl_WorkGroupSize.x, tid = gl_LocalInvocationID.x;
    if (b >= pc.n_blocks) return;
    uint i = b * B + tid;
    uint x = xt_in_bounds(i, pc.n_entries) ? ids[i] : XT_MOE_NO_EXPERT;
    s_ids[tid] = x;
    barrier();
    if (x >= pc.n_expert || x >= XT_MOE_GROUP_MAX_EXPERT) return;
    uint rank = 0u;
    for (uint j = 0u; j < tid; j++) rank += s_ids[j] == x ? 1u : 0u;
    uint pos = scratch[b * pc.n_expert + x] + rank;
    if (xt_in_bounds(pos, pc.n_entries)) order[pos] = i;
}
