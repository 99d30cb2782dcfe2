// Peak fp32 arithmetic: every invocation runs 8 independent FMA chains, 32 FMAs per loop trip,
// so the loop is bound by FMA throughput, not latency. The host times it with GPU timestamps
// and counts 2 FLOP per FMA (xt_vk_measure_peak); the result is written so nothing is elided.
#version 450
#include "common.glsl"

layout(local_size_x_id = 0, local_size_x = 256) in;

layout(push_constant) uniform Push {
    uint n;           // invocations that write a result
    uint iterations;  // loop trips
    float a;          // multiplier, |a| < 1 keeps the chains bounded
    float b;          // addend
} pc;

layout(std430, set = 0, binding = 0) writeonly buffer Out { float result[]; };  // (n)

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    float x0 = float(gl_LocalInvocationID.x) * 0.001;
    float x1 = x0 + 0.125, x2 = x0 + 0.25, x3 = x0 + 0.375;
    float x4 = x0 + 0.5, x5 = x0 + 0.625, x6 = x0 + 0.75, x7 = x0 + 0.875;
    for (uint k = 0; k < pc.iterations; k++) {
        [[unroll]] for (int u = 0; u < 4; u++) {
            x0 = fma(x0, pc.a, pc.b);
            x1 = fma(x1, pc.a, pc.b);
            x2 = fma(x2, pc.a, pc.b);
            x3 = fma(x3, pc.a, pc.b);
            x4 = fma(x4, pc.a, pc.b);
            x5 = fma(x5, pc.a, pc.b);
            x6 = fma(x6, pc.a, pc.b);
            x7 = fma(x7, pc.a, pc.b);
        }
    }
    if (!xt_in_bounds(i, pc.n)) return;
    result[i] = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
}
