/* The attention family's GPU ops (op_attn.h) against their CPU references (ref_attn.h): RMSNorm,
 * RoPE, the K/V store, causal GQA attention with prefill and wavefront rows, residual and bias
 * add. Every op over rows 1, 2, 7, 33, 130 and widths that are not multiples of the workgroup
 * size, in normal and feature-floor mode; batch invariance and determinism bit for bit; guard
 * words before and after every buffer untouched; no validation messages. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "expertrace/quant.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "op_attn.h"
#include "ref_attn.h"
#include "xt_test.h"

static xt_vk_context *vk;
static xt_kernels *kern;
static const char *level = "all"; /* feature level of the current pass, for messages */

static const uint32_t row_counts[] = {1, 2, 7, 33, 130};
#define N_ROW_COUNTS (sizeof row_counts / sizeof row_counts[0])

/* ---- helpers ---------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / (float)(1 << 23) - 1.0f;
}
static float *frand_array(size_t n, float scale)
{
    float *a = malloc((n ? n : 1) * sizeof *a);
    for (size_t i = 0; i < n; i++) a[i] = frand() * scale;
    return a;
}

/* A device buffer holding `bytes` of data at byte offset LEAD, with guard words before and after
 * (GUARD_WORDS of SENTINEL each side) that no op may touch. */
enum { LEAD = 4 * 4, GUARD_WORDS = 16 };
#define SENTINEL 0x7fc0dead /* a NaN pattern: guard words read back as data would show */
typedef struct dbuf {
    xt_buffer buf;
    size_t bytes;
} dbuf;

static dbuf dnew(const void *data, size_t bytes)
{
    dbuf d = {.bytes = bytes};
    size_t total = LEAD + bytes + GUARD_WORDS * 4;
    uint32_t *host = malloc(total);
    for (size_t i = 0; i < total / 4; i++) host[i] = SENTINEL;
    if (data) memcpy((uint8_t *)host + LEAD, data, bytes);
    xt_error err = {0};
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = total, .label = "test"}, &d.buf,
                           &err) == XT_OK);
    CHECK(xt_buffer_upload(vk, &d.buf, 0, host, total, &err) == XT_OK);
    free(host);
    return d;
}

static void dget(const dbuf *d, void *out)
{
    xt_error err = {0};
    CHECK(xt_buffer_download(vk, &d->buf, LEAD, out, d->bytes, &err) == XT_OK);
}

/* True when every guard word is still SENTINEL. */
static bool dguards_intact(const dbuf *d)
{
    size_t total = LEAD + d->bytes + GUARD_WORDS * 4;
    uint32_t *host = malloc(total);
    xt_error err = {0};
    CHECK(xt_buffer_download(vk, &d->buf, 0, host, total, &err) == XT_OK);
    bool ok = true;
    for (size_t i = 0; i < LEAD / 4; i++) ok = ok && host[i] == SENTINEL;
    for (size_t i = (LEAD + d->bytes) / 4; i < total / 4; i++) ok = ok && host[i] == SENTINEL;
    free(host);
    return ok;
}

static void dfree(dbuf *d)
{
    xt_buffer_destroy(vk, &d->buf);
}

/* One recording with one op, submitted and waited for. */
typedef xt_status (*record_fn)(xt_cmd *cmd, const void *desc, xt_error *err);
static xt_status run_op(record_fn fn, const void *desc)
{
    xt_error err = {0};
    xt_cmd *cmd = NULL;
    xt_status st = xt_cmd_create(vk, &cmd, &err);
    if (!st) st = xt_cmd_begin(cmd, &err);
    if (!st) st = fn(cmd, desc, &err);
    if (!st) st = xt_cmd_submit_wait(cmd, &err);
    if (st) fprintf(stderr, "op failed: %s\n", err.msg);
    xt_cmd_destroy(cmd);
    return st;
}
static xt_status rec_rms_norm(xt_cmd *c, const void *d, xt_error *e)
{
    return xt_op_rms_norm(kern, c, d, e);
}
static xt_status rec_rope(xt_cmd *c, const void *d, xt_error *e)
{
    return xt_op_rope(kern, c, d, e);
}
static xt_status rec_kv_store(xt_cmd *c, const void *d, xt_error *e)
{
    return xt_op_kv_store(kern, c, d, e);
}
static xt_status rec_attention(xt_cmd *c, const void *d, xt_error *e)
{
    return xt_op_attention(kern, c, d, e);
}
static xt_status rec_add(xt_cmd *c, const void *d, xt_error *e)
{
    return xt_op_add(kern, c, d, e);
}

/* ---- GPU runs of each op on host arrays ------------------------------------------------------ */

/* y = rms_norm(x) * w on the GPU; in_place writes into x's buffer. Returns guards intact. */
static bool gpu_rms_norm(const float *x, const float *w, float *y, uint32_t n_rows,
                         uint32_t n_cols, float eps, bool in_place)
{
    size_t n = (size_t)n_rows * n_cols;
    dbuf bx = dnew(x, n * 4), bw = dnew(w, n_cols * 4), by = {0};
    if (!in_place) by = dnew(NULL, n * 4);
    const dbuf *out = in_place ? &bx : &by;
    xt_rms_norm_desc d = {.x = &bx.buf, .x_offset = LEAD, .w = &bw.buf, .w_offset = LEAD,
                          .y = &out->buf, .y_offset = LEAD, .n_rows = n_rows, .n_cols = n_cols,
                          .eps = eps};
    CHECK(run_op(rec_rms_norm, &d) == XT_OK);
    dget(out, y);
    bool ok = dguards_intact(&bx) && dguards_intact(&bw) && (in_place || dguards_intact(&by));
    dfree(&bx), dfree(&bw);
    if (!in_place) dfree(&by);
    return ok;
}

static bool gpu_rope(const float *x, const uint32_t *pos, float *y, uint32_t n_rows,
                     uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, float base,
                     xt_rope_mode mode, bool in_place)
{
    size_t n = (size_t)n_rows * n_heads * head_dim;
    dbuf bx = dnew(x, n * 4), bp = dnew(pos, n_rows * 4), by = {0};
    if (!in_place) by = dnew(NULL, n * 4);
    const dbuf *out = in_place ? &bx : &by;
    xt_rope_desc d = {.x = &bx.buf, .x_offset = LEAD, .pos = &bp.buf, .pos_offset = LEAD,
                      .y = &out->buf, .y_offset = LEAD, .n_rows = n_rows, .n_heads = n_heads,
                      .head_dim = head_dim, .n_rot = n_rot, .freq_base = base, .mode = mode};
    CHECK(run_op(rec_rope, &d) == XT_OK);
    dget(out, y);
    bool ok = dguards_intact(&bx) && dguards_intact(&bp) && (in_place || dguards_intact(&by));
    dfree(&bx), dfree(&bp);
    if (!in_place) dfree(&by);
    return ok;
}

/* y = a + b (bias: b one row); in_place writes into a's buffer. */
static bool gpu_add(const float *a, const float *b, float *y, uint32_t n_rows, uint32_t n_cols,
                    bool bias, bool in_place)
{
    size_t n = (size_t)n_rows * n_cols;
    dbuf ba = dnew(a, n * 4), bb = dnew(b, (bias ? n_cols : n) * 4), by = {0};
    if (!in_place) by = dnew(NULL, n * 4);
    const dbuf *out = in_place ? &ba : &by;
    xt_add_desc d = {.a = &ba.buf, .a_offset = LEAD, .b = &bb.buf, .b_offset = LEAD,
                     .y = &out->buf, .y_offset = LEAD, .n_rows = n_rows, .n_cols = n_cols,
                     .bias = bias};
    CHECK(run_op(rec_add, &d) == XT_OK);
    dget(out, y);
    bool ok = dguards_intact(&ba) && dguards_intact(&bb) && (in_place || dguards_intact(&by));
    dfree(&ba), dfree(&bb);
    if (!in_place) dfree(&by);
    return ok;
}

/* An attention problem: a cache and a batch of rows. */
typedef struct attn_case {
    uint32_t n_head, n_kv_head, head_dim, n_slots, n_rows;
    float *q;            /* [n_rows][n_head][head_dim] */
    float *k_cache;      /* [n_slots][n_kv_head][head_dim] */
    float *v_cache;      /* likewise */
    xt_attn_row *rows;   /* [n_rows] */
} attn_case;

static bool gpu_attention(const attn_case *c, float *out)
{
    size_t nq = (size_t)c->n_rows * c->n_head * c->head_dim;
    size_t nc = (size_t)c->n_slots * c->n_kv_head * c->head_dim;
    dbuf bq = dnew(c->q, nq * 4), brows = dnew(c->rows, c->n_rows * sizeof(xt_attn_row)),
         bo = dnew(NULL, nq * 4);
    /* caches are bound from offset 0: guard words after them only */
    xt_buffer kc, vc;
    xt_error err = {0};
    size_t cache_bytes = nc * 4 + GUARD_WORDS * 4;
    uint32_t *host = malloc(cache_bytes);
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = cache_bytes}, &kc, &err) == XT_OK);
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = cache_bytes}, &vc, &err) == XT_OK);
    for (size_t i = nc; i < cache_bytes / 4; i++) host[i] = SENTINEL;
    memcpy(host, c->k_cache, nc * 4);
    CHECK(xt_buffer_upload(vk, &kc, 0, host, cache_bytes, &err) == XT_OK);
    memcpy(host, c->v_cache, nc * 4);
    CHECK(xt_buffer_upload(vk, &vc, 0, host, cache_bytes, &err) == XT_OK);
    xt_attention_desc d = {.q = &bq.buf, .q_offset = LEAD, .k_cache = &kc, .v_cache = &vc,
                           .rows = &brows.buf, .rows_offset = LEAD, .out = &bo.buf,
                           .out_offset = LEAD, .n_rows = c->n_rows, .n_head = c->n_head,
                           .n_kv_head = c->n_kv_head, .head_dim = c->head_dim,
                           .n_slots = c->n_slots};
    CHECK(run_op(rec_attention, &d) == XT_OK);
    dget(&bo, out);
    bool ok = dguards_intact(&bq) && dguards_intact(&brows) && dguards_intact(&bo);
    free(host);
    xt_buffer_destroy(vk, &kc), xt_buffer_destroy(vk, &vc);
    dfree(&bq), dfree(&brows), dfree(&bo);
    return ok;
}

static void ref_attention(const attn_case *c, float *out)
{
    xt_ref_attention(c->q, c->k_cache, c->v_cache, c->rows, out, c->n_rows, c->n_head,
                     c->n_kv_head, c->head_dim, c->n_slots, 1.0f / sqrtf((float)c->head_dim));
}

/* ---- RMSNorm ----------------------------------------------------------------------------------- */

static double worst_rms_nmse;

static void rms_norm_should_match_cpu_over_rows_and_widths(void)
{
    /* widths: odd ones, qwen3's per-head q/k norm (head_dim 128), olmoe's whole-projection q/k
     * norm (n_head * head_dim = 16 * 128), a hidden size (2048) */
    static const uint32_t widths[] = {1, 7, 100, 128, 333, 2048};
    for (size_t ri = 0; ri < N_ROW_COUNTS; ri++) {
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            uint32_t rows = row_counts[ri], cols = widths[wi];
            if ((size_t)rows * cols > 130 * 1024 && cols != 2048) continue;
            size_t n = (size_t)rows * cols;
            float *x = frand_array(n, 3.0f), *w = frand_array(cols, 1.0f);
            float *ref = malloc(n * 4), *got = malloc(n * 4);
            xt_ref_rms_norm(x, w, ref, rows, cols, 1e-6f);
            CHECK_MSG(gpu_rms_norm(x, w, got, rows, cols, 1e-6f, false), "guards %u x %u", rows,
                      cols);
            double e = xt_nmse(got, ref, n);
            if (e > worst_rms_nmse) worst_rms_nmse = e;
            CHECK_MSG(e <= 1e-7, "[%s] rows %u width %u: nmse %g", level, rows, cols, e);
            free(x), free(w), free(ref), free(got);
        }
    }
    printf("     rms_norm worst NMSE %.3g (%s)\n", worst_rms_nmse, level);
}

static void rms_norm_should_work_in_place_and_with_an_f32_tensor_weight(void)
{
    uint32_t rows = 7 * 32, cols = 128; /* qwen3 q norm: 7 tokens x 32 heads, per head */
    size_t n = (size_t)rows * cols;
    float *x = frand_array(n, 2.0f), *w = frand_array(cols, 1.0f);
    float *ref = malloc(n * 4), *got = malloc(n * 4), *got2 = malloc(n * 4);
    xt_ref_rms_norm(x, w, ref, rows, cols, 1e-5f);
    CHECK(gpu_rms_norm(x, w, got, rows, cols, 1e-5f, true));
    CHECK(xt_nmse(got, ref, n) <= 1e-7);

    /* the same through an F32 dtensor (a GGUF norm weight) */
    xt_error err = {0};
    xt_dtensor wt;
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "blk.0.attn_q_norm.weight",
                                                   .type = XT_TYPE_F32, .ne = {cols},
                                                   .data = w, .data_bytes = cols * 4},
                            &wt, &err) == XT_OK);
    dbuf bx = dnew(x, n * 4), by = dnew(NULL, n * 4);
    xt_rms_norm_desc d = {.x = &bx.buf, .x_offset = LEAD, .w_tensor = &wt, .y = &by.buf,
                          .y_offset = LEAD, .n_rows = rows, .n_cols = cols, .eps = 1e-5f};
    CHECK(run_op(rec_rms_norm, &d) == XT_OK);
    dget(&by, got2);
    CHECK(memcmp(got, got2, n * 4) == 0);
    CHECK(dguards_intact(&by));

    /* a tensor of the wrong shape is refused, naming it */
    d.n_cols = cols - 1;
    xt_cmd *cmd;
    CHECK(xt_cmd_create(vk, &cmd, &err) == XT_OK && xt_cmd_begin(cmd, &err) == XT_OK);
    CHECK(xt_op_rms_norm(kern, cmd, &d, &err) == XT_ERR_TYPE);
    CHECK(strstr(err.msg, "attn_q_norm") != NULL);
    /* a range past the end of a buffer is refused, naming it */
    d.n_cols = cols;
    d.n_rows = rows + 1;
    CHECK(xt_op_rms_norm(kern, cmd, &d, &err) == XT_ERR_RANGE);
    CHECK(strstr(err.msg, "x needs") != NULL);
    CHECK(xt_cmd_submit_wait(cmd, &err) == XT_OK);
    xt_cmd_destroy(cmd);
    dfree(&bx), dfree(&by);
    xt_dtensor_destroy(vk, &wt);
    free(x), free(w), free(ref), free(got), free(got2);
}

/* ---- RoPE -------------------------------------------------------------------------------------- */

static void rope_should_match_cpu_in_norm_and_neox_modes(void)
{
    struct {
        uint32_t n_heads, head_dim, n_rot;
        float base;
    } shapes[] = {{3, 64, 64, 10000.0f}, {5, 128, 128, 1000000.0f}, {2, 64, 32, 10000.0f},
                  {1, 6, 4, 500.0f}};
    double worst = 0;
    for (int mode = 0; mode < 2; mode++) {
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            for (size_t ri = 0; ri < N_ROW_COUNTS; ri++) {
                uint32_t rows = row_counts[ri], nh = shapes[si].n_heads,
                         hd = shapes[si].head_dim, nr = shapes[si].n_rot;
                size_t n = (size_t)rows * nh * hd;
                float *x = frand_array(n, 2.0f), *ref = malloc(n * 4), *got = malloc(n * 4);
                uint32_t *pos = malloc(rows * 4);
                /* positions: 0, small, and long-context ones (up to 32767) */
                for (uint32_t r = 0; r < rows; r++)
                    pos[r] = r == 0 ? 0 : r < 4 ? r : (uint32_t)((frand() + 1.0f) * 16383.0f);
                xt_ref_rope(x, pos, ref, rows, nh, hd, nr, shapes[si].base, (xt_rope_mode)mode);
                CHECK(gpu_rope(x, pos, got, rows, nh, hd, nr, shapes[si].base,
                               (xt_rope_mode)mode, ri % 2 == 0));
                double e = xt_nmse(got, ref, n);
                if (e > worst) worst = e;
                CHECK_MSG(e <= 1e-7, "[%s] %s rows %u heads %u hd %u rot %u: nmse %g", level,
                          mode ? "neox" : "norm", rows, nh, hd, nr, e);
                /* dims past n_rot are copied bit for bit */
                for (size_t h = 0; h < (size_t)rows * nh; h++)
                    CHECK(memcmp(got + h * hd + nr, x + h * hd + nr, (hd - nr) * 4) == 0);
                free(x), free(ref), free(got), free(pos);
            }
        }
    }
    printf("     rope worst NMSE %.3g (%s)\n", worst, level);
}

/* ---- add --------------------------------------------------------------------------------------- */

static void add_should_match_cpu_bitwise_for_residual_and_bias(void)
{
    static const uint32_t widths[] = {1, 129, 2048};
    for (size_t ri = 0; ri < N_ROW_COUNTS; ri++) {
        for (size_t wi = 0; wi < 3; wi++) {
            for (int bias = 0; bias < 2; bias++) {
                uint32_t rows = row_counts[ri], cols = widths[wi];
                size_t n = (size_t)rows * cols;
                float *a = frand_array(n, 5.0f), *b = frand_array(bias ? cols : n, 5.0f);
                float *ref = malloc(n * 4), *got = malloc(n * 4);
                xt_ref_add(a, b, ref, rows, cols, bias ? 0 : cols);
                CHECK(gpu_add(a, b, got, rows, cols, bias, wi == 1));
                CHECK_MSG(memcmp(got, ref, n * 4) == 0, "[%s] rows %u cols %u bias %d", level,
                          rows, cols, bias);
                free(a), free(b), free(ref), free(got);
            }
        }
    }
}

static void bias_add_should_take_an_f32_tensor(void)
{
    uint32_t rows = 33, cols = 2 * 128 + 3;
    size_t n = (size_t)rows * cols;
    float *a = frand_array(n, 1.0f), *b = frand_array(cols, 1.0f);
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    xt_ref_add(a, b, ref, rows, cols, 0);
    xt_error err = {0};
    xt_dtensor bt;
    CHECK(xt_dtensor_create(vk, &(xt_dtensor_desc){.name = "blk.0.attn_k.bias",
                                                   .type = XT_TYPE_F32, .ne = {cols},
                                                   .data = b, .data_bytes = cols * 4},
                            &bt, &err) == XT_OK);
    dbuf ba = dnew(a, n * 4);
    xt_add_desc d = {.a = &ba.buf, .a_offset = LEAD, .b_tensor = &bt, .y = &ba.buf,
                     .y_offset = LEAD, .n_rows = rows, .n_cols = cols};
    CHECK(run_op(rec_add, &d) == XT_OK);
    dget(&ba, got);
    CHECK(memcmp(got, ref, n * 4) == 0);
    CHECK(dguards_intact(&ba));
    dfree(&ba);
    xt_dtensor_destroy(vk, &bt);
    free(a), free(b), free(ref), free(got);
}

/* ---- K/V store --------------------------------------------------------------------------------- */

static void kv_store_should_write_rows_at_their_slots_only(void)
{
    uint32_t width = 4 * 64 + 0, n_slots = 300;
    for (size_t ri = 0; ri < N_ROW_COUNTS; ri++) {
        uint32_t rows = row_counts[ri];
        size_t n = (size_t)rows * width, nc = (size_t)n_slots * width;
        float *k = frand_array(n, 1.0f), *v = frand_array(n, 1.0f);
        uint32_t *slots = malloc(rows * 4);
        for (uint32_t r = 0; r < rows; r++) slots[r] = (r * 37 + 11) % n_slots; /* distinct */
        if (rows > 2) slots[1] = n_slots + 5; /* out of range: skipped */
        float *kc = malloc(nc * 4), *vc = malloc(nc * 4);
        uint32_t fill = SENTINEL;
        for (size_t i = 0; i < nc; i++) memcpy(&kc[i], &fill, 4), memcpy(&vc[i], &fill, 4);
        dbuf bk = dnew(k, n * 4), bv = dnew(v, n * 4), bs = dnew(slots, rows * 4);
        xt_buffer gk, gv;
        xt_error err = {0};
        size_t cache_bytes = nc * 4 + GUARD_WORDS * 4;
        uint32_t *host = malloc(cache_bytes);
        for (size_t i = 0; i < cache_bytes / 4; i++) host[i] = SENTINEL;
        CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = cache_bytes}, &gk, &err) ==
              XT_OK);
        CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = cache_bytes}, &gv, &err) ==
              XT_OK);
        CHECK(xt_buffer_upload(vk, &gk, 0, host, cache_bytes, &err) == XT_OK);
        CHECK(xt_buffer_upload(vk, &gv, 0, host, cache_bytes, &err) == XT_OK);
        xt_kv_store_desc d = {.k = &bk.buf, .v = &bv.buf, .k_offset = LEAD, .v_offset = LEAD,
                              .slots = &bs.buf, .slots_offset = LEAD, .k_cache = &gk,
                              .v_cache = &gv, .n_rows = rows, .width = width,
                              .n_slots = n_slots};
        CHECK(run_op(rec_kv_store, &d) == XT_OK);
        xt_ref_kv_store(k, v, slots, kc, vc, rows, width, n_slots);
        uint32_t *got = malloc(cache_bytes);
        CHECK(xt_buffer_download(vk, &gk, 0, got, cache_bytes, &err) == XT_OK);
        CHECK(memcmp(got, kc, nc * 4) == 0);
        for (size_t i = nc; i < cache_bytes / 4; i++) CHECK(got[i] == SENTINEL);
        CHECK(xt_buffer_download(vk, &gv, 0, got, cache_bytes, &err) == XT_OK);
        CHECK(memcmp(got, vc, nc * 4) == 0);
        for (size_t i = nc; i < cache_bytes / 4; i++) CHECK(got[i] == SENTINEL);
        xt_buffer_destroy(vk, &gk), xt_buffer_destroy(vk, &gv);
        dfree(&bk), dfree(&bv), dfree(&bs);
        free(k), free(v), free(slots), free(kc), free(vc), free(host), free(got);
    }
}

/* ---- attention --------------------------------------------------------------------------------- */

/* A cache of sequences of the given lengths laid out one after another from slot 0, and a batch
 * of n_rows rows: the prefill tokens of those sequences (taken round-robin over sequences so that
 * lengths mix in a batch), then wavefront rows with their own slots past the sequences. */
static attn_case make_attn_case(uint32_t n_head, uint32_t n_kv_head, uint32_t head_dim,
                                const uint32_t *lens, uint32_t n_seq, uint32_t n_rows)
{
    attn_case c = {.n_head = n_head, .n_kv_head = n_kv_head, .head_dim = head_dim,
                   .n_rows = n_rows};
    uint32_t total = 0;
    for (uint32_t s = 0; s < n_seq; s++) total += lens[s];
    c.n_slots = total + n_rows; /* room for every wavefront row's own entry */
    size_t kv = (size_t)c.n_slots * n_kv_head * head_dim;
    c.k_cache = frand_array(kv, 1.5f);
    c.v_cache = frand_array(kv, 1.0f);
    c.q = frand_array((size_t)n_rows * n_head * head_dim, 1.5f);
    c.rows = malloc(n_rows * sizeof *c.rows);
    uint32_t next_pos[16] = {0}, base[16] = {0};
    for (uint32_t s = 1; s < n_seq; s++) base[s] = base[s - 1] + lens[s - 1];
    for (uint32_t r = 0, s = 0; r < n_rows; r++, s = (s + 1) % n_seq) {
        if (r % 5 == 4 || next_pos[s] >= lens[s]) {
            /* a wavefront row against sequence s at some position p, own slot past the cache */
            uint32_t p = (r * 7919u) % lens[s];
            c.rows[r] = (xt_attn_row){base[s], p, total + r};
        } else {
            uint32_t p = next_pos[s]++;
            c.rows[r] = (xt_attn_row){base[s], p, base[s] + p};
        }
    }
    return c;
}

static void free_attn_case(attn_case *c)
{
    free(c->q), free(c->k_cache), free(c->v_cache), free(c->rows);
}

static void attention_should_match_cpu_with_mixed_lengths_and_gqa(void)
{
    static const uint32_t lens[] = {1, 9, 70, 40, 131};
    struct {
        uint32_t n_head, n_kv_head, head_dim;
    } shapes[] = {{3, 3, 64}, {8, 2, 128}, {8, 1, 64}, {4, 4, 128}};
    double worst = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        for (size_t ri = 0; ri < N_ROW_COUNTS; ri++) {
            attn_case c = make_attn_case(shapes[si].n_head, shapes[si].n_kv_head,
                                         shapes[si].head_dim, lens, 5, row_counts[ri]);
            size_t n = (size_t)c.n_rows * c.n_head * c.head_dim;
            float *ref = malloc(n * 4), *got = malloc(n * 4);
            ref_attention(&c, ref);
            CHECK(gpu_attention(&c, got));
            double e = xt_nmse(got, ref, n);
            if (e > worst) worst = e;
            CHECK_MSG(e <= 5e-4, "[%s] heads %u/%u hd %u rows %u: nmse %g", level, c.n_head,
                      c.n_kv_head, c.head_dim, c.n_rows, e);
            free(ref), free(got);
            free_attn_case(&c);
        }
    }
    printf("     attention worst NMSE %.3g (%s)\n", worst, level);
}

static void attention_should_handle_long_contexts(void)
{
    /* one sequence of 1500 keys; the rows are its last tokens and wavefront rows at the end */
    static const uint32_t lens[] = {1500};
    attn_case c = make_attn_case(4, 1, 128, lens, 1, 5);
    for (uint32_t r = 0; r < c.n_rows; r++)
        c.rows[r] = (xt_attn_row){0, 1499 - r, r % 2 ? 1500 + r : 1499 - r};
    size_t n = (size_t)c.n_rows * c.n_head * c.head_dim;
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    ref_attention(&c, ref);
    CHECK(gpu_attention(&c, got));
    double e = xt_nmse(got, ref, n);
    CHECK_MSG(e <= 5e-4, "[%s] 1500 keys: nmse %g", level, e);
    printf("     attention over 1500 keys NMSE %.3g (%s)\n", e, level);
    free(ref), free(got);
    free_attn_case(&c);
}

/* The key property (DESIGN.md §5): a wavefront row — the parent's prefix K/V plus its own fresh
 * K/V in a slot elsewhere — gives the same bits as the parent prefill's last token when its
 * inputs are the same, through RoPE, the K/V store and attention, whatever else is in either
 * batch. */
static void wavefront_row_should_equal_last_prefill_token_bitwise(void)
{
    const uint32_t n_head = 8, n_kv = 2, hd = 128, kvw = n_kv * hd, qw = n_head * hd;
    const uint32_t lens[] = {17, 70, 3}; /* 70: the last token's keys span two tiles */
    const uint32_t T = 17 + 70 + 3, n_slots = T + 64;
    float *q = frand_array((size_t)T * qw, 1.0f), *k = frand_array((size_t)T * kvw, 1.0f),
          *v = frand_array((size_t)T * kvw, 1.0f);
    uint32_t pos[90], slots[90];
    xt_attn_row rows[90];
    for (uint32_t s = 0, t = 0, b = 0; s < 3; b += lens[s], s++)
        for (uint32_t p = 0; p < lens[s]; p++, t++) {
            pos[t] = p, slots[t] = b + p;
            rows[t] = (xt_attn_row){b, p, b + p};
        }
    /* prefill: rope q and k, store k/v at the sequences' slots, attend */
    dbuf bq = dnew(q, (size_t)T * qw * 4), bk = dnew(k, (size_t)T * kvw * 4),
         bv = dnew(v, (size_t)T * kvw * 4), bpos = dnew(pos, T * 4), bsl = dnew(slots, T * 4),
         brows = dnew(rows, T * sizeof rows[0]), bo = dnew(NULL, (size_t)T * qw * 4);
    xt_buffer kc, vc;
    xt_error err = {0};
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = (size_t)n_slots * kvw * 4}, &kc,
                           &err) == XT_OK);
    CHECK(xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = (size_t)n_slots * kvw * 4}, &vc,
                           &err) == XT_OK);
    xt_cmd *cmd;
    CHECK(xt_cmd_create(vk, &cmd, &err) == XT_OK);

    /* records rope(q), rope(k), kv_store, attention for n rows starting at row 0 of the dbufs */
    float *prefill_out = malloc((size_t)T * qw * 4), *wave_out = malloc((size_t)64 * qw * 4);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t n = T;
        if (pass == 1) {
            /* 64 wavefront rows: row i patches sequence i % 3 at its final position, inputs
             * equal to that last token's, own K/V at slot T + i; the rest of the cache (the
             * parents' K/V) as the prefill left it */
            n = 64;
            float *wq = malloc((size_t)n * qw * 4), *wk = malloc((size_t)n * kvw * 4),
                  *wv = malloc((size_t)n * kvw * 4);
            uint32_t wpos[64], wslots[64];
            xt_attn_row wrows[64];
            for (uint32_t i = 0; i < n; i++) {
                uint32_t s = i % 3, b = s == 0 ? 0 : s == 1 ? 17 : 87, last = b + lens[s] - 1;
                memcpy(wq + (size_t)i * qw, q + (size_t)last * qw, qw * 4);
                memcpy(wk + (size_t)i * kvw, k + (size_t)last * kvw, kvw * 4);
                memcpy(wv + (size_t)i * kvw, v + (size_t)last * kvw, kvw * 4);
                wpos[i] = lens[s] - 1, wslots[i] = T + i;
                wrows[i] = (xt_attn_row){b, lens[s] - 1, T + i};
            }
            CHECK(xt_buffer_upload(vk, &bq.buf, LEAD, wq, (size_t)n * qw * 4, &err) == XT_OK);
            CHECK(xt_buffer_upload(vk, &bk.buf, LEAD, wk, (size_t)n * kvw * 4, &err) == XT_OK);
            CHECK(xt_buffer_upload(vk, &bv.buf, LEAD, wv, (size_t)n * kvw * 4, &err) == XT_OK);
            CHECK(xt_buffer_upload(vk, &bpos.buf, LEAD, wpos, n * 4, &err) == XT_OK);
            CHECK(xt_buffer_upload(vk, &bsl.buf, LEAD, wslots, n * 4, &err) == XT_OK);
            CHECK(xt_buffer_upload(vk, &brows.buf, LEAD, wrows, n * sizeof wrows[0], &err) ==
                  XT_OK);
            free(wq), free(wk), free(wv);
        }
        CHECK(xt_cmd_begin(cmd, &err) == XT_OK);
        CHECK(xt_op_rope(kern, cmd,
                         &(xt_rope_desc){.x = &bq.buf, .x_offset = LEAD, .pos = &bpos.buf,
                                         .pos_offset = LEAD, .y = &bq.buf, .y_offset = LEAD,
                                         .n_rows = n, .n_heads = n_head, .head_dim = hd,
                                         .freq_base = 1e6f, .mode = XT_ROPE_NEOX},
                         &err) == XT_OK);
        CHECK(xt_op_rope(kern, cmd,
                         &(xt_rope_desc){.x = &bk.buf, .x_offset = LEAD, .pos = &bpos.buf,
                                         .pos_offset = LEAD, .y = &bk.buf, .y_offset = LEAD,
                                         .n_rows = n, .n_heads = n_kv, .head_dim = hd,
                                         .freq_base = 1e6f, .mode = XT_ROPE_NEOX},
                         &err) == XT_OK);
        xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
        CHECK(xt_op_kv_store(kern, cmd,
                             &(xt_kv_store_desc){.k = &bk.buf, .k_offset = LEAD, .v = &bv.buf,
                                                 .v_offset = LEAD, .slots = &bsl.buf,
                                                 .slots_offset = LEAD, .k_cache = &kc,
                                                 .v_cache = &vc, .n_rows = n, .width = kvw,
                                                 .n_slots = n_slots},
                             &err) == XT_OK);
        xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
        CHECK(xt_op_attention(kern, cmd,
                              &(xt_attention_desc){.q = &bq.buf, .q_offset = LEAD,
                                                   .k_cache = &kc, .v_cache = &vc,
                                                   .rows = &brows.buf, .rows_offset = LEAD,
                                                   .out = &bo.buf, .out_offset = LEAD,
                                                   .n_rows = n, .n_head = n_head,
                                                   .n_kv_head = n_kv, .head_dim = hd,
                                                   .n_slots = n_slots},
                              &err) == XT_OK);
        CHECK(xt_cmd_submit_wait(cmd, &err) == XT_OK);
        CHECK(xt_buffer_download(vk, &bo.buf, LEAD, pass ? wave_out : prefill_out,
                                 (size_t)n * qw * 4, &err) == XT_OK);
    }
    int mismatches = 0;
    for (uint32_t i = 0; i < 64; i++) {
        uint32_t s = i % 3, last = (s == 0 ? 0 : s == 1 ? 17 : 87) + lens[s] - 1;
        if (memcmp(wave_out + (size_t)i * qw, prefill_out + (size_t)last * qw, qw * 4))
            mismatches++;
    }
    CHECK_MSG(mismatches == 0, "[%s] %d of 64 wavefront rows differ from their prefill", level,
              mismatches);
    CHECK(dguards_intact(&bo) && dguards_intact(&bq) && dguards_intact(&bk));
    xt_cmd_destroy(cmd);
    xt_buffer_destroy(vk, &kc), xt_buffer_destroy(vk, &vc);
    dfree(&bq), dfree(&bk), dfree(&bv), dfree(&bpos), dfree(&bsl), dfree(&brows), dfree(&bo);
    free(q), free(k), free(v), free(prefill_out), free(wave_out);
}

/* ---- batch invariance and determinism ------------------------------------------------------- */

static void ops_should_give_a_row_the_same_bits_alone_and_in_a_batch_of_64(void)
{
    const uint32_t B = 64, cols = 2048 + 5, nh = 4, hd = 128;
    /* rms_norm and add: each row alone vs in the batch */
    size_t n = (size_t)B * cols;
    float *x = frand_array(n, 2.0f), *w = frand_array(cols, 1.0f), *b = frand_array(n, 1.0f);
    float *batch = malloc(n * 4), *alone = malloc(cols * 4);
    CHECK(gpu_rms_norm(x, w, batch, B, cols, 1e-6f, false));
    for (uint32_t r = 0; r < B; r += 9) {
        CHECK(gpu_rms_norm(x + (size_t)r * cols, w, alone, 1, cols, 1e-6f, false));
        CHECK_MSG(memcmp(alone, batch + (size_t)r * cols, cols * 4) == 0, "rms_norm row %u", r);
    }
    CHECK(gpu_add(x, b, batch, B, cols, false, false));
    for (uint32_t r = 0; r < B; r += 9) {
        CHECK(gpu_add(x + (size_t)r * cols, b + (size_t)r * cols, alone, 1, cols, false, false));
        CHECK_MSG(memcmp(alone, batch + (size_t)r * cols, cols * 4) == 0, "add row %u", r);
    }
    /* rope */
    size_t nr = (size_t)B * nh * hd;
    uint32_t pos[64];
    for (uint32_t r = 0; r < B; r++) pos[r] = r * 31;
    float *rb = malloc(nr * 4), *ra = malloc(nh * hd * 4);
    CHECK(gpu_rope(x, pos, rb, B, nh, hd, hd, 1e6f, XT_ROPE_NEOX, false));
    for (uint32_t r = 0; r < B; r += 9) {
        CHECK(gpu_rope(x + (size_t)r * nh * hd, pos + r, ra, 1, nh, hd, hd, 1e6f, XT_ROPE_NEOX,
                       false));
        CHECK_MSG(memcmp(ra, rb + (size_t)r * nh * hd, nh * hd * 4) == 0, "rope row %u", r);
    }
    /* attention: 64 mixed rows vs each alone */
    static const uint32_t lens[] = {100, 30, 7};
    attn_case c = make_attn_case(8, 2, 128, lens, 3, B);
    size_t qw = (size_t)c.n_head * c.head_dim;
    float *ab = malloc(B * qw * 4), *aa = malloc(qw * 4);
    CHECK(gpu_attention(&c, ab));
    attn_case one = c;
    one.n_rows = 1;
    for (uint32_t r = 0; r < B; r += 7) {
        one.q = c.q + r * qw;
        one.rows = c.rows + r;
        CHECK(gpu_attention(&one, aa));
        CHECK_MSG(memcmp(aa, ab + r * qw, qw * 4) == 0, "[%s] attention row %u", level, r);
    }
    free_attn_case(&c);
    free(x), free(w), free(b), free(batch), free(alone), free(rb), free(ra), free(ab), free(aa);
}

static void ops_should_be_deterministic_run_after_run(void)
{
    static const uint32_t lens[] = {200, 33};
    attn_case c = make_attn_case(8, 1, 64, lens, 2, 130);
    size_t n = (size_t)c.n_rows * c.n_head * c.head_dim;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    CHECK(gpu_attention(&c, a));
    CHECK(gpu_attention(&c, b));
    CHECK(memcmp(a, b, n * 4) == 0);
    float *w = frand_array(c.head_dim, 1.0f);
    CHECK(gpu_rms_norm(c.q, w, a, c.n_rows * c.n_head, c.head_dim, 1e-6f, false));
    CHECK(gpu_rms_norm(c.q, w, b, c.n_rows * c.n_head, c.head_dim, 1e-6f, false));
    CHECK(memcmp(a, b, n * 4) == 0);
    free_attn_case(&c);
    free(a), free(b), free(w);
}

/* ---- driver ------------------------------------------------------------------------------------ */

static void run_all(void)
{
    RUN(rms_norm_should_match_cpu_over_rows_and_widths);
    RUN(rms_norm_should_work_in_place_and_with_an_f32_tensor_weight);
    RUN(rope_should_match_cpu_in_norm_and_neox_modes);
    RUN(add_should_match_cpu_bitwise_for_residual_and_bias);
    RUN(bias_add_should_take_an_f32_tensor);
    RUN(kv_store_should_write_rows_at_their_slots_only);
    RUN(attention_should_match_cpu_with_mixed_lengths_and_gqa);
    RUN(attention_should_handle_long_contexts);
    RUN(wavefront_row_should_equal_last_prefill_token_bitwise);
    RUN(ops_should_give_a_row_the_same_bits_alone_and_in_a_batch_of_64);
    RUN(ops_should_be_deterministic_run_after_run);
}

static void validation_layer_should_report_no_messages(void)
{
    uint32_t msgs = xt_vk_validation_messages_total();
    CHECK_MSG(msgs == 0, "%u validation messages", msgs);
}

int main(void)
{
    static const struct {
        xt_vk_feature_level features;
        const char *name;
    } levels[] = {{XT_VK_FEATURES_ALL, "all"}, {XT_VK_FEATURES_MIN, "floor"}};
    for (size_t i = 0; i < 2; i++) {
        xt_error err = {0};
        if (xt_vk_context_create(&(xt_vk_desc){.features = levels[i].features}, &vk, &err) ||
            xt_kernels_create(vk, &kern, &err)) {
            fprintf(stderr, "no Vulkan device: %s\n", err.msg);
            return 1;
        }
        level = levels[i].name;
        printf("-- feature level: %s\n", level);
        run_all();
        xt_kernels_destroy(kern);
        xt_vk_context_destroy(vk); /* leaked objects are reported at device destruction */
        kern = NULL, vk = NULL;
    }
    RUN(validation_layer_should_report_no_messages);
    return xt_test_finish();
}
