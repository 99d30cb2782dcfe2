// matmul for bf16 weights (see matmul.glsl).
#version 450
#define XT_WTYPE_BF16
#include "matmul.glsl"
