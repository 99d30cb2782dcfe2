// get_rows for q8_0 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q8_0
#include "get_rows.glsl"
