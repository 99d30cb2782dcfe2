// matmul for q2_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q2_K
#include "matmul.glsl"
