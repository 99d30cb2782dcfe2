/* GPU ops of the MoE family (see op_moe.h). Each op checks its arguments on the host, fills the
 * push block of shaders/push_moe.h and records its dispatches. */
#include "op_moe.h"

#include <string.h>

#include "op_matmul.h"

#define WG_ELEMENTWISE 64u
#define WG_ROUTER 64u
#define WG_SCAN 64u
#define WG_PATCH 64u
#define MOE_TILE_ROWS 16u /* entries per expert tile of the grouped GEMM */

static xt_status get_pipeline(xt_kernels *k, const char *shader, uint32_t wg, uint32_t push_bytes,
                              uint32_t binding_count, const xt_pipeline **p, xt_error *err)
{
    xt_spec_constant spec = {0, wg};
    return xt_kernels_pipeline(k,
                               &(xt_pipeline_desc){.shader = shader,
                                                   .spec = &spec,
                                                   .spec_count = 1,
                                                   .push_bytes = push_bytes,
                                                   .binding_count = binding_count},
                               p, err);
}

/* One invocation per element of n, spread over x and y. */
static xt_status dispatch_1d(xt_kernels *k, xt_cmd *cmd, const char *shader, uint32_t wg,
                             uint64_t n, const void *push, uint32_t push_bytes,
                             const xt_binding *b, uint32_t nb, xt_error *err)
{
    const xt_pipeline *p;
    xt_status s = get_pipeline(k, shader, wg, push_bytes, nb, &p, err);
    if (s) return s;
    uint32_t groups[3];
    xt_groups_1d(xt_kernels_context(k), n, wg, groups);
    return xt_dispatch(cmd, p, groups[0], groups[1], groups[2], push, push_bytes, b, nb, err);
}

static bool present(const xt_binding *b)
{
    return b && b->buffer && b->buffer->buffer;
}

/* The binding holds at least bytes from its offset. */
static xt_status check_binding(const xt_binding *b, uint64_t bytes, const char *op,
                               const char *what, xt_error *err)
{
    if (!present(b)) return xt_error_set(err, XT_ERR_USAGE, "%s: no buffer for %s", op, what);
    uint64_t have = b->buffer->size_bytes > b->offset ? b->buffer->size_bytes - b->offset : 0;
    if (b->range_bytes && b->range_bytes < have) have = b->range_bytes;
    if (bytes > have)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %s needs %llu bytes, its binding has %llu", op,
                            what, (unsigned long long)bytes, (unsigned long long)have);
    return XT_OK;
}

/* ---- router -------------------------------------------------------------------------------- */

xt_status xt_op_router(xt_kernels *k, xt_cmd *cmd, const xt_router_desc *d, xt_error *err)
{
    const char *op = "router";
    if (d->n_tokens == 0) return XT_OK;
    if (d->n_expert == 0 || d->n_expert > XT_MOE_MAX_EXPERT || d->n_used == 0 ||
        d->n_used > d->n_expert)
        return xt_error_set(err, XT_ERR_USAGE, "router: %u experts, top-%u (need 1 <= k <= E <= %u)",
                            d->n_expert, d->n_used, XT_MOE_MAX_EXPERT);
    uint64_t T = d->n_tokens, E = d->n_expert, K = d->n_used;
    uint32_t words = (d->n_expert + 31) / 32;
    xt_status s;
    if ((s = check_binding(&d->logits, T * E * 4, op, "logits", err)) ||
        (s = check_binding(&d->ids, T * K * 4, op, "ids", err)) ||
        (s = check_binding(&d->weights, T * K * 4, op, "weights", err)))
        return s;
    xt_push_router pc = {.n_tokens = d->n_tokens, .n_expert = d->n_expert, .n_used = d->n_used,
                         .flags = d->renorm ? XT_ROUTER_RENORM : 0, .mask_words = words,
                         .mask_rows = d->mask_rows ? d->mask_rows : 1};
    /* absent optional inputs are bound to a buffer the shader then never touches */
    xt_binding b[6] = {d->logits, d->logits, d->logits, d->ids, d->weights, d->weights};
    if (present(&d->mask)) {
        if (pc.mask_rows != 1 && pc.mask_rows != d->n_tokens)
            return xt_error_set(err, XT_ERR_USAGE, "router: mask has %u rows, need 1 or %u",
                                pc.mask_rows, d->n_tokens);
        if ((s = check_binding(&d->mask, (uint64_t)pc.mask_rows * words * 4, op, "mask", err)))
            return s;
        pc.flags |= XT_ROUTER_MASK;
        b[1] = d->mask;
    }
    if (present(&d->force)) {
        if ((s = check_binding(&d->force, T * K * 4, op, "force", err))) return s;
        pc.flags |= XT_ROUTER_FORCE;
        b[2] = d->force;
    }
    if (present(&d->probs)) {
        if ((s = check_binding(&d->probs, T * E * 4, op, "probs", err))) return s;
        pc.flags |= XT_ROUTER_WRITE_PROBS;
        b[5] = d->probs;
    }
    return dispatch_1d(k, cmd, "router", WG_ROUTER, T, &pc, sizeof pc, b, 6, err);
}

/* ---- grouping ------------------------------------------------------------------------------ */

uint64_t xt_moe_group_scratch_bytes(uint32_t n_entries, uint32_t n_expert)
{
    uint64_t blocks = (n_entries + XT_MOE_GROUP_BLOCK - 1) / XT_MOE_GROUP_BLOCK;
    return (blocks ? blocks : 1) * n_expert * 4;
}

xt_status xt_op_moe_group(xt_kernels *k, xt_cmd *cmd, const xt_moe_groups *g,
                          const xt_binding *scratch, xt_error *err)
{
    const char *op = "moe grouping";
    uint64_t N = (uint64_t)g->n_tokens * g->n_used, E = g->n_expert;
    if (E == 0 || E > XT_MOE_MAX_EXPERT || g->tile_rows == 0)
        return xt_error_set(err, XT_ERR_USAGE, "%s: %u experts (1..%u), tile_rows %u", op,
                            g->n_expert, XT_MOE_MAX_EXPERT, g->tile_rows);
    if (N > UINT32_MAX / 2)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %llu entries", op, (unsigned long long)N);
    if (g->max_tiles < xt_moe_max_tiles((uint32_t)N, g->tile_rows, g->n_expert))
        return xt_error_set(err, XT_ERR_USAGE, "%s: max_tiles %u below the bound %u", op,
                            g->max_tiles,
                            xt_moe_max_tiles((uint32_t)N, g->tile_rows, g->n_expert));
    xt_binding args = {.buffer = g->args};
    xt_status s;
    if ((s = check_binding(&g->ids, N * 4, op, "ids", err)) ||
        (s = check_binding(&g->counts, E * 4, op, "counts", err)) ||
        (s = check_binding(&g->offsets, (E + 1) * 4, op, "offsets", err)) ||
        (s = check_binding(&g->order, N * 4, op, "order", err)) ||
        (s = check_binding(&g->tiles, (uint64_t)g->max_tiles * 8, op, "tiles", err)) ||
        (s = check_binding(&args, 12 * 4, op, "args", err)) ||
        (s = check_binding(scratch, xt_moe_group_scratch_bytes((uint32_t)N, g->n_expert), op,
                           "scratch", err)))
        return s;
    uint32_t blocks = (uint32_t)((N + XT_MOE_GROUP_BLOCK - 1) / XT_MOE_GROUP_BLOCK);
    xt_push_moe_group pc = {.n_entries = (uint32_t)N, .n_expert = g->n_expert,
                            .n_blocks = blocks, .tile_rows = g->tile_rows,
                            .max_tiles = g->max_tiles};
    const xt_pipeline *p_count, *p_scan, *p_scatter;
    if ((s = get_pipeline(k, "moe_group_count", XT_MOE_GROUP_BLOCK, sizeof pc, 2, &p_count, err)) ||
        (s = get_pipeline(k, "moe_group_scan", WG_SCAN, sizeof pc, 5, &p_scan, err)) ||
        (s = get_pipeline(k, "moe_group_scatter", XT_MOE_GROUP_BLOCK, sizeof pc, 3, &p_scatter,
                          err)))
        return s;
    const xt_vk_device_info *info = xt_vk_context_info(xt_kernels_context(k));
    if (blocks > info->limits.max_compute_work_group_count[0])
        return xt_error_set(err, XT_ERR_RANGE, "%s: %u blocks of entries", op, blocks);

    xt_binding b_count[2] = {g->ids, *scratch};
    xt_binding b_scan[5] = {*scratch, g->counts, g->offsets, g->tiles, args};
    xt_binding b_scatter[3] = {g->ids, *scratch, g->order};
    if (blocks && (s = xt_dispatch(cmd, p_count, blocks, 1, 1, &pc, sizeof pc, b_count, 2, err)))
        return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if ((s = xt_dispatch(cmd, p_scan, 1, 1, 1, &pc, sizeof pc, b_scan, 5, err))) return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if (blocks &&
        (s = xt_dispatch(cmd, p_scatter, blocks, 1, 1, &pc, sizeof pc, b_scatter, 3, err)))
        return s;
    return XT_OK;
}

/* ---- expert FFN steps ---------------------------------------------------------------------- */

xt_status xt_op_moe_swiglu(xt_kernels *k, xt_cmd *cmd, uint32_t n_rows, uint32_t width,
                           const xt_binding *gate, const xt_binding *up, xt_error *err)
{
    uint64_t n = (uint64_t)n_rows * width;
    if (n == 0) return XT_OK;
    if (n > UINT32_MAX) return xt_error_set(err, XT_ERR_RANGE, "swiglu: %llu elements", (unsigned long long)n);
    xt_status s;
    if ((s = check_binding(gate, n * 4, "swiglu", "gate", err)) ||
        (s = check_binding(up, n * 4, "swiglu", "up", err)))
        return s;
    xt_push_moe_elementwise pc = {.n_rows = n_rows, .width = width};
    xt_binding b[2] = {*gate, *up};
    return dispatch_1d(k, cmd, "moe_swiglu", WG_ELEMENTWISE, n, &pc, sizeof pc, b, 2, err);
}

xt_status xt_op_moe_weight(xt_kernels *k, xt_cmd *cmd, uint32_t n_entries, uint32_t width,
                           uint32_t n_expert, const xt_binding *c, const xt_binding *w,
                           const xt_binding *ids, xt_error *err)
{
    uint64_t n = (uint64_t)n_entries * width;
    if (n == 0) return XT_OK;
    if (n > UINT32_MAX) return xt_error_set(err, XT_ERR_RANGE, "moe weight: %llu elements", (unsigned long long)n);
    xt_status s;
    if ((s = check_binding(c, n * 4, "moe weight", "contributions", err)) ||
        (s = check_binding(w, (uint64_t)n_entries * 4, "moe weight", "weights", err)) ||
        (s = check_binding(ids, (uint64_t)n_entries * 4, "moe weight", "ids", err)))
        return s;
    xt_push_moe_elementwise pc = {.n_rows = n_entries, .width = width, .n_expert = n_expert};
    xt_binding b[3] = {*c, *w, *ids};
    return dispatch_1d(k, cmd, "moe_weight", WG_ELEMENTWISE, n, &pc, sizeof pc, b, 3, err);
}

xt_status xt_op_moe_shared_gate(xt_kernels *k, xt_cmd *cmd, uint32_t n_tokens, uint32_t width,
                                const xt_binding *sh, const xt_binding *gate, xt_error *err)
{
    uint64_t n = (uint64_t)n_tokens * width;
    if (n == 0) return XT_OK;
    if (n > UINT32_MAX) return xt_error_set(err, XT_ERR_RANGE, "shared gate: %llu elements", (unsigned long long)n);
    xt_status s;
    if ((s = check_binding(sh, n * 4, "shared gate", "shared", err)) ||
        (s = check_binding(gate, (uint64_t)n_tokens * 4, "shared gate", "gate", err)))
        return s;
    xt_push_moe_elementwise pc = {.n_rows = n_tokens, .width = width};
    xt_binding b[2] = {*sh, *gate};
    return dispatch_1d(k, cmd, "moe_shared_gate", WG_ELEMENTWISE, n, &pc, sizeof pc, b, 2, err);
}

xt_status xt_op_moe_combine(xt_kernels *k, xt_cmd *cmd, uint32_t n_tokens, uint32_t n_used,
                            uint32_t width, const xt_binding *c, const xt_binding *shared,
                            const xt_binding *y, xt_error *err)
{
    uint64_t n = (uint64_t)n_tokens * width;
    if (n == 0) return XT_OK;
    if (n_used == 0) return xt_error_set(err, XT_ERR_USAGE, "moe combine: k = 0");
    if (n * n_used > UINT32_MAX) return xt_error_set(err, XT_ERR_RANGE, "moe combine: %llu elements", (unsigned long long)(n * n_used));
    xt_status s;
    if ((s = check_binding(c, n * n_used * 4, "moe combine", "contributions", err)) ||
        (s = check_binding(y, n * 4, "moe combine", "output", err)))
        return s;
    xt_push_moe_elementwise pc = {.n_rows = n_tokens, .width = width, .n_used = n_used};
    xt_binding b[3] = {*c, *c, *y};
    if (present(shared)) {
        if ((s = check_binding(shared, n * 4, "moe combine", "shared", err))) return s;
        pc.flags = 1;
        b[1] = *shared;
    }
    return dispatch_1d(k, cmd, "moe_combine", WG_ELEMENTWISE, n, &pc, sizeof pc, b, 3, err);
}

/* ---- patch injection ----------------------------------------------------------------------- */

xt_status xt_op_patch(xt_kernels *k, xt_cmd *cmd, const xt_patch_desc *d, xt_error *err)
{
    const char *op = "patch";
    if (d->count == 0 || d->n_tokens == 0 || d->width == 0) return XT_OK;
    if (d->site >= XT_SITE_COUNT)
        return xt_error_set(err, XT_ERR_USAGE, "patch: unknown site %u", d->site);
    bool per_expert = d->site == XT_SITE_EXPERT || d->site == XT_SITE_ROUTER_WEIGHT;
    if (per_expert && d->n_used == 0)
        return xt_error_set(err, XT_ERR_USAGE, "patch: site %u needs ids and k", d->site);
    if (d->site == XT_SITE_ROUTER_WEIGHT && d->width != 1)
        return xt_error_set(err, XT_ERR_USAGE, "patch: router weights have width 1, not %u",
                            d->width);
    uint64_t vectors = (uint64_t)d->n_tokens * (per_expert ? d->n_used : 1);
    if (vectors * d->width > UINT32_MAX || (uint64_t)d->first + d->count > UINT32_MAX / XT_PATCH_WORDS)
        return xt_error_set(err, XT_ERR_RANGE, "patch: target or table too large");
    xt_status s;
    if ((s = check_binding(&d->table, ((uint64_t)d->first + d->count) * XT_PATCH_WORDS * 4, op,
                           "table", err)) ||
        (s = check_binding(&d->row_base, (uint64_t)(d->n_rows ? d->n_rows : 1) * 4, op,
                           "row bases", err)) ||
        (s = check_binding(&d->src, (uint64_t)(d->src_floats ? d->src_floats : 1) * 4, op,
                           "source", err)) ||
        (s = check_binding(&d->target, vectors * d->width * 4, op, "target", err)))
        return s;
    xt_binding b[5] = {d->table, d->row_base, d->src, d->target, d->table};
    if (per_expert) {
        if ((s = check_binding(&d->ids, (uint64_t)d->n_tokens * d->n_used * 4, op, "ids", err)))
            return s;
        b[4] = d->ids;
    }
    xt_push_patch pc = {.first = d->first, .count = d->count, .layer = d->layer, .site = d->site,
                        .n_rows = d->n_rows, .n_tokens = d->n_tokens, .width = d->width,
                        .n_used = per_expert ? d->n_used : 0, .src_floats = d->src_floats};
    /* one workgroup per entry */
    return dispatch_1d(k, cmd, "patch_apply", WG_PATCH, (uint64_t)d->count * WG_PATCH, &pc,
                       sizeof pc, b, 5, err);
}

/* ---- the MoE block ------------------------------------------------------------------------- */

xt_status xt_moe_workspace_create(xt_vk_context *ctx, const xt_moe_layer_weights *w,
                                  uint32_t max_tokens, xt_moe_workspace *ws, xt_error *err)
{
    memset(ws, 0, sizeof *ws);
    if (!w->gate_inp || !w->gate_exps || !w->up_exps || !w->down_exps || max_tokens == 0)
        return xt_error_set(err, XT_ERR_USAGE, "moe workspace: missing weights or zero tokens");
    uint64_t T = max_tokens, E = (uint64_t)w->gate_inp->ne[1], k = w->n_used;
    uint64_t n_embd = (uint64_t)w->gate_inp->ne[0], n_ff = (uint64_t)w->gate_exps->ne[1];
    bool sh = w->gate_inp_shexp != NULL;
    uint64_t n_ff_s = sh ? (uint64_t)w->gate_shexp->ne[1] : 0;
    if (k == 0 || k > E || E > XT_MOE_MAX_EXPERT || T * k > UINT32_MAX / 2)
        return xt_error_set(err, XT_ERR_USAGE, "moe workspace: top-%u of %llu experts", w->n_used,
                            (unsigned long long)E);
    ws->max_tokens = max_tokens;
    ws->n_embd = (uint32_t)n_embd;
    ws->n_ff = (uint32_t)n_ff;
    ws->n_ff_shared = (uint32_t)n_ff_s;
    ws->n_expert = (uint32_t)E;
    ws->n_used = (uint32_t)k;
    ws->tile_rows = MOE_TILE_ROWS;
    ws->max_tiles = xt_moe_max_tiles((uint32_t)(T * k), MOE_TILE_ROWS, (uint32_t)E);
    struct {
        xt_buffer *b;
        uint64_t bytes;
        const char *label;
    } list[] = {
        {&ws->logits, T * E * 4, "moe logits"},
        {&ws->probs, T * E * 4, "moe probs"},
        {&ws->ids, T * k * 4, "moe ids"},
        {&ws->weights, T * k * 4, "moe weights"},
        {&ws->counts, E * 4, "moe counts"},
        {&ws->offsets, (E + 1) * 4, "moe offsets"},
        {&ws->order, T * k * 4, "moe order"},
        {&ws->tiles, (uint64_t)ws->max_tiles * 8, "moe tiles"},
        {&ws->args, 12 * 4, "moe args"},
        {&ws->scratch, xt_moe_group_scratch_bytes((uint32_t)(T * k), (uint32_t)E), "moe scratch"},
        {&ws->gate, T * k * n_ff * 4, "moe gate"},
        {&ws->up, T * k * n_ff * 4, "moe up"},
        {&ws->contrib, T * k * n_embd * 4, "moe contributions"},
        {&ws->sh_gate, sh ? T * n_ff_s * 4 : 0, "shared gate"},
        {&ws->sh_up, sh ? T * n_ff_s * 4 : 0, "shared up"},
        {&ws->sh_logit, sh ? T * 4 : 0, "shared gate logit"},
        {&ws->shared, sh ? T * n_embd * 4 : 0, "shared contribution"},
    };
    for (size_t i = 0; i < sizeof list / sizeof *list; i++) {
        if (!list[i].bytes) continue;
        xt_status s = xt_buffer_create(
            ctx, &(xt_buffer_desc){.size_bytes = list[i].bytes, .label = list[i].label},
            list[i].b, err);
        if (s) {
            xt_moe_workspace_destroy(ctx, ws);
            return s;
        }
    }
    return XT_OK;
}

void xt_moe_workspace_destroy(xt_vk_context *ctx, xt_moe_workspace *ws)
{
    xt_buffer *all[] = {&ws->logits, &ws->probs,   &ws->ids,     &ws->weights,  &ws->counts,
                        &ws->offsets, &ws->order,  &ws->tiles,   &ws->args,     &ws->scratch,
                        &ws->gate,    &ws->up,     &ws->contrib, &ws->sh_gate,  &ws->sh_up,
                        &ws->sh_logit, &ws->shared};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xt_buffer_destroy(ctx, all[i]);
    memset(ws, 0, sizeof *ws);
}

static xt_binding whole(const xt_buffer *b)
{
    return (xt_binding){.buffer = b};
}

/* The layer's patch pass at one site, when a table is given. */
static xt_status layer_patch(xt_kernels *k, xt_cmd *cmd, const xt_moe_layer_desc *d,
                             uint32_t site, const xt_binding *target, uint32_t width,
                             xt_error *err)
{
    if (!d->patch || d->patch->count == 0) return XT_OK;
    xt_patch_desc p = *d->patch;
    p.site = site;
    p.target = *target;
    p.n_tokens = d->n_tokens;
    p.width = width;
    p.ids = whole(&d->ws->ids);
    p.n_used = d->ws->n_used;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    return xt_op_patch(k, cmd, &p, err);
}

xt_status xt_op_moe_layer(xt_kernels *k, xt_cmd *cmd, const xt_moe_layer_desc *d, xt_error *err)
{
    const xt_moe_layer_weights *w = d->w;
    xt_moe_workspace *ws = d->ws;
    uint32_t T = d->n_tokens, kk = ws->n_used, E = ws->n_expert, n_embd = ws->n_embd;
    if (T == 0) return XT_OK;
    if (T > ws->max_tokens || !d->x)
        return xt_error_set(err, XT_ERR_USAGE, "moe layer: %u tokens, workspace holds %u", T,
                            ws->max_tokens);
    bool sh = w->gate_inp_shexp != NULL && ws->shared.buffer;
    xt_mm_array x = {d->x, d->x_offset};
    xt_status s;
    /* router logits, and the shared expert's input projections (independent of routing) */
    if ((s = xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = w->gate_inp, .rows = T, .x = x,
                                                     .y = {&ws->logits, 0}},
                          err)))
        return s;
    if (sh && ((s = xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = w->gate_shexp, .rows = T,
                                                            .x = x, .y = {&ws->sh_gate, 0}},
                                 err)) ||
               (s = xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = w->up_shexp, .rows = T, .x = x,
                                                            .y = {&ws->sh_up, 0}},
                                 err)) ||
               (s = xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = w->gate_inp_shexp, .rows = T,
                                                            .x = x, .y = {&ws->sh_logit, 0}},
                                 err))))
        return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    xt_binding ids = whole(&ws->ids), wts = whole(&ws->weights), contrib = whole(&ws->contrib);
    if ((s = xt_op_router(k, cmd,
                          &(xt_router_desc){.n_tokens = T, .n_expert = E, .n_used = kk,
                                            .renorm = w->renorm, .logits = whole(&ws->logits),
                                            .mask = d->mask, .mask_rows = d->mask_rows,
                                            .force = d->force, .ids = ids, .weights = wts,
                                            .probs = whole(&ws->probs)},
                          err)))
        return s;
    if (sh) {
        xt_binding g = whole(&ws->sh_gate), u = whole(&ws->sh_up);
        if ((s = xt_op_moe_swiglu(k, cmd, T, ws->n_ff_shared, &g, &u, err))) return s;
    }
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    xt_moe_groups groups = {.n_tokens = T, .n_used = kk, .n_expert = E,
                            .tile_rows = ws->tile_rows,
                            .max_tiles = xt_moe_max_tiles(T * kk, ws->tile_rows, E), .ids = ids,
                            .counts = whole(&ws->counts), .offsets = whole(&ws->offsets),
                            .order = whole(&ws->order), .tiles = whole(&ws->tiles),
                            .args = &ws->args};
    xt_binding scratch = whole(&ws->scratch);
    if ((s = xt_op_moe_group(k, cmd, &groups, &scratch, err))) return s;
    if (sh && (s = xt_op_matmul(k, cmd, &(xt_matmul_desc){.w = w->down_shexp, .rows = T,
                                                           .x = {&ws->sh_gate, 0},
                                                           .y = {&ws->shared, 0}},
                                err)))
        return s;
    if ((s = layer_patch(k, cmd, d, XT_SITE_ROUTER_WEIGHT, &wts, 1, err))) return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    /* the expert FFNs over tokens grouped by expert */
    if ((s = xt_op_matmul_id(k, cmd, &(xt_matmul_id_desc){.w = w->gate_exps, .groups = &groups,
                                                          .x = x, .x_rows = T, .x_row_div = kk,
                                                          .y = {&ws->gate, 0}, .args_slot = 1},
                             err)))
        return s;
    /* matmul_id rewrites its args slot before its indirect dispatch; the args binding spans all
     * slots, so the previous call's indirect read must be ordered before (write-after-read) */
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if ((s = xt_op_matmul_id(k, cmd, &(xt_matmul_id_desc){.w = w->up_exps, .groups = &groups,
                                                          .x = x, .x_rows = T, .x_row_div = kk,
                                                          .y = {&ws->up, 0}, .args_slot = 2},
                             err)))
        return s;
    if (sh) {
        xt_binding shb = whole(&ws->shared), sl = whole(&ws->sh_logit);
        if ((s = xt_op_moe_shared_gate(k, cmd, T, n_embd, &shb, &sl, err))) return s;
    }
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    xt_binding g = whole(&ws->gate), u = whole(&ws->up);
    if ((s = xt_op_moe_swiglu(k, cmd, T * kk, ws->n_ff, &g, &u, err))) return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if ((s = xt_op_matmul_id(k, cmd, &(xt_matmul_id_desc){.w = w->down_exps, .groups = &groups,
                                                          .x = {&ws->gate, 0},
                                                          .x_rows = T * kk, .x_row_div = 1,
                                                          .y = {&ws->contrib, 0}, .args_slot = 3},
                             err)))
        return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if ((s = xt_op_moe_weight(k, cmd, T * kk, n_embd, E, &contrib, &wts, &ids, err))) return s;
    if ((s = layer_patch(k, cmd, d, XT_SITE_EXPERT, &contrib, n_embd, err))) return s;
    xt_binding shb = whole(&ws->shared);
    if (sh && (s = layer_patch(k, cmd, d, XT_SITE_SHARED_EXPERT, &shb, n_embd, err))) return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    if ((s = xt_op_moe_combine(k, cmd, T, kk, n_embd, &contrib, sh ? &shb : NULL, &d->y, err)))
        return s;
    return layer_patch(k, cmd, d, XT_SITE_MOE_OUT, &d->y, n_embd, err);
}
