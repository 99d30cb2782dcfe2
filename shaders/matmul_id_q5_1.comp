// matmul_id for q5_1 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q5_1
#define XT_MATMUL_ID
#include "matmul.glsl"
