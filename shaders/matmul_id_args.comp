// Indirect-dispatch arguments for matmul_id: args[3*slot ..] = {n_tiles, col_blocks, 1}, n_tiles
// from slot 0, which the grouping pass wrote (moe_groups.h). One invocation.
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_MATMUL_ID_ARGS
#include "push_matmul.h"

layout(local_size_x = 1) in;

layout(std430, set = 0, binding = 0) buffer Args { uint args[]; };  // [4][3]

void main()
{
    if (pc.slot == 0u || pc.slot > 3u) return;
    args[3u * pc.slot] = args[0];
    args[3u * pc.slot + 1u] = pc.col_blocks;
    args[3u * pc.slot + 2u] = 1u;
}
