// matmul_id for q4_0 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q4_0
#define XT_MATMUL_ID
#include "matmul.glsl"
