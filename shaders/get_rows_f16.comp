// get_rows for f16 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_F16
#include "get_rows.glsl"
