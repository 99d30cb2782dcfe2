// logit_gather for f16 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_F16
#include "logit_gather.glsl"
