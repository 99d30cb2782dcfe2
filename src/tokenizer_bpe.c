/* Byte-level BPE (tokenizer.ggml.model = "gpt2"): pre-tokenizer regexes through PCRE2, GPT-2's
 * byte<->unicode alphabet, and ranked merges applied with a priority queue.
 *
 * GGUF names the pre-tokenizer (tokenizer.ggml.pre) but not its regex, so the regexes live in the
 * table below, written from the models' tokenizer.json. Two deliberate details match the
 * reference implementation we test against (transformers.js, JavaScript regexes with the u flag):
 * contractions are spelled with explicit [sS]-style classes rather than (?i:...) (which under
 * Unicode case folding would also accept U+017F 'ſ' for s), and whitespace is \s plus U+FEFF,
 * which JavaScript counts as whitespace and PCRE2 does not. */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* Inside a character class: JavaScript's \s. */
#define WS "\\s\\x{FEFF}"

static const xt_pretok_def pretoks[] = {
    {
        .name = "qwen2",
        .aliases = "qwen3 deepseek-r1-qwen",
        .regex = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                 "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
                 "|\\p{N}"
                 "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
                 "|[" WS "]*[\\r\\n]+"
                 "|[" WS "]+(?![^" WS "])"
                 "|[" WS "]+",
        .nfc = true,
    },
    {
        .name = "llama-bpe",
        .aliases = "llama3 llama-v3 smaug-bpe",
        .regex = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                 "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
                 "|\\p{N}{1,3}"
                 "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*"
                 "|[" WS "]*[\\r\\n]+"
                 "|[" WS "]+(?![^" WS "])"
                 "|[" WS "]+",
        .nfc = false,
        .ignore_merges = true,
    },
    {
        /* GPT-2's ByteLevel regex; OLMo and OLMoE ("olmo") use it unchanged. */
        .name = "gpt-2",
        .aliases = "default gpt2 olmo",
        .regex = "'s|'t|'re|'ve|'m|'ll|'d"
                 "| ?\\p{L}+"
                 "| ?\\p{N}+"
                 "| ?[^" WS "\\p{L}\\p{N}]+"
                 "|[" WS "]+(?![^" WS "])"
                 "|[" WS "]+",
        .nfc = false,
    },
};

static bool word_in_list(const char *list, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == wl && !memcmp(p, w, l)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

const xt_pretok_def *xt_pretok_find(const char *name)
{
    for (size_t i = 0; i < sizeof pretoks / sizeof pretoks[0]; i++)
        if (!strcmp(pretoks[i].name, name) || word_in_list(pretoks[i].aliases, name))
            return &pretoks[i];
    return NULL;
}

xt_status xt_pretok_compile(xt_tokenizer *tok, const char *vocab_name, xt_error *err)
{
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)tok->pretok->regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: pre-tokenizer '%s': regex does not compile at %zu: %s", vocab_name,
                            tok->pretok->name, (size_t)off, (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    tok->regex = (struct pcre2_real_code_8 *)re;
    return XT_OK;
}

void xt_pretok_free(xt_tokenizer *tok)
{
    pcre2_code_free((pcre2_code *)tok->regex);
    tok->regex = NULL;
}

xt_status xt_tok_normalize(const xt_tokenizer *tok, const char *s, size_t len, const char **out,
                           size_t *out_len, char **owned, xt_error *err)
{
    *out = s;
    *out_len = len;
    *owned = NULL;
    if (!tok->pretok || !tok->pretok->nfc) return XT_OK;
    size_t i = 0;
    while (i < len && (unsigned char)s[i] < 0x80)
        i++;
    if (i == len) return XT_OK; /* ASCII is NFC */
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0)
        return xt_error_set(err, n == UTF8PROC_ERROR_NOMEM ? XT_ERR_NO_MEMORY : XT_ERR_FORMAT,
                            "tokenize: NFC normalisation failed: %s", utf8proc_errmsg(n));
    *out = (const char *)dst;
    *out_len = (size_t)n;
    *owned = (char *)dst;
    return XT_OK;
}

/* GPT-2 maps the printable bytes 33..126, 161..172, 174..255 to themselves and the other 68
 * bytes, in order, to U+0100..U+0143, so every byte is a visible character. */
static bool byte_is_self(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

uint32_t xt_bytelevel_cp(uint8_t b)
{
    if (byte_is_self(b)) return b;
    uint32_t k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!byte_is_self(x)) k++;
    return 256 + k;
}

int xt_bytelevel_byte(uint32_t cp)
{
    if (cp < 256) return byte_is_self(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    for (unsigned x = 0; x < 256; x++)
        if (!byte_is_self(x) && k-- == 0) return (int)x;
    return -1;
}

/* ---- BPE merging ---------------------------------------------------------------------------- */

const xt_merge_slot *xt_merge_find(const xt_tokenizer *tok, int32_t left, int32_t right);

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
} bpe_sym;

/* A candidate merge of symbols `left` and its right neighbour. Stale entries (a side already
 * merged into something else) are recognised on pop by comparing ids. */
typedef struct bpe_cand {
    int32_t rank, left, right, left_id, right_id;
} bpe_cand;

typedef struct bpe_work {
    bpe_sym *syms;
    bpe_cand *heap;
    size_t cap, heap_n, heap_cap;
} bpe_work;

static bool cand_less(const bpe_cand *a, const bpe_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static bool heap_push(bpe_work *w, bpe_cand c)
{
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        bpe_cand *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return true;
}

static bpe_cand heap_pop(bpe_work *w)
{
    bpe_cand top = w->heap[0], last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const bpe_cand *best = &last;
        if (l < n && cand_less(&w->heap[l], best)) {
            m = l;
            best = &w->heap[l];
        }
        if (r < n && cand_less(&w->heap[r], best)) m = r;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

static bool try_candidate(const xt_tokenizer *tok, bpe_work *w, int32_t left)
{
    int32_t right = w->syms[left].next;
    if (right < 0 || w->syms[left].id < 0 || w->syms[right].id < 0) return true;
    const xt_merge_slot *m = xt_merge_find(tok, w->syms[left].id, w->syms[right].id);
    if (!m) return true;
    return heap_push(w, (bpe_cand){m->rank, left, right, w->syms[left].id, w->syms[right].id});
}

/* Encodes one word (the bytes of one pre-tokenizer match). */
static xt_status bpe_word(const xt_tokenizer *tok, bpe_work *w, const unsigned char *s, size_t len,
                          xt_tokens *out, xt_error *err)
{
    if (len == 1 && tok->byte_ids[s[0]] >= 0) return xt_tokens_push(out, tok->byte_ids[s[0]], err);
    /* HF's ignore_merges (Llama 3): a word that is a token is taken whole, whatever the merges
     * would make of it. Without it the merges decide, even for words that are tokens. */
    if (tok->pretok->ignore_merges) {
        int32_t whole = xt_str_map_find(&tok->map, tok->tokens, (const char *)s, len);
        if (whole >= 0) return xt_tokens_push(out, whole, err);
    }
    if (len > w->cap) {
        bpe_sym *p = realloc(w->syms, len * sizeof *p);
        if (!p) return xt_error_set(err, XT_ERR_NO_MEMORY, "tokenize: out of memory");
        w->syms = p;
        w->cap = len;
    }
    w->heap_n = 0;
    for (size_t i = 0; i < len; i++)
        w->syms[i] =
            (bpe_sym){tok->byte_ids[s[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1};
    for (size_t i = 0; i + 1 < len; i++)
        if (!try_candidate(tok, w, (int32_t)i)) goto oom;
    while (w->heap_n) {
        bpe_cand c = heap_pop(w);
        bpe_sym *l = &w->syms[c.left], *r = &w->syms[c.right];
        if (l->id != c.left_id || r->id != c.right_id || l->next != c.right) continue;
        const xt_merge_slot *m = xt_merge_find(tok, l->id, r->id);
        l->id = m->result;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = c.left;
        r->id = -2; /* dead */
        if (l->prev >= 0 && !try_candidate(tok, w, l->prev)) goto oom;
        if (!try_candidate(tok, w, c.left)) goto oom;
    }
    for (int32_t i = 0; i >= 0; i = w->syms[i].next) {
        int32_t id = w->syms[i].id;
        if (id < 0) id = tok->unk_id; /* a byte without a token: only in broken vocabularies */
        if (id < 0) continue;
        xt_status st = xt_tokens_push(out, id, err);
        if (st) return st;
    }
    return XT_OK;
oom:
    return xt_error_set(err, XT_ERR_NO_MEMORY, "tokenize: out of memory");
}

xt_status xt_bpe_encode_section(const xt_tokenizer *tok, const char *s, size_t len, xt_tokens *out,
                                xt_error *err)
{
    const pcre2_code *re = (const pcre2_code *)tok->regex;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    bpe_work w = {0};
    xt_status st = XT_OK;
    if (!md) return xt_error_set(err, XT_ERR_NO_MEMORY, "tokenize: out of memory");
    size_t pos = 0;
    while (pos < len) {
        uint32_t flags = PCRE2_NO_UTF_CHECK;
        int rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, flags, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
            rc = pcre2_match(re, (PCRE2_SPTR)s, len, pos, flags | PCRE2_NO_JIT, md, NULL);
        size_t mb = len, me = len;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            mb = ov[0];
            me = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = xt_error_set(err, XT_ERR_FORMAT,
                              "tokenize: pre-tokenizer regex failed at byte %zu: %s", pos,
                              (const char *)msg);
            goto done;
        }
        /* Text the regex skipped is a word of its own (HF's "isolated" split keeps it). */
        if (mb > pos &&
            (st = bpe_word(tok, &w, (const unsigned char *)s + pos, mb - pos, out, err)))
            goto done;
        if (me > mb && (st = bpe_word(tok, &w, (const unsigned char *)s + mb, me - mb, out, err)))
            goto done;
        if (me == mb) { /* empty match: step one character */
            if (mb >= len) break;
            size_t n = 1;
            while (mb + n < len && ((unsigned char)s[mb + n] & 0xc0) == 0x80)
                n++;
            if ((st = bpe_word(tok, &w, (const unsigned char *)s + mb, n, out, err))) goto done;
            me = mb + n;
        }
        pos = me;
    }
done:
    free(w.syms);
    free(w.heap);
    pcre2_match_data_free(md);
    return st;
}
