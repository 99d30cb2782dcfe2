/* The quantized-weight ops on the GPU (matmul, matmul_id, get_rows, logit_gather) against the CPU
 * reference (src/ref_matmul.c), for every weight type, in normal and feature-floor mode; plus
 * determinism, batch invariance, the bit-for-bit identities between the ops, bounds (guard words)
 * and a tensor larger than one storage binding. */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "push_matmul.h"
#include "expertrace/quant.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "op_matmul.h"
#include "ref_matmul.h"
#include "xt_test.h"

/* Two runs of everything: all features the device has, and the feature floor. */
typedef struct env {
    const char *name;
    xt_vk_context *vk;
    xt_kernels *k;
    xt_cmd *cmd;
} env;
static env envs[2];
static int n_envs;

static const uint32_t all_types[] = {
    XT_TYPE_F32,  XT_TYPE_F16,  XT_TYPE_BF16, XT_TYPE_Q4_0, XT_TYPE_Q4_1,
    XT_TYPE_Q5_0, XT_TYPE_Q5_1, XT_TYPE_Q8_0, XT_TYPE_Q2_K, XT_TYPE_Q3_K,
    XT_TYPE_Q4_K, XT_TYPE_Q5_K, XT_TYPE_Q6_K,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

static const uint32_t row_counts[] = {1, 2, 7, 33, 130};

#define GUARD 0xdeadbeefu
#define GUARD_WORDS 16

/* ---- data ----------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_float(void) /* uniform in [-1, 1) */
{
    return (float)((int32_t)(rng_next() >> 32)) * 0x1p-31f;
}
static uint32_t rng_below(uint32_t n)
{
    return (uint32_t)((rng_next() >> 32) % n);
}

/* A weight width for type t: a few blocks (k-quants: 2 super-blocks), not a multiple of the
 * 128-element staging step for the small-block types, odd for the float types. */
static uint32_t width_for(uint32_t t)
{
    uint32_t bs = xt_type_get_traits(t)->block_size;
    return bs == 1 ? 203 : bs == 32 ? 160 : 512;
}

static void put_f16(uint8_t *p, float f)
{
    uint16_t h = xt_fp32_to_fp16(f);
    memcpy(p, &h, 2);
}

/* Random packed rows of type t: random quant bits, and fp16 scales set to small normal values
 * (random bytes there would make infinities and NaNs). */
static uint8_t *random_weights(uint32_t t, uint32_t k, uint64_t rows, uint64_t *bytes_out)
{
    const xt_type_traits *tr = xt_type_get_traits(t);
    uint64_t row_bytes = (uint64_t)k / tr->block_size * tr->type_size;
    uint64_t bytes = row_bytes * rows;
    uint8_t *w = malloc(bytes + 8);
    for (uint64_t i = 0; i < bytes; i += 8) {
        uint64_t r = rng_next();
        memcpy(w + i, &r, 8);
    }
    uint64_t n_blocks = bytes / tr->type_size;
    for (uint64_t b = 0; b < n_blocks; b++) {
        uint8_t *p = w + b * tr->type_size;
        float d = (0.25f + 0.75f * (rng_float() * 0.5f + 0.5f)) * 0.02f;
        switch (t) {
        case XT_TYPE_F32: {
            float f = rng_float();
            memcpy(p, &f, 4);
            break;
        }
        case XT_TYPE_F16: put_f16(p, rng_float()); break;
        case XT_TYPE_BF16: {
            float f = rng_float();
            uint32_t u;
            memcpy(&u, &f, 4);
            uint16_t h = (uint16_t)(u >> 16);
            memcpy(p, &h, 2);
            break;
        }
        case XT_TYPE_Q4_0: case XT_TYPE_Q5_0: case XT_TYPE_Q8_0: put_f16(p, d); break;
        case XT_TYPE_Q4_1: case XT_TYPE_Q5_1:
            put_f16(p, d);
            put_f16(p + 2, -0.1f * (rng_float() * 0.5f + 0.5f));
            break;
        case XT_TYPE_Q2_K: put_f16(p + 80, d); put_f16(p + 82, d * 0.5f); break;
        case XT_TYPE_Q3_K: put_f16(p + 108, d * 0.1f); break;
        case XT_TYPE_Q4_K: case XT_TYPE_Q5_K: put_f16(p, d * 0.1f); put_f16(p + 2, d * 0.1f); break;
        case XT_TYPE_Q6_K: put_f16(p + 208, d * 0.01f); break;
        default: break;
        }
    }
    *bytes_out = bytes;
    return w;
}

static float *random_floats(size_t n)
{
    float *x = malloc(n * sizeof *x + 4);
    for (size_t i = 0; i < n; i++) x[i] = rng_float();
    return x;
}

/* ---- device helpers ------------------------------------------------------------------------- */

/* A device buffer of `bytes` at byte `pad` plus GUARD_WORDS guard words after, filled with GUARD
 * (and data at pad when given). */
static xt_buffer dev_buffer(const env *e, const void *data, uint64_t pad, uint64_t bytes)
{
    xt_error err = {0};
    xt_buffer b;
    uint64_t total = pad + bytes + 4 * GUARD_WORDS;
    CHECK(xt_buffer_create(e->vk, &(xt_buffer_desc){.size_bytes = total, .label = "test"}, &b,
                           &err) == XT_OK);
    uint32_t *init = malloc(total);
    for (uint64_t i = 0; i < total / 4; i++) init[i] = GUARD;
    if (data) memcpy((uint8_t *)init + pad, data, bytes);
    CHECK(xt_buffer_upload(e->vk, &b, 0, init, total, &err) == XT_OK);
    free(init);
    return b;
}

static void *download(const env *e, const xt_buffer *b, uint64_t offset, uint64_t bytes)
{
    xt_error err = {0};
    void *h = malloc(bytes + 4);
    CHECK(xt_buffer_download(e->vk, b, offset, h, bytes, &err) == XT_OK);
    return h;
}

/* Words of b outside [pad, pad + bytes) still hold GUARD. */
static int guards_intact(const env *e, const xt_buffer *b, uint64_t pad, uint64_t bytes)
{
    uint32_t *all = download(e, b, 0, b->size_bytes);
    int bad = 0;
    for (uint64_t i = 0; i < b->size_bytes / 4; i++)
        if ((i * 4 < pad || i * 4 >= pad + bytes) && all[i] != GUARD) bad++;
    free(all);
    return bad;
}

static xt_dtensor make_weights(const env *e, uint32_t t, const int64_t ne[3], const void *data,
                               uint64_t bytes, uint64_t max_chunk_bytes)
{
    xt_error err = {0};
    xt_dtensor w;
    xt_status s = xt_dtensor_create(e->vk,
                                    &(xt_dtensor_desc){.name = "w", .type = t,
                                                       .ne = {ne[0], ne[1], ne[2], 1},
                                                       .data = data, .data_bytes = bytes,
                                                       .max_chunk_bytes = max_chunk_bytes},
                                    &w, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    return w;
}

static xt_status begin(const env *e)
{
    xt_error err = {0};
    xt_status s = xt_cmd_begin(e->cmd, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    return s;
}

static void submit(const env *e)
{
    xt_error err = {0};
    xt_status s = xt_cmd_submit_wait(e->cmd, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
}

/* Runs matmul of W (rows x_rows of x) and returns y [rows][N] (caller frees). x and y sit at
 * unaligned byte offsets (4 and 12) so the shaders' element offsets are exercised; the guard
 * words around y are checked. */
static float *gpu_matmul(const env *e, const xt_dtensor *w, uint32_t expert, const float *x,
                         uint32_t rows)
{
    uint32_t K = (uint32_t)w->ne[0], N = (uint32_t)w->ne[1];
    uint64_t xb = (uint64_t)rows * K * 4, yb = (uint64_t)rows * N * 4;
    xt_buffer bx = dev_buffer(e, x, 4, xb), by = dev_buffer(e, NULL, 12, yb);
    xt_error err = {0};
    float *y = NULL;
    if (begin(e) == XT_OK) {
        xt_status s = xt_op_matmul(e->k, e->cmd,
                                   &(xt_matmul_desc){.w = w, .expert = expert, .rows = rows,
                                                     .x = {&bx, 4}, .y = {&by, 12}},
                                   &err);
        CHECK_MSG(s == XT_OK, "%s", err.msg);
        submit(e);
        y = download(e, &by, 12, yb);
        CHECK(guards_intact(e, &by, 12, yb) == 0);
    }
    xt_buffer_destroy(e->vk, &bx);
    xt_buffer_destroy(e->vk, &by);
    return y;
}

/* ---- matmul --------------------------------------------------------------------------------- */

static double worst_nmse[N_TYPES][4]; /* per type: matmul, matmul_id, get_rows, logit_gather */

static void matmul_should_match_reference_for_every_type_and_row_count(void)
{
    for (int ei = 0; ei < n_envs; ei++) {
        const env *e = &envs[ei];
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t t = all_types[ti], K = width_for(t), N = 100;
            rng_state = 1000 + ti;
            uint64_t wb;
            uint8_t *wd = random_weights(t, K, N, &wb);
            /* three chunks of 37, 37 and 26 rows: column ranges per dispatch */
            xt_dtensor w = make_weights(e, t, (int64_t[]){K, N, 1}, wd, wb, wb / N * 37 + 3);
            CHECK(w.n_chunks == 3);
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                uint32_t T = row_counts[ri];
                float *x = random_floats((size_t)T * K);
                float *ref = malloc((size_t)T * N * sizeof *ref);
                xt_error err = {0};
                CHECK(xt_ref_matmul(t, wd, wb, K, N, x, T, ref, &err) == XT_OK);
                float *y = gpu_matmul(e, &w, 0, x, T);
                double energy = 0;
                for (size_t i = 0; i < (size_t)T * N; i++) energy += (double)ref[i] * ref[i];
                CHECK(energy > 0); /* the comparison is not between zeros */
                if (y) {
                    double nmse = xt_nmse(y, ref, (size_t)T * N);
                    if (nmse > worst_nmse[ti][0]) worst_nmse[ti][0] = nmse;
                    CHECK_MSG(nmse <= 5e-4, "%s %s T=%u: nmse %g", e->name, xt_type_name(t), T,
                              nmse);
                    /* same dequantized values, same order, and the reference rounds each step
                     * the way the device's fma does (xt_vk_fma_fused): the same bits */
                    CHECK_MSG(!memcmp(y, ref, (size_t)T * N * 4), "%s %s T=%u: not bit-identical "
                              "to the CPU reference (fma %s)", e->name, xt_type_name(t), T,
                              xt_ref_fused_fma() ? "fused" : "unfused");
                }
                free(y);
                free(ref);
                free(x);
            }
            xt_dtensor_destroy(e->vk, &w);
            free(wd);
        }
    }
}

static void matmul_should_be_deterministic_and_batch_invariant(void)
{
    for (int ei = 0; ei < n_envs; ei++) {
        const env *e = &envs[ei];
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t t = all_types[ti], K = width_for(t), N = 70;
            rng_state = 2000 + ti;
            uint64_t wb;
            uint8_t *wd = random_weights(t, K, N, &wb);
            xt_dtensor w = make_weights(e, t, (int64_t[]){K, N, 1}, wd, wb, 0);
            uint32_t T = 64, row = 37;
            float *x = random_floats((size_t)T * K);
            float *a = gpu_matmul(e, &w, 0, x, T);
            float *b = gpu_matmul(e, &w, 0, x, T);
            float *alone = gpu_matmul(e, &w, 0, x + (size_t)row * K, 1);
            float *first7 = gpu_matmul(e, &w, 0, x + (size_t)(row - 6) * K, 7);
            if (a && b && alone && first7) {
                CHECK_MSG(!memcmp(a, b, (size_t)T * N * 4), "%s %s: two runs differ", e->name,
                          xt_type_name(t));
                CHECK_MSG(!memcmp(a + (size_t)row * N, alone, (size_t)N * 4),
                          "%s %s: row alone != row in a batch of 64", e->name, xt_type_name(t));
                CHECK_MSG(!memcmp(a + (size_t)row * N, first7 + 6 * N, (size_t)N * 4),
                          "%s %s: row in a batch of 7 != row in a batch of 64", e->name,
                          xt_type_name(t));
            }
            free(a);
            free(b);
            free(alone);
            free(first7);
            free(x);
            xt_dtensor_destroy(e->vk, &w);
            free(wd);
        }
    }
}

/* ---- matmul_id ------------------------------------------------------------------------------ */

/* moe_groups.h's lists built on the host from per-entry expert ids. */
typedef struct host_groups {
    uint32_t T, k, E, tile_rows, max_tiles, n_tiles;
    uint32_t *ids, *counts, *offsets, *order, *tiles;
    uint32_t args[12];
} host_groups;

static void host_groups_build(host_groups *g, uint32_t T, uint32_t k, uint32_t E,
                              uint32_t tile_rows, const uint32_t *ids)
{
    uint32_t n = T * k;
    *g = (host_groups){.T = T, .k = k, .E = E, .tile_rows = tile_rows,
                       .max_tiles = xt_moe_max_tiles(n, tile_rows, E)};
    g->ids = malloc(n * 4 + 4);
    memcpy(g->ids, ids, n * 4);
    g->counts = calloc(E, 4);
    g->offsets = calloc(E + 1, 4);
    g->order = malloc(n * 4 + 4);
    g->tiles = calloc(2 * g->max_tiles, 4);
    for (uint32_t e = 0; e < n; e++) g->counts[ids[e]]++;
    for (uint32_t x = 0; x < E; x++) g->offsets[x + 1] = g->offsets[x] + g->counts[x];
    uint32_t *fill = calloc(E, 4);
    for (uint32_t e = 0; e < n; e++) g->order[g->offsets[ids[e]] + fill[ids[e]]++] = e;
    free(fill);
    for (uint32_t x = 0; x < E; x++)
        for (uint32_t f = g->offsets[x]; f < g->offsets[x + 1]; f += tile_rows) {
            g->tiles[2 * g->n_tiles] = x;
            g->tiles[2 * g->n_tiles + 1] = f;
            g->n_tiles++;
        }
    /* slots 1..3 get garbage: the op must write its own */
    for (int i = 0; i < 12; i++) g->args[i] = 0xffffu;
    g->args[0] = g->n_tiles;
    g->args[1] = g->args[2] = 1;
}

static void host_groups_free(host_groups *g)
{
    free(g->ids);
    free(g->counts);
    free(g->offsets);
    free(g->order);
    free(g->tiles);
}

/* k distinct random experts per token. */
static uint32_t *random_routing(uint32_t T, uint32_t k, uint32_t E)
{
    uint32_t *ids = malloc((size_t)T * k * 4);
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t s = 0; s < k; s++) {
            uint32_t x;
            bool dup;
            do {
                x = rng_below(E);
                dup = false;
                for (uint32_t j = 0; j < s; j++) dup |= ids[t * k + j] == x;
            } while (dup);
            ids[t * k + s] = x;
        }
    return ids;
}

/* matmul_id on the GPU: y [T*k][N] (caller frees). */
static float *gpu_matmul_id(const env *e, const xt_dtensor *w, const host_groups *g,
                            const float *x, uint32_t x_rows, uint32_t div)
{
    uint32_t K = (uint32_t)w->ne[0], N = (uint32_t)w->ne[1], n = g->T * g->k;
    xt_buffer b_ids = dev_buffer(e, g->ids, 0, n * 4);
    xt_buffer b_counts = dev_buffer(e, g->counts, 0, g->E * 4);
    xt_buffer b_offsets = dev_buffer(e, g->offsets, 0, (g->E + 1) * 4);
    xt_buffer b_order = dev_buffer(e, g->order, 0, n * 4);
    xt_buffer b_tiles = dev_buffer(e, g->tiles, 0, g->max_tiles * 8);
    xt_buffer b_args = dev_buffer(e, g->args, 0, 48);
    uint64_t xb = (uint64_t)x_rows * K * 4, yb = (uint64_t)n * N * 4;
    xt_buffer bx = dev_buffer(e, x, 8, xb), by = dev_buffer(e, NULL, 4, yb);
    xt_moe_groups dg = {.n_tokens = g->T, .n_used = g->k, .n_expert = g->E,
                        .tile_rows = g->tile_rows, .max_tiles = g->max_tiles,
                        .ids = {&b_ids, 0, n * 4}, .counts = {&b_counts, 0, g->E * 4},
                        .offsets = {&b_offsets, 0, (g->E + 1) * 4}, .order = {&b_order, 0, n * 4},
                        .tiles = {&b_tiles, 0, g->max_tiles * 8}, .args = &b_args};
    xt_error err = {0};
    float *y = NULL;
    if (begin(e) == XT_OK) {
        xt_status s = xt_op_matmul_id(e->k, e->cmd,
                                      &(xt_matmul_id_desc){.w = w, .groups = &dg, .x = {&bx, 8},
                                                           .x_rows = x_rows, .x_row_div = div,
                                                           .y = {&by, 4}, .args_slot = 2},
                                      &err);
        CHECK_MSG(s == XT_OK, "%s", err.msg);
        submit(e);
        y = download(e, &by, 4, yb);
        CHECK(guards_intact(e, &by, 4, yb) == 0);
        uint32_t *args = download(e, &b_args, 0, 48);
        /* column blocks: every tile shape covers at least 64 weight rows per workgroup (the
         * outputs above show the blocks cover all N) */
        CHECK(args[6] == g->n_tiles && args[7] >= 1 && args[7] <= (N + 63) / 64 && args[8] == 1);
        CHECK(args[0] == g->n_tiles && args[3] == 0xffffu && args[9] == 0xffffu);
        free(args);
    }
    xt_buffer *all[] = {&b_ids, &b_counts, &b_offsets, &b_order, &b_tiles, &b_args, &bx, &by};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xt_buffer_destroy(e->vk, all[i]);
    return y;
}

/* Checks y (entries of matmul_id) against the reference and, bit for bit, against the dense
 * matmul of each entry's expert on the same x row. */
static void check_matmul_id(const env *e, size_t ti, const xt_dtensor *w, const uint8_t *wd,
                            uint64_t wb, const host_groups *g, const float *x, uint32_t x_rows,
                            uint32_t div, bool dense_check)
{
    uint32_t t = all_types[ti], K = (uint32_t)w->ne[0], N = (uint32_t)w->ne[1], n = g->T * g->k;
    float *y = gpu_matmul_id(e, w, g, x, x_rows, div);
    float *ref = malloc((size_t)n * N * 4);
    xt_error err = {0};
    CHECK(xt_ref_matmul_id(t, wd, wb, K, N, g->E, x, div, g->ids, n, ref, &err) == XT_OK);
    if (y) {
        double nmse = xt_nmse(y, ref, (size_t)n * N);
        if (nmse > worst_nmse[ti][1]) worst_nmse[ti][1] = nmse;
        CHECK_MSG(nmse <= 5e-4, "%s %s T=%u div=%u: nmse %g", e->name, xt_type_name(t), g->T, div,
                  nmse);
        CHECK_MSG(!memcmp(y, ref, (size_t)n * N * 4), "%s %s T=%u div=%u: not bit-identical to "
                  "the CPU reference", e->name, xt_type_name(t), g->T, div);
        if (dense_check) {
            /* the dense matmul of every expert over all x rows, then pick the entries */
            int mismatches = 0;
            for (uint32_t ex = 0; ex < g->E; ex++) {
                if (!g->counts[ex]) continue;
                float *dense = gpu_matmul(e, w, ex, x, x_rows);
                for (uint32_t en = 0; dense && en < n; en++)
                    if (g->ids[en] == ex &&
                        memcmp(dense + (size_t)(en / div) * N, y + (size_t)en * N, N * 4))
                        mismatches++;
                free(dense);
            }
            CHECK_MSG(mismatches == 0, "%s %s: %d entries differ from the dense matmul", e->name,
                      xt_type_name(t), mismatches);
        }
    }
    free(ref);
    free(y);
}

static void matmul_id_should_match_reference_and_dense_matmul_bit_for_bit(void)
{
    for (int ei = 0; ei < n_envs; ei++) {
        const env *e = &envs[ei];
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t t = all_types[ti], K = width_for(t), N = 72, E = 6, k = 2;
            rng_state = 3000 + ti;
            uint64_t wb;
            uint8_t *wd = random_weights(t, K, (uint64_t)N * E, &wb);
            /* chunks of two whole experts: tiles of other experts exit early */
            xt_dtensor w = make_weights(e, t, (int64_t[]){K, N, E}, wd, wb, wb / E * 2 + 3);
            CHECK(w.n_chunks == 3 && !w.slabs_split);
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                uint32_t T = row_counts[ri];
                uint32_t *ids = random_routing(T, k, E);
                host_groups g;
                host_groups_build(&g, T, k, E, 4, ids);
                /* gate/up: x is per token (div k); down: per entry (div 1) */
                float *xt = random_floats((size_t)T * K);
                check_matmul_id(e, ti, &w, wd, wb, &g, xt, T, k, T == 7);
                float *xe = random_floats((size_t)T * k * K);
                check_matmul_id(e, ti, &w, wd, wb, &g, xe, T * k, 1, T == 2);
                free(xe);
                free(xt);
                host_groups_free(&g);
                free(ids);
            }
            xt_dtensor_destroy(e->vk, &w);
            free(wd);
        }
    }
}

static void matmul_id_should_handle_experts_split_across_chunks(void)
{
    /* one expert's matrix larger than a chunk: chunks of whole rows (slabs_split) */
    const env *e = &envs[0];
    uint32_t t = XT_TYPE_Q4_K, K = 512, N = 100, E = 3, k = 2, T = 9;
    rng_state = 3500;
    uint64_t wb;
    uint8_t *wd = random_weights(t, K, (uint64_t)N * E, &wb);
    xt_dtensor w = make_weights(e, t, (int64_t[]){K, N, E}, wd, wb, wb / (N * E) * 45);
    CHECK(w.slabs_split && w.n_chunks == 7);
    uint32_t *ids = random_routing(T, k, E);
    host_groups g;
    host_groups_build(&g, T, k, E, 3, ids);
    float *x = random_floats((size_t)T * K);
    size_t ti = 10;
    CHECK(all_types[ti] == t);
    check_matmul_id(e, ti, &w, wd, wb, &g, x, T, k, true);
    free(x);
    host_groups_free(&g);
    free(ids);
    xt_dtensor_destroy(e->vk, &w);
    free(wd);
}

/* ---- get_rows ------------------------------------------------------------------------------- */

static void get_rows_should_equal_cpu_dequantization_and_zero_out_of_range_ids(void)
{
    for (int ei = 0; ei < n_envs; ei++) {
        const env *e = &envs[ei];
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t t = all_types[ti], K = width_for(t), V = 90;
            rng_state = 4000 + ti;
            uint64_t wb;
            uint8_t *wd = random_weights(t, K, V, &wb);
            xt_dtensor w = make_weights(e, t, (int64_t[]){K, V, 1}, wd, wb, wb / V * 40 + 3);
            CHECK(w.n_chunks == 3);
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                uint32_t T = row_counts[ri];
                uint32_t *ids = malloc(T * 4);
                for (uint32_t i = 0; i < T; i++) ids[i] = rng_below(V);
                bool with_bad = T >= 7;
                if (with_bad) ids[T / 2] = V + 5; /* out of range */
                float *ref = malloc((size_t)T * K * 4);
                uint32_t n_bad = 0;
                xt_error err = {0};
                CHECK(xt_ref_get_rows(t, wd, wb, K, V, ids, T, ref, &n_bad, &err) == XT_OK);
                CHECK(n_bad == (with_bad ? 1u : 0u));
                uint64_t yb = (uint64_t)T * K * 4;
                xt_buffer bi = dev_buffer(e, ids, 4, T * 4), by = dev_buffer(e, NULL, 4, yb);
                uint32_t zero = 0;
                xt_buffer bf = dev_buffer(e, &zero, 20, 4);
                if (begin(e) == XT_OK) {
                    xt_status s = xt_op_get_rows(e->k, e->cmd,
                                                 &(xt_get_rows_desc){.w = &w, .rows = T,
                                                                     .ids = {&bi, 4},
                                                                     .y = {&by, 4},
                                                                     .flag = {&bf, 20}},
                                                 &err);
                    CHECK_MSG(s == XT_OK, "%s", err.msg);
                    submit(e);
                    float *y = download(e, &by, 4, yb);
                    uint32_t *flag = download(e, &bf, 20, 4);
                    double nmse = xt_nmse(y, ref, (size_t)T * K);
                    if (nmse > worst_nmse[ti][2]) worst_nmse[ti][2] = nmse;
                    CHECK_MSG(!memcmp(y, ref, yb), "%s %s T=%u: not bit-identical (nmse %g)",
                              e->name, xt_type_name(t), T, nmse);
                    CHECK(*flag == (with_bad ? XT_MM_FLAG_ID_OUT_OF_RANGE : 0u));
                    CHECK(guards_intact(e, &by, 4, yb) == 0);
                    CHECK(guards_intact(e, &bf, 20, 4) == 0);
                    free(y);
                    free(flag);
                }
                xt_buffer_destroy(e->vk, &bi);
                xt_buffer_destroy(e->vk, &by);
                xt_buffer_destroy(e->vk, &bf);
                free(ref);
                free(ids);
            }
            xt_dtensor_destroy(e->vk, &w);
            free(wd);
        }
    }
}

/* ---- logit_gather --------------------------------------------------------------------------- */

static void logit_gather_should_equal_full_matmul_entries_bit_for_bit(void)
{
    for (int ei = 0; ei < n_envs; ei++) {
        const env *e = &envs[ei];
        for (size_t ti = 0; ti < N_TYPES; ti++) {
            uint32_t t = all_types[ti], K = width_for(t), V = 150;
            rng_state = 5000 + ti;
            uint64_t wb;
            uint8_t *wd = random_weights(t, K, V, &wb);
            /* the lm head in 3 chunks: true and foil ids fall in different ones */
            xt_dtensor w = make_weights(e, t, (int64_t[]){K, V, 1}, wd, wb, wb / V * 60 + 3);
            CHECK(w.n_chunks == 3);
            for (size_t ri = 0; ri < sizeof row_counts / sizeof row_counts[0]; ri++) {
                uint32_t T = row_counts[ri];
                float *h = random_floats((size_t)T * K);
                uint32_t *tid = malloc(T * 4), *fid = malloc(T * 4);
                for (uint32_t i = 0; i < T; i++) {
                    tid[i] = rng_below(V);
                    fid[i] = rng_below(V);
                }
                bool with_bad = T >= 33;
                if (with_bad) fid[T - 1] = V;
                float *ref_l = malloc((size_t)T * 8), *ref_d = malloc((size_t)T * 4);
                xt_error err = {0};
                CHECK(xt_ref_logit_gather(t, wd, wb, K, V, h, tid, fid, T, ref_l, ref_d, &err) ==
                      XT_OK);
                xt_buffer bh = dev_buffer(e, h, 4, (uint64_t)T * K * 4);
                xt_buffer bt = dev_buffer(e, tid, 0, T * 4), bfo = dev_buffer(e, fid, 8, T * 4);
                xt_buffer bl = dev_buffer(e, NULL, 4, T * 8), bd = dev_buffer(e, NULL, 0, T * 4);
                uint32_t zero = 0;
                xt_buffer bf = dev_buffer(e, &zero, 0, 4);
                if (begin(e) == XT_OK) {
                    xt_status s = xt_op_logit_gather(
                        e->k, e->cmd,
                        &(xt_logit_gather_desc){.w = &w, .rows = T, .h = {&bh, 4},
                                                .true_ids = {&bt, 0}, .foil_ids = {&bfo, 8},
                                                .logits = {&bl, 4}, .diff = {&bd, 0},
                                                .flag = {&bf, 0}},
                        &err);
                    CHECK_MSG(s == XT_OK, "%s", err.msg);
                    submit(e);
                    float *l = download(e, &bl, 4, T * 8), *d = download(e, &bd, 0, T * 4);
                    uint32_t *flag = download(e, &bf, 0, 4);
                    double nmse = xt_nmse(l, ref_l, 2 * (size_t)T);
                    if (nmse > worst_nmse[ti][3]) worst_nmse[ti][3] = nmse;
                    CHECK_MSG(nmse <= 5e-4, "%s %s T=%u: nmse %g", e->name, xt_type_name(t), T,
                              nmse);
                    CHECK(*flag == (with_bad ? XT_MM_FLAG_ID_OUT_OF_RANGE : 0u));
                    if (with_bad) CHECK(isnan(l[2 * (T - 1) + 1]) && isnan(d[T - 1]));
                    CHECK(guards_intact(e, &bl, 4, T * 8) == 0);
                    CHECK(guards_intact(e, &bd, 0, T * 4) == 0);
                    /* the full lm head through matmul: same bits for the two entries */
                    float *full = gpu_matmul(e, &w, 0, h, T);
                    int mism = 0;
                    for (uint32_t r = 0; full && r < T; r++) {
                        float lt = full[(size_t)r * V + tid[r]];
                        if (memcmp(&lt, &l[2 * r], 4)) mism++;
                        if (fid[r] >= V) continue;
                        float lf = full[(size_t)r * V + fid[r]], diff = lt - lf;
                        if (memcmp(&lf, &l[2 * r + 1], 4) || memcmp(&diff, &d[r], 4)) mism++;
                    }
                    CHECK_MSG(mism == 0, "%s %s T=%u: %d logits differ from the full matmul",
                              e->name, xt_type_name(t), T, mism);
                    free(full);
                    free(l);
                    free(d);
                    free(flag);
                }
                xt_buffer *all[] = {&bh, &bt, &bfo, &bl, &bd, &bf};
                for (size_t i = 0; i < 6; i++) xt_buffer_destroy(e->vk, all[i]);
                free(ref_l);
                free(ref_d);
                free(tid);
                free(fid);
                free(h);
            }
            xt_dtensor_destroy(e->vk, &w);
            free(wd);
        }
    }
}

/* ---- a tensor larger than one binding ------------------------------------------------------- */

static void expert_tensor_larger_than_a_binding_should_work_through_matmul_id_and_matmul(void)
{
    /* 8 experts x 4096 x 4352 in Q8_0: ~152 MB, over lavapipe's 128 MiB maxStorageBufferRange */
    const env *e = &envs[0];
    uint32_t t = XT_TYPE_Q8_0, K = 4096, N = 4352, E = 8, k = 2, T = 4;
    rng_state = 6000;
    uint64_t wb;
    uint8_t *wd = random_weights(t, K, (uint64_t)N * E, &wb);
    xt_dtensor w = make_weights(e, t, (int64_t[]){K, N, E}, wd, wb, 0);
    uint64_t limit = xt_binding_limit_bytes(e->vk);
    printf("     large tensor: %.1f MB in %u chunks (binding limit %.1f MB)\n", wb * 1e-6,
           w.n_chunks, limit * 1e-6);
    if (wb > limit) CHECK(w.n_chunks >= 2);
    /* routing that uses the first and the last expert (different chunks) */
    uint32_t ids[8] = {0, 7, 7, 3, 6, 0, 1, 7};
    host_groups g;
    host_groups_build(&g, T, k, E, 4, ids);
    float *x = random_floats((size_t)T * K);
    size_t ti = 7;
    CHECK(all_types[ti] == t);
    check_matmul_id(e, ti, &w, wd, wb, &g, x, T, k, false);
    /* the dense path on the last expert (in the last chunk) */
    uint64_t eb = wb / E;
    float *ref = malloc((size_t)T * N * 4);
    xt_error err = {0};
    CHECK(xt_ref_matmul(t, wd + 7 * eb, eb, K, N, x, T, ref, &err) == XT_OK);
    float *y = gpu_matmul(e, &w, 7, x, T);
    if (y) {
        double nmse = xt_nmse(y, ref, (size_t)T * N);
        CHECK_MSG(nmse <= 5e-4, "large matmul nmse %g", nmse);
        printf("     large tensor: matmul nmse %.3g\n", nmse);
    }
    free(y);
    free(ref);
    free(x);
    host_groups_free(&g);
    xt_dtensor_destroy(e->vk, &w);
    free(wd);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void ops_should_reject_unsupported_types_and_short_buffers(void)
{
    const env *e = &envs[0];
    xt_error err = {0};
    xt_dtensor w = make_weights(e, XT_TYPE_Q8_K, (int64_t[]){256, 4, 1}, NULL, 0, 0);
    xt_buffer b = dev_buffer(e, NULL, 0, 64);
    CHECK(begin(e) == XT_OK);
    CHECK(xt_op_matmul(e->k, e->cmd,
                       &(xt_matmul_desc){.w = &w, .rows = 1, .x = {&b, 0}, .y = {&b, 0}},
                       &err) == XT_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "q8_K") != NULL);
    xt_dtensor_destroy(e->vk, &w);
    w = make_weights(e, XT_TYPE_F32, (int64_t[]){32, 4, 1}, NULL, 0, 0);
    CHECK(xt_op_matmul(e->k, e->cmd,
                       &(xt_matmul_desc){.w = &w, .rows = 2, .x = {&b, 0}, .y = {&b, 0}},
                       &err) == XT_ERR_RANGE);
    CHECK(strstr(err.msg, "x needs 256 bytes") != NULL);
    CHECK(xt_op_matmul(e->k, e->cmd,
                       &(xt_matmul_desc){.w = &w, .expert = 1, .rows = 1, .x = {&b, 0},
                                         .y = {&b, 0}},
                       &err) == XT_ERR_RANGE);
    submit(e);
    xt_dtensor_destroy(e->vk, &w);
    xt_buffer_destroy(e->vk, &b);
}

static void print_worst_nmse(void)
{
    printf("     worst NMSE vs CPU reference (matmul, matmul_id, get_rows, logit_gather):\n");
    for (size_t ti = 0; ti < N_TYPES; ti++)
        printf("     %-5s %.3g %.3g %.3g %.3g\n", xt_type_name(all_types[ti]), worst_nmse[ti][0],
               worst_nmse[ti][1], worst_nmse[ti][2], worst_nmse[ti][3]);
}

static void validation_layer_should_report_no_messages(void)
{
    for (int i = 0; i < n_envs; i++) {
        xt_cmd_destroy(envs[i].cmd);
        xt_kernels_destroy(envs[i].k);
        xt_vk_context_destroy(envs[i].vk);
    }
    n_envs = 0;
    uint32_t msgs = xt_vk_validation_messages_total();
    CHECK_MSG(msgs == 0, "%u validation messages", msgs);
}

static int env_create(env *e, const char *name, xt_vk_feature_level level)
{
    xt_error err = {0};
    e->name = name;
    if (xt_vk_context_create(&(xt_vk_desc){.features = level}, &e->vk, &err) ||
        xt_kernels_create(e->vk, &e->k, &err) || xt_cmd_create(e->vk, &e->cmd, &err)) {
        fprintf(stderr, "no Vulkan device (%s): %s\n", name, err.msg);
        return 1;
    }
    return 0;
}

int main(void)
{
    if (env_create(&envs[0], "all-features", XT_VK_FEATURES_ALL)) return 1;
    n_envs = 1;
    if (env_create(&envs[1], "feature-floor", XT_VK_FEATURES_MIN)) return 1;
    n_envs = 2;
    RUN(matmul_should_match_reference_for_every_type_and_row_count);
    RUN(matmul_should_be_deterministic_and_batch_invariant);
    RUN(matmul_id_should_match_reference_and_dense_matmul_bit_for_bit);
    RUN(matmul_id_should_handle_experts_split_across_chunks);
    RUN(get_rows_should_equal_cpu_dequantization_and_zero_out_of_range_ids);
    RUN(logit_gather_should_equal_full_matmul_entries_bit_for_bit);
    RUN(expert_tensor_larger_than_a_binding_should_work_through_matmul_id_and_matmul);
    RUN(ops_should_reject_unsupported_types_and_short_buffers);
    print_worst_nmse();
    RUN(validation_layer_should_report_no_messages);
    return xt_test_finish();
}
