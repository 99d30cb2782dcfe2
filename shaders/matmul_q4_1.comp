// matmul for q4_1 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q4_1
#include "matmul.glsl"
