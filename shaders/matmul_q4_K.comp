// matmul for q4_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q4_K
#include "matmul.glsl"
