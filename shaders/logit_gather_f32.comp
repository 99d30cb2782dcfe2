// logit_gather for f32 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_F32
#include "logit_gather.glsl"
