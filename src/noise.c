/* Philox4x32-10, the noise vectors and the seeded streams (definitions in noise.h).
 *
 * The arithmetic is spelled out in the order noise.h gives, in double, with no fused multiply-add
 * (the build passes -ffp-contract=off): the noise must come out the same on every machine and in
 * the reference script, bit for bit after the final rounding to float.
 */
#include "noise.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_ROUNDS 10

/* The stream's counter word 3; the noise uses 0 there (see noise.h). */
#define RNG_DOMAIN 1u

#define TWO_PI 6.283185307179586 /* the double nearest 2*pi */
#define TWO_POW_M32 (1.0 / 4294967296.0)
#define TWO_POW_M53 (1.0 / 9007199254740992.0)

void xt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < PHILOX_ROUNDS; round++) {
        if (round) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0;
        c1 = n1;
        c2 = n2;
        c3 = n3;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static double word_to_open_unit(uint32_t x)
{
    return ((double)x + 0.5) * TWO_POW_M32;
}

void xt_noise_normals(uint32_t seed, uint32_t case_id, uint32_t draw, uint32_t position,
                      uint32_t n_embd, double sigma, float *out)
{
    const uint32_t key[2] = {seed, case_id};
    for (uint32_t base = 0, j = 0; base < n_embd; base += 4, j++) {
        const uint32_t ctr[4] = {draw, position, j, 0};
        uint32_t x[4];
        xt_philox4x32_10(ctr, key, x);
        double n[4];
        for (int pair = 0; pair < 2; pair++) {
            double ua = word_to_open_unit(x[2 * pair]);
            double ub = word_to_open_unit(x[2 * pair + 1]);
            double r = sqrt(-2.0 * log(ua));
            double t = TWO_PI * ub;
            n[2 * pair] = r * cos(t);
            n[2 * pair + 1] = r * sin(t);
        }
        for (uint32_t i = 0; i < 4 && base + i < n_embd; i++) out[base + i] = (float)(sigma * n[i]);
    }
}

void xt_rng_init(xt_rng *r, uint32_t seed, uint32_t stream)
{
    r->key[0] = seed;
    r->key[1] = stream;
    r->block = 0;
    r->left = 0;
    for (int i = 0; i < 4; i++) r->buf[i] = 0;
}

uint32_t xt_rng_u32(xt_rng *r)
{
    if (r->left == 0) {
        const uint32_t ctr[4] = {(uint32_t)r->block, (uint32_t)(r->block >> 32), 0, RNG_DOMAIN};
        xt_philox4x32_10(ctr, r->key, r->buf);
        r->block++;
        r->left = 4;
    }
    return r->buf[4 - r->left--];
}

uint32_t xt_rng_below(xt_rng *r, uint32_t n)
{
    if (n == 0) return 0;
    uint64_t m = (uint64_t)xt_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        /* Words whose low product half falls below 2^32 mod n would over-represent some results;
         * redrawing them leaves exactly floor(2^32 / n) words per result. */
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)xt_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

double xt_rng_uniform(xt_rng *r)
{
    uint32_t a = xt_rng_u32(r) >> 5;
    uint32_t b = xt_rng_u32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) * TWO_POW_M53;
}

void xt_shuffle_u32(uint32_t *v, uint32_t n, xt_rng *r)
{
    for (uint32_t i = n; i-- > 1;) {
        uint32_t j = xt_rng_below(r, i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
