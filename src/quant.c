/* Type traits for every ggml tensor type and the CPU reference dequantizers.
 *
 * Block sizes and bytes per block follow ggml (ggml-common.h); the reference dequantizers are the
 * oracle the GPU shaders are checked against, and are themselves checked against the gguf Python
 * package's dequantize (tests/reference/make_quant_fixtures.py).
 */
#include "expertrace/quant.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

/* ---- scalar conversions --------------------------------------------------------------------- */

float xt_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf / nan, payload kept */
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* subnormal half: value = mant * 2^-24, exact in fp32 */
        float f = (float)mant * 0x1p-24f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

uint16_t xt_fp32_to_fp16(float f)
{
    /* round to nearest even, with overflow to inf and nan kept quiet */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (absx < 0x38800000u) {                                    /* below the smallest normal half */
        float a;
        memcpy(&a, &absx, 4);
        /* scaled so the half subnormal ulp (2^-24) is 1; nearbyint rounds ties to even */
        return (uint16_t)(sign | (uint32_t)nearbyintf(a * 0x1p24f));
    }
    uint32_t mant_round = absx + 0xfffu + ((absx >> 13) & 1u);
    return (uint16_t)(sign | ((mant_round - 0x38000000u) >> 13));
}

float xt_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/* ---- dequantizers for the plain float types -------------------------------------------------- */

static void to_float_f32(const void *src, float *out, int64_t n)
{
    memcpy(out, src, (size_t)n * sizeof(float));
}

static void to_float_f16(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = xt_fp16_to_fp32(h);
    }
}

static void to_float_bf16(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        out[i] = xt_bf16_to_fp32(h);
    }
}

/* ---- traits ---------------------------------------------------------------------------------- */

static const xt_type_traits type_traits[XT_TYPE_COUNT] = {
    [XT_TYPE_F32] = {.name = "f32", .block_size = 1, .type_size = 4, .to_float = to_float_f32},
    [XT_TYPE_F16] = {.name = "f16", .block_size = 1, .type_size = 2, .to_float = to_float_f16},
    [XT_TYPE_Q4_0] = {.name = "q4_0", .block_size = 32, .type_size = 18},
    [XT_TYPE_Q4_1] = {.name = "q4_1", .block_size = 32, .type_size = 20},
    [XT_TYPE_Q5_0] = {.name = "q5_0", .block_size = 32, .type_size = 22},
    [XT_TYPE_Q5_1] = {.name = "q5_1", .block_size = 32, .type_size = 24},
    [XT_TYPE_Q8_0] = {.name = "q8_0", .block_size = 32, .type_size = 34},
    /* ggml's block_q8_1 packs d and s as two halves (36 bytes); never stored in model files */
    [XT_TYPE_Q8_1] = {.name = "q8_1", .block_size = 32, .type_size = 36},
    [XT_TYPE_Q2_K] = {.name = "q2_K", .block_size = 256, .type_size = 84},
    [XT_TYPE_Q3_K] = {.name = "q3_K", .block_size = 256, .type_size = 110},
    [XT_TYPE_Q4_K] = {.name = "q4_K", .block_size = 256, .type_size = 144},
    [XT_TYPE_Q5_K] = {.name = "q5_K", .block_size = 256, .type_size = 176},
    [XT_TYPE_Q6_K] = {.name = "q6_K", .block_size = 256, .type_size = 210},
    [XT_TYPE_Q8_K] = {.name = "q8_K", .block_size = 256, .type_size = 292},
    [XT_TYPE_IQ2_XXS] = {.name = "iq2_xxs", .block_size = 256, .type_size = 66},
    [XT_TYPE_IQ2_XS] = {.name = "iq2_xs", .block_size = 256, .type_size = 74},
    [XT_TYPE_IQ3_XXS] = {.name = "iq3_xxs", .block_size = 256, .type_size = 98},
    [XT_TYPE_IQ1_S] = {.name = "iq1_s", .block_size = 256, .type_size = 50},
    [XT_TYPE_IQ4_NL] = {.name = "iq4_nl", .block_size = 32, .type_size = 18},
    [XT_TYPE_IQ3_S] = {.name = "iq3_s", .block_size = 256, .type_size = 110},
    [XT_TYPE_IQ2_S] = {.name = "iq2_s", .block_size = 256, .type_size = 82},
    [XT_TYPE_IQ4_XS] = {.name = "iq4_xs", .block_size = 256, .type_size = 136},
    [XT_TYPE_I8] = {.name = "i8", .block_size = 1, .type_size = 1},
    [XT_TYPE_I16] = {.name = "i16", .block_size = 1, .type_size = 2},
    [XT_TYPE_I32] = {.name = "i32", .block_size = 1, .type_size = 4},
    [XT_TYPE_I64] = {.name = "i64", .block_size = 1, .type_size = 8},
    [XT_TYPE_F64] = {.name = "f64", .block_size = 1, .type_size = 8},
    [XT_TYPE_IQ1_M] = {.name = "iq1_m", .block_size = 256, .type_size = 56},
    [XT_TYPE_BF16] = {.name = "bf16", .block_size = 1, .type_size = 2, .to_float = to_float_bf16},
    [XT_TYPE_TQ1_0] = {.name = "tq1_0", .block_size = 256, .type_size = 54},
    [XT_TYPE_TQ2_0] = {.name = "tq2_0", .block_size = 256, .type_size = 66},
    [XT_TYPE_MXFP4] = {.name = "mxfp4", .block_size = 32, .type_size = 17},
    [XT_TYPE_NVFP4] = {.name = "nvfp4", .block_size = 64, .type_size = 36},
    [XT_TYPE_Q1_0] = {.name = "q1_0", .block_size = 128, .type_size = 18},
};

const xt_type_traits *xt_type_get_traits(uint32_t t)
{
    if (t >= XT_TYPE_COUNT || !type_traits[t].name) return NULL;
    return &type_traits[t];
}

const char *xt_type_name(uint32_t t)
{
    const xt_type_traits *tr = xt_type_get_traits(t);
    return tr ? tr->name : "unknown";
}

xt_status xt_type_nbytes(uint32_t t, uint64_t n, uint64_t *out_bytes, xt_error *err)
{
    const xt_type_traits *tr = xt_type_get_traits(t);
    if (!tr) return xt_error_set(err, XT_ERR_UNSUPPORTED, "unknown tensor type %" PRIu32, t);
    if (n % tr->block_size)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%" PRIu64 " elements of type %s are not a whole number of %" PRIu32
                            "-element blocks",
                            n, tr->name, tr->block_size);
    uint64_t blocks = n / tr->block_size;
    if (blocks > UINT64_MAX / tr->type_size)
        return xt_error_set(err, XT_ERR_RANGE, "%" PRIu64 " elements of type %s overflow 64 bits",
                            n, tr->name);
    *out_bytes = blocks * tr->type_size;
    return XT_OK;
}

xt_status xt_dequantize(uint32_t t, const void *src, size_t src_bytes, float *dst, uint64_t n,
                        xt_error *err)
{
    uint64_t need;
    xt_status s = xt_type_nbytes(t, n, &need, err);
    if (s) return s;
    const xt_type_traits *tr = xt_type_get_traits(t);
    if (!tr->to_float)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "tensor type %s (%" PRIu32 ") is not supported for computation", tr->name,
                            t);
    if (src_bytes < need)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%" PRIu64 " elements of type %s need %" PRIu64 " bytes, have %zu", n,
                            tr->name, need, src_bytes);
    tr->to_float(src, dst, (int64_t)n);
    return XT_OK;
}
