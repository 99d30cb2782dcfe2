/* GPU ops of the attention family (see op_attn.h): argument checks, bindings at any 4-byte
 * offset, and one dispatch each. The shaders are shaders/{rms_norm,rope,kv_store,attention,add}
 * .comp with their push blocks in shaders/push_attn.h. */
#include "op_attn.h"

#include <math.h>

#include "expertrace/quant.h"
#include "push_attn.h"

/* Workgroup sizes (specialization constant 0 of each shader). Powers of two <= 256. */
enum {
    WG_RMS_NORM = 128, /* invocations per row */
    WG_RMS_NORM_NARROW = 32, /* per row of <= 256 columns */
    WG_ELEMENTWISE = 256,
    WG_ATTENTION = 64, /* keys per tile; head_dim <= 4 * this */
    MAX_HEAD_DIM = 256,
};

/* A binding covering n_words 32-bit words of buf from byte offset: bound at the offset rounded
 * down to minStorageBufferOffsetAlignment, the remainder returned as *word_off for the shader. */
static xt_status bind_words(xt_vk_context *vk, const char *op, const char *what,
                            const xt_buffer *buf, VkDeviceSize offset, uint64_t n_words,
                            xt_binding *b, uint32_t *word_off, xt_error *err)
{
    if (!buf || !buf->buffer) return xt_error_set(err, XT_ERR_USAGE, "%s: no %s buffer", op, what);
    if (offset % 4)
        return xt_error_set(err, XT_ERR_USAGE, "%s: %s offset %llu is not a multiple of 4", op,
                            what, (unsigned long long)offset);
    uint64_t bytes = n_words * 4;
    if (offset > buf->size_bytes || bytes > buf->size_bytes - offset)
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: %s needs %llu bytes at offset %llu, its buffer has %llu", op, what,
                            (unsigned long long)bytes, (unsigned long long)offset,
                            (unsigned long long)buf->size_bytes);
    uint64_t align = xt_vk_context_info(vk)->limits.min_storage_buffer_offset_alignment;
    if (align == 0) align = 1;
    VkDeviceSize base = offset - offset % align;
    uint64_t range = offset + bytes - base;
    if (range > xt_binding_limit_bytes(vk))
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: %s spans %llu bytes, more than one binding may cover (%llu)", op,
                            what, (unsigned long long)range,
                            (unsigned long long)xt_binding_limit_bytes(vk));
    *b = (xt_binding){.buffer = buf, .offset = base, .range_bytes = range};
    *word_off = (uint32_t)((offset - base) / 4);
    return XT_OK;
}

/* An F32 vector tensor {n} held in one chunk: the buffer of a norm weight or bias. */
static xt_status f32_vector(const char *op, const xt_dtensor *t, uint32_t n, const xt_buffer **buf,
                            xt_error *err)
{
    if (t->type != XT_TYPE_F32 || t->n_rows != 1 || t->ne[0] != (int64_t)n || t->n_chunks != 1)
        return xt_error_set(err, XT_ERR_TYPE,
                            "%s: tensor '%s' must be an F32 vector of %u elements (type %u, "
                            "ne0 %lld, %llu rows)",
                            op, t->name, n, t->type, (long long)t->ne[0],
                            (unsigned long long)t->n_rows);
    *buf = &t->chunks[0].buf;
    return XT_OK;
}

/* n work items of one workgroup each, spread over x and y past maxComputeWorkGroupCount[0]
 * (shaders: xt_group_linear). */
static void groups_2d(const xt_vk_context *vk, uint64_t n, uint32_t g[3])
{
    uint64_t max_x = xt_vk_context_info(vk)->limits.max_compute_work_group_count[0];
    g[0] = (uint32_t)(n < max_x ? n : max_x);
    g[1] = (uint32_t)((n + g[0] - 1) / g[0]);
    g[2] = 1;
}

static xt_status pipeline(xt_kernels *k, const char *shader, uint32_t wg, uint32_t head_dim,
                          uint32_t push_bytes, uint32_t bindings, const xt_pipeline **p,
                          xt_error *err)
{
    xt_spec_constant spec[2] = {{0, wg}, {1, head_dim}};
    return xt_kernels_pipeline(k,
                               &(xt_pipeline_desc){.shader = shader,
                                                   .spec = spec,
                                                   .spec_count = head_dim ? 2 : 1,
                                                   .push_bytes = push_bytes,
                                                   .binding_count = bindings},
                               p, err);
}

xt_status xt_op_rms_norm(xt_kernels *k, xt_cmd *cmd, const xt_rms_norm_desc *d, xt_error *err)
{
    static const char op[] = "rms_norm";
    xt_vk_context *vk = xt_kernels_context(k);
    if (d->n_rows == 0) return XT_OK;
    if (d->n_cols == 0) return xt_error_set(err, XT_ERR_USAGE, "%s: zero columns", op);
    const xt_buffer *w = d->w;
    VkDeviceSize w_offset = d->w_offset;
    xt_status st;
    if (d->w_tensor) {
        if ((st = f32_vector(op, d->w_tensor, d->n_cols, &w, err))) return st;
        w_offset = 0;
    }
    uint64_t n = (uint64_t)d->n_rows * d->n_cols;
    xt_binding b[3];
    xt_push_rms_norm pc = {.n_rows = d->n_rows, .n_cols = d->n_cols, .eps = d->eps};
    if ((st = bind_words(vk, op, "x", d->x, d->x_offset, n, &b[0], &pc.x_off, err)) ||
        (st = bind_words(vk, op, "weight", w, w_offset, d->n_cols, &b[1], &pc.w_off, err)) ||
        (st = bind_words(vk, op, "y", d->y, d->y_offset, n, &b[2], &pc.y_off, err)))
        return st;
    const xt_pipeline *p;
    /* Narrow rows (per-head q/k norm) get a narrower workgroup: a choice made by the width
     * alone, never by the row count, so a row's bits still do not depend on its batch. */
    uint32_t wg = d->n_cols <= 256 ? WG_RMS_NORM_NARROW : WG_RMS_NORM;
    if ((st = pipeline(k, "rms_norm", wg, 0, sizeof pc, 3, &p, err))) return st;
    uint32_t g[3];
    groups_2d(vk, d->n_rows, g);
    return xt_dispatch(cmd, p, g[0], g[1], g[2], &pc, sizeof pc, b, 3, err);
}

xt_status xt_op_rope(xt_kernels *k, xt_cmd *cmd, const xt_rope_desc *d, xt_error *err)
{
    static const char op[] = "rope";
    xt_vk_context *vk = xt_kernels_context(k);
    if (d->n_rows == 0) return XT_OK;
    uint32_t n_rot = d->n_rot ? d->n_rot : d->head_dim;
    if (d->head_dim == 0 || d->head_dim % 2 || n_rot % 2 || n_rot > d->head_dim ||
        d->n_heads == 0)
        return xt_error_set(err, XT_ERR_USAGE,
                            "%s: head_dim %u and n_rot %u must be even, n_rot <= head_dim, "
                            "n_heads %u > 0",
                            op, d->head_dim, n_rot, d->n_heads);
    if (d->mode != XT_ROPE_NORM && d->mode != XT_ROPE_NEOX)
        return xt_error_set(err, XT_ERR_USAGE, "%s: unknown mode %d", op, (int)d->mode);
    uint64_t n = (uint64_t)d->n_rows * d->n_heads * d->head_dim;
    xt_binding b[3];
    xt_push_rope pc = {.n_rows = d->n_rows,
                       .n_heads = d->n_heads,
                       .head_dim = d->head_dim,
                       .n_rot = n_rot,
                       .neox = d->mode == XT_ROPE_NEOX,
                       .theta_scale = xt_rope_theta_scale(d->freq_base, n_rot)};
    xt_status st;
    if ((st = bind_words(vk, op, "x", d->x, d->x_offset, n, &b[0], &pc.x_off, err)) ||
        (st = bind_words(vk, op, "positions", d->pos, d->pos_offset, d->n_rows, &b[1],
                         &pc.pos_off, err)) ||
        (st = bind_words(vk, op, "y", d->y, d->y_offset, n, &b[2], &pc.y_off, err)))
        return st;
    const xt_pipeline *p;
    if ((st = pipeline(k, "rope", WG_ELEMENTWISE, 0, sizeof pc, 3, &p, err))) return st;
    uint32_t g[3];
    xt_groups_1d(vk, n / 2, WG_ELEMENTWISE, g);
    return xt_dispatch(cmd, p, g[0], g[1], g[2], &pc, sizeof pc, b, 3, err);
}

xt_status xt_op_kv_store(xt_kernels *k, xt_cmd *cmd, const xt_kv_store_desc *d, xt_error *err)
{
    static const char op[] = "kv_store";
    xt_vk_context *vk = xt_kernels_context(k);
    if (d->n_rows == 0) return XT_OK;
    if (d->width == 0 || d->n_slots == 0)
        return xt_error_set(err, XT_ERR_USAGE, "%s: width %u and n_slots %u must be > 0", op,
                            d->width, d->n_slots);
    uint64_t n = (uint64_t)d->n_rows * d->width, cache = (uint64_t)d->n_slots * d->width;
    xt_binding b[5];
    uint32_t k_cache_off, v_cache_off;
    xt_push_kv_store pc = {.n_rows = d->n_rows, .width = d->width, .n_slots = d->n_slots};
    xt_status st;
    if ((st = bind_words(vk, op, "k", d->k, d->k_offset, n, &b[0], &pc.k_off, err)) ||
        (st = bind_words(vk, op, "v", d->v, d->v_offset, n, &b[1], &pc.v_off, err)) ||
        (st = bind_words(vk, op, "slots", d->slots, d->slots_offset, d->n_rows, &b[2],
                         &pc.slot_off, err)) ||
        (st = bind_words(vk, op, "k_cache", d->k_cache, 0, cache, &b[3], &k_cache_off, err)) ||
        (st = bind_words(vk, op, "v_cache", d->v_cache, 0, cache, &b[4], &v_cache_off, err)))
        return st;
    const xt_pipeline *p;
    if ((st = pipeline(k, "kv_store", WG_ELEMENTWISE, 0, sizeof pc, 5, &p, err))) return st;
    uint32_t g[3];
    xt_groups_1d(vk, n, WG_ELEMENTWISE, g);
    return xt_dispatch(cmd, p, g[0], g[1], g[2], &pc, sizeof pc, b, 5, err);
}

xt_status xt_op_attention(xt_kernels *k, xt_cmd *cmd, const xt_attention_desc *d, xt_error *err)
{
    static const char op[] = "attention";
    xt_vk_context *vk = xt_kernels_context(k);
    if (d->n_rows == 0) return XT_OK;
    if (d->n_head == 0 || d->n_kv_head == 0 || d->n_head % d->n_kv_head)
        return xt_error_set(err, XT_ERR_USAGE, "%s: n_kv_head %u must divide n_head %u", op,
                            d->n_kv_head, d->n_head);
    if (d->head_dim == 0 || d->head_dim % 4 || d->head_dim > MAX_HEAD_DIM ||
        d->head_dim > 4 * WG_ATTENTION)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: head_dim %u (supported: multiples of 4 up to %u)", op,
                            d->head_dim, MAX_HEAD_DIM);
    if (d->n_slots == 0) return xt_error_set(err, XT_ERR_USAGE, "%s: empty K/V cache", op);
    uint64_t n_q = (uint64_t)d->n_rows * d->n_head * d->head_dim;
    uint64_t cache = (uint64_t)d->n_slots * d->n_kv_head * d->head_dim;
    xt_binding b[5];
    uint32_t k_cache_off, v_cache_off;
    xt_push_attention pc = {.n_rows = d->n_rows,
                            .n_head = d->n_head,
                            .n_kv_head = d->n_kv_head,
                            .n_slots = d->n_slots,
                            .scale = d->scale != 0.0f ? d->scale
                                                      : 1.0f / sqrtf((float)d->head_dim)};
    xt_status st;
    if ((st = bind_words(vk, op, "q", d->q, d->q_offset, n_q, &b[0], &pc.q_off, err)) ||
        (st = bind_words(vk, op, "k_cache", d->k_cache, 0, cache, &b[1], &k_cache_off, err)) ||
        (st = bind_words(vk, op, "v_cache", d->v_cache, 0, cache, &b[2], &v_cache_off, err)) ||
        (st = bind_words(vk, op, "rows", d->rows, d->rows_offset,
                         (uint64_t)d->n_rows * XT_ATTN_ROW_WORDS, &b[3], &pc.row_off, err)) ||
        (st = bind_words(vk, op, "out", d->out, d->out_offset, n_q, &b[4], &pc.out_off, err)))
        return st;
    const xt_pipeline *p;
    if ((st = pipeline(k, "attention", WG_ATTENTION, d->head_dim, sizeof pc, 5, &p, err)))
        return st;
    uint32_t g[3];
    groups_2d(vk, (uint64_t)d->n_rows * d->n_head, g);
    return xt_dispatch(cmd, p, g[0], g[1], g[2], &pc, sizeof pc, b, 5, err);
}

xt_status xt_op_add(xt_kernels *k, xt_cmd *cmd, const xt_add_desc *d, xt_error *err)
{
    static const char op[] = "add";
    xt_vk_context *vk = xt_kernels_context(k);
    if (d->n_rows == 0) return XT_OK;
    if (d->n_cols == 0) return xt_error_set(err, XT_ERR_USAGE, "%s: zero columns", op);
    const xt_buffer *bb = d->b;
    VkDeviceSize b_offset = d->b_offset;
    bool bias = d->bias || d->b_tensor;
    xt_status st;
    if (d->b_tensor) {
        if ((st = f32_vector(op, d->b_tensor, d->n_cols, &bb, err))) return st;
        b_offset = 0;
    }
    uint64_t n = (uint64_t)d->n_rows * d->n_cols;
    xt_binding b[3];
    xt_push_add pc = {.n_rows = d->n_rows, .n_cols = d->n_cols,
                      .b_row_stride = bias ? 0 : d->n_cols};
    if ((st = bind_words(vk, op, "a", d->a, d->a_offset, n, &b[0], &pc.a_off, err)) ||
        (st = bind_words(vk, op, "b", bb, b_offset, bias ? d->n_cols : n, &b[1], &pc.b_off,
                         err)) ||
        (st = bind_words(vk, op, "y", d->y, d->y_offset, n, &b[2], &pc.y_off, err)))
        return st;
    const xt_pipeline *p;
    if ((st = pipeline(k, "add", WG_ELEMENTWISE, 0, sizeof pc, 3, &p, err))) return st;
    uint32_t g[3];
    xt_groups_1d(vk, n, WG_ELEMENTWISE, g);
    return xt_dispatch(cmd, p, g[0], g[1], g[2], &pc, sizeof pc, b, 3, err);
}
