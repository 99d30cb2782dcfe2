/* The MoE op family on the GPU against its CPU reference (src/ref_moe.c): router, grouping by
 * expert, the expert-FFN elementwise steps, the patch pass and the whole MoE block, in normal and
 * feature-floor mode; determinism, batch invariance, bounds (guard words), validation. */
#include <stdlib.h>

#include "expertrace/quant.h"
#include "expertrace/vk.h"
#include "kernels.h"
#include "op_moe.h"
#include "ref_moe.h"
#include "xt_test.h"

#define GUARD_WORDS 16u
#define GUARD 0x7fc0beefu

typedef struct dev {
    const char *name;
    xt_vk_context *vk;
    xt_kernels *k;
    xt_cmd *cmd;
} dev;

static dev devs[2];
static const uint32_t row_counts[] = {1, 2, 7, 33, 130};

/* ---- helpers ------------------------------------------------------------------------------- */

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static float rndf(void) /* uniform in [-1, 1) */
{
    return (float)(rnd() >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

/* A device buffer holding bytes of data (zeros when NULL) followed by guard words. */
static xt_buffer gbuf(dev *d, const void *data, size_t bytes)
{
    xt_error err = {0};
    xt_buffer b;
    size_t total = bytes + GUARD_WORDS * 4;
    CHECK(xt_buffer_create(d->vk, &(xt_buffer_desc){.size_bytes = total, .label = "test"}, &b,
                           &err) == XT_OK);
    uint32_t *host = calloc(total / 4, 4);
    if (data) memcpy(host, data, bytes);
    for (uint32_t i = 0; i < GUARD_WORDS; i++) host[bytes / 4 + i] = GUARD;
    CHECK(xt_buffer_upload(d->vk, &b, 0, host, total, &err) == XT_OK);
    free(host);
    return b;
}

/* Downloads bytes and checks the guard words after them; destroys nothing. */
static void gread(dev *d, const xt_buffer *b, void *out, size_t bytes)
{
    xt_error err = {0};
    size_t total = bytes + GUARD_WORDS * 4;
    uint32_t *host = malloc(total);
    CHECK(xt_buffer_download(d->vk, b, 0, host, total, &err) == XT_OK);
    memcpy(out, host, bytes);
    int bad = 0;
    for (uint32_t i = 0; i < GUARD_WORDS; i++) bad += host[bytes / 4 + i] != GUARD;
    CHECK_MSG(bad == 0, "%d guard words overwritten", bad);
    free(host);
}

static xt_binding bind(const xt_buffer *b)
{
    return (xt_binding){.buffer = b};
}

static void begin(dev *d)
{
    xt_error err = {0};
    CHECK(xt_cmd_begin(d->cmd, &err) == XT_OK);
}

static void submit(dev *d)
{
    xt_error err = {0};
    xt_status s = xt_cmd_submit_wait(d->cmd, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
}

/* Logits with many exact ties: values from a small set. */
static void tied_logits(float *l, size_t n, uint32_t levels)
{
    for (size_t i = 0; i < n; i++) l[i] = (float)(rnd() % levels) * 0.25f - 1.0f;
}

/* ---- router -------------------------------------------------------------------------------- */

typedef struct router_case {
    uint32_t T, E, k;
    bool renorm;
    const uint32_t *mask; /* NULL or [mask_rows][words] */
    uint32_t mask_rows;
    const uint32_t *force; /* NULL or [T][k] */
} router_case;

/* Runs router case c on d; returns 0 when ids match exactly and weights/probs pass NMSE. */
static void check_router(dev *d, const router_case *c, const float *logits)
{
    uint32_t T = c->T, E = c->E, k = c->k, words = (E + 31) / 32;
    uint32_t flags = (c->renorm ? XT_ROUTER_RENORM : 0) | (c->mask ? XT_ROUTER_MASK : 0) |
                     (c->force ? XT_ROUTER_FORCE : 0);
    uint32_t *ref_ids = malloc(T * k * 4), *ids = malloc(T * k * 4);
    float *ref_w = malloc(T * k * 4), *w = malloc(T * k * 4);
    float *ref_p = malloc(T * E * 4), *p = malloc(T * E * 4);
    xt_ref_router(logits, T, E, k, flags, c->mask, c->mask_rows, c->force, ref_ids, ref_w, ref_p);

    xt_buffer bl = gbuf(d, logits, T * E * 4), bi = gbuf(d, NULL, T * k * 4),
              bw = gbuf(d, NULL, T * k * 4), bp = gbuf(d, NULL, T * E * 4), bm = {0}, bf = {0};
    if (c->mask) bm = gbuf(d, c->mask, (size_t)c->mask_rows * words * 4);
    if (c->force) bf = gbuf(d, c->force, T * k * 4);
    xt_error err = {0};
    begin(d);
    xt_status s = xt_op_router(d->k, d->cmd,
                               &(xt_router_desc){.n_tokens = T, .n_expert = E, .n_used = k,
                                                 .renorm = c->renorm, .logits = bind(&bl),
                                                 .mask = bind(&bm), .mask_rows = c->mask_rows,
                                                 .force = bind(&bf), .ids = bind(&bi),
                                                 .weights = bind(&bw), .probs = bind(&bp)},
                               &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    submit(d);
    gread(d, &bi, ids, T * k * 4);
    gread(d, &bw, w, T * k * 4);
    gread(d, &bp, p, T * E * 4);
    CHECK_MSG(memcmp(ids, ref_ids, T * k * 4) == 0, "%s T=%u E=%u k=%u: ids differ", d->name, T,
              E, k);
    double nw = xt_nmse(w, ref_w, T * k), np = xt_nmse(p, ref_p, T * E);
    CHECK_MSG(nw <= 1e-7 && np <= 1e-7, "%s T=%u E=%u: nmse weights %g probs %g", d->name, T, E,
              nw, np);
    xt_buffer_destroy(d->vk, &bl);
    xt_buffer_destroy(d->vk, &bi);
    xt_buffer_destroy(d->vk, &bw);
    xt_buffer_destroy(d->vk, &bp);
    xt_buffer_destroy(d->vk, &bm);
    xt_buffer_destroy(d->vk, &bf);
    free(ref_ids);
    free(ids);
    free(ref_w);
    free(w);
    free(ref_p);
    free(p);
}

static void router_should_match_reference_over_rows_and_expert_counts(void)
{
    static const uint32_t shapes[][2] = {{8, 2}, {16, 4}, {128, 8}, {60, 4}};
    for (int f = 0; f < 2; f++)
        for (size_t si = 0; si < 4; si++)
            for (size_t ri = 0; ri < 5; ri++) {
                router_case c = {.T = row_counts[ri], .E = shapes[si][0], .k = shapes[si][1],
                                 .renorm = (ri + si) % 2 == 0, .mask_rows = 1};
                float *l = malloc((size_t)c.T * c.E * 4);
                for (size_t i = 0; i < (size_t)c.T * c.E; i++) l[i] = 4.0f * rndf();
                check_router(&devs[f], &c, l);
                free(l);
            }
}

static void router_ties_should_go_to_the_lower_expert_index(void)
{
    /* all equal: experts 0..k-1 in order, equal weights */
    float l[16] = {0};
    uint32_t ids[4];
    float w[4];
    xt_ref_router(l, 1, 16, 4, XT_ROUTER_RENORM, NULL, 1, NULL, ids, w, NULL);
    CHECK(ids[0] == 0 && ids[1] == 1 && ids[2] == 2 && ids[3] == 3 && w[0] == 0.25f);
    /* a tie below the top: 5 and 9 share the second-highest logit */
    l[7] = 2.0f;
    l[9] = 1.0f;
    l[5] = 1.0f;
    xt_ref_router(l, 1, 16, 4, 0, NULL, 1, NULL, ids, w, NULL);
    CHECK(ids[0] == 7 && ids[1] == 5 && ids[2] == 9 && ids[3] == 0);
    CHECK(w[1] == w[2]);
    /* GPU on heavily tied logits, both levels */
    for (int f = 0; f < 2; f++)
        for (size_t ri = 0; ri < 5; ri++) {
            router_case c = {.T = row_counts[ri], .E = 16, .k = 4, .renorm = ri % 2,
                             .mask_rows = 1};
            float *lg = malloc((size_t)c.T * c.E * 4);
            tied_logits(lg, (size_t)c.T * c.E, 3);
            check_router(&devs[f], &c, lg);
            free(lg);
        }
}

static void router_renorm_should_make_weights_sum_to_one_and_off_keep_probs(void)
{
    float l[8] = {0.5f, 1.5f, -1.0f, 3.0f, 0.0f, 2.0f, -2.0f, 1.0f};
    uint32_t ids[2];
    float w[2], p[8], wr[2];
    xt_ref_router(l, 1, 8, 2, 0, NULL, 1, NULL, ids, w, p);
    CHECK(ids[0] == 3 && ids[1] == 5);
    CHECK(w[0] == p[3] && w[1] == p[5]);
    xt_ref_router(l, 1, 8, 2, XT_ROUTER_RENORM, NULL, 1, NULL, ids, wr, NULL);
    CHECK(fabsf(wr[0] + wr[1] - 1.0f) < 1e-6f && wr[0] == w[0] / (w[0] + w[1]));
}

static void router_mask_and_force_should_exclude_and_override_experts(void)
{
    uint32_t T = 33, E = 40, k = 4, words = 2;
    float *l = malloc(T * E * 4);
    for (size_t i = 0; i < (size_t)T * E; i++) l[i] = 3.0f * rndf();
    uint32_t *mask = calloc(T * words, 4), *force = malloc(T * k * 4), bmask[2] = {0, 0};
    for (uint32_t t = 0; t < T; t++) {
        for (uint32_t j = 0; j < 8; j++) {
            uint32_t e = rnd() % E;
            mask[t * words + e / 32] |= 1u << (e % 32);
        }
        for (uint32_t s = 0; s < k; s++)
            force[t * k + s] = t % 3 == 0 ? XT_MOE_NO_EXPERT : (t * 7 + s * 5) % E;
    }
    force[1 * k + 3] = E + 5; /* an empty forced slot */
    bmask[0] = 0xffffffffu;   /* broadcast: experts 0..31 excluded for every token */
    /* reference semantics */
    uint32_t *ids = malloc(T * k * 4);
    float *w = malloc(T * k * 4);
    xt_ref_router(l, T, E, k, XT_ROUTER_MASK, mask, T, NULL, ids, w, NULL);
    int bad = 0;
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t s = 0; s < k; s++)
            bad += (mask[t * words + ids[t * k + s] / 32] >> (ids[t * k + s] % 32)) & 1u;
    CHECK(bad == 0);
    xt_ref_router(l, T, E, k, XT_ROUTER_FORCE | XT_ROUTER_RENORM, NULL, 1, force, ids, w, NULL);
    CHECK(ids[1 * k] == force[1 * k] && ids[1 * k + 3] == XT_MOE_NO_EXPERT && w[1 * k + 3] == 0);
    CHECK(fabsf(w[1 * k] + w[1 * k + 1] + w[1 * k + 2] - 1.0f) < 1e-6f);
    /* every expert masked: empty slots */
    uint32_t all[2] = {0xffffffffu, 0xffffffffu};
    xt_ref_router(l, 1, E, k, XT_ROUTER_MASK, all, 1, NULL, ids, w, NULL);
    CHECK(ids[0] == XT_MOE_NO_EXPERT && w[0] == 0);
    /* the GPU agrees */
    for (int f = 0; f < 2; f++) {
        check_router(&devs[f], &(router_case){T, E, k, false, mask, T, NULL}, l);
        check_router(&devs[f], &(router_case){T, E, k, true, bmask, 1, NULL}, l);
        check_router(&devs[f], &(router_case){T, E, k, true, NULL, 1, force}, l);
        check_router(&devs[f], &(router_case){1, E, k, true, all, 1, NULL}, l);
    }
    free(l);
    free(mask);
    free(force);
    free(ids);
    free(w);
}

/* ---- grouping ------------------------------------------------------------------------------ */

typedef struct group_bufs {
    xt_buffer ids, counts, offsets, order, tiles, args, scratch;
    xt_moe_groups g;
} group_bufs;

static void group_bufs_init(dev *d, group_bufs *gb, const uint32_t *ids, uint32_t T, uint32_t k,
                            uint32_t E, uint32_t tile_rows)
{
    uint32_t N = T * k, max_tiles = xt_moe_max_tiles(N, tile_rows, E);
    gb->ids = gbuf(d, ids, N * 4);
    gb->counts = gbuf(d, NULL, E * 4);
    gb->offsets = gbuf(d, NULL, (E + 1) * 4);
    gb->order = gbuf(d, NULL, N * 4);
    gb->tiles = gbuf(d, NULL, max_tiles * 8);
    gb->args = gbuf(d, NULL, 12 * 4);
    gb->scratch = gbuf(d, NULL, xt_moe_group_scratch_bytes(N, E));
    gb->g = (xt_moe_groups){.n_tokens = T, .n_used = k, .n_expert = E, .tile_rows = tile_rows,
                            .max_tiles = max_tiles, .ids = bind(&gb->ids),
                            .counts = bind(&gb->counts), .offsets = bind(&gb->offsets),
                            .order = bind(&gb->order), .tiles = bind(&gb->tiles),
                            .args = &gb->args};
}

static void group_bufs_free(dev *d, group_bufs *gb)
{
    xt_buffer *all[] = {&gb->ids, &gb->counts, &gb->offsets, &gb->order,
                        &gb->tiles, &gb->args, &gb->scratch};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xt_buffer_destroy(d->vk, all[i]);
}

static void check_grouping(dev *d, const uint32_t *ids, uint32_t T, uint32_t k, uint32_t E,
                           uint32_t tile_rows)
{
    uint32_t N = T * k, max_tiles = xt_moe_max_tiles(N, tile_rows, E);
    uint32_t *rc = malloc(E * 4), *ro = malloc((E + 1) * 4), *rord = calloc(N, 4),
             *rt = calloc(max_tiles * 2, 4);
    uint32_t *c = malloc(E * 4), *o = malloc((E + 1) * 4), *ord = malloc(N * 4),
             *t = malloc(max_tiles * 8), args[12];
    uint32_t n_tiles = xt_ref_moe_group(ids, N, E, tile_rows, max_tiles, rc, ro, rord, rt);
    group_bufs gb;
    group_bufs_init(d, &gb, ids, T, k, E, tile_rows);
    xt_binding scratch = bind(&gb.scratch);
    xt_error err = {0};
    begin(d);
    xt_status s = xt_op_moe_group(d->k, d->cmd, &gb.g, &scratch, &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    submit(d);
    gread(d, &gb.counts, c, E * 4);
    gread(d, &gb.offsets, o, (E + 1) * 4);
    gread(d, &gb.order, ord, N * 4);
    gread(d, &gb.tiles, t, max_tiles * 8);
    gread(d, &gb.args, args, 48);
    CHECK_MSG(memcmp(c, rc, E * 4) == 0 && memcmp(o, ro, (E + 1) * 4) == 0, "%s T=%u E=%u counts",
              d->name, T, E);
    CHECK_MSG(memcmp(ord, rord, ro[E] * 4) == 0, "%s T=%u E=%u order", d->name, T, E);
    CHECK_MSG(args[0] == n_tiles && args[1] == 1 && args[2] == 1, "%s args %u vs %u tiles",
              d->name, args[0], n_tiles);
    CHECK_MSG(memcmp(t, rt, n_tiles * 8) == 0, "%s T=%u E=%u tiles", d->name, T, E);
    group_bufs_free(d, &gb);
    free(rc);
    free(ro);
    free(rord);
    free(rt);
    free(c);
    free(o);
    free(ord);
    free(t);
}

static void grouping_should_equal_the_host_grouping_exactly(void)
{
    static const uint32_t shapes[][3] = {{8, 2, 4}, {16, 4, 16}, {128, 8, 32}, {40, 3, 7}};
    for (int f = 0; f < 2; f++)
        for (size_t si = 0; si < 4; si++)
            for (size_t ri = 0; ri < 5; ri++) {
                uint32_t T = row_counts[ri], E = shapes[si][0], k = shapes[si][1];
                uint32_t *ids = malloc(T * k * 4);
                for (uint32_t i = 0; i < T * k; i++) {
                    /* skewed towards a few experts so tiles fill up; some empty slots */
                    uint32_t r = rnd();
                    ids[i] = r % 11 == 0 ? XT_MOE_NO_EXPERT : (r % 3 ? (r >> 8) % 3 : (r >> 8) % E);
                }
                check_grouping(&devs[f], ids, T, k, E, shapes[si][2]);
                free(ids);
            }
    /* a large batch: 2048 tokens, top-8 of 128 */
    uint32_t T = 2048, k = 8, E = 128;
    uint32_t *ids = malloc(T * k * 4);
    for (uint32_t i = 0; i < T * k; i++) ids[i] = (rnd() >> 4) % E;
    check_grouping(&devs[0], ids, T, k, E, 16);
    free(ids);
}

/* ---- expert FFN elementwise steps ----------------------------------------------------------- */

static void elementwise_steps_should_match_reference(void)
{
    for (int f = 0; f < 2; f++) {
        dev *d = &devs[f];
        for (size_t ri = 0; ri < 5; ri++) {
            uint32_t T = row_counts[ri], k = 3, E = 5, W = 67, N = T * k;
            float *g = malloc(N * W * 4), *u = malloc(N * W * 4), *c = malloc(N * W * 4);
            float *w = malloc(N * 4), *sg = malloc(T * 4), *sh = malloc(T * W * 4);
            float *y_ref = malloc(T * W * 4), *y = malloc(T * W * 4), *tmp = malloc(N * W * 4);
            uint32_t *ids = malloc(N * 4);
            for (uint32_t i = 0; i < N * W; i++) {
                g[i] = 6 * rndf();
                u[i] = rndf();
                c[i] = rndf();
            }
            for (uint32_t i = 0; i < N; i++) {
                w[i] = rndf();
                ids[i] = i % 7 == 3 ? XT_MOE_NO_EXPERT : rnd() % E;
            }
            for (uint32_t i = 0; i < T; i++) sg[i] = 4 * rndf();
            for (uint32_t i = 0; i < T * W; i++) sh[i] = rndf();
            xt_buffer bg = gbuf(d, g, N * W * 4), bu = gbuf(d, u, N * W * 4),
                      bc = gbuf(d, c, N * W * 4), bw = gbuf(d, w, N * 4),
                      bi = gbuf(d, ids, N * 4), bsg = gbuf(d, sg, T * 4),
                      bsh = gbuf(d, sh, T * W * 4), by = gbuf(d, NULL, T * W * 4);
            xt_error err = {0};
            xt_binding Bg = bind(&bg), Bu = bind(&bu), Bc = bind(&bc), Bw = bind(&bw),
                       Bi = bind(&bi), Bsg = bind(&bsg), Bsh = bind(&bsh), By = bind(&by);
            begin(d);
            CHECK(xt_op_moe_swiglu(d->k, d->cmd, N, W, &Bg, &Bu, &err) == XT_OK);
            CHECK(xt_op_moe_weight(d->k, d->cmd, N, W, E, &Bc, &Bw, &Bi, &err) == XT_OK);
            CHECK(xt_op_moe_shared_gate(d->k, d->cmd, T, W, &Bsh, &Bsg, &err) == XT_OK);
            xt_cmd_barrier(d->cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
            CHECK(xt_op_moe_combine(d->k, d->cmd, T, k, W, &Bc, &Bsh, &By, &err) == XT_OK);
            submit(d);
            xt_ref_moe_swiglu(g, u, (uint64_t)N * W);
            gread(d, &bg, tmp, N * W * 4);
            double n_sw = xt_nmse(tmp, g, N * W);
            xt_ref_moe_weight(c, w, ids, N, W, E);
            gread(d, &bc, tmp, N * W * 4);
            double n_wt = xt_nmse(tmp, c, N * W);
            int wt_bits = memcmp(tmp, c, N * W * 4);
            xt_ref_moe_shared_gate(sh, sg, T, W);
            gread(d, &bsh, tmp, T * W * 4);
            double n_sh = xt_nmse(tmp, sh, T * W);
            /* combine from the GPU's own inputs: bitwise */
            float *gc = malloc(N * W * 4);
            gread(d, &bc, gc, N * W * 4);
            xt_ref_moe_combine(gc, tmp, y_ref, T, k, W);
            gread(d, &by, y, T * W * 4);
            CHECK_MSG(n_sw <= 1e-7 && n_wt <= 1e-7 && n_sh <= 1e-7,
                      "%s T=%u nmse swiglu %g weight %g shared %g", d->name, T, n_sw, n_wt, n_sh);
            CHECK_MSG(wt_bits == 0, "%s: weighting not bitwise", d->name);
            CHECK_MSG(memcmp(y, y_ref, T * W * 4) == 0, "%s T=%u: combine not bitwise", d->name,
                      T);
            if (f == 0 && ri == 4)
                printf("     nmse swiglu %.2e weight %.2e shared-gate %.2e combine 0 (bitwise)\n",
                       n_sw, n_wt, n_sh);
            xt_buffer *all[] = {&bg, &bu, &bc, &bw, &bi, &bsg, &bsh, &by};
            for (size_t i = 0; i < 8; i++) xt_buffer_destroy(d->vk, all[i]);
            free(g);
            free(u);
            free(c);
            free(w);
            free(sg);
            free(sh);
            free(y_ref);
            free(y);
            free(tmp);
            free(ids);
            free(gc);
        }
    }
}

/* ---- patch pass ---------------------------------------------------------------------------- */

/* Runs the patch pass for (layer, site) over target on d and on the CPU; bitwise comparison. */
static void check_patch(dev *d, const xt_patch_entry *table, uint32_t count, uint32_t layer,
                        uint32_t site, const uint32_t *row_base, uint32_t n_rows,
                        const float *src, uint32_t src_floats, const float *target,
                        uint32_t n_tokens, uint32_t width, const uint32_t *ids, uint32_t k,
                        const char *what)
{
    bool per_expert = site == XT_SITE_EXPERT || site == XT_SITE_ROUTER_WEIGHT;
    size_t n = (size_t)n_tokens * (per_expert ? k : 1) * width;
    float *ref = malloc(n * 4), *got = malloc(n * 4);
    memcpy(ref, target, n * 4);
    xt_ref_patch_apply((const uint32_t *)table, 0, count, layer, site, row_base, n_rows, src,
                       src_floats, ref, n_tokens, width, ids, k);
    xt_buffer bt = gbuf(d, table, (count ? count : 1) * sizeof *table),
              br = gbuf(d, row_base, n_rows * 4), bs = gbuf(d, src, src_floats * 4),
              bx = gbuf(d, target, n * 4),
              bi = gbuf(d, ids, per_expert ? (size_t)n_tokens * k * 4 : 4);
    xt_error err = {0};
    begin(d);
    xt_status s = xt_op_patch(d->k, d->cmd,
                              &(xt_patch_desc){.table = bind(&bt), .first = 0, .count = count,
                                               .row_base = bind(&br), .n_rows = n_rows,
                                               .src = bind(&bs), .src_floats = src_floats,
                                               .layer = layer, .site = site, .target = bind(&bx),
                                               .n_tokens = n_tokens, .width = width,
                                               .ids = bind(&bi), .n_used = k},
                              &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    submit(d);
    gread(d, &bx, got, n * 4);
    CHECK_MSG(memcmp(got, ref, n * 4) == 0, "%s: patch %s (site %u) differs from the reference",
              d->name, what, site);
    xt_buffer *all[] = {&bt, &br, &bs, &bx, &bi};
    for (size_t i = 0; i < 5; i++) xt_buffer_destroy(d->vk, all[i]);
    free(ref);
    free(got);
}

static void patch_each_mode_on_each_site_should_match_reference(void)
{
    /* 5 rows of lengths 3,1,1,4,1 -> 10 tokens; k = 3 of 6 experts */
    uint32_t row_base[5] = {0, 3, 4, 5, 9}, T = 10, k = 3, W = 37, src_floats = 8 * W;
    uint32_t ids[30];
    for (uint32_t i = 0; i < T * k; i++) ids[i] = (i * 5 + i / k) % 6;
    ids[4] = XT_MOE_NO_EXPERT;
    float *src = malloc(src_floats * 4), *target = malloc(T * k * W * 4);
    for (uint32_t i = 0; i < src_floats; i++) src[i] = rndf();
    for (uint32_t i = 0; i < T * k * W; i++) target[i] = rndf();
    for (int f = 0; f < 2; f++)
        for (uint32_t site = 0; site < XT_SITE_COUNT; site++)
            for (uint32_t mode = 0; mode < 3; mode++) {
                uint32_t width = site == XT_SITE_ROUTER_WEIGHT ? 1 : W;
                xt_patch_entry tab[6];
                for (uint32_t j = 0; j < 6; j++) {
                    uint32_t row = (j * 3) % 5;
                    tab[j] = (xt_patch_entry){.row = row, .position = row == 3 ? j % 4 : 0,
                                              .layer = j == 4 ? 9 : 2, .site = site,
                                              .expert = ids[(row_base[row] + (row == 3 ? j % 4 : 0)) * k + j % k],
                                              .mode = j == 2 ? (mode + 1) % 3 : mode,
                                              .src = j * width};
                }
                tab[5].expert = 5; /* maybe not routed: a no-op then */
                char what[32];
                snprintf(what, sizeof what, "mode %u", mode);
                check_patch(&devs[f], tab, 6, 2, site, row_base, 5, src, src_floats, target, T,
                            width, ids, k, what);
            }
    free(src);
    free(target);
}

static void patch_entries_on_one_target_should_apply_in_table_order(void)
{
    uint32_t row_base[2] = {0, 1}, T = 2, W = 300, src_floats = 3 * W;
    float *src = malloc(src_floats * 4), *target = malloc(T * W * 4);
    for (uint32_t i = 0; i < src_floats; i++) src[i] = rndf();
    for (uint32_t i = 0; i < T * W; i++) target[i] = rndf();
    /* 70 entries (more than one chunk of the leader's walk) alternating on two tokens */
    xt_patch_entry tab[70];
    for (uint32_t j = 0; j < 70; j++)
        tab[j] = (xt_patch_entry){.row = j % 2, .layer = 1, .site = XT_SITE_RESIDUAL,
                                  .mode = j % 5 == 0 ? XT_PATCH_REPLACE : XT_PATCH_ADD,
                                  .src = (j % 3) * W};
    tab[69].mode = XT_PATCH_ZERO;
    /* an out-of-range source: skipped */
    tab[33].src = src_floats - 5;
    float *ref = malloc(T * W * 4);
    memcpy(ref, target, T * W * 4);
    xt_ref_patch_apply((const uint32_t *)tab, 0, 70, 1, XT_SITE_RESIDUAL, row_base, 2, src,
                       src_floats, ref, T, W, NULL, 0);
    CHECK(ref[W] == 0.0f && ref[0] != 0.0f); /* token 1 ends zeroed, token 0 not */
    for (int f = 0; f < 2; f++)
        check_patch(&devs[f], tab, 70, 1, XT_SITE_RESIDUAL, row_base, 2, src, src_floats,
                    target, T, W, NULL, 0, "ordered");
    free(src);
    free(target);
    free(ref);
}

static void patch_with_an_empty_table_should_change_nothing(void)
{
    uint32_t row_base[1] = {0};
    float src[4] = {1, 2, 3, 4}, target[4 * 5];
    for (int i = 0; i < 20; i++) target[i] = rndf();
    xt_patch_entry tab[1] = {{0}};
    for (int f = 0; f < 2; f++) {
        check_patch(&devs[f], tab, 0, 0, XT_SITE_MOE_OUT, row_base, 1, src, 4, target, 5, 4, NULL,
                    0, "empty table");
        /* entries only for another layer: nothing either */
        check_patch(&devs[f], tab, 1, 3, XT_SITE_MOE_OUT, row_base, 1, src, 4, target, 5, 4, NULL,
                    0, "other layer");
    }
}

/* ---- validation ---------------------------------------------------------------------------- */

static void validation_layer_should_report_no_messages(void)
{
    for (int f = 0; f < 2; f++) {
        xt_cmd_destroy(devs[f].cmd);
        xt_kernels_destroy(devs[f].k);
        xt_vk_context_destroy(devs[f].vk);
        devs[f] = (dev){0};
    }
    uint32_t msgs = xt_vk_validation_messages_total();
    CHECK_MSG(msgs == 0, "%u validation messages", msgs);
}

int main(void)
{
    static const xt_vk_feature_level levels[2] = {XT_VK_FEATURES_ALL, XT_VK_FEATURES_MIN};
    static const char *names[2] = {"all features", "feature floor"};
    for (int f = 0; f < 2; f++) {
        xt_error err = {0};
        devs[f].name = names[f];
        if (xt_vk_context_create(&(xt_vk_desc){.features = levels[f]}, &devs[f].vk, &err) ||
            xt_kernels_create(devs[f].vk, &devs[f].k, &err) ||
            xt_cmd_create(devs[f].vk, &devs[f].cmd, &err)) {
            fprintf(stderr, "no Vulkan device: %s\n", err.msg);
            return 1;
        }
    }
    printf("validation layer: %s\n", xt_vk_context_validation_active(devs[0].vk) ? "on" : "off");
    RUN(router_should_match_reference_over_rows_and_expert_counts);
    RUN(router_ties_should_go_to_the_lower_expert_index);
    RUN(router_renorm_should_make_weights_sum_to_one_and_off_keep_probs);
    RUN(router_mask_and_force_should_exclude_and_override_experts);
    RUN(grouping_should_equal_the_host_grouping_exactly);
    RUN(elementwise_steps_should_match_reference);
    RUN(patch_each_mode_on_each_site_should_match_reference);
    RUN(patch_entries_on_one_target_should_apply_in_table_order);
    RUN(patch_with_an_empty_table_should_change_nothing);
    RUN(validation_layer_should_report_no_messages);
    return xt_test_finish();
}
