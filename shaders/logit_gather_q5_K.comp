// logit_gather for q5_K weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q5_K
#include "logit_gather.glsl"
