// Patch injection at one site of one layer: applies the device-side patch table (entries of
// XT_PATCH_WORDS words, see push_moe.h) to the target vectors of this site.
//
//   token  = row_base[row] + position
//   vector = target[token]                          (residual, attention out, MoE out, shared)
//          = target[token*k + s] with ids[token*k + s] == expert   (expert contribution, router
//            weight; an expert the token did not route to is a no-op: its contribution is 0 and
//            stays 0 — the tracer adds deltas for such experts at the MoE-output site)
//   replace: v = src[src + n]   add: v += src[src + n]   zero: v = 0       (n < width)
//
// Entries for other layers or sites, rows outside the row-base table and tokens outside the
// target are skipped. Several entries on one token apply in table order: one workgroup per entry,
// and only the first entry of each token (the leader) works — it walks the rest of the table and
// applies every entry of its token in order, each invocation owning a fixed set of columns.
#version 450
#define XT_MOE_PUSH_PATCH
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in; // <= 256

layout(std430, set = 0, binding = 0) readonly buffer Table { uint table[]; };     // [entries][8]
layout(std430, set = 0, binding = 1) readonly buffer RowBase { uint row_base[]; }; // [n_rows]
layout(std430, set = 0, binding = 2) readonly buffer Src { float src[]; };         // [src_floats]
layout(std430, set = 0, binding = 3) buffer Target { float target[]; };            // see above
layout(std430, set = 0, binding = 4) readonly buffer Ids { uint ids[]; };          // [T*k]

shared uint s_found;
shared uint s_match[256];
shared uint s_list[256];
shared uint s_n;

// The token entry j patches at this layer and site, or XT_MOE_NO_EXPERT when it patches nothing.
uint entry_token(uint j)
{
    uint w = j * XT_PATCH_WORDS;
    if (table[w + XT_PATCH_LAYER] != pc.layer || table[w + XT_PATCH_SITE] != pc.site)
        return XT_MOE_NO_EXPERT;
    uint row = table[w + XT_PATCH_ROW];
    if (!xt_in_bounds(row, pc.n_rows)) return XT_MOE_NO_EXPERT;
    uint t = row_base[row] + table[w + XT_PATCH_POSITION];
    return xt_in_bounds(t, pc.n_tokens) ? t : XT_MOE_NO_EXPERT;
}

void apply(uint j, uint t, uint tid, uint L)
{
    uint w = j * XT_PATCH_WORDS;
    uint base = t; // vector index into the target
    if (pc.site == XT_SITE_EXPERT || pc.site == XT_SITE_ROUTER_WEIGHT) {
        uint expert = table[w + XT_PATCH_EXPERT];
        base = XT_MOE_NO_EXPERT;
        for (uint s = 0u; s < pc.n_used; s++)
            if (ids[t * pc.n_used + s] == expert) {
                base = t * pc.n_used + s;
                break;
            }
        if (base == XT_MOE_NO_EXPERT) return;
    }
    uint mode = table[w + XT_PATCH_MODE], so = table[w + XT_PATCH_SRC];
    for (uint n = tid; n < pc.width; n += L) {
        uint i = base * pc.width + n;
        if (mode == XT_PATCH_ZERO) {
            target[i] = 0.0;
        } else if (so + n < pc.src_floats && so + n >= so) {
            if (mode == XT_PATCH_REPLACE) {
                target[i] = src[so + n];
            } else if (mode == XT_PATCH_ADD) {
                precise float r = target[i] + src[so + n];
                target[i] = r;
            }
        }
    }
}

void main()
{
    uint tid = gl_LocalInvocationID.x, L = gl_WorkGroupSize.x;
    uint g = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (g >= pc.count) return; // uniform
    uint j = pc.first + g, end = pc.first + pc.count;
    uint t = entry_token(j);
    if (t == XT_MOE_NO_EXPERT) return; // uniform: every invocation read the same entry

    // Leader check: does an earlier entry of the range patch the same token here?
    if (tid == 0u) s_found = 0u;
    barrier();
    for (uint i = pc.first + tid; i < j; i += L)
        if (entry_token(i) == t) atomicOr(s_found, 1u);
    barrier();
    if (s_found != 0u) return; // uniform

    // Leader: walk [j, end) in chunks of L entries, keeping table order.
    for (uint c = j; c < end; c += L) {
        uint i = c + tid;
        s_match[tid] = (i < end && entry_token(i) == t) ? 1u : 0u;
        barrier();
        if (tid == 0u) {
            uint n = 0u;
            for (uint q = 0u; q < L; q++)
                if (s_match[q] != 0u) s_list[n++] = c + q;
            s_n = n;
        }
        barrier();
        uint n_list = s_n;
        for (uint q = 0u; q < n_list; q++) apply(s_list[q], t, tid, L);
        barrier(); // s_list is rewritten by the next chunk
    }
}
