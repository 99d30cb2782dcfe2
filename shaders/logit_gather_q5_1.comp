// logit_gather for q5_1 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q5_1
#include "logit_gather.glsl"
