// matmul_id for q3_K weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q3_K
#define XT_MATMUL_ID
#include "matmul.glsl"
