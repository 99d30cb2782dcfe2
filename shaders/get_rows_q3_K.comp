// get_rows for q3_K weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q3_K
#include "get_rows.glsl"
