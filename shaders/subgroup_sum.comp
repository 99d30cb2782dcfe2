// Per-workgroup sums of x with subgroupAdd, then one partial per subgroup in shared memory:
// sums[g] = x[g*L] + ... + x[g*L + L-1] (elements past n count as 0). Exercises the subgroup
// arithmetic path; the host runs it only where subgroup arithmetic is enabled for compute.
// Integer sums, so the result is exact whatever the subgroup size.
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common.glsl"

// Workgroup size L from specialization constant 0; L <= 256.
layout(local_size_x_id = 0, local_size_x = 64) in;

layout(push_constant) uniform Push {
    uint n;  // elements of x
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { uint x[]; };        // (n)
layout(std430, set = 0, binding = 1) writeonly buffer Sums { uint sums[]; }; // (groups)
layout(std430, set = 0, binding = 2) writeonly buffer Info { uint subgroup_size; };

shared uint partial[256];  // one per subgroup (subgroups have >= 1 invocation)

void main()
{
    uint i = gl_GlobalInvocationID.x;
    // No early return: every invocation takes part in the subgroup operation.
    uint v = xt_in_bounds(i, pc.n) ? x[i] : 0u;
    uint s = subgroupAdd(v);
    if (subgroupElect()) partial[gl_SubgroupID] = s;
    barrier();  // in compute shaders this also orders the shared-memory writes
    if (gl_LocalInvocationIndex == 0u) {
        uint total = 0u;
        for (uint k = 0u; k < gl_NumSubgroups; k++) total += partial[k];
        sums[gl_WorkGroupID.x] = total;
        if (gl_WorkGroupID.x == 0u) subgroup_size = gl_SubgroupSize;
    }
}
