// get_rows for bf16 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_BF16
#include "get_rows.glsl"
