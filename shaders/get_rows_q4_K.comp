// get_rows for q4_K weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q4_K
#include "get_rows.glsl"
