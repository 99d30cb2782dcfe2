/* Facts to cases (DESIGN.md §4): the prompt with its subject, the tokens, the subject's token
 * span (ROME's rule: the tokens covering the subject's bytes), the true and foil tokens (the
 * object string's own token, else its leading-space token), and the noise σ. Records that cannot
 * become a case are counted and listed with the reason, never fatal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"
#include "facts.h"
#include "trace_internal.h"

void *trace_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

static char *dup_str(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static void reject(trace_run *r, const xt_fact *f, const char *reason)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "record", f->index);
    cJSON_AddNumberToObject(j, "case_id", (double)f->case_id);
    cJSON_AddStringToObject(j, "reason", reason);
    cJSON_AddItemToArray(r->rejected, j);
    r->n_rejected++;
}

/* Builds one case from a fact; false (with the reason recorded) when it cannot be traced. */
static bool make_case(trace_run *r, const xt_fact *f, trace_case *c, uint32_t max_tokens)
{
    char reason[XT_ERROR_MSG_BYTES + 128];
    size_t pre = 0, sl = strlen(f->subject);
    char *text = xt_fact_prompt(f, &pre);
    xt_tokens ids = {0};
    bool ok = false;
    if (!text) return false;

    size_t b = 0, e = 0;
    xt_error e2 = {0};
    if (xt_tokenize(r->tok, text, strlen(text), &(xt_encode_opts){.bos = XT_BOS_OFF}, &ids, &e2)) {
        snprintf(reason, sizeof reason, "prompt: %s", e2.msg);
        goto done;
    }
    if (xt_tokenizer_token_range(r->tok, ids.ids, ids.n, pre, pre + sl, &b, &e, &e2)) {
        snprintf(reason, sizeof reason, "subject not found in the tokenized prompt: %s", e2.msg);
        goto done;
    }
    int32_t tid, fid;
    xt_answer_form form;
    if (xt_tokenizer_resolve_answer(r->tok, f->target_true, strlen(f->target_true), &tid, &form,
                                    &e2)) {
        snprintf(reason, sizeof reason, "target_true is not a single token: %s", e2.msg);
        goto done;
    }
    if (xt_tokenizer_resolve_answer(r->tok, f->target_foil, strlen(f->target_foil), &fid, &form,
                                    &e2)) {
        snprintf(reason, sizeof reason, "target_new is not a single token: %s", e2.msg);
        goto done;
    }
    if (tid == fid) {
        snprintf(reason, sizeof reason, "target_true and target_new are the same token (%d)", tid);
        goto done;
    }
    uint32_t n = (uint32_t)ids.n + (r->bos ? 1u : 0u);
    if (n > max_tokens) {
        snprintf(reason, sizeof reason, "prompt has %u tokens, more than --batch-tokens %u", n,
                 max_tokens);
        goto done;
    }
    c->tokens = malloc(n * sizeof *c->tokens);
    if (!c->tokens) goto done;
    uint32_t off = r->bos ? 1u : 0u;
    if (r->bos) c->tokens[0] = xt_tokenizer_bos(r->tok);
    memcpy(c->tokens + off, ids.ids, ids.n * sizeof *c->tokens);
    c->n_tokens = n;
    c->subj_begin = (uint32_t)b + off;
    c->subj_end = (uint32_t)e + off;
    c->true_id = tid;
    c->foil_id = fid;
    c->case_id = f->case_id;
    c->record = f->index;
    c->prompt = text;
    text = NULL;
    c->subject = dup_str(f->subject);
    c->target_true = dup_str(f->target_true);
    c->target_foil = dup_str(f->target_foil);
    c->relation = dup_str(f->relation_id ? f->relation_id : "");
    c->split = XT_SPLIT_NONE;
    ok = c->subject && c->target_true && c->target_foil && c->relation;
    if (!ok) snprintf(reason, sizeof reason, "out of host memory");
done:
    if (!ok) reject(r, f, reason);
    free(text);
    xt_tokens_free(&ids);
    return ok;
}

xt_status trace_cases_load(trace_run *r, xt_error *err)
{
    xt_facts facts = {0};
    xt_status s = xt_facts_load(r->o->facts_path, &facts, err);
    if (s) return s;
    if ((s = xt_facts_assign_foils(&facts, err))) {
        xt_facts_free(&facts);
        return s;
    }
    r->rejected = cJSON_CreateArray();
    r->n_records = facts.n_records;
    for (uint32_t i = 0; i < facts.n_skipped; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "record", facts.skipped[i].index);
        cJSON_AddStringToObject(j, "reason", facts.skipped[i].reason);
        cJSON_AddItemToArray(r->rejected, j);
        r->n_rejected++;
    }
    r->cases = trace_calloc(facts.n, sizeof *r->cases);
    if (!r->cases) {
        xt_facts_free(&facts);
        return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory for the cases");
    }
    uint32_t max_tokens = r->o->batch_tokens / (1 + r->draws);
    for (uint32_t i = 0; i < facts.n; i++) {
        const xt_fact *f = &facts.v[i];
        if (!f->target_foil) {
            reject(r, f, "no foil: the record has no target_new (and none could be assigned)");
            continue;
        }
        if (make_case(r, f, &r->cases[r->n_cases], max_tokens)) r->n_cases++;
    }
    xt_facts_free(&facts);
    if (!r->n_cases)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%s: none of its %u records gives a traceable case (%u rejected; the "
                            "first reason: %s)",
                            r->o->facts_path, r->n_records, r->n_rejected,
                            cJSON_GetArraySize(r->rejected)
                                ? cJSON_GetObjectItem(cJSON_GetArrayItem(r->rejected, 0),
                                                      "reason")
                                      ->valuestring
                                : "?");
    return XT_OK;
}

void trace_cases_free(trace_run *r)
{
    for (uint32_t i = 0; i < r->n_cases; i++) {
        trace_case *c = &r->cases[i];
        free(c->prompt);
        free(c->subject);
        free(c->target_true);
        free(c->target_foil);
        free(c->relation);
        free(c->tokens);
        free(c->delta_noised);
        free(c->layer_rescue);
        free(c->route_clean);
        free(c->route_clean_w);
        free(c->route_noised);
        free(c->route_noised_w);
        free(c->experts);
        free(c->expert_weight);
        free(c->expert_rescue);
        free(c->equal_norm_rescue);
        free(c->delta_norm);
        free(c->rome);
    }
    free(r->cases);
    r->cases = NULL;
    r->n_cases = 0;
}

/* Population std (in double) of the embedding rows of ids[0..n): the whole matrix when ids is
 * NULL (n = n_vocab). */
static xt_status embd_std(const trace_run *r, const int32_t *ids, uint64_t n, double *out,
                          xt_error *err)
{
    const xt_wtensor *w = xt_model_token_embd(r->model);
    uint64_t row_bytes, total;
    xt_status s = xt_type_nbytes(w->type, (uint64_t)r->D, &row_bytes, err);
    if (s) return s;
    const uint8_t *base = xt_wtensor_slab(w, 0, &total);
    float *row = malloc(r->D * sizeof *row);
    if (!row) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
    double sum = 0, sum2 = 0;
    for (uint64_t i = 0; i < n && !s; i++) {
        uint64_t id = ids ? (uint64_t)ids[i] : i;
        s = xt_dequantize(w->type, base + id * row_bytes, row_bytes, row, r->D, err);
        for (uint32_t d = 0; d < r->D && !s; d++) {
            sum += row[d];
            sum2 += (double)row[d] * row[d];
        }
    }
    free(row);
    if (s) return s;
    double m = (double)n * r->D, mean = sum / m, var = sum2 / m - mean * mean;
    *out = sqrt(var > 0 ? var : 0);
    return XT_OK;
}

xt_status trace_noise_sigma(trace_run *r, xt_error *err)
{
    if (r->o->noise_std == XT_NOISE_STD_EMBEDDING)
        return embd_std(r, NULL, r->hp->n_vocab, &r->embd_std, err) ||
                       ((r->sigma = r->o->noise_scale * r->embd_std), false)
                   ? err->status
                   : XT_OK;
    uint64_t n = 0;
    for (uint32_t i = 0; i < r->n_cases; i++) n += r->cases[i].subj_end - r->cases[i].subj_begin;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
    n = 0;
    for (uint32_t i = 0; i < r->n_cases; i++)
        for (uint32_t p = r->cases[i].subj_begin; p < r->cases[i].subj_end; p++)
            ids[n++] = r->cases[i].tokens[p];
    xt_status s = embd_std(r, ids, n, &r->embd_std, err);
    free(ids);
    r->sigma = r->o->noise_scale * r->embd_std;
    return s;
}

bool trace_filter_pass(const trace_run *r, const trace_case *c)
{
    double drop = (double)c->delta_clean - c->delta_noised_mean;
    switch (r->o->filter) {
    case XT_FILTER_STRICT: return c->delta_clean >= 1.0f && drop >= 0.5;
    case XT_FILTER_RELAXED: return c->delta_clean >= 0.5f && drop >= 0.25;
    default: return true;
    }
}
