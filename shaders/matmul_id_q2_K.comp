// matmul_id for q2_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q2_K
#define XT_MATMUL_ID
#include "matmul.glsl"
