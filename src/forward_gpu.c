/* The GPU backend of the forward pass: weights resident in their GGUF types (xt_dtensor), one
 * command buffer per submission recording every layer (src/op_*.h), K/V per layer kept between
 * the prefill and the wavefront submissions, sites copied into the store, patches through
 * xt_op_patch. The plan (forward.c) says which tokens are where. */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"
#include "forward_internal.h"
#include "kernels.h"
#include "op_attn.h"
#include "op_matmul.h"
#include "op_moe.h"
#include "util.h"

#define N_ROLES (sizeof(xt_layer_tensors) / sizeof(xt_wtensor))
#define ROLE(field) (offsetof(xt_layer_tensors, field) / sizeof(xt_wtensor))

typedef struct gpu_state {
    xt_vk_context *vk;
    xt_kernels *k;
    xt_cmd *cmd;
    uint64_t limit; /* bytes one binding may cover */
    /* weights */
    xt_dtensor token_embd, output_norm, output; /* output unused when tied */
    xt_dtensor *lw;                            /* [n_layer][N_ROLES]; absent roles zeroed */
    xt_moe_layer_weights *moe;                 /* [n_layer] */
    /* per-submission inputs */
    xt_buffer ids, pos, slot, attn, row_base, table, true_ids, foil_ids;
    /* activations [max_tokens][...] */
    xt_buffer res, mid, xn, q, kk, v, att, ao, ffo, fg, fu;
    xt_buffer *kc, *vc; /* [n_layer] of [kv_slots][n_kv * hd] */
    xt_moe_workspace ws;
    xt_buffer store;
    /* outputs */
    xt_buffer hsel, logits, lg2, diff;
} gpu_state;

static const xt_dtensor *W(const gpu_state *g, uint32_t il, size_t role)
{
    const xt_dtensor *d = &g->lw[(size_t)il * N_ROLES + role];
    return d->n_chunks ? d : NULL;
}

/* ---- creation ------------------------------------------------------------------------------- */

static xt_status upload_tensor(xt_vk_context *vk, const xt_wtensor *w, xt_dtensor *out,
                               xt_error *err)
{
    const char *name = w->t ? w->t->name : w->parts[0]->name;
    xt_dtensor_desc d = {.name = name, .type = w->type, .ne = {w->ne[0], w->ne[1], w->ne[2], 1},
                         .data_bytes = w->nbytes};
    void *stacked = NULL;
    if (w->parts) {
        /* Mixtral's per-expert tensors, stacked as the slabs of one 3-D tensor */
        stacked = malloc(w->nbytes);
        if (!stacked)
            return xt_error_set(err, XT_ERR_NO_MEMORY, "tensor '%s': out of host memory", name);
        uint64_t per = w->nbytes / w->n_parts;
        for (uint32_t e = 0; e < w->n_parts; e++)
            memcpy((uint8_t *)stacked + per * e, w->parts[e]->data, per);
        d.data = stacked;
    } else {
        d.data = w->t->data;
    }
    xt_status s = xt_dtensor_create(vk, &d, out, err);
    free(stacked);
    return s;
}

typedef struct buf_req {
    xt_buffer *b;
    uint64_t bytes;
    const char *label;
    bool bound_whole; /* bound as one binding: must fit the limit */
} buf_req;

static uint64_t moe_ws_bytes(const xt_hparams *hp, uint64_t T)
{
    if (!hp->n_expert) return 0;
    uint64_t E = hp->n_expert, k = hp->n_expert_used, D = hp->n_embd, F = hp->n_ff_exp,
             FS = hp->n_ff_shexp;
    uint64_t b = T * E * 8 + T * k * 12 + E * 8 + 16 * 4 + (T * k / 16 + E) * 8 +
                 (T * k / 64 + 1) * E * 4 + T * k * F * 8 + T * k * D * 4;
    if (hp->shared_expert) b += T * FS * 8 + T * 4 + T * D * 4;
    return b;
}

static void gpu_destroy(xt_fwd *f)
{
    gpu_state *g = f->impl;
    if (!g) return;
    xt_vk_context *vk = g->vk;
    xt_cmd_destroy(g->cmd);
    xt_dtensor_destroy(vk, &g->token_embd);
    xt_dtensor_destroy(vk, &g->output_norm);
    xt_dtensor_destroy(vk, &g->output);
    if (g->lw)
        for (size_t i = 0; i < (size_t)f->hp->n_layer * N_ROLES; i++)
            xt_dtensor_destroy(vk, &g->lw[i]);
    free(g->lw);
    free(g->moe);
    xt_buffer *bufs[] = {&g->ids, &g->pos,  &g->slot, &g->attn, &g->row_base, &g->table,
                         &g->true_ids, &g->foil_ids, &g->res, &g->mid, &g->xn, &g->q, &g->kk,
                         &g->v, &g->att, &g->ao, &g->ffo, &g->fg, &g->fu, &g->store, &g->hsel,
                         &g->logits, &g->lg2, &g->diff};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) xt_buffer_destroy(vk, bufs[i]);
    for (uint32_t l = 0; l < f->hp->n_layer; l++) {
        if (g->kc) xt_buffer_destroy(vk, &g->kc[l]);
        if (g->vc) xt_buffer_destroy(vk, &g->vc[l]);
    }
    free(g->kc);
    free(g->vc);
    xt_moe_workspace_destroy(vk, &g->ws);
    xt_kernels_destroy(g->k);
    free(g);
    f->impl = NULL;
}

static xt_status gpu_run(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b, xt_error *err);
static xt_status gpu_store_write(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                                 xt_error *err);
static xt_status gpu_store_read(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err);

static const fwd_backend_ops gpu_ops = {gpu_run, gpu_store_write, gpu_store_read, gpu_destroy};

static void human(uint64_t b, char *buf, size_t n)
{
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else snprintf(buf, n, "%.1f MiB", (double)b / (1ull << 20));
}

xt_status xt_fwd_gpu_init(xt_fwd *f, xt_vk_context *vk, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    const xt_model *m = f->model;
    gpu_state *g = calloc(1, sizeof *g);
    if (!g) return xt_error_set(err, XT_ERR_NO_MEMORY, "gpu forward: out of host memory");
    f->impl = g;
    f->ops = &gpu_ops;
    g->vk = vk;
    g->limit = xt_binding_limit_bytes(vk);
    const xt_vk_device_info *info = xt_vk_context_info(vk);

    /* the memory plan, checked before anything is uploaded */
    xt_mem_plan plan;
    xt_status s = xt_model_plan(m, g->limit, &plan, err);
    if (s) return s;
    uint64_t T = f->max_tokens, D = hp->n_embd, L = hp->n_layer, V = hp->n_vocab;
    uint64_t nq = (uint64_t)hp->n_head * hp->head_dim, nkv = (uint64_t)hp->n_head_kv * hp->head_dim;
    /* Δ outputs exist for every output row (at most one per token); full logits only for
     * max_out_rows of them */
    uint64_t O = f->max_out_rows, F = hp->n_expert ? 0 : hp->n_ff;
    g->kc = calloc(L, sizeof *g->kc);
    g->vc = calloc(L, sizeof *g->vc);
    g->lw = calloc(L * N_ROLES, sizeof *g->lw);
    g->moe = calloc(L, sizeof *g->moe);
    if (!g->kc || !g->vc || !g->lw || !g->moe)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "gpu forward: out of host memory");
    buf_req reqs[] = {
        {&g->ids, T * 4, "token ids", true},
        {&g->pos, T * 4, "positions", true},
        {&g->slot, T * 4, "kv slots", true},
        {&g->attn, T * 12, "attention rows", true},
        {&g->row_base, T * 4, "row bases", true},
        {&g->table, (uint64_t)f->max_patches * XT_PATCH_WORDS * 4, "patch table", true},
        {&g->true_ids, T * 4, "true ids", true},
        {&g->foil_ids, T * 4, "foil ids", true},
        {&g->res, T * D * 4, "residual", true},
        {&g->mid, T * D * 4, "residual mid", true},
        {&g->xn, T * D * 4, "normed", true},
        {&g->q, T * nq * 4, "q", true},
        {&g->kk, T * nkv * 4, "k", true},
        {&g->v, T * nkv * 4, "v", true},
        {&g->att, T * nq * 4, "attention", true},
        {&g->ao, T * D * 4, "attention out", true},
        {&g->ffo, T * D * 4, "ffn out", true},
        {&g->fg, T * F * 4, "ffn gate", true},
        {&g->fu, T * F * 4, "ffn up", true},
        {&g->store, (uint64_t)f->store_floats * 4, "store", true},
        {&g->hsel, T * D * 4, "output rows", true},
        {&g->logits, O * V * 4, "logits", false},
        {&g->lg2, T * 8, "true/foil logits", true},
        {&g->diff, T * 4, "deltas", true},
    };
    uint64_t act_bytes = moe_ws_bytes(hp, T) + 2 * L * (uint64_t)f->kv_slots * nkv * 4;
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        act_bytes += reqs[i].bytes;
        if (reqs[i].bound_whole && reqs[i].bytes > g->limit)
            return xt_error_set(err, XT_ERR_RANGE,
                                "gpu forward: the %s buffer needs %" PRIu64 " bytes, more than "
                                "one binding may cover (%" PRIu64 "): lower max_tokens (%u), "
                                "store_floats or max_out_rows",
                                reqs[i].label, reqs[i].bytes, g->limit, f->max_tokens);
    }
    if ((uint64_t)f->kv_slots * nkv * 4 > g->limit)
        return xt_error_set(err, XT_ERR_RANGE, "gpu forward: %u K/V slots of %" PRIu64 " floats "
                            "exceed one binding (%" PRIu64 " bytes)", f->kv_slots, nkv, g->limit);
    uint64_t total = plan.weight_bytes + act_bytes;
    uint64_t heap = info->device_local_bytes;
    f->weight_bytes = plan.weight_bytes;
    f->device_bytes = total;
    if (heap && total > heap) {
        char t[32], w[32], a[32], h[32];
        human(total, t, sizeof t);
        human(plan.weight_bytes, w, sizeof w);
        human(act_bytes, a, sizeof a);
        human(heap, h, sizeof h);
        return xt_error_set(err, XT_ERR_DEVICE_MEMORY,
                            "%s: needs %s of device memory (weights %s, buffers for %u tokens "
                            "%s), but %s's largest device-local heap has %s",
                            xt_model_path(m), t, w, f->max_tokens, a, info->name, h);
    }

    if ((s = xt_kernels_create(vk, &g->k, err)) || (s = xt_cmd_create(vk, &g->cmd, err)))
        return s;
    /* weights */
    if ((s = upload_tensor(vk, xt_model_token_embd(m), &g->token_embd, err)) ||
        (s = upload_tensor(vk, xt_model_output_norm(m), &g->output_norm, err)) ||
        (!hp->tied_output && (s = upload_tensor(vk, xt_model_output(m), &g->output, err))))
        return s;
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const xt_wtensor *roles = (const xt_wtensor *)xt_model_layer(m, il);
        for (size_t r = 0; r < N_ROLES; r++)
            if ((roles[r].t || roles[r].parts) &&
                (s = upload_tensor(vk, &roles[r], &g->lw[il * N_ROLES + r], err)))
                return s;
        if (hp->n_expert) {
            g->moe[il] = (xt_moe_layer_weights){
                .gate_inp = W(g, il, ROLE(gate_inp)),
                .gate_exps = W(g, il, ROLE(gate_exps)),
                .up_exps = W(g, il, ROLE(up_exps)),
                .down_exps = W(g, il, ROLE(down_exps)),
                .gate_inp_shexp = W(g, il, ROLE(gate_inp_shexp)),
                .gate_shexp = W(g, il, ROLE(gate_shexp)),
                .up_shexp = W(g, il, ROLE(up_shexp)),
                .down_shexp = W(g, il, ROLE(down_shexp)),
                .n_used = hp->n_expert_used,
                .renorm = hp->moe_renorm};
        }
    }
    /* buffers */
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        if (!reqs[i].bytes) continue;
        if ((s = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = reqs[i].bytes,
                                                        .label = reqs[i].label},
                                  reqs[i].b, err)))
            return s;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        uint64_t bytes = (uint64_t)f->kv_slots * nkv * 4;
        if ((s = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = bytes, .label = "k cache"},
                                  &g->kc[l], err)) ||
            (s = xt_buffer_create(vk, &(xt_buffer_desc){.size_bytes = bytes, .label = "v cache"},
                                  &g->vc[l], err)))
            return s;
    }
    if (hp->n_expert && (s = xt_moe_workspace_create(vk, &g->moe[0], f->max_tokens, &g->ws, err)))
        return s;
    return XT_OK;
}

/* ---- store ---------------------------------------------------------------------------------- */

static xt_status gpu_store_write(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                                 xt_error *err)
{
    gpu_state *g = f->impl;
    return xt_buffer_upload(g->vk, &g->store, (VkDeviceSize)first * 4, src, (size_t)n * 4, err);
}

static xt_status gpu_store_read(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err)
{
    gpu_state *g = f->impl;
    return xt_buffer_download(g->vk, &g->store, (VkDeviceSize)first * 4, dst, (size_t)n * 4, err);
}

/* ---- one submission --------------------------------------------------------------------------- */

#define BAR(g) xt_cmd_barrier((g)->cmd, XT_BARRIER_COMPUTE_TO_COMPUTE)

static xt_binding whole(const xt_buffer *b)
{
    return (xt_binding){.buffer = b};
}

/* The patch pass at one of the sites the forward applies itself (residual, attention output,
 * dense FFN output). Records a barrier after. */
static xt_status patch_site(xt_fwd *f, const fwd_plan *p, uint32_t il, uint32_t site,
                            const xt_buffer *target, uint32_t n_tokens, xt_error *err)
{
    gpu_state *g = f->impl;
    if (!p->p_count[il] || !n_tokens) return XT_OK;
    xt_patch_desc d = {.table = whole(&g->table), .first = p->p_first[il],
                       .count = p->p_count[il], .row_base = whole(&g->row_base),
                       .n_rows = p->n_user_rows, .src = whole(&g->store),
                       .src_floats = f->store_floats, .layer = il, .site = site,
                       .target = whole(target), .n_tokens = n_tokens, .width = f->hp->n_embd};
    xt_status s = xt_op_patch(g->k, g->cmd, &d, err);
    BAR(g);
    return s;
}

/* Copies the layer's records of one kind (pre: residual in; else the rest) into the store. */
static void record(xt_fwd *f, const fwd_plan *p, uint32_t il, bool pre)
{
    gpu_state *g = f->impl;
    const xt_hparams *hp = f->hp;
    bool any = false;
    for (uint32_t i = p->r_first[il]; i < p->r_first[il] + p->r_count[il]; i++) {
        const fwd_rec *r = &p->recs[i];
        if (fwd_site_is_pre(r->site) != pre) continue;
        if (!any) xt_cmd_barrier(g->cmd, XT_BARRIER_COMPUTE_TO_TRANSFER);
        any = true;
        uint64_t t = r->tok, D = hp->n_embd, E = hp->n_expert, k = hp->n_expert_used;
        const xt_buffer *src = NULL;
        uint64_t off = 0;
        switch (r->site) {
        case XT_REC_RESIDUAL_IN: src = &g->res; off = t * D; break;
        case XT_REC_ATTN_OUT: src = &g->ao; off = t * D; break;
        case XT_REC_RESIDUAL_MID: src = &g->mid; off = t * D; break;
        case XT_REC_MOE_IN: src = &g->xn; off = t * D; break;
        case XT_REC_ROUTER_LOGITS: src = &g->ws.logits; off = t * E; break;
        case XT_REC_ROUTER_PROBS: src = &g->ws.probs; off = t * E; break;
        case XT_REC_EXPERT_IDS: src = &g->ws.ids; off = t * k; break;
        case XT_REC_EXPERT_WEIGHTS: src = &g->ws.weights; off = t * k; break;
        case XT_REC_EXPERT_CONTRIB: src = &g->ws.contrib; off = t * k * D; break;
        case XT_REC_SHARED: src = &g->ws.shared; off = t * D; break;
        case XT_REC_MOE_OUT: src = &g->ffo; off = t * D; break;
        case XT_REC_RESIDUAL_OUT: src = &g->res; off = t * D; break;
        default: continue;
        }
        xt_cmd_copy(g->cmd, src, off * 4, &g->store, (VkDeviceSize)r->dst * 4,
                    (VkDeviceSize)r->floats * 4);
    }
    if (any) xt_cmd_barrier(g->cmd, XT_BARRIER_TRANSFER_TO_COMPUTE);
}

static xt_status rms(gpu_state *g, const xt_dtensor *w, const xt_buffer *x, const xt_buffer *y,
                     uint32_t rows, uint32_t cols, float eps, xt_error *err)
{
    return xt_op_rms_norm(g->k, g->cmd,
                          &(xt_rms_norm_desc){.x = x, .w_tensor = w, .y = y, .n_rows = rows,
                                              .n_cols = cols, .eps = eps},
                          err);
}

static xt_status mm(gpu_state *g, const xt_dtensor *w, const xt_buffer *x, const xt_buffer *y,
                    uint32_t rows, xt_error *err)
{
    return xt_op_matmul(g->k, g->cmd,
                        &(xt_matmul_desc){.w = w, .rows = rows, .x = {x, 0}, .y = {y, 0}}, err);
}

static xt_status gpu_layer(xt_fwd *f, const fwd_plan *p, uint32_t il, xt_error *err)
{
    gpu_state *g = f->impl;
    const xt_hparams *hp = f->hp;
    uint32_t nA = p->n_attn[il], nM = p->n_moe[il], D = hp->n_embd, hd = hp->head_dim;
    uint32_t nq = hp->n_head * hd, nkv = hp->n_head_kv * hd;
    xt_status s;
    if (nA) {
        if ((s = patch_site(f, p, il, XT_SITE_RESIDUAL, &g->res, nA, err))) return s;
        record(f, p, il, true);
        if ((s = rms(g, W(g, il, ROLE(attn_norm)), &g->res, &g->xn, nA, D, hp->rms_eps, err)))
            return s;
        BAR(g);
        if ((s = mm(g, W(g, il, ROLE(wq)), &g->xn, &g->q, nA, err)) ||
            (s = mm(g, W(g, il, ROLE(wk)), &g->xn, &g->kk, nA, err)) ||
            (s = mm(g, W(g, il, ROLE(wv)), &g->xn, &g->v, nA, err)))
            return s;
        BAR(g);
        if (hp->qkv_bias) {
            const xt_buffer *bufs[3] = {&g->q, &g->kk, &g->v};
            size_t roles[3] = {ROLE(bq), ROLE(bk), ROLE(bv)};
            uint32_t widths[3] = {nq, nkv, nkv};
            for (int i = 0; i < 3; i++)
                if ((s = xt_op_add(g->k, g->cmd,
                                   &(xt_add_desc){.a = bufs[i], .b_tensor = W(g, il, roles[i]),
                                                  .y = bufs[i], .n_rows = nA, .n_cols = widths[i],
                                                  .bias = true},
                                   err)))
                    return s;
            BAR(g);
        }
        if (hp->qk_norm != XT_QK_NORM_NONE) {
            bool head = hp->qk_norm == XT_QK_NORM_HEAD;
            if ((s = rms(g, W(g, il, ROLE(q_norm)), &g->q, &g->q, head ? nA * hp->n_head : nA,
                         head ? hd : nq, hp->rms_eps, err)) ||
                (s = rms(g, W(g, il, ROLE(k_norm)), &g->kk, &g->kk,
                         head ? nA * hp->n_head_kv : nA, head ? hd : nkv, hp->rms_eps, err)))
                return s;
            BAR(g);
        }
        xt_rope_mode mode = hp->rope_neox ? XT_ROPE_NEOX : XT_ROPE_NORM;
        if ((s = xt_op_rope(g->k, g->cmd,
                            &(xt_rope_desc){.x = &g->q, .pos = &g->pos, .y = &g->q, .n_rows = nA,
                                            .n_heads = hp->n_head, .head_dim = hd,
                                            .n_rot = hp->n_rot, .freq_base = hp->rope_freq_base,
                                            .mode = mode},
                            err)) ||
            (s = xt_op_rope(g->k, g->cmd,
                            &(xt_rope_desc){.x = &g->kk, .pos = &g->pos, .y = &g->kk,
                                            .n_rows = nA, .n_heads = hp->n_head_kv,
                                            .head_dim = hd, .n_rot = hp->n_rot,
                                            .freq_base = hp->rope_freq_base, .mode = mode},
                            err)))
            return s;
        BAR(g);
        if ((s = xt_op_kv_store(g->k, g->cmd,
                                &(xt_kv_store_desc){.k = &g->kk, .v = &g->v, .slots = &g->slot,
                                                    .k_cache = &g->kc[il], .v_cache = &g->vc[il],
                                                    .n_rows = nA, .width = nkv,
                                                    .n_slots = f->kv_slots},
                                err)))
            return s;
        BAR(g);
        if ((s = xt_op_attention(g->k, g->cmd,
                                 &(xt_attention_desc){.q = &g->q, .k_cache = &g->kc[il],
                                                      .v_cache = &g->vc[il], .rows = &g->attn,
                                                      .out = &g->att, .n_rows = nA,
                                                      .n_head = hp->n_head,
                                                      .n_kv_head = hp->n_head_kv, .head_dim = hd,
                                                      .n_slots = f->kv_slots},
                                 err)))
            return s;
        BAR(g);
        if ((s = mm(g, W(g, il, ROLE(wo)), &g->att, &g->ao, nA, err))) return s;
        BAR(g);
        if ((s = patch_site(f, p, il, XT_SITE_ATTN_OUT, &g->ao, nA, err))) return s;
        if ((s = xt_op_add(g->k, g->cmd,
                           &(xt_add_desc){.a = &g->res, .b = &g->ao, .y = &g->mid, .n_rows = nA,
                                          .n_cols = D},
                           err)))
            return s;
        BAR(g);
    }
    if (!nM) return XT_OK;
    if ((s = rms(g, W(g, il, ROLE(ffn_norm)), &g->mid, &g->xn, nM, D, hp->rms_eps, err)))
        return s;
    BAR(g);
    if (hp->n_expert) {
        xt_patch_desc pd = {.table = whole(&g->table), .first = p->p_first[il],
                            .count = p->p_count[il], .row_base = whole(&g->row_base),
                            .n_rows = p->n_user_rows, .src = whole(&g->store),
                            .src_floats = f->store_floats, .layer = il};
        if ((s = xt_op_moe_layer(g->k, g->cmd,
                                 &(xt_moe_layer_desc){.w = &g->moe[il], .ws = &g->ws,
                                                      .n_tokens = nM, .x = &g->xn,
                                                      .y = whole(&g->ffo),
                                                      .patch = p->p_count[il] ? &pd : NULL},
                                 err)))
            return s;
        BAR(g);
    } else {
        xt_binding fg = whole(&g->fg), fu = whole(&g->fu);
        if ((s = mm(g, W(g, il, ROLE(ffn_gate)), &g->xn, &g->fg, nM, err)) ||
            (s = mm(g, W(g, il, ROLE(ffn_up)), &g->xn, &g->fu, nM, err)))
            return s;
        BAR(g);
        if ((s = xt_op_moe_swiglu(g->k, g->cmd, nM, hp->n_ff, &fg, &fu, err))) return s;
        BAR(g);
        if ((s = mm(g, W(g, il, ROLE(ffn_down)), &g->fg, &g->ffo, nM, err))) return s;
        BAR(g);
        if ((s = patch_site(f, p, il, XT_SITE_MOE_OUT, &g->ffo, nM, err))) return s;
    }
    if ((s = xt_op_add(g->k, g->cmd,
                       &(xt_add_desc){.a = &g->mid, .b = &g->ffo, .y = &g->res, .n_rows = nM,
                                      .n_cols = D},
                       err)))
        return s;
    BAR(g);
    record(f, p, il, false);
    return XT_OK;
}

static xt_status upload_u32(gpu_state *g, xt_buffer *b, const void *src, uint64_t n,
                            xt_error *err)
{
    if (!n) return XT_OK;
    return xt_buffer_upload(g->vk, b, 0, src, (size_t)(n * 4), err);
}

static xt_status gpu_download(xt_fwd *f, const xt_fwd_batch *b, uint32_t n, bool want_logits,
                              bool want_delta, xt_error *err);

static xt_status gpu_run(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b, xt_error *err)
{
    gpu_state *g = f->impl;
    const xt_hparams *hp = f->hp;
    uint32_t D = hp->n_embd, V = hp->n_vocab, n = p->n_out;
    bool want_logits = b->logits && n, want_delta = p->true_ids && n;
    xt_status s;
    double t0 = xt_now_s();
    if ((!p->wave && (s = upload_u32(g, &g->ids, p->ids, p->n_tok, err))) ||
        (s = upload_u32(g, &g->pos, p->pos, p->n_tok, err)) ||
        (s = upload_u32(g, &g->slot, p->slot, p->n_tok, err)) ||
        (s = upload_u32(g, &g->attn, p->attn, (uint64_t)p->n_tok * 3, err)) ||
        (s = upload_u32(g, &g->row_base, p->row_base, p->n_user_rows, err)) ||
        (s = upload_u32(g, &g->table, p->patches, (uint64_t)p->n_patches * XT_PATCH_WORDS, err)) ||
        (want_delta && (s = upload_u32(g, &g->true_ids, p->true_ids, n, err))) ||
        (want_delta && (s = upload_u32(g, &g->foil_ids, p->foil_ids, n, err))))
        return s;
    if ((s = xt_cmd_begin(g->cmd, err))) return s;
    if (p->wave) {
        /* each row's input vector from the store into res (layer start) or mid (MoE stage) */
        for (uint32_t i = 0; i < p->n_tok; i++)
            xt_cmd_copy(g->cmd, &g->store, (VkDeviceSize)p->input[i] * 4,
                        p->stage[i] == XT_STAGE_MOE ? &g->mid : &g->res, (VkDeviceSize)i * D * 4,
                        (VkDeviceSize)D * 4);
        xt_cmd_barrier(g->cmd, XT_BARRIER_TRANSFER_TO_COMPUTE);
    } else {
        if ((s = xt_op_get_rows(g->k, g->cmd,
                                &(xt_get_rows_desc){.w = &g->token_embd, .rows = p->n_tok,
                                                    .ids = {&g->ids, 0}, .y = {&g->res, 0}},
                                err)))
            return s;
        BAR(g);
    }
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((s = gpu_layer(f, p, il, err))) return s;
    const xt_buffer *h = &g->hsel;
    if (n) {
        if (!p->wave && b->all_positions) {
            h = &g->xn;
            if ((s = rms(g, &g->output_norm, &g->res, h, n, D, hp->rms_eps, err))) return s;
        } else {
            xt_cmd_barrier(g->cmd, XT_BARRIER_COMPUTE_TO_TRANSFER);
            for (uint32_t r = 0; r < n; r++)
                xt_cmd_copy(g->cmd, &g->res, (VkDeviceSize)p->out_tok[r] * D * 4, &g->hsel,
                            (VkDeviceSize)r * D * 4, (VkDeviceSize)D * 4);
            xt_cmd_barrier(g->cmd, XT_BARRIER_TRANSFER_TO_COMPUTE);
            if ((s = rms(g, &g->output_norm, &g->hsel, &g->hsel, n, D, hp->rms_eps, err)))
                return s;
        }
        BAR(g);
        const xt_dtensor *out = hp->tied_output ? &g->token_embd : &g->output;
        if (want_logits) {
            /* rows in groups whose logits fit one binding */
            uint64_t per = g->limit / ((uint64_t)V * 4);
            if (per == 0)
                return xt_error_set(err, XT_ERR_RANGE, "gpu forward: one row of %u logits "
                                    "exceeds a binding", V);
            for (uint64_t r0 = 0; r0 < n; r0 += per) {
                uint32_t rows = (uint32_t)(n - r0 < per ? n - r0 : per);
                if ((s = xt_op_matmul(g->k, g->cmd,
                                      &(xt_matmul_desc){.w = out, .rows = rows,
                                                        .x = {h, r0 * D * 4},
                                                        .y = {&g->logits, r0 * V * 4}},
                                      err)))
                    return s;
            }
        }
        if (want_delta &&
            (s = xt_op_logit_gather(g->k, g->cmd,
                                    &(xt_logit_gather_desc){.w = out, .rows = n, .h = {h, 0},
                                                            .true_ids = {&g->true_ids, 0},
                                                            .foil_ids = {&g->foil_ids, 0},
                                                            .logits = {&g->lg2, 0},
                                                            .diff = {&g->diff, 0}},
                                    err)))
            return s;
    }
    double t1 = xt_now_s();
    f->times.record_s += t1 - t0;
    if ((s = xt_cmd_submit_wait(g->cmd, err))) return s;
    double t2 = xt_now_s();
    s = gpu_download(f, b, n, want_logits, want_delta, err);
    f->times.download_s += xt_now_s() - t2;
    return s;
}

/* The submission's outputs back to the host. */
static xt_status gpu_download(xt_fwd *f, const xt_fwd_batch *b, uint32_t n, bool want_logits,
                              bool want_delta, xt_error *err)
{
    gpu_state *g = f->impl;
    uint32_t V = f->hp->n_vocab;
    xt_status s;
    if (want_logits &&
        (s = xt_buffer_download(g->vk, &g->logits, 0, b->logits, (size_t)n * V * 4, err)))
        return s;
    if (want_delta && b->delta &&
        (s = xt_buffer_download(g->vk, &g->diff, 0, b->delta, (size_t)n * 4, err)))
        return s;
    if (want_delta && b->true_foil &&
        (s = xt_buffer_download(g->vk, &g->lg2, 0, b->true_foil, (size_t)n * 8, err)))
        return s;
    return XT_OK;
}
