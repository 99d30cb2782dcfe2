/* Dequantization and half conversions against the gguf Python package and numpy.
 *
 * The fixtures in tests/fixtures/quant/ hold blocks and the oracle's fp32 output, written by
 * tests/reference/make_quant_fixtures.py (format described there). Each type must match bit for
 * bit: ggml's reference dequantizers and the package's numpy ones do the same fp32 operations in
 * the same order, and so do ours. The tolerance (|ours - oracle| <= 1e-6 * max(|oracle|,
 * FLT_MIN)) is checked and reported alongside, with per-type error figures printed as a table.
 */
#include <float.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expertrace/quant.h"
#include "quant_blocks.h"
#include "xt_test.h"

#define FIXTURE_HEADER_BYTES 24
#define REL_TOLERANCE 1e-6

/* ---- fixture files ------------------------------------------------------------------------- */

/* Whole file in memory; NULL (and a message on stderr) when it cannot be read. */
static uint8_t *read_file(const char *path, size_t *out_bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    uint8_t *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) fprintf(stderr, "cannot read %s\n", path);
    *out_bytes = buf ? (size_t)size : 0;
    return buf;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct quant_fixture {
    uint8_t *file;              /* whole file; blocks and oracle point into it */
    uint32_t type;
    uint64_t n;                 /* elements */
    uint32_t n_section[3];      /* quantized by the package, random blocks, special inputs */
    const uint8_t *blocks;      /* (blocks_bytes) packed blocks */
    uint64_t blocks_bytes;
    float *oracle;              /* (n) the package's dequantization, copied out (alignment) */
} quant_fixture;

static void fixture_free(quant_fixture *fx)
{
    free(fx->file);
    free(fx->oracle);
    memset(fx, 0, sizeof *fx);
}

/* Loads tests/fixtures/quant/<name>.bin and checks that its header and size agree. */
static int fixture_load(const char *name, uint32_t type, quant_fixture *fx)
{
    memset(fx, 0, sizeof *fx);
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/%s.bin", XT_FIXTURE_DIR, name);
    size_t bytes;
    fx->file = read_file(path, &bytes);
    if (!fx->file) return 0;
    const uint8_t *h = fx->file;
    if (bytes < FIXTURE_HEADER_BYTES || memcmp(h, "XTQ1", 4) != 0 || le32(h + 4) != type) {
        fprintf(stderr, "%s: not a fixture of type %" PRIu32 "\n", path, type);
        fixture_free(fx);
        return 0;
    }
    fx->type = type;
    for (int i = 0; i < 3; i++) {
        fx->n_section[i] = le32(h + 8 + 4 * i);
        fx->n += fx->n_section[i];
    }
    xt_error err = {0};
    if (xt_type_nbytes(type, fx->n, &fx->blocks_bytes, &err) != XT_OK ||
        bytes != FIXTURE_HEADER_BYTES + fx->blocks_bytes + 4 * fx->n) {
        fprintf(stderr, "%s: size %zu does not fit %" PRIu64 " elements (%s)\n", path, bytes, fx->n,
                err.msg);
        fixture_free(fx);
        return 0;
    }
    fx->blocks = h + FIXTURE_HEADER_BYTES;
    fx->oracle = malloc(4 * fx->n);
    if (!fx->oracle) {
        fixture_free(fx);
        return 0;
    }
    memcpy(fx->oracle, fx->blocks + fx->blocks_bytes, 4 * fx->n);
    return 1;
}

/* ---- comparison and the error table --------------------------------------------------------- */

typedef struct error_row {
    const char *name;
    uint64_t n;
    uint32_t n_section[3];
    double max_abs, max_rel;
    uint64_t bit_diffs;   /* elements whose fp32 bit patterns differ */
    uint64_t nan_diffs;   /* NaN on one side only */
} error_row;

static error_row error_rows[32];
static int n_error_rows;

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static error_row compare(const char *name, const float *ours, const float *oracle, uint64_t n)
{
    error_row r = {.name = name, .n = n};
    for (uint64_t i = 0; i < n; i++) {
        if (float_bits(ours[i]) == float_bits(oracle[i])) continue;
        r.bit_diffs++;
        if (isnan(ours[i]) || isnan(oracle[i])) {
            /* both NaN with different payloads counts as a bit difference only */
            if (!(isnan(ours[i]) && isnan(oracle[i]))) r.nan_diffs++;
            continue;
        }
        double abs_err = fabs((double)ours[i] - (double)oracle[i]);
        double rel_err = abs_err / fmax(fabs((double)oracle[i]), (double)FLT_MIN);
        if (abs_err > r.max_abs) r.max_abs = abs_err;
        if (rel_err > r.max_rel) r.max_rel = rel_err;
        if (r.bit_diffs <= 3)
            fprintf(stderr, "  %s[%" PRIu64 "]: ours %.9g (0x%08" PRIx32 "),"
                    " oracle %.9g (0x%08" PRIx32 ")\n",
                    name, i, ours[i], float_bits(ours[i]), oracle[i], float_bits(oracle[i]));
    }
    return r;
}

static void record(const error_row *r)
{
    if (n_error_rows < (int)(sizeof error_rows / sizeof error_rows[0]))
        error_rows[n_error_rows++] = *r;
}

static void print_error_table(void)
{
    printf("\nDequantization vs the gguf package's dequantize (oracle), per type:\n");
    printf("%-13s %9s %27s %12s %12s %9s\n", "type", "elements", "quantized / random / special",
           "max abs", "max rel", "bit diffs");
    for (int i = 0; i < n_error_rows; i++) {
        const error_row *r = &error_rows[i];
        printf("%-13s %9" PRIu64 " %9" PRIu32 " / %6" PRIu32 " / %6" PRIu32 " %12.3g %12.3g"
               " %9" PRIu64 "\n",
               r->name, r->n, r->n_section[0], r->n_section[1], r->n_section[2], r->max_abs,
               r->max_rel, r->bit_diffs);
    }
    printf("\n");
}

/* Dequantizes a fixture with xt_dequantize and compares; bitwise demands every bit to match
 * (the float types), otherwise the relative tolerance applies and bit differences are
 * still reported. Both must hold for the test to pass: see the comment at the top. */
static void check_fixture(const char *name, uint32_t type)
{
    quant_fixture fx;
    CHECK_MSG(fixture_load(name, type, &fx), "fixture %s", name);
    if (!fx.file) return;
    CHECK_MSG(fx.n > 0, "%s: empty fixture", name);
    float *out = malloc(4 * fx.n + 4);
    CHECK(out != NULL);
    if (!out) {
        fixture_free(&fx);
        return;
    }
    const float canary = -12345.0f;
    out[fx.n] = canary;
    xt_error err = {0};
    xt_status s = xt_dequantize(type, fx.blocks, fx.blocks_bytes, out, fx.n, &err);
    CHECK_MSG(s == XT_OK, "%s: %s", name, err.msg);
    CHECK_MSG(out[fx.n] == canary, "%s: wrote past the end of the output", name);
    if (s == XT_OK) {
        error_row r = compare(name, out, fx.oracle, fx.n);
        memcpy(r.n_section, fx.n_section, sizeof r.n_section);
        record(&r);
        CHECK_MSG(r.nan_diffs == 0, "%s: %" PRIu64 " NaN mismatches", name, r.nan_diffs);
        CHECK_MSG(r.max_rel <= REL_TOLERANCE, "%s: max relative error %g", name, r.max_rel);
        CHECK_MSG(r.bit_diffs == 0, "%s: %" PRIu64 " of %" PRIu64 " elements differ in their bits",
                  name, r.bit_diffs, fx.n);
    }
    free(out);
    fixture_free(&fx);
}

/* ---- dequantization against the oracle ---------------------------------------------------- */

static void dequantize_f32_should_match_gguf_package(void)
{
    check_fixture("f32", XT_TYPE_F32);
}

static void dequantize_f16_should_match_gguf_package_for_every_half(void)
{
    check_fixture("f16", XT_TYPE_F16);
}

static void dequantize_bf16_should_match_gguf_package_for_every_bf16(void)
{
    check_fixture("bf16", XT_TYPE_BF16);
}

static void dequantize_q4_0_should_match_gguf_package(void)
{
    check_fixture("q4_0", XT_TYPE_Q4_0);
}

static void dequantize_q4_1_should_match_gguf_package(void)
{
    check_fixture("q4_1", XT_TYPE_Q4_1);
}

static void dequantize_q5_0_should_match_gguf_package(void)
{
    check_fixture("q5_0", XT_TYPE_Q5_0);
}

static void dequantize_q5_1_should_match_gguf_package(void)
{
    check_fixture("q5_1", XT_TYPE_Q5_1);
}

static void dequantize_q8_0_should_match_gguf_package(void)
{
    check_fixture("q8_0", XT_TYPE_Q8_0);
}

static void dequantize_q2_K_should_match_gguf_package(void)
{
    check_fixture("q2_K", XT_TYPE_Q2_K);
}

static void dequantize_q3_K_should_match_gguf_package(void)
{
    check_fixture("q3_K", XT_TYPE_Q3_K);
}

static void dequantize_q4_K_should_match_gguf_package(void)
{
    check_fixture("q4_K", XT_TYPE_Q4_K);
}

static void dequantize_q5_K_should_match_gguf_package(void)
{
    check_fixture("q5_K", XT_TYPE_Q5_K);
}

static void dequantize_q6_K_should_match_gguf_package(void)
{
    check_fixture("q6_K", XT_TYPE_Q6_K);
}

/* Tensor data in a mapped file starts at any offset once a block size is odd-sized: the same blocks
 * one byte off must give the same floats (and, under UBSan, no misaligned access). */
static void dequantize_should_accept_unaligned_source(void)
{
    static const struct {
        const char *name;
        uint32_t type;
    } cases[] = {{"q4_K", XT_TYPE_Q4_K}, {"q6_K", XT_TYPE_Q6_K}, {"q5_1", XT_TYPE_Q5_1},
                 {"f32", XT_TYPE_F32},   {"f16", XT_TYPE_F16}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        quant_fixture fx;
        if (!fixture_load(cases[c].name, cases[c].type, &fx)) {
            CHECK_MSG(0, "fixture %s", cases[c].name);
            continue;
        }
        uint8_t *shifted = malloc(fx.blocks_bytes + 1);
        float *out = malloc(4 * fx.n);
        CHECK(shifted && out);
        if (shifted && out) {
            memcpy(shifted + 1, fx.blocks, fx.blocks_bytes);
            xt_status s =
                xt_dequantize(cases[c].type, shifted + 1, fx.blocks_bytes, out, fx.n, NULL);
            CHECK_MSG(s == XT_OK, "%s", cases[c].name);
            CHECK_MSG(s == XT_OK && memcmp(out, fx.oracle, 4 * fx.n) == 0, "%s at offset 1",
                      cases[c].name);
        }
        free(shifted);
        free(out);
        fixture_free(&fx);
    }
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void dequantize_should_reject_unknown_type_by_number(void)
{
    const uint32_t unknown[] = {4, 5, 31, 33, 36, 38, XT_TYPE_COUNT, 1000, UINT32_MAX};
    uint8_t src[64] = {0};
    float dst[32];
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        xt_error err = {0};
        char number[16];
        snprintf(number, sizeof number, "%" PRIu32, unknown[i]);
        xt_status s = xt_dequantize(unknown[i], src, sizeof src, dst, 1, &err);
        CHECK_MSG(s == XT_ERR_UNSUPPORTED, "type %s gave %s", number, xt_status_to_string(s));
        CHECK_MSG(strstr(err.msg, number) != NULL, "message \"%s\" should name type %s", err.msg,
                  number);
        CHECK(xt_type_get_traits(unknown[i]) == NULL);
        CHECK(strcmp(xt_type_name(unknown[i]), "unknown") == 0);
    }
}

static void dequantize_should_reject_short_source(void)
{
    /* one Q4_K block is 144 bytes; 143 must be refused without touching dst */
    uint8_t src[2 * sizeof(xt_block_q4_K)] = {0};
    float dst[2 * XT_QK_K + 1];
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) dst[i] = 7.0f;
    xt_error err = {0};
    xt_status s = xt_dequantize(XT_TYPE_Q4_K, src, sizeof(xt_block_q4_K) - 1, dst, XT_QK_K, &err);
    CHECK(s == XT_ERR_FORMAT);
    CHECK_MSG(strstr(err.msg, "q4_K") && strstr(err.msg, "144") && strstr(err.msg, "143"),
              "message \"%s\" should name the type, the bytes needed and the bytes given", err.msg);
    /* two blocks asked for, one and a half given */
    s = xt_dequantize(XT_TYPE_Q4_K, src, sizeof src - 72, dst, 2 * XT_QK_K, &err);
    CHECK(s == XT_ERR_FORMAT);
    int untouched = 1;
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) untouched &= dst[i] == 7.0f;
    CHECK_MSG(untouched, "a refused call must not write the output");
    /* the exact size is enough */
    s = xt_dequantize(XT_TYPE_Q4_K, src, sizeof src, dst, 2 * XT_QK_K, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    CHECK(dst[2 * XT_QK_K] == 7.0f);
}

static void dequantize_should_reject_partial_block(void)
{
    uint8_t src[4 * sizeof(xt_block_q6_K)] = {0};
    float dst[4 * XT_QK_K];
    static const struct {
        uint32_t type;
        uint64_t n;
    } cases[] = {{XT_TYPE_Q4_0, 31}, {XT_TYPE_Q4_0, 33}, {XT_TYPE_Q8_0, 1},
                 {XT_TYPE_Q6_K, 255}, {XT_TYPE_Q2_K, 257}, {XT_TYPE_Q5_K, 32}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        xt_error err = {0};
        xt_status s = xt_dequantize(cases[i].type, src, sizeof src, dst, cases[i].n, &err);
        const xt_type_traits *tr = xt_type_get_traits(cases[i].type);
        CHECK_MSG(s == XT_ERR_FORMAT, "%s, %" PRIu64 " elements", tr->name, cases[i].n);
        CHECK_MSG(strstr(err.msg, tr->name) && strstr(err.msg, "whole number"),
                  "message \"%s\" should name %s and the block rule", err.msg, tr->name);
    }
}

static void dequantize_should_report_iq_types_as_unsupported_by_name(void)
{
    static const struct {
        uint32_t type;
        const char *name;
    } later[] = {{XT_TYPE_IQ2_XXS, "iq2_xxs"}, {XT_TYPE_IQ2_XS, "iq2_xs"},
                 {XT_TYPE_IQ3_XXS, "iq3_xxs"}, {XT_TYPE_IQ1_S, "iq1_s"},
                 {XT_TYPE_IQ4_NL, "iq4_nl"},   {XT_TYPE_IQ3_S, "iq3_s"},
                 {XT_TYPE_IQ2_S, "iq2_s"},     {XT_TYPE_IQ4_XS, "iq4_xs"},
                 {XT_TYPE_IQ1_M, "iq1_m"},     {XT_TYPE_TQ1_0, "tq1_0"},
                 {XT_TYPE_TQ2_0, "tq2_0"},     {XT_TYPE_MXFP4, "mxfp4"},
                 {XT_TYPE_Q8_K, "q8_K"}};
    static uint8_t src[4096];
    static float dst[256];
    for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
        const xt_type_traits *tr = xt_type_get_traits(later[i].type);
        CHECK_MSG(tr && strcmp(tr->name, later[i].name) == 0, "%s", later[i].name);
        if (!tr) continue;
        xt_error err = {0};
        xt_status s = xt_dequantize(later[i].type, src, sizeof src, dst, tr->block_size, &err);
        CHECK_MSG(s == XT_ERR_UNSUPPORTED, "%s gave %s", later[i].name, xt_status_to_string(s));
        CHECK_MSG(strstr(err.msg, later[i].name) != NULL, "message \"%s\" should name %s", err.msg,
                  later[i].name);
    }
}

static void dequantize_should_accept_zero_elements(void)
{
    float dst[1] = {3.0f};
    uint8_t src[1] = {0};
    CHECK(xt_dequantize(XT_TYPE_Q4_K, src, 0, dst, 0, NULL) == XT_OK);
    CHECK(xt_dequantize(XT_TYPE_F32, NULL, 0, dst, 0, NULL) == XT_OK);
    CHECK(dst[0] == 3.0f);
}

static void type_nbytes_should_reject_sizes_that_overflow(void)
{
    uint64_t bytes = 0;
    xt_error err = {0};
    /* whole blocks whose byte count passes 2^64: 2^56 - 1 Q8_K blocks of 292 bytes, 2^62 floats */
    CHECK(xt_type_nbytes(XT_TYPE_Q8_K, UINT64_MAX - UINT64_MAX % XT_QK_K, &bytes, &err) ==
          XT_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "q8_K") != NULL, "%s", err.msg);
    CHECK(xt_type_nbytes(XT_TYPE_F32, UINT64_MAX / 4 + 1, &bytes, &err) == XT_ERR_RANGE);
    /* the largest that fits still does */
    CHECK(xt_type_nbytes(XT_TYPE_F32, UINT64_MAX / 4, &bytes, &err) == XT_OK &&
          bytes == UINT64_MAX / 4 * 4);
    CHECK(xt_type_nbytes(XT_TYPE_Q4_K, 1024, &bytes, &err) == XT_OK && bytes == 4 * 144);
}

/* ---- traits ---------------------------------------------------------------------------------- */

/* Every type of the gguf package's GGML_QUANT_SIZES, in our table with the same name and sizes. */
static void traits_should_match_gguf_package_sizes(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/type_sizes.txt", XT_FIXTURE_DIR);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    unsigned id, block_size, type_size;
    char name[32];
    int rows = 0;
    while (fscanf(f, "%u %31s %u %u", &id, name, &block_size, &type_size) == 4) {
        rows++;
        const xt_type_traits *tr = xt_type_get_traits(id);
        CHECK_MSG(tr != NULL, "type %u (%s) missing from the traits table", id, name);
        if (!tr) continue;
        CHECK_MSG(strcasecmp(tr->name, name) == 0, "type %u: ours %s, gguf %s", id, tr->name, name);
        CHECK_MSG(tr->block_size == block_size, "%s block size: ours %u, gguf %u", name,
                  (unsigned)tr->block_size, block_size);
        if (id == XT_TYPE_Q8_1) {
            /* gguf 0.19 lists Q8_1 as 40 bytes (an fp32 d and s); ggml's block_q8_1 holds two
             * fp16 (ggml-common.h: 2 * sizeof(ggml_half) + QK8_1 = 36), as our table does. */
            CHECK(tr->type_size == sizeof(xt_block_q8_1));
            continue;
        }
        CHECK_MSG(tr->type_size == type_size, "%s type size: ours %u, gguf %u", name,
                  (unsigned)tr->type_size, type_size);
    }
    fclose(f);
    CHECK_MSG(rows >= 30, "only %d types read from %s", rows, path);
    int ours = 0;
    for (uint32_t t = 0; t < XT_TYPE_COUNT; t++) ours += xt_type_get_traits(t) != NULL;
    CHECK_MSG(ours == rows, "our table has %d types, gguf %d", ours, rows);
}

static void traits_should_match_block_struct_sizes(void)
{
    static const struct {
        uint32_t type;
        size_t bytes;
        uint32_t elements;
    } blocks[] = {
        {XT_TYPE_Q4_0, sizeof(xt_block_q4_0), XT_QK4_0},
        {XT_TYPE_Q4_1, sizeof(xt_block_q4_1), XT_QK4_1},
        {XT_TYPE_Q5_0, sizeof(xt_block_q5_0), XT_QK5_0},
        {XT_TYPE_Q5_1, sizeof(xt_block_q5_1), XT_QK5_1},
        {XT_TYPE_Q8_0, sizeof(xt_block_q8_0), XT_QK8_0},
        {XT_TYPE_Q8_1, sizeof(xt_block_q8_1), XT_QK8_1},
        {XT_TYPE_Q2_K, sizeof(xt_block_q2_K), XT_QK_K},
        {XT_TYPE_Q3_K, sizeof(xt_block_q3_K), XT_QK_K},
        {XT_TYPE_Q4_K, sizeof(xt_block_q4_K), XT_QK_K},
        {XT_TYPE_Q5_K, sizeof(xt_block_q5_K), XT_QK_K},
        {XT_TYPE_Q6_K, sizeof(xt_block_q6_K), XT_QK_K},
        {XT_TYPE_Q8_K, sizeof(xt_block_q8_K), XT_QK_K},
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        const xt_type_traits *tr = xt_type_get_traits(blocks[i].type);
        CHECK(tr != NULL);
        if (!tr) continue;
        CHECK_MSG(tr->type_size == blocks[i].bytes, "%s", tr->name);
        CHECK_MSG(tr->block_size == blocks[i].elements, "%s", tr->name);
    }
    /* the types DESIGN.md §3 computes with, and only those and the float types, have to_float */
    const uint32_t computed[] = {XT_TYPE_F32,  XT_TYPE_F16,  XT_TYPE_BF16, XT_TYPE_Q4_0,
                                 XT_TYPE_Q4_1, XT_TYPE_Q5_0, XT_TYPE_Q5_1, XT_TYPE_Q8_0,
                                 XT_TYPE_Q2_K, XT_TYPE_Q3_K, XT_TYPE_Q4_K, XT_TYPE_Q5_K,
                                 XT_TYPE_Q6_K};
    int n_with = 0;
    for (uint32_t t = 0; t < XT_TYPE_COUNT; t++) {
        const xt_type_traits *tr = xt_type_get_traits(t);
        n_with += tr && tr->to_float;
    }
    for (size_t i = 0; i < sizeof computed / sizeof computed[0]; i++)
        CHECK_MSG(xt_type_get_traits(computed[i])->to_float != NULL, "%s",
                  xt_type_name(computed[i]));
    CHECK(n_with == (int)(sizeof computed / sizeof computed[0]));
}

/* ---- half conversions ---------------------------------------------------------------------- */

/* numpy's float16 -> float32 over all 65,536 patterns (the f16 fixture): exact, NaN payloads and
 * signalling NaNs kept as they are. */
static void fp16_to_fp32_should_match_numpy_for_every_half(void)
{
    quant_fixture fx;
    if (!fixture_load("f16", XT_TYPE_F16, &fx)) {
        CHECK_MSG(0, "fixture f16");
        return;
    }
    CHECK(fx.n == 65536);
    uint64_t diffs = 0;
    for (uint32_t i = 0; i < fx.n && fx.n == 65536; i++) {
        uint16_t h = (uint16_t)(fx.blocks[2 * i] | fx.blocks[2 * i + 1] << 8);
        CHECK(h == i);
        uint32_t ours = float_bits(xt_fp16_to_fp32(h)), numpy = float_bits(fx.oracle[i]);
        if (ours != numpy && diffs++ < 3)
            fprintf(stderr, "  half 0x%04x: ours 0x%08" PRIx32 ", numpy 0x%08" PRIx32 "\n", h, ours,
                    numpy);
    }
    CHECK_MSG(diffs == 0, "%" PRIu64 " halves convert differently from numpy", diffs);
    fixture_free(&fx);
}

static void fp32_to_fp16_should_round_like_numpy(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/quant/fp32_to_fp16.bin", XT_FIXTURE_DIR);
    size_t bytes;
    uint8_t *file = read_file(path, &bytes);
    CHECK_MSG(file != NULL, "%s", path);
    if (!file) return;
    uint32_t n = bytes >= 8 ? le32(file + 4) : 0;
    CHECK_MSG(bytes >= 8 && memcmp(file, "XTH1", 4) == 0 && bytes == 8 + 6 * (size_t)n && n > 1000,
              "%s: bad header or size", path);
    uint64_t diffs = 0, nan_inputs = 0, overflows = 0, subnormals = 0;
    if (bytes == 8 + 6 * (size_t)n) {
        const uint8_t *in = file + 8, *want = file + 8 + 4 * (size_t)n;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t bits = le32(in + 4 * i);
            float f;
            memcpy(&f, &bits, 4);
            uint16_t numpy = (uint16_t)(want[2 * i] | want[2 * i + 1] << 8);
            uint16_t ours = xt_fp32_to_fp16(f);
            nan_inputs += isnan(f);
            overflows += !isinf(f) && (numpy & 0x7fffu) == 0x7c00u;
            subnormals += (numpy & 0x7c00u) == 0 && (numpy & 0x3ffu) != 0;
            if (ours != numpy && diffs++ < 5)
                fprintf(stderr, "  0x%08" PRIx32 " (%.9g): ours 0x%04x, numpy 0x%04x\n", bits, f,
                        ours, numpy);
        }
        printf("fp32 -> fp16: %" PRIu32 " inputs (%" PRIu64 " NaN, %" PRIu64 " overflowing, "
               "%" PRIu64 " to subnormals), %" PRIu64 " differ from numpy\n",
               n, nan_inputs, overflows, subnormals, diffs);
    }
    /* the fixture must actually reach the hard cases, or this test proves little */
    CHECK(nan_inputs > 10 && overflows > 10 && subnormals > 100);
    CHECK_MSG(diffs == 0, "%" PRIu64 " of %" PRIu32 " conversions differ from numpy", diffs, n);
    free(file);
}

/* Payload-keeping conversions both ways make every half, NaNs included, survive a round trip. */
static void fp16_round_trip_should_preserve_every_half(void)
{
    int diffs = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t back = xt_fp32_to_fp16(xt_fp16_to_fp32((uint16_t)h));
        if (back != h && diffs++ < 3) fprintf(stderr, "  0x%04x -> 0x%04x\n", h, back);
    }
    CHECK_MSG(diffs == 0, "%d halves change on a round trip", diffs);
}

/* bf16 is the top half of an fp32: the conversion must be that and nothing else. */
static void bf16_to_fp32_should_be_the_high_half_of_fp32(void)
{
    int diffs = 0;
    for (uint32_t h = 0; h < 65536; h++)
        diffs += float_bits(xt_bf16_to_fp32((uint16_t)h)) != h << 16;
    CHECK(diffs == 0);
}

int main(void)
{
    RUN(dequantize_f32_should_match_gguf_package);
    RUN(dequantize_f16_should_match_gguf_package_for_every_half);
    RUN(dequantize_bf16_should_match_gguf_package_for_every_bf16);
    RUN(dequantize_q4_0_should_match_gguf_package);
    RUN(dequantize_q4_1_should_match_gguf_package);
    RUN(dequantize_q5_0_should_match_gguf_package);
    RUN(dequantize_q5_1_should_match_gguf_package);
    RUN(dequantize_q8_0_should_match_gguf_package);
    RUN(dequantize_q2_K_should_match_gguf_package);
    RUN(dequantize_q3_K_should_match_gguf_package);
    RUN(dequantize_q4_K_should_match_gguf_package);
    RUN(dequantize_q5_K_should_match_gguf_package);
    RUN(dequantize_q6_K_should_match_gguf_package);
    RUN(dequantize_should_accept_unaligned_source);
    RUN(dequantize_should_reject_unknown_type_by_number);
    RUN(dequantize_should_reject_short_source);
    RUN(dequantize_should_reject_partial_block);
    RUN(dequantize_should_report_iq_types_as_unsupported_by_name);
    RUN(dequantize_should_accept_zero_elements);
    RUN(type_nbytes_should_reject_sizes_that_overflow);
    RUN(traits_should_match_gguf_package_sizes);
    RUN(traits_should_match_block_struct_sizes);
    RUN(fp16_to_fp32_should_match_numpy_for_every_half);
    RUN(fp32_to_fp16_should_round_like_numpy);
    RUN(fp16_round_trip_should_preserve_every_half);
    RUN(bf16_to_fp32_should_be_the_high_half_of_fp32);
    print_error_table();
    return xt_test_finish();
}
