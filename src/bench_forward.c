/* Whole-forward benchmark (see bench.h): tokens/s of xt_fwd_prefill on a GGUF model for
 * workloads of N prompts × M tokens, wall-clock after a warm-up, on the same token ids that
 * tests/reference/bench_llama.py gives llama.cpp. Figures, not pass/fail. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "util.h"
#include "expertrace/model.h"

enum { MAX_WORKLOADS = 16, NAME_BYTES = 32 };

typedef struct fwd_workload {
    char name[NAME_BYTES];
    uint32_t n_seq, n_tok;
    int32_t *ids;   /* [n_seq * n_tok] */
    double *secs;   /* [repeats] */
    double best_s, median_s, flop;
    float check_logit; /* logit 0 of prompt 0's last position (bench_llama.py's check_logit) */
    uint32_t argmax0;  /* argmax of prompt 0's last position */
} fwd_workload;

static bool parse_u32_prefix(const char *s, const char **end, uint32_t *out)
{
    if (*s < '0' || *s > '9') return false;
    char *e;
    errno = 0;
    unsigned long v = strtoul(s, &e, 10);
    if (errno || v == 0 || v > 1u << 20) return false;
    *out = (uint32_t)v;
    *end = e;
    return true;
}

bool xt_bench_fwd_parse_workload(const char *name, uint32_t *n_seq, uint32_t *n_tok)
{
    const char *e;
    if (!strncmp(name, "batch", 5)) {
        if (!parse_u32_prefix(name + 5, &e, n_seq) || *e != 'x') return false;
        if (!parse_u32_prefix(e + 1, &e, n_tok) || *e) return false;
    } else if (!strncmp(name, "prefill", 7)) {
        *n_seq = 1;
        if (!parse_u32_prefix(name + 7, &e, n_tok) || *e) return false;
    } else {
        return false;
    }
    return strlen(name) < NAME_BYTES && (uint64_t)*n_seq * *n_tok <= 1u << 20;
}

static uint32_t rng_state = 2463534242u;
static uint32_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Without a tokens file: ordinary ids in [1000, min(n_vocab, 150000)), as bench_llama.py draws
 * them (a different generator, so different ids). */
static void random_ids(fwd_workload *w, uint32_t n_vocab)
{
    uint32_t hi = n_vocab < 150000 ? n_vocab : 150000, lo = hi > 1000 ? 1000 : 0;
    for (uint64_t i = 0; i < (uint64_t)w->n_seq * w->n_tok; i++)
        w->ids[i] = (int32_t)(lo + rng_next() % (hi - lo));
}

/* The workload's ids from bench_llama.py's JSON: "prompts": {name: [[id, ...] × n_seq]}. */
static xt_status load_ids(const cJSON *root, const char *path, fwd_workload *w, uint32_t n_vocab,
                          xt_error *err)
{
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(prompts, w->name);
    if (!cJSON_IsArray(seqs))
        return xt_error_set(err, XT_ERR_FORMAT, "%s: no \"prompts\".\"%s\" array", path, w->name);
    if ((uint32_t)cJSON_GetArraySize(seqs) != w->n_seq)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: \"prompts\".\"%s\" has %d prompts, not %u",
                            path, w->name, cJSON_GetArraySize(seqs), w->n_seq);
    uint32_t s = 0;
    const cJSON *seq;
    cJSON_ArrayForEach(seq, seqs)
    {
        if (!cJSON_IsArray(seq) || (uint32_t)cJSON_GetArraySize(seq) != w->n_tok)
            return xt_error_set(err, XT_ERR_FORMAT, "%s: \"%s\" prompt %u is not %u ids", path,
                                w->name, s, w->n_tok);
        uint32_t t = 0;
        const cJSON *id;
        cJSON_ArrayForEach(id, seq)
        {
            double v = cJSON_IsNumber(id) ? id->valuedouble : -1;
            if (v < 0 || v >= n_vocab || v != (double)(int32_t)v)
                return xt_error_set(err, XT_ERR_FORMAT,
                                    "%s: \"%s\" prompt %u position %u is not an id below %u",
                                    path, w->name, s, t, n_vocab);
            w->ids[(uint64_t)s * w->n_tok + t++] = (int32_t)v;
        }
        s++;
    }
    return XT_OK;
}

/* FLOP of one prefill of w: 2 per multiply-add of every matmul a token goes through, the causal
 * attention products (a token at position p reads p + 1 keys), and the lm head at the output rows
 * only. Element-wise ops (norms, RoPE, softmax, SwiGLU) are not counted. */
static double forward_flop(const xt_hparams *hp, const fwd_workload *w)
{
    double d = hp->n_embd, q = (double)hp->n_head * hp->head_dim,
           kv = (double)hp->n_head_kv * hp->head_dim;
    double per_tok = d * q + 2 * d * kv + q * d; /* q, k, v, o */
    if (hp->n_expert) {
        per_tok += d * hp->n_expert + (double)hp->n_expert_used * 3 * d * hp->n_ff_exp;
        if (hp->n_ff_shexp) per_tok += 3 * d * hp->n_ff_shexp + d;
    } else {
        per_tok += 3 * d * hp->n_ff;
    }
    double tokens = (double)w->n_seq * w->n_tok;
    /* sum over positions of (p + 1) keys, per prompt */
    double keys = (double)w->n_seq * w->n_tok * (w->n_tok + 1.0) / 2.0;
    double attn = 2.0 * hp->n_head * hp->head_dim * keys; /* Q·K and P·V */
    return 2.0 * hp->n_layer * (per_tok * tokens + attn) + 2.0 * d * hp->n_vocab * w->n_seq;
}

static xt_status run_workload(xt_fwd *f, const xt_hparams *hp, fwd_workload *w, uint32_t repeats,
                              float *logits, xt_fwd_seq *seqs, xt_error *err)
{
    for (uint32_t s = 0; s < w->n_seq; s++)
        seqs[s] = (xt_fwd_seq){w->ids + (uint64_t)s * w->n_tok, w->n_tok};
    xt_fwd_batch b = {.seqs = seqs, .n_seqs = w->n_seq, .logits = logits};
    for (uint32_t r = 0; r <= repeats; r++) { /* run 0: warm-up */
        double t0 = xt_now_s();
        xt_status s = xt_fwd_prefill(f, &b, err);
        double dt = xt_now_s() - t0;
        if (s) return s;
        fprintf(stderr, "forward %s: %s %.3f s\n", w->name, r ? "run" : "warm-up", dt);
        if (r) w->secs[r - 1] = dt;
    }
    w->best_s = w->secs[0];
    for (uint32_t r = 1; r < repeats; r++)
        if (w->secs[r] < w->best_s) w->best_s = w->secs[r];
    double *tmp = malloc(repeats * sizeof *tmp);
    if (!tmp) return xt_error_set(err, XT_ERR_NO_MEMORY, "bench forward: out of host memory");
    memcpy(tmp, w->secs, repeats * sizeof *tmp);
    w->median_s = xt_bench_median(tmp, repeats);
    free(tmp);
    w->flop = forward_flop(hp, w);
    w->check_logit = logits[0];
    w->argmax0 = 0;
    for (uint32_t i = 1; i < hp->n_vocab; i++)
        if (logits[i] > logits[w->argmax0]) w->argmax0 = i;
    return XT_OK;
}

static void print_results(const xt_bench_fwd_desc *d, const xt_hparams *hp, const char *device,
                          uint64_t weight_bytes, const fwd_workload *ws, uint32_t n,
                          uint32_t repeats)
{
    FILE *o = d->out ? d->out : stdout;
    const char *bname = d->backend == XT_BACKEND_GPU ? "gpu" : "cpu";
    double peak = d->peak ? d->peak->flops_per_s : 0;
    if (d->json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", d->model_path);
        cJSON_AddStringToObject(root, "architecture", xt_arch_name(hp->arch));
        cJSON_AddStringToObject(root, "backend", bname);
        cJSON_AddStringToObject(root, "device", device);
        if (d->tokens_file) cJSON_AddStringToObject(root, "tokens_file", d->tokens_file);
        else cJSON_AddNullToObject(root, "tokens_file");
        cJSON_AddNumberToObject(root, "weight_bytes", (double)weight_bytes);
        cJSON_AddNumberToObject(root, "repeats", repeats);
        if (peak > 0) cJSON_AddNumberToObject(root, "peak_flops_per_s", peak);
        cJSON *jw = cJSON_AddObjectToObject(root, "workloads");
        for (uint32_t i = 0; i < n; i++) {
            const fwd_workload *w = &ws[i];
            double tokens = (double)w->n_seq * w->n_tok;
            cJSON *o1 = cJSON_AddObjectToObject(jw, w->name);
            cJSON_AddNumberToObject(o1, "n_seq", w->n_seq);
            cJSON_AddNumberToObject(o1, "n_tok", w->n_tok);
            cJSON_AddNumberToObject(o1, "tokens", tokens);
            cJSON *js = cJSON_AddArrayToObject(o1, "seconds");
            for (uint32_t r = 0; r < repeats; r++)
                cJSON_AddItemToArray(js, cJSON_CreateNumber(w->secs[r]));
            cJSON_AddNumberToObject(o1, "best_s", w->best_s);
            cJSON_AddNumberToObject(o1, "median_s", w->median_s);
            cJSON_AddNumberToObject(o1, "tokens_per_s_best", tokens / w->best_s);
            cJSON_AddNumberToObject(o1, "tokens_per_s_median", tokens / w->median_s);
            cJSON_AddNumberToObject(o1, "flop", w->flop);
            cJSON_AddNumberToObject(o1, "flops_per_s_best", w->flop / w->best_s);
            if (peak > 0)
                cJSON_AddNumberToObject(o1, "peak_fraction_best", w->flop / w->best_s / peak);
            cJSON_AddNumberToObject(o1, "check_logit", w->check_logit);
            cJSON_AddNumberToObject(o1, "argmax0", w->argmax0);
        }
        char *s = cJSON_PrintUnformatted(root);
        if (s) fprintf(o, "%s\n", s);
        free(s);
        cJSON_Delete(root);
        return;
    }
    fprintf(o, "forward: %s (%s, %u layers), backend %s on %s, ids from %s\n", d->model_path,
            xt_arch_name(hp->arch), hp->n_layer, bname, device,
            d->tokens_file ? d->tokens_file : "a fixed seed");
    if (peak > 0) fprintf(o, "peak: %.1f GFLOP/s (fp32 FMA)\n", peak * 1e-9);
    fprintf(o, "%-14s %7s %10s %10s %12s %12s %10s %7s %12s\n", "workload", "tokens", "best_s",
            "median_s", "tok/s(best)", "tok/s(med)", "GFLOP/s", "%peak", "check_logit");
    for (uint32_t i = 0; i < n; i++) {
        const fwd_workload *w = &ws[i];
        double tokens = (double)w->n_seq * w->n_tok, gf = w->flop / w->best_s;
        char pct[16] = "n/a";
        if (peak > 0) snprintf(pct, sizeof pct, "%.1f%%", 100.0 * gf / peak);
        fprintf(o, "%-14s %7.0f %10.3f %10.3f %12.1f %12.1f %10.2f %7s %12.5f\n", w->name, tokens,
                w->best_s, w->median_s, tokens / w->best_s, tokens / w->median_s, gf * 1e-9, pct,
                (double)w->check_logit);
    }
    fflush(o);
}

xt_status xt_bench_forward(const xt_bench_fwd_desc *d, xt_error *err)
{
    uint32_t n = d->n_workloads, repeats = d->repeats ? d->repeats : 3;
    if (n == 0 || n > MAX_WORKLOADS)
        return xt_error_set(err, XT_ERR_USAGE, "bench forward: 1..%d workloads", MAX_WORKLOADS);
    fwd_workload ws[MAX_WORKLOADS];
    memset(ws, 0, sizeof ws);
    uint32_t max_tokens = 0, max_seqs = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!xt_bench_fwd_parse_workload(d->workloads[i], &ws[i].n_seq, &ws[i].n_tok))
            return xt_error_set(err, XT_ERR_USAGE,
                                "bench forward: workload '%s' is not batchNxM or prefillM",
                                d->workloads[i]);
        snprintf(ws[i].name, NAME_BYTES, "%s", d->workloads[i]);
        uint32_t t = ws[i].n_seq * ws[i].n_tok;
        if (t > max_tokens) max_tokens = t;
        if (ws[i].n_seq > max_seqs) max_seqs = ws[i].n_seq;
    }
    xt_model *m = NULL;
    xt_fwd *f = NULL;
    cJSON *root = NULL;
    char *text = NULL;
    float *logits = NULL;
    xt_fwd_seq *seqs = NULL;
    xt_status s = xt_model_open(d->model_path, &m, err);
    if (s) goto done;
    const xt_hparams *hp = xt_model_hparams(m);
    if (d->tokens_file) {
        size_t text_len;
        if ((s = xt_read_file(d->tokens_file, false, &text, &text_len, err))) goto done;
        if (!(root = cJSON_Parse(text))) {
            s = xt_error_set(err, XT_ERR_FORMAT, "%s: not valid JSON", d->tokens_file);
            goto done;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        ws[i].ids = malloc((size_t)ws[i].n_seq * ws[i].n_tok * sizeof(int32_t));
        ws[i].secs = calloc(repeats, sizeof(double));
        if (!ws[i].ids || !ws[i].secs) {
            s = xt_error_set(err, XT_ERR_NO_MEMORY, "bench forward: out of host memory");
            goto done;
        }
        if (root) {
            if ((s = load_ids(root, d->tokens_file, &ws[i], hp->n_vocab, err))) goto done;
        } else {
            random_ids(&ws[i], hp->n_vocab);
        }
    }
    logits = malloc((size_t)max_seqs * hp->n_vocab * sizeof(float));
    seqs = malloc(max_seqs * sizeof *seqs);
    if (!logits || !seqs) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "bench forward: out of host memory");
        goto done;
    }
    /* one forward state for every workload: the weights are uploaded once */
    if ((s = xt_fwd_create(&(xt_fwd_desc){.model = m, .backend = d->backend, .vk = d->vk,
                                          .max_tokens = max_tokens, .kv_slots = max_tokens,
                                          .store_floats = 1, .max_patches = 1,
                                          .max_out_rows = max_seqs},
                           &f, err)))
        goto done;
    uint64_t weight_bytes = 0;
    xt_fwd_device_bytes(f, &weight_bytes);
    const char *device =
        d->backend == XT_BACKEND_GPU && d->vk ? xt_vk_context_info(d->vk)->name : "host CPU";
    for (uint32_t i = 0; i < n && !s; i++)
        s = run_workload(f, hp, &ws[i], repeats, logits, seqs, err);
    if (!s) print_results(d, hp, device, weight_bytes, ws, n, repeats);
done:
    for (uint32_t i = 0; i < n; i++) {
        free(ws[i].ids);
        free(ws[i].secs);
    }
    free(logits);
    free(seqs);
    cJSON_Delete(root);
    free(text);
    xt_fwd_destroy(f);
    xt_model_close(m);
    return s;
}
