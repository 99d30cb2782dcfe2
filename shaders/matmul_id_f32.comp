// matmul_id for f32 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_F32
#define XT_MATMUL_ID
#include "matmul.glsl"
