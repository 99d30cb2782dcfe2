// Grouping pass 1: per block of entries, how many go to each expert.
//   scratch[b][x] = #{ i in block b : ids[i] == x }     (ids >= E count nowhere)
#version 450
#define XT_MOE_PUSH_GROUP
#include "common.glsl"
#include "push_moe.h"
#include "moe.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in; // also the block size, <= 256

layout(std430, set = 0, binding = 0) readonly buffer Ids { uint ids[]; };       // [T*k]
layout(std430, set = 0, binding = 1) writeonly buffer Scratch { uint scratch[]; }; // [blocks][E]

shared uint s_ids[XT_MOE_GROUP_MAX_BLOCK];

void main()
{
    uint b = gl_WorkGroupID.x, B = gl_WorkGroupSize.x, tid = gl_LocalInvocationID.x;
    if (b >= pc.n_blocks) return; // uniform over the workgroup
    uint i = b * B + tid;
    s_ids[tid] = xt_in_bounds(i, pc.n_entries) ? ids[i] : XT_MOE_NO_EXPERT;
    barrier();
    for (uint x = tid; x < pc.n_expert; x += B) {
        uint c = 0u;
        for (uint j = 0u; j < B; j++) c += s_ids[j] == x ? 1u : 0u;
        scratch[b * pc.n_expert + x] = c;
    }
}
