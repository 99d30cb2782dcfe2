/* The forward pass's front end (see forward.h): checks a batch, turns it into a plan (token
 * layout, K/V slots, attention rows, per-layer active prefixes, sorted patches and records,
 * output rows) and hands the plan to the backend. */
#include "forward_internal.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(xt_fwd_patch) == sizeof(xt_patch_entry), "patch entry layout");
_Static_assert(offsetof(xt_fwd_patch, src) == offsetof(xt_patch_entry, src), "patch entry layout");
_Static_assert(XT_FWD_SITE_RESIDUAL == XT_SITE_RESIDUAL && XT_FWD_SITE_ATTN_OUT == XT_SITE_ATTN_OUT &&
                   XT_FWD_SITE_MOE_OUT == XT_SITE_MOE_OUT && XT_FWD_SITE_EXPERT == XT_SITE_EXPERT &&
                   XT_FWD_SITE_ROUTER_WEIGHT == XT_SITE_ROUTER_WEIGHT &&
                   XT_FWD_SITE_SHARED_EXPERT == XT_SITE_SHARED_EXPERT,
               "site numbers");
_Static_assert(XT_FWD_PATCH_REPLACE == XT_PATCH_REPLACE && XT_FWD_PATCH_ADD == XT_PATCH_ADD &&
                   XT_FWD_PATCH_ZERO == XT_PATCH_ZERO,
               "patch modes");

static const char *const site_names[XT_REC_COUNT] = {
    [XT_REC_RESIDUAL_IN] = "residual_in",       [XT_REC_ATTN_OUT] = "attn_out",
    [XT_REC_RESIDUAL_MID] = "residual_mid",     [XT_REC_MOE_IN] = "moe_in",
    [XT_REC_ROUTER_LOGITS] = "router_logits",   [XT_REC_ROUTER_PROBS] = "router_probs",
    [XT_REC_EXPERT_IDS] = "expert_ids",         [XT_REC_EXPERT_WEIGHTS] = "expert_weights",
    [XT_REC_EXPERT_CONTRIB] = "expert_contrib", [XT_REC_SHARED] = "shared_expert",
    [XT_REC_MOE_OUT] = "moe_out",               [XT_REC_RESIDUAL_OUT] = "residual_out",
};

const char *xt_rec_site_name(xt_rec_site s)
{
    return (unsigned)s < XT_REC_COUNT ? site_names[s] : "unknown";
}

uint32_t xt_fwd_site_floats(const xt_hparams *hp, xt_rec_site s)
{
    switch (s) {
    case XT_REC_RESIDUAL_IN:
    case XT_REC_ATTN_OUT:
    case XT_REC_RESIDUAL_MID:
    case XT_REC_MOE_IN:
    case XT_REC_MOE_OUT:
    case XT_REC_RESIDUAL_OUT: return hp->n_embd;
    case XT_REC_ROUTER_LOGITS:
    case XT_REC_ROUTER_PROBS: return hp->n_expert;
    case XT_REC_EXPERT_IDS:
    case XT_REC_EXPERT_WEIGHTS: return hp->n_expert_used;
    case XT_REC_EXPERT_CONTRIB: return hp->n_expert_used * hp->n_embd;
    case XT_REC_SHARED: return hp->shared_expert ? hp->n_embd : 0;
    default: return 0;
    }
}

void fwd_plan_free(fwd_plan *p)
{
    free(p->ids);
    free(p->pos);
    free(p->slot);
    free(p->attn);
    free(p->row_base);
    free(p->n_attn);
    free(p->n_moe);
    free(p->input);
    free(p->stage);
    free(p->start);
    free(p->user_of);
    free(p->patches);
    free(p->p_first);
    free(p->p_count);
    free(p->recs);
    free(p->r_first);
    free(p->r_count);
    free(p->out_tok);
    free(p->true_ids);
    free(p->foil_ids);
    memset(p, 0, sizeof *p);
}

/* ---- creation ------------------------------------------------------------------------------- */

xt_status xt_fwd_create(const xt_fwd_desc *desc, xt_fwd **out, xt_error *err)
{
    *out = NULL;
    if (!desc->model) return xt_error_set(err, XT_ERR_USAGE, "forward: no model");
    xt_fwd *f = calloc(1, sizeof *f);
    if (!f) return xt_error_set(err, XT_ERR_NO_MEMORY, "forward: out of host memory");
    f->model = desc->model;
    f->hp = xt_model_hparams(desc->model);
    f->backend = desc->backend;
    f->max_tokens = desc->max_tokens ? desc->max_tokens : 512;
    f->kv_slots = desc->kv_slots ? desc->kv_slots : 2 * f->max_tokens;
    f->store_floats = desc->store_floats ? desc->store_floats : 1u << 20;
    f->max_patches = desc->max_patches ? desc->max_patches : 4096;
    f->max_out_rows = desc->max_out_rows ? desc->max_out_rows : f->max_tokens;
    f->parent_base = calloc(f->max_tokens, sizeof(uint32_t));
    f->parent_len = calloc(f->max_tokens, sizeof(uint32_t));
    xt_status s;
    if (!f->parent_base || !f->parent_len) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "forward: out of host memory");
        goto fail;
    }
    if (f->kv_slots < f->max_tokens) {
        s = xt_error_set(err, XT_ERR_USAGE, "forward: %u K/V slots for %u tokens", f->kv_slots,
                         f->max_tokens);
        goto fail;
    }
    if (desc->backend == XT_BACKEND_GPU) {
        if (!desc->vk) {
            s = xt_error_set(err, XT_ERR_USAGE, "forward: GPU backend without a Vulkan context");
            goto fail;
        }
        s = xt_fwd_gpu_init(f, desc->vk, err);
    } else if (desc->backend == XT_BACKEND_CPU) {
        s = xt_fwd_cpu_init(f, err);
    } else {
        s = xt_error_set(err, XT_ERR_USAGE, "forward: unknown backend %d", (int)desc->backend);
    }
    if (s) goto fail;
    *out = f;
    return XT_OK;
fail:
    xt_fwd_destroy(f);
    return s;
}

void xt_fwd_destroy(xt_fwd *f)
{
    if (!f) return;
    if (f->ops) f->ops->destroy(f);
    free(f->parent_base);
    free(f->parent_len);
    free(f);
}

const xt_hparams *xt_fwd_hparams(const xt_fwd *f) { return f->hp; }
xt_backend xt_fwd_backend(const xt_fwd *f) { return f->backend; }
uint32_t xt_fwd_store_floats(const xt_fwd *f) { return f->store_floats; }

uint64_t xt_fwd_device_bytes(const xt_fwd *f, uint64_t *weight_bytes)
{
    if (weight_bytes) *weight_bytes = f->weight_bytes;
    return f->device_bytes;
}

static xt_status check_store_range(const xt_fwd *f, uint32_t first, uint32_t n, const char *what,
                                   xt_error *err)
{
    if ((uint64_t)first + n > f->store_floats)
        return xt_error_set(err, XT_ERR_RANGE,
                            "forward: %s [%u, %llu) lies outside the store of %u floats", what,
                            first, (unsigned long long)first + n, f->store_floats);
    return XT_OK;
}

xt_status xt_fwd_store_write(xt_fwd *f, uint32_t first, const float *src, uint32_t n,
                             xt_error *err)
{
    xt_status s = check_store_range(f, first, n, "store write", err);
    if (s || n == 0) return s;
    return f->ops->store_write(f, first, src, n, err);
}

xt_status xt_fwd_store_read(xt_fwd *f, uint32_t first, float *dst, uint32_t n, xt_error *err)
{
    xt_status s = check_store_range(f, first, n, "store read", err);
    if (s || n == 0) return s;
    return f->ops->store_read(f, first, dst, n, err);
}

/* ---- planning ------------------------------------------------------------------------------- */

#define ALLOC(ptr, n)                                                                              \
    do {                                                                                           \
        (ptr) = calloc((n) ? (n) : 1, sizeof *(ptr));                                              \
        if (!(ptr)) return xt_error_set(err, XT_ERR_NO_MEMORY, "forward: out of host memory");     \
    } while (0)

/* Which part of the layer a site belongs to: 0 attention part, 1 MoE part. */
static int site_part_rec(xt_rec_site s)
{
    return s == XT_REC_RESIDUAL_IN || s == XT_REC_ATTN_OUT ? 0 : 1;
}

static int site_part_patch(uint32_t site)
{
    return site == XT_SITE_RESIDUAL || site == XT_SITE_ATTN_OUT ? 0 : 1;
}

/* Sorts patches and records by layer (stable counting sort) and resolves them to tokens. */
static xt_status plan_sites(xt_fwd *f, fwd_plan *p, const xt_fwd_batch *b, const uint32_t *len,
                            xt_error *err)
{
    const xt_hparams *hp = f->hp;
    uint32_t L = hp->n_layer;
    if (b->n_patches > f->max_patches)
        return xt_error_set(err, XT_ERR_RANGE, "forward: %u patches, at most %u", b->n_patches,
                            f->max_patches);
    ALLOC(p->p_first, L);
    ALLOC(p->p_count, L);
    ALLOC(p->r_first, L);
    ALLOC(p->r_count, L);
    ALLOC(p->patches, b->n_patches);
    ALLOC(p->recs, b->n_records);
    for (uint32_t i = 0; i < b->n_patches; i++) {
        xt_patch_entry ev;
        memcpy(&ev, &b->patches[i], sizeof ev);
        const xt_patch_entry *e = &ev;
        if (e->layer >= L || e->site >= XT_SITE_COUNT || e->row >= p->n_user_rows ||
            e->position >= len[e->row] || e->mode > XT_PATCH_ZERO)
            return xt_error_set(err, XT_ERR_RANGE,
                                "forward: patch %u (row %u, position %u, layer %u, site %u, mode "
                                "%u) is outside the batch or unknown",
                                i, e->row, e->position, e->layer, e->site, e->mode);
        bool moe_only = e->site == XT_SITE_EXPERT || e->site == XT_SITE_ROUTER_WEIGHT;
        if ((moe_only && hp->n_expert == 0) ||
            (e->site == XT_SITE_SHARED_EXPERT && !hp->shared_expert))
            return xt_error_set(err, XT_ERR_USAGE, "forward: patch %u: site %u does not exist in "
                                "this %s model", i, e->site, xt_arch_name(hp->arch));
        uint32_t w = e->site == XT_SITE_ROUTER_WEIGHT ? 1 : hp->n_embd;
        if (e->mode != XT_PATCH_ZERO && (uint64_t)e->src + w > f->store_floats)
            return xt_error_set(err, XT_ERR_RANGE, "forward: patch %u reads store [%u, %llu), "
                                "past its %u floats", i, e->src,
                                (unsigned long long)e->src + w, f->store_floats);
        if (p->wave) {
            uint32_t t = p->row_base[e->row];
            uint32_t key = 2 * e->layer + (uint32_t)site_part_patch(e->site);
            if (key < 2 * p->start[t] + p->stage[t])
                return xt_error_set(err, XT_ERR_USAGE, "forward: patch %u at layer %u is before "
                                    "wavefront row %u starts", i, e->layer, e->row);
        }
        p->p_count[e->layer]++;
    }
    for (uint32_t i = 0; i < b->n_records; i++) {
        const xt_fwd_record *r = &b->records[i];
        uint32_t fl = (unsigned)r->site < XT_REC_COUNT ? xt_fwd_site_floats(hp, r->site) : 0;
        if (r->layer >= L || r->row >= p->n_user_rows || r->position >= len[r->row] || fl == 0)
            return xt_error_set(err, XT_ERR_RANGE,
                                "forward: record %u (row %u, position %u, layer %u, site %s) is "
                                "outside the batch or not a site of this model",
                                i, r->row, r->position, r->layer, xt_rec_site_name(r->site));
        if ((uint64_t)r->dst + fl > f->store_floats)
            return xt_error_set(err, XT_ERR_RANGE, "forward: record %u writes store [%u, %llu), "
                                "past its %u floats", i, r->dst,
                                (unsigned long long)r->dst + fl, f->store_floats);
        uint32_t t = p->row_base[r->row] + r->position;
        if (p->wave) {
            uint32_t key = 2 * r->layer + (uint32_t)site_part_rec(r->site);
            if (key < 2 * p->start[t] + p->stage[t])
                return xt_error_set(err, XT_ERR_USAGE, "forward: record %u at layer %u (%s) is "
                                    "before wavefront row %u starts", i, r->layer,
                                    xt_rec_site_name(r->site), r->row);
        }
        p->r_count[r->layer]++;
    }
    p->n_patches = b->n_patches;
    p->n_recs = b->n_records;
    for (uint32_t l = 1; l < L; l++) {
        p->p_first[l] = p->p_first[l - 1] + p->p_count[l - 1];
        p->r_first[l] = p->r_first[l - 1] + p->r_count[l - 1];
    }
    uint32_t *pf, *rf;
    ALLOC(pf, L);
    rf = calloc(L, sizeof *rf);
    if (!rf) {
        free(pf);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "forward: out of host memory");
    }
    for (uint32_t i = 0; i < b->n_patches; i++) {
        xt_patch_entry e;
        memcpy(&e, &b->patches[i], sizeof e);
        p->patches[p->p_first[e.layer] + pf[e.layer]++] = e;
    }
    for (uint32_t i = 0; i < b->n_records; i++) {
        const xt_fwd_record *r = &b->records[i];
        fwd_rec *o = &p->recs[p->r_first[r->layer] + rf[r->layer]++];
        o->tok = p->row_base[r->row] + r->position;
        o->layer = r->layer;
        o->site = r->site;
        o->dst = r->dst;
        o->floats = xt_fwd_site_floats(hp, r->site);
    }
    free(pf);
    free(rf);
    return XT_OK;
}

static xt_status plan_outputs(xt_fwd *f, fwd_plan *p, const xt_fwd_batch *b, xt_error *err)
{
    bool want = b->logits || b->delta || b->true_foil;
    if (!want) return XT_OK;
    if ((b->delta || b->true_foil) && (!b->true_ids || !b->foil_ids))
        return xt_error_set(err, XT_ERR_USAGE, "forward: Δ asked without true and foil ids");
    if (!p->wave && b->all_positions) {
        p->n_out = p->n_tok;
        ALLOC(p->out_tok, p->n_out);
        for (uint32_t t = 0; t < p->n_tok; t++) p->out_tok[t] = t;
    } else {
        p->n_out = p->n_user_rows;
        ALLOC(p->out_tok, p->n_out);
        for (uint32_t r = 0; r < p->n_user_rows; r++)
            p->out_tok[r] = p->wave ? p->row_base[r] : p->row_base[r] + b->seqs[r].n_tokens - 1;
    }
    if (b->logits && p->n_out > f->max_out_rows)
        return xt_error_set(err, XT_ERR_RANGE, "forward: %u rows of full logits, at most %u "
                            "(max_out_rows)", p->n_out, f->max_out_rows);
    if (b->true_ids) {
        ALLOC(p->true_ids, p->n_out);
        ALLOC(p->foil_ids, p->n_out);
        for (uint32_t r = 0; r < p->n_out; r++) {
            if (b->true_ids[r] >= f->hp->n_vocab || b->foil_ids[r] >= f->hp->n_vocab)
                return xt_error_set(err, XT_ERR_RANGE, "forward: output row %u: true/foil ids "
                                    "%u/%u, the vocabulary has %u", r, b->true_ids[r],
                                    b->foil_ids[r], f->hp->n_vocab);
            p->true_ids[r] = b->true_ids[r];
            p->foil_ids[r] = b->foil_ids[r];
        }
    }
    return XT_OK;
}

static xt_status plan_prefill(xt_fwd *f, fwd_plan *p, const xt_fwd_batch *b, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    if (b->n_seqs == 0 || !b->seqs || b->n_rows)
        return xt_error_set(err, XT_ERR_USAGE, "forward: a prefill needs sequences and no rows");
    uint64_t total = 0;
    for (uint32_t s = 0; s < b->n_seqs; s++) {
        if (b->seqs[s].n_tokens == 0 || !b->seqs[s].tokens)
            return xt_error_set(err, XT_ERR_USAGE, "forward: sequence %u is empty", s);
        total += b->seqs[s].n_tokens;
    }
    if (total > f->max_tokens)
        return xt_error_set(err, XT_ERR_RANGE, "forward: %llu tokens in the batch, at most %u "
                            "(max_tokens)", (unsigned long long)total, f->max_tokens);
    p->n_tok = (uint32_t)total;
    p->n_user_rows = b->n_seqs;
    ALLOC(p->ids, p->n_tok);
    ALLOC(p->pos, p->n_tok);
    ALLOC(p->slot, p->n_tok);
    ALLOC(p->attn, p->n_tok);
    ALLOC(p->row_base, p->n_user_rows);
    ALLOC(p->n_attn, hp->n_layer);
    ALLOC(p->n_moe, hp->n_layer);
    uint32_t *len;
    ALLOC(len, b->n_seqs);
    uint32_t t = 0;
    for (uint32_t s = 0; s < b->n_seqs; s++) {
        p->row_base[s] = t;
        len[s] = b->seqs[s].n_tokens;
        for (uint32_t i = 0; i < len[s]; i++, t++) {
            int32_t id = b->seqs[s].tokens[i];
            if (id < 0 || (uint32_t)id >= hp->n_vocab) {
                free(len);
                return xt_error_set(err, XT_ERR_RANGE, "forward: sequence %u, position %u: token "
                                    "id %d outside the vocabulary of %u", s, i, (int)id,
                                    hp->n_vocab);
            }
            p->ids[t] = (uint32_t)id;
            p->pos[t] = i;
            p->slot[t] = t;
            p->attn[t] = (xt_attn_row){.kv_base = p->row_base[s], .n_prefix = i, .self_kv = t};
        }
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) p->n_attn[l] = p->n_moe[l] = p->n_tok;
    xt_status st = plan_sites(f, p, b, len, err);
    free(len);
    if (st) return st;
    return plan_outputs(f, p, b, err);
}

static xt_status plan_wave(xt_fwd *f, fwd_plan *p, const xt_fwd_batch *b, xt_error *err)
{
    const xt_hparams *hp = f->hp;
    if (b->n_rows == 0 || !b->rows || b->n_seqs)
        return xt_error_set(err, XT_ERR_USAGE, "forward: a wavefront needs rows and no sequences");
    if (f->n_parents == 0)
        return xt_error_set(err, XT_ERR_USAGE, "forward: wavefront rows before any prefill");
    if (b->all_positions)
        return xt_error_set(err, XT_ERR_USAGE, "forward: all_positions is for prefills");
    uint32_t n = b->n_rows;
    if (n > f->max_tokens || (uint64_t)f->prefill_tokens + n > f->kv_slots)
        return xt_error_set(err, XT_ERR_RANGE, "forward: %u wavefront rows after %u prefill "
                            "tokens: at most %u rows and %u K/V slots", n, f->prefill_tokens,
                            f->max_tokens, f->kv_slots);
    for (uint32_t r = 0; r < n; r++) {
        const xt_fwd_row *w = &b->rows[r];
        if (w->parent >= f->n_parents || w->layer >= hp->n_layer || w->stage > XT_STAGE_MOE ||
            (uint64_t)w->input + hp->n_embd > f->store_floats)
            return xt_error_set(err, XT_ERR_RANGE, "forward: wavefront row %u (parent %u, layer "
                                "%u, stage %d, input %u) is outside the prefill, model or store",
                                r, w->parent, w->layer, (int)w->stage, w->input);
    }
    p->wave = true;
    p->n_tok = n;
    p->n_user_rows = n;
    ALLOC(p->pos, n);
    ALLOC(p->slot, n);
    ALLOC(p->attn, n);
    ALLOC(p->row_base, n);
    ALLOC(p->n_attn, hp->n_layer);
    ALLOC(p->n_moe, hp->n_layer);
    ALLOC(p->input, n);
    ALLOC(p->stage, n);
    ALLOC(p->start, n);
    ALLOC(p->user_of, n);
    /* internal order: ascending (layer, stage), stable, so the rows active at any point are a
     * prefix (counting sort over the 2 * n_layer keys) */
    uint32_t K = 2 * hp->n_layer;
    uint32_t *cnt;
    ALLOC(cnt, K + 1);
    for (uint32_t r = 0; r < n; r++) cnt[2 * b->rows[r].layer + b->rows[r].stage + 1]++;
    for (uint32_t k = 0; k < K; k++) cnt[k + 1] += cnt[k];
    for (uint32_t r = 0; r < n; r++) {
        const xt_fwd_row *w = &b->rows[r];
        uint32_t i = cnt[2 * w->layer + w->stage]++;
        p->user_of[i] = r;
        p->row_base[r] = i;
        uint32_t plen = f->parent_len[w->parent];
        p->pos[i] = plen - 1;
        p->slot[i] = f->prefill_tokens + i;
        p->attn[i] = (xt_attn_row){.kv_base = f->parent_base[w->parent], .n_prefix = plen - 1,
                                   .self_kv = p->slot[i]};
        p->input[i] = w->input;
        p->stage[i] = (uint8_t)w->stage;
        p->start[i] = w->layer;
    }
    free(cnt);
    /* active prefixes: attention part of layer l runs rows with key <= 2l, the MoE part <= 2l+1 */
    for (uint32_t l = 0, i = 0, j = 0; l < hp->n_layer; l++) {
        while (i < n && 2 * p->start[i] + p->stage[i] <= 2 * l) i++;
        while (j < n && 2 * p->start[j] + p->stage[j] <= 2 * l + 1) j++;
        p->n_attn[l] = i;
        p->n_moe[l] = j;
    }
    uint32_t *len;
    ALLOC(len, n);
    for (uint32_t r = 0; r < n; r++) len[r] = 1;
    xt_status st = plan_sites(f, p, b, len, err);
    free(len);
    if (st) return st;
    return plan_outputs(f, p, b, err);
}

void xt_fwd_times_get(const xt_fwd *f, xt_fwd_times *out) { *out = f->times; }

/* Runs a planned submission, timing it: what the backend did not book as recording or download
 * is execution. */
static xt_status timed_run(xt_fwd *f, const fwd_plan *p, const xt_fwd_batch *b, double t_plan,
                           xt_error *err)
{
    double t0 = xt_now_s(), booked = f->times.record_s + f->times.download_s;
    f->times.plan_s += t0 - t_plan;
    xt_status s = f->ops->run(f, p, b, err);
    f->times.execute_s += xt_now_s() - t0 - (f->times.record_s + f->times.download_s - booked);
    f->times.submissions++;
    return s;
}

xt_status xt_fwd_prefill(xt_fwd *f, const xt_fwd_batch *b, xt_error *err)
{
    fwd_plan p = {0};
    double t = xt_now_s();
    xt_status s = plan_prefill(f, &p, b, err);
    if (!s) {
        /* the K/V this prefill writes replaces the previous one's, whatever happens next */
        f->n_parents = 0;
        s = timed_run(f, &p, b, t, err);
    }
    if (!s) {
        f->n_parents = b->n_seqs;
        f->prefill_tokens = p.n_tok;
        for (uint32_t i = 0; i < b->n_seqs; i++) {
            f->parent_base[i] = p.row_base[i];
            f->parent_len[i] = b->seqs[i].n_tokens;
        }
    }
    fwd_plan_free(&p);
    return s;
}

xt_status xt_fwd_wavefront(xt_fwd *f, const xt_fwd_batch *b, xt_error *err)
{
    fwd_plan p = {0};
    double t = xt_now_s();
    xt_status s = plan_wave(f, &p, b, err);
    if (!s) s = timed_run(f, &p, b, t, err);
    fwd_plan_free(&p);
    return s;
}
