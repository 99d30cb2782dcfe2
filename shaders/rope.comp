// Rotary position embedding of x [n_rows][n_heads][head_dim] with per-row positions, one
// invocation per pair of dims. Pairs: NORM (2i, 2i+1), NEOX (i, i + n_rot/2), for i < n_rot/2;
// dims >= n_rot are copied. The angle of pair i is pos * theta_scale^i formed by repeated
// multiplication (theta = pos; i times theta *= theta_scale), as ggml's CPU rope cache does, so
// the angle is bit-identical to the CPU reference; it is then reduced modulo 2*pi (below), and
// only that and sin/cos differ from the reference's libm cosf/sinf(theta). In place
// (y aliasing x) is allowed: each invocation reads its two values before writing them.
#version 450
#include "common.glsl"
#define XT_PUSH_WANT_ROPE
#include "push_attn.h"
#include "attn.glsl"

layout(local_size_x_id = 0, local_size_x = 256) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };    // (x_off + rows*heads*hd)
layout(std430, set = 0, binding = 1) readonly buffer P { uint pos[]; };   // (pos_off + n_rows)
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };             // (y_off + rows*heads*hd)

void main()
{
    uint half_dim = pc.head_dim / 2u;
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n_rows * pc.n_heads * half_dim)) return;
    uint pair = i % half_dim;
    uint head = i / half_dim;  // row * n_heads + head
    uint row = head / pc.n_heads;
    uint half_rot = pc.n_rot / 2u;

    uint d0, d1;
    if (pair >= half_rot) {  // pass-through dims n_rot .. head_dim-1, two at a time
        d0 = pc.n_rot + 2u * (pair - half_rot);
        d1 = d0 + 1u;
    } else if (pc.neox != 0u) {
        d0 = pair;
        d1 = pair + half_rot;
    } else {
        d0 = 2u * pair;
        d1 = d0 + 1u;
    }
    uint base = head * pc.head_dim;
    float x0 = x[pc.x_off + base + d0];
    float x1 = x[pc.x_off + base + d1];
    if (pair >= half_rot) {
        y[pc.y_off + base + d0] = x0;
        y[pc.y_off + base + d1] = x1;
        return;
    }
    precise float theta = float(pos[pc.pos_off + row]);
    for (uint k = 0u; k < pair; k++) theta *= pc.theta_scale;
    // GPU sin/cos are specified (and often only accurate) near zero, and theta reaches
    // thousands of radians at long positions: reduce it to about [-pi, pi] first. 2*pi is split
    // into HI (8 significant bits, so k * HI is exact for k < 2^16) and LO = 2*pi - HI.
    const float TWO_PI_HI = 6.28125;
    const float TWO_PI_LO = 1.9353071795864769e-3;
    precise float k = round(theta * 0.15915494309189535);
    precise float r = (theta - k * TWO_PI_HI) - k * TWO_PI_LO;
    float c = cos(r), s = sin(r);
    precise float r0 = x0 * c - x1 * s;
    precise float r1 = x0 * s + x1 * c;
    y[pc.y_off + base + d0] = r0;
    y[pc.y_off + base + d1] = r1;
}
