// logit_gather for q4_1 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q4_1
#include "logit_gather.glsl"
