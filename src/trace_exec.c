/* The tracer's rows on the forward (DESIGN.md §5). One batch of cases per call: a prefill of the
 * clean and noised sequences (noise = an ADD patch on the residual entering layer 0 at every
 * subject position) that records the final position's sites, then the patched rows — single-token
 * wavefront rows that start at the MoE stage of the patched layer from the noised run's residual,
 * or, with --full-recompute, whole noised sequences patched at the final position.
 *
 * Store layout: each batch allocates its vectors from a bump arena over the forward's store; the
 * arena is reset per batch. Sequence s of a batch: case i's clean run is s = i * (1 + S), its
 * noised draws s = i * (1 + S) + 1 + d.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "util.h"
#include "trace_internal.h"

typedef struct arena {
    uint32_t top, cap;
} arena;

static bool take(arena *a, uint64_t n, uint32_t *at)
{
    if ((uint64_t)a->top + n > a->cap) return false;
    *at = a->top;
    a->top += (uint32_t)n;
    return true;
}

/* A growable list of records / patches / rows. */
typedef struct plan {
    xt_fwd_seq *seqs;
    uint32_t n_seqs;
    xt_fwd_record *recs;
    uint32_t n_recs, cap_recs;
    xt_fwd_patch *pats;
    uint32_t n_pats, cap_pats;
} plan;

static bool add_rec(plan *p, xt_fwd_record r)
{
    if (p->n_recs == p->cap_recs) {
        uint32_t cap = p->cap_recs ? 2 * p->cap_recs : 256;
        void *v = realloc(p->recs, cap * sizeof *p->recs);
        if (!v) return false;
        p->recs = v;
        p->cap_recs = cap;
    }
    p->recs[p->n_recs++] = r;
    return true;
}

static bool add_pat(plan *p, xt_fwd_patch x)
{
    if (p->n_pats == p->cap_pats) {
        uint32_t cap = p->cap_pats ? 2 * p->cap_pats : 256;
        void *v = realloc(p->pats, cap * sizeof *p->pats);
        if (!v) return false;
        p->pats = v;
        p->cap_pats = cap;
    }
    p->pats[p->n_pats++] = x;
    return true;
}

static void plan_free(plan *p)
{
    free(p->seqs);
    free(p->recs);
    free(p->pats);
    memset(p, 0, sizeof *p);
}

static xt_status oom(xt_error *err) { return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory"); }
static xt_status no_store(xt_error *err)
{
    return xt_error_set(err, XT_ERR_RANGE,
                        "trace: a batch needs more of the forward's store than it has (lower "
                        "--batch-tokens)");
}

/* The clean and noised sequences of cases idx[0..n), with the noise vectors written to the
 * store and their ADD patches in p; noise[i * S + d] = store index of case i draw d's first
 * subject position. */
static xt_status plan_prefill(trace_run *r, const uint32_t *idx, uint32_t n, arena *a, plan *p,
                              xt_error *err)
{
    uint32_t S = r->draws, D = r->D;
    p->seqs = trace_calloc((size_t)n * (1 + S), sizeof *p->seqs);
    if (!p->seqs) return oom(err);
    p->n_seqs = n * (1 + S);
    for (uint32_t i = 0; i < n; i++) {
        const trace_case *c = &r->cases[idx[i]];
        uint32_t span = c->subj_end - c->subj_begin;
        for (uint32_t s = 0; s <= S; s++) p->seqs[i * (1 + S) + s] = (xt_fwd_seq){c->tokens, c->n_tokens};
        float *v = malloc((size_t)span * D * sizeof *v);
        if (!v) return oom(err);
        for (uint32_t d = 0; d < S; d++) {
            uint32_t at;
            if (!take(a, (uint64_t)span * D, &at)) {
                free(v);
                return no_store(err);
            }
            for (uint32_t q = 0; q < span; q++)
                xt_noise_normals(r->o->noise_seed, (uint32_t)c->case_id, d, c->subj_begin + q, D,
                                 r->sigma, v + (size_t)q * D);
            xt_status s = xt_fwd_store_write(r->fwd, at, v, span * D, err);
            if (s) {
                free(v);
                return s;
            }
            for (uint32_t q = 0; q < span; q++)
                if (!add_pat(p, (xt_fwd_patch){.row = i * (1 + S) + 1 + d,
                                               .position = c->subj_begin + q,
                                               .layer = 0,
                                               .site = XT_FWD_SITE_RESIDUAL,
                                               .mode = XT_FWD_PATCH_ADD,
                                               .src = at + q * D})) {
                    free(v);
                    return oom(err);
                }
        }
        free(v);
    }
    return XT_OK;
}

/* Runs p's sequences as one prefill: Δ into delta (with tids / fids) and/or the full
 * last-position logits into logits; counts the work. */
static xt_status run_prefill_out(trace_run *r, const plan *p, const uint32_t *tids,
                                 const uint32_t *fids, float *delta, float *logits, xt_error *err)
{
    xt_status s = xt_fwd_prefill(r->fwd,
                                 &(xt_fwd_batch){.seqs = p->seqs, .n_seqs = p->n_seqs,
                                                 .records = p->recs, .n_records = p->n_recs,
                                                 .patches = p->pats, .n_patches = p->n_pats,
                                                 .true_ids = tids, .foil_ids = fids,
                                                 .delta = delta, .logits = logits},
                                 err);
    r->submissions++;
    r->prefill_rows += p->n_seqs;
    for (uint32_t i = 0; i < p->n_seqs; i++) r->prefill_tokens += p->seqs[i].n_tokens;
    return s;
}

static xt_status run_prefill_raw(trace_run *r, const plan *p, const uint32_t *tids,
                                 const uint32_t *fids, float *delta, xt_error *err)
{
    return run_prefill_out(r, p, tids, fids, delta, NULL, err);
}

/* The batch's prefill: Δ per sequence into delta[n * (1 + S)]. */
static xt_status run_prefill(trace_run *r, const plan *p, const uint32_t *idx, uint32_t n,
                             float *delta, xt_error *err)
{
    uint32_t S = r->draws, m = n * (1 + S);
    uint32_t *ids = malloc(2 * (size_t)m * sizeof *ids);
    if (!ids) return oom(err);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t s = 0; s <= S; s++) {
            ids[i * (1 + S) + s] = (uint32_t)r->cases[idx[i]].true_id;
            ids[m + i * (1 + S) + s] = (uint32_t)r->cases[idx[i]].foil_id;
        }
    xt_status s = run_prefill_raw(r, p, ids, ids + m, delta, err);
    free(ids);
    return s;
}

/* One patched row: starts at the MoE stage of `layer` of noised sequence `parent` from the
 * residual at `input`, with the final position's MoE output replaced by the vector at `src`. */
typedef struct prow {
    uint32_t parent, layer, input, src;
    uint32_t case_i, draw; /* for the caller */
} prow;

/* Runs rows[0..n) (wavefront rows, or full noised sequences with --full-recompute) and writes
 * each row's Δ to out[]. The noise patches of the batch's prefill are in pf (full recompute). */
static xt_status run_rows(trace_run *r, const prow *rows, uint32_t n, const plan *pf,
                          const uint32_t *idx, float *out, xt_error *err)
{
    uint32_t cap = r->o->batch_tokens;
    xt_status s = XT_OK;
    uint32_t *tids = malloc((size_t)cap * sizeof *tids), *fids = malloc((size_t)cap * sizeof *fids);
    xt_fwd_row *wr = malloc((size_t)cap * sizeof *wr);
    xt_fwd_patch *wp = malloc((size_t)cap * sizeof *wp);
    plan fp = {0}; /* full recompute: the patched noised sequences of one submission */
    if (r->o->full_recompute) fp.seqs = malloc((size_t)cap * sizeof *fp.seqs);
    if (!tids || !fids || !wr || !wp || (r->o->full_recompute && !fp.seqs)) {
        s = oom(err);
        goto done;
    }
    for (uint32_t first = 0; first < n && !s;) {
        uint32_t m = 0, tokens = 0;
        fp.n_pats = 0;
        if (!r->o->full_recompute) {
            m = n - first < cap ? n - first : cap;
            for (uint32_t j = 0; j < m; j++) {
                const prow *x = &rows[first + j];
                const trace_case *c = &r->cases[idx[x->case_i]];
                wr[j] = (xt_fwd_row){x->parent, x->layer, XT_STAGE_MOE, x->input};
                wp[j] = (xt_fwd_patch){.row = j, .position = 0, .layer = x->layer,
                                       .site = XT_FWD_SITE_MOE_OUT, .mode = XT_FWD_PATCH_REPLACE,
                                       .src = x->src};
                tids[j] = (uint32_t)c->true_id;
                fids[j] = (uint32_t)c->foil_id;
            }
            s = xt_fwd_wavefront(r->fwd,
                                 &(xt_fwd_batch){.rows = wr, .n_rows = m, .patches = wp,
                                                 .n_patches = m, .true_ids = tids,
                                                 .foil_ids = fids, .delta = out + first},
                                 err);
            r->wave_rows += m;
            r->submissions++;
        } else {
            while (first + m < n) {
                const prow *x = &rows[first + m];
                const trace_case *c = &r->cases[idx[x->case_i]];
                if (m && tokens + c->n_tokens > cap) break;
                fp.seqs[m] = (xt_fwd_seq){c->tokens, c->n_tokens};
                tids[m] = (uint32_t)c->true_id;
                fids[m] = (uint32_t)c->foil_id;
                /* the parent's noise patches, moved to this sequence */
                for (uint32_t q = 0; q < pf->n_pats; q++)
                    if (pf->pats[q].row == x->parent) {
                        xt_fwd_patch np = pf->pats[q];
                        np.row = m;
                        if (!add_pat(&fp, np)) s = oom(err);
                    }
                if (!add_pat(&fp, (xt_fwd_patch){.row = m, .position = c->n_tokens - 1,
                                                 .layer = x->layer, .site = XT_FWD_SITE_MOE_OUT,
                                                 .mode = XT_FWD_PATCH_REPLACE, .src = x->src}))
                    s = oom(err);
                tokens += c->n_tokens;
                m++;
            }
            if (s) break;
            fp.n_seqs = m;
            s = run_prefill_raw(r, &fp, tids, fids, out + first, err);
        }
        first += m;
    }
done:
    plan_free(&fp);
    free(tids);
    free(fids);
    free(wr);
    free(wp);
    return s;
}

/* ---- pass 1: filter and layer sweep ---------------------------------------------------------- */

static uint32_t u32_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

xt_status trace_pass1(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err)
{
    uint32_t S = r->draws, L = r->L, D = r->D, k = r->k, ns = n * (1 + S);
    arena a = {0, xt_fwd_store_floats(r->fwd)};
    plan p = {0};
    float *delta = NULL, *route = NULL, *rd = NULL;
    prow *rows = NULL;
    uint32_t *mo = NULL, *rm = NULL, rt = 0;
    double t0 = xt_now_s();
    xt_status s = plan_prefill(r, idx, n, &a, &p, err);
    if (s) goto done;
    /* records: clean MoE out [n][L], noised residual-mid [n][S][L], routing [n][4][L][k] */
    mo = malloc((size_t)n * L * sizeof *mo);
    rm = malloc((size_t)n * S * L * sizeof *rm);
    delta = malloc((size_t)ns * sizeof *delta);
    if (!mo || !rm || !delta) {
        s = oom(err);
        goto done;
    }
    uint32_t rfl = k ? 4 * L * k : 0;
    if (!take(&a, (uint64_t)n * rfl, &rt)) {
        s = no_store(err);
        goto done;
    }
    for (uint32_t i = 0; i < n && !s; i++) {
        const trace_case *c = &r->cases[idx[i]];
        uint32_t last = c->n_tokens - 1, cs = i * (1 + S);
        for (uint32_t l = 0; l < L; l++) {
            if (!take(&a, D, &mo[i * L + l])) s = no_store(err);
            for (uint32_t d = 0; d < S && !s; d++)
                if (!take(&a, D, &rm[(i * S + d) * L + l])) s = no_store(err);
            if (s) break;
            bool ok = add_rec(&p, (xt_fwd_record){cs, last, l, XT_REC_MOE_OUT, mo[i * L + l]});
            for (uint32_t d = 0; d < S; d++)
                ok = ok && add_rec(&p, (xt_fwd_record){cs + 1 + d, last, l, XT_REC_RESIDUAL_MID,
                                                       rm[(i * S + d) * L + l]});
            if (k) {
                uint32_t base = rt + i * rfl;
                ok = ok && add_rec(&p, (xt_fwd_record){cs, last, l, XT_REC_EXPERT_IDS, base + l * k});
                ok = ok && add_rec(&p, (xt_fwd_record){cs, last, l, XT_REC_EXPERT_WEIGHTS,
                                                       base + (L + l) * k});
                ok = ok && add_rec(&p, (xt_fwd_record){cs + 1, last, l, XT_REC_EXPERT_IDS,
                                                       base + (2 * L + l) * k});
                ok = ok && add_rec(&p, (xt_fwd_record){cs + 1, last, l, XT_REC_EXPERT_WEIGHTS,
                                                       base + (3 * L + l) * k});
            }
            if (!ok) s = oom(err);
        }
    }
    if (s || (s = run_prefill(r, &p, idx, n, delta, err))) goto done;
    if (k) {
        route = malloc((size_t)n * rfl * sizeof *route);
        if (!route) {
            s = oom(err);
            goto done;
        }
        if ((s = xt_fwd_store_read(r->fwd, rt, route, n * rfl, err))) goto done;
    }
    uint32_t n_rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        trace_case *c = &r->cases[idx[i]];
        c->delta_clean = delta[i * (1 + S)];
        free(c->delta_noised);
        c->delta_noised = malloc(S * sizeof *c->delta_noised);
        if (!c->delta_noised) {
            s = oom(err);
            goto done;
        }
        double sum = 0;
        for (uint32_t d = 0; d < S; d++) sum += (c->delta_noised[d] = delta[i * (1 + S) + 1 + d]);
        c->delta_noised_mean = sum / S;
        c->passed = trace_filter_pass(r, c);
        c->swept = true;
        if (k) {
            const float *q = route + (size_t)i * rfl;
            free(c->route_clean);
            free(c->route_clean_w);
            free(c->route_noised);
            free(c->route_noised_w);
            c->route_clean = malloc(L * k * sizeof(uint32_t));
            c->route_noised = malloc(L * k * sizeof(uint32_t));
            c->route_clean_w = malloc(L * k * sizeof(float));
            c->route_noised_w = malloc(L * k * sizeof(float));
            if (!c->route_clean || !c->route_noised || !c->route_clean_w || !c->route_noised_w) {
                s = oom(err);
                goto done;
            }
            for (uint32_t j = 0; j < L * k; j++) {
                c->route_clean[j] = u32_of(q[j]);
                c->route_clean_w[j] = q[L * k + j];
                c->route_noised[j] = u32_of(q[2 * L * k + j]);
                c->route_noised_w[j] = q[3 * L * k + j];
            }
        }
        if (c->passed) n_rows += S * L;
    }
    /* the layer sweep of the cases that passed */
    rows = malloc((n_rows ? n_rows : 1) * sizeof *rows);
    rd = malloc((n_rows ? n_rows : 1) * sizeof *rd);
    if (!rows || !rd) {
        s = oom(err);
        goto done;
    }
    n_rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!r->cases[idx[i]].passed) continue;
        for (uint32_t d = 0; d < S; d++)
            for (uint32_t l = 0; l < L; l++)
                rows[n_rows++] = (prow){.parent = i * (1 + S) + 1 + d, .layer = l,
                                        .input = rm[(i * S + d) * L + l], .src = mo[i * L + l],
                                        .case_i = i, .draw = d};
    }
    if ((s = run_rows(r, rows, n_rows, &p, idx, rd, err))) goto done;
    for (uint32_t j = 0; j < n_rows;) {
        trace_case *c = &r->cases[idx[rows[j].case_i]];
        free(c->layer_rescue);
        c->layer_rescue = trace_calloc(L, sizeof *c->layer_rescue);
        if (!c->layer_rescue) {
            s = oom(err);
            goto done;
        }
        for (uint32_t d = 0; d < S; d++)
            for (uint32_t l = 0; l < L; l++, j++)
                c->layer_rescue[l] += ((double)rd[j] - c->delta_noised[d]) / S;
    }
done:
    r->seconds_pass1 += xt_now_s() - t0;
    plan_free(&p);
    free(delta);
    free(route);
    free(rows);
    free(rd);
    free(mo);
    free(rm);
    return s;
}

/* ---- pass 2: the expert pass at one layer ---------------------------------------------------- */

/* What pass 2 reads back per (case, draw): the clean and noised routed contributions. */
typedef struct moe_view {
    const uint32_t *cid, *nid;   /* [k] clean / noised expert ids */
    const float *cw;             /* [k] clean weights */
    const float *cc, *cn;        /* [k][D] contributions */
    const float *nout;           /* [D] noised MoE output */
    const float *nshared;        /* [D] noised shared expert, or NULL */
} moe_view;

static int slot_of(const uint32_t *ids, uint32_t k, uint32_t e)
{
    for (uint32_t s = 0; s < k; s++)
        if (ids[s] == e) return (int)s;
    return -1;
}

/* The noised final-position MoE output with the experts in C (a bitmask over slots: clean slots
 * in bits 0..k-1, noised slots in bits k..2k-1, meaning "the expert of that slot") switched to
 * their clean contribution (0 when not clean-routed), summed in the GPU combine's order: clean
 * slots first (slot order), then the noised-only experts (noised slot order), then the shared
 * expert. For C = everything this is the clean combine itself. */
static void patched_output(const moe_view *v, uint32_t k, uint32_t D, uint64_t cmask, float *out)
{
    bool first = true;
    for (uint32_t s = 0; s < k; s++) {
        uint32_t e = v->cid[s];
        int ns = slot_of(v->nid, k, e);
        bool in = (cmask >> s) & 1 || (ns >= 0 && ((cmask >> (k + (uint32_t)ns)) & 1));
        const float *x = in ? v->cc + (size_t)s * D : ns >= 0 ? v->cn + (size_t)ns * D : NULL;
        for (uint32_t d = 0; d < D; d++) {
            float xv = x ? x[d] : 0.0f;
            out[d] = first ? xv : out[d] + xv;
        }
        first = false;
    }
    for (uint32_t s = 0; s < k; s++) {
        uint32_t e = v->nid[s];
        if (slot_of(v->cid, k, e) >= 0) continue;
        bool in = (cmask >> (k + s)) & 1;
        for (uint32_t d = 0; d < D; d++) out[d] = out[d] + (in ? 0.0f : v->cn[(size_t)s * D + d]);
    }
    if (v->nshared)
        for (uint32_t d = 0; d < D; d++) out[d] = out[d] + v->nshared[d];
}

/* The equal-norm control of clean slot s: the noised output plus a random direction (normals
 * from the noise generator at position 0x80000000 + expert) of ||δ_e||. */
static double equal_norm_output(const trace_run *r, const trace_case *c, const moe_view *v,
                                uint32_t draw, uint32_t s, float *tmp, float *out)
{
    uint32_t D = r->D, k = r->k, e = v->cid[s];
    int ns = slot_of(v->nid, k, e);
    double nd = 0, nr = 0;
    for (uint32_t d = 0; d < D; d++) {
        double dv = (double)v->cc[(size_t)s * D + d] - (ns >= 0 ? v->cn[(size_t)ns * D + d] : 0.0);
        nd += dv * dv;
    }
    nd = sqrt(nd);
    xt_noise_normals(r->o->noise_seed, (uint32_t)c->case_id, draw, 0x80000000u + e, D, 1.0, tmp);
    for (uint32_t d = 0; d < D; d++) nr += (double)tmp[d] * tmp[d];
    nr = sqrt(nr);
    for (uint32_t d = 0; d < D; d++)
        out[d] = v->nout[d] + (float)(nr > 0 ? nd * tmp[d] / nr : 0.0);
    return nd;
}

enum { P2_CLEAN_IDS, P2_CLEAN_W, P2_CLEAN_C, P2_NOISED_IDS, P2_NOISED_C, P2_NOISED_OUT,
       P2_NOISED_SH, P2_FIELDS };

xt_status trace_pass2(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err)
{
    uint32_t S = r->draws, D = r->D, k = r->k, ls = (uint32_t)r->layer, ns = n * (1 + S);
    bool shared = r->hp->shared_expert;
    arena a = {0, xt_fwd_store_floats(r->fwd)};
    plan p = {0};
    float *delta = NULL, *host = NULL, *vec = NULL, *rd = NULL, *tmp = NULL;
    prow *rows = NULL;
    double t0 = xt_now_s();
    uint32_t per = 3 * k + 2 * k * D + D + (shared ? D : 0); /* floats recorded per (case, draw) */
    uint32_t rows_per = 2 * k + 3;                             /* patched rows per (case, draw) */
    uint32_t *cm = malloc((size_t)n * sizeof *cm), *rm = malloc((size_t)n * S * sizeof *rm);
    uint32_t rec0 = 0;
    xt_status s = (!cm || !rm) ? oom(err) : plan_prefill(r, idx, n, &a, &p, err);
    if (s) goto done;
    if (!take(&a, (uint64_t)n * S * per, &rec0)) {
        s = no_store(err);
        goto done;
    }
    for (uint32_t i = 0; i < n && !s; i++) {
        const trace_case *c = &r->cases[idx[i]];
        uint32_t last = c->n_tokens - 1, cs = i * (1 + S);
        if (!take(&a, D, &cm[i])) s = no_store(err);
        bool ok = !s && add_rec(&p, (xt_fwd_record){cs, last, ls, XT_REC_MOE_OUT, cm[i]});
        for (uint32_t d = 0; d < S && ok; d++) {
            uint32_t b = rec0 + (i * S + d) * per, nseq = cs + 1 + d;
            if (!take(&a, D, &rm[i * S + d])) {
                s = no_store(err);
                break;
            }
            ok = add_rec(&p, (xt_fwd_record){nseq, last, ls, XT_REC_RESIDUAL_MID, rm[i * S + d]}) &&
                 add_rec(&p, (xt_fwd_record){cs, last, ls, XT_REC_EXPERT_IDS, b}) &&
                 add_rec(&p, (xt_fwd_record){cs, last, ls, XT_REC_EXPERT_WEIGHTS, b + k}) &&
                 add_rec(&p, (xt_fwd_record){cs, last, ls, XT_REC_EXPERT_CONTRIB, b + 3 * k}) &&
                 add_rec(&p, (xt_fwd_record){nseq, last, ls, XT_REC_EXPERT_IDS, b + 2 * k}) &&
                 add_rec(&p, (xt_fwd_record){nseq, last, ls, XT_REC_EXPERT_CONTRIB,
                                             b + 3 * k + k * D}) &&
                 add_rec(&p, (xt_fwd_record){nseq, last, ls, XT_REC_MOE_OUT, b + 3 * k + 2 * k * D});
            if (ok && shared)
                ok = add_rec(&p, (xt_fwd_record){nseq, last, ls, XT_REC_SHARED,
                                                 b + 3 * k + 2 * k * D + D});
        }
        if (!ok && !s) s = oom(err);
    }
    delta = malloc((size_t)ns * sizeof *delta);
    host = malloc((size_t)n * S * per * sizeof *host);
    if (!s && (!delta || !host)) s = oom(err);
    if (s || (s = run_prefill(r, &p, idx, n, delta, err)) ||
        (s = xt_fwd_store_read(r->fwd, rec0, host, n * S * per, err)))
        goto done;
    /* the prefill must reproduce pass 1 bit for bit (determinism, DESIGN.md §6) */
    for (uint32_t i = 0; i < n; i++) {
        const trace_case *c = &r->cases[idx[i]];
        bool same = !c->swept || memcmp(&c->delta_clean, &delta[i * (1 + S)], 4) == 0;
        for (uint32_t d = 0; d < S && same && c->swept; d++)
            same = memcmp(&c->delta_noised[d], &delta[i * (1 + S) + 1 + d], 4) == 0;
        if (!same) {
            s = xt_error_set(err, XT_ERR_DEVICE,
                             "trace: case %lld: the expert pass's prefill gives Δ %.9g / %.9g, "
                             "the layer sweep gave %.9g / %.9g: the device is not deterministic "
                             "(or the results in the output directory come from another run)",
                             (long long)c->case_id, delta[i * (1 + S)], delta[i * (1 + S) + 1],
                             c->delta_clean, c->delta_noised[0]);
            goto done;
        }
    }
    uint32_t n_rows = n * S * rows_per;
    rows = malloc((size_t)n_rows * sizeof *rows);
    rd = malloc((size_t)n_rows * sizeof *rd);
    vec = malloc((size_t)D * sizeof *vec);
    tmp = malloc((size_t)D * sizeof *tmp);
    if (!rows || !rd || !vec || !tmp) {
        s = oom(err);
        goto done;
    }
    uint32_t *cid = malloc(2 * (size_t)k * sizeof *cid);
    if (!cid) {
        s = oom(err);
        goto done;
    }
    uint32_t *nid = cid + k;
    n_rows = 0;
    for (uint32_t i = 0; i < n && !s; i++) {
        trace_case *c = &r->cases[idx[i]];
        for (uint32_t d = 0; d < S && !s; d++) {
            const float *b = host + (size_t)(i * S + d) * per;
            for (uint32_t q = 0; q < k; q++) {
                cid[q] = u32_of(b[q]);
                nid[q] = u32_of(b[2 * k + q]);
            }
            moe_view v = {cid, nid, b + k, b + 3 * k, b + 3 * k + k * D, b + 3 * k + 2 * k * D,
                          shared ? b + 3 * k + 2 * k * D + D : NULL};
            if (d == 0) {
                free(c->experts);
                free(c->expert_weight);
                free(c->expert_rescue);
                free(c->equal_norm_rescue);
                free(c->delta_norm);
                c->experts = malloc(k * sizeof *c->experts);
                c->expert_weight = malloc(k * sizeof *c->expert_weight);
                c->expert_rescue = trace_calloc(k, sizeof *c->expert_rescue);
                c->equal_norm_rescue = trace_calloc(k, sizeof *c->equal_norm_rescue);
                c->delta_norm = trace_calloc(k, sizeof *c->delta_norm);
                if (!c->experts || !c->expert_weight || !c->expert_rescue ||
                    !c->equal_norm_rescue || !c->delta_norm) {
                    s = oom(err);
                    break;
                }
                memcpy(c->experts, cid, k * sizeof *cid);
                memcpy(c->expert_weight, v.cw, k * sizeof(float));
                c->n_noised_only = 0;
                for (uint32_t q = 0; q < k; q++)
                    if (slot_of(cid, k, nid[q]) < 0 && c->n_noised_only < 64)
                        c->noised_only[c->n_noised_only++] = nid[q];
                c->expert_layer = ls;
                c->layer_patch_rescue = c->coalition_top = c->coalition_union = 0;
            }
            /* rows: k experts, k equal-norm controls, D_top, D_union, the layer patch */
            for (uint32_t j = 0; j < rows_per && !s; j++) {
                uint32_t src;
                if (j == rows_per - 1) {
                    src = cm[i];
                } else {
                    if (!take(&a, D, &src)) {
                        s = no_store(err);
                        break;
                    }
                    if (j < k) {
                        patched_output(&v, k, D, 1ull << j, vec);
                    } else if (j < 2 * k) {
                        double nd = equal_norm_output(r, c, &v, d, j - k, tmp, vec);
                        if (d == 0) c->delta_norm[j - k] = nd;
                    } else if (j == 2 * k) {
                        patched_output(&v, k, D, (1ull << k) - 1, vec);
                    } else {
                        patched_output(&v, k, D, (1ull << (2 * k)) - 1, vec);
                    }
                    if ((s = xt_fwd_store_write(r->fwd, src, vec, D, err))) break;
                }
                rows[n_rows++] = (prow){.parent = i * (1 + S) + 1 + d, .layer = ls,
                                        .input = rm[i * S + d], .src = src, .case_i = i,
                                        .draw = d};
            }
        }
    }
    free(cid);
    if (s || (s = run_rows(r, rows, n_rows, &p, idx, rd, err))) goto done;
    for (uint32_t j = 0; j < n_rows; j += rows_per) {
        trace_case *c = &r->cases[idx[rows[j].case_i]];
        uint32_t d = rows[j].draw;
        double base = c->delta_noised[d];
        for (uint32_t q = 0; q < k; q++) {
            c->expert_rescue[q] += ((double)rd[j + q] - base) / S;
            c->equal_norm_rescue[q] += ((double)rd[j + k + q] - base) / S;
        }
        c->coalition_top += ((double)rd[j + 2 * k] - base) / S;
        c->coalition_union += ((double)rd[j + 2 * k + 1] - base) / S;
        c->layer_patch_rescue += ((double)rd[j + 2 * k + 2] - base) / S;
        if (d == S - 1) c->expert_done = true;
    }
done:
    r->seconds_pass2 += xt_now_s() - t0;
    plan_free(&p);
    free(cm);
    free(rm);
    free(delta);
    free(host);
    free(vec);
    free(tmp);
    free(rows);
    free(rd);
    return s;
}

/* ---- ROME-style restorations ----------------------------------------------------------------- */

/* The lm head's logits above ~64 MiB per submission would need more than one binding on small
 * devices (128 MiB maxStorageBufferRange); the p(true) restorations run that many rows at a time. */
#define ROME_LOGITS_BYTES (64u << 20)

uint32_t trace_rome_out_rows(const xt_model *model, const xt_trace_opts *o)
{
    if (!o->rome_cases || o->rome_metric != XT_ROME_METRIC_PROB) return 1;
    uint32_t bt = o->batch_tokens ? o->batch_tokens : 512;
    uint64_t per = (uint64_t)xt_model_hparams(model)->n_vocab * sizeof(float);
    uint64_t rows = per ? ROME_LOGITS_BYTES / per : bt;
    if (rows < 2) rows = 2; /* the clean and the noised run of one case */
    return rows < bt ? (uint32_t)rows : bt;
}

/* p(true) from one row of logits: a softmax over the vocabulary in double. */
static double prob_true(const float *logits, uint32_t n_vocab, int32_t true_id)
{
    double mx = -INFINITY, sum = 0;
    for (uint32_t v = 0; v < n_vocab; v++)
        if (logits[v] > mx) mx = logits[v];
    for (uint32_t v = 0; v < n_vocab; v++) sum += exp((double)logits[v] - mx);
    return exp((double)logits[true_id] - mx) / sum;
}

/* Runs a ROME submission: the metric of each of p's sequences into metric[]; Δ from the two
 * gathered logits, p(true) from the full last-position logits in `logits` (room for n rows). */
static xt_status rome_run(trace_run *r, const plan *p, const uint32_t *tids, const uint32_t *fids,
                          float *logits, double *metric, xt_error *err)
{
    if (r->o->rome_metric != XT_ROME_METRIC_PROB) {
        float *d = malloc(p->n_seqs * sizeof *d);
        if (!d) return oom(err);
        xt_status s = run_prefill_raw(r, p, tids, fids, d, err);
        for (uint32_t j = 0; j < p->n_seqs && !s; j++) metric[j] = d[j];
        free(d);
        return s;
    }
    xt_status s = run_prefill_out(r, p, NULL, NULL, NULL, logits, err);
    uint32_t V = r->hp->n_vocab;
    for (uint32_t j = 0; j < p->n_seqs && !s; j++)
        metric[j] = prob_true(logits + (size_t)j * V, V, (int32_t)tids[j]);
    return s;
}

/* For each case: every (kind, layer, position) restoration of the clean residual entering the
 * layer, or of the clean attention / MoE outputs over a window of layers centred on it (ROME's
 * window: [l − w/2, l + w − w/2)), at one position of the noised run (draw 0); the metric (Δ or
 * p(true)) of the restored run minus that of the noised run. */
xt_status trace_rome(trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err)
{
    static const uint32_t rec_site[XT_ROME_KINDS] = {XT_REC_RESIDUAL_IN, XT_REC_ATTN_OUT,
                                                     XT_REC_MOE_OUT};
    static const uint32_t patch_site_of[XT_ROME_KINDS] = {
        XT_FWD_SITE_RESIDUAL, XT_FWD_SITE_ATTN_OUT, XT_FWD_SITE_MOE_OUT};
    uint32_t L = r->L, D = r->D, w = r->o->rome_window ? r->o->rome_window : 10;
    uint32_t cap = r->o->batch_tokens;
    bool prob = r->o->rome_metric == XT_ROME_METRIC_PROB;
    uint32_t out_rows = prob ? trace_rome_out_rows(r->model, r->o) : cap;
    double t0 = xt_now_s();
    xt_status s = XT_OK;
    float *logits = prob ? malloc((size_t)out_rows * r->hp->n_vocab * sizeof *logits) : NULL;
    if (prob && !logits) s = oom(err);
    for (uint32_t ci = 0; ci < n && !s; ci++) {
        trace_case *c = &r->cases[idx[ci]];
        uint32_t T = c->n_tokens, one = idx[ci];
        arena a = {0, xt_fwd_store_floats(r->fwd)};
        plan p = {0};
        double base2[2] = {0, 0};
        uint32_t clean0 = 0;
        /* clean + noised prefill (draw 0 only) recording the clean sites at every position */
        uint32_t saved = r->draws;
        r->draws = 1;
        s = plan_prefill(r, &one, 1, &a, &p, err);
        r->draws = saved;
        if (!s && !take(&a, (uint64_t)XT_ROME_KINDS * L * T * D, &clean0)) s = no_store(err);
        for (uint32_t kd = 0; kd < XT_ROME_KINDS && !s; kd++)
            for (uint32_t l = 0; l < L && !s; l++)
                for (uint32_t q = 0; q < T && !s; q++)
                    if (!add_rec(&p, (xt_fwd_record){0, q, l, rec_site[kd],
                                                     clean0 + ((kd * L + l) * T + q) * D}))
                        s = oom(err);
        if (!s) {
            uint32_t ids[4] = {(uint32_t)c->true_id, (uint32_t)c->true_id, (uint32_t)c->foil_id,
                               (uint32_t)c->foil_id};
            s = rome_run(r, &p, ids, ids + 2, logits, base2, err);
        }
        double base = base2[1];
        c->rome_base[0] = base2[0];
        c->rome_base[1] = base2[1];
        free(c->rome);
        c->rome = s ? NULL : trace_calloc((size_t)XT_ROME_KINDS * L * T, sizeof *c->rome);
        if (!s && !c->rome) s = oom(err);
        /* the restorations, as many noised sequences per submission as fit */
        uint32_t total = XT_ROME_KINDS * L * T, per_sub = cap / T ? cap / T : 1;
        if (per_sub > out_rows) per_sub = out_rows;
        plan q = {0};
        uint32_t *tids = malloc(per_sub * sizeof *tids), *fids = malloc(per_sub * sizeof *fids);
        double *out = malloc(per_sub * sizeof *out);
        q.seqs = malloc(per_sub * sizeof *q.seqs);
        if (!s && (!tids || !fids || !out || !q.seqs)) s = oom(err);
        for (uint32_t first = 0; first < total && !s; first += per_sub) {
            uint32_t m = total - first < per_sub ? total - first : per_sub;
            q.n_pats = 0;
            for (uint32_t j = 0; j < m && !s; j++) {
                uint32_t g = first + j, kd = g / (L * T), l = (g / T) % L, pos = g % T;
                q.seqs[j] = (xt_fwd_seq){c->tokens, T};
                tids[j] = (uint32_t)c->true_id;
                fids[j] = (uint32_t)c->foil_id;
                for (uint32_t x = 0; x < p.n_pats; x++) /* the noise of draw 0 (row 1) */
                    if (p.pats[x].row == 1) {
                        xt_fwd_patch np = p.pats[x];
                        np.row = j;
                        if (!add_pat(&q, np)) s = oom(err);
                    }
                uint32_t lo = l, hi = l + 1;
                if (kd != XT_ROME_RESIDUAL) {
                    lo = l >= w / 2 ? l - w / 2 : 0;
                    hi = l + (w - w / 2) < L ? l + (w - w / 2) : L;
                }
                for (uint32_t l2 = lo; l2 < hi && !s; l2++)
                    if (!add_pat(&q, (xt_fwd_patch){.row = j, .position = pos, .layer = l2,
                                                    .site = patch_site_of[kd],
                                                    .mode = XT_FWD_PATCH_REPLACE,
                                                    .src = clean0 + ((kd * L + l2) * T + pos) * D}))
                        s = oom(err);
            }
            q.n_seqs = m;
            if (!s) s = rome_run(r, &q, tids, fids, logits, out, err);
            for (uint32_t j = 0; j < m && !s; j++) c->rome[first + j] = out[j] - base;
        }
        free(tids);
        free(fids);
        free(out);
        plan_free(&q);
        plan_free(&p);
    }
    free(logits);
    r->seconds_rome += xt_now_s() - t0;
    return s;
}
