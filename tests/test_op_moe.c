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

/* The four elementwise steps for T rows of k slots (E experts, width W) on d against the
 * reference: swiglu, weighting and shared gate to NMSE 1e-7 (weighting bitwise), combine bitwise
 * from the GPU's own inputs. */
static void check_elementwise(dev *d, uint32_t T, uint32_t k, uint32_t E, uint32_t W, bool print)
{
    uint32_t N = T * k;
    size_t NW = (size_t)N * W, TW = (size_t)T * W;
    float *g = malloc(NW * 4), *u = malloc(NW * 4), *c = malloc(NW * 4);
    float *w = malloc(N * 4), *sg = malloc(T * 4), *sh = malloc(TW * 4);
    float *y_ref = malloc(TW * 4), *y = malloc(TW * 4), *tmp = malloc(NW * 4), *gc = malloc(NW * 4);
    uint32_t *ids = malloc(N * 4);
    for (size_t i = 0; i < NW; i++) {
        g[i] = 6 * rndf();
        u[i] = rndf();
        c[i] = rndf();
    }
    for (uint32_t i = 0; i < N; i++) {
        w[i] = rndf();
        ids[i] = i % 7 == 3 ? XT_MOE_NO_EXPERT : rnd() % E;
    }
    for (uint32_t i = 0; i < T; i++) sg[i] = 4 * rndf();
    for (size_t i = 0; i < TW; i++) sh[i] = rndf();
    xt_buffer bg = gbuf(d, g, NW * 4), bu = gbuf(d, u, NW * 4), bc = gbuf(d, c, NW * 4),
              bw = gbuf(d, w, N * 4), bi = gbuf(d, ids, N * 4), bsg = gbuf(d, sg, T * 4),
              bsh = gbuf(d, sh, TW * 4), by = gbuf(d, NULL, TW * 4);
    xt_error err = {0};
    xt_binding Bg = bind(&bg), Bu = bind(&bu), Bc = bind(&bc), Bw = bind(&bw), Bi = bind(&bi),
               Bsg = bind(&bsg), Bsh = bind(&bsh), By = bind(&by);
    begin(d);
    CHECK(xt_op_moe_swiglu(d->k, d->cmd, N, W, &Bg, &Bu, &err) == XT_OK);
    CHECK(xt_op_moe_weight(d->k, d->cmd, N, W, E, &Bc, &Bw, &Bi, &err) == XT_OK);
    CHECK(xt_op_moe_shared_gate(d->k, d->cmd, T, W, &Bsh, &Bsg, &err) == XT_OK);
    xt_cmd_barrier(d->cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    CHECK(xt_op_moe_combine(d->k, d->cmd, T, k, W, &Bc, &Bsh, &By, &err) == XT_OK);
    submit(d);
    xt_ref_moe_swiglu(g, u, NW);
    gread(d, &bg, tmp, NW * 4);
    double n_sw = xt_nmse(tmp, g, NW);
    xt_ref_moe_weight(c, w, ids, N, W, E);
    gread(d, &bc, tmp, NW * 4);
    double n_wt = xt_nmse(tmp, c, NW);
    int wt_bits = memcmp(tmp, c, NW * 4);
    xt_ref_moe_shared_gate(sh, sg, T, W);
    gread(d, &bsh, tmp, TW * 4);
    double n_sh = xt_nmse(tmp, sh, TW);
    gread(d, &bc, gc, NW * 4);
    xt_ref_moe_combine(gc, tmp, y_ref, T, k, W);
    gread(d, &by, y, TW * 4);
    CHECK_MSG(n_sw <= 1e-7 && n_wt <= 1e-7 && n_sh <= 1e-7,
              "%s T=%u W=%u: nmse swiglu %g weight %g shared %g", d->name, T, W, n_sw, n_wt, n_sh);
    CHECK_MSG(wt_bits == 0, "%s T=%u W=%u: weighting not bitwise", d->name, T, W);
    CHECK_MSG(memcmp(y, y_ref, TW * 4) == 0, "%s T=%u W=%u: combine not bitwise", d->name, T, W);
    if (print)
        printf("     %s T=%u k=%u W=%u: nmse swiglu %.2e weight %.2e shared-gate %.2e combine 0 "
               "(bitwise)\n", d->name, T, k, W, n_sw, n_wt, n_sh);
    xt_buffer *all[] = {&bg, &bu, &bc, &bw, &bi, &bsg, &bsh, &by};
    for (size_t i = 0; i < 8; i++) xt_buffer_destroy(d->vk, all[i]);
    float *mem[] = {g, u, c, w, sg, sh, y_ref, y, tmp, gc};
    for (size_t i = 0; i < 10; i++) free(mem[i]);
    free(ids);
}

static void elementwise_steps_should_match_reference(void)
{
    for (int f = 0; f < 2; f++)
        for (size_t ri = 0; ri < 5; ri++)
            check_elementwise(&devs[f], row_counts[ri], 3, 5, 67, f == 0 && ri == 4);
}

/* Real-shape rows (top-8 of 128, width 768): 700 tokens make 4.3M elements, more than
 * maxComputeWorkGroupCount[0] (65,535 on lavapipe) workgroups of 64, so the dispatch folds into
 * a second row of workgroups, whose index must continue where the first row ends. */
static void elementwise_steps_past_the_x_workgroup_limit_should_match_reference(void)
{
    for (int f = 0; f < 2; f++) {
        uint32_t max_x = xt_vk_context_info(devs[f].vk)->limits.max_compute_work_group_count[0];
        uint32_t T = 700;
        if ((uint64_t)T * 8 * 768 <= (uint64_t)max_x * 64) {
            printf("     (%s: maxComputeWorkGroupCount[0] = %u, 700 rows fit one row of groups)\n",
                   devs[f].name, max_x);
            continue;
        }
        check_elementwise(&devs[f], T, 8, 128, 768, f == 0);
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

/* ---- the MoE block ------------------------------------------------------------------------- */

/* Random packed rows of type t: sane fp16 scales, random quants. */
static void *random_weights(uint32_t type, int64_t K, int64_t rows, uint64_t *bytes)
{
    const xt_type_traits *tr = xt_type_get_traits(type);
    uint64_t blocks = (uint64_t)(K / tr->block_size) * (uint64_t)rows;
    *bytes = blocks * tr->type_size;
    uint8_t *d = malloc(*bytes);
    if (type == XT_TYPE_F32) {
        float *f = (float *)d;
        for (uint64_t i = 0; i < *bytes / 4; i++) f[i] = rndf() * 0.2f;
        return d;
    }
    for (uint64_t i = 0; i < *bytes; i++) d[i] = (uint8_t)(rnd() >> 11);
    for (uint64_t b = 0; b < blocks; b++) {
        uint8_t *blk = d + b * tr->type_size;
        uint16_t h0 = xt_fp32_to_fp16(0.004f * (1.0f + rndf())), h1 = xt_fp32_to_fp16(0.002f * (1.0f + rndf()));
        memcpy(blk, &h0, 2);
        if (type == XT_TYPE_Q4_K) memcpy(blk + 2, &h1, 2); /* d, dmin */
    }
    return d;
}

typedef struct moe_model {
    xt_ref_moe_weights ref;
    void *host[8];
    xt_dtensor dt[8];
    xt_moe_layer_weights w;
} moe_model;

static void moe_model_init(dev *d, moe_model *m, uint32_t type, uint32_t n_embd, uint32_t n_ff,
                           uint32_t E, uint32_t k, bool renorm, uint32_t n_ff_s)
{
    memset(m, 0, sizeof *m);
    const int64_t shapes[8][3] = {{n_embd, E, 1},   {n_embd, n_ff, E},  {n_embd, n_ff, E},
                                  {n_ff, n_embd, E}, {n_embd, 1, 1},     {n_embd, n_ff_s, 1},
                                  {n_embd, n_ff_s, 1}, {n_ff_s, n_embd, 1}};
    xt_ref_tensor *rt[8] = {&m->ref.gate_inp,       &m->ref.gate_exps,  &m->ref.up_exps,
                            &m->ref.down_exps,      &m->ref.gate_inp_shexp,
                            &m->ref.gate_shexp,     &m->ref.up_shexp,   &m->ref.down_shexp};
    const xt_dtensor **dp[8] = {&m->w.gate_inp,       &m->w.gate_exps, &m->w.up_exps,
                                &m->w.down_exps,      &m->w.gate_inp_shexp,
                                &m->w.gate_shexp,     &m->w.up_shexp,  &m->w.down_shexp};
    for (int i = 0; i < 8; i++) {
        if (i >= 4 && n_ff_s == 0) break;
        uint32_t t = i == 0 || i == 4 ? XT_TYPE_F32 : type; /* router and shared gate in F32 */
        uint64_t bytes;
        m->host[i] = random_weights(t, shapes[i][0], shapes[i][1] * shapes[i][2], &bytes);
        *rt[i] = (xt_ref_tensor){.type = t, .ne = {shapes[i][0], shapes[i][1], shapes[i][2]},
                                 .data = m->host[i]};
        xt_error err = {0};
        xt_status s = xt_dtensor_create(
            d->vk, &(xt_dtensor_desc){.name = "w", .type = t,
                                      .ne = {shapes[i][0], shapes[i][1], shapes[i][2], 1},
                                      .data = m->host[i], .data_bytes = bytes},
            &m->dt[i], &err);
        CHECK_MSG(s == XT_OK, "%s", err.msg);
        *dp[i] = &m->dt[i];
    }
    m->ref.n_used = m->w.n_used = k;
    m->ref.renorm = m->w.renorm = renorm;
}

static void moe_model_free(dev *d, moe_model *m)
{
    for (int i = 0; i < 8; i++) {
        xt_dtensor_destroy(d->vk, &m->dt[i]);
        free(m->host[i]);
    }
}

typedef struct layer_out {
    float *y, *contrib, *shared, *weights;
    uint32_t *ids;
} layer_out;

static void layer_out_free(layer_out *o)
{
    free(o->y);
    free(o->contrib);
    free(o->shared);
    free(o->weights);
    free(o->ids);
}

/* Runs the block on the GPU for T tokens of x; downloads y, contributions, ids, weights. */
static void run_layer(dev *d, moe_model *m, const float *x, uint32_t T, const xt_patch_desc *patch,
                      layer_out *o)
{
    xt_error err = {0};
    xt_moe_workspace ws;
    CHECK(xt_moe_workspace_create(d->vk, &m->w, T, &ws, &err) == XT_OK);
    uint32_t n_embd = ws.n_embd, k = ws.n_used;
    xt_buffer bx = gbuf(d, x, (size_t)T * n_embd * 4), by = gbuf(d, NULL, (size_t)T * n_embd * 4);
    begin(d);
    xt_status s = xt_op_moe_layer(d->k, d->cmd,
                                  &(xt_moe_layer_desc){.w = &m->w, .ws = &ws, .n_tokens = T,
                                                       .x = &bx, .y = bind(&by), .patch = patch},
                                  &err);
    CHECK_MSG(s == XT_OK, "%s", err.msg);
    submit(d);
    o->y = malloc((size_t)T * n_embd * 4);
    o->contrib = malloc((size_t)T * k * n_embd * 4);
    o->ids = malloc((size_t)T * k * 4);
    o->weights = malloc((size_t)T * k * 4);
    o->shared = m->w.gate_inp_shexp ? malloc((size_t)T * n_embd * 4) : NULL;
    gread(d, &by, o->y, (size_t)T * n_embd * 4);
    CHECK(xt_buffer_download(d->vk, &ws.contrib, 0, o->contrib, (size_t)T * k * n_embd * 4,
                             &err) == XT_OK);
    CHECK(xt_buffer_download(d->vk, &ws.ids, 0, o->ids, (size_t)T * k * 4, &err) == XT_OK);
    CHECK(xt_buffer_download(d->vk, &ws.weights, 0, o->weights, (size_t)T * k * 4, &err) ==
          XT_OK);
    if (o->shared)
        CHECK(xt_buffer_download(d->vk, &ws.shared, 0, o->shared, (size_t)T * n_embd * 4, &err) ==
              XT_OK);
    xt_buffer_destroy(d->vk, &bx);
    xt_buffer_destroy(d->vk, &by);
    xt_moe_workspace_destroy(d->vk, &ws);
}

static float *random_x(uint32_t T, uint32_t n_embd)
{
    float *x = malloc((size_t)T * n_embd * 4);
    for (size_t i = 0; i < (size_t)T * n_embd; i++) x[i] = rndf();
    return x;
}

/* GPU block vs the CPU block: ids exact, y/contributions/shared NMSE <= 5e-4. Returns the worst
 * NMSE of y. */
static double check_layer(dev *d, moe_model *m, uint32_t T, const char *what)
{
    uint32_t n_embd = (uint32_t)m->ref.gate_inp.ne[0], k = m->ref.n_used;
    float *x = random_x(T, n_embd);
    layer_out g = {0};
    run_layer(d, m, x, T, NULL, &g);
    float *y = malloc((size_t)T * n_embd * 4), *c = malloc((size_t)T * k * n_embd * 4);
    float *sh = malloc((size_t)T * n_embd * 4);
    uint32_t *ids = malloc((size_t)T * k * 4);
    xt_error err = {0};
    CHECK(xt_ref_moe_layer(&m->ref, x, T,
                           &(xt_ref_moe_out){.y = y, .contrib = c, .shared = sh, .ids = ids},
                           &err) == XT_OK);
    CHECK_MSG(memcmp(ids, g.ids, (size_t)T * k * 4) == 0, "%s %s T=%u: routing differs", d->name,
              what, T);
    double ny = xt_nmse(g.y, y, (size_t)T * n_embd);
    double nc = xt_nmse(g.contrib, c, (size_t)T * k * n_embd);
    double ns = g.shared ? xt_nmse(g.shared, sh, (size_t)T * n_embd) : 0;
    CHECK_MSG(ny <= 5e-4 && nc <= 5e-4 && ns <= 5e-4, "%s %s T=%u: nmse y %g contrib %g shared %g",
              d->name, what, T, ny, nc, ns);
    layer_out_free(&g);
    free(x);
    free(y);
    free(c);
    free(sh);
    free(ids);
    return ny;
}

static void moe_layer_should_match_reference_layer(void)
{
    for (int f = 0; f < 2; f++) {
        dev *d = &devs[f];
        moe_model m8, m16;
        /* E = 8 top-2 with renorm (Mixtral-like); E = 16 top-4, no renorm, shared expert */
        moe_model_init(d, &m8, XT_TYPE_Q8_0, 64, 96, 8, 2, true, 0);
        moe_model_init(d, &m16, XT_TYPE_Q8_0, 96, 64, 16, 4, false, 160);
        double worst8 = 0, worst16 = 0;
        for (size_t ri = 0; ri < 5; ri++) {
            double a = check_layer(d, &m8, row_counts[ri], "E8 q8_0");
            double b = check_layer(d, &m16, row_counts[ri], "E16 q8_0 shared");
            worst8 = a > worst8 ? a : worst8;
            worst16 = b > worst16 ? b : worst16;
        }
        printf("     %s: worst nmse E8 top-2 %.2e, E16 top-4 + shared %.2e\n", d->name, worst8,
               worst16);
        moe_model_free(d, &m8);
        moe_model_free(d, &m16);
    }
}

static void moe_layer_q4_K_and_128_experts_should_match_reference(void)
{
    for (int f = 0; f < 2; f++) {
        dev *d = &devs[f];
        moe_model m;
        moe_model_init(d, &m, XT_TYPE_Q4_K, 256, 256, 8, 2, true, 256);
        double a = check_layer(d, &m, 33, "E8 q4_K shared");
        moe_model_free(d, &m);
        moe_model_init(d, &m, XT_TYPE_Q8_0, 64, 32, 128, 8, true, 0);
        double b = check_layer(d, &m, 130, "E128 top-8 q8_0");
        moe_model_free(d, &m);
        printf("     %s: nmse q4_K E8 %.2e, E128 top-8 %.2e\n", d->name, a, b);
    }
}

static void moe_layer_should_be_deterministic_and_batch_invariant(void)
{
    dev *d = &devs[0];
    moe_model m;
    moe_model_init(d, &m, XT_TYPE_Q8_0, 64, 96, 16, 4, false, 64);
    uint32_t T = 64, n_embd = 64, k = 4;
    float *x = random_x(T, n_embd);
    layer_out a = {0}, b = {0};
    run_layer(d, &m, x, T, NULL, &a);
    run_layer(d, &m, x, T, NULL, &b);
    CHECK(memcmp(a.y, b.y, (size_t)T * n_embd * 4) == 0);
    CHECK(memcmp(a.contrib, b.contrib, (size_t)T * k * n_embd * 4) == 0);
    static const uint32_t probe[] = {0, 1, 31, 63};
    for (size_t i = 0; i < 4; i++) {
        uint32_t t = probe[i];
        layer_out one = {0};
        run_layer(d, &m, x + (size_t)t * n_embd, 1, NULL, &one);
        CHECK_MSG(memcmp(one.y, a.y + (size_t)t * n_embd, n_embd * 4) == 0,
                  "token %u: output alone differs from in the batch", t);
        CHECK_MSG(memcmp(one.contrib, a.contrib + (size_t)t * k * n_embd, k * n_embd * 4) == 0,
                  "token %u: contributions alone differ from in the batch", t);
        CHECK(memcmp(one.shared, a.shared + (size_t)t * n_embd, n_embd * 4) == 0);
        layer_out_free(&one);
    }
    layer_out_free(&a);
    layer_out_free(&b);
    free(x);
    moe_model_free(d, &m);
}

static void moe_layer_replacing_output_with_clean_vector_should_equal_clean_run(void)
{
    for (int f = 0; f < 2; f++) {
        dev *d = &devs[f];
        moe_model m;
        moe_model_init(d, &m, XT_TYPE_Q8_0, 64, 64, 8, 2, true, 0);
        uint32_t T = 7, n_embd = 64;
        float *clean = random_x(T, n_embd), *noised = malloc((size_t)T * n_embd * 4);
        for (size_t i = 0; i < (size_t)T * n_embd; i++) noised[i] = clean[i] + 0.5f * rndf();
        layer_out c = {0}, p = {0}, z = {0}, n = {0};
        run_layer(d, &m, clean, T, NULL, &c);
        run_layer(d, &m, noised, T, NULL, &n);
        /* one row of 7 tokens; patch the final position's MoE output at layer 5 */
        uint32_t row_base[1] = {0};
        xt_patch_entry e = {.row = 0, .position = T - 1, .layer = 5, .site = XT_SITE_MOE_OUT,
                            .mode = XT_PATCH_REPLACE, .src = 0};
        xt_buffer bt = gbuf(d, &e, sizeof e), br = gbuf(d, row_base, 4),
                  bs = gbuf(d, c.y + (size_t)(T - 1) * n_embd, n_embd * 4);
        xt_patch_desc pd = {.table = bind(&bt), .count = 1, .row_base = bind(&br), .n_rows = 1,
                            .src = bind(&bs), .src_floats = n_embd, .layer = 5};
        run_layer(d, &m, noised, T, &pd, &p);
        CHECK(memcmp(p.y + (size_t)(T - 1) * n_embd, c.y + (size_t)(T - 1) * n_embd,
                     n_embd * 4) == 0);
        CHECK(memcmp(p.y, n.y, (size_t)(T - 1) * n_embd * 4) == 0); /* other tokens untouched */
        /* a table with entries for another layer only: the noised run, bitwise */
        pd.layer = 4;
        run_layer(d, &m, noised, T, &pd, &z);
        CHECK(memcmp(z.y, n.y, (size_t)T * n_embd * 4) == 0);
        xt_buffer_destroy(d->vk, &bt);
        xt_buffer_destroy(d->vk, &br);
        xt_buffer_destroy(d->vk, &bs);
        layer_out_free(&c);
        layer_out_free(&p);
        layer_out_free(&z);
        layer_out_free(&n);
        free(clean);
        free(noised);
        moe_model_free(d, &m);
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
    RUN(elementwise_steps_past_the_x_workgroup_limit_should_match_reference);
    RUN(patch_each_mode_on_each_site_should_match_reference);
    RUN(patch_entries_on_one_target_should_apply_in_table_order);
    RUN(patch_with_an_empty_table_should_change_nothing);
    RUN(moe_layer_should_match_reference_layer);
    RUN(moe_layer_q4_K_and_128_experts_should_match_reference);
    RUN(moe_layer_should_be_deterministic_and_batch_invariant);
    RUN(moe_layer_replacing_output_with_clean_vector_should_equal_clean_run);
    RUN(validation_layer_should_report_no_messages);
    return xt_test_finish();
}
