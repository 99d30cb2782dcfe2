// matmul_id for q8_0 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_Q8_0
#define XT_MATMUL_ID
#include "matmul.glsl"
