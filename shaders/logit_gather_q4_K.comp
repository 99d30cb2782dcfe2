// logit_gather for q4_K weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q4_K
#include "logit_gather.glsl"
