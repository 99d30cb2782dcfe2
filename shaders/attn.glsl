// Shared by the attention family's shaders (rms_norm, rope, kv_store, attention, add).
#ifndef XT_ATTN_GLSL
#define XT_ATTN_GLSL

// Workgroup-wide scratch arrays are sized for the largest workgroup the host may ask for.
#define XT_ATTN_MAX_WG 256u

// Linear index of this workgroup when the host spreads n work items (one per workgroup) over x
// and y because x alone would pass maxComputeWorkGroupCount[0] (op_attn.c: groups_2d).
uint xt_group_linear()
{
    return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
}

#endif
