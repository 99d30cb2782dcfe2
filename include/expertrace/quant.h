/* Tensor element types of GGUF files (ggml's numbering) and their CPU reference dequantization.
 *
 * Every type a GGUF file may name has a traits entry with its block size and bytes per block, so
 * the GGUF reader can size any tensor; to_float is set for the types we compute with (DESIGN.md
 * §3: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K) and NULL for the rest (IQ*, TQ*,
 * MXFP4...), which are reported by name as unsupported rather than misread.
 */
#ifndef EXPERTRACE_QUANT_H
#define EXPERTRACE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "expertrace/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values are ggml's (ggml.h enum ggml_type); gaps are ids ggml has retired. */
typedef enum xt_type {
    XT_TYPE_F32 = 0,
    XT_TYPE_F16 = 1,
    XT_TYPE_Q4_0 = 2,
    XT_TYPE_Q4_1 = 3,
    XT_TYPE_Q5_0 = 6,
    XT_TYPE_Q5_1 = 7,
    XT_TYPE_Q8_0 = 8,
    XT_TYPE_Q8_1 = 9,
    XT_TYPE_Q2_K = 10,
    XT_TYPE_Q3_K = 11,
    XT_TYPE_Q4_K = 12,
    XT_TYPE_Q5_K = 13,
    XT_TYPE_Q6_K = 14,
    XT_TYPE_Q8_K = 15,
    XT_TYPE_IQ2_XXS = 16,
    XT_TYPE_IQ2_XS = 17,
    XT_TYPE_IQ3_XXS = 18,
    XT_TYPE_IQ1_S = 19,
    XT_TYPE_IQ4_NL = 20,
    XT_TYPE_IQ3_S = 21,
    XT_TYPE_IQ2_S = 22,
    XT_TYPE_IQ4_XS = 23,
    XT_TYPE_I8 = 24,
    XT_TYPE_I16 = 25,
    XT_TYPE_I32 = 26,
    XT_TYPE_I64 = 27,
    XT_TYPE_F64 = 28,
    XT_TYPE_IQ1_M = 29,
    XT_TYPE_BF16 = 30,
    XT_TYPE_TQ1_0 = 34,
    XT_TYPE_TQ2_0 = 35,
    XT_TYPE_MXFP4 = 39,
    XT_TYPE_NVFP4 = 40,
    XT_TYPE_Q1_0 = 41,
    XT_TYPE_COUNT = 42
} xt_type;

/* Dequantizes n elements (a whole number of blocks) from packed blocks to fp32. */
typedef void (*xt_to_float_fn)(const void *blocks, float *out, int64_t n);

typedef struct xt_type_traits {
    const char *name;       /* ggml's spelling, e.g. "q4_K" */
    uint32_t block_size;    /* elements per block */
    uint32_t type_size;     /* bytes per block */
    xt_to_float_fn to_float; /* NULL: known type we do not compute with */
} xt_type_traits;

/* Traits of ggml type number t, or NULL when t is not a type ggml defines. */
const xt_type_traits *xt_type_get_traits(uint32_t t);

/* Name of type t, or "unknown" (never NULL). */
const char *xt_type_name(uint32_t t);

/* Bytes of n elements of type t; fails when t is unknown, n is not a whole number of blocks or
 * the size overflows. */
xt_status xt_type_nbytes(uint32_t t, uint64_t n, uint64_t *out_bytes, xt_error *err);

/* Dequantizes n elements of type t from src (src_bytes long) into dst. Fails, naming the type,
 * when t is unknown or not supported for compute, when n is not a whole number of blocks, or when
 * src_bytes is too small. */
xt_status xt_dequantize(uint32_t t, const void *src, size_t src_bytes, float *dst, uint64_t n,
                        xt_error *err);

/* Scalar half/bfloat conversions shared by the CPU reference paths. All are bit-exact with numpy
 * (tests/test_quant.c): fp32 -> fp16 rounds to nearest even and overflows to inf; NaNs keep their
 * sign and payload (truncated to 10 bits, never to zero) and are not quieted, so every fp16
 * pattern survives fp16 -> fp32 -> fp16. */
float xt_fp16_to_fp32(uint16_t h);
uint16_t xt_fp32_to_fp16(float f);
float xt_bf16_to_fp32(uint16_t h);

#ifdef __cplusplus
}
#endif

#endif
