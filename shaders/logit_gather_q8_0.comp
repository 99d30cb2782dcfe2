// logit_gather for q8_0 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q8_0
#include "logit_gather.glsl"
