/* expertrace run MODEL.gguf --prompt TEXT | --tokens 1,2,3 [--top N] [--json] [--logits FILE.npy]
 *                 [--routing] [--backend gpu|cpu] [--bos auto|on|off] [--device N]
 *
 * One forward pass over the prompt: the top N next tokens with logits and probabilities; with
 * --routing the last token's routed experts and weights per layer; with --logits the full
 * last-position logits as a .npy file (float32, shape (n_vocab,)). --backend cpu runs the same
 * model through the CPU reference ops (slow; the cross-check for any GPU).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "expertrace/model.h"
#include "expertrace/tokenizer.h"
#include "expertrace/vk.h"
#include "forward.h"

static void print_help(void)
{
    printf("usage: expertrace run MODEL.gguf (--prompt TEXT | --tokens 1,2,3) [--top N] [--json]\n"
           "                     [--logits FILE.npy] [--routing] [--backend gpu|cpu]\n"
           "                     [--bos auto|on|off] [--device N]\n\n"
           "Runs one forward pass and prints the most likely next tokens.\n"
           "  --prompt TEXT       text, tokenized with the model's tokenizer\n"
           "  --tokens LIST       token ids, comma-separated (no tokenizer needed)\n"
           "  --top N             how many tokens to print (default 10)\n"
           "  --json              print one JSON object instead of text\n"
           "  --logits FILE.npy   write the last position's logits (float32, shape (n_vocab,))\n"
           "  --routing           print the last token's experts and router weights per layer\n"
           "  --backend gpu|cpu   the Vulkan device (default) or the CPU reference ops\n"
           "  --bos auto|on|off   BOS for --prompt: as the model says (auto), always, never\n"
           "  --device N          Vulkan device index (see 'expertrace devices')\n");
}

/* "1,2,3" -> ids; false on anything else. */
static bool parse_tokens(const char *s, xt_tokens *out)
{
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > INT32_MAX) return false;
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 16;
            int32_t *ids = realloc(out->ids, cap * sizeof *ids);
            if (!ids) return false;
            out->ids = ids;
            out->cap = cap;
        }
        out->ids[out->n++] = (int32_t)v;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) return false;
        } else if (*p) {
            return false;
        }
    }
    return out->n > 0;
}

/* A .npy file (format 1.0) of n float32 values. */
static int write_npy(const char *path, const float *x, uint32_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "expertrace: cannot write %s: %s\n", path, strerror(errno));
        return XT_EXIT_INPUT;
    }
    char dict[128];
    int len = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%u,), }",
                       n);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    uint16_t hl = (uint16_t)(len + pad + 1);
    head[8] = (unsigned char)(hl & 0xff);
    head[9] = (unsigned char)(hl >> 8);
    bool ok = fwrite(head, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; i < pad && ok; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    /* little-endian float32: the host's order on every platform we build for */
    ok = ok && fwrite(x, sizeof(float), n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        fprintf(stderr, "expertrace: writing %s failed\n", path);
        return XT_EXIT_INPUT;
    }
    return XT_EXIT_OK;
}

static char *piece_text(const xt_tokenizer *tok, uint32_t id)
{
    if (!tok) return NULL;
    xt_strview p = xt_tokenizer_piece(tok, (int32_t)id);
    char *s = malloc(p.len + 1);
    if (!s) return NULL;
    if (p.len) memcpy(s, p.ptr, p.len);
    s[p.len] = 0;
    return s;
}

typedef struct ranked {
    uint32_t id;
    float logit;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

int xt_cmd_run(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *tokens_arg = NULL, *npy = NULL;
    uint32_t top = 10, device = 0;
    bool json = false, routing = false, device_set = false;
    xt_backend backend = XT_BACKEND_GPU;
    xt_bos_mode bos = XT_BOS_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return XT_EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--routing")) {
            routing = true;
        } else if (!strcmp(a, "--prompt") && has_val) {
            prompt = argv[++i];
        } else if (!strcmp(a, "--tokens") && has_val) {
            tokens_arg = argv[++i];
        } else if (!strcmp(a, "--logits") && has_val) {
            npy = argv[++i];
        } else if (!strcmp(a, "--top") && has_val) {
            if (!xt_cli_parse_u32(argv[++i], &top) || top == 0)
                return xt_cli_usage_error("run", "--top wants a positive integer, not '%s'",
                                          argv[i]);
        } else if (!strcmp(a, "--device") && has_val) {
            if (!xt_cli_parse_u32(argv[++i], &device))
                return xt_cli_usage_error("run", "--device wants an index, not '%s'", argv[i]);
            device_set = true;
        } else if (!strcmp(a, "--backend") && has_val) {
            const char *b = argv[++i];
            if (!strcmp(b, "gpu")) backend = XT_BACKEND_GPU;
            else if (!strcmp(b, "cpu")) backend = XT_BACKEND_CPU;
            else return xt_cli_usage_error("run", "--backend is gpu or cpu, not '%s'", b);
        } else if (!strcmp(a, "--bos") && has_val) {
            if (!xt_bos_mode_parse(argv[++i], &bos))
                return xt_cli_usage_error("run", "--bos is auto, on or off, not '%s'", argv[i]);
        } else if (a[0] == '-' && a[1]) {
            return xt_cli_usage_error("run", "unknown option or missing value: '%s'", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return xt_cli_usage_error("run", "unexpected argument '%s'", a);
        }
    }
    if (!model_path) return xt_cli_usage_error("run", "no model file given");
    if (!prompt == !tokens_arg)
        return xt_cli_usage_error("run", "give exactly one of --prompt and --tokens");

    xt_error err = {0};
    xt_model *m = NULL;
    xt_tokenizer *tok = NULL;
    xt_tokens ids = {0};
    xt_vk_context *vk = NULL;
    xt_fwd *f = NULL;
    float *logits = NULL, *store = NULL;
    ranked *rank = NULL;
    int rc = XT_EXIT_OK;
    if (tokens_arg && !parse_tokens(tokens_arg, &ids)) {
        rc = xt_cli_usage_error("run", "--tokens wants comma-separated ids, not '%s'", tokens_arg);
        goto done;
    }
    if (xt_model_open(model_path, &m, &err)) goto fail;
    const xt_hparams *hp = xt_model_hparams(m);
    /* the tokenizer is needed for --prompt; with --tokens only to print pieces, when present */
    if (xt_tokenizer_create_from_gguf(xt_model_gguf(m), &tok, &err)) {
        if (prompt) goto fail;
        tok = NULL;
        xt_error_clear(&err);
    }
    if (prompt &&
        xt_tokenize(tok, prompt, strlen(prompt), &(xt_encode_opts){.bos = bos}, &ids, &err))
        goto fail;
    if (ids.n == 0) {
        fprintf(stderr, "expertrace: the prompt gives no tokens\n");
        rc = XT_EXIT_INPUT;
        goto done;
    }
    if (backend == XT_BACKEND_GPU &&
        xt_vk_context_create(&(xt_vk_desc){.device_index_set = device_set,
                                           .device_index = device},
                             &vk, &err))
        goto fail;
    uint32_t n = (uint32_t)ids.n, L = hp->n_layer, k = hp->n_expert_used;
    bool moe = hp->n_expert > 0;
    if (routing && !moe) routing = false;
    uint32_t rec_floats = routing ? L * 2 * k : 0;
    if (xt_fwd_create(&(xt_fwd_desc){.model = m, .backend = backend, .vk = vk, .max_tokens = n,
                                     .kv_slots = n, .store_floats = rec_floats ? rec_floats : 1,
                                     .max_patches = 1, .max_out_rows = 1},
                      &f, &err))
        goto fail;
    xt_fwd_record *recs = NULL;
    if (routing) {
        recs = calloc(2 * L, sizeof *recs);
        if (!recs) {
            xt_error_set(&err, XT_ERR_NO_MEMORY, "out of host memory");
            goto fail;
        }
        for (uint32_t l = 0; l < L; l++) {
            recs[2 * l] = (xt_fwd_record){0, n - 1, l, XT_REC_EXPERT_IDS, 2 * l * k};
            recs[2 * l + 1] = (xt_fwd_record){0, n - 1, l, XT_REC_EXPERT_WEIGHTS, (2 * l + 1) * k};
        }
    }
    logits = malloc((size_t)hp->n_vocab * sizeof(float));
    store = malloc((size_t)(rec_floats ? rec_floats : 1) * sizeof(float));
    rank = malloc((size_t)hp->n_vocab * sizeof *rank);
    if (!logits || !store || !rank) {
        free(recs);
        xt_error_set(&err, XT_ERR_NO_MEMORY, "out of host memory");
        goto fail;
    }
    xt_fwd_seq seq = {ids.ids, n};
    xt_status st = xt_fwd_prefill(f, &(xt_fwd_batch){.seqs = &seq, .n_seqs = 1, .records = recs,
                                                     .n_records = routing ? 2 * L : 0,
                                                     .logits = logits},
                                  &err);
    free(recs);
    if (st) goto fail;
    if (routing && xt_fwd_store_read(f, 0, store, rec_floats, &err)) goto fail;
    if (npy && (rc = write_npy(npy, logits, hp->n_vocab))) goto done;

    /* softmax in double over the whole vocabulary, then the top N */
    double mx = -INFINITY, sum = 0;
    for (uint32_t i = 0; i < hp->n_vocab; i++) mx = fmax(mx, logits[i]);
    for (uint32_t i = 0; i < hp->n_vocab; i++) sum += exp((double)logits[i] - mx);
    for (uint32_t i = 0; i < hp->n_vocab; i++) rank[i] = (ranked){i, logits[i]};
    qsort(rank, hp->n_vocab, sizeof *rank, cmp_ranked);
    if (top > hp->n_vocab) top = hp->n_vocab;
    const char *bname = backend == XT_BACKEND_GPU ? "gpu" : "cpu";
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model_path);
        cJSON_AddStringToObject(root, "architecture", xt_arch_name(hp->arch));
        cJSON_AddStringToObject(root, "backend", bname);
        if (prompt) cJSON_AddStringToObject(root, "bos", xt_bos_mode_name(bos));
        cJSON *jt = cJSON_AddArrayToObject(root, "tokens");
        for (uint32_t i = 0; i < n; i++) cJSON_AddItemToArray(jt, cJSON_CreateNumber(ids.ids[i]));
        cJSON *jtop = cJSON_AddArrayToObject(root, "top");
        for (uint32_t i = 0; i < top; i++) {
            cJSON *o = cJSON_CreateObject();
            char *pc = piece_text(tok, rank[i].id);
            cJSON_AddNumberToObject(o, "id", rank[i].id);
            if (pc) cJSON_AddStringToObject(o, "piece", pc);
            cJSON_AddNumberToObject(o, "logit", rank[i].logit);
            cJSON_AddNumberToObject(o, "prob", exp((double)rank[i].logit - mx) / sum);
            cJSON_AddItemToArray(jtop, o);
            free(pc);
        }
        if (routing) {
            cJSON *jr = cJSON_AddArrayToObject(root, "routing");
            for (uint32_t l = 0; l < L; l++) {
                cJSON *o = cJSON_CreateObject(), *je = cJSON_CreateArray(),
                      *jw = cJSON_CreateArray();
                for (uint32_t s = 0; s < k; s++) {
                    uint32_t e;
                    memcpy(&e, &store[2 * l * k + s], 4);
                    cJSON_AddItemToArray(je, cJSON_CreateNumber(e));
                    cJSON_AddItemToArray(jw, cJSON_CreateNumber(store[(2 * l + 1) * k + s]));
                }
                cJSON_AddNumberToObject(o, "layer", l);
                cJSON_AddItemToObject(o, "experts", je);
                cJSON_AddItemToObject(o, "weights", jw);
                cJSON_AddItemToArray(jr, o);
            }
        }
        char *s = cJSON_PrintUnformatted(root);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(root);
    } else {
        printf("%s (%s, %u layers), %u tokens, backend %s\n", model_path, xt_arch_name(hp->arch),
               L, n, bname);
        printf("%-6s %-10s %12s %10s  %s\n", "rank", "id", "logit", "prob", "piece");
        for (uint32_t i = 0; i < top; i++) {
            char *pc = piece_text(tok, rank[i].id);
            printf("%-6u %-10u %12.5f %10.6f  %s\n", i + 1, rank[i].id, (double)rank[i].logit,
                   exp((double)rank[i].logit - mx) / sum, pc ? pc : "");
            free(pc);
        }
        if (routing) {
            printf("\nrouting of the last token (expert:weight per layer)\n");
            for (uint32_t l = 0; l < L; l++) {
                printf("layer %3u:", l);
                for (uint32_t s = 0; s < k; s++) {
                    uint32_t e;
                    memcpy(&e, &store[2 * l * k + s], 4);
                    printf(" %u:%.4f", e, (double)store[(2 * l + 1) * k + s]);
                }
                putchar('\n');
            }
        }
    }
    goto done;
fail:
    rc = xt_cli_fail(&err);
done:
    free(logits);
    free(store);
    free(rank);
    xt_fwd_destroy(f);
    xt_vk_context_destroy(vk);
    xt_tokens_free(&ids);
    xt_tokenizer_destroy(tok);
    xt_model_close(m);
    return rc;
}
