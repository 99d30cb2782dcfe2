/* The CPU backend of the forward pass: the plan of forward.c executed with the xt_ref_* reference
 * ops on host arrays, in the GPU backend's order (forward_gpu.c), so that the two agree to
 * rounding (the matmuls bit for bit where the shaders' accumulation order is the reference's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"
#include "forward_internal.h"
#include "ref_attn.h"
#include "ref_matmul.h"
#include "ref_moe.h"

typedef struct cpu_state {
    float **kc, **vc; /* [n_layer] of [kv_slots][n_kv * hd] */
    float *store;     /* [store_floats] */
} cpu_state;

/* ---- helpers --------------------------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    return malloc(n ? n : 1);
}

/* y [rows][N] = W x for a 2-D weight, or slab e of a 3-D one. */
static xt_status mm(const xt_wtensor *w, uint32_t e, const float *x, uint32_t rows, float *y,
                    xt_error *err)
{
    uint64_t bytes;
    const void *data = xt_wtensor_slab(w, e, &bytes);
    if (!data) return xt_error_set(err, XT_ERR_RANGE, "cpu forward: no slab %u", e);
    return xt_ref_matmul(w->type, data, bytes, (uint32_t)w->ne[0], (uint32_t)w->ne[1], x, rows, y,
                         err);
}

/* An F32 vector weight as an aligned host copy (the mapping may be unaligned). */
static float *vec(const xt_wtensor *w)
{
    float *v = xmalloc((size_t)w->ne[0] * sizeof(float));
    if (v) memcpy(v, w->t->data, (size_t)w->ne[0] * sizeof(float));
    return v;
}

static void rms(const xt_wtensor *w, const float *x, float *y, uint32_t rows, uint32_t cols,
                float eps)
{
    float *wv = vec(w);
    if (!wv) return;
    xt_ref_rms_norm(x, wv, y, rows, cols, eps);
    free(wv);
}

static void patch(const fwd_plan *p, const cpu_state *cs, const xt_fwd *f, uint32_t layer,
                  uint32_t site, float *target, uint32_t n_tokens, uint32_t width,
                  const uint32_t *ids, uint32_t n_used)
{
    if (!p->p_count[layer] || !n_tokens) return;
    xt_ref_patch_apply((const uint32_t *)p->patches, p->p_first[layer], p->p_count[layer], layer,
                       site, p->row_base, p->n_user_rows, cs->store, f->store_floats, target,
                       n_tokens, width, ids, n_used);
}

/* ---- the MoE block, step by step (as xt_op_moe_layer, with its patch points) ----------------- */

typedef struct moe_bufs {
    float *logits, *probs, *weights, *contrib, *shared;
    uint32_t *ids;
} moe_bufs;

static xt_status moe_block(const xt_fwd *f, const cpu_state *cs, const fwd_plan *p, uint32_t il,
                           const float *x, uint32_t T, float *y, const moe_bufs *mb,
                           xt_error *err)
{
    const xt_hparams *hp = f->hp;
    const xt_layer_tensors *L = xt_model_layer(f->model, il);
    uint32_t E = hp->n_expert, k = hp->n_expert_used, D = hp->n_embd, F = hp->n_ff_exp;
    size_t N = (size_t)T * k;
    xt_status s = mm(&L->gate_inp, 0, x, T, mb->logits, err);
    if (s) return s;
    xt_ref_router(mb->logits, T, E, k, hp->moe_renorm ? XT_ROUTER_RENORM : 0, NULL, 1, NULL,
                  mb->ids, mb->weights, mb->probs);
    patch(p, cs, f, il, XT_SITE_ROUTER_WEIGHT, mb->weights, T, 1, mb->ids, k);
    /* experts over the entries routed to each, entries in ascending order (the grouping's) */
    float *xg = xmalloc(N * D * sizeof(float)), *g = xmalloc(N * F * sizeof(float));
    float *u = xmalloc(N * F * sizeof(float)), *c = xmalloc(N * D * sizeof(float));
    uint32_t *ent = xmalloc(N * sizeof(uint32_t));
    if (!xg || !g || !u || !c || !ent) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
        goto done;
    }
    memset(mb->contrib, 0, N * D * sizeof(float));
    for (uint32_t e = 0; e < E && !s; e++) {
        uint32_t n = 0;
        for (size_t i = 0; i < N; i++)
            if (mb->ids[i] == e) ent[n++] = (uint32_t)i;
        if (!n) continue;
        for (uint32_t i = 0; i < n; i++)
            memcpy(xg + (size_t)i * D, x + (size_t)(ent[i] / k) * D, D * sizeof(float));
        if ((s = mm(&L->gate_exps, e, xg, n, g, err)) || (s = mm(&L->up_exps, e, xg, n, u, err)))
            break;
        xt_ref_moe_swiglu(g, u, (uint64_t)n * F);
        if ((s = mm(&L->down_exps, e, g, n, c, err))) break;
        for (uint32_t i = 0; i < n; i++)
            memcpy(mb->contrib + (size_t)ent[i] * D, c + (size_t)i * D, D * sizeof(float));
    }
    if (s) goto done;
    xt_ref_moe_weight(mb->contrib, mb->weights, mb->ids, (uint32_t)N, D, E);
    if (hp->shared_expert) {
        uint32_t FS = hp->n_ff_shexp;
        float *sg = xmalloc((size_t)T * FS * sizeof(float)), *su = xmalloc((size_t)T * FS * 4);
        float *sl = xmalloc((size_t)T * sizeof(float));
        if (!sg || !su || !sl) s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: no memory");
        if (!s) s = mm(&L->gate_shexp, 0, x, T, sg, err);
        if (!s) s = mm(&L->up_shexp, 0, x, T, su, err);
        if (!s) s = mm(&L->gate_inp_shexp, 0, x, T, sl, err);
        if (!s) {
            xt_ref_moe_swiglu(sg, su, (uint64_t)T * FS);
            s = mm(&L->down_shexp, 0, sg, T, mb->shared, err);
        }
        if (!s) xt_ref_moe_shared_gate(mb->shared, sl, T, D);
        free(sg);
        free(su);
        free(sl);
        if (s) goto done;
    }
    patch(p, cs, f, il, XT_SITE_EXPERT, mb->contrib, T, D, mb->ids, k);
    if (hp->shared_expert) patch(p, cs, f, il, XT_SITE_SHARED_EXPERT, mb->shared, T, D, NULL, 0);
    xt_ref_moe_combine(mb->contrib, hp->shared_expert ? mb->shared : NULL, y, T, k, D);
    patch(p, cs, f, il, XT_SITE_MOE_OUT, y, T, D, NULL, 0);
done:
    free(xg);
    free(g);
    free(u);
    free(c);
    free(ent);
    return s;
}

static xt_status dense_ffn(const xt_fwd *f, const cpu_state *cs, const fwd_plan *p, uint32_t il,
                           const float *x, uint32_t T, float *y, xt_error *err)
{
    const xt_layer_tensors *L = xt_model_layer(f->model, il);
    uint32_t F = f->hp->n_ff;
    float *g = xmalloc((size_t)T * F * sizeof(float)), *u = xmalloc((size_t)T * F * sizeof(float));
    xt_status s = XT_OK;
    if (!g || !u) s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
    if (!s) s = mm(&L->ffn_gate, 0, x, T, g, err);
    if (!s) s = mm(&L->ffn_up, 0, x, T, u, err);
    if (!s) {
        xt_ref_moe_swiglu(g, u, (uint64_t)T * F);
        s = mm(&L->ffn_down, 0, g, T, y, err);
    }
    if (!s) patch(p, cs, f, il, XT_SITE_MOE_OUT, y, T, f->hp->n_embd, NULL, 0);
    free(g);
    free(u);
    return s;
}

/* ---- the pass -------------------------------------------------------------------------------- */

typedef struct acts {
    float *res, *mid, *xn, *q, *k, *v, *att, *ao, *ffo;
    moe_bufs mb;
} acts;

static void record(const xt_fwd *f, cpu_state *cs, const fwd_plan *p, uint32_t il, bool pre,
                   const acts *a)
{
    const xt_hparams *hp = f->hp;
    for (uint32_t i = p->r_first[il]; i < p->r_first[il] + p->r_count[il]; i++) {
        const fwd_rec *r = &p->recs[i];
        if (fwd_site_is_pre(r->site) != pre) continue;
        const void *src = NULL;
        size_t t = r->tok, D = hp->n_embd, E = hp->n_expert, k = hp->n_expert_used;
        switch (r->site) {
        case XT_REC_RESIDUAL_IN: src = a->res + t * D; break;
        case XT_REC_ATTN_OUT: src = a->ao + t * D; break;
        case XT_REC_RESIDUAL_MID: src = a->mid + t * D; break;
        case XT_REC_MOE_IN: src = a->xn + t * D; break;
        case XT_REC_ROUTER_LOGITS: src = a->mb.logits + t * E; break;
        case XT_REC_ROUTER_PROBS: src = a->mb.probs + t * E; break;
        case XT_REC_EXPERT_IDS: src = a->mb.ids + t * k; break;
        case XT_REC_EXPERT_WEIGHTS: src = a->mb.weights + t * k; break;
        case XT_REC_EXPERT_CONTRIB: src = a->mb.contrib + t * k * D; break;
        case XT_REC_SHARED: src = a->mb.shared + t * D; break;
        case XT_REC_MOE_OUT: src = a->ffo + t * D; break;
        case XT_REC_RESIDUAL_OUT: src = a->res + t * D; break;
        default: continue;
        }
        memcpy(cs->store + r->dst, src, (size_t)r->floats * sizeof(float));
    }
}

static xt_status cpu_layer(xt_fwd *f, cpu_state *cs, const fwd_plan *p, uint32_t il,
                           const acts *a, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    const xt_layer_tensors *L = xt_model_layer(f->model, il);
    uint32_t nA = p->n_attn[il], nM = p->n_moe[il], D = hp->n_embd, hd = hp->head_dim;
    uint32_t nq = hp->n_head * hd, nkv = hp->n_head_kv * hd;
    xt_status s = XT_OK;
    if (nA) {
        patch(p, cs, f, il, XT_SITE_RESIDUAL, a->res, nA, D, NULL, 0);
        record(f, cs, p, il, true, a);
        rms(&L->attn_norm, a->res, a->xn, nA, D, hp->rms_eps);
        if ((s = mm(&L->wq, 0, a->xn, nA, a->q, err)) || (s = mm(&L->wk, 0, a->xn, nA, a->k, err)) ||
            (s = mm(&L->wv, 0, a->xn, nA, a->v, err)))
            return s;
        if (hp->qkv_bias) {
            float *bq = vec(&L->bq), *bk = vec(&L->bk), *bv = vec(&L->bv);
            if (bq && bk && bv) {
                xt_ref_add(a->q, bq, a->q, nA, nq, 0);
                xt_ref_add(a->k, bk, a->k, nA, nkv, 0);
                xt_ref_add(a->v, bv, a->v, nA, nkv, 0);
            }
            free(bq);
            free(bk);
            free(bv);
        }
        if (hp->qk_norm == XT_QK_NORM_HEAD) {
            rms(&L->q_norm, a->q, a->q, nA * hp->n_head, hd, hp->rms_eps);
            rms(&L->k_norm, a->k, a->k, nA * hp->n_head_kv, hd, hp->rms_eps);
        } else if (hp->qk_norm == XT_QK_NORM_WHOLE) {
            rms(&L->q_norm, a->q, a->q, nA, nq, hp->rms_eps);
            rms(&L->k_norm, a->k, a->k, nA, nkv, hp->rms_eps);
        }
        xt_rope_mode mode = hp->rope_neox ? XT_ROPE_NEOX : XT_ROPE_NORM;
        xt_ref_rope(a->q, p->pos, a->q, nA, hp->n_head, hd, hp->n_rot, hp->rope_freq_base, mode);
        xt_ref_rope(a->k, p->pos, a->k, nA, hp->n_head_kv, hd, hp->n_rot, hp->rope_freq_base,
                    mode);
        xt_ref_kv_store(a->k, a->v, p->slot, cs->kc[il], cs->vc[il], nA, nkv, f->kv_slots);
        xt_ref_attention(a->q, cs->kc[il], cs->vc[il], p->attn, a->att, nA, hp->n_head,
                         hp->n_head_kv, hd, f->kv_slots, 1.0f / sqrtf((float)hd));
        if ((s = mm(&L->wo, 0, a->att, nA, a->ao, err))) return s;
        patch(p, cs, f, il, XT_SITE_ATTN_OUT, a->ao, nA, D, NULL, 0);
        xt_ref_add(a->res, a->ao, a->mid, nA, D, D);
    }
    if (nM) {
        rms(&L->ffn_norm, a->mid, a->xn, nM, D, hp->rms_eps);
        s = hp->n_expert ? moe_block(f, cs, p, il, a->xn, nM, a->ffo, &a->mb, err)
                         : dense_ffn(f, cs, p, il, a->xn, nM, a->ffo, err);
        if (s) return s;
        xt_ref_add(a->mid, a->ffo, a->res, nM, D, D);
        record(f, cs, p, il, false, a);
    }
    return XT_OK;
}

static xt_status cpu_outputs(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b,
                             const acts *a, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    uint32_t D = hp->n_embd, n = p->n_out;
    if (!n) return XT_OK;
    float *h = xmalloc((size_t)n * D * sizeof(float));
    float *lg2 = xmalloc((size_t)n * 2 * sizeof(float)), *diff = xmalloc(n * sizeof(float));
    xt_status s = XT_OK;
    if (!h || !lg2 || !diff) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
        goto done;
    }
    for (uint32_t r = 0; r < n; r++)
        memcpy(h + (size_t)r * D, a->res + (size_t)p->out_tok[r] * D, D * sizeof(float));
    rms(xt_model_output_norm(f->model), h, h, n, D, hp->rms_eps);
    const xt_wtensor *out = xt_model_output(f->model);
    if (b->logits && (s = mm(out, 0, h, n, b->logits, err))) goto done;
    if (p->true_ids && (b->delta || b->true_foil)) {
        s = xt_ref_logit_gather(out->type, out->t->data, out->nbytes, D, hp->n_vocab, h,
                                p->true_ids, p->foil_ids, n, lg2, diff, err);
        if (s) goto done;
        if (b->delta) memcpy(b->delta, diff, n * sizeof(float));
        if (b->true_foil) memcpy(b->true_foil, lg2, (size_t)n * 2 * sizeof(float));
    }
done:
    free(h);
    free(lg2);
    free(diff);
    return s;
}

static xt_status cpu_run(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b, xt_error *err)
{
    cpu_state *cs = f->impl;
    const xt_hparams *hp = f->hp;
    size_t T = p->n_tok, D = hp->n_embd, nq = (size_t)hp->n_head * hp->head_dim,
           nkv = (size_t)hp->n_head_kv * hp->head_dim, E = hp->n_expert, k = hp->n_expert_used;
    acts a = {0};
    float **all[] = {&a.res, &a.mid, &a.xn, &a.ao, &a.ffo, &a.q, &a.att, &a.k, &a.v,
                     &a.mb.logits, &a.mb.probs, &a.mb.weights, &a.mb.contrib, &a.mb.shared};
    size_t sizes[] = {T * D, T * D, T * D, T * D, T * D, T * nq, T * nq, T * nkv, T * nkv,
                      T * E, T * E, T * k, T * k * D, hp->shared_expert ? T * D : 0};
    xt_status s = XT_OK;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (!(*all[i] = calloc(sizes[i] ? sizes[i] : 1, sizeof(float))))
            s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
    a.mb.ids = calloc(T * k + 1, sizeof(uint32_t));
    if (!a.mb.ids) s = xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
    if (s) goto done;
    if (p->wave) {
        for (uint32_t i = 0; i < p->n_tok; i++)
            memcpy((p->stage[i] == XT_STAGE_MOE ? a.mid : a.res) + i * D, cs->store + p->input[i],
                   D * sizeof(float));
    } else {
        const xt_wtensor *te = xt_model_token_embd(f->model);
        s = xt_ref_get_rows(te->type, te->t->data, te->nbytes, (uint32_t)D, hp->n_vocab, p->ids,
                            p->n_tok, a.res, NULL, err);
        if (s) goto done;
    }
    for (uint32_t il = 0; il < hp->n_layer && !s; il++) s = cpu_layer(f, cs, p, il, &a, err);
    if (!s) s = cpu_outputs(f, p, b, &a, err);
done:
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(*all[i]);
    free(a.mb.ids);
    return s;
}

static xt_status cpu_store_write(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                                 xt_error *err)
{
    (void)err;
    memcpy(((cpu_state *)f->impl)->store + first, src, (size_t)n * sizeof(float));
    return XT_OK;
}

static xt_status cpu_store_read(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err)
{
    (void)err;
    memcpy(dst, ((cpu_state *)f->impl)->store + first, (size_t)n * sizeof(float));
    return XT_OK;
}

static void cpu_destroy(xt_fwd *f)
{
    cpu_state *cs = f->impl;
    if (!cs) return;
    for (uint32_t l = 0; l < f->hp->n_layer; l++) {
        if (cs->kc) free(cs->kc[l]);
        if (cs->vc) free(cs->vc[l]);
    }
    free(cs->kc);
    free(cs->vc);
    free(cs->store);
    free(cs);
    f->impl = NULL;
}

static const fwd_backend_ops cpu_ops = {cpu_run, cpu_store_write, cpu_store_read, cpu_destroy};

xt_status xt_fwd_cpu_init(xt_fwd *f, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    cpu_state *cs = calloc(1, sizeof *cs);
    if (!cs) return xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
    f->impl = cs;
    f->ops = &cpu_ops;
    size_t cache = (size_t)f->kv_slots * hp->n_head_kv * hp->head_dim;
    cs->kc = calloc(hp->n_layer, sizeof *cs->kc);
    cs->vc = calloc(hp->n_layer, sizeof *cs->vc);
    cs->store = calloc(f->store_floats, sizeof(float));
    if (!cs->kc || !cs->vc || !cs->store)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory");
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        cs->kc[l] = calloc(cache, sizeof(float));
        cs->vc[l] = calloc(cache, sizeof(float));
        if (!cs->kc[l] || !cs->vc[l])
            return xt_error_set(err, XT_ERR_NO_MEMORY, "cpu forward: out of host memory for the "
                                "K/V cache (%zu floats per layer)", cache);
    }
    return XT_OK;
}
