// get_rows for q5_K weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q5_K
#include "get_rows.glsl"
