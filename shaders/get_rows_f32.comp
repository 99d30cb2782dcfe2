// get_rows for f32 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_F32
#include "get_rows.glsl"
