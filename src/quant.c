/* Type traits for every ggml tensor type and the CPU reference dequantizers.
 *
 * Block sizes and bytes per block follow ggml (ggml-common.h); the reference dequantizers are the
 * oracle the GPU shaders are checked against, and are themselves checked against the gguf Python
 * package's dequantize (tests/reference/make_quant_fixtures.py), bit for bit.
 *
 * Why bit-exactness is robust here: every product in these formulas is exact in fp32. An fp16
 * scale has an 11-bit significand and the integer factors (sub-block scale times quant) are at
 * most 4096 in magnitude (the largest, Q6_K: |scale| <= 128 times |q - 32| <= 32), so d * sc * q
 * fits fp32's 24-bit significand, and nothing underflows (the smallest fp16, 2^-24, is a normal
 * fp32). The only rounding is the final add or subtract of the min, so each element is the
 * correctly rounded value of the exact expression, whatever the evaluation order and whether or
 * not a * b + c is fused into an FMA. ggml, numpy and a GPU shader therefore agree bit for bit,
 * provided the GPU does not flush fp16 subnormal scales to zero.
 *
 * Blocks are copied into the structs of quant_blocks.h with memcpy: they sit at any byte offset.
 */
#include "expertrace/quant.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "quant_blocks.h"

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
    /* Round to nearest even, overflow to inf. A NaN keeps its sign and the top 10 bits of its
     * payload (bit 0 forced on if those are all zero, so it stays a NaN), exactly as numpy's
     * float32 -> float16 does; with xt_fp16_to_fp32 keeping payloads, every half pattern then
     * survives the round trip. */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) {
        uint32_t payload = (absx >> 13) & 0x3ffu;
        return (uint16_t)(sign | 0x7c00u | (payload ? payload : 1u));
    }
    if (absx == 0x7f800000u) return (uint16_t)(sign | 0x7c00u);
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

/* ---- dequantizers for the quantized types ----------------------------------------------------
 *
 * One loop per element where ggml has several unrolled ones: the index arithmetic then states the
 * layout (documented in quant_blocks.h) once, and is what a shader thread computes for its element.
 * The float operations follow ggml's order anyway (d1 = d * sc, then d1 * q - m1), so the code
 * reads like dequantize_row_* even where, as explained at the top, the order cannot matter.
 */

static void to_float_q4_0(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK4_0; i++, out += XT_QK4_0) {
        xt_block_q4_0 b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        for (int j = 0; j < XT_QK4_0; j++) {
            const int byte = b.qs[j % (XT_QK4_0 / 2)];
            const int q = j < XT_QK4_0 / 2 ? byte & 0xf : byte >> 4;
            out[j] = (float)(q - 8) * d;
        }
    }
}

static void to_float_q4_1(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK4_1; i++, out += XT_QK4_1) {
        xt_block_q4_1 b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const float m = xt_fp16_to_fp32(b.m);
        for (int j = 0; j < XT_QK4_1; j++) {
            const int byte = b.qs[j % (XT_QK4_1 / 2)];
            const int q = j < XT_QK4_1 / 2 ? byte & 0xf : byte >> 4;
            out[j] = (float)q * d + m;
        }
    }
}

/* The 5th bits of a Q5 block: qh is a little-endian uint32, read byte by byte. */
static uint32_t q5_high_bits(const uint8_t qh[4])
{
    return (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
}

static void to_float_q5_0(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK5_0; i++, out += XT_QK5_0) {
        xt_block_q5_0 b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const uint32_t qh = q5_high_bits(b.qh);
        for (int j = 0; j < XT_QK5_0; j++) {
            const int byte = b.qs[j % (XT_QK5_0 / 2)];
            const int lo = j < XT_QK5_0 / 2 ? byte & 0xf : byte >> 4;
            const int q = lo | (int)((qh >> j) & 1u) << 4;
            out[j] = (float)(q - 16) * d;
        }
    }
}

static void to_float_q5_1(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK5_1; i++, out += XT_QK5_1) {
        xt_block_q5_1 b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const float m = xt_fp16_to_fp32(b.m);
        const uint32_t qh = q5_high_bits(b.qh);
        for (int j = 0; j < XT_QK5_1; j++) {
            const int byte = b.qs[j % (XT_QK5_1 / 2)];
            const int lo = j < XT_QK5_1 / 2 ? byte & 0xf : byte >> 4;
            const int q = lo | (int)((qh >> j) & 1u) << 4;
            out[j] = (float)q * d + m;
        }
    }
}

static void to_float_q8_0(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK8_0; i++, out += XT_QK8_0) {
        xt_block_q8_0 b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        for (int j = 0; j < XT_QK8_0; j++) out[j] = (float)b.qs[j] * d;
    }
}

/* The 2-bit field of element e (0..255) in the Q2_K/Q3_K qs layout: byte 32 * (e / 128) + e % 32,
 * bits 2 * ((e % 128) / 32). */
static int k_low2(const uint8_t qs[XT_QK_K / 4], int e)
{
    return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

static void to_float_q2_K(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK_K; i++, out += XT_QK_K) {
        xt_block_q2_K b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const float dmin = xt_fp16_to_fp32(b.dmin);
        for (int s = 0; s < XT_QK_K / 16; s++) {
            const float dl = d * (float)(b.scales[s] & 0xf);
            const float ml = dmin * (float)(b.scales[s] >> 4);
            for (int e = 16 * s; e < 16 * s + 16; e++) out[e] = dl * (float)k_low2(b.qs, e) - ml;
        }
    }
}

/* 6-bit scale j (0..15) of a Q3_K block, still offset by 32. */
static int q3_K_scale(const uint8_t scales[12], int j)
{
    const int lo = j < 8 ? scales[j] & 0xf : scales[j - 8] >> 4;
    const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return lo | hi << 4;
}

static void to_float_q3_K(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK_K; i++, out += XT_QK_K) {
        xt_block_q3_K b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        for (int s = 0; s < XT_QK_K / 16; s++) {
            const float dl = d * (float)(q3_K_scale(b.scales, s) - 32);
            for (int e = 16 * s; e < 16 * s + 16; e++) {
                const int hbit = (b.hmask[e % 32] >> (e / 32)) & 1;
                out[e] = dl * (float)((k_low2(b.qs, e) | hbit << 2) - 4);
            }
        }
    }
}

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block (ggml's get_scale_min_k4). */
static void k4_scale_min(const uint8_t scales[XT_K_SCALE_SIZE], int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xf) | (scales[j - 4] >> 6) << 4;
        *m = (scales[j + 4] >> 4) | (scales[j] >> 6) << 4;
    }
}

/* The low 4 bits of element e (0..255) in the Q4_K/Q5_K qs layout: 64-element chunks of 32 bytes,
 * low nibble for the chunk's first 32 elements, high nibble for the next 32. */
static int k_low4(const uint8_t qs[XT_QK_K / 2], int e)
{
    const int byte = qs[32 * (e / 64) + e % 32];
    return (e % 64) < 32 ? byte & 0xf : byte >> 4;
}

static void to_float_q4_K(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK_K; i++, out += XT_QK_K) {
        xt_block_q4_K b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const float dmin = xt_fp16_to_fp32(b.dmin);
        for (int s = 0; s < XT_QK_K / 32; s++) {
            int sc, m;
            k4_scale_min(b.scales, s, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = dmin * (float)m;
            for (int e = 32 * s; e < 32 * s + 32; e++) out[e] = d1 * (float)k_low4(b.qs, e) - m1;
        }
    }
}

static void to_float_q5_K(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK_K; i++, out += XT_QK_K) {
        xt_block_q5_K b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        const float dmin = xt_fp16_to_fp32(b.dmin);
        for (int s = 0; s < XT_QK_K / 32; s++) {
            int sc, m;
            k4_scale_min(b.scales, s, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = dmin * (float)m;
            for (int e = 32 * s; e < 32 * s + 32; e++) {
                const int q = k_low4(b.qs, e) | ((b.qh[e % 32] >> s) & 1) << 4;
                out[e] = d1 * (float)q - m1;
            }
        }
    }
}

static void to_float_q6_K(const void *src, float *out, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n / XT_QK_K; i++, out += XT_QK_K) {
        xt_block_q6_K b;
        memcpy(&b, p + i * (int64_t)sizeof b, sizeof b);
        const float d = xt_fp16_to_fp32(b.d);
        for (int e = 0; e < XT_QK_K; e++) {
            const int h = e / 128, g = (e % 128) / 32, l = e % 32; /* half, 32-group, lane */
            const int lo = (b.ql[64 * h + 32 * (g & 1) + l] >> (4 * (g >> 1))) & 0xf;
            const int hi = (b.qh[32 * h + l] >> (2 * g)) & 3;
            out[e] = (d * (float)b.scales[e / 16]) * (float)((lo | hi << 4) - 32);
        }
    }
}

/* ---- traits ---------------------------------------------------------------------------------- */

static const xt_type_traits type_traits[XT_TYPE_COUNT] = {
    [XT_TYPE_F32] = {.name = "f32", .block_size = 1, .type_size = 4, .to_float = to_float_f32},
    [XT_TYPE_F16] = {.name = "f16", .block_size = 1, .type_size = 2, .to_float = to_float_f16},
    [XT_TYPE_Q4_0] = {.name = "q4_0", .block_size = 32, .type_size = 18, .to_float = to_float_q4_0},
    [XT_TYPE_Q4_1] = {.name = "q4_1", .block_size = 32, .type_size = 20, .to_float = to_float_q4_1},
    [XT_TYPE_Q5_0] = {.name = "q5_0", .block_size = 32, .type_size = 22, .to_float = to_float_q5_0},
    [XT_TYPE_Q5_1] = {.name = "q5_1", .block_size = 32, .type_size = 24, .to_float = to_float_q5_1},
    [XT_TYPE_Q8_0] = {.name = "q8_0", .block_size = 32, .type_size = 34, .to_float = to_float_q8_0},
    /* ggml's block_q8_1 packs d and s as two halves (36 bytes); never stored in model files */
    [XT_TYPE_Q8_1] = {.name = "q8_1", .block_size = 32, .type_size = 36},
    [XT_TYPE_Q2_K] = {.name = "q2_K", .block_size = 256, .type_size = 84,
                      .to_float = to_float_q2_K},
    [XT_TYPE_Q3_K] = {.name = "q3_K", .block_size = 256, .type_size = 110,
                      .to_float = to_float_q3_K},
    [XT_TYPE_Q4_K] = {.name = "q4_K", .block_size = 256, .type_size = 144,
                      .to_float = to_float_q4_K},
    [XT_TYPE_Q5_K] = {.name = "q5_K", .block_size = 256, .type_size = 176,
                      .to_float = to_float_q5_K},
    [XT_TYPE_Q6_K] = {.name = "q6_K", .block_size = 256, .type_size = 210,
                      .to_float = to_float_q6_K},
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
    uint64_t need = 0;
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
    if (n == 0) return XT_OK; /* src and dst may then be NULL */
    tr->to_float(src, dst, (int64_t)n);
    return XT_OK;
}
