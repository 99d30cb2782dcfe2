// get_rows for q2_K weights (see get_rows.glsl).
#version 450
#define XT_WTYPE_Q2_K
#include "get_rows.glsl"
