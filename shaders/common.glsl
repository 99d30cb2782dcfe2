// Shared by every compute shader. Each .comp starts with `#version 450`, then its own #extension
// lines, then `#include "common.glsl"` (extensions must precede the first declaration).
//
// Portability rules (DESIGN.md §7): every access is bounds-checked (MoltenVK has no robust
// buffer access); no 8/16-bit storage types — quant blocks are read as 32-bit words; sizes come
// from specialization constants; at most 8 storage buffers per shader.
#ifndef XT_COMMON_GLSL
#define XT_COMMON_GLSL

#extension GL_EXT_control_flow_attributes : require

// Linear index of this invocation for 1D work spread over x and y (host side: xt_groups_1d).
// The caller passes gl_WorkGroupSize.x: this file is included before a shader declares its
// workgroup size, and gl_WorkGroupSize read here would be the default (1, 1, 1), folded at
// compile time, so the second row of workgroups would start at gl_NumWorkGroups.x.
uint xt_global_index(uint local_size_x)
{
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * local_size_x);
}

// i < n, spelled out so every bounds check reads the same.
bool xt_in_bounds(uint i, uint n)
{
    return i < n;
}

#endif
