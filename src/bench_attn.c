/* Micro-benchmark of the attention family at Qwen3-30B-A3B shapes (n_embd 2048, 32 q heads and
 * 4 kv heads of 128, NEOX RoPE): RMSNorm (hidden rows and per-head q norm), RoPE of q, the K/V
 * store, and attention for T tokens as one prefill sequence and as T wavefront rows against a
 * 16-token parent. GPU timestamps around each dispatch, median of b->repeats runs. FLOP and bytes
 * are what the op must do at least (each input read once, each output written once). */
#include <math.h>
#include <stdlib.h>

#include "bench.h"
#include "op_attn.h"

enum { N_EMBD = 2048, N_HEAD = 32, N_KV = 4, HEAD_DIM = 128, PARENT = 16 };

typedef struct attn_bufs {
    xt_buffer x, y, w, q, pos, k, v, slots, k_cache, v_cache, rows, out;
    uint32_t max_t, n_slots;
} attn_bufs;

static void bufs_destroy(xt_vk_context *vk, attn_bufs *a)
{
    xt_buffer *all[] = {&a->x, &a->y, &a->w, &a->q, &a->pos, &a->k, &a->v,
                        &a->slots, &a->k_cache, &a->v_cache, &a->rows, &a->out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) xt_buffer_destroy(vk, all[i]);
}

/* Every buffer for the largest T, filled with 0.01f (fill pattern) or uploaded indices. */
static xt_status bufs_create(xt_vk_context *vk, uint32_t max_t, attn_bufs *a, xt_error *err)
{
    *a = (attn_bufs){.max_t = max_t, .n_slots = PARENT + max_t};
    struct {
        xt_buffer *buf;
        uint64_t words;
    } spec[] = {{&a->x, (uint64_t)max_t * N_EMBD},
                {&a->y, (uint64_t)max_t * N_EMBD},
                {&a->w, N_EMBD},
                {&a->q, (uint64_t)max_t * N_HEAD * HEAD_DIM},
                {&a->pos, max_t},
                {&a->k, (uint64_t)max_t * N_KV * HEAD_DIM},
                {&a->v, (uint64_t)max_t * N_KV * HEAD_DIM},
                {&a->slots, max_t},
                {&a->k_cache, (uint64_t)a->n_slots * N_KV * HEAD_DIM},
                {&a->v_cache, (uint64_t)a->n_slots * N_KV * HEAD_DIM},
                {&a->rows, (uint64_t)max_t * 3},
                {&a->out, (uint64_t)max_t * N_HEAD * HEAD_DIM}};
    xt_status st = XT_OK;
    xt_cmd *cmd = NULL;
    for (size_t i = 0; i < sizeof spec / sizeof spec[0] && !st; i++)
        st = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = spec[i].words * 4,
                                                    .label = "bench"},
                              spec[i].buf, err);
    if (!st) st = xt_cmd_create(vk, &cmd, err);
    if (!st) st = xt_cmd_begin(cmd, err);
    if (!st) {
        for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++)
            xt_cmd_fill(cmd, spec[i].buf, 0, spec[i].words * 4, 0x3c23d70a); /* 0.01f */
        st = xt_cmd_submit_wait(cmd, err);
    }
    xt_cmd_destroy(cmd);
    uint32_t *idx = st ? NULL : malloc((size_t)max_t * 4);
    if (!st && !idx) st = xt_error_set(err, XT_ERR_NO_MEMORY, "bench_attn: no memory");
    if (!st) {
        for (uint32_t t = 0; t < max_t; t++) idx[t] = t;
        st = xt_buffer_upload(vk, &a->pos, 0, idx, (size_t)max_t * 4, err);
    }
    free(idx);
    if (st) bufs_destroy(vk, a);
    return st;
}

/* The row descriptors for T tokens: one prefill sequence from slot 0, or T wavefront rows at the
 * final position of a PARENT-token sequence in slots 0..PARENT-1, own entries after it. */
static xt_status upload_rows(xt_vk_context *vk, attn_bufs *a, uint32_t t_count, bool wavefront,
                             xt_error *err)
{
    xt_attn_row *rows = malloc((size_t)t_count * sizeof *rows);
    if (!rows) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_attn: no memory");
    for (uint32_t t = 0; t < t_count; t++)
        rows[t] = wavefront ? (xt_attn_row){0, PARENT - 1, PARENT + t} : (xt_attn_row){0, t, t};
    xt_status st = xt_buffer_upload(vk, &a->rows, 0, rows, (size_t)t_count * sizeof *rows, err);
    free(rows);
    return st;
}

typedef enum { OP_RMS, OP_RMS_HEAD, OP_ROPE, OP_KV, OP_ATTN } op_kind;

static xt_status record(xt_kernels *k, xt_cmd *cmd, attn_bufs *a, op_kind op, uint32_t t,
                        xt_error *err)
{
    switch (op) {
    case OP_RMS:
        return xt_op_rms_norm(k, cmd,
                              &(xt_rms_norm_desc){.x = &a->x, .w = &a->w, .y = &a->y,
                                                  .n_rows = t, .n_cols = N_EMBD, .eps = 1e-6f},
                              err);
    case OP_RMS_HEAD: /* qwen3's q norm: per token and head, in place */
        return xt_op_rms_norm(k, cmd,
                              &(xt_rms_norm_desc){.x = &a->q, .w = &a->w, .y = &a->q,
                                                  .n_rows = t * N_HEAD, .n_cols = HEAD_DIM,
                                                  .eps = 1e-6f},
                              err);
    case OP_ROPE:
        return xt_op_rope(k, cmd,
                          &(xt_rope_desc){.x = &a->q, .pos = &a->pos, .y = &a->q, .n_rows = t,
                                          .n_heads = N_HEAD, .head_dim = HEAD_DIM,
                                          .freq_base = 1e6f, .mode = XT_ROPE_NEOX},
                          err);
    case OP_KV:
        return xt_op_kv_store(k, cmd,
                              &(xt_kv_store_desc){.k = &a->k, .v = &a->v, .slots = &a->pos,
                                                  .k_cache = &a->k_cache, .v_cache = &a->v_cache,
                                                  .n_rows = t, .width = N_KV * HEAD_DIM,
                                                  .n_slots = a->n_slots},
                              err);
    case OP_ATTN:
        return xt_op_attention(k, cmd,
                               &(xt_attention_desc){.q = &a->q, .k_cache = &a->k_cache,
                                                    .v_cache = &a->v_cache, .rows = &a->rows,
                                                    .out = &a->out, .n_rows = t,
                                                    .n_head = N_HEAD, .n_kv_head = N_KV,
                                                    .head_dim = HEAD_DIM, .n_slots = a->n_slots},
                               err);
    }
    return XT_OK;
}

/* Median GPU time of one dispatch over b->repeats runs (one warm-up run first). */
static xt_status time_op(xt_bench *b, xt_cmd *cmd, xt_timer *timer, attn_bufs *a, op_kind op,
                         uint32_t t, double *ns, xt_error *err)
{
    uint32_t repeats = b->repeats ? b->repeats : 3;
    double *v = malloc((repeats + 1) * sizeof *v);
    if (!v) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_attn: no memory");
    xt_status st = XT_OK;
    for (uint32_t r = 0; r <= repeats && !st; r++) {
        if ((st = xt_cmd_begin(cmd, err))) break;
        xt_timer_reset(cmd, timer);
        xt_timer_mark(cmd, timer, 0);
        if ((st = record(b->k, cmd, a, op, t, err))) break;
        xt_timer_mark(cmd, timer, 1);
        if ((st = xt_cmd_submit_wait(cmd, err))) break;
        st = xt_timer_elapsed_ns(timer, 0, 1, &v[r], err);
    }
    if (!st) *ns = xt_bench_median(v + 1, repeats); /* v[0]: warm-up */
    free(v);
    return st;
}

xt_status xt_bench_attn(xt_bench *b, xt_error *err)
{
    xt_vk_context *vk = xt_kernels_context(b->k);
    uint32_t max_t = 1;
    for (uint32_t i = 0; i < b->n_tokens; i++)
        if (b->tokens[i] > max_t) max_t = b->tokens[i];
    attn_bufs a;
    xt_cmd *cmd = NULL;
    xt_timer *timer = NULL;
    xt_status st = bufs_create(vk, max_t, &a, err);
    if (st) return st;
    st = xt_cmd_create(vk, &cmd, err);
    if (!st) st = xt_timer_create(vk, 2, &timer, err);
    const double qw = N_HEAD * HEAD_DIM, kvw = N_KV * HEAD_DIM;
    for (uint32_t i = 0; i < b->n_tokens && !st; i++) {
        uint32_t t = b->tokens[i];
        double ns = 0;
        if (!(st = time_op(b, cmd, timer, &a, OP_RMS, t, &ns, err)))
            xt_bench_row(b, "rms_norm", "2048", t, ns, 4.0 * t * N_EMBD,
                         4.0 * (2.0 * t * N_EMBD + N_EMBD));
        if (!st && !(st = time_op(b, cmd, timer, &a, OP_RMS_HEAD, t, &ns, err)))
            xt_bench_row(b, "rms_norm", "q per head 32x128", t, ns, 4.0 * t * qw,
                         4.0 * (2.0 * t * qw + HEAD_DIM));
        if (!st && !(st = time_op(b, cmd, timer, &a, OP_ROPE, t, &ns, err)))
            xt_bench_row(b, "rope", "q neox 32x128", t, ns, 3.0 * t * qw,
                         4.0 * (2.0 * t * qw + t));
        if (!st && !(st = time_op(b, cmd, timer, &a, OP_KV, t, &ns, err)))
            xt_bench_row(b, "kv_store", "4x128", t, ns, 0, 4.0 * (4.0 * t * kvw + t));
        /* prefill: token p attends to p + 1 keys */
        if (!st) st = upload_rows(vk, &a, t, false, err);
        if (!st && !(st = time_op(b, cmd, timer, &a, OP_ATTN, t, &ns, err))) {
            double keys = (double)t * (t + 1) / 2;
            xt_bench_row(b, "attention", "prefill 32/4x128", t, ns, 4.0 * keys * qw,
                         4.0 * (2.0 * t * qw + 2.0 * t * kvw + 3.0 * t));
        }
        /* wavefront rows: PARENT keys each (PARENT - 1 shared, one own) */
        if (!st) st = upload_rows(vk, &a, t, true, err);
        if (!st && !(st = time_op(b, cmd, timer, &a, OP_ATTN, t, &ns, err)))
            xt_bench_row(b, "attention", "wavefront p=16", t, ns, 4.0 * t * PARENT * qw,
                         4.0 * (2.0 * t * qw + 2.0 * (PARENT - 1 + t) * kvw + 3.0 * t));
    }
    xt_timer_destroy(timer);
    xt_cmd_destroy(cmd);
    bufs_destroy(vk, &a);
    return st;
}
