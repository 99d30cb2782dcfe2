/* Micro-benchmark of the quantized-weight ops at Qwen3-30B-A3B shapes (n_embd 2048, 32 q / 4 kv
 * heads of 128, 128 experts top-8 of n_ff_exp 768, vocab 151936): the attention projections q
 * (2048 -> 4096) and k/v (2048 -> 512), the expert gate/up (2048 -> 768) and down (768 -> 2048)
 * GEMMs through matmul_id over tokens grouped by expert (random top-8 routing, tiles of 16), and
 * the lm head's two-logit gather plus embedding rows. GPU timestamps around each op (matmul_id
 * includes its argument-writing dispatch); median of b->repeats runs after one warm-up, or one
 * run alone when it took over a second (lavapipe at 2048 tokens). FLOP = 2*T*K*N; bytes =
 * weights read once (for matmul_id: the experts in use) + activations in and out. */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "expertrace/quant.h"
#include "op_matmul.h"

enum { N_EMBD = 2048, N_Q = 4096, N_KV = 512, N_FF = 768, N_EXPERT = 128, N_USED = 8,
       N_VOCAB = 151936, TILE_ROWS = 16 };

static uint64_t rng_state = 42;
static uint64_t rng_next(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random quant bits with every fp16 scale field 0.01 (random scale bytes would be NaNs and
 * denormals, which are slow on CPU devices); float types hold small values. */
static void *bench_weights(uint32_t type, uint64_t bytes)
{
    uint8_t *w = malloc(bytes + 8);
    if (!w) return NULL;
    for (uint64_t i = 0; i < bytes; i += 8) {
        uint64_t r = rng_next();
        memcpy(w + i, &r, 8);
    }
    const xt_type_traits *tr = xt_type_get_traits(type);
    const uint16_t h = 0x211f, bf = 0x3c24; /* 0.01 as fp16 and bf16 */
    int d_at[2] = {-1, -1};                /* fp16 fields of a block */
    switch (type) {
    case XT_TYPE_Q4_0: case XT_TYPE_Q5_0: case XT_TYPE_Q8_0: d_at[0] = 0; break;
    case XT_TYPE_Q4_1: case XT_TYPE_Q5_1: case XT_TYPE_Q4_K: case XT_TYPE_Q5_K:
        d_at[0] = 0, d_at[1] = 2;
        break;
    case XT_TYPE_Q2_K: d_at[0] = 80, d_at[1] = 82; break;
    case XT_TYPE_Q3_K: d_at[0] = 108; break;
    case XT_TYPE_Q6_K: d_at[0] = 208; break;
    default: break;
    }
    for (uint64_t off = 0; off + tr->type_size <= bytes; off += tr->type_size) {
        if (type == XT_TYPE_F32) {
            float f = 0.01f;
            memcpy(w + off, &f, 4);
        } else if (type == XT_TYPE_F16) {
            memcpy(w + off, &h, 2);
        } else if (type == XT_TYPE_BF16) {
            memcpy(w + off, &bf, 2);
        } else {
            for (int i = 0; i < 2; i++)
                if (d_at[i] >= 0) memcpy(w + off + d_at[i], &h, 2);
        }
    }
    return w;
}

static xt_status weights_create(xt_vk_context *vk, uint32_t type, int64_t k, int64_t n, int64_t e,
                                const char *name, xt_dtensor *out, xt_error *err)
{
    uint64_t row_bytes;
    xt_status s = xt_type_nbytes(type, (uint64_t)k, &row_bytes, err);
    if (s) return s;
    uint64_t bytes = row_bytes * (uint64_t)n * (uint64_t)e;
    void *data = bench_weights(type, bytes);
    if (!data) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_matmul: no memory for '%s'", name);
    s = xt_dtensor_create(vk,
                          &(xt_dtensor_desc){.name = name, .type = type, .ne = {k, n, e, 1},
                                             .data = data, .data_bytes = bytes},
                          out, err);
    free(data);
    return s;
}

static xt_status buffer_create(xt_vk_context *vk, uint64_t bytes, const void *data, xt_buffer *out,
                               xt_error *err)
{
    xt_status s = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = bytes, .label = "bench"},
                                   out, err);
    if (!s && data) s = xt_buffer_upload(vk, out, 0, data, bytes, err);
    return s;
}

/* ---- timing --------------------------------------------------------------------------------- */

typedef struct op_call {
    int kind; /* 0 matmul, 1 matmul_id, 2 logit_gather, 3 get_rows */
    xt_matmul_desc mm;
    xt_matmul_id_desc id;
    xt_logit_gather_desc lg;
    xt_get_rows_desc gr;
} op_call;

static xt_status record(xt_bench *b, xt_cmd *cmd, const op_call *c, xt_error *err)
{
    switch (c->kind) {
    case 0: return xt_op_matmul(b->k, cmd, &c->mm, err);
    case 1: return xt_op_matmul_id(b->k, cmd, &c->id, err);
    case 2: return xt_op_logit_gather(b->k, cmd, &c->lg, err);
    default: return xt_op_get_rows(b->k, cmd, &c->gr, err);
    }
}

/* GPU time of one run of c in ns: median of b->repeats after a warm-up (one run alone when it
 * took more than a second). The warm-up is never reported: a CPU device such as lavapipe compiles
 * a pipeline at its first dispatch, inside the timed window, which can take longer than the op. */
static xt_status time_call(xt_bench *b, xt_cmd *cmd, xt_timer *tm, const op_call *c, double *ns,
                           xt_error *err)
{
    uint32_t repeats = b->repeats ? b->repeats : 3;
    double *v = malloc((repeats + 1) * sizeof *v);
    if (!v) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench_matmul: no memory");
    xt_status s = XT_OK;
    uint32_t n = 0;
    for (uint32_t r = 0; r <= repeats && !s; r++) {
        if ((s = xt_cmd_begin(cmd, err))) break;
        xt_timer_reset(cmd, tm);
        xt_timer_mark(cmd, tm, 0);
        if ((s = record(b, cmd, c, err))) {
            xt_cmd_submit_wait(cmd, NULL); /* end the recording; the error is the op's */
            break;
        }
        xt_timer_mark(cmd, tm, 1);
        double t;
        if ((s = xt_cmd_submit_wait(cmd, err)) || (s = xt_timer_elapsed_ns(tm, 0, 1, &t, err)))
            break;
        if (r == 0) continue;
        v[n++] = t;
        if (t > 1e9) break; /* too slow to repeat */
    }
    if (!s) *ns = xt_bench_median(v, n);
    free(v);
    return s;
}

/* ---- groups --------------------------------------------------------------------------------- */

typedef struct dev_groups {
    xt_buffer ids, counts, offsets, order, tiles, args;
    xt_moe_groups g;
    uint32_t experts_used;
} dev_groups;

static void groups_destroy(xt_vk_context *vk, dev_groups *d)
{
    xt_buffer *all[] = {&d->ids, &d->counts, &d->offsets, &d->order, &d->tiles, &d->args};
    for (size_t i = 0; i < 6; i++) xt_buffer_destroy(vk, all[i]);
}

/* Random top-8 routing of T tokens, grouped as moe_groups.h specifies, on the device. */
static xt_status groups_create(xt_vk_context *vk, uint32_t T, dev_groups *d, xt_error *err)
{
    memset(d, 0, sizeof *d);
    uint32_t n = T * N_USED, E = N_EXPERT, max_tiles = xt_moe_max_tiles(n, TILE_ROWS, E);
    uint32_t *ids = malloc(n * 4), *counts = calloc(E, 4), *offsets = calloc(E + 1, 4);
    uint32_t *order = malloc(n * 4), *tiles = calloc(2 * max_tiles, 4), *fill = calloc(E, 4);
    xt_status s = XT_OK;
    if (!ids || !counts || !offsets || !order || !tiles || !fill) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "bench_matmul: no memory");
        goto done;
    }
    for (uint32_t t = 0; t < T; t++)
        for (uint32_t j = 0; j < N_USED; j++) {
            uint32_t x;
            bool dup;
            do {
                x = (uint32_t)(rng_next() % E);
                dup = false;
                for (uint32_t i = 0; i < j; i++) dup |= ids[t * N_USED + i] == x;
            } while (dup);
            ids[t * N_USED + j] = x;
        }
    for (uint32_t e = 0; e < n; e++) counts[ids[e]]++;
    for (uint32_t x = 0; x < E; x++) {
        offsets[x + 1] = offsets[x] + counts[x];
        d->experts_used += counts[x] > 0;
    }
    for (uint32_t e = 0; e < n; e++) order[offsets[ids[e]] + fill[ids[e]]++] = e;
    uint32_t n_tiles = 0;
    for (uint32_t x = 0; x < E; x++)
        for (uint32_t f = offsets[x]; f < offsets[x + 1]; f += TILE_ROWS) {
            tiles[2 * n_tiles] = x;
            tiles[2 * n_tiles + 1] = f;
            n_tiles++;
        }
    uint32_t args[12] = {n_tiles, 1, 1};
    if ((s = buffer_create(vk, n * 4, ids, &d->ids, err)) ||
        (s = buffer_create(vk, E * 4, counts, &d->counts, err)) ||
        (s = buffer_create(vk, (E + 1) * 4, offsets, &d->offsets, err)) ||
        (s = buffer_create(vk, n * 4, order, &d->order, err)) ||
        (s = buffer_create(vk, max_tiles * 8, tiles, &d->tiles, err)) ||
        (s = buffer_create(vk, sizeof args, args, &d->args, err)))
        goto done;
    d->g = (xt_moe_groups){.n_tokens = T, .n_used = N_USED, .n_expert = E,
                           .tile_rows = TILE_ROWS, .max_tiles = max_tiles,
                           .ids = {&d->ids, 0, 0}, .counts = {&d->counts, 0, 0},
                           .offsets = {&d->offsets, 0, 0}, .order = {&d->order, 0, 0},
                           .tiles = {&d->tiles, 0, 0}, .args = &d->args};
done:
    free(ids), free(counts), free(offsets), free(order), free(tiles), free(fill);
    if (s) groups_destroy(vk, d);
    return s;
}

/* ---- one weight type ------------------------------------------------------------------------ */

static double tensor_bytes(const xt_dtensor *w)
{
    return (double)w->row_bytes * (double)w->n_rows;
}

static xt_status bench_type(xt_bench *b, uint32_t type, xt_cmd *cmd, xt_timer *tm, xt_error *err)
{
    xt_vk_context *vk = xt_kernels_context(b->k);
    const char *tn = xt_type_name(type);
    uint32_t max_t = 1;
    for (uint32_t i = 0; i < b->n_tokens; i++)
        if (b->tokens[i] > max_t) max_t = b->tokens[i];
    xt_dtensor wq = {0}, wkv = {0}, wgate = {0}, wdown = {0}, whead = {0};
    xt_buffer x = {0}, y = {0}, ids = {0}, logits = {0};
    uint64_t rows_max = (uint64_t)max_t * N_USED;
    xt_status s;
    if ((s = weights_create(vk, type, N_EMBD, N_Q, 1, "attn_q", &wq, err)) ||
        (s = weights_create(vk, type, N_EMBD, N_KV, 1, "attn_k", &wkv, err)) ||
        (s = weights_create(vk, type, N_EMBD, N_FF, N_EXPERT, "ffn_gate_exps", &wgate, err)) ||
        (s = weights_create(vk, type, N_FF, N_EMBD, N_EXPERT, "ffn_down_exps", &wdown, err)))
        goto done;
    uint64_t head_bytes = 0;
    xt_type_nbytes(type, (uint64_t)N_EMBD * N_VOCAB, &head_bytes, NULL);
    bool with_head = head_bytes <= (600ull << 20); /* f32/f16/bf16 heads: skipped (host memory) */
    if (with_head && (s = weights_create(vk, type, N_EMBD, N_VOCAB, 1, "output", &whead, err)))
        goto done;
    /* activations: the largest of x [T*8][2048], y [T*8][2048] */
    if ((s = buffer_create(vk, rows_max * N_EMBD * 4, NULL, &x, err)) ||
        (s = buffer_create(vk, rows_max * N_EMBD * 4, NULL, &y, err)) ||
        (s = buffer_create(vk, (uint64_t)max_t * 8, NULL, &ids, err)) ||
        (s = buffer_create(vk, (uint64_t)max_t * 12 + 64, NULL, &logits, err)))
        goto done;
    /* inputs: 0.01 everywhere; ids: spread over the vocabulary */
    if ((s = xt_cmd_begin(cmd, err))) goto done;
    xt_cmd_fill(cmd, &x, 0, x.size_bytes, 0x3c23d70a);
    if ((s = xt_cmd_submit_wait(cmd, err))) goto done;
    {
        uint32_t *h = malloc((size_t)max_t * 8);
        if (!h) {
            s = xt_error_set(err, XT_ERR_NO_MEMORY, "bench_matmul: no memory");
            goto done;
        }
        for (uint32_t i = 0; i < 2 * max_t; i++) h[i] = (uint32_t)(rng_next() % N_VOCAB);
        s = xt_buffer_upload(vk, &ids, 0, h, (size_t)max_t * 8, err);
        free(h);
        if (s) goto done;
    }

    for (uint32_t ti = 0; ti < b->n_tokens && !s; ti++) {
        uint32_t T = b->tokens[ti];
        double ns, act;
        char detail[32];
        /* attention projections */
        const struct { const xt_dtensor *w; const char *name; } proj[2] = {{&wq, "q"}, {&wkv, "k/v"}};
        for (int p = 0; p < 2 && !s; p++) {
            uint32_t N = (uint32_t)proj[p].w->ne[1];
            op_call c = {.kind = 0, .mm = {.w = proj[p].w, .rows = T, .x = {&x, 0}, .y = {&y, 0}}};
            if ((s = time_call(b, cmd, tm, &c, &ns, err))) break;
            snprintf(detail, sizeof detail, "%s %s %ux%u", tn, proj[p].name, N_EMBD, N);
            act = 4.0 * T * (N_EMBD + N);
            xt_bench_row(b, "matmul", detail, T, ns, 2.0 * T * N_EMBD * N,
                         tensor_bytes(proj[p].w) + act);
        }
        if (s) break;
        /* experts: gate (up is the same shape) and down over grouped tokens */
        dev_groups g;
        if ((s = groups_create(vk, T, &g, err))) break;
        double expert_frac = (double)g.experts_used / N_EXPERT;
        const struct { const xt_dtensor *w; const char *name; uint32_t div, slot; } ex[2] = {
            {&wgate, "gate/up", N_USED, 1}, {&wdown, "down", 1, 2}};
        for (int p = 0; p < 2 && !s; p++) {
            uint32_t K = (uint32_t)ex[p].w->ne[0], N = (uint32_t)ex[p].w->ne[1];
            uint32_t entries = T * N_USED, x_rows = (entries - 1) / ex[p].div + 1;
            op_call c = {.kind = 1, .id = {.w = ex[p].w, .groups = &g.g, .x = {&x, 0},
                                           .x_rows = x_rows, .x_row_div = ex[p].div,
                                           .y = {&y, 0}, .args_slot = ex[p].slot}};
            if ((s = time_call(b, cmd, tm, &c, &ns, err))) break;
            snprintf(detail, sizeof detail, "%s %s %ux%u", tn, ex[p].name, K, N);
            act = 4.0 * ((double)x_rows * K + (double)entries * N);
            xt_bench_row(b, "matmul_id", detail, T, ns, 2.0 * entries * K * N,
                         tensor_bytes(ex[p].w) * expert_frac + act);
        }
        groups_destroy(vk, &g);
        if (s || !with_head) continue;
        /* lm head: two logits per row, and embedding rows from a tensor of the same shape */
        op_call c = {.kind = 2, .lg = {.w = &whead, .rows = T, .h = {&x, 0},
                                       .true_ids = {&ids, 0}, .foil_ids = {&ids, (uint64_t)T * 4},
                                       .logits = {&logits, 0},
                                       .diff = {&logits, (uint64_t)max_t * 8}}};
        if ((s = time_call(b, cmd, tm, &c, &ns, err))) break;
        snprintf(detail, sizeof detail, "%s %ux%u", tn, N_EMBD, N_VOCAB);
        xt_bench_row(b, "logit_gather", detail, T, ns, 2.0 * T * 2 * N_EMBD,
                     2.0 * T * (double)whead.row_bytes + 4.0 * T * N_EMBD + 12.0 * T);
        c = (op_call){.kind = 3, .gr = {.w = &whead, .rows = T, .ids = {&ids, 0}, .y = {&y, 0}}};
        if ((s = time_call(b, cmd, tm, &c, &ns, err))) break;
        xt_bench_row(b, "get_rows", detail, T, ns, 0,
                     (double)T * (double)whead.row_bytes + 4.0 * T * N_EMBD + 4.0 * T);
    }
done:
    xt_dtensor_destroy(vk, &wq);
    xt_dtensor_destroy(vk, &wkv);
    xt_dtensor_destroy(vk, &wgate);
    xt_dtensor_destroy(vk, &wdown);
    xt_dtensor_destroy(vk, &whead);
    xt_buffer_destroy(vk, &x);
    xt_buffer_destroy(vk, &y);
    xt_buffer_destroy(vk, &ids);
    xt_buffer_destroy(vk, &logits);
    return s;
}

xt_status xt_bench_matmul(xt_bench *b, xt_error *err)
{
    static const uint32_t defaults[] = {XT_TYPE_Q4_K, XT_TYPE_Q6_K, XT_TYPE_Q8_0};
    const uint32_t *types = b->types;
    uint32_t n_types = b->n_types;
    if (!n_types) {
        types = defaults;
        n_types = sizeof defaults / sizeof defaults[0];
    }
    for (uint32_t i = 0; i < n_types; i++)
        if (!xt_op_matmul_supports(types[i]))
            return xt_error_set(err, XT_ERR_UNSUPPORTED, "bench matmul: type %s is not supported",
                                xt_type_name(types[i]));
    xt_vk_context *vk = xt_kernels_context(b->k);
    xt_cmd *cmd = NULL;
    xt_timer *tm = NULL;
    xt_status s;
    if ((s = xt_cmd_create(vk, &cmd, err)) || (s = xt_timer_create(vk, 2, &tm, err))) goto done;
    for (uint32_t i = 0; i < n_types && !s; i++) s = bench_type(b, types[i], cmd, tm, err);
done:
    xt_timer_destroy(tm);
    xt_cmd_destroy(cmd);
    return s;
}
