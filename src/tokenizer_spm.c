/* SentencePiece BPE (tokenizer.ggml.model = "llama"): the text gets a leading space (the
 * add-space-prefix rule, per stretch of text between special tokens), spaces become U+2581, and
 * adjacent pieces are merged while their concatenation is a token, highest score first (leftmost
 * on ties). Characters that end up outside the vocabulary fall back to <0xNN> byte tokens, or to
 * the unknown token where a byte token is missing. No pre-tokenization: a whole stretch of text
 * is one word, so merging uses a priority queue. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct spm_sym {
    uint32_t start, len;
    int32_t prev, next; /* -1 at the ends */
} spm_sym;

typedef struct spm_cand {
    float score;
    int32_t left, right;
    uint32_t len; /* bytes of the merged piece: detects stale entries */
} spm_cand;

static bool cand_better(const spm_cand *a, const spm_cand *b)
{
    return a->score != b->score ? a->score > b->score : a->left < b->left;
}

typedef struct spm_heap {
    spm_cand *v;
    size_t n, cap;
} spm_heap;

static bool heap_push(spm_heap *h, spm_cand c)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_cand *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_better(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

static spm_cand heap_pop(spm_heap *h)
{
    spm_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const spm_cand *best = &last;
        if (l < n && cand_better(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < n && cand_better(&h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (n) h->v[i] = last;
    return top;
}

static bool try_pair(const xt_tokenizer *tok, const char *text, const spm_sym *syms, int32_t left,
                     spm_heap *h)
{
    int32_t right = syms[left].next;
    if (right < 0) return true;
    uint32_t len = syms[left].len + syms[right].len;
    int32_t id = xt_str_map_find(&tok->map, tok->tokens, text + syms[left].start, len);
    if (id < 0) return true;
    return heap_push(h, (spm_cand){tok->tokens[id].score, left, right, len});
}

xt_status xt_spm_encode_section(const xt_tokenizer *tok, const char *s, size_t len, xt_tokens *out,
                                xt_error *err)
{
    static const char marker[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 */
    xt_status st = XT_OK;
    size_t n_spaces = 0;
    for (size_t i = 0; i < len; i++)
        n_spaces += s[i] == ' ';
    size_t cap = len + 2 * n_spaces + 3;
    char *text = malloc(cap);
    spm_sym *syms = malloc(cap * sizeof *syms);
    spm_heap h = {0};
    if (!text || !syms) goto oom;

    size_t n = 0;
    if (tok->add_space_prefix) {
        memcpy(text, marker, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(text + n, marker, 3);
            n += 3;
        } else {
            text[n++] = s[i];
        }
    }

    /* One symbol per character. */
    int32_t n_syms = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)text[i];
        uint32_t cl = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + cl > n) cl = (uint32_t)(n - i);
        syms[n_syms] = (spm_sym){(uint32_t)i, cl, n_syms - 1, -1};
        if (n_syms > 0) syms[n_syms - 1].next = n_syms;
        n_syms++;
        i += cl;
    }
    for (int32_t i = 0; i + 1 < n_syms; i++)
        if (!try_pair(tok, text, syms, i, &h)) goto oom;
    while (h.n) {
        spm_cand c = heap_pop(&h);
        spm_sym *l = &syms[c.left], *r = &syms[c.right];
        if (l->len == 0 || r->len == 0 || l->next != c.right || l->len + r->len != c.len) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = c.left;
        r->len = 0;
        if (l->prev >= 0 && !try_pair(tok, text, syms, l->prev, &h)) goto oom;
        if (!try_pair(tok, text, syms, c.left, &h)) goto oom;
    }
    for (int32_t i = n_syms ? 0 : -1; i >= 0; i = syms[i].next) {
        int32_t id = xt_str_map_find(&tok->map, tok->tokens, text + syms[i].start, syms[i].len);
        if (id >= 0) {
            if ((st = xt_tokens_push(out, id, err))) goto done;
            continue;
        }
        /* Byte fallback, all or nothing per piece (an unknown token when any byte is missing). */
        bool all = true;
        for (uint32_t k = 0; k < syms[i].len; k++)
            all = all && tok->byte_ids[(unsigned char)text[syms[i].start + k]] >= 0;
        if (all) {
            for (uint32_t k = 0; k < syms[i].len; k++)
                if ((st = xt_tokens_push(out, tok->byte_ids[(unsigned char)text[syms[i].start + k]],
                                         err)))
                    goto done;
        } else if (tok->unk_id >= 0) {
            if ((st = xt_tokens_push(out, tok->unk_id, err))) goto done;
        }
    }
    goto done;
oom:
    st = xt_error_set(err, XT_ERR_NO_MEMORY, "tokenize: out of memory");
done:
    free(text);
    free(syms);
    free(h.v);
    return st;
}
