/* Micro-benchmark of the MoE family at Qwen3-30B-A3B shapes (n_embd 2048, 128 experts top-8,
 * n_ff_exp 768): the router (softmax + top-k from logits), the grouping passes, the whole MoE block
 * (router matmul, routing, grouping, gate/up/down grouped GEMMs, SwiGLU, weighting, combine) with
 * Q4_K and Q8_0 experts, and the patch pass (one replace entry per token at the MoE output). GPU
 * timestamps around each op, median of b->repeats runs. FLOP and bytes are what the op must do at
 * least: inputs read once, outputs written once, each routed expert's weights read once. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "expertrace/quant.h"
#include "op_moe.h"

enum { N_EMBD = 2048, N_EXPERT = 128, N_USED = 8, N_FF = 768 };

static uint32_t bench_rng = 2463534242u;
static float bench_rndf(void)
{
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 17;
    bench_rng ^= bench_rng << 5;
    return (float)(bench_rng >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

/* A weight tensor of random blocks with small fp16 scales (values are irrelevant to timing, but
 * finite values keep the run free of NaN slow paths). */
static xt_status random_tensor(xt_vk_context *vk, const char *name, uint32_t type, int64_t k,
                               int64_t n, int64_t e, xt_dtensor *out, xt_error *err)
{
    const xt_type_traits *tr = xt_type_get_traits(type);
    uint64_t blocks = (uint64_t)(k / tr->block_size) * (uint64_t)(n * e);
    uint64_t bytes = blocks * tr->type_size;
    uint8_t *d = malloc(bytes);
    if (!d) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_moe: no memory for '%s'", name);
    if (type == XT_TYPE_F32) {
        for (uint64_t i = 0; i < bytes / 4; i++) ((float *)d)[i] = 0.05f * bench_rndf();
    } else {
        for (uint64_t i = 0; i < bytes; i++) d[i] = (uint8_t)(bench_rndf() * 127.0f);
        uint16_t h = 0x1c00; /* fp16 2^-8 */
        for (uint64_t b = 0; b < blocks; b++) {
            memcpy(d + b * tr->type_size, &h, 2);
            if (type == XT_TYPE_Q4_K) memcpy(d + b * tr->type_size + 2, &h, 2);
        }
    }
    xt_status s = xt_dtensor_create(vk, &(xt_dtensor_desc){.name = name, .type = type,
                                                           .ne = {k, n, e, 1}, .data = d,
                                                           .data_bytes = bytes},
                                    out, err);
    free(d);
    return s;
}

/* Distinct experts T tokens route to at most (what the block must read of the expert weights). */
static double experts_touched(uint32_t t)
{
    double e = (double)t * N_USED;
    return e < N_EXPERT ? e : N_EXPERT;
}

typedef xt_status (*record_fn)(xt_kernels *k, xt_cmd *cmd, void *ctx, xt_error *err);

/* Median GPU time of b->repeats recordings of fn. */
static xt_status time_op(xt_bench *b, xt_cmd *cmd, xt_timer *timer, record_fn fn, void *ctx,
                         double *ns, xt_error *err)
{
    uint32_t reps = b->repeats ? b->repeats : 5;
    double *v = malloc(reps * sizeof *v);
    if (!v) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_moe: no memory");
    xt_status s = XT_OK;
    for (uint32_t r = 0; r < reps + 1 && !s; r++) { /* one warm-up run */
        if ((s = xt_cmd_begin(cmd, err))) break;
        xt_timer_reset(cmd, timer);
        xt_timer_mark(cmd, timer, 0);
        if ((s = fn(b->k, cmd, ctx, err))) break;
        xt_timer_mark(cmd, timer, 1);
        if ((s = xt_cmd_submit_wait(cmd, err))) break;
        double t;
        if ((s = xt_timer_elapsed_ns(timer, 0, 1, &t, err))) break;
        if (r) v[r - 1] = t;
    }
    if (!s) *ns = xt_bench_median(v, reps);
    free(v);
    return s;
}

typedef struct moe_bench {
    xt_moe_layer_weights w;
    xt_moe_workspace *ws;
    uint32_t t;
    xt_buffer *x, *y, *table, *row_base, *src;
} moe_bench;

static xt_status rec_router(xt_kernels *k, xt_cmd *cmd, void *c, xt_error *err)
{
    moe_bench *m = c;
    return xt_op_router(k, cmd,
                        &(xt_router_desc){.n_tokens = m->t, .n_expert = N_EXPERT,
                                          .n_used = N_USED, .renorm = true,
                                          .logits = {.buffer = &m->ws->logits},
                                          .ids = {.buffer = &m->ws->ids},
                                          .weights = {.buffer = &m->ws->weights},
                                          .probs = {.buffer = &m->ws->probs}},
                        err);
}

static xt_status rec_group(xt_kernels *k, xt_cmd *cmd, void *c, xt_error *err)
{
    moe_bench *m = c;
    xt_moe_workspace *ws = m->ws;
    xt_moe_groups g = {.n_tokens = m->t, .n_used = N_USED, .n_expert = N_EXPERT,
                       .tile_rows = ws->tile_rows,
                       .max_tiles = xt_moe_max_tiles(m->t * N_USED, ws->tile_rows, N_EXPERT),
                       .ids = {.buffer = &ws->ids}, .counts = {.buffer = &ws->counts},
                       .offsets = {.buffer = &ws->offsets}, .order = {.buffer = &ws->order},
                       .tiles = {.buffer = &ws->tiles}, .args = &ws->args};
    xt_binding scratch = {.buffer = &ws->scratch};
    return xt_op_moe_group(k, cmd, &g, &scratch, err);
}

static xt_status rec_layer(xt_kernels *k, xt_cmd *cmd, void *c, xt_error *err)
{
    moe_bench *m = c;
    return xt_op_moe_layer(k, cmd,
                           &(xt_moe_layer_desc){.w = &m->w, .ws = m->ws, .n_tokens = m->t,
                                                .x = m->x, .y = {.buffer = m->y}},
                           err);
}

static xt_status rec_patch(xt_kernels *k, xt_cmd *cmd, void *c, xt_error *err)
{
    moe_bench *m = c;
    return xt_op_patch(k, cmd,
                       &(xt_patch_desc){.table = {.buffer = m->table}, .count = m->t,
                                        .row_base = {.buffer = m->row_base}, .n_rows = m->t,
                                        .src = {.buffer = m->src},
                                        .src_floats = m->t * N_EMBD, .layer = 0,
                                        .site = XT_SITE_MOE_OUT, .target = {.buffer = m->y},
                                        .n_tokens = m->t, .width = N_EMBD},
                       err);
}

xt_status xt_bench_moe(xt_bench *b, xt_error *err)
{
    xt_vk_context *vk = xt_kernels_context(b->k);
    uint32_t max_t = 1;
    for (uint32_t i = 0; i < b->n_tokens; i++)
        if (b->tokens[i] > max_t) max_t = b->tokens[i];
    static const uint32_t defaults[2] = {XT_TYPE_Q4_K, XT_TYPE_Q8_0};
    const uint32_t *types = b->n_types ? b->types : defaults;
    uint32_t n_types = b->n_types ? b->n_types : 2;
    xt_dtensor t_inp = {0}, t_gate = {0}, t_up = {0}, t_down = {0};
    xt_moe_workspace ws = {0};
    xt_buffer x = {0}, y = {0}, table = {0}, row_base = {0}, src = {0};
    xt_cmd *cmd = NULL;
    xt_timer *timer = NULL;
    float *host = NULL;
    xt_status s = xt_cmd_create(vk, &cmd, err);
    if (!s) s = xt_timer_create(vk, 2, &timer, err);
    if (!s) s = random_tensor(vk, "ffn_gate_inp", XT_TYPE_F32, N_EMBD, N_EXPERT, 1, &t_inp, err);
    uint64_t act = (uint64_t)max_t * N_EMBD * 4;
    xt_buffer *bufs[] = {&x, &y, &table, &row_base, &src};
    uint64_t sizes[] = {act, act, (uint64_t)max_t * sizeof(xt_patch_entry), (uint64_t)max_t * 4,
                        act};
    for (int i = 0; i < 5 && !s; i++)
        s = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = sizes[i], .label = "bench moe"},
                             bufs[i], err);
    /* inputs: random activations, random router logits, one patch entry per token */
    host = s ? NULL : malloc(act > sizeof(xt_patch_entry) * max_t ? act : sizeof(xt_patch_entry) * max_t);
    if (!s && !host) s = xt_error_set(err, XT_ERR_NO_MEMORY, "bench_moe: no memory");
    if (!s) {
        for (uint64_t i = 0; i < act / 4; i++) host[i] = bench_rndf();
        s = xt_buffer_upload(vk, &x, 0, host, act, err);
        if (!s) s = xt_buffer_upload(vk, &src, 0, host, act, err);
    }
    if (!s) {
        xt_patch_entry *pe = (xt_patch_entry *)host;
        for (uint32_t t = 0; t < max_t; t++)
            pe[t] = (xt_patch_entry){.row = t, .site = XT_SITE_MOE_OUT, .mode = XT_PATCH_REPLACE,
                                     .src = t * N_EMBD};
        s = xt_buffer_upload(vk, &table, 0, pe, (size_t)max_t * sizeof *pe, err);
        uint32_t *rb = (uint32_t *)host;
        for (uint32_t t = 0; t < max_t && !s; t++) rb[t] = t;
        if (!s) s = xt_buffer_upload(vk, &row_base, 0, rb, (size_t)max_t * 4, err);
    }
    for (uint32_t ti = 0; ti < n_types && !s; ti++) {
        uint32_t type = types[ti];
        char detail[48];
        if ((s = random_tensor(vk, "ffn_gate_exps", type, N_EMBD, N_FF, N_EXPERT, &t_gate, err)) ||
            (s = random_tensor(vk, "ffn_up_exps", type, N_EMBD, N_FF, N_EXPERT, &t_up, err)) ||
            (s = random_tensor(vk, "ffn_down_exps", type, N_FF, N_EMBD, N_EXPERT, &t_down, err)))
            break;
        moe_bench m = {.w = {.gate_inp = &t_inp, .gate_exps = &t_gate, .up_exps = &t_up,
                             .down_exps = &t_down, .n_used = N_USED, .renorm = true},
                       .ws = &ws, .x = &x, .y = &y, .table = &table, .row_base = &row_base,
                       .src = &src};
        if ((s = xt_moe_workspace_create(vk, &m.w, max_t, &ws, err))) break;
        double expert_bytes = (double)(t_gate.row_bytes * N_FF + t_up.row_bytes * N_FF +
                                       t_down.row_bytes * N_EMBD);
        for (uint32_t i = 0; i < b->n_tokens && !s; i++) {
            uint32_t t = b->tokens[i];
            double ns = 0, T = t, TK = (double)t * N_USED;
            m.t = t;
            if (ti == 0) {
                /* router and grouping on random logits (uploaded into the workspace) */
                for (uint64_t j = 0; j < (uint64_t)t * N_EXPERT; j++) host[j] = 3 * bench_rndf();
                if ((s = xt_buffer_upload(vk, &ws.logits, 0, host, (size_t)t * N_EXPERT * 4,
                                          err)))
                    break;
                if ((s = time_op(b, cmd, timer, rec_router, &m, &ns, err))) break;
                xt_bench_row(b, "router", "E128 top-8 renorm", t, ns,
                             T * N_EXPERT * 4.0 + T * N_USED * N_EXPERT,
                             T * N_EXPERT * 8.0 + TK * 8);
                if ((s = time_op(b, cmd, timer, rec_group, &m, &ns, err))) break;
                xt_bench_row(b, "moe_group", "E128 top-8", t, ns, 0,
                             TK * 4 * 3 + N_EXPERT * 8.0 * (TK / 64 + 2));
                if ((s = time_op(b, cmd, timer, rec_patch, &m, &ns, err))) break;
                xt_bench_row(b, "patch", "replace moe_out", t, ns, 0, T * N_EMBD * 8.0 + T * 32);
            }
            if ((s = time_op(b, cmd, timer, rec_layer, &m, &ns, err))) break;
            snprintf(detail, sizeof detail, "%s E128 top-8", xt_type_name(type));
            double flop = 2.0 * T * N_EMBD * N_EXPERT + 2.0 * TK * 3.0 * N_EMBD * N_FF;
            double bytes = experts_touched(t) * expert_bytes + N_EMBD * N_EXPERT * 4.0 +
                           T * N_EMBD * 8.0;
            xt_bench_row(b, "moe_layer", detail, t, ns, flop, bytes);
        }
        xt_moe_workspace_destroy(vk, &ws);
        xt_dtensor_destroy(vk, &t_gate);
        xt_dtensor_destroy(vk, &t_up);
        xt_dtensor_destroy(vk, &t_down);
    }
    xt_moe_workspace_destroy(vk, &ws);
    xt_dtensor_destroy(vk, &t_gate);
    xt_dtensor_destroy(vk, &t_up);
    xt_dtensor_destroy(vk, &t_down);
    xt_dtensor_destroy(vk, &t_inp);
    for (int i = 0; i < 5; i++) xt_buffer_destroy(vk, bufs[i]);
    xt_timer_destroy(timer);
    xt_cmd_destroy(cmd);
    free(host);
    return s;
}
