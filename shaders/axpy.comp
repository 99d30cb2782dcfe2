// y[i] = a * x[i] + y[i] for i < n: the smallest real kernel, used to test the Vulkan layer.
#version 450
#include "common.glsl"

// Workgroup size from specialization constant 0 (default 64).
layout(local_size_x_id = 0, local_size_x = 64) in;

layout(push_constant) uniform Push {
    uint n;  // elements
    float a;
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };  // (n)
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };           // (n)

void main()
{
    uint i = xt_global_index(gl_WorkGroupSize.x);
    if (!xt_in_bounds(i, pc.n)) return;
    // precise: no fusion into an fma, so the result is the same rounding on every device and
    // matches the host's a * x + y bit for bit.
    precise float r = pc.a * x[i] + y[i];
    y[i] = r;
}
