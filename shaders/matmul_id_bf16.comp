// matmul_id for bf16 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_BF16
#define XT_MATMUL_ID
#include "matmul.glsl"
