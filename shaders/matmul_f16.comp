// matmul for f16 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_F16
#include "matmul.glsl"
