#version 450
// Whether this device fuses `fma` under `precise`: one invocation computes fma(a, b, c) with
// a = b = 1 + 2^-12 and c = -(1 + 2^-11) from push constants (nothing folds at compile time).
// The exact product is 1 + 2^-11 + 2^-24, which needs 25 significant bits: fused, the result is
// 2^-24; rounded to fp32 first (a tie, to even: 1 + 2^-11), it is 0. The host
// (xt_vk_fma_fused) tells the CPU reference which.
#include "common.glsl"

layout(local_size_x = 1) in;

layout(push_constant) uniform Push {
    float a, b, c;
} pc;

layout(std430, set = 0, binding = 0) writeonly buffer Out { float result[]; };  // [1]

void main()
{
    precise float r = fma(pc.a, pc.b, pc.c);
    result[0] = r;
}
