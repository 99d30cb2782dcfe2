/* CPU reference of the MoE op family (see ref_moe.h). Each function is the plain loop the
 * corresponding shader parallelises; evaluation order is spelled out where it matters. */
#include "ref_moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"

/* ---- router -------------------------------------------------------------------------------- */

static bool ref_masked(const uint32_t *mask, uint32_t mask_rows, uint32_t words, uint32_t t,
                       uint32_t e)
{
    const uint32_t *row = mask + (size_t)(mask_rows == 1 ? 0 : t) * words;
    return (row[e / 32] >> (e % 32)) & 1u;
}

void xt_ref_router(const float *logits, uint32_t n_tokens, uint32_t n_expert, uint32_t n_used,
                   uint32_t flags, const uint32_t *mask, uint32_t mask_rows, const uint32_t *force,
                   uint32_t *ids, float *weights, float *probs)
{
    uint32_t words = (n_expert + 31) / 32;
    for (uint32_t t = 0; t < n_tokens; t++) {
        const float *l = logits + (size_t)t * n_expert;
        float m = l[0];
        for (uint32_t e = 1; e < n_expert; e++) m = fmaxf(m, l[e]);
        float sum = 0;
        for (uint32_t e = 0; e < n_expert; e++) sum += expf(l[e] - m);
        if (probs)
            for (uint32_t e = 0; e < n_expert; e++)
                probs[(size_t)t * n_expert + e] = expf(l[e] - m) / sum;

        bool forced = (flags & XT_ROUTER_FORCE) && force[(size_t)t * n_used] != XT_MOE_NO_EXPERT;
        uint32_t *tid = ids + (size_t)t * n_used;
        float *tw = weights + (size_t)t * n_used;
        float wsum = 0, prev_l = 0;
        uint32_t prev_e = XT_MOE_NO_EXPERT;
        for (uint32_t s = 0; s < n_used; s++) {
            uint32_t best = XT_MOE_NO_EXPERT;
            if (forced) {
                best = force[(size_t)t * n_used + s];
                if (best >= n_expert) best = XT_MOE_NO_EXPERT;
            } else {
                /* the best expert ranked after the previous pick in (logit desc, index asc) */
                float best_l = 0;
                for (uint32_t e = 0; e < n_expert; e++) {
                    bool after = prev_e == XT_MOE_NO_EXPERT || l[e] < prev_l ||
                                 (l[e] == prev_l && e > prev_e);
                    if (!after) continue;
                    if ((flags & XT_ROUTER_MASK) && ref_masked(mask, mask_rows, words, t, e))
                        continue;
                    if (best == XT_MOE_NO_EXPERT || l[e] > best_l) {
                        best = e;
                        best_l = l[e];
                    }
                }
                if (best != XT_MOE_NO_EXPERT) {
                    prev_e = best;
                    prev_l = best_l;
                }
            }
            float p = best == XT_MOE_NO_EXPERT ? 0.0f : expf(l[best] - m) / sum;
            tid[s] = best;
            tw[s] = p;
            wsum += p;
        }
        if ((flags & XT_ROUTER_RENORM) && wsum > 0)
            for (uint32_t s = 0; s < n_used; s++) tw[s] = tw[s] / wsum;
    }
}

/* ---- grouping ------------------------------------------------------------------------------ */

uint32_t xt_ref_moe_group(const uint32_t *ids, uint32_t n_entries, uint32_t n_expert,
                          uint32_t tile_rows, uint32_t max_tiles, uint32_t *counts,
                          uint32_t *offsets, uint32_t *order, uint32_t *tiles)
{
    memset(counts, 0, (size_t)n_expert * sizeof *counts);
    for (uint32_t e = 0; e < n_entries; e++)
        if (ids[e] < n_expert) counts[ids[e]]++;
    uint32_t off = 0, n_tiles = 0;
    for (uint32_t x = 0; x < n_expert; x++) {
        offsets[x] = off;
        for (uint32_t j = 0; j * tile_rows < counts[x]; j++, n_tiles++) {
            if (n_tiles < max_tiles) {
                tiles[2 * n_tiles] = x;
                tiles[2 * n_tiles + 1] = off + j * tile_rows;
            }
        }
        off += counts[x];
    }
    offsets[n_expert] = off;
    /* stable: entries of one expert in ascending entry order */
    for (uint32_t x = 0, pos = 0; x < n_expert; x++)
        for (uint32_t e = 0; e < n_entries; e++)
            if (ids[e] == x) order[pos++] = e;
    return n_tiles < max_tiles ? n_tiles : max_tiles;
}

/* ---- expert FFN steps ---------------------------------------------------------------------- */

void xt_ref_moe_swiglu(float *g, const float *u, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void xt_ref_moe_weight(float *c, const float *w, const uint32_t *ids, uint32_t n_entries,
                       uint32_t width, uint32_t n_expert)
{
    for (uint32_t e = 0; e < n_entries; e++)
        for (uint32_t n = 0; n < width; n++) {
            float *v = &c[(size_t)e * width + n];
            *v = ids[e] < n_expert ? w[e] * *v : 0.0f;
        }
}

void xt_ref_moe_shared_gate(float *s, const float *gate, uint32_t n_tokens, uint32_t width)
{
    for (uint32_t t = 0; t < n_tokens; t++) {
        float sg = 1.0f / (1.0f + expf(-gate[t]));
        for (uint32_t n = 0; n < width; n++) s[(size_t)t * width + n] *= sg;
    }
}

void xt_ref_moe_combine(const float *c, const float *shared, float *y, uint32_t n_tokens,
                        uint32_t n_used, uint32_t width)
{
    for (uint32_t t = 0; t < n_tokens; t++)
        for (uint32_t n = 0; n < width; n++) {
            float acc = c[((size_t)t * n_used) * width + n];
            for (uint32_t s = 1; s < n_used; s++) acc += c[((size_t)t * n_used + s) * width + n];
            if (shared) acc += shared[(size_t)t * width + n];
            y[(size_t)t * width + n] = acc;
        }
}

/* ---- matmul on dequantized weights ---------------------------------------------------------- */

xt_status xt_ref_moe_matvec(const xt_ref_tensor *w, uint32_t slab, const float *x, uint32_t rows,
                            float *y, xt_error *err)
{
    uint64_t K = (uint64_t)w->ne[0], N = (uint64_t)w->ne[1], row_bytes;
    xt_status s = xt_type_nbytes(w->type, K, &row_bytes, err);
    if (s) return s;
    float *wrow = malloc(K * sizeof *wrow);
    if (!wrow) return xt_error_set(err, XT_ERR_NO_MEMORY, "ref matvec: out of host memory");
    const uint8_t *base = (const uint8_t *)w->data + (uint64_t)slab * N * row_bytes;
    for (uint64_t n = 0; n < N && !s; n++) {
        s = xt_dequantize(w->type, base + n * row_bytes, row_bytes, wrow, K, err);
        for (uint32_t r = 0; r < rows && !s; r++) {
            float acc = 0;
            for (uint64_t k = 0; k < K; k++) acc += wrow[k] * x[(size_t)r * K + k];
            y[(size_t)r * N + n] = acc;
        }
    }
    free(wrow);
    return s;
}

/* ---- the MoE block ------------------------------------------------------------------------- */

xt_status xt_ref_moe_layer(const xt_ref_moe_weights *w, const float *x, uint32_t n_tokens,
                           const xt_ref_moe_out *out, xt_error *err)
{
    uint32_t n_embd = (uint32_t)w->gate_inp.ne[0], E = (uint32_t)w->gate_inp.ne[1];
    uint32_t k = w->n_used, n_ff = (uint32_t)w->gate_exps.ne[1];
    size_t T = n_tokens, N = T * k;
    bool has_shared = w->gate_inp_shexp.data != NULL;
    uint32_t n_ff_s = has_shared ? (uint32_t)w->gate_shexp.ne[1] : 0;
    float *logits = malloc(T * E * sizeof(float));
    uint32_t *ids = malloc(N * sizeof(uint32_t));
    float *wts = malloc(N * sizeof(float));
    float *c = malloc(N * n_embd * sizeof(float));
    float *g = malloc(n_ff * sizeof(float)), *u = malloc(n_ff * sizeof(float));
    float *sh = has_shared ? malloc(T * n_embd * sizeof(float)) : NULL;
    float *sg = has_shared ? malloc(T * n_ff_s * sizeof(float)) : NULL;
    float *su = has_shared ? malloc(T * n_ff_s * sizeof(float)) : NULL;
    float *sgate = has_shared ? malloc(T * sizeof(float)) : NULL;
    xt_status s = XT_OK;
    if (!logits || !ids || !wts || !c || !g || !u ||
        (has_shared && (!sh || !sg || !su || !sgate))) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "ref moe layer: out of host memory");
        goto done;
    }
    s = xt_ref_moe_matvec(&w->gate_inp, 0, x, n_tokens, logits, err);
    if (s) goto done;
    xt_ref_router(logits, n_tokens, E, k, w->renorm ? XT_ROUTER_RENORM : 0, NULL, 1, NULL, ids,
                  wts, out->probs);
    /* each entry through its expert: c[e] = W_down (silu(W_gate x) * W_up x) */
    for (size_t e = 0; e < N && !s; e++) {
        const float *xt = x + (e / k) * n_embd;
        if (ids[e] >= E) {
            memset(c + e * n_embd, 0, n_embd * sizeof(float));
            continue;
        }
        s = xt_ref_moe_matvec(&w->gate_exps, ids[e], xt, 1, g, err);
        if (!s) s = xt_ref_moe_matvec(&w->up_exps, ids[e], xt, 1, u, err);
        if (!s) xt_ref_moe_swiglu(g, u, n_ff);
        if (!s) s = xt_ref_moe_matvec(&w->down_exps, ids[e], g, 1, c + e * n_embd, err);
    }
    if (s) goto done;
    xt_ref_moe_weight(c, wts, ids, (uint32_t)N, n_embd, E);
    if (has_shared) {
        s = xt_ref_moe_matvec(&w->gate_shexp, 0, x, n_tokens, sg, err);
        if (!s) s = xt_ref_moe_matvec(&w->up_shexp, 0, x, n_tokens, su, err);
        if (!s) s = xt_ref_moe_matvec(&w->gate_inp_shexp, 0, x, n_tokens, sgate, err);
        if (s) goto done;
        xt_ref_moe_swiglu(sg, su, (uint64_t)T * n_ff_s);
        s = xt_ref_moe_matvec(&w->down_shexp, 0, sg, n_tokens, sh, err);
        if (s) goto done;
        xt_ref_moe_shared_gate(sh, sgate, n_tokens, n_embd);
    }
    xt_ref_moe_combine(c, sh, out->y, n_tokens, k, n_embd);
    if (out->contrib) memcpy(out->contrib, c, N * n_embd * sizeof(float));
    if (out->shared && sh) memcpy(out->shared, sh, T * n_embd * sizeof(float));
    if (out->ids) memcpy(out->ids, ids, N * sizeof(uint32_t));
    if (out->weights) memcpy(out->weights, wts, N * sizeof(float));
done:
    free(logits);
    free(ids);
    free(wts);
    free(c);
    free(g);
    free(u);
    free(sh);
    free(sg);
    free(su);
    free(sgate);
    return s;
}

/* ---- patch pass ---------------------------------------------------------------------------- */

void xt_ref_patch_apply(const uint32_t *table, uint32_t first, uint32_t count, uint32_t layer,
                        uint32_t site, const uint32_t *row_base, uint32_t n_rows, const float *src,
                        uint32_t src_floats, float *target, uint32_t n_tokens, uint32_t width,
                        const uint32_t *ids, uint32_t n_used)
{
    for (uint32_t j = first; j < first + count; j++) {
        const uint32_t *p = table + (size_t)j * XT_PATCH_WORDS;
        if (p[XT_PATCH_LAYER] != layer || p[XT_PATCH_SITE] != site) continue;
        if (p[XT_PATCH_ROW] >= n_rows) continue;
        uint32_t t = row_base[p[XT_PATCH_ROW]] + p[XT_PATCH_POSITION];
        if (t >= n_tokens) continue;
        size_t v = t; /* target vector */
        if (site == XT_SITE_EXPERT || site == XT_SITE_ROUTER_WEIGHT) {
            v = SIZE_MAX;
            for (uint32_t s = 0; s < n_used && v == SIZE_MAX; s++)
                if (ids[(size_t)t * n_used + s] == p[XT_PATCH_EXPERT]) v = (size_t)t * n_used + s;
            if (v == SIZE_MAX) continue; /* expert not routed: nothing to patch */
        }
        uint32_t so = p[XT_PATCH_SRC];
        for (uint32_t n = 0; n < width; n++) {
            float *dst = &target[v * width + n];
            if (p[XT_PATCH_MODE] == XT_PATCH_ZERO) {
                *dst = 0.0f;
            } else if ((uint64_t)so + n < src_floats) {
                if (p[XT_PATCH_MODE] == XT_PATCH_REPLACE) *dst = src[so + n];
                else if (p[XT_PATCH_MODE] == XT_PATCH_ADD) *dst = *dst + src[so + n];
            }
        }
    }
}
