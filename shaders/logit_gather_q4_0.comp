// logit_gather for q4_0 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q4_0
#include "logit_gather.glsl"
