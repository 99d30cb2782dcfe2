// get_rows for q5_1 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q5_1
#include "get_rows.glsl"
