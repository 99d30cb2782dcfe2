/* The tokenizer from a GGUF file's tokenizer.ggml.* metadata: reads the keys into an
 * xt_vocab_desc (views into the mapping, copied by xt_tokenizer_create) and builds it. */
#include <stdlib.h>
#include <string.h>

#include "expertrace/gguf.h"
#include "tokenizer_internal.h"

/* An optional id key: absent leaves *id alone; present must be an integer that fits. */
static xt_status get_id(const xt_gguf *g, const char *key, int32_t *id, xt_error *err)
{
    if (xt_gguf_find_key(g, key) < 0) return XT_OK;
    int64_t v;
    xt_status st = xt_gguf_get_int(g, key, -1, INT32_MAX, &v, err);
    if (!st) *id = (int32_t)v;
    return st;
}

static xt_status get_flag(const xt_gguf *g, const char *key, int *flag, xt_error *err)
{
    if (xt_gguf_find_key(g, key) < 0) return XT_OK;
    bool b;
    xt_status st = xt_gguf_get_bool(g, key, &b, err);
    if (!st) *flag = b;
    return st;
}

/* Reads a string array into views. *out is malloc'd (the caller frees it). */
static xt_status get_strings(const xt_gguf *g, const char *key, xt_strview **out, size_t *n,
                             xt_error *err)
{
    xt_gguf_array a;
    xt_status st = xt_gguf_get_array(g, key, &a, err);
    if (st) return st;
    if (a.type != XT_GGUF_STRING)
        return xt_error_set(err, XT_ERR_TYPE, "%s: %s holds %s elements, expected strings",
                            xt_gguf_path(g), key, xt_gguf_type_name(a.type));
    *out = malloc((a.count ? a.count : 1) * sizeof **out);
    if (!*out)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory reading %s", xt_gguf_path(g),
                            key);
    for (uint64_t i = 0; i < a.count; i++) {
        xt_gguf_str s;
        if ((st = xt_gguf_array_get_str(&a, i, &s, err))) return st;
        (*out)[i] = (xt_strview){(const char *)s.bytes, s.len};
    }
    *n = (size_t)a.count;
    return XT_OK;
}

xt_status xt_tokenizer_create_from_gguf(const xt_gguf *g, xt_tokenizer **out, xt_error *err)
{
    *out = NULL;
    const char *path = xt_gguf_path(g);
    xt_vocab_desc d = XT_VOCAB_DESC_INIT;
    d.name = path;
    xt_strview *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char model[32], pre[64];
    xt_gguf_str s;
    xt_status st = xt_gguf_get_str(g, "tokenizer.ggml.model", &s, err);
    if (st) goto fail;
    if (xt_gguf_str_copy(s, model, sizeof model) >= sizeof model ||
        (strcmp(model, "gpt2") && strcmp(model, "llama"))) {
        st = xt_error_set(err, XT_ERR_UNSUPPORTED,
                          "%s: tokenizer.ggml.model '" XT_GGUF_STR_FMT
                          "' is not supported (gpt2 and llama are)",
                          path, XT_GGUF_STR_ARG(s));
        goto fail;
    }
    d.kind = !strcmp(model, "gpt2") ? XT_VOCAB_BPE : XT_VOCAB_SPM;
    if (xt_gguf_find_key(g, "tokenizer.ggml.pre") >= 0) {
        if ((st = xt_gguf_get_str(g, "tokenizer.ggml.pre", &s, err))) goto fail;
        if (xt_gguf_str_copy(s, pre, sizeof pre) >= sizeof pre) {
            st = xt_error_set(err, XT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre is too long", path);
            goto fail;
        }
        d.pre = pre;
    }
    if ((st = get_strings(g, "tokenizer.ggml.tokens", &tokens, &d.n_tokens, err))) goto fail;
    d.tokens = tokens;

    if (xt_gguf_find_key(g, "tokenizer.ggml.scores") >= 0) {
        xt_gguf_array a;
        if ((st = xt_gguf_get_array(g, "tokenizer.ggml.scores", &a, err))) goto fail;
        scores = malloc((a.count ? a.count : 1) * sizeof *scores);
        if (!scores) {
            st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", path);
            goto fail;
        }
        for (uint64_t i = 0; i < a.count; i++) {
            double v;
            if ((st = xt_gguf_array_get_float(&a, i, &v, err))) goto fail;
            scores[i] = (float)v;
        }
        d.scores = scores;
        d.n_scores = (size_t)a.count;
    }
    if (xt_gguf_find_key(g, "tokenizer.ggml.token_type") >= 0) {
        xt_gguf_array a;
        if ((st = xt_gguf_get_array(g, "tokenizer.ggml.token_type", &a, err))) goto fail;
        types = malloc((a.count ? a.count : 1) * sizeof *types);
        if (!types) {
            st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", path);
            goto fail;
        }
        for (uint64_t i = 0; i < a.count; i++) {
            int64_t v;
            if ((st = xt_gguf_array_get_int(&a, i, &v, err))) goto fail;
            types[i] =
                v < 0 || v > 64 ? 64 : (int32_t)v; /* out-of-range types are rejected at create */
        }
        d.token_types = types;
        d.n_token_types = (size_t)a.count;
    }
    if (xt_gguf_find_key(g, "tokenizer.ggml.merges") >= 0) {
        if ((st = get_strings(g, "tokenizer.ggml.merges", &merges, &d.n_merges, err))) goto fail;
        d.merges = merges;
    }
    if ((st = get_id(g, "tokenizer.ggml.bos_token_id", &d.bos_id, err)) ||
        (st = get_id(g, "tokenizer.ggml.eos_token_id", &d.eos_id, err)) ||
        (st = get_id(g, "tokenizer.ggml.unknown_token_id", &d.unk_id, err)) ||
        (st = get_id(g, "tokenizer.ggml.padding_token_id", &d.pad_id, err)) ||
        (st = get_flag(g, "tokenizer.ggml.add_bos_token", &d.add_bos, err)) ||
        (st = get_flag(g, "tokenizer.ggml.add_eos_token", &d.add_eos, err)) ||
        (st = get_flag(g, "tokenizer.ggml.add_space_prefix", &d.add_space_prefix, err)))
        goto fail;
    st = xt_tokenizer_create(&d, out, err);
fail:
    free(tokens);
    free(merges);
    free(scores);
    free(types);
    return st;
}
