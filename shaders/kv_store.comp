// Writes the batch's projected (and RoPE'd) keys and values into the per-layer K/V caches at
// per-row slots: K[slot[r]][i] = k[r][i], V[slot[r]][i] = v[r][i], one invocation per element.
// A slot >= n_slots is skipped (bounds check; the host documents it as caller error).
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_KV_STORE
#include "push_attn.h"
#include "attn.glsl"

layout(local_size_x_id = 0, local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer Kin { float k_in[]; };   // (k_off + rows*width)
layout(std430, set = 0, binding = 1) readonly buffer Vin { float v_in[]; };   // (v_off + rows*width)
layout(std430, set = 0, binding = 2) readonly buffer S { uint slot[]; };      // (slot_off + rows)
layout(std430, set = 0, binding = 3) writeonly buffer Kc { float k_cache[]; };  // (n_slots*width)
layout(std430, set = 0, binding = 4) writeonly buffer Vc { float v_cache[]; };  // (n_slots*width)

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.width)) return;
    uint row = i / pc.width, col = i % pc.width;
    uint s = slot[pc.slot_off + row];
    if (!xt_in_bounds(s, pc.n_slots)) return;
    k_cache[s * pc.width + col] = k_in[pc.k_off + i];
    v_cache[s * pc.width + col] = v_in[pc.v_off + i];
}
