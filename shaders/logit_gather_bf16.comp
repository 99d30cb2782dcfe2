// logit_gather for bf16 weights (see logit_gather.glsl).
#version 450
#define XT_WTYPE_BF16
#include "logit_gather.glsl"
