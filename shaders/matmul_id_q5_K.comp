// matmul_id for q5_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q5_K
#define XT_MATMUL_ID
#include "matmul.glsl"
