// matmul for q3_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q3_K
#include "matmul.glsl"
