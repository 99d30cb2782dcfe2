// get_rows for q4_0 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q4_0
#include "get_rows.glsl"
