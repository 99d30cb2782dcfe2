// Grouping pass 2, one workgroup: per-expert totals, their exclusive prefix sum, each block's
// first position per expert, the tile list and the indirect-dispatch arguments.
//   counts[x]     = sum_b scratch[b][x]
//   offsets[x]    = sum_{x' < x} counts[x'];  offsets[E] = entries with a valid id
//   scratch[b][x] = offsets[x] + sum_{b' < b} (old) scratch[b'][x]
//   tiles         = per expert in order, ceil(counts[x] / tile_rows) tiles (x, offsets[x] + j*R)
//   args[0..2]    = {n_tiles, 1, 1}
#version 450
#define XT_MOE_PUSH_GROUP
#include "common.glsl"
#include "push_moe.h"
#include "moe.glsl"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) buffer Scratch { uint scratch[]; };            // [blocks][E]
layout(std430, set = 0, binding = 1) writeonly buffer Counts { uint counts[]; };    // [E]
layout(std430, set = 0, binding = 2) writeonly buffer Offsets { uint offsets[]; };  // [E+1]
layout(std430, set = 0, binding = 3) writeonly buffer Tiles { uint tiles[]; };      // [2*max_tiles]
layout(std430, set = 0, binding = 4) writeonly buffer Args { uint args[]; };        // [12]

shared uint s_count[XT_MOE_GROUP_MAX_EXPERT];
shared uint s_offset[XT_MOE_GROUP_MAX_EXPERT];
shared uint s_tile[XT_MOE_GROUP_MAX_EXPERT];

void main()
{
    uint tid = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    uint E = min(pc.n_expert, XT_MOE_GROUP_MAX_EXPERT), R = max(pc.tile_rows, 1u);
    for (uint x = tid; x < E; x += L) {
        uint c = 0u;
        for (uint b = 0u; b < pc.n_blocks; b++) c += scratch[b * pc.n_expert + x];
        s_count[x] = c;
    }
    barrier();
    // E is at most a few hundred: one serial scan is cheap and obviously ordered.
    if (tid == 0u) {
        uint off = 0u, tile = 0u;
        for (uint x = 0u; x < E; x++) {
            s_offset[x] = off;
            s_tile[x] = tile;
            off += s_count[x];
            tile += (s_count[x] + R - 1u) / R;
        }
        offsets[E] = off;
        uint n_tiles = min(tile, pc.max_tiles);
        args[0] = n_tiles;
        args[1] = 1u;
        args[2] = 1u;
    }
    barrier();
    for (uint x = tid; x < E; x += L) {
        counts[x] = s_count[x];
        offsets[x] = s_offset[x];
        uint run = s_offset[x];
        for (uint b = 0u; b < pc.n_blocks; b++) {
            uint c = scratch[b * pc.n_expert + x];
            scratch[b * pc.n_expert + x] = run;
            run += c;
        }
        uint n = (s_count[x] + R - 1u) / R;
        for (uint j = 0u; j < n; j++) {
            uint tile = s_tile[x] + j;
            if (!xt_in_bounds(tile, pc.max_tiles)) break;
            tiles[2u * tile] = x;
            tiles[2u * tile + 1u] = s_offset[x] + j * R;
        }
    }
}
