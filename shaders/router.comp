// Router: softmax over all E experts and top-k per token, one invocation per token (E and k are
// small; a serial loop keeps the reduction order fixed and the token independent of its batch).
//
//   probs[t][e] = exp(l[t][e] - max_e l[t]) / sum_e exp(...)   (sum in expert order)
//   ids[t][s]   = the s-th expert by descending logit, ties to the lower index; experts set in
//                 the mask are skipped; a token whose forced list is given takes it verbatim
//   w[t][s]     = probs[t][ids[t][s]], divided by their sum (slot order) when RENORM is set
//
// Selection compares logits, not probabilities: the softmax is monotonic, the comparison is exact
// on every device, so the chosen ids never depend on a device's exp(). Slots that cannot be filled
// (every expert masked) get XT_MOE_NO_EXPERT with weight 0.
#version 450
#define XT_MOE_PUSH_ROUTER
#include "common.glsl"
#include "push_moe.h"

layout(local_size_x_id = 0, local_size_x = 64) in;

layout(std430, set = 0, binding = 0) readonly buffer Logits { float logits[]; }; // [T][E]
layout(std430, set = 0, binding = 1) readonly buffer Mask { uint mask[]; };      // [rows][words]
layout(std430, set = 0, binding = 2) readonly buffer Force { uint force[]; };    // [T][k]
layout(std430, set = 0, binding = 3) writeonly buffer Ids { uint ids[]; };       // [T][k]
layout(std430, set = 0, binding = 4) buffer W { float weights[]; };              // [T][k]
layout(std430, set = 0, binding = 5) writeonly buffer Probs { float probs[]; };  // [T][E]

bool masked(uint t, uint e)
{
    if ((pc.flags & XT_ROUTER_MASK) == 0u) return false;
    uint row = pc.mask_rows == 1u ? 0u : t;
    return ((mask[row * pc.mask_words + e / 32u] >> (e % 32u)) & 1u) != 0u;
}

void main()
{
    uint t = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(t, pc.n_tokens)) return;
    uint E = pc.n_expert, k = pc.n_used;
    uint lb = t * E;

    float m = logits[lb];
    for (uint e = 1u; e < E; e++) m = max(m, logits[lb + e]);
    precise float sum = 0.0;
    for (uint e = 0u; e < E; e++) sum += exp(logits[lb + e] - m);
    if ((pc.flags & XT_ROUTER_WRITE_PROBS) != 0u)
        for (uint e = 0u; e < E; e++) probs[lb + e] = exp(logits[lb + e] - m) / sum;

    bool forced = (pc.flags & XT_ROUTER_FORCE) != 0u && force[t * k] != XT_MOE_NO_EXPERT;
    precise float wsum = 0.0;
    // Previous pick: the next one is the best expert strictly after it in (logit desc, index asc).
    float prev_l = 0.0;
    uint prev_e = XT_MOE_NO_EXPERT;
    for (uint s = 0u; s < k; s++) {
        uint best = XT_MOE_NO_EXPERT;
        if (forced) {
            best = force[t * k + s];
            if (best >= E) best = XT_MOE_NO_EXPERT;
        } else {
            float best_l = 0.0;
            for (uint e = 0u; e < E; e++) {
                float l = logits[lb + e];
                bool after = prev_e == XT_MOE_NO_EXPERT || l < prev_l || (l == prev_l && e > prev_e);
                if (!after || masked(t, e)) continue;
                if (best == XT_MOE_NO_EXPERT || l > best_l) {
                    best = e;
                    best_l = l;
                }
            }
            if (best != XT_MOE_NO_EXPERT) {
                prev_e = best;
                prev_l = best_l;
            }
        }
        float p = best == XT_MOE_NO_EXPERT ? 0.0 : exp(logits[lb + best] - m) / sum;
        ids[t * k + s] = best;
        weights[t * k + s] = p;
        wsum += p;
    }
    if ((pc.flags & XT_ROUTER_RENORM) != 0u && wsum > 0.0)
        for (uint s = 0u; s < k; s++) weights[t * k + s] = weights[t * k + s] / wsum;
}
