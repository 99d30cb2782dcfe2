// get_rows for q5_0 weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q5_0
#include "get_rows.glsl"
