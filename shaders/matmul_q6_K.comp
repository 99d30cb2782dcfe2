// matmul for q6_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q6_K
#include "matmul.glsl"
