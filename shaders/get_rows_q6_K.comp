// get_rows for q6_K weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q6_K
#include "get_rows.glsl"
