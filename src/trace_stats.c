/* Selection and the paper's tables (DESIGN.md §4 steps 4-8): l* from the discovery layer sweep,
 * e* recurrence-first, the controls, coalitions, bootstrap CIs and sign-flip tests.
 *
 * Per-case values at l* for the selected expert e* (0 where e* is not clean-routed, as the
 * protocol says): rescue; active-random control = mean rescue of up to 3 other clean-routed
 * experts (top-k >= 4; else the other one) drawn with xt_rng(stats_seed, 0x10000000 + case_id);
 * gate-weight-matched control = the other clean-routed expert whose clean router weight is
 * closest to e*'s (0 when e* is not routed; ties to the lower slot); equal-norm control = a random
 * direction of ||δ_e*|| (trace_exec.c); specificity = rescue − active-random control.
 * Every statistic draws from its own xt_rng stream (the STREAM_* numbers below), so adding one
 * never changes another's figures.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "noise.h"
#include "stats.h"
#include "trace_internal.h"

enum {
    STREAM_LAYER = 100,     /* + layer (discovery), + 100000 + layer (validation) */
    STREAM_EXPERT = 300000, /* + 100 * statistic + split */
};

/* cJSON prints 15 significant digits whenever they read back within its epsilon, which is not
 * always the same double: write 17 so that a resumed run reads back exactly what it wrote. */
cJSON *trace_num(double v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_CreateRaw(b);
}

/* Indices (into r->cases) of the selected cases of one split. */
static uint32_t split_cases(const trace_run *r, int split, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_selected; i++)
        if (r->cases[r->selected[i]].split == split) out[n++] = r->selected[i];
    return n;
}

static double layer_mean(const trace_run *r, const uint32_t *idx, uint32_t n, uint32_t l)
{
    double s = 0;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (r->cases[idx[i]].layer_rescue) {
            s += r->cases[idx[i]].layer_rescue[l];
            m++;
        }
    return m ? s / m : NAN;
}

int32_t trace_select_layer(const trace_run *r)
{
    uint32_t *idx = trace_calloc(r->n_selected, sizeof *idx);
    if (!idx) return 0;
    uint32_t n = split_cases(r, XT_SPLIT_DISCOVERY, idx);
    int32_t best = 0;
    double bv = -INFINITY;
    for (uint32_t l = 0; l < r->L; l++) {
        double m = layer_mean(r, idx, n, l);
        if (m > bv) {
            bv = m;
            best = (int32_t)l;
        }
    }
    free(idx);
    return best;
}

static int slot_in(const trace_case *c, uint32_t k, uint32_t e)
{
    if (!c->experts) return -1;
    for (uint32_t s = 0; s < k; s++)
        if (c->experts[s] == e) return (int)s;
    return -1;
}

/* Experts sorted by discovery mean rescue (0 where not routed), candidates (clean-routed in at
 * least half the discovery cases) first. */
typedef struct expert_rank {
    uint32_t expert, active;
    double mean;
    bool candidate;
} expert_rank;

static int cmp_rank(const void *a, const void *b)
{
    const expert_rank *x = a, *y = b;
    if (x->candidate != y->candidate) return x->candidate ? -1 : 1;
    if (x->mean != y->mean) return x->mean > y->mean ? -1 : 1;
    return x->expert < y->expert ? -1 : (x->expert > y->expert);
}

static expert_rank *rank_experts(const trace_run *r, uint32_t *n_cand)
{
    uint32_t E = r->hp->n_expert, *idx = trace_calloc(r->n_selected, sizeof *idx);
    expert_rank *rk = trace_calloc(E, sizeof *rk);
    if (!idx || !rk) {
        free(idx);
        free(rk);
        return NULL;
    }
    uint32_t n = split_cases(r, XT_SPLIT_DISCOVERY, idx);
    *n_cand = 0;
    for (uint32_t e = 0; e < E; e++) {
        double sum = 0;
        uint32_t act = 0;
        for (uint32_t i = 0; i < n; i++) {
            const trace_case *c = &r->cases[idx[i]];
            int s = slot_in(c, r->k, e);
            if (s >= 0) {
                act++;
                sum += c->expert_rescue[s];
            }
        }
        rk[e] = (expert_rank){e, act, n ? sum / n : 0, 2 * act >= n && act > 0};
        *n_cand += rk[e].candidate;
    }
    qsort(rk, E, sizeof *rk, cmp_rank);
    free(idx);
    return rk;
}

int32_t trace_select_expert(const trace_run *r)
{
    uint32_t nc;
    expert_rank *rk = rank_experts(r, &nc);
    if (!rk) return 0;
    /* no candidate: the best expert routed in any discovery case (flagged in the summary) */
    int32_t e = (int32_t)rk[0].expert;
    if (!nc)
        for (uint32_t i = 0; i < r->hp->n_expert; i++)
            if (rk[i].active) {
                e = (int32_t)rk[i].expert;
                break;
            }
    free(rk);
    return e;
}

/* ---- per-case values and their statistics --------------------------------------------------- */

typedef struct case_values {
    double rescue, random, matched, equal, spec, layer, top, uni, rank;
    bool active;
} case_values;

static case_values values_of(const trace_run *r, const trace_case *c, uint32_t e)
{
    uint32_t k = r->k;
    case_values v = {0};
    int s = slot_in(c, k, e);
    v.active = s >= 0;
    v.rescue = v.active ? c->expert_rescue[s] : 0;
    v.equal = v.active ? c->equal_norm_rescue[s] : 0;
    v.layer = c->layer_patch_rescue;
    v.top = c->coalition_top;
    v.uni = c->coalition_union;
    uint32_t others[32], no = 0;
    for (uint32_t q = 0; q < k; q++)
        if ((int)q != s) others[no++] = q;
    uint32_t m = k >= 4 ? 3 : k - 1;
    if (m > no) m = no;
    xt_rng g;
    xt_rng_init(&g, r->o->stats_seed, 0x10000000u + (uint32_t)c->case_id);
    xt_shuffle_u32(others, no, &g);
    double sum = 0;
    for (uint32_t q = 0; q < m; q++) sum += c->expert_rescue[others[q]];
    v.random = m ? sum / m : 0;
    double w = v.active ? c->expert_weight[s] : 0, bd = INFINITY;
    for (uint32_t q = 0; q < k; q++) {
        if ((int)q == s) continue;
        double dd = fabs((double)c->expert_weight[q] - w);
        if (dd < bd) {
            bd = dd;
            v.matched = c->expert_rescue[q];
        }
    }
    v.spec = v.rescue - v.random;
    v.rank = NAN;
    if (v.active) {
        uint32_t better = 0;
        for (uint32_t q = 0; q < k; q++)
            if ((int)q != s && c->expert_rescue[q] > v.rescue) better++;
        v.rank = 1 + better;
    }
    return v;
}

static cJSON *ci_json(const double *x, uint32_t n, const trace_run *r, uint32_t stream, bool test)
{
    xt_stats_desc d = {.n_resamples = r->o->bootstrap, .n_flips = r->o->flips,
                       .seed = r->o->stats_seed, .stream = stream};
    xt_ci ci = {NAN, NAN, NAN};
    xt_sign_flip sf = {NAN, NAN, 0, 0};
    cJSON *j = cJSON_CreateObject();
    xt_stats_bootstrap_mean(x, n, &d, &ci, NULL);
    cJSON_AddItemToObject(j, "mean", trace_num(ci.estimate));
    cJSON_AddItemToObject(j, "lo", trace_num(ci.lo));
    cJSON_AddItemToObject(j, "hi", trace_num(ci.hi));
    cJSON_AddNumberToObject(j, "n", n);
    if (test) {
        d.stream = stream + 50;
        xt_stats_sign_flip(x, n, &d, &sf, NULL);
        cJSON_AddItemToObject(j, "p", trace_num(sf.p));
    }
    return j;
}

static cJSON *ratio_json(const double *x, const double *y, uint32_t n, const trace_run *r,
                         uint32_t stream)
{
    xt_stats_desc d = {.n_resamples = r->o->bootstrap, .seed = r->o->stats_seed, .stream = stream};
    xt_ci ci = {NAN, NAN, NAN};
    xt_stats_bootstrap_ratio(x, y, n, &d, &ci, NULL);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "ratio", trace_num(ci.estimate));
    cJSON_AddItemToObject(j, "lo", trace_num(ci.lo));
    cJSON_AddItemToObject(j, "hi", trace_num(ci.hi));
    return j;
}

static cJSON *expert_split(const trace_run *r, const uint32_t *idx, uint32_t n, uint32_t e,
                           int split)
{
    double *buf = trace_calloc((size_t)n * 10, sizeof *buf);
    if (!buf) return NULL;
    double *res = buf, *rnd = buf + n, *mat = buf + 2 * n, *eq = buf + 3 * n, *spec = buf + 4 * n,
           *lay = buf + 5 * n, *top = buf + 6 * n, *uni = buf + 7 * n, *rank = buf + 8 * n;
    uint32_t active = 0, n_rank = 0, first = 0;
    for (uint32_t i = 0; i < n; i++) {
        case_values v = values_of(r, &r->cases[idx[i]], e);
        res[i] = v.rescue;
        rnd[i] = v.random;
        mat[i] = v.matched;
        eq[i] = v.equal;
        spec[i] = v.spec;
        lay[i] = v.layer;
        top[i] = v.top;
        uni[i] = v.uni;
        if (v.active) {
            active++;
            rank[n_rank++] = v.rank;
            first += v.rank == 1;
        }
    }
    uint32_t st = STREAM_EXPERT + (uint32_t)split;
    cJSON *j = cJSON_CreateObject();
    char frac[32];
    snprintf(frac, sizeof frac, "%u/%u", active, n);
    cJSON_AddStringToObject(j, "clean_active", frac);
    cJSON_AddItemToObject(j, "rescue", ci_json(res, n, r, st, true));
    cJSON_AddItemToObject(j, "specificity", ci_json(spec, n, r, st + 100, true));
    cJSON_AddItemToObject(j, "layer_rescue", ci_json(lay, n, r, st + 200, true));
    cJSON_AddItemToObject(j, "expert_over_layer", ratio_json(res, lay, n, r, st + 300));
    cJSON_AddItemToObject(j, "spec_over_layer", ratio_json(spec, lay, n, r, st + 400));
    cJSON *ctl = cJSON_AddObjectToObject(j, "controls");
    cJSON_AddItemToObject(ctl, "active_random", ci_json(rnd, n, r, st + 500, false));
    cJSON_AddItemToObject(ctl, "gate_weight_matched", ci_json(mat, n, r, st + 600, false));
    cJSON_AddItemToObject(ctl, "equal_norm", ci_json(eq, n, r, st + 700, false));
    cJSON *rk = cJSON_AddObjectToObject(j, "rank");
    cJSON_AddItemToObject(rk, "mean", trace_num(n_rank ? xt_stats_mean(rank, n_rank) : NAN));
    snprintf(frac, sizeof frac, "%u/%u", first, n_rank);
    cJSON_AddStringToObject(rk, "first", frac);
    cJSON *co = cJSON_AddObjectToObject(j, "coalitions");
    cJSON_AddItemToObject(co, "top_k", ci_json(top, n, r, st + 800, true));
    cJSON_AddItemToObject(co, "union", ci_json(uni, n, r, st + 900, true));
    free(buf);
    return j;
}

static cJSON *ids_json(const trace_run *r, const uint32_t *idx, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)r->cases[idx[i]].case_id));
    return a;
}

static cJSON *sweep_json(const trace_run *r, const uint32_t *idx, uint32_t n, int split)
{
    cJSON *a = cJSON_CreateArray();
    double *x = trace_calloc(n, sizeof *x);
    for (uint32_t l = 0; l < r->L && x; l++) {
        for (uint32_t i = 0; i < n; i++) x[i] = r->cases[idx[i]].layer_rescue[l];
        cJSON *j = ci_json(x, n, r, STREAM_LAYER + (split ? 100000u : 0u) + l, true);
        cJSON_AddNumberToObject(j, "layer", l);
        cJSON_AddItemToArray(a, j);
    }
    free(x);
    return a;
}

static int32_t argmax_layer(const trace_run *r, const uint32_t *idx, uint32_t n, int32_t skip)
{
    int32_t best = -1;
    double bv = -INFINITY;
    for (uint32_t l = 0; l < r->L; l++) {
        double m = layer_mean(r, idx, n, l);
        if ((int32_t)l != skip && m > bv) {
            bv = m;
            best = (int32_t)l;
        }
    }
    return best;
}

cJSON *trace_summary(const trace_run *r, xt_error *err)
{
    const xt_trace_opts *o = r->o;
    uint32_t *idx = trace_calloc(2 * (size_t)r->n_selected, sizeof *idx);
    if (!idx) {
        xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
        return NULL;
    }
    uint32_t *vidx = idx + r->n_selected;
    uint32_t nd = split_cases(r, XT_SPLIT_DISCOVERY, idx);
    uint32_t nv = split_cases(r, XT_SPLIT_VALIDATION, vidx);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "expertrace trace");
    cJSON_AddNumberToObject(j, "format_version", 1);

    cJSON *st = cJSON_AddObjectToObject(j, "settings");
    cJSON_AddStringToObject(st, "model", xt_model_path(r->model));
    cJSON_AddStringToObject(st, "arch", xt_arch_name(r->hp->arch));
    cJSON_AddNumberToObject(st, "n_layer", r->L);
    cJSON_AddNumberToObject(st, "n_expert", r->hp->n_expert);
    cJSON_AddNumberToObject(st, "n_expert_used", r->k);
    cJSON_AddStringToObject(st, "facts", o->facts_path);
    if (o->cases_path) cJSON_AddStringToObject(st, "cases", o->cases_path);
    cJSON_AddNumberToObject(st, "n_cases", o->n_cases);
    cJSON_AddStringToObject(st, "filter", o->filter == XT_FILTER_STRICT    ? "strict"
                                          : o->filter == XT_FILTER_RELAXED ? "relaxed"
                                                                           : "none");
    cJSON_AddNumberToObject(st, "shuffle_seed", o->shuffle_seed);
    cJSON_AddNumberToObject(st, "noise_seed", o->noise_seed);
    cJSON_AddNumberToObject(st, "stats_seed", o->stats_seed);
    cJSON_AddNumberToObject(st, "noise_scale", o->noise_scale);
    cJSON_AddStringToObject(st, "noise_std",
                            o->noise_std == XT_NOISE_STD_SUBJECT ? "subject" : "embedding");
    cJSON_AddItemToObject(st, "std", trace_num(r->embd_std));
    cJSON_AddItemToObject(st, "sigma", trace_num(r->sigma));
    cJSON_AddNumberToObject(st, "draws", r->draws);
    cJSON_AddStringToObject(st, "bos", xt_bos_mode_name(o->bos));
    cJSON_AddBoolToObject(st, "bos_used", r->bos);
    cJSON_AddNumberToObject(st, "bootstrap", o->bootstrap);
    cJSON_AddNumberToObject(st, "flips", o->flips);
    cJSON_AddBoolToObject(st, "full_recompute", o->full_recompute);
    cJSON *env = cJSON_AddObjectToObject(j, "environment");
    cJSON_AddStringToObject(env, "backend", o->backend_name ? o->backend_name : "gpu");
    cJSON_AddStringToObject(env, "device", o->device_name ? o->device_name : "");
    cJSON_AddStringToObject(env, "driver", o->driver ? o->driver : "");
    cJSON_AddStringToObject(env, "features", o->features ? o->features : "");

    cJSON *cn = cJSON_AddObjectToObject(j, "counts");
    cJSON_AddNumberToObject(cn, "records", r->n_records);
    cJSON_AddNumberToObject(cn, "rejected", r->n_rejected);
    cJSON_AddNumberToObject(cn, "traceable", r->n_cases);
    cJSON_AddNumberToObject(cn, "examined", r->examined);
    cJSON_AddNumberToObject(cn, "selected", r->n_selected);
    cJSON_AddNumberToObject(cn, "discovery", nd);
    cJSON_AddNumberToObject(cn, "validation", nv);
    cJSON_AddItemToObject(j, "rejected", cJSON_Duplicate(r->rejected, true));
    cJSON *sp = cJSON_AddObjectToObject(j, "split");
    cJSON_AddItemToObject(sp, "discovery", ids_json(r, idx, nd));
    cJSON_AddItemToObject(sp, "validation", ids_json(r, vidx, nv));

    cJSON *ls = cJSON_AddObjectToObject(j, "layer_sweep");
    cJSON_AddItemToObject(ls, "discovery", sweep_json(r, idx, nd, 0));
    cJSON_AddItemToObject(ls, "validation", sweep_json(r, vidx, nv, 1));
    cJSON *ly = cJSON_AddObjectToObject(j, "layer");
    cJSON_AddNumberToObject(ly, "selected", r->layer);
    cJSON_AddBoolToObject(ly, "forced", r->layer_forced);
    int32_t ru = argmax_layer(r, idx, nd, r->layer), tv = argmax_layer(r, vidx, nv, -1);
    cJSON_AddItemToObject(ly, "runner_up", ru >= 0 ? cJSON_CreateNumber(ru) : cJSON_CreateNull());
    cJSON_AddItemToObject(ly, "runner_up_rescue_discovery",
                          trace_num(ru >= 0 ? layer_mean(r, idx, nd, (uint32_t)ru) : NAN));
    cJSON_AddItemToObject(ly, "top_layer_validation",
                          tv >= 0 ? cJSON_CreateNumber(tv) : cJSON_CreateNull());
    cJSON_AddItemToObject(ly, "top_layer_validation_rescue",
                          trace_num(tv >= 0 ? layer_mean(r, vidx, nv, (uint32_t)tv) : NAN));

    if (r->k && r->expert >= 0) {
        uint32_t nc = 0;
        expert_rank *rk = rank_experts(r, &nc);
        cJSON *ex = cJSON_AddObjectToObject(j, "expert");
        char name[32];
        snprintf(name, sizeof name, "L%dE%03d", r->layer, r->expert);
        cJSON_AddStringToObject(ex, "selected", name);
        cJSON_AddNumberToObject(ex, "layer", r->layer);
        cJSON_AddNumberToObject(ex, "expert", r->expert);
        cJSON_AddBoolToObject(ex, "forced", r->expert_forced);
        cJSON_AddNumberToObject(ex, "candidates", nc);
        cJSON_AddBoolToObject(ex, "recurrence_fallback", !r->expert_forced && !nc);
        cJSON_AddItemToObject(ex, "discovery", expert_split(r, idx, nd, (uint32_t)r->expert, 0));
        cJSON_AddItemToObject(ex, "validation", expert_split(r, vidx, nv, (uint32_t)r->expert, 1));
        cJSON *ra = cJSON_AddArrayToObject(ex, "ranking");
        for (uint32_t i = 0; rk && i < r->hp->n_expert && i < 16; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "expert", rk[i].expert);
            cJSON_AddNumberToObject(e, "active_discovery", rk[i].active);
            cJSON_AddBoolToObject(e, "candidate", rk[i].candidate);
            cJSON_AddItemToObject(e, "mean_rescue_discovery", trace_num(rk[i].mean));
            cJSON_AddItemToArray(ra, e);
        }
        free(rk);
        for (uint32_t f = 1; f < o->n_forced_experts; f++) {
            cJSON *ob = cJSON_GetObjectItem(ex, "also");
            if (!ob) ob = cJSON_AddArrayToObject(ex, "also");
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "expert", o->forced_experts[f]);
            cJSON_AddItemToObject(e, "validation",
                                  expert_split(r, vidx, nv, o->forced_experts[f], 1));
            cJSON_AddItemToArray(ob, e);
        }
    }
    if (o->rome_cases) {
        cJSON *ro = cJSON_AddObjectToObject(j, "rome");
        static const char *const kinds[XT_ROME_KINDS] = {"residual", "attention", "moe"};
        cJSON_AddNumberToObject(ro, "window", o->rome_window);
        cJSON_AddStringToObject(ro, "metric", trace_rome_metric_name(o->rome_metric));
        uint32_t nr = o->rome_cases < r->n_selected ? o->rome_cases : r->n_selected;
        cJSON_AddNumberToObject(ro, "cases", nr);
        /* averaged over cases on ROME's six token groups: first / middle / last subject token,
         * first token after, further tokens, last token */
        static const char *const groups[6] = {"subject_first", "subject_middle", "subject_last",
                                              "after_first", "after_further", "last"};
        cJSON *g = cJSON_AddArrayToObject(ro, "groups");
        for (int q = 0; q < 6; q++) cJSON_AddItemToArray(g, cJSON_CreateString(groups[q]));
        for (int kd = 0; kd < XT_ROME_KINDS; kd++) {
            double *sum = trace_calloc(6 * (size_t)r->L, sizeof *sum);
            uint32_t *cnt = trace_calloc(6 * (size_t)r->L, sizeof *cnt);
            for (uint32_t i = 0; i < nr && sum && cnt; i++) {
                const trace_case *c = &r->cases[r->selected[i]];
                if (!c->rome) continue;
                for (uint32_t l = 0; l < r->L; l++)
                    for (uint32_t p = 0; p < c->n_tokens; p++) {
                        int gi;
                        if (p == c->n_tokens - 1) gi = 5;
                        else if (p == c->subj_begin) gi = 0;
                        else if (p + 1 == c->subj_end) gi = 2;
                        else if (p > c->subj_begin && p < c->subj_end) gi = 1;
                        else if (p == c->subj_end) gi = 3;
                        else if (p > c->subj_end) gi = 4;
                        else continue;
                        sum[gi * r->L + l] +=
                            c->rome[((size_t)kd * r->L + l) * c->n_tokens + p];
                        cnt[gi * r->L + l]++;
                    }
            }
            cJSON *grid = cJSON_AddArrayToObject(ro, kinds[kd]);
            for (int gi = 0; gi < 6 && sum && cnt; gi++) {
                cJSON *row = cJSON_CreateArray();
                for (uint32_t l = 0; l < r->L; l++)
                    cJSON_AddItemToArray(row, trace_num(cnt[gi * r->L + l]
                                                            ? sum[gi * r->L + l] / cnt[gi * r->L + l]
                                                            : NAN));
                cJSON_AddItemToArray(grid, row);
            }
            free(sum);
            free(cnt);
        }
    }
    free(idx);
    return j;
}

static double num_at(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *x = j;
    for (char *t = strtok(buf, "."); t && x; t = strtok(NULL, ".")) x = cJSON_GetObjectItem(x, t);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static void print_ci(FILE *f, const char *label, const cJSON *j, const char *path)
{
    char b[256];
    snprintf(b, sizeof b, "%s.mean", path);
    double m = num_at(j, b);
    snprintf(b, sizeof b, "%s.lo", path);
    double lo = num_at(j, b);
    snprintf(b, sizeof b, "%s.hi", path);
    double hi = num_at(j, b);
    snprintf(b, sizeof b, "%s.p", path);
    double p = num_at(j, b);
    fprintf(f, "  %-28s %8.3f  [%.3f, %.3f]", label, m, lo, hi);
    if (isfinite(p)) fprintf(f, "  p=%.4f", p);
    fputc('\n', f);
}

void trace_print_summary(const trace_run *r, const cJSON *s, FILE *f)
{
    fprintf(f, "\nexpertrace trace: %s (%s, %u layers", xt_model_path(r->model),
            xt_arch_name(r->hp->arch), r->L);
    if (r->k) fprintf(f, ", %u experts top-%u", r->hp->n_expert, r->k);
    fprintf(f, ")\n  facts %s: %u records, %u traceable, %u rejected; %u examined, %u selected "
               "(%g discovery / %g validation)\n",
            r->o->facts_path, r->n_records, r->n_cases, r->n_rejected, r->examined,
            r->n_selected, num_at(s, "counts.discovery"), num_at(s, "counts.validation"));
    fprintf(f, "  noise: sigma %.4g (%g x std %.4g), %u draw(s), bos %s\n", r->sigma,
            r->o->noise_scale, r->embd_std, r->draws, r->bos ? "on" : "off");
    fprintf(f, "\nlayer sweep, mean rescue (discovery | validation):\n");
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "layer_sweep"), "discovery");
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "layer_sweep"), "validation");
    for (uint32_t l = 0; l < r->L; l++) {
        fprintf(f, "  L%-3u %8.3f | %8.3f%s\n", l, num_at(cJSON_GetArrayItem(d, (int)l), "mean"),
                num_at(cJSON_GetArrayItem(v, (int)l), "mean"),
                (int32_t)l == r->layer ? "   <- selected" : "");
    }
    const cJSON *ex = cJSON_GetObjectItem(s, "expert");
    if (ex) {
        const cJSON *val = cJSON_GetObjectItem(ex, "validation");
        fprintf(f, "\nexpert %s%s (clean-routed in %s discovery, %s validation cases)\n",
                cJSON_GetStringValue(cJSON_GetObjectItem(ex, "selected")),
                r->expert_forced ? " (forced)" : "",
                cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(ex, "discovery"),
                                                         "clean_active")),
                cJSON_GetStringValue(cJSON_GetObjectItem(val, "clean_active")));
        fprintf(f, "validation (mean, 95%% bootstrap CI, sign-flip p):\n");
        print_ci(f, "layer patch rescue", val, "layer_rescue");
        print_ci(f, "expert rescue", val, "rescue");
        print_ci(f, "specificity", val, "specificity");
        print_ci(f, "control: active-random", val, "controls.active_random");
        print_ci(f, "control: gate-weight-matched", val, "controls.gate_weight_matched");
        print_ci(f, "control: equal-norm", val, "controls.equal_norm");
        print_ci(f, "coalition: clean top-k", val, "coalitions.top_k");
        print_ci(f, "coalition: union", val, "coalitions.union");
        fprintf(f, "  %-28s %8.3f  [%.3f, %.3f]\n", "expert / layer",
                num_at(val, "expert_over_layer.ratio"), num_at(val, "expert_over_layer.lo"),
                num_at(val, "expert_over_layer.hi"));
        fprintf(f, "  %-28s %8.2f  (first in %s)\n", "rank among routed experts",
                num_at(val, "rank.mean"),
                cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(val, "rank"), "first")));
    }
    fprintf(f, "\nresults: %s/cases.jsonl, %s/summary.json\n", r->o->out_dir, r->o->out_dir);
}
