/* The controller's top level: options, the order cases are examined in, batches, the passes and
 * the files (trace.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "noise.h"
#include "util.h"
#include "trace_internal.h"

void xt_trace_opts_init(xt_trace_opts *o)
{
    memset(o, 0, sizeof *o);
    o->out_dir = "expertrace-results";
    o->n_cases = 256;
    o->noise_scale = 3.0;
    o->draws = 1;
    o->layer = -1;
    o->bootstrap = 5000;
    o->flips = 10000;
    o->batch_tokens = 512;
    o->rome_window = 10;
}

/* Floats of the store one case takes in pass 1 and pass 2 (trace_exec.c's layouts). */
static uint64_t case_store(const xt_hparams *hp, uint32_t S, uint32_t span)
{
    uint64_t L = hp->n_layer, D = hp->n_embd, k = hp->n_expert ? hp->n_expert_used : 0;
    uint64_t p1 = S * span * D + L * D + S * L * D + 4 * L * k;
    uint64_t p2 = S * span * D + D + S * (3 * k + 2 * k * D + 2 * D + D + (2 * k + 2) * D);
    return p1 > p2 ? p1 : p2;
}

void xt_trace_fwd_desc(const xt_model *model, const xt_trace_opts *o, xt_fwd_desc *d)
{
    const xt_hparams *hp = xt_model_hparams(model);
    uint32_t bt = o->batch_tokens ? o->batch_tokens : 512;
    memset(d, 0, sizeof *d);
    d->model = model;
    d->max_tokens = bt;
    d->kv_slots = 2 * bt;
    d->max_patches = 4 * bt;
    d->max_out_rows = trace_rome_out_rows(model, o);
    /* room for a batch of 4-token prompts whose subject is one token, capped at 128 MiB */
    uint64_t per = case_store(hp, o->draws ? o->draws : 1, 1);
    uint64_t want = per * (bt / (2u * (o->draws ? o->draws : 1) + 2) + 1) + (1u << 20);
    if (want > (32u << 20)) want = 32u << 20;
    d->store_floats = (uint32_t)want;
}

static void progress(const trace_run *r, const char *what, uint32_t done, uint32_t total,
                     double t0, bool final)
{
    if (!r->o->progress) return;
    double el = xt_now_s() - t0, rate = el > 0 ? done / el : 0;
    double eta = rate > 0 && total > done ? (total - done) / rate : 0;
    int w = 30, fill = total ? (int)((double)w * done / total) : w;
    if (fill > w) fill = w;
    fprintf(stderr, "\r%-12s [%.*s%*s] %u/%u  %.2f cases/s  ETA %02d:%02d ", what, fill,
            "##############################", w - fill, "", done, total, rate,
            (int)(eta / 60), (int)eta % 60);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

/* Fills batch[] from cand[*pos..] with cases that fit one submission. */
static uint32_t next_batch(const trace_run *r, const uint32_t *cand, uint32_t n_cand, uint32_t *pos,
                           uint32_t *batch, uint32_t max_cases)
{
    uint32_t n = 0, tokens = 0, S = r->draws, cap = r->o->batch_tokens;
    uint64_t store = 0, store_cap = xt_fwd_store_floats(r->fwd);
    while (*pos < n_cand && n < max_cases) {
        const trace_case *c = &r->cases[cand[*pos]];
        uint64_t st = case_store(r->hp, S, c->subj_end - c->subj_begin);
        if (n && (tokens + c->n_tokens * (1 + S) > cap || store + st > store_cap)) break;
        tokens += c->n_tokens * (1 + S);
        store += st;
        batch[n++] = cand[(*pos)++];
    }
    return n;
}

static xt_status append_lines(trace_run *r, FILE *f, const char *path, const uint32_t *idx,
                              uint32_t n, bool full, xt_error *err)
{
    for (uint32_t i = 0; i < n; i++) {
        const trace_case *c = &r->cases[idx[i]];
        cJSON *j = full ? trace_case_json(r, c) : trace_case_sweep_json(r, c);
        if (!j) return xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
        xt_status s = trace_append(f, path, j, err);
        cJSON_Delete(j);
        if (s) return s;
    }
    return XT_OK;
}

static int find_case(const trace_run *r, int64_t id)
{
    for (uint32_t i = 0; i < r->n_cases; i++)
        if (r->cases[i].case_id == id) return (int)i;
    return -1;
}

/* Given case ids: a JSON list (split in half), {"discovery": [...], "validation": [...]}, or the
 * same under o->cases_key (the paper's file, keyed by model). */
static xt_status given_cases(trace_run *r, xt_error *err)
{
    cJSON *root = trace_read_json(r->o->cases_path, err);
    if (!root) return err->status;
    xt_status s = XT_OK;
    cJSON *j = root;
    if (r->o->cases_key) {
        j = cJSON_GetObjectItemCaseSensitive(root, r->o->cases_key);
        if (!j) {
            s = xt_error_set(err, XT_ERR_NOT_FOUND, "%s: no key \"%s\"", r->o->cases_path,
                             r->o->cases_key);
            goto done;
        }
    }
    cJSON *lists[2] = {NULL, NULL};
    if (cJSON_IsArray(j)) {
        lists[0] = j;
    } else if (cJSON_IsObject(j)) {
        lists[0] = cJSON_GetObjectItemCaseSensitive(j, "discovery");
        lists[1] = cJSON_GetObjectItemCaseSensitive(j, "validation");
    }
    if (!cJSON_IsArray(lists[0]) || (lists[1] && !cJSON_IsArray(lists[1]))) {
        s = xt_error_set(err, XT_ERR_FORMAT,
                         "%s: expected a list of case ids or {\"discovery\": [...], "
                         "\"validation\": [...]}%s",
                         r->o->cases_path, r->o->cases_key ? "" : " (a file keyed by model needs --cases-key)");
        goto done;
    }
    uint32_t total = (uint32_t)cJSON_GetArraySize(lists[0]) +
                     (lists[1] ? (uint32_t)cJSON_GetArraySize(lists[1]) : 0);
    r->selected = trace_calloc(total, sizeof *r->selected);
    r->order = trace_calloc(total, sizeof *r->order);
    if (!r->selected || !r->order) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
        goto done;
    }
    for (int li = 0; li < 2 && lists[li]; li++) {
        int at = 0;
        for (cJSON *x = lists[li]->child; x; x = x->next, at++) {
            if (!cJSON_IsNumber(x)) {
                s = xt_error_set(err, XT_ERR_FORMAT, "%s: %s[%d]: not a case id",
                                 r->o->cases_path, li ? "validation" : "discovery", at);
                goto done;
            }
            int ci = find_case(r, (int64_t)x->valuedouble);
            if (ci < 0) {
                s = xt_error_set(err, XT_ERR_NOT_FOUND,
                                 "%s: case %lld is not among the traceable cases of %s",
                                 r->o->cases_path, (long long)x->valuedouble, r->o->facts_path);
                goto done;
            }
            r->cases[ci].split = li ? XT_SPLIT_VALIDATION : XT_SPLIT_DISCOVERY;
            r->order[r->n_order++] = (uint32_t)ci;
            r->selected[r->n_selected++] = (uint32_t)ci;
        }
        if (li == 0) r->n_discovery_sel = r->n_selected;
    }
    if (!lists[1]) { /* one list: its first half discovers */
        r->n_discovery_sel = (r->n_selected + 1) / 2;
        for (uint32_t i = 0; i < r->n_selected; i++)
            r->cases[r->selected[i]].split =
                i < r->n_discovery_sel ? XT_SPLIT_DISCOVERY : XT_SPLIT_VALIDATION;
    }
done:
    cJSON_Delete(root);
    return s;
}

static xt_status open_append(const char *dir, const char *name, char *path, size_t cap, FILE **f,
                             xt_error *err)
{
    snprintf(path, cap, "%s/%s", dir, name);
    *f = fopen(path, "ab");
    if (!*f)
        return xt_error_set(err, XT_ERR_IO, "%s: cannot open for appending: %s", path,
                            strerror(errno));
    return XT_OK;
}

xt_status xt_trace_run(const xt_model *model, xt_fwd *fwd, const xt_trace_opts *o, xt_error *err)
{
    trace_run r = {.model = model, .hp = xt_model_hparams(model), .fwd = fwd, .o = o,
                   .layer = -1, .expert = -1};
    r.L = r.hp->n_layer;
    r.D = r.hp->n_embd;
    r.k = r.hp->n_expert ? r.hp->n_expert_used : 0;
    r.draws = o->draws ? o->draws : 1;
    char sweep_path[4096], cases_path[4096], summary_path[4096];
    xt_fwd_times ft0, ft;
    xt_fwd_times_get(fwd, &ft0);
    uint32_t *batch = NULL, *cand = NULL;
    cJSON *summary = NULL;
    xt_status s;
    if (r.k > 32)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "trace: %u routed experts per token; the expert pass handles up to 32",
                            r.k);
    if (o->layer >= 0 && (uint32_t)o->layer >= r.L)
        return xt_error_set(err, XT_ERR_RANGE, "trace: --layer %d: the model has %u layers",
                            o->layer, r.L);
    for (uint32_t i = 0; i < o->n_forced_experts; i++)
        if (!r.hp->n_expert || o->forced_experts[i] >= r.hp->n_expert)
            return xt_error_set(err, XT_ERR_RANGE, "trace: --experts %u: the model has %u experts",
                                o->forced_experts[i], r.hp->n_expert);
    if ((s = xt_tokenizer_create_from_gguf(xt_model_gguf(model), &r.tok, err))) return s;
    r.bos = o->bos == XT_BOS_ON || (o->bos == XT_BOS_AUTO && xt_tokenizer_adds_bos(r.tok));
    if (r.bos && xt_tokenizer_bos(r.tok) == XT_TOKEN_NONE) {
        s = xt_error_set(err, XT_ERR_UNSUPPORTED, "trace: --bos on, but the vocabulary has no BOS");
        goto done;
    }
    if ((s = trace_cases_load(&r, err)) || (s = trace_noise_sigma(&r, err))) goto done;
    if (mkdir(o->out_dir, 0777) && errno != EEXIST) {
        s = xt_error_set(err, XT_ERR_IO, "%s: cannot create the output directory: %s", o->out_dir,
                         strerror(errno));
        goto done;
    }
    if ((s = trace_resume(&r, err))) goto done;
    if ((s = open_append(o->out_dir, "sweep.jsonl", sweep_path, sizeof sweep_path, &r.sweep_f,
                         err)) ||
        (s = open_append(o->out_dir, "cases.jsonl", cases_path, sizeof cases_path, &r.cases_f,
                         err)))
        goto done;
    snprintf(summary_path, sizeof summary_path, "%s/summary.json", o->out_dir);

    batch = trace_calloc(r.n_cases, sizeof *batch);
    cand = trace_calloc(r.n_cases, sizeof *cand);
    if (!batch || !cand) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
        goto done;
    }

    /* ---- pass 1: filter + layer sweep, in the examination order ---- */
    if (o->cases_path) {
        if ((s = given_cases(&r, err))) goto done;
    } else {
        r.order = trace_calloc(r.n_cases, sizeof *r.order);
        r.selected = trace_calloc(r.n_cases, sizeof *r.selected);
        if (!r.order || !r.selected) {
            s = xt_error_set(err, XT_ERR_NO_MEMORY, "trace: out of host memory");
            goto done;
        }
        for (uint32_t i = 0; i < r.n_cases; i++) r.order[i] = i;
        xt_rng rng;
        xt_rng_init(&rng, o->shuffle_seed, 0);
        xt_shuffle_u32(r.order, r.n_cases, &rng);
        r.n_order = r.n_cases;
    }
    /* Selection = the first `want` passing cases of the order, however the work was batched
     * (or interrupted and resumed): gather at most as many unexamined cases as passes are
     * missing, run them, count, repeat. Given case ids are all used. */
    uint32_t want = o->cases_path ? r.n_order : o->n_cases;
    double t0 = xt_now_s();
    uint32_t pos = 0, passed = 0;
    while (pos < r.n_order && passed < want) {
        uint32_t nc = 0;
        while (pos < r.n_order && passed + nc < want) {
            const trace_case *c = &r.cases[r.order[pos++]];
            if (!c->swept) cand[nc++] = r.order[pos - 1];
            else if (o->cases_path || c->passed) passed++;
        }
        for (uint32_t cp = 0; cp < nc;) {
            uint32_t nb = next_batch(&r, cand, nc, &cp, batch, nc);
            if ((s = trace_pass1(&r, batch, nb, err)) ||
                (s = append_lines(&r, r.sweep_f, sweep_path, batch, nb, false, err)))
                goto done;
            r.timed_cases += nb;
            for (uint32_t i = 0; i < nb; i++)
                if (o->cases_path || r.cases[batch[i]].passed) passed++;
            progress(&r, "layer sweep", passed, want, t0, false);
        }
    }
    r.examined = pos;
    progress(&r, "layer sweep", passed, want, t0, true);
    if (!o->cases_path) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < r.examined; i++)
            if (r.cases[r.order[i]].passed) r.selected[n++] = r.order[i];
        r.n_selected = n;
        r.n_discovery_sel = o->n_discovery && o->n_discovery < n ? o->n_discovery : (n + 1) / 2;
        for (uint32_t i = 0; i < n; i++)
            r.cases[r.selected[i]].split =
                i < r.n_discovery_sel ? XT_SPLIT_DISCOVERY : XT_SPLIT_VALIDATION;
    }
    if (r.n_selected < 2 && o->filter == XT_FILTER_NONE) {
        s = xt_error_set(err, XT_ERR_NOT_FOUND,
                         "trace: %u usable case(s) examined (filter none); at least 2 are needed "
                         "for the discovery / validation split",
                         r.n_selected);
        goto done;
    }
    if (r.n_selected < 2) {
        s = xt_error_set(err, XT_ERR_NOT_FOUND,
                         "trace: %u of %u examined cases passed the %s filter; at least 2 are "
                         "needed (try --filter relaxed, or check that the model knows these facts)",
                         r.n_selected, r.examined,
                         o->filter == XT_FILTER_RELAXED ? "relaxed" : "strict");
        goto done;
    }

    /* ---- l*, then pass 2 at l* ---- */
    r.layer_forced = o->layer >= 0;
    r.layer = r.layer_forced ? o->layer : trace_select_layer(&r);
    if (r.k) {
        uint32_t nc = 0;
        for (uint32_t i = 0; i < r.n_selected; i++) {
            trace_case *c = &r.cases[r.selected[i]];
            if (!(c->expert_done && c->expert_layer == (uint32_t)r.layer)) {
                c->expert_done = false;
                cand[nc++] = r.selected[i];
            }
        }
        t0 = xt_now_s();
        uint32_t done_n = r.n_selected - nc;
        for (uint32_t cp = 0; cp < nc;) {
            uint32_t nb = next_batch(&r, cand, nc, &cp, batch, nc);
            if ((s = trace_pass2(&r, batch, nb, err)) ||
                (s = append_lines(&r, r.cases_f, cases_path, batch, nb, true, err)))
                goto done;
            done_n += nb;
            progress(&r, "expert pass", done_n, r.n_selected, t0, false);
        }
        progress(&r, "expert pass", r.n_selected, r.n_selected, t0, true);
        r.expert_forced = o->n_forced_experts > 0;
        r.expert = r.expert_forced ? (int32_t)o->forced_experts[0] : trace_select_expert(&r);
    } else {
        /* dense model: the layer sweep is the whole protocol; one line per case all the same */
        if ((s = append_lines(&r, r.cases_f, cases_path, r.selected, r.n_selected, true, err)))
            goto done;
    }
    if (o->rome_cases) {
        uint32_t n = o->rome_cases < r.n_selected ? o->rome_cases : r.n_selected;
        if ((s = trace_rome(&r, r.selected, n, err))) goto done;
        if ((s = trace_write_rome(&r, r.selected, n, err))) goto done;
    }
    summary = trace_summary(&r, err);
    if (!summary) {
        s = err->status ? err->status : XT_ERR_NO_MEMORY;
        goto done;
    }
    if ((s = trace_write_json(summary_path, summary, err))) goto done;
    {
        /* timing is not part of the summary: a resumed run's summary equals a whole run's */
        char tpath[4200];
        snprintf(tpath, sizeof tpath, "%s/timing.json", o->out_dir);
        cJSON *t = cJSON_CreateObject();
        double secs = r.seconds_pass1 + r.seconds_pass2 + r.seconds_rome;
        uint64_t rows = r.prefill_rows + r.wave_rows;
        cJSON_AddNumberToObject(t, "seconds_sweep", r.seconds_pass1);
        cJSON_AddNumberToObject(t, "seconds_experts", r.seconds_pass2);
        cJSON_AddNumberToObject(t, "seconds_rome", r.seconds_rome);
        cJSON_AddNumberToObject(t, "cases_examined_this_run", (double)r.timed_cases);
        cJSON_AddNumberToObject(t, "prefill_rows", (double)r.prefill_rows);
        cJSON_AddNumberToObject(t, "prefill_tokens", (double)r.prefill_tokens);
        cJSON_AddNumberToObject(t, "wavefront_rows", (double)r.wave_rows);
        cJSON_AddNumberToObject(t, "submissions", (double)r.submissions);
        cJSON_AddNumberToObject(t, "cases_per_s", secs > 0 ? r.timed_cases / secs : 0);
        cJSON_AddNumberToObject(t, "rows_per_s", secs > 0 ? rows / secs : 0);
        /* the forward's own split: host planning, plan upload + command recording, execution */
        xt_fwd_times_get(fwd, &ft);
        cJSON *fw = cJSON_AddObjectToObject(t, "forward");
        cJSON_AddNumberToObject(fw, "submissions", (double)(ft.submissions - ft0.submissions));
        cJSON_AddNumberToObject(fw, "seconds_plan", ft.plan_s - ft0.plan_s);
        cJSON_AddNumberToObject(fw, "seconds_record", ft.record_s - ft0.record_s);
        cJSON_AddNumberToObject(fw, "seconds_execute", ft.execute_s - ft0.execute_s);
        cJSON_AddNumberToObject(fw, "seconds_download", ft.download_s - ft0.download_s);
        s = trace_write_json(tpath, t, err);
        cJSON_Delete(t);
        if (s) goto done;
    }
    if (!o->quiet) {
        /* read back as written: numbers are raw text until parsed */
        char *txt = cJSON_PrintUnformatted(summary);
        cJSON *back = txt ? cJSON_Parse(txt) : NULL;
        if (back) trace_print_summary(&r, back, stdout);
        cJSON_Delete(back);
        free(txt);
        double secs = r.seconds_pass1 + r.seconds_pass2 + r.seconds_rome;
        uint64_t rows = r.prefill_rows + r.wave_rows;
        printf("work: %llu prefill rows (%llu tokens) + %llu wavefront rows in %llu "
               "submissions, %.1f s: %.2f cases/s, %.1f rows/s\n",
               (unsigned long long)r.prefill_rows, (unsigned long long)r.prefill_tokens,
               (unsigned long long)r.wave_rows, (unsigned long long)r.submissions, secs,
               secs > 0 ? r.timed_cases / secs : 0, secs > 0 ? rows / secs : 0);
        xt_fwd_times_get(fwd, &ft);
        printf("forward: %.2f s planning, %.2f s uploading plans and recording commands, %.1f s "
               "executing, %.2f s downloading\n",
               ft.plan_s - ft0.plan_s, ft.record_s - ft0.record_s, ft.execute_s - ft0.execute_s,
               ft.download_s - ft0.download_s);
    }
done:
    if (r.sweep_f) fclose(r.sweep_f);
    if (r.cases_f) fclose(r.cases_f);
    cJSON_Delete(summary);
    cJSON_Delete(r.rejected);
    free(batch);
    free(cand);
    free(r.order);
    free(r.selected);
    trace_cases_free(&r);
    xt_tokenizer_destroy(r.tok);
    return s;
}
