/* Embedded SPIR-V modules, one per shaders/<name>.comp, compiled and embedded by the build. */
#ifndef XT_SHADERS_H
#define XT_SHADERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct xt_shader_blob {
    const char *name;          /* file name without .comp */
    const uint32_t *code;      /* SPIR-V words */
    const size_t *size_bytes;  /* points at the module's size in bytes */
} xt_shader_blob;

/* Terminated by an entry whose name is NULL. */
extern const xt_shader_blob xt_shader_blobs[];

/* The module called name, or NULL. */
const xt_shader_blob *xt_shader_find(const char *name);

#endif
