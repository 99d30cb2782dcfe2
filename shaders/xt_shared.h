/* Included by both C and GLSL: push-constant blocks and constants that host and shader must
 * agree on are declared once, in headers that include this one (shaders/push_<family>.h).
 *
 *     XT_PUSH_BEGIN(xt_push_rms_norm)
 *         xt_u32 n_rows;
 *         xt_u32 n_cols;
 *         xt_f32 eps;
 *     XT_PUSH_END(xt_push_rms_norm, 12)
 *
 * In C this is a struct with a size assert (so host and shader cannot drift apart silently); in
 * GLSL it is the push_constant block named `pc`. Only 4-byte scalar members: std430 and C then
 * agree on every offset without padding rules to remember. glslc defines VULKAN when compiling
 * for Vulkan.
 */
#ifndef XT_SHARED_H
#define XT_SHARED_H

#ifdef VULKAN
#define xt_u32 uint
#define xt_i32 int
#define xt_f32 float
#define XT_PUSH_BEGIN(name) layout(push_constant) uniform name##_block {
#define XT_PUSH_END(name, bytes) } pc;
#else
#include <stdint.h>
typedef uint32_t xt_u32;
typedef int32_t xt_i32;
typedef float xt_f32;
#define XT_PUSH_BEGIN(name) typedef struct name {
#define XT_PUSH_END(name, bytes)                                                                   \
    }                                                                                              \
    name;                                                                                          \
    _Static_assert(sizeof(name) == (bytes), #name " must be " #bytes " bytes");
#endif

#endif
