// logit_gather for q5_0 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q5_0
#include "logit_gather.glsl"
