/* Recording of the quantized-weight ops (see op_matmul.h); shaders in shaders/matmul.glsl,
 * get_rows.glsl and logit_gather.glsl, one SPIR-V module per op and weight type
 * (`matmul_q4_K`, `matmul_id_q4_K`, `get_rows_q4_K`, `logit_gather_q4_K`, ...). */
#include "op_matmul.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_matmul.h"
#include "expertrace/quant.h"

#define WG_SIZE 64u /* invocations per workgroup of get_rows and logit_gather */

bool xt_op_matmul_supports(uint32_t type)
{
    switch (type) {
    case XT_TYPE_F32: case XT_TYPE_F16: case XT_TYPE_BF16: case XT_TYPE_Q4_0: case XT_TYPE_Q4_1:
    case XT_TYPE_Q5_0: case XT_TYPE_Q5_1: case XT_TYPE_Q8_0: case XT_TYPE_Q2_K: case XT_TYPE_Q3_K:
    case XT_TYPE_Q4_K: case XT_TYPE_Q5_K: case XT_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* The cached pipeline `<op>_<type>` with the workgroup size as spec constant 0 (get_rows,
 * logit_gather). */
static xt_status get_pipeline(xt_kernels *k, const char *op, uint32_t type, uint32_t push_bytes,
                              uint32_t bindings, const xt_pipeline **p, xt_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%s", op, xt_type_name(type));
    xt_spec_constant spec[1] = {{0, WG_SIZE}};
    return xt_kernels_pipeline(k,
                               &(xt_pipeline_desc){.shader = name, .spec = spec, .spec_count = 1,
                                                   .push_bytes = push_bytes,
                                                   .binding_count = bindings},
                               p, err);
}

/* ---- matmul tiles per device class ------------------------------------------------------------
 * A tile of shaders/matmul.comp: direct (a register tile per invocation, buffers read directly:
 * what a CPU device runs fast, and what a GPU runs for a handful of rows) or staged (weights
 * dequantized cooperatively into shared memory once per K step and reused by every token row of
 * the tile: what a GPU runs fast). The shape changes with the rows but never the reduction
 * order, so results do not depend on it. */
typedef struct mm_tile {
    bool staged;
    uint32_t wg; /* invocations */
    uint32_t tt; /* token rows per tile */
    uint32_t nr; /* weight rows per invocation */
    uint32_t wt; /* staged: token lanes (wg / wt invocations per token row) */
    uint32_t sg; /* direct: subgroup size to spread x loads over, 0: none */
} mm_tile;

static uint32_t pow2_at_least(uint32_t v, uint32_t cap)
{
    uint32_t r = 1;
    while (r < v && r < cap) r *= 2;
    return r;
}

/* Weight rows one workgroup covers. */
static uint32_t tile_cols(const mm_tile *t)
{
    return t->staged ? t->wg / t->wt * t->nr : t->wg * t->nr;
}

/* The subgroup size the direct tile may spread its x loads over: the device's, when it has
 * subgroup broadcast in compute shaders, it divides 32 and every compute subgroup has that size
 * (the device has one size only, as lavapipe: 8 = its SIMD width); feature floor: none. */
static uint32_t spread_subgroup(const xt_vk_device_info *info)
{
    uint32_t sg = info->subgroup.size;
    bool fixed = info->subgroup.min_size == sg && info->subgroup.max_size == sg;
    bool ok = info->enabled.subgroup_ballot && fixed && sg && sg <= 32 && 32 % sg == 0;
    return ok ? sg : 0;
}

/* The tile for `rows` token rows per tile (a dense matmul's rows, or the entries of one expert
 * tile) on this device. EXPERTRACE_MM_TILE=direct|staged,WG,TT,NR[,WT] overrides it (tuning). */
static mm_tile choose_tile(const xt_kernels *k, uint32_t rows)
{
    const xt_vk_device_info *info = xt_vk_context_info(xt_kernels_context(k));
    mm_tile t;
    if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        /* llvmpipe runs 8 invocations as one SIMD batch and a load inside a loop one lane at a
         * time, so loads are what costs: a tall register tile (8 weight rows x 16 token rows,
         * 256 columns per workgroup, which divides every Qwen3 width) reuses each dequantized
         * weight 16 times and each x value 8 times. Below 16 rows the weight loads dominate
         * anyway, so a partly empty tile costs little, and two shapes (1 row for decode, with 4
         * weight rows to keep more workgroups, and 16) keep the pipelines to compile few:
         * llvmpipe compiles each one at its first dispatch, seconds for a tile this size.
         * Measured with `bench --ops matmul` and EXPERTRACE_MM_TILE. */
        bool one = rows <= 1;
        t = (mm_tile){.staged = false, .wg = 32, .tt = one ? 1 : XT_MM_MAX_TD, .nr = one ? 4 : 8,
                      .sg = spread_subgroup(info)};
    } else if (rows >= 8) {
        t = (mm_tile){.staged = true, .wg = 128, .tt = pow2_at_least(rows, 32), .nr = 4,
                      .wt = 8};
    } else {
        t = (mm_tile){.staged = false, .wg = 64, .tt = pow2_at_least(rows, 4), .nr = 1};
    }
    const char *env = getenv("EXPERTRACE_MM_TILE");
    if (env && *env) {
        char mode[16] = {0};
        unsigned wg = 0, tt = 0, nr = 0, wt = 0;
        int n = sscanf(env, "%15[a-z],%u,%u,%u,%u", mode, &wg, &tt, &nr, &wt);
        bool staged = !strcmp(mode, "staged");
        mm_tile o = {.staged = staged, .wg = wg, .tt = tt, .nr = nr, .wt = wt,
                     .sg = staged ? 0 : spread_subgroup(info)};
        bool ok = n >= 4 && (staged || !strcmp(mode, "direct")) && wg && wg <= 1024 && tt &&
                  tt <= (staged ? XT_MM_MAX_T : XT_MM_MAX_TD) && nr && nr <= XT_MM_MAX_N;
        if (ok && staged)
            ok = wt && wg % wt == 0 && tt % wt == 0 && tt / wt <= XT_MM_MAX_RT &&
                 tile_cols(&o) <= XT_MM_MAX_BN;
        if (ok) t = o;
    }
    return t;
}

/* The matmul pipeline `<op>[_staged]_<type>` for tile t. */
static xt_status get_mm_pipeline(xt_kernels *k, const char *op, uint32_t type, const mm_tile *t,
                                 uint32_t push_bytes, uint32_t bindings, const xt_pipeline **p,
                                 xt_error *err)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s_%s", op, t->staged ? "_staged" : "", xt_type_name(type));
    xt_spec_constant spec[4] = {{0, t->wg}, {1, t->tt}, {2, t->nr}, {3, t->wt}};
    if (!t->staged) spec[3] = (xt_spec_constant){4, t->sg};
    return xt_kernels_pipeline(k,
                               &(xt_pipeline_desc){.shader = name, .spec = spec,
                                                   .spec_count = 4,
                                                   .push_bytes = push_bytes,
                                                   .binding_count = bindings},
                               p, err);
}

/* Binds `bytes` of a at an offset aligned for storage buffers; *elem_off is the remainder in
 * 32-bit words, for the shader's push constants. */
static xt_status bind_array(xt_kernels *k, const char *op, const char *what, const xt_mm_array *a,
                            uint64_t bytes, xt_binding *b, uint32_t *elem_off, xt_error *err)
{
    const xt_vk_context *ctx = xt_kernels_context(k);
    if (!a->buf)
        return xt_error_set(err, XT_ERR_USAGE, "%s: no buffer for %s", op, what);
    if (a->offset % 4 || a->offset > a->buf->size_bytes || bytes > a->buf->size_bytes - a->offset)
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: %s needs %" PRIu64 " bytes at offset %" PRIu64
                            " (a multiple of 4) of a %" PRIu64 "-byte buffer",
                            op, what, bytes, (uint64_t)a->offset, (uint64_t)a->buf->size_bytes);
    uint64_t align = xt_vk_context_info(ctx)->limits.min_storage_buffer_offset_alignment;
    if (align == 0) align = 1;
    uint64_t base = a->offset - a->offset % align;
    uint64_t range = (a->offset - base + bytes + 3) / 4 * 4;
    if (range > a->buf->size_bytes - base) range = a->buf->size_bytes - base;
    if (range > xt_binding_limit_bytes(ctx))
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: %s spans %" PRIu64 " bytes, more than one binding may cover (%" PRIu64
                            ")",
                            op, what, range, xt_binding_limit_bytes(ctx));
    *b = (xt_binding){.buffer = a->buf, .offset = base, .range_bytes = range};
    *elem_off = (uint32_t)((a->offset - base) / 4);
    return XT_OK;
}

/* Bytes of an fp32/u32 matrix [rows][stride] whose rows hold `width` used elements. */
static uint64_t matrix_bytes(uint32_t rows, uint32_t stride, uint32_t width)
{
    return rows ? ((uint64_t)(rows - 1) * stride + width) * 4 : 0;
}

/* Checks shared by every op: a supported type, sizes that fit the shaders' 32-bit indexing. */
static xt_status check_weights(const char *op, const xt_dtensor *w, xt_error *err)
{
    if (!w || !w->n_chunks) return xt_error_set(err, XT_ERR_USAGE, "%s: no weight tensor", op);
    if (!xt_op_matmul_supports(w->type))
        return xt_error_set(err, XT_ERR_UNSUPPORTED, "%s: weight '%s' has type %s, which the shaders"
                            " do not handle", op, w->name, xt_type_name(w->type));
    if (w->ne[0] <= 0 || w->ne[0] > UINT32_MAX / 2 || w->n_rows > UINT32_MAX ||
        w->row_bytes > UINT32_MAX)
        return xt_error_set(err, XT_ERR_RANGE, "%s: weight '%s' is too large for 32-bit indexing",
                            op, w->name);
    return XT_OK;
}

static xt_binding chunk_binding(const xt_dtensor_chunk *c)
{
    return (xt_binding){.buffer = &c->buf, .offset = 0, .range_bytes = 0};
}

/* ---- matmul --------------------------------------------------------------------------------- */

xt_status xt_op_matmul(xt_kernels *k, xt_cmd *cmd, const xt_matmul_desc *d, xt_error *err)
{
    const char *op = "matmul";
    const xt_dtensor *w = d->w;
    xt_status s = check_weights(op, w, err);
    if (s) return s;
    uint32_t K = (uint32_t)w->ne[0], N = (uint32_t)w->ne[1];
    uint64_t n_slabs = (uint64_t)w->ne[2] * (uint64_t)w->ne[3];
    if (d->expert >= n_slabs)
        return xt_error_set(err, XT_ERR_RANGE, "%s: expert %" PRIu32 " of '%s', which has %" PRIu64,
                            op, d->expert, w->name, n_slabs);
    if (d->rows == 0) return XT_OK;
    uint32_t xs = d->x_stride ? d->x_stride : K, ys = d->y_stride ? d->y_stride : N;
    if (xs < K || ys < N)
        return xt_error_set(err, XT_ERR_USAGE, "%s: strides %" PRIu32 "/%" PRIu32
                            " below the row widths %" PRIu32 "/%" PRIu32, op, xs, ys, K, N);
    xt_binding bx, by;
    uint32_t x_off, y_off;
    if ((s = bind_array(k, op, "x", &d->x, matrix_bytes(d->rows, xs, K), &bx, &x_off, err)) ||
        (s = bind_array(k, op, "y", &d->y, matrix_bytes(d->rows, ys, N), &by, &y_off, err)))
        return s;
    mm_tile t = choose_tile(k, d->rows);
    const xt_pipeline *p;
    if ((s = get_mm_pipeline(k, "matmul", w->type, &t, sizeof(xt_push_matmul), 3, &p, err)))
        return s;
    uint32_t cols = tile_cols(&t);

    uint64_t base = (uint64_t)d->expert * N;
    for (uint32_t c = 0; c < w->n_chunks; c++) {
        const xt_dtensor_chunk *ch = &w->chunks[c];
        uint64_t lo = base > ch->row_begin ? base : ch->row_begin;
        uint64_t hi = base + N < ch->row_begin + ch->row_count ? base + N
                                                              : ch->row_begin + ch->row_count;
        if (lo >= hi) continue;
        xt_push_matmul pc = {.rows = d->rows, .k = K, .n_cols = (uint32_t)(hi - lo),
                             .col0 = (uint32_t)(lo - base), .w_row0 = (uint32_t)(lo - ch->row_begin),
                             .row_bytes = (uint32_t)w->row_bytes, .x_off = x_off, .x_stride = xs,
                             .y_off = y_off, .y_stride = ys};
        xt_binding b[3] = {chunk_binding(ch), bx, by};
        if ((s = xt_dispatch(cmd, p, (pc.n_cols + cols - 1) / cols, (d->rows + t.tt - 1) / t.tt,
                             1, &pc, sizeof pc, b, 3, err)))
            return s;
    }
    return XT_OK;
}

/* ---- matmul_id ------------------------------------------------------------------------------ */

xt_status xt_op_matmul_id(xt_kernels *k, xt_cmd *cmd, const xt_matmul_id_desc *d, xt_error *err)
{
    const char *op = "matmul_id";
    const xt_dtensor *w = d->w;
    const xt_moe_groups *g = d->groups;
    xt_status s = check_weights(op, w, err);
    if (s) return s;
    if (!g || !g->args) return xt_error_set(err, XT_ERR_USAGE, "%s: no expert groups", op);
    uint32_t K = (uint32_t)w->ne[0], N = (uint32_t)w->ne[1];
    if ((uint64_t)w->ne[2] != g->n_expert || w->ne[3] != 1)
        return xt_error_set(err, XT_ERR_USAGE, "%s: '%s' has %" PRId64 " experts, groups %" PRIu32,
                            op, w->name, w->ne[2], g->n_expert);
    uint64_t entries64 = (uint64_t)g->n_tokens * g->n_used;
    if (entries64 == 0) return XT_OK;
    if (entries64 > UINT32_MAX / 2 || (uint64_t)N * g->n_expert > UINT32_MAX || g->tile_rows == 0)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %" PRIu64 " entries or tile rows %" PRIu32
                            " out of range", op, entries64, g->tile_rows);
    uint32_t entries = (uint32_t)entries64;
    uint32_t div = d->x_row_div ? d->x_row_div : 1;
    uint32_t xs = d->x_stride ? d->x_stride : K, ys = d->y_stride ? d->y_stride : N;
    uint32_t slot = d->args_slot ? d->args_slot : 1;
    if (xs < K || ys < N || slot > 3)
        return xt_error_set(err, XT_ERR_USAGE, "%s: strides below the row widths or args slot %"
                            PRIu32 " not in 1..3", op, slot);
    if (d->x_rows < (entries - 1) / div + 1)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %" PRIu32 " entries / %" PRIu32
                            " need %" PRIu32 " x rows, have %" PRIu32,
                            op, entries, div, (entries - 1) / div + 1, d->x_rows);
    /* Token rows per tile: the expert tiles' rows, or fewer when the entries spread over the
     * experts leave fewer per expert on average (decode). */
    uint32_t per_expert = (entries + g->n_expert - 1) / g->n_expert;
    mm_tile t = choose_tile(k, per_expert < g->tile_rows ? per_expert : g->tile_rows);
    const xt_vk_device_info *info = xt_vk_context_info(xt_kernels_context(k));
    uint32_t col_blocks = (N + tile_cols(&t) - 1) / tile_cols(&t);
    if (g->max_tiles > info->limits.max_compute_work_group_count[0] ||
        col_blocks > info->limits.max_compute_work_group_count[1])
        return xt_error_set(err, XT_ERR_RANGE, "%s: %" PRIu32 " tiles x %" PRIu32
                            " column blocks exceed the device's workgroup counts", op,
                            g->max_tiles, col_blocks);
    /* the group lists are bound as given; check that they are large enough */
    const struct { const xt_binding *b; uint64_t bytes; const char *name; } lists[3] = {
        {&g->order, (uint64_t)entries * 4, "order"},
        {&g->tiles, (uint64_t)g->max_tiles * 8, "tiles"},
        {&g->offsets, ((uint64_t)g->n_expert + 1) * 4, "offsets"},
    };
    for (int i = 0; i < 3; i++) {
        const xt_binding *b = lists[i].b;
        uint64_t have = !b->buffer ? 0
                        : b->range_bytes ? b->range_bytes
                                         : b->buffer->size_bytes - b->offset;
        if (have < lists[i].bytes)
            return xt_error_set(err, XT_ERR_RANGE, "%s: groups' %s binding has %" PRIu64
                                " bytes, needs %" PRIu64, op, lists[i].name, have, lists[i].bytes);
    }
    xt_binding bx, by;
    uint32_t x_off, y_off;
    if ((s = bind_array(k, op, "x", &d->x, matrix_bytes(d->x_rows, xs, K), &bx, &x_off, err)) ||
        (s = bind_array(k, op, "y", &d->y, matrix_bytes(entries, ys, N), &by, &y_off, err)))
        return s;

    const xt_pipeline *pa, *p;
    if ((s = xt_kernels_pipeline(k, &(xt_pipeline_desc){.shader = "matmul_id_args",
                                                         .push_bytes = sizeof(xt_push_matmul_id_args),
                                                         .binding_count = 1},
                                 &pa, err)) ||
        (s = get_mm_pipeline(k, "matmul_id", w->type, &t, sizeof(xt_push_matmul_id), 6, &p,
                             err)))
        return s;

    xt_push_matmul_id_args pa_pc = {.slot = slot, .col_blocks = col_blocks};
    xt_binding b_args = {.buffer = g->args, .offset = 0, .range_bytes = 48};
    if ((s = xt_dispatch(cmd, pa, 1, 1, 1, &pa_pc, sizeof pa_pc, &b_args, 1, err))) return s;
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_INDIRECT);

    for (uint32_t c = 0; c < w->n_chunks; c++) {
        const xt_dtensor_chunk *ch = &w->chunks[c];
        xt_push_matmul_id pc = {
            .k = K, .n_out = N, .n_expert = g->n_expert, .row_bytes = (uint32_t)w->row_bytes,
            .chunk_row_begin = (uint32_t)ch->row_begin, .chunk_row_count = (uint32_t)ch->row_count,
            .n_entries = entries, .x_row_div = div, .x_rows = d->x_rows,
            .tile_rows = g->tile_rows, .max_tiles = g->max_tiles, .x_off = x_off, .x_stride = xs,
            .y_off = y_off, .y_stride = ys};
        xt_binding b[6] = {chunk_binding(ch), bx, by, g->order, g->tiles, g->offsets};
        if ((s = xt_dispatch_indirect(cmd, p, g->args, 12u * slot, &pc, sizeof pc, b, 6, err)))
            return s;
    }
    return XT_OK;
}

/* ---- get_rows ------------------------------------------------------------------------------- */

xt_status xt_op_get_rows(xt_kernels *k, xt_cmd *cmd, const xt_get_rows_desc *d, xt_error *err)
{
    const char *op = "get_rows";
    const xt_dtensor *w = d->w;
    xt_status s = check_weights(op, w, err);
    if (s) return s;
    if (d->rows == 0) return XT_OK;
    uint32_t K = (uint32_t)w->ne[0];
    uint32_t ys = d->y_stride ? d->y_stride : K;
    if (ys < K) return xt_error_set(err, XT_ERR_USAGE, "%s: y stride below the row width", op);
    uint64_t n_inv = (uint64_t)d->rows * ((K + 31) / 32);
    if (n_inv > UINT32_MAX)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %" PRIu32 " rows of %" PRIu32
                            " elements are too many for one dispatch", op, d->rows, K);
    xt_binding bi, by, bf;
    uint32_t ids_off, y_off, flag_off = 0;
    if ((s = bind_array(k, op, "ids", &d->ids, (uint64_t)d->rows * 4, &bi, &ids_off, err)) ||
        (s = bind_array(k, op, "y", &d->y, matrix_bytes(d->rows, ys, K), &by, &y_off, err)))
        return s;
    bool has_flag = d->flag.buf != NULL;
    if (has_flag) {
        if ((s = bind_array(k, op, "flag", &d->flag, 4, &bf, &flag_off, err))) return s;
    } else {
        bf = bi; /* never written: has_flag = 0 */
    }
    const xt_pipeline *p;
    if ((s = get_pipeline(k, "get_rows", w->type, sizeof(xt_push_get_rows), 4, &p, err)))
        return s;
    uint32_t groups[3];
    xt_groups_1d(xt_kernels_context(k), n_inv, WG_SIZE, groups);
    for (uint32_t c = 0; c < w->n_chunks; c++) {
        const xt_dtensor_chunk *ch = &w->chunks[c];
        xt_push_get_rows pc = {.rows = d->rows, .k = K, .row_bytes = (uint32_t)w->row_bytes,
                               .chunk_row_begin = (uint32_t)ch->row_begin,
                               .chunk_row_count = (uint32_t)ch->row_count,
                               .n_total_rows = (uint32_t)w->n_rows, .first_chunk = c == 0,
                               .has_flag = has_flag, .ids_off = ids_off, .y_off = y_off,
                               .y_stride = ys, .flag_off = flag_off};
        xt_binding b[4] = {chunk_binding(ch), bi, by, bf};
        if ((s = xt_dispatch(cmd, p, groups[0], groups[1], groups[2], &pc, sizeof pc, b, 4, err)))
            return s;
    }
    return XT_OK;
}

/* ---- logit_gather --------------------------------------------------------------------------- */

xt_status xt_op_logit_gather(xt_kernels *k, xt_cmd *cmd, const xt_logit_gather_desc *d,
                             xt_error *err)
{
    const char *op = "logit_gather";
    const xt_dtensor *w = d->w;
    xt_status s = check_weights(op, w, err);
    if (s) return s;
    if (d->rows == 0) return XT_OK;
    uint32_t K = (uint32_t)w->ne[0];
    uint32_t hs = d->h_stride ? d->h_stride : K;
    if (hs < K) return xt_error_set(err, XT_ERR_USAGE, "%s: h stride below the row width", op);
    if (d->rows > UINT32_MAX / 2)
        return xt_error_set(err, XT_ERR_RANGE, "%s: too many rows", op);
    xt_binding bh, bt, bfo, bl, bd, bf;
    uint32_t h_off, t_off, f_off, l_off, d_off, flag_off = 0;
    if ((s = bind_array(k, op, "h", &d->h, matrix_bytes(d->rows, hs, K), &bh, &h_off, err)) ||
        (s = bind_array(k, op, "true ids", &d->true_ids, (uint64_t)d->rows * 4, &bt, &t_off,
                        err)) ||
        (s = bind_array(k, op, "foil ids", &d->foil_ids, (uint64_t)d->rows * 4, &bfo, &f_off,
                        err)) ||
        (s = bind_array(k, op, "logits", &d->logits, (uint64_t)d->rows * 8, &bl, &l_off, err)) ||
        (s = bind_array(k, op, "diff", &d->diff, (uint64_t)d->rows * 4, &bd, &d_off, err)))
        return s;
    bool has_flag = d->flag.buf != NULL;
    if (has_flag) {
        if ((s = bind_array(k, op, "flag", &d->flag, 4, &bf, &flag_off, err))) return s;
    } else {
        bf = bl; /* never written: has_flag = 0 */
    }
    const xt_pipeline *p;
    if ((s = get_pipeline(k, "logit_gather", w->type, sizeof(xt_push_logit_gather), 7, &p,
                          err)))
        return s;
    xt_push_logit_gather pc = {.rows = d->rows, .k = K, .row_bytes = (uint32_t)w->row_bytes,
                               .n_total_rows = (uint32_t)w->n_rows, .has_flag = has_flag,
                               .h_off = h_off, .h_stride = hs, .true_off = t_off,
                               .foil_off = f_off, .logits_off = l_off, .diff_off = d_off,
                               .flag_off = flag_off};
    xt_binding b[7] = {{0}, bh, bt, bfo, bl, bd, bf};
    uint32_t groups[3];
    xt_groups_1d(xt_kernels_context(k), 2ull * d->rows, WG_SIZE, groups);
    for (uint32_t c = 0; c < w->n_chunks; c++) {
        const xt_dtensor_chunk *ch = &w->chunks[c];
        pc.chunk_row_begin = (uint32_t)ch->row_begin;
        pc.chunk_row_count = (uint32_t)ch->row_count;
        pc.first_chunk = c == 0;
        b[0] = chunk_binding(ch);
        /* Chunks write disjoint logits, but every chunk's dispatch binds the logits and the flag
         * word read-write (the first one may OR into the flag): order them, as synchronization
         * validation requires; a lm head has a handful of chunks at most. */
        if (c > 0) xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
        if ((s = xt_dispatch(cmd, p, groups[0], groups[1], groups[2], &pc, sizeof pc, b, 7, err)))
            return s;
    }
    xt_cmd_barrier(cmd, XT_BARRIER_COMPUTE_TO_COMPUTE);
    pc.finish = 1;
    b[0] = chunk_binding(&w->chunks[0]);
    xt_groups_1d(xt_kernels_context(k), d->rows, WG_SIZE, groups);
    return xt_dispatch(cmd, p, groups[0], groups[1], groups[2], &pc, sizeof pc, b, 7, err);
}
