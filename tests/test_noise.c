/* Philox4x32-10, the tracer's noise and the seeded streams (src/noise.h) against Random123's
 * known answers and an independent Python implementation.
 *
 * The oracle is tests/fixtures/trace/noise_reference.json, written by
 * tests/reference/noise_reference.py from noise.h's definitions; the check needs no Python.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "noise.h"
#include "util.h"
#include "xt_test.h"

#define REFERENCE XT_FIXTURE_DIR "/trace/noise_reference.json"

static cJSON *load_reference(void)
{
    char *text;
    size_t n;
    if (xt_read_file(REFERENCE, false, &text, &n, NULL)) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    return j;
}

static uint32_t u32_at(const cJSON *arr, int i)
{
    return (uint32_t)cJSON_GetArrayItem(arr, i)->valuedouble;
}

static uint32_t u32_of(const cJSON *obj, const char *key)
{
    return (uint32_t)cJSON_GetObjectItemCaseSensitive(obj, key)->valuedouble;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- Philox ---------------------------------------------------------------------------------- */

static void philox_should_match_random123_known_answers(void)
{
    static const uint32_t ctr0[4] = {0, 0, 0, 0}, key0[2] = {0, 0};
    static const uint32_t want0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    static const uint32_t ctr1[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    static const uint32_t key1[2] = {0xa4093822, 0x299f31d0};
    static const uint32_t want1[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    static const uint32_t ctr2[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
    static const uint32_t key2[2] = {0xffffffff, 0xffffffff};
    static const uint32_t want2[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    uint32_t out[4];
    xt_philox4x32_10(ctr0, key0, out);
    CHECK(!memcmp(out, want0, sizeof out));
    xt_philox4x32_10(ctr1, key1, out);
    CHECK(!memcmp(out, want1, sizeof out));
    xt_philox4x32_10(ctr2, key2, out);
    CHECK(!memcmp(out, want2, sizeof out));
    /* out may alias the counter */
    uint32_t inplace[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
    xt_philox4x32_10(inplace, key1, inplace);
    CHECK(!memcmp(inplace, want1, sizeof inplace));
}

static void philox_should_match_python_reference(void)
{
    cJSON *ref = load_reference();
    CHECK_MSG(ref != NULL, "cannot read %s", REFERENCE);
    if (!ref) return;
    const cJSON *kat = cJSON_GetObjectItemCaseSensitive(ref, "philox");
    CHECK(cJSON_GetArraySize(kat) >= 4);
    const cJSON *k;
    cJSON_ArrayForEach(k, kat)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(k, "ctr");
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(k, "key");
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(k, "out");
        uint32_t ctr[4], kk[2] = {u32_at(key, 0), u32_at(key, 1)}, out[4];
        for (int i = 0; i < 4; i++) ctr[i] = u32_at(c, i);
        xt_philox4x32_10(ctr, kk, out);
        for (int i = 0; i < 4; i++) CHECK(out[i] == u32_at(o, i));
    }
    cJSON_Delete(ref);
}

/* ---- noise ----------------------------------------------------------------------------------- */

static void noise_should_match_python_reference_bit_for_bit(void)
{
    cJSON *ref = load_reference();
    if (!ref) {
        CHECK_MSG(0, "cannot read %s", REFERENCE);
        return;
    }
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(ref, "noise");
    CHECK(cJSON_GetArraySize(cases) >= 6);
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        uint32_t n = u32_of(c, "n_embd");
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "bits_hex")->valuestring;
        CHECK(strlen(hex) == 8 * (size_t)n);
        float *v = malloc((n + 1) * sizeof *v);
        v[n] = 12345.0f; /* guard: nothing past n_embd is written */
        xt_noise_normals(u32_of(c, "seed"), u32_of(c, "case_id"), u32_of(c, "draw"),
                         u32_of(c, "position"), n,
                         cJSON_GetObjectItemCaseSensitive(c, "sigma")->valuedouble, v);
        uint32_t mismatches = 0;
        for (uint32_t d = 0; d < n; d++) {
            char word[9];
            memcpy(word, hex + 8 * d, 8);
            word[8] = '\0';
            uint32_t want = (uint32_t)strtoul(word, NULL, 16);
            if (float_bits(v[d]) != want && mismatches++ < 4)
                fprintf(stderr, "  n_embd %u dim %u: %08x, reference %08x\n", n, d,
                        float_bits(v[d]), want);
        }
        CHECK_MSG(mismatches == 0, "%u of %u values differ", mismatches, n);
        CHECK(v[n] == 12345.0f);
        free(v);
    }
    cJSON_Delete(ref);
}

static void noise_should_drop_the_surplus_of_the_last_group(void)
{
    float full[12], part[12];
    xt_noise_normals(3, 9, 1, 4, 12, 0.5, full);
    for (uint32_t n = 0; n <= 12; n++) {
        for (int i = 0; i < 12; i++) part[i] = -99.0f;
        xt_noise_normals(3, 9, 1, 4, n, 0.5, part);
        CHECK(!memcmp(part, full, n * sizeof *part));
        for (uint32_t i = n; i < 12; i++) CHECK(part[i] == -99.0f);
    }
}

static void noise_should_depend_on_every_coordinate(void)
{
    float base[8], other[8];
    xt_noise_normals(1, 2, 3, 4, 8, 1.0, base);
    const uint32_t variants[4][4] = {{9, 2, 3, 4}, {1, 9, 3, 4}, {1, 2, 9, 4}, {1, 2, 3, 9}};
    for (int k = 0; k < 4; k++) {
        xt_noise_normals(variants[k][0], variants[k][1], variants[k][2], variants[k][3], 8, 1.0,
                         other);
        CHECK(memcmp(base, other, sizeof base) != 0);
    }
    /* sigma scales the same standard normals */
    float scaled[8];
    xt_noise_normals(1, 2, 3, 4, 8, 2.0, scaled);
    for (int i = 0; i < 8; i++) CHECK(scaled[i] == 2.0f * base[i]);
}

static void noise_should_be_standard_normal(void)
{
    enum { N = 1 << 16 };
    float *v = malloc(N * sizeof *v);
    xt_noise_normals(0, 17, 0, 3, N, 1.0, v);
    double s = 0, s2 = 0, s4 = 0;
    uint32_t beyond2 = 0;
    for (int i = 0; i < N; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
        s4 += (double)v[i] * v[i] * v[i] * v[i];
        beyond2 += fabsf(v[i]) > 2.0f;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    /* Standard errors at N = 65536: mean 0.004, variance 0.0055, kurtosis 0.019; P(|z|>2) =
     * 0.0455 +- 0.0008. Bounds at about 5 standard errors. */
    CHECK_MSG(fabs(mean) < 0.02, "mean %g", mean);
    CHECK_MSG(fabs(var - 1) < 0.03, "variance %g", var);
    CHECK_MSG(fabs(s4 / N - 3) < 0.1, "fourth moment %g", s4 / N);
    CHECK_MSG(fabs((double)beyond2 / N - 0.0455) < 0.004, "P(|z| > 2) = %g",
              (double)beyond2 / N);
    free(v);
}

/* ---- streams --------------------------------------------------------------------------------- */

static void stream_should_match_python_reference(void)
{
    cJSON *ref = load_reference();
    if (!ref) {
        CHECK_MSG(0, "cannot read %s", REFERENCE);
        return;
    }
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(ref, "streams");
    CHECK(cJSON_GetArraySize(streams) >= 3);
    const cJSON *st;
    cJSON_ArrayForEach(st, streams)
    {
        uint32_t seed = u32_of(st, "seed"), stream = u32_of(st, "stream");
        xt_rng r;
        xt_rng_init(&r, seed, stream);
        const cJSON *u32 = cJSON_GetObjectItemCaseSensitive(st, "u32");
        for (int i = 0; i < cJSON_GetArraySize(u32); i++) CHECK(xt_rng_u32(&r) == u32_at(u32, i));

        xt_rng_init(&r, seed, stream);
        const cJSON *b;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(st, "below"))
        {
            uint32_t n = u32_of(b, "n");
            const cJSON *vals = cJSON_GetObjectItemCaseSensitive(b, "values");
            for (int i = 0; i < cJSON_GetArraySize(vals); i++) {
                uint32_t got = xt_rng_below(&r, n);
                CHECK_MSG(got == u32_at(vals, i), "below(%u) #%d: %u, reference %u", n, i, got,
                          u32_at(vals, i));
            }
        }

        xt_rng_init(&r, seed, stream);
        const cJSON *u;
        cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(st, "uniform"))
        {
            double got = xt_rng_uniform(&r);
            CHECK(got == u->valuedouble && got >= 0 && got < 1);
        }

        xt_rng_init(&r, seed, stream);
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(st, "shuffle");
        uint32_t n = (uint32_t)cJSON_GetArraySize(sh), v[64];
        CHECK(n <= 64);
        for (uint32_t i = 0; i < n; i++) v[i] = i;
        xt_shuffle_u32(v, n, &r);
        for (uint32_t i = 0; i < n; i++) CHECK(v[i] == u32_at(sh, (int)i));
        CHECK(xt_rng_u32(&r) == u32_of(st, "u32_after_shuffle"));
    }
    cJSON_Delete(ref);
}

/* Pearson's chi-square of `draws` values of below(n) against uniform. */
static double chi_square_below(uint32_t seed, uint32_t n, uint32_t draws)
{
    uint32_t *count = calloc(n, sizeof *count);
    xt_rng r;
    xt_rng_init(&r, seed, 77);
    for (uint32_t i = 0; i < draws; i++) count[xt_rng_below(&r, n)]++;
    double expect = (double)draws / n, chi2 = 0;
    for (uint32_t k = 0; k < n; k++) chi2 += (count[k] - expect) * (count[k] - expect) / expect;
    free(count);
    return chi2;
}

static void below_should_be_uniform(void)
{
    /* Critical values of chi-square at p = 0.001: df 2 -> 13.8, df 9 -> 27.9, df 99 -> 149.4,
     * df 999 -> 1143. Fixed seeds: a failure here is a bug, not bad luck. */
    CHECK(chi_square_below(1, 3, 300000) < 13.8);
    CHECK(chi_square_below(2, 10, 100000) < 27.9);
    CHECK(chi_square_below(3, 100, 200000) < 149.4);
    CHECK(chi_square_below(4, 1000, 1000000) < 1143.0);
}

static void below_should_stay_in_range(void)
{
    xt_rng r;
    xt_rng_init(&r, 5, 5);
    const uint32_t ns[] = {1, 2, 7, 0x80000001u, 0xC0000000u, 0xFFFFFFFFu};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        uint64_t sum = 0;
        for (int i = 0; i < 20000; i++) {
            uint32_t x = xt_rng_below(&r, ns[k]);
            CHECK(x < ns[k]);
            sum += x;
        }
        /* the mean of 20000 draws is within a few percent of (n-1)/2 */
        double mean = (double)sum / 20000, half = (ns[k] - 1) / 2.0;
        CHECK_MSG(fabs(mean - half) <= 0.03 * ns[k] + 0.02, "below(%u): mean %g", ns[k], mean);
    }
    xt_rng before = r;
    CHECK(xt_rng_below(&r, 0) == 0);
    CHECK(!memcmp(&before, &r, sizeof r)); /* below(0) draws nothing */
}

static void shuffle_should_be_a_permutation(void)
{
    enum { N = 1000 };
    uint32_t *v = malloc(N * sizeof *v);
    unsigned char *seen = calloc(N, 1);
    xt_rng r;
    xt_rng_init(&r, 0, 0);
    for (uint32_t n = 0; n <= N; n = n ? n * 10 : 1) {
        for (uint32_t i = 0; i < n; i++) v[i] = i;
        xt_shuffle_u32(v, n, &r);
        memset(seen, 0, N);
        uint32_t fixed = 0;
        for (uint32_t i = 0; i < n; i++) {
            CHECK(v[i] < n && !seen[v[i]]);
            if (v[i] < n) seen[v[i]] = 1;
            fixed += v[i] == i;
        }
        if (n == N) CHECK_MSG(fixed < 10, "%u fixed points", fixed); /* Poisson(1) */
    }
    /* Every ordering of 3 is reached, about equally often. */
    uint32_t orders[27] = {0};
    for (int t = 0; t < 60000; t++) {
        uint32_t w[3] = {0, 1, 2};
        xt_shuffle_u32(w, 3, &r);
        orders[w[0] * 9 + w[1] * 3 + w[2]]++;
    }
    uint32_t reached = 0;
    for (int k = 0; k < 27; k++)
        if (orders[k]) {
            reached++;
            CHECK_MSG(orders[k] > 9500 && orders[k] < 10500, "order %d: %u", k, orders[k]);
        }
    CHECK(reached == 6);
    free(v);
    free(seen);
}

static void stream_should_not_repeat_noise_words(void)
{
    /* Same key as a case's noise (seed, case_id): the counter's last word keeps them apart. */
    uint32_t noise_block[4];
    const uint32_t key[2] = {0, 42}, ctr[4] = {0, 0, 0, 0};
    xt_philox4x32_10(ctr, key, noise_block);
    xt_rng r;
    xt_rng_init(&r, 0, 42);
    uint32_t words[4];
    for (int i = 0; i < 4; i++) words[i] = xt_rng_u32(&r);
    CHECK(memcmp(words, noise_block, sizeof words) != 0);
    const uint32_t rng_ctr[4] = {0, 0, 0, 1};
    uint32_t want[4];
    xt_philox4x32_10(rng_ctr, key, want);
    CHECK(!memcmp(words, want, sizeof words));
}

static void uniform_should_cover_the_unit_interval(void)
{
    xt_rng r;
    xt_rng_init(&r, 8, 8);
    double lo = 1, hi = 0, s = 0;
    for (int i = 0; i < 100000; i++) {
        double u = xt_rng_uniform(&r);
        CHECK(u >= 0 && u < 1);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        s += u;
    }
    CHECK(lo < 1e-4 && hi > 1 - 1e-4);
    CHECK(fabs(s / 100000 - 0.5) < 0.005);
}

int main(void)
{
    RUN(philox_should_match_random123_known_answers);
    RUN(philox_should_match_python_reference);
    RUN(noise_should_match_python_reference_bit_for_bit);
    RUN(noise_should_drop_the_surplus_of_the_last_group);
    RUN(noise_should_depend_on_every_coordinate);
    RUN(noise_should_be_standard_normal);
    RUN(stream_should_match_python_reference);
    RUN(below_should_be_uniform);
    RUN(below_should_stay_in_range);
    RUN(shuffle_should_be_a_permutation);
    RUN(stream_should_not_repeat_noise_words);
    RUN(uniform_should_cover_the_unit_interval);
    return xt_test_finish();
}
