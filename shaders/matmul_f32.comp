// matmul for f32 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_F32
#include "matmul.glsl"
