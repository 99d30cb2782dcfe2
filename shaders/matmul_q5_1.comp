// matmul for q5_1 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q5_1
#include "matmul.glsl"
