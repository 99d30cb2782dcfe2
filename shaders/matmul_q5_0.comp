// matmul for q5_0 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q5_0
#include "matmul.glsl"
