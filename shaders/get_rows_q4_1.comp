// get_rows for q4_1 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q4_1
#include "get_rows.glsl"
