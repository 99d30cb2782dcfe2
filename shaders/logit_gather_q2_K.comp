// logit_gather for q2_K weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_Q2_K
#include "logit_gather.glsl"
