// logit_gather for q6_K weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q6_K
#include "logit_gather.glsl"
