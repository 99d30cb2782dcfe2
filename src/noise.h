/* The tracer's reproducible randomness: Gaussian noise for the subject embeddings and seeded
 * streams for the controller (case shuffle) and the statistics (bootstrap, sign flips).
 *
 * Everything derives from one counter-based generator, Philox4x32-10 (Salmon et al., SC'11, as in
 * Random123), so a value depends only on its coordinates, never on how many values were drawn
 * before it or on which device computed it. The definitions below are the contract: another
 * implementation that follows them reproduces every value bit for bit
 * (tests/reference/noise_reference.py is one).
 *
 * Philox4x32-10: state (c0,c1,c2,c3), key (k0,k1); a round is
 *     (hi0,lo0) = 0xD2511F53 * c0,  (hi1,lo1) = 0xCD9E8D57 * c2   (32x32 -> 64-bit products)
 *     (c0,c1,c2,c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
 * ten rounds, with k0 += 0x9E3779B9, k1 += 0xBB67AE85 (mod 2^32) between consecutive rounds.
 *
 * Noise (xt_noise_normals): key (seed, case_id); dims 4j..4j+3 of the vector at (draw, position)
 * come from counter (draw, position, j, 0). Output words x0..x3 become u_i = (x_i + 0.5) * 2^-32
 * in double (strictly inside (0,1), so the log below is finite); Box-Muller on (u0,u1) and
 * (u2,u3): with r = sqrt(-2 * log(u_a)) and t = 6.283185307179586 * u_b (2*pi as a double),
 * dims 4j, 4j+1 are r*cos(t), r*sin(t) from (a,b) = (0,1), dims 4j+2, 4j+3 the same from (2,3);
 * out[d] = (float)(sigma * n_d), every step in double, rounded to float once. When n_embd is not
 * a multiple of 4 the last group's surplus values are dropped.
 *
 * Stream (xt_rng): key (seed, stream); block b = 0, 1, 2, ... is Philox of counter
 * (b mod 2^32, b >> 32, 0, 1) and its words are used in the order x0, x1, x2, x3. The counter's
 * last word is 1 where the noise's is 0, so a stream never repeats noise words even when
 * stream == case_id.
 *   u32()      the next word.
 *   below(n)   Lemire's multiply-shift with rejection, unbiased: m = u32() * n (64-bit);
 *              if (m mod 2^32) < n then, with t = 2^32 mod n, redraw while (m mod 2^32) < t;
 *              return m >> 32. below(0) is 0 and draws nothing.
 *   uniform()  a = u32() >> 5, b = u32() >> 6: (a * 2^26 + b) * 2^-53, in [0, 1).
 *   shuffle    Fisher-Yates from the end: for i = n-1 down to 1, j = below(i+1), swap v[i], v[j].
 */
#ifndef XT_NOISE_H
#define XT_NOISE_H

#include <stdint.h>

/* One Philox4x32-10 block: out = Philox(ctr, key). out may alias ctr. */
void xt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* out[n_embd]: the Gaussian noise vector (mean 0, std sigma) for one token position of one draw
 * of one case, as defined above. */
void xt_noise_normals(uint32_t seed, uint32_t case_id, uint32_t draw, uint32_t position,
                      uint32_t n_embd, double sigma, float *out);

/* A seeded stream of 32-bit words. Plain struct, no resources: copy it to fork a stream's
 * position; xt_rng_init starts it at word 0. */
typedef struct xt_rng {
    uint32_t key[2];  /* (seed, stream) */
    uint64_t block;   /* the next block to generate */
    uint32_t buf[4];  /* the current block's words */
    uint32_t left;    /* words of buf not yet used (taken from index 4 - left) */
} xt_rng;

void xt_rng_init(xt_rng *r, uint32_t seed, uint32_t stream);
uint32_t xt_rng_u32(xt_rng *r);
/* Uniform on 0..n-1 (n = 0 gives 0). */
uint32_t xt_rng_below(xt_rng *r, uint32_t n);
/* Uniform on [0, 1) with 53 random bits. */
double xt_rng_uniform(xt_rng *r);
/* Permutes v[n] in place (Fisher-Yates, from the end). */
void xt_shuffle_u32(uint32_t *v, uint32_t n, xt_rng *r);

#endif
