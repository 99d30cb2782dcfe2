/* ggml's quantized block layouts, byte for byte as they sit in a GGUF file (ggml-common.h).
 *
 * Internal to the library. fp16 fields are uint16_t bit patterns (decode with xt_fp16_to_fp32);
 * every struct has only 1- and 2-byte members (4-byte for Q8_K), so there is no padding and
 * sizeof equals ggml's type_size, which the static_asserts pin. Blocks in a file are packed end to
 * end with no alignment guarantee: read them with memcpy into one of these structs, never by
 * casting a pointer into the file. All multi-byte fields are little-endian, like the host (checked
 * below), as ggml itself assumes.
 *
 * For the shaders: 8/16-bit storage is not universal (MoltenVK, older Intel), so blocks are read
 * as 32-bit words. Q4_0, Q5_0, Q8_0, Q2_K, Q3_K and Q6_K have sizes that are not multiples of 4
 * (18, 22, 34, 84, 110, 210 bytes), so their blocks start on any even byte: fetch the words that
 * cover a byte range and shift. Q4_1, Q5_1, Q4_K and Q5_K (20, 24, 144, 176) stay word-aligned
 * when the tensor is, and start with the fp16 pair (d, m or dmin): one unpackHalf2x16 reads both.
 */
#ifndef XT_QUANT_BLOCKS_H
#define XT_QUANT_BLOCKS_H

#include <assert.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&                               \
    __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "expertrace reads GGUF blocks in place and needs a little-endian host"
#endif

/* Elements per block (ggml: QK4_0, QK4_1, ..., QK_K) and the packed 6-bit scale area of Q4_K and
 * Q5_K (ggml: K_SCALE_SIZE). */
#define XT_QK4_0 32
#define XT_QK4_1 32
#define XT_QK5_0 32
#define XT_QK5_1 32
#define XT_QK8_0 32
#define XT_QK8_1 32
#define XT_QK_K 256
#define XT_K_SCALE_SIZE 12

/* ---- legacy 32-element blocks -----------------------------------------------------------------
 *
 * Nibble order: byte j of qs holds element j in its low nibble and element j + 16 in its high
 * nibble (not 2j / 2j+1). One byte therefore feeds the two halves of the block, which is what lets
 * ggml's SIMD code unpack 16 low and 16 high nibbles with one mask and one shift each.
 */

/* Symmetric 4-bit: x = d * (q - 8), q in 0..15. d is chosen as max/-8 so the extreme value maps
 * to q = 0 exactly (-8 is representable, +8 is not). */
typedef struct xt_block_q4_0 {
    uint16_t d;                  /* fp16 scale */
    uint8_t qs[XT_QK4_0 / 2];    /* nibbles, see above */
} xt_block_q4_0;
static_assert(sizeof(xt_block_q4_0) == 2 + XT_QK4_0 / 2, "block_q4_0 is 18 bytes");

/* Asymmetric 4-bit: x = d * q + m, q in 0..15; m is the block minimum, so no offset is needed. */
typedef struct xt_block_q4_1 {
    uint16_t d;                  /* fp16 scale */
    uint16_t m;                  /* fp16 minimum (added) */
    uint8_t qs[XT_QK4_1 / 2];
} xt_block_q4_1;
static_assert(sizeof(xt_block_q4_1) == 4 + XT_QK4_1 / 2, "block_q4_1 is 20 bytes");

/* Symmetric 5-bit: x = d * (q - 16). The low 4 bits are nibbles as in Q4_0; the 5th bit of
 * element j is bit j of qh read as one little-endian uint32 (so elements 0..15 use qh[0..1] and
 * 16..31 use qh[2..3]). qh is a byte array, not a uint32, so the block stays 22 bytes
 * with no padding. */
typedef struct xt_block_q5_0 {
    uint16_t d;                  /* fp16 scale */
    uint8_t qh[4];               /* 5th bits, little-endian bit j = element j */
    uint8_t qs[XT_QK5_0 / 2];    /* low nibbles */
} xt_block_q5_0;
static_assert(sizeof(xt_block_q5_0) == 2 + 4 + XT_QK5_0 / 2, "block_q5_0 is 22 bytes");

/* Asymmetric 5-bit: x = d * q + m, q in 0..31, bits split as in Q5_0. */
typedef struct xt_block_q5_1 {
    uint16_t d;                  /* fp16 scale */
    uint16_t m;                  /* fp16 minimum (added) */
    uint8_t qh[4];
    uint8_t qs[XT_QK5_1 / 2];
} xt_block_q5_1;
static_assert(sizeof(xt_block_q5_1) == 4 + 4 + XT_QK5_1 / 2, "block_q5_1 is 24 bytes");

/* Symmetric 8-bit: x = d * q, q a signed byte, elements in natural order. */
typedef struct xt_block_q8_0 {
    uint16_t d;                  /* fp16 scale */
    int8_t qs[XT_QK8_0];
} xt_block_q8_0;
static_assert(sizeof(xt_block_q8_0) == 2 + XT_QK8_0, "block_q8_0 is 34 bytes");

/* Activation format of ggml's integer dot products (never stored in model files): like Q8_0 plus
 * s = d * sum(q), which lets an asymmetric weight block fold its minimum into one multiply. */
typedef struct xt_block_q8_1 {
    uint16_t d;                  /* fp16 scale */
    uint16_t s;                  /* fp16 d * sum(qs) */
    int8_t qs[XT_QK8_1];
} xt_block_q8_1;
static_assert(sizeof(xt_block_q8_1) == 4 + XT_QK8_1, "block_q8_1 is 36 bytes");

/* ---- k-quants: 256-element super-blocks ------------------------------------------------------
 *
 * A super-block has one or two fp16 super-scales and small integer scales per sub-block (16 or 32
 * elements): two-level scaling costs ~0.5 bit per weight instead of 16 bits per 32 weights.
 *
 * Element order inside the quant bytes, shared by Q2_K, Q3_K and the high bits of Q5_K: the 256
 * elements are processed in halves of 128; within a half, byte l (0..31) of the 32-byte group holds
 * elements l, l+32, l+64, l+96 in successive bit fields (2 bits each for Q2_K/Q3_K low bits).
 * 4-bit k-quants (Q4_K, Q5_K low bits, Q6_K low bits) do the same with nibbles: byte l of a 32-byte
 * group holds element l (low nibble) and l+32 (high nibble) of a 64-element chunk. A GPU thread
 * that owns byte l thus produces elements that are 32 apart, and neighbouring threads write
 * neighbouring elements — coalesced both ways.
 */

/* 2-bit: x = d * sc * q - dmin * m, q in 0..3, one (sc, m) 4-bit pair per 16 elements.
 * scales[i]: low nibble sc, high nibble m, for elements 16i..16i+15. qs: element e is in byte
 * 32 * (e / 128) + e % 32, bits 2 * ((e % 128) / 32). The super-scales come last here, first in
 * Q4_K/Q5_K. */
typedef struct xt_block_q2_K {
    uint8_t scales[XT_QK_K / 16]; /* per 16 elements: sc (bits 0-3), m (bits 4-7) */
    uint8_t qs[XT_QK_K / 4];      /* 2-bit quants */
    uint16_t d;                   /* fp16 super-scale for sc */
    uint16_t dmin;                /* fp16 super-scale for m (subtracted) */
} xt_block_q2_K;
static_assert(sizeof(xt_block_q2_K) == XT_QK_K / 16 + XT_QK_K / 4 + 4, "block_q2_K is 84 bytes");

/* 3-bit: x = d * (sc - 32) * (q - 4), q = low2 | hbit << 2 in 0..7, sc a 6-bit scale per 16
 * elements. ggml's loop says "subtract 4 when the hmask bit is clear", which is the same unsigned
 * 3-bit value with offset 4, split so that the low 2 bits share Q2_K's layout. The low bits sit in
 * qs as in Q2_K; the third bit of element e is in hmask[e % 32], bit e / 32.
 * The 16 6-bit scales are packed into 12 bytes: scale j has its low 4 bits in scales[j] (j < 8,
 * low nibble) or scales[j - 8] (j >= 8, high nibble), and its high 2 bits in scales[8 + j % 4] at
 * bits 2 * (j / 4). */
typedef struct xt_block_q3_K {
    uint8_t hmask[XT_QK_K / 8];   /* third bit of each quant */
    uint8_t qs[XT_QK_K / 4];      /* low 2 bits */
    uint8_t scales[12];           /* 16 packed 6-bit scales, offset by 32 */
    uint16_t d;                   /* fp16 super-scale */
} xt_block_q3_K;
static_assert(sizeof(xt_block_q3_K) == XT_QK_K / 8 + XT_QK_K / 4 + 12 + 2,
              "block_q3_K is 110 bytes");

/* 4-bit: x = (d * sc) * q - (dmin * m), q in 0..15, one 6-bit (sc, m) pair per 32 elements.
 * Packing of the 8 pairs into 12 bytes (ggml's get_scale_min_k4): for sub-block j < 4, sc is the
 * low 6 bits of scales[j] and m the low 6 bits of scales[j + 4]; for j >= 4 the low 4 bits come
 * from scales[j + 4] (sc low nibble, m high nibble) and the high 2 bits from the top two bits of
 * scales[j - 4] (sc) and scales[j] (m). qs: 64-element chunks of 32 bytes, low nibble = first 32
 * elements of the chunk (sub-block 2c), high nibble = next 32 (sub-block 2c + 1). */
typedef struct xt_block_q4_K {
    uint16_t d;                         /* fp16 super-scale for sc */
    uint16_t dmin;                      /* fp16 super-scale for m (subtracted) */
    uint8_t scales[XT_K_SCALE_SIZE];    /* 8 packed (sc, m) 6-bit pairs */
    uint8_t qs[XT_QK_K / 2];            /* 4-bit quants */
} xt_block_q4_K;
static_assert(sizeof(xt_block_q4_K) == 4 + XT_K_SCALE_SIZE + XT_QK_K / 2,
              "block_q4_K is 144 bytes");

/* 5-bit: Q4_K plus a fifth bit per element, q in 0..31: element l + 32 s (sub-block s) takes bit
 * s of qh[l]. Scales, mins and nibbles exactly as Q4_K. */
typedef struct xt_block_q5_K {
    uint16_t d;                         /* fp16 super-scale for sc */
    uint16_t dmin;                      /* fp16 super-scale for m (subtracted) */
    uint8_t scales[XT_K_SCALE_SIZE];    /* as Q4_K */
    uint8_t qh[XT_QK_K / 8];            /* fifth bits */
    uint8_t qs[XT_QK_K / 2];            /* low 4 bits */
} xt_block_q5_K;
static_assert(sizeof(xt_block_q5_K) == 4 + XT_K_SCALE_SIZE + XT_QK_K / 8 + XT_QK_K / 2,
              "block_q5_K is 176 bytes");

/* 6-bit: x = (d * sc) * (q - 32), q in 0..63, sc a signed 8-bit scale per 16 elements; symmetric,
 * no min. Per 128-element half h (element offsets within the half):
 * ql[64h + l], l in 0..63, holds element l in its low nibble and l + 64 in its high nibble;
 * qh[32h + l], l in 0..31, holds the top 2 bits of elements l, l + 32, l + 64, l + 96 at bits
 * 0-1, 2-3, 4-5, 6-7. */
typedef struct xt_block_q6_K {
    uint8_t ql[XT_QK_K / 2];      /* low 4 bits */
    uint8_t qh[XT_QK_K / 4];      /* high 2 bits */
    int8_t scales[XT_QK_K / 16];  /* signed per-16 scales */
    uint16_t d;                   /* fp16 super-scale */
} xt_block_q6_K;
static_assert(sizeof(xt_block_q6_K) == XT_QK_K / 2 + XT_QK_K / 4 + XT_QK_K / 16 + 2,
              "block_q6_K is 210 bytes");

/* Activation format of ggml's k-quant dot products (never in model files): fp32 scale, signed
 * bytes, and sums of each 16 quants so a min term costs one multiply per 16 elements. */
typedef struct xt_block_q8_K {
    float d;                      /* fp32 scale, not fp16 */
    int8_t qs[XT_QK_K];
    int16_t bsums[XT_QK_K / 16];  /* sum of qs[16i..16i+15] */
} xt_block_q8_K;
static_assert(sizeof(xt_block_q8_K) == 4 + XT_QK_K + XT_QK_K / 16 * 2, "block_q8_K is 292 bytes");

#endif
