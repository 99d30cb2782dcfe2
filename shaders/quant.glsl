// Dequantization of one weight row segment, for every weight type we compute with, reading the
// blocks as 32-bit words (8/16-bit storage is not universal; README "Supported" → Devices).
//
// The including shader defines exactly one XT_WTYPE_<type> (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and then includes this file, which declares the
// weight buffer at binding 0 (one chunk of an xt_dtensor, padded to a multiple of 4 bytes) and
//
//   void xt_dequant32(uint row_byte, uint k0, uint n_valid, out float w[32])
//
// w[i] = element k0 + i of the row starting at byte row_byte of the chunk, for i < n_valid
// (others 0). k0 is a multiple of 32. For quantized types a row is whole blocks, so n_valid is
// always 32 and the 32 elements lie in one block; for F32/F16/BF16 rows of any length, n_valid =
// min(32, K - k0) keeps the reads inside the row.
//
// Values are bit-identical to the CPU reference dequantizers (src/quant.c): every product of an
// fp16 scale and the small integers is exact in fp32, so only the final add/subtract of a min
// rounds, whatever the evaluation order (see the note at the top of src/quant.c).
//
// Block starts: Q4_1, Q5_1, Q4_K, Q5_K, F32 are word-aligned; Q4_0 (18 B), Q5_0 (22), Q8_0 (34),
// Q2_K (84, aligned), Q3_K (110), Q6_K (210) and F16/BF16 elements start on any even byte, so
// xt_w_u32 reads a 32-bit value at an even byte offset from one or two words.
#ifndef XT_QUANT_GLSL
#define XT_QUANT_GLSL

layout(std430, set = 0, binding = 0) readonly buffer XtWeights { uint w_words[]; };

// Byte b (any offset).
uint xt_w_u8(uint b)
{
    return (w_words[b >> 2] >> ((b & 3u) * 8u)) & 0xffu;
}

// Little-endian 16-bit value at an even byte offset.
uint xt_w_u16(uint b)
{
    return (w_words[b >> 2] >> ((b & 2u) * 8u)) & 0xffffu;
}

// Little-endian 32-bit value at an even byte offset: the second word is read only when the value
// straddles two words, and then it holds the value's own bytes (so never past the binding).
uint xt_w_u32(uint b)
{
    uint lo = w_words[b >> 2];
    if ((b & 2u) == 0u) return lo;
    return (lo >> 16) | (w_words[(b >> 2) + 1u] << 16);
}

float xt_w_f16(uint b)
{
    return unpackHalf2x16(xt_w_u16(b)).x;
}

// Byte i (0..31) of 8 words holding 32 consecutive bytes.
#define XT_BYTE(q, i) (((q)[(i) >> 2] >> (((i) & 3u) * 8u)) & 0xffu)

// The 8 words covering 32 bytes from even byte offset b (word-aligned block types read the words
// directly: no alignment test per load).
void xt_w_load32(uint b, out uint q[8])
{
#if defined(XT_WTYPE_Q4_1) || defined(XT_WTYPE_Q5_1) || defined(XT_WTYPE_Q4_K) ||                 \
    defined(XT_WTYPE_Q5_K)
    [[unroll]] for (uint i = 0u; i < 8u; i++) q[i] = w_words[(b >> 2) + i];
#else
    [[unroll]] for (uint i = 0u; i < 8u; i++) q[i] = xt_w_u32(b + 4u * i);
#endif
}

#if defined(XT_WTYPE_F32) || defined(XT_WTYPE_F16) || defined(XT_WTYPE_BF16)
#define XT_WFLOAT  // rows of any length: the last 32-element step may be partial
#endif

#if defined(XT_WTYPE_F32)
#define XT_QK 1u
#define XT_QBYTES 4u
#elif defined(XT_WTYPE_F16) || defined(XT_WTYPE_BF16)
#define XT_QK 1u
#define XT_QBYTES 2u
#elif defined(XT_WTYPE_Q4_0)
#define XT_QK 32u
#define XT_QBYTES 18u
#elif defined(XT_WTYPE_Q4_1)
#define XT_QK 32u
#define XT_QBYTES 20u
#elif defined(XT_WTYPE_Q5_0)
#define XT_QK 32u
#define XT_QBYTES 22u
#elif defined(XT_WTYPE_Q5_1)
#define XT_QK 32u
#define XT_QBYTES 24u
#elif defined(XT_WTYPE_Q8_0)
#define XT_QK 32u
#define XT_QBYTES 34u
#elif defined(XT_WTYPE_Q2_K)
#define XT_QK 256u
#define XT_QBYTES 84u
#elif defined(XT_WTYPE_Q3_K)
#define XT_QK 256u
#define XT_QBYTES 110u
#elif defined(XT_WTYPE_Q4_K)
#define XT_QK 256u
#define XT_QBYTES 144u
#elif defined(XT_WTYPE_Q5_K)
#define XT_QK 256u
#define XT_QBYTES 176u
#elif defined(XT_WTYPE_Q6_K)
#define XT_QK 256u
#define XT_QBYTES 210u
#else
#error "define one XT_WTYPE_<type> before including quant.glsl"
#endif

// Byte offset of the block holding element k0 of the row at row_byte, and k0's 32-element
// sub-block inside it (k-quants: 0..7).
uint xt_block_byte(uint row_byte, uint k0)
{
    return row_byte + (k0 / XT_QK) * XT_QBYTES;
}

#if defined(XT_WTYPE_Q4_K) || defined(XT_WTYPE_Q5_K)
// 6-bit (scale, min) pair j (0..7) of a Q4_K/Q5_K block from its 12 scale bytes in 3 words
// (ggml's get_scale_min_k4).
uvec2 xt_k4_scale_min(uint s[3], uint j)
{
#define XT_SB(i) ((s[(i) >> 2] >> (((i) & 3u) * 8u)) & 0xffu)
    if (j < 4u) return uvec2(XT_SB(j) & 63u, XT_SB(j + 4u) & 63u);
    return uvec2((XT_SB(j + 4u) & 0xfu) | ((XT_SB(j - 4u) >> 6) << 4),
                 (XT_SB(j + 4u) >> 4) | ((XT_SB(j) >> 6) << 4));
#undef XT_SB
}

// Piece j (0..7, 32 elements) of a Q4_K/Q5_K block from its (d, dmin) word, its 3 scale words,
// the 8 words of nibble bytes the piece shares with its neighbour (low nibbles for even j, high
// for odd) and, for Q5_K, the 8 words of high bits.
void xt_k4_piece(uint dd_word, uint s[3], uint j, uint q[8], uint qh[8], out float w[32])
{
    vec2 dd = unpackHalf2x16(dd_word);
    uvec2 scm = xt_k4_scale_min(s, j);
    float d1 = dd.x * float(scm.x), m1 = dd.y * float(scm.y);
    uint shift = 4u * (j & 1u);
    [[unroll]] for (uint i = 0u; i < 32u; i++) {
        uint v = (XT_BYTE(q, i) >> shift) & 0xfu;
#if defined(XT_WTYPE_Q5_K)
        v |= ((XT_BYTE(qh, i) >> j) & 1u) << 4;
#endif
        w[i] = d1 * float(v) - m1;
    }
}
#endif

void xt_dequant32(uint row_byte, uint k0, uint n_valid, out float w[32])
{
#if defined(XT_WTYPE_F32)
    uint base = (row_byte >> 2) + k0;
    [[unroll]] for (uint i = 0u; i < 32u; i++)
        w[i] = i < n_valid ? uintBitsToFloat(w_words[base + i]) : 0.0;
#elif defined(XT_WTYPE_F16)
    [[unroll]] for (uint i = 0u; i < 32u; i++)
        w[i] = i < n_valid ? xt_w_f16(row_byte + 2u * (k0 + i)) : 0.0;
#elif defined(XT_WTYPE_BF16)
    [[unroll]] for (uint i = 0u; i < 32u; i++)
        w[i] = i < n_valid ? uintBitsToFloat(xt_w_u16(row_byte + 2u * (k0 + i)) << 16) : 0.0;
#elif defined(XT_WTYPE_Q4_0) || defined(XT_WTYPE_Q4_1) || defined(XT_WTYPE_Q5_0) ||             \
    defined(XT_WTYPE_Q5_1)
    // 16 nibble bytes: element i < 16 in the low nibble of byte i, i + 16 in the high nibble.
    uint b = xt_block_byte(row_byte, k0);
#if defined(XT_WTYPE_Q4_0)
    float d = xt_w_f16(b);
    uint qs_byte = b + 2u, qh = 0u;
    const float off = -8.0;
#elif defined(XT_WTYPE_Q4_1)
    vec2 dm = unpackHalf2x16(xt_w_u32(b));
    float d = dm.x, m = dm.y;
    uint qs_byte = b + 4u, qh = 0u;
#elif defined(XT_WTYPE_Q5_0)
    float d = xt_w_f16(b);
    uint qh = xt_w_u32(b + 2u), qs_byte = b + 6u;
    const float off = -16.0;
#else
    vec2 dm = unpackHalf2x16(xt_w_u32(b));
    float d = dm.x, m = dm.y;
    uint qh = xt_w_u32(b + 4u), qs_byte = b + 8u;
#endif
    uint q[4];
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = xt_w_u32(qs_byte + 4u * i);
    [[unroll]] for (uint i = 0u; i < 32u; i++) {
        uint byte = XT_BYTE(q, i & 15u);
        uint v = (i < 16u ? byte & 0xfu : byte >> 4) | (((qh >> i) & 1u) << 4);
#if defined(XT_WTYPE_Q4_0) || defined(XT_WTYPE_Q5_0)
        w[i] = (float(v) + off) * d;  // symmetric: (q - 8 or 16) * d, no min (keeps -0.0)
#else
        w[i] = float(v) * d + m;
#endif
    }
#elif defined(XT_WTYPE_Q8_0)
    uint b = xt_block_byte(row_byte, k0);
    float d = xt_w_f16(b);
    uint q[8];
    xt_w_load32(b + 2u, q);
    [[unroll]] for (uint i = 0u; i < 32u; i++)
        w[i] = float(bitfieldExtract(int(q[i >> 2]), int((i & 3u) * 8u), 8)) * d;
#elif defined(XT_WTYPE_Q2_K)
    uint b = xt_block_byte(row_byte, k0), j = (k0 % 256u) / 32u;
    vec2 dd = unpackHalf2x16(xt_w_u32(b + 80u));
    uint sc2 = xt_w_u16(b + 2u * j);  // scales of elements 32j..+15 and 32j+16..+31
    uint q[8];
    xt_w_load32(b + 16u + 32u * (j / 4u), q);
    uint shift = 2u * (j % 4u);
    [[unroll]] for (uint h = 0u; h < 2u; h++) {
        uint sc = (sc2 >> (8u * h)) & 0xffu;
        float dl = dd.x * float(sc & 0xfu), ml = dd.y * float(sc >> 4);
        [[unroll]] for (uint i = 16u * h; i < 16u * h + 16u; i++)
            w[i] = dl * float((XT_BYTE(q, i) >> shift) & 3u) - ml;
    }
#elif defined(XT_WTYPE_Q3_K)
    uint b = xt_block_byte(row_byte, k0), j = (k0 % 256u) / 32u;
    float d = xt_w_f16(b + 108u);
    uint hm[8], q[8], s[3];
    xt_w_load32(b, hm);
    xt_w_load32(b + 32u + 32u * (j / 4u), q);
    [[unroll]] for (uint i = 0u; i < 3u; i++) s[i] = xt_w_u32(b + 96u + 4u * i);
    uint shift = 2u * (j % 4u);
    [[unroll]] for (uint h = 0u; h < 2u; h++) {
        uint sj = 2u * j + h;  // 6-bit scale index 0..15
        uint lo = sj < 8u ? XT_BYTE(s, sj) & 0xfu : XT_BYTE(s, sj - 8u) >> 4;
        uint hi = (XT_BYTE(s, 8u + sj % 4u) >> (2u * (sj / 4u))) & 3u;
        float dl = d * float(int(lo | (hi << 4)) - 32);
        [[unroll]] for (uint i = 16u * h; i < 16u * h + 16u; i++) {
            uint v = ((XT_BYTE(q, i) >> shift) & 3u) | (((XT_BYTE(hm, i) >> j) & 1u) << 2);
            w[i] = dl * float(int(v) - 4);
        }
    }
#elif defined(XT_WTYPE_Q4_K) || defined(XT_WTYPE_Q5_K)
    uint b = xt_block_byte(row_byte, k0), j = (k0 % 256u) / 32u;
    uint s[3];  // 144/176-byte blocks stay word-aligned
    [[unroll]] for (uint i = 0u; i < 3u; i++) s[i] = w_words[(b >> 2) + 1u + i];
    uint q[8], qh[8];
#if defined(XT_WTYPE_Q4_K)
    uint qs_byte = b + 16u;
    [[unroll]] for (uint i = 0u; i < 8u; i++) qh[i] = 0u;  // Q4_K has no high bits
#else
    uint qs_byte = b + 48u;
    xt_w_load32(b + 16u, qh);
#endif
    xt_w_load32(qs_byte + 32u * (j / 2u), q);
    xt_k4_piece(w_words[b >> 2], s, j, q, qh, w);
#elif defined(XT_WTYPE_Q6_K)
    uint b = xt_block_byte(row_byte, k0), j = (k0 % 256u) / 32u;
    uint h = j / 4u, g = j % 4u;  // 128-element half, 32-element group in it
    float d = xt_w_f16(b + 208u);
    uint sc2 = xt_w_u16(b + 192u + 2u * j);  // signed scales of elements 32j..+15, +16..+31
    uint ql[8], qh[8];
    xt_w_load32(b + 64u * h + 32u * (g & 1u), ql);
    xt_w_load32(b + 128u + 32u * h, qh);
    uint lshift = 4u * (g >> 1), hshift = 2u * g;
    [[unroll]] for (uint hh = 0u; hh < 2u; hh++) {
        float dl = d * float(bitfieldExtract(int(sc2), int(8u * hh), 8));
        [[unroll]] for (uint i = 16u * hh; i < 16u * hh + 16u; i++) {
            uint v = ((XT_BYTE(ql, i) >> lshift) & 0xfu) | (((XT_BYTE(qh, i) >> hshift) & 3u) << 4);
            w[i] = dl * float(int(v) - 32);
        }
    }
#endif
}


// ---- sequential reading of one row -------------------------------------------------------------
// xt_dequant32_seq gives the same values as xt_dequant32 for a caller that reads one row at
// k0 = 0, 32, 64, ... in order (the direct matmul tile): the words that several 32-element pieces
// share (a k-quant block's scales, Q4_K's nibble bytes serving two pieces, Q5_K's high bits) are
// loaded once into the state and kept, and Q8_0's 34-byte blocks are read as the 9 aligned words
// that cover them instead of word pairs. On a CPU device a load is the expensive step: Q4_K reads
// 4.5 words per piece instead of 12, Q8_0 9 instead of up to 17. The tests on the piece index
// are the same in every invocation. Other types fall back to xt_dequant32.
#if defined(XT_WTYPE_Q4_K) || defined(XT_WTYPE_Q5_K)
#define XT_SEQ_WORDS 20  // [0..3] d, dmin, scales; [4..11] nibble bytes; Q5_K [12..19] high bits
#elif defined(XT_WTYPE_Q8_0)
#define XT_SEQ_WORDS 9
#else
#define XT_SEQ_WORDS 1
#endif
struct xt_wseq {
    uint a[XT_SEQ_WORDS];
};

void xt_dequant32_seq(uint row_byte, uint k0, uint n_valid, inout xt_wseq st, out float w[32])
{
#if defined(XT_WTYPE_Q4_K) || defined(XT_WTYPE_Q5_K)
    uint b = xt_block_byte(row_byte, k0), j = (k0 % 256u) / 32u;
    uint bw = b >> 2;  // 144/176-byte blocks stay word-aligned
    if (j == 0u) {
        [[unroll]] for (uint i = 0u; i < 4u; i++) st.a[i] = w_words[bw + i];
#if defined(XT_WTYPE_Q5_K)
        [[unroll]] for (uint i = 0u; i < 8u; i++) st.a[12u + i] = w_words[bw + 4u + i];
#endif
    }
#if defined(XT_WTYPE_Q4_K)
    uint qs_word = bw + 4u;
#else
    uint qs_word = bw + 12u;
#endif
    if ((j & 1u) == 0u) {
        [[unroll]] for (uint i = 0u; i < 8u; i++) st.a[4u + i] = w_words[qs_word + 8u * (j / 2u) + i];
    }
    uint s[3] = uint[3](st.a[1], st.a[2], st.a[3]);
    uint q[8], qh[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        q[i] = st.a[4u + i];
#if defined(XT_WTYPE_Q5_K)
        qh[i] = st.a[12u + i];
#else
        qh[i] = 0u;  // Q4_K has no high bits
#endif
    }
    xt_k4_piece(st.a[0], s, j, q, qh, w);
#elif defined(XT_WTYPE_Q8_0)
    // The 34 bytes from b (an even offset) lie in the 9 words from b / 4: the fp16 scale is the
    // low or the high half of the first, and value i is window byte i + 2 or i + 4.
    uint b = xt_block_byte(row_byte, k0);
    [[unroll]] for (uint i = 0u; i < 9u; i++) st.a[i] = w_words[(b >> 2) + i];
    bool hi = (b & 2u) != 0u;
    float d = unpackHalf2x16(hi ? st.a[0] >> 16 : st.a[0] & 0xffffu).x;
    [[unroll]] for (uint i = 0u; i < 32u; i++) {
        uint v = hi ? XT_BYTE(st.a, i + 4u) : XT_BYTE(st.a, i + 2u);
        w[i] = float(bitfieldExtract(int(v), 0, 8)) * d;
    }
#else
    xt_dequant32(row_byte, k0, n_valid, w);
#endif
}

#endif
