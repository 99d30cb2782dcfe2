/* The tracer's files: one JSON line per case (sweep.jsonl after pass 1, cases.jsonl with
 * everything after pass 2), appended and fsynced, so that a rerun with the same arguments reads
 * them back and runs only what is missing; settings.json guards against resuming with other
 * settings; summary.json. Numbers are written by cJSON with up to 17 significant digits, so every
 * float and double read back is the value written. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_internal.h"
#include "util.h"

static cJSON *num_array_f(const float *v, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, trace_num(v[i]));
    return a;
}

static cJSON *num_array_d(const double *v, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(a, trace_num(v[i]));
    return a;
}

static cJSON *routing_json(const uint32_t *ids, const float *w, uint32_t L, uint32_t k)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t l = 0; l < L; l++) {
        cJSON *row = cJSON_CreateArray();
        for (uint32_t s = 0; s < k; s++) {
            cJSON *e = cJSON_CreateArray();
            cJSON_AddItemToArray(e, cJSON_CreateNumber(ids[l * k + s]));
            cJSON_AddItemToArray(e, trace_num(w[l * k + s]));
            cJSON_AddItemToArray(row, e);
        }
        cJSON_AddItemToArray(a, row);
    }
    return a;
}

cJSON *trace_case_sweep_json(const trace_run *r, const trace_case *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "case_id", (double)c->case_id);
    cJSON_AddNumberToObject(j, "record", c->record);
    cJSON_AddStringToObject(j, "split", c->split == XT_SPLIT_DISCOVERY    ? "discovery"
                                        : c->split == XT_SPLIT_VALIDATION ? "validation"
                                                                          : "none");
    cJSON_AddStringToObject(j, "prompt", c->prompt);
    cJSON_AddStringToObject(j, "subject", c->subject);
    cJSON_AddStringToObject(j, "relation", c->relation);
    cJSON_AddStringToObject(j, "target_true", c->target_true);
    cJSON_AddStringToObject(j, "target_new", c->target_foil);
    cJSON *t = cJSON_AddArrayToObject(j, "tokens");
    for (uint32_t i = 0; i < c->n_tokens; i++) cJSON_AddItemToArray(t, cJSON_CreateNumber(c->tokens[i]));
    cJSON *sp = cJSON_AddArrayToObject(j, "subject_span");
    cJSON_AddItemToArray(sp, cJSON_CreateNumber(c->subj_begin));
    cJSON_AddItemToArray(sp, cJSON_CreateNumber(c->subj_end));
    cJSON_AddNumberToObject(j, "true_id", c->true_id);
    cJSON_AddNumberToObject(j, "foil_id", c->foil_id);
    cJSON_AddItemToObject(j, "delta_clean", trace_num(c->delta_clean));
    cJSON_AddItemToObject(j, "delta_noised", num_array_f(c->delta_noised, r->draws));
    cJSON_AddItemToObject(j, "delta_noised_mean", trace_num(c->delta_noised_mean));
    cJSON_AddBoolToObject(j, "passed", c->passed);
    if (c->layer_rescue) cJSON_AddItemToObject(j, "layer_rescue", num_array_d(c->layer_rescue, r->L));
    if (r->k && c->route_clean) {
        cJSON_AddItemToObject(j, "routing_clean", routing_json(c->route_clean, c->route_clean_w, r->L, r->k));
        cJSON_AddItemToObject(j, "routing_noised",
                              routing_json(c->route_noised, c->route_noised_w, r->L, r->k));
    }
    return j;
}

cJSON *trace_case_json(const trace_run *r, const trace_case *c)
{
    cJSON *j = trace_case_sweep_json(r, c);
    if (!j || !c->expert_done) return j;
    cJSON_AddNumberToObject(j, "expert_layer", c->expert_layer);
    cJSON *ex = cJSON_AddArrayToObject(j, "experts");
    for (uint32_t s = 0; s < r->k; s++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "expert", c->experts[s]);
        cJSON_AddItemToObject(e, "weight", trace_num(c->expert_weight[s]));
        cJSON_AddItemToObject(e, "rescue", trace_num(c->expert_rescue[s]));
        cJSON_AddItemToObject(e, "equal_norm_rescue", trace_num(c->equal_norm_rescue[s]));
        cJSON_AddItemToObject(e, "delta_norm", trace_num(c->delta_norm[s]));
        cJSON_AddItemToArray(ex, e);
    }
    cJSON *no = cJSON_AddArrayToObject(j, "noised_only_experts");
    for (uint32_t i = 0; i < c->n_noised_only; i++)
        cJSON_AddItemToArray(no, cJSON_CreateNumber(c->noised_only[i]));
    cJSON_AddItemToObject(j, "layer_patch_rescue", trace_num(c->layer_patch_rescue));
    cJSON_AddItemToObject(j, "coalition_top", trace_num(c->coalition_top));
    cJSON_AddItemToObject(j, "coalition_union", trace_num(c->coalition_union));
    return j;
}

xt_status trace_append(FILE *f, const char *path, const cJSON *line, xt_error *err)
{
    char *s = cJSON_PrintUnformatted(line);
    if (!s) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
    bool ok = fputs(s, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    free(s);
    if (!ok) return xt_error_set(err, XT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return XT_OK;
}

const char *trace_rome_metric_name(xt_rome_metric m)
{
    return m == XT_ROME_METRIC_PROB ? "p_true" : "delta";
}

xt_status trace_write_rome(const trace_run *r, const uint32_t *idx, uint32_t n, xt_error *err)
{
    static const char *const kinds[XT_ROME_KINDS] = {"residual", "attention", "moe"};
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/rome.jsonl", r->o->out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return xt_error_set(err, XT_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    xt_status s = XT_OK;
    for (uint32_t i = 0; i < n && !s; i++) {
        const trace_case *c = &r->cases[idx[i]];
        if (!c->rome) continue;
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "case_id", (double)c->case_id);
        cJSON *t = cJSON_AddArrayToObject(j, "tokens");
        for (uint32_t q = 0; q < c->n_tokens; q++)
            cJSON_AddItemToArray(t, cJSON_CreateNumber(c->tokens[q]));
        cJSON *sp = cJSON_AddArrayToObject(j, "subject_span");
        cJSON_AddItemToArray(sp, cJSON_CreateNumber(c->subj_begin));
        cJSON_AddItemToArray(sp, cJSON_CreateNumber(c->subj_end));
        cJSON_AddStringToObject(j, "metric", trace_rome_metric_name(r->o->rome_metric));
        cJSON_AddItemToObject(j, "clean", trace_num(c->rome_base[0]));
        cJSON_AddItemToObject(j, "noised", trace_num(c->rome_base[1]));
        cJSON_AddNumberToObject(j, "window", r->o->rome_window);
        for (int kd = 0; kd < XT_ROME_KINDS; kd++) {
            cJSON *g = cJSON_AddArrayToObject(j, kinds[kd]);
            for (uint32_t l = 0; l < r->L; l++)
                cJSON_AddItemToArray(
                    g, num_array_d(c->rome + ((size_t)kd * r->L + l) * c->n_tokens, c->n_tokens));
        }
        char *line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!line) s = xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
        else if (fputs(line, f) < 0 || fputc('\n', f) == EOF)
            s = xt_error_set(err, XT_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
        free(line);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!s && (!ok || rename(tmp, path)))
        s = xt_error_set(err, XT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return s;
}

xt_status trace_write_json(const char *path, const cJSON *j, xt_error *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char *s = cJSON_Print(j);
    if (!s) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    if (f) ok = (fclose(f) == 0) && ok;
    free(s);
    if (!ok || rename(tmp, path))
        return xt_error_set(err, XT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return XT_OK;
}

cJSON *trace_read_json(const char *path, xt_error *err)
{
    size_t len;
    char *b;
    if (xt_read_file(path, false, &b, &len, err)) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(b, len, &end, false);
    if (!j)
        xt_error_set(err, XT_ERR_FORMAT, "%s: not valid JSON (at byte %zu)", path,
                     end ? (size_t)(end - b) : 0);
    free(b);
    return j;
}

/* ---- reading lines back --------------------------------------------------------------------- */

/* A number field (null: NaN, as trace_num writes non-finite values); false when absent or not a
 * number. */
static bool get_d(const cJSON *j, const char *key, double *out)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsNull(x)) {
        *out = NAN;
        return true;
    }
    if (!cJSON_IsNumber(x)) return false;
    *out = x->valuedouble;
    return true;
}

static bool get_f(const cJSON *j, const char *key, float *out)
{
    double d;
    if (!get_d(j, key, &d)) return false;
    *out = (float)d;
    return true;
}

static double *d_array(const cJSON *a, uint32_t n)
{
    if (!cJSON_IsArray(a) || (uint32_t)cJSON_GetArraySize(a) != n) return NULL;
    double *v = trace_calloc(n, sizeof *v);
    uint32_t i = 0;
    for (const cJSON *x = a ? a->child : NULL; x && v; x = x->next, i++)
        v[i] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    return v;
}

static bool routing_read(const cJSON *a, uint32_t L, uint32_t k, uint32_t **ids, float **w)
{
    if (!cJSON_IsArray(a) || (uint32_t)cJSON_GetArraySize(a) != L) return false;
    free(*ids);
    free(*w);
    *ids = trace_calloc((size_t)L * k, sizeof **ids);
    *w = trace_calloc((size_t)L * k, sizeof **w);
    if (!*ids || !*w) return false;
    uint32_t l = 0;
    for (const cJSON *row = a->child; row; row = row->next, l++) {
        if (!cJSON_IsArray(row) || (uint32_t)cJSON_GetArraySize(row) != k) return false;
        uint32_t s = 0;
        for (const cJSON *e = row->child; e; e = e->next, s++) {
            const cJSON *id = cJSON_GetArrayItem(e, 0), *wt = cJSON_GetArrayItem(e, 1);
            if (!cJSON_IsNumber(id)) return false;
            (*ids)[l * k + s] = (uint32_t)id->valuedouble;
            (*w)[l * k + s] = cJSON_IsNumber(wt) ? (float)wt->valuedouble : NAN;
        }
    }
    return true;
}

/* Reads one line into its case; false when the line does not belong to this run. */
static bool read_case(trace_run *r, const cJSON *j, bool full, char *why, size_t why_len)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "case_id");
    if (!cJSON_IsNumber(id)) {
        snprintf(why, why_len, "a line without case_id");
        return false;
    }
    trace_case *c = NULL;
    for (uint32_t i = 0; i < r->n_cases && !c; i++)
        if (r->cases[i].case_id == (int64_t)id->valuedouble) c = &r->cases[i];
    if (!c) {
        snprintf(why, why_len, "case %.0f is not a traceable case of the facts file", id->valuedouble);
        return false;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tokens");
    bool same = cJSON_IsArray(t) && (uint32_t)cJSON_GetArraySize(t) == c->n_tokens;
    uint32_t i = 0;
    for (const cJSON *x = same ? t->child : NULL; x; x = x->next, i++)
        same = same && cJSON_IsNumber(x) && (int32_t)x->valuedouble == c->tokens[i];
    if (!same) {
        snprintf(why, why_len, "case %lld: its tokens differ from this run's", (long long)c->case_id);
        return false;
    }
    const cJSON *dn = cJSON_GetObjectItemCaseSensitive(j, "delta_noised");
    if (!get_f(j, "delta_clean", &c->delta_clean) || !cJSON_IsArray(dn) ||
        (uint32_t)cJSON_GetArraySize(dn) != r->draws) {
        snprintf(why, why_len, "case %lld: delta_clean / delta_noised missing or for another "
                               "number of draws", (long long)c->case_id);
        return false;
    }
    free(c->delta_noised);
    c->delta_noised = trace_calloc(r->draws, sizeof *c->delta_noised);
    if (!c->delta_noised) return false;
    double sum = 0;
    i = 0;
    for (const cJSON *x = dn->child; x; x = x->next, i++)
        sum += (c->delta_noised[i] = cJSON_IsNumber(x) ? (float)x->valuedouble : NAN);
    c->delta_noised_mean = sum / r->draws;
    c->passed = trace_filter_pass(r, c);
    free(c->layer_rescue);
    c->layer_rescue = NULL;
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(j, "layer_rescue");
    if (lr) c->layer_rescue = d_array(lr, r->L);
    if (c->passed && !c->layer_rescue) {
        snprintf(why, why_len, "case %lld: passes the filter but has no layer_rescue of %u layers",
                 (long long)c->case_id, r->L);
        return false;
    }
    if (r->k && (!routing_read(cJSON_GetObjectItemCaseSensitive(j, "routing_clean"), r->L, r->k,
                               &c->route_clean, &c->route_clean_w) ||
                 !routing_read(cJSON_GetObjectItemCaseSensitive(j, "routing_noised"), r->L, r->k,
                               &c->route_noised, &c->route_noised_w))) {
        snprintf(why, why_len, "case %lld: routing missing or malformed", (long long)c->case_id);
        return false;
    }
    c->swept = true;
    if (!full || !r->k) return true;
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(j, "experts");
    double el;
    if (!get_d(j, "expert_layer", &el) || !cJSON_IsArray(ex) ||
        (uint32_t)cJSON_GetArraySize(ex) != r->k) {
        snprintf(why, why_len, "case %lld: expert_layer / experts missing", (long long)c->case_id);
        return false;
    }
    free(c->experts);
    free(c->expert_weight);
    free(c->expert_rescue);
    free(c->equal_norm_rescue);
    free(c->delta_norm);
    c->experts = trace_calloc(r->k, sizeof *c->experts);
    c->expert_weight = trace_calloc(r->k, sizeof *c->expert_weight);
    c->expert_rescue = trace_calloc(r->k, sizeof *c->expert_rescue);
    c->equal_norm_rescue = trace_calloc(r->k, sizeof *c->equal_norm_rescue);
    c->delta_norm = trace_calloc(r->k, sizeof *c->delta_norm);
    if (!c->experts || !c->expert_weight || !c->expert_rescue || !c->equal_norm_rescue ||
        !c->delta_norm)
        return false;
    i = 0;
    for (const cJSON *e = ex->child; e; e = e->next, i++) {
        double id_e;
        if (!get_d(e, "expert", &id_e) || !get_f(e, "weight", &c->expert_weight[i]) ||
            !get_d(e, "rescue", &c->expert_rescue[i]) ||
            !get_d(e, "equal_norm_rescue", &c->equal_norm_rescue[i]) ||
            !get_d(e, "delta_norm", &c->delta_norm[i])) {
            snprintf(why, why_len, "case %lld: experts[%u] malformed", (long long)c->case_id, i);
            return false;
        }
        c->experts[i] = (uint32_t)id_e;
    }
    const cJSON *no = cJSON_GetObjectItemCaseSensitive(j, "noised_only_experts");
    c->n_noised_only = 0;
    for (const cJSON *x = cJSON_IsArray(no) ? no->child : NULL; x && c->n_noised_only < 64; x = x->next)
        c->noised_only[c->n_noised_only++] = (uint32_t)x->valuedouble;
    if (!get_d(j, "layer_patch_rescue", &c->layer_patch_rescue) ||
        !get_d(j, "coalition_top", &c->coalition_top) ||
        !get_d(j, "coalition_union", &c->coalition_union)) {
        snprintf(why, why_len, "case %lld: coalitions missing", (long long)c->case_id);
        return false;
    }
    c->expert_layer = (uint32_t)el;
    c->expert_done = true;
    return true;
}

/* Reads path's lines; a last line without its newline (a write cut short) is dropped by
 * truncating the file to the last complete line. */
static xt_status read_lines(trace_run *r, const char *path, bool full, xt_error *err)
{
    size_t len;
    char *b;
    xt_status rs = xt_read_file(path, true, &b, &len, err);
    if (rs || !b) return rs;
    size_t good = 0;
    xt_status s = XT_OK;
    uint32_t line = 1;
    for (size_t at = 0; at < len; line++) {
        char *nl = memchr(b + at, '\n', len - at);
        if (!nl) break; /* partial last line */
        *nl = 0;
        cJSON *j = cJSON_Parse(b + at);
        char why[256] = "not JSON";
        if (!j || !read_case(r, j, full, why, sizeof why)) {
            cJSON_Delete(j);
            s = xt_error_set(err, XT_ERR_FORMAT,
                             "%s:%u: %s — these results do not belong to this run (another "
                             "model, facts file or settings?); use another --out directory",
                             path, line, why);
            break;
        }
        cJSON_Delete(j);
        at = (size_t)(nl - b) + 1;
        good = at;
    }
    free(b);
    if (!s && good < len && truncate(path, (off_t)good))
        s = xt_error_set(err, XT_ERR_IO, "%s: cannot drop its incomplete last line: %s", path,
                         strerror(errno));
    return s;
}

/* The settings a resumed run must share with the files it finds. */
static cJSON *settings_json(const trace_run *r)
{
    const xt_trace_opts *o = r->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", xt_model_path(r->model));
    cJSON_AddStringToObject(j, "facts", o->facts_path);
    cJSON_AddStringToObject(j, "filter", o->filter == XT_FILTER_STRICT    ? "strict"
                                         : o->filter == XT_FILTER_RELAXED ? "relaxed"
                                                                          : "none");
    cJSON_AddNumberToObject(j, "shuffle_seed", o->shuffle_seed);
    cJSON_AddNumberToObject(j, "noise_seed", o->noise_seed);
    cJSON_AddNumberToObject(j, "noise_scale", o->noise_scale);
    cJSON_AddStringToObject(j, "noise_std",
                            o->noise_std == XT_NOISE_STD_SUBJECT ? "subject" : "embedding");
    cJSON_AddNumberToObject(j, "draws", r->draws);
    cJSON_AddBoolToObject(j, "bos", r->bos);
    cJSON_AddItemToObject(j, "sigma", trace_num(r->sigma));
    return j;
}

xt_status trace_resume(trace_run *r, xt_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/settings.json", r->o->out_dir);
    cJSON *built = settings_json(r);
    char *txt = cJSON_PrintUnformatted(built);
    cJSON *now = txt ? cJSON_Parse(txt) : NULL; /* compared as read back: raw numbers parsed */
    free(txt);
    cJSON_Delete(built);
    if (!now) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
    char *prev;
    size_t prev_len;
    xt_status s = xt_read_file(path, true, &prev, &prev_len, err);
    cJSON *old = prev ? cJSON_ParseWithLength(prev, prev_len) : NULL;
    if (!s && prev && !old)
        s = xt_error_set(err, XT_ERR_FORMAT, "%s: not valid JSON", path);
    free(prev);
    if (s) {
        cJSON_Delete(now);
        return s;
    }
    if (old) {
        for (cJSON *x = now->child; x && !s; x = x->next) {
            cJSON *y = cJSON_GetObjectItemCaseSensitive(old, x->string);
            if (!y || !cJSON_Compare(x, y, true)) {
                char *a = cJSON_PrintUnformatted(x), *b = y ? cJSON_PrintUnformatted(y) : NULL;
                s = xt_error_set(err, XT_ERR_USAGE,
                                 "%s: the results there were made with %s = %s, this run has %s; "
                                 "use another --out directory to start afresh",
                                 r->o->out_dir, x->string, b ? b : "(absent)", a ? a : "?");
                free(a);
                free(b);
            }
        }
        cJSON_Delete(old);
    } else {
        s = trace_write_json(path, now, err);
    }
    cJSON_Delete(now);
    if (s) return s;
    snprintf(path, sizeof path, "%s/sweep.jsonl", r->o->out_dir);
    if ((s = read_lines(r, path, false, err))) return s;
    snprintf(path, sizeof path, "%s/cases.jsonl", r->o->out_dir);
    return read_lines(r, path, true, err);
}
