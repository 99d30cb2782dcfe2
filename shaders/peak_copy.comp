// Peak memory bandwidth: dst[i] = src[i] over 16-byte words (uvec4: a bit-exact copy). The host
// counts bytes read + written (xt_vk_measure_peak).
#version 450
#include "common.glsl"

layout(local_size_x_id = 0, local_size_x = 256) in;

layout(push_constant) uniform Push {
    uint n;  // 16-byte words
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Src { uvec4 src[]; };  // (n)
layout(std430, set = 0, binding = 1) writeonly buffer Dst { uvec4 dst[]; }; // (n)

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n)) return;
    dst[i] = src[i];
}
