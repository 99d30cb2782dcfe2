// logit_gather for q3_K weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q3_K
#include "logit_gather.glsl"
