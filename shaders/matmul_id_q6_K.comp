// matmul_id for q6_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q6_K
#define XT_MATMUL_ID
#include "matmul.glsl"
