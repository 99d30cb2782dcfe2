// matmul_id for f16 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_F16
#define XT_MATMUL_ID
#include "matmul.glsl"
