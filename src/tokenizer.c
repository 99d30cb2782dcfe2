/* Tokenizer core: building the tables from an xt_vocab_desc, splitting input on special tokens,
 * BOS/EOS, decoding, and the helpers the tracer needs (subject spans, single-token answers).
 * The two model encoders live in tokenizer_bpe.c and tokenizer_spm.c; the GGUF adapter in
 * tokenizer_gguf.c.
 *
 * Reference behaviour is Hugging Face's (transformers.js in our oracle): special tokens are found
 * in the raw text first, longest match at the leftmost position, and each stretch of text between
 * them is normalised, pre-tokenized and encoded on its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* ---- small utilities ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

xt_status xt_tokens_push(xt_tokens *t, int32_t id, xt_error *err)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *p = realloc(t->ids, cap * sizeof *p);
        if (!p)
            return xt_error_set(err, XT_ERR_NO_MEMORY, "tokenizer: out of memory for %zu ids", cap);
        t->ids = p;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return XT_OK;
}

void xt_tokens_free(xt_tokens *t)
{
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

bool xt_utf8_valid(const char *str, size_t len, size_t *bad_offset)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else
            goto bad;
        if (len - i < n) goto bad;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) goto bad;
        i += n;
    }
    return true;
bad:
    if (bad_offset) *bad_offset = i;
    return false;
}

/* ---- maps ----------------------------------------------------------------------------------- */

int32_t xt_str_map_find(const xt_str_map *m, const xt_tok_entry *tokens, const char *s, size_t len)
{
    size_t i = (size_t)hash_bytes(s, len) & m->mask;
    for (;;) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        if (tokens[id].text_len == len && !memcmp(tokens[id].text, s, len)) return id;
        i = (i + 1) & m->mask;
    }
}

/* Inserts id unless a token with the same text is there already (the lower id wins). */
static void str_map_insert(xt_str_map *m, const xt_tok_entry *tokens, int32_t id)
{
    const xt_tok_entry *t = &tokens[id];
    size_t i = (size_t)hash_bytes(t->text, t->text_len) & m->mask;
    for (;;) {
        int32_t cur = m->slots[i];
        if (cur < 0) {
            m->slots[i] = id;
            return;
        }
        if (tokens[cur].text_len == t->text_len && !memcmp(tokens[cur].text, t->text, t->text_len))
            return;
        i = (i + 1) & m->mask;
    }
}

static const xt_merge_slot *merge_find(const xt_merge_map *m, int32_t left, int32_t right)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t i = (size_t)hash_u64(key) & m->mask;
    for (;;) {
        const xt_merge_slot *s = &m->slots[i];
        if (s->key == UINT64_MAX) return NULL;
        if (s->key == key) return s;
        i = (i + 1) & m->mask;
    }
}

/* Exposed to the BPE encoder through this small wrapper to keep the map private here. */
const xt_merge_slot *xt_merge_find(const xt_tokenizer *tok, int32_t left, int32_t right);
const xt_merge_slot *xt_merge_find(const xt_tokenizer *tok, int32_t left, int32_t right)
{
    return merge_find(&tok->merges, left, right);
}

/* ---- creation ------------------------------------------------------------------------------- */

/* Token types whose text the models match in ordinary input. */
static bool type_is_model_token(uint8_t type)
{
    return type == XT_TOKEN_NORMAL || type == XT_TOKEN_UNDEFINED || type == XT_TOKEN_USER_DEFINED;
}

/* Token types matched in raw input before pre-tokenization (HF "added tokens"). */
static bool type_is_special(uint8_t type)
{
    return type == XT_TOKEN_CONTROL || type == XT_TOKEN_USER_DEFINED || type == XT_TOKEN_UNKNOWN;
}

/* Decodes a byte-level BPE piece into the bytes it stands for. Returns false when the piece
 * holds a character outside GPT-2's byte alphabet (it is then matched as stored). */
static bool bytelevel_decode(const char *piece, size_t len, char *out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)piece;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        if (s[i] < 0x80) {
            cp = s[i];
            n = 1;
        } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < len) {
            cp = ((s[i] & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
            n = 2;
        } else
            return false; /* the alphabet ends at U+0143: one or two bytes of UTF-8 */
        int b = xt_bytelevel_byte(cp);
        if (b < 0) return false;
        out[o++] = (char)b;
        i += n;
    }
    *out_len = o;
    return true;
}

static int cmp_special(const void *a, const void *b, const xt_tok_entry *tokens)
{
    const xt_tok_entry *x = &tokens[*(const int32_t *)a], *y = &tokens[*(const int32_t *)b];
    unsigned char fx = (unsigned char)x->text[0], fy = (unsigned char)y->text[0];
    if (fx != fy) return fx < fy ? -1 : 1;
    if (x->text_len != y->text_len) return x->text_len > y->text_len ? -1 : 1;
    return *(const int32_t *)a < *(const int32_t *)b ? -1 : 1;
}

/* qsort has no context argument in C11: insertion into place keeps this simple and the special
 * token lists are short (tens to a few thousand). */
static void sort_specials(int32_t *ids, size_t n, const xt_tok_entry *tokens)
{
    for (size_t i = 1; i < n; i++) {
        int32_t v = ids[i];
        size_t j = i;
        while (j > 0 && cmp_special(&ids[j - 1], &v, tokens) > 0) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = v;
    }
}

static xt_status check_id(const char *name, const char *field, int32_t id, size_t n, xt_error *err)
{
    if (id != XT_TOKEN_NONE && (id < 0 || (size_t)id >= n))
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%s: %s = %d is outside the vocabulary of %zu tokens", name, field,
                            (int)id, n);
    return XT_OK;
}

static xt_status build_merges(xt_tokenizer *tok, const xt_vocab_desc *d, const char *name,
                              xt_error *err)
{
    size_t cap = pow2_at_least(d->n_merges * 2 + 1);
    tok->merges.slots = malloc(cap * sizeof *tok->merges.slots);
    if (!tok->merges.slots)
        return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory for merges", name);
    tok->merges.mask = cap - 1;
    for (size_t i = 0; i < cap; i++)
        tok->merges.slots[i].key = UINT64_MAX;

    char *buf = NULL;
    size_t buf_cap = 0;
    xt_status st = XT_OK;
    for (size_t r = 0; r < d->n_merges; r++) {
        const char *m = d->merges[r].ptr;
        size_t len = d->merges[r].len;
        const char *sp = m ? memchr(m, ' ', len) : NULL;
        if (!sp || sp == m || sp == m + len - 1) {
            st = xt_error_set(err, XT_ERR_FORMAT,
                              "%s: merge %zu ('%.*s') is not of the form 'left right'", name, r,
                              (int)(len > 64 ? 64 : len), m ? m : "");
            goto done;
        }
        size_t ll = (size_t)(sp - m), rl = len - ll - 1;
        /* Merges name pieces as stored; decode them to token text the way the tokens were. */
        if (buf_cap < len * 2 + 2) {
            free(buf);
            buf_cap = len * 2 + 64;
            buf = malloc(buf_cap);
            if (!buf) {
                st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
                goto done;
            }
        }
        size_t lt, rt;
        if (!bytelevel_decode(m, ll, buf, &lt)) {
            memcpy(buf, m, ll);
            lt = ll;
        }
        if (!bytelevel_decode(sp + 1, rl, buf + lt, &rt)) {
            memcpy(buf + lt, sp + 1, rl);
            rt = rl;
        }
        int32_t left = xt_str_map_find(&tok->map, tok->tokens, buf, lt);
        int32_t right = xt_str_map_find(&tok->map, tok->tokens, buf + lt, rt);
        int32_t result = xt_str_map_find(&tok->map, tok->tokens, buf, lt + rt);
        if (left < 0 || right < 0 || result < 0) {
            st = xt_error_set(err, XT_ERR_FORMAT,
                              "%s: merge %zu ('%.*s'): %s is not a token of the vocabulary", name,
                              r, (int)(len > 64 ? 64 : len), m,
                              left < 0    ? "the left part"
                              : right < 0 ? "the right part"
                                          : "the merged piece");
            goto done;
        }
        uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
        size_t i = (size_t)hash_u64(key) & tok->merges.mask;
        while (tok->merges.slots[i].key != UINT64_MAX && tok->merges.slots[i].key != key)
            i = (i + 1) & tok->merges.mask;
        if (tok->merges.slots[i].key == UINT64_MAX) { /* a repeated merge keeps its first rank */
            tok->merges.slots[i].key = key;
            tok->merges.slots[i].rank = (int32_t)r;
            tok->merges.slots[i].result = result;
        }
    }
done:
    free(buf);
    return st;
}

xt_status xt_tokenizer_create(const xt_vocab_desc *d, xt_tokenizer **out, xt_error *err)
{
    *out = NULL;
    const char *name = d->name ? d->name : "vocabulary";
    if (d->kind != XT_VOCAB_BPE && d->kind != XT_VOCAB_SPM)
        return xt_error_set(err, XT_ERR_UNSUPPORTED, "%s: unsupported tokenizer model kind %d",
                            name, (int)d->kind);
    if (d->n_tokens == 0 || !d->tokens)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: the vocabulary has no tokens", name);
    if (d->n_tokens > INT32_MAX)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: %zu tokens is more than ids can hold", name,
                            d->n_tokens);
    if (d->scores && d->n_scores != d->n_tokens)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: %zu scores for %zu tokens (sizes must match)",
                            name, d->n_scores, d->n_tokens);
    if (d->token_types && d->n_token_types != d->n_tokens)
        return xt_error_set(err, XT_ERR_FORMAT,
                            "%s: %zu token types for %zu tokens (sizes must match)", name,
                            d->n_token_types, d->n_tokens);
    if (d->kind == XT_VOCAB_BPE && (d->n_merges == 0 || !d->merges))
        return xt_error_set(err, XT_ERR_FORMAT, "%s: byte-level BPE vocabulary without merges",
                            name);
    if (d->kind == XT_VOCAB_SPM && !d->scores)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: SentencePiece vocabulary without scores",
                            name);
    xt_status st;
    if ((st = check_id(name, "bos_token_id", d->bos_id, d->n_tokens, err)) ||
        (st = check_id(name, "eos_token_id", d->eos_id, d->n_tokens, err)) ||
        (st = check_id(name, "unknown_token_id", d->unk_id, d->n_tokens, err)) ||
        (st = check_id(name, "padding_token_id", d->pad_id, d->n_tokens, err)))
        return st;

    const xt_pretok_def *pretok = NULL;
    if (d->kind == XT_VOCAB_BPE) {
        const char *pre = d->pre ? d->pre : "default";
        pretok = xt_pretok_find(pre);
        if (!pretok)
            return xt_error_set(err, XT_ERR_UNSUPPORTED,
                                "%s: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported",
                                name, pre);
    }

    xt_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
    tok->kind = d->kind;
    tok->n_tokens = d->n_tokens;
    tok->pretok = pretok;
    tok->bos_id = d->bos_id;
    tok->eos_id = d->eos_id;
    tok->unk_id = d->unk_id;
    tok->pad_id = d->pad_id;
    tok->add_bos = d->add_bos < 0 ? d->kind == XT_VOCAB_SPM : d->add_bos != 0;
    tok->add_eos = d->add_eos > 0;
    tok->add_space_prefix =
        d->add_space_prefix < 0 ? d->kind == XT_VOCAB_SPM : d->add_space_prefix != 0;
    for (int b = 0; b < 256; b++)
        tok->byte_ids[b] = -1;

    tok->tokens = calloc(d->n_tokens, sizeof *tok->tokens);
    if (!tok->tokens) {
        st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
        goto fail;
    }
    for (size_t i = 0; i < d->n_tokens; i++) {
        xt_tok_entry *t = &tok->tokens[i];
        const xt_strview *p = &d->tokens[i];
        if (!p->ptr && p->len) {
            st = xt_error_set(err, XT_ERR_FORMAT, "%s: token %zu has no bytes", name, i);
            goto fail;
        }
        if (p->len > UINT32_MAX / 2) {
            st = xt_error_set(err, XT_ERR_FORMAT, "%s: token %zu is too long", name, i);
            goto fail;
        }
        int32_t type = d->token_types ? d->token_types[i] : XT_TOKEN_NORMAL;
        if (type < XT_TOKEN_UNDEFINED || type > XT_TOKEN_BYTE) {
            st = xt_error_set(err, XT_ERR_FORMAT, "%s: token %zu has unknown type %d", name, i,
                              (int)type);
            goto fail;
        }
        t->type = (uint8_t)type;
        t->score = d->scores ? d->scores[i] : 0.0f;
        t->piece = malloc(p->len + 1);
        if (!t->piece) {
            st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
            goto fail;
        }
        if (p->len) memcpy(t->piece, p->ptr, p->len);
        t->piece[p->len] = 0;
        t->piece_len = (uint32_t)p->len;
        t->text = t->piece;
        t->text_len = t->piece_len;
        if (d->kind == XT_VOCAB_BPE && type_is_model_token(t->type) &&
            t->type != XT_TOKEN_USER_DEFINED) {
            char *raw = malloc(p->len + 1);
            size_t rl;
            if (!raw) {
                st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
                goto fail;
            }
            if (bytelevel_decode(t->piece, t->piece_len, raw, &rl)) {
                raw[rl] = 0;
                t->text = raw;
                t->text_len = (uint32_t)rl;
            } else {
                free(raw);
            }
        }
    }

    /* Lookup map over the tokens models produce. */
    size_t cap = pow2_at_least(d->n_tokens * 2 + 1);
    tok->map.slots = malloc(cap * sizeof *tok->map.slots);
    if (!tok->map.slots) {
        st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
        goto fail;
    }
    tok->map.mask = cap - 1;
    memset(tok->map.slots, 0xff, cap * sizeof *tok->map.slots);
    size_t n_special = 0;
    for (size_t i = 0; i < d->n_tokens; i++) {
        const xt_tok_entry *t = &tok->tokens[i];
        if (type_is_model_token(t->type) && t->text_len)
            str_map_insert(&tok->map, tok->tokens, (int32_t)i);
        if (type_is_special(t->type) && t->text_len) n_special++;
    }

    /* Single-byte tokens: BPE's alphabet, SPM's <0xNN> byte fallback. */
    for (size_t i = 0; i < d->n_tokens; i++) {
        const xt_tok_entry *t = &tok->tokens[i];
        if (d->kind == XT_VOCAB_BPE && type_is_model_token(t->type) && t->text_len == 1 &&
            t->text != t->piece) {
            unsigned char b = (unsigned char)t->text[0];
            if (tok->byte_ids[b] < 0) tok->byte_ids[b] = (int32_t)i;
        } else if (d->kind == XT_VOCAB_SPM && t->type == XT_TOKEN_BYTE && t->piece_len == 6 &&
                   !memcmp(t->piece, "<0x", 3) && t->piece[5] == '>') {
            unsigned v = (unsigned)strtoul(t->piece + 3, NULL, 16);
            if (v < 256 && tok->byte_ids[v] < 0) tok->byte_ids[v] = (int32_t)i;
        }
    }

    /* Special tokens by first byte, longest first. */
    tok->special_ids = malloc((n_special ? n_special : 1) * sizeof *tok->special_ids);
    if (!tok->special_ids) {
        st = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of memory", name);
        goto fail;
    }
    size_t k = 0;
    for (size_t i = 0; i < d->n_tokens; i++)
        if (type_is_special(tok->tokens[i].type) && tok->tokens[i].text_len)
            tok->special_ids[k++] = (int32_t)i;
    sort_specials(tok->special_ids, n_special, tok->tokens);
    {
        size_t j = 0;
        for (unsigned b = 0; b < 256; b++) {
            tok->special_start[b] = (uint32_t)j;
            while (j < n_special && (unsigned char)tok->tokens[tok->special_ids[j]].text[0] == b)
                j++;
        }
        tok->special_start[256] = (uint32_t)j;
    }

    if (d->kind == XT_VOCAB_BPE) {
        if ((st = build_merges(tok, d, name, err))) goto fail;
        if ((st = xt_pretok_compile(tok, name, err))) goto fail;
    }
    *out = tok;
    return XT_OK;
fail:
    xt_tokenizer_destroy(tok);
    return st;
}

void xt_tokenizer_destroy(xt_tokenizer *tok)
{
    if (!tok) return;
    if (tok->tokens) {
        for (size_t i = 0; i < tok->n_tokens; i++) {
            if (tok->tokens[i].text != tok->tokens[i].piece) free(tok->tokens[i].text);
            free(tok->tokens[i].piece);
        }
    }
    free(tok->tokens);
    free(tok->map.slots);
    free(tok->merges.slots);
    free(tok->special_ids);
    xt_pretok_free(tok);
    free(tok);
}

/* ---- accessors ------------------------------------------------------------------------------ */

xt_vocab_kind xt_tokenizer_kind(const xt_tokenizer *tok)
{
    return tok->kind;
}
const char *xt_tokenizer_pre(const xt_tokenizer *tok)
{
    return tok->pretok ? tok->pretok->name : "spm";
}
size_t xt_tokenizer_n_tokens(const xt_tokenizer *tok)
{
    return tok->n_tokens;
}
int32_t xt_tokenizer_bos(const xt_tokenizer *tok)
{
    return tok->bos_id;
}
int32_t xt_tokenizer_eos(const xt_tokenizer *tok)
{
    return tok->eos_id;
}
bool xt_tokenizer_adds_bos(const xt_tokenizer *tok)
{
    return tok->add_bos;
}

xt_token_type xt_tokenizer_token_type(const xt_tokenizer *tok, int32_t id)
{
    if (id < 0 || (size_t)id >= tok->n_tokens) return XT_TOKEN_UNDEFINED;
    return (xt_token_type)tok->tokens[id].type;
}

xt_strview xt_tokenizer_piece(const xt_tokenizer *tok, int32_t id)
{
    if (id < 0 || (size_t)id >= tok->n_tokens) return (xt_strview){NULL, 0};
    return (xt_strview){tok->tokens[id].piece, tok->tokens[id].piece_len};
}

bool xt_bos_mode_parse(const char *s, xt_bos_mode *out)
{
    if (!strcmp(s, "auto"))
        *out = XT_BOS_AUTO;
    else if (!strcmp(s, "on"))
        *out = XT_BOS_ON;
    else if (!strcmp(s, "off"))
        *out = XT_BOS_OFF;
    else
        return false;
    return true;
}

const char *xt_bos_mode_name(xt_bos_mode m)
{
    return m == XT_BOS_ON ? "on" : m == XT_BOS_OFF ? "off" : "auto";
}

/* ---- encoding ------------------------------------------------------------------------------- */

/* The longest special token starting at s[0], or -1. */
static int32_t match_special(const xt_tokenizer *tok, const char *s, size_t len)
{
    unsigned b = (unsigned char)s[0];
    for (uint32_t j = tok->special_start[b]; j < tok->special_start[b + 1]; j++) {
        const xt_tok_entry *t = &tok->tokens[tok->special_ids[j]];
        if (t->text_len <= len && !memcmp(t->text, s, t->text_len)) return tok->special_ids[j];
    }
    return -1;
}

static xt_status encode_section(const xt_tokenizer *tok, const char *s, size_t len, xt_tokens *out,
                                xt_error *err)
{
    if (len == 0) return XT_OK;
    const char *norm;
    size_t norm_len;
    char *owned = NULL;
    xt_status st = xt_tok_normalize(tok, s, len, &norm, &norm_len, &owned, err);
    if (st) return st;
    if (tok->kind == XT_VOCAB_BPE)
        st = xt_bpe_encode_section(tok, norm, norm_len, out, err);
    else
        st = xt_spm_encode_section(tok, norm, norm_len, out, err);
    free(owned);
    return st;
}

xt_status xt_tokenize(const xt_tokenizer *tok, const char *text, size_t len,
                      const xt_encode_opts *opts, xt_tokens *out, xt_error *err)
{
    static const xt_encode_opts defaults = {0};
    if (!opts) opts = &defaults;
    out->n = 0;
    size_t bad;
    if (len && !text)
        return xt_error_set(err, XT_ERR_FORMAT, "tokenize: NULL text of %zu bytes", len);
    if (!xt_utf8_valid(text, len, &bad))
        return xt_error_set(err, XT_ERR_FORMAT,
                            "tokenize: invalid UTF-8 at byte offset %zu (byte 0x%02x)", bad,
                            (unsigned)(unsigned char)text[bad]);
    xt_status st;
    bool bos = opts->bos == XT_BOS_ON || (opts->bos == XT_BOS_AUTO && tok->add_bos);
    if (bos) {
        if (tok->bos_id == XT_TOKEN_NONE)
            return xt_error_set(err, XT_ERR_NOT_FOUND,
                                "tokenize: BOS requested but the vocabulary has no BOS token");
        if ((st = xt_tokens_push(out, tok->bos_id, err))) goto fail;
    }
    size_t start = 0;
    if (!opts->split_special && tok->special_start[256] > 0) {
        for (size_t i = 0; i < len;) {
            int32_t id = match_special(tok, text + i, len - i);
            if (id < 0) {
                i++;
                continue;
            }
            if ((st = encode_section(tok, text + start, i - start, out, err))) goto fail;
            if ((st = xt_tokens_push(out, id, err))) goto fail;
            i += tok->tokens[id].text_len;
            start = i;
        }
    }
    if ((st = encode_section(tok, text + start, len - start, out, err))) goto fail;
    if (opts->add_eos || (opts->bos == XT_BOS_AUTO && tok->add_eos)) {
        if (tok->eos_id == XT_TOKEN_NONE) {
            st = xt_error_set(err, XT_ERR_NOT_FOUND,
                              "tokenize: EOS requested but the vocabulary has no EOS token");
            goto fail;
        }
        if ((st = xt_tokens_push(out, tok->eos_id, err))) goto fail;
    }
    return XT_OK;
fail:
    out->n = 0;
    return st;
}

/* ---- decoding ------------------------------------------------------------------------------- */

typedef struct byte_buf {
    char *p;
    size_t n, cap;
} byte_buf;

static bool buf_put(byte_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

/* Decodes ids; ends[i] (when not NULL) receives the output length after token i. */
static xt_status decode_impl(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                             const xt_decode_opts *opts, byte_buf *b, size_t *ends, xt_error *err)
{
    static const xt_decode_opts defaults = {0};
    if (!opts) opts = &defaults;
    bool at_start = true; /* only control tokens so far: SPM's prefix space is still to strip */
    if (!buf_put(b, NULL, 0)) goto oom;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (size_t)id >= tok->n_tokens)
            return xt_error_set(
                err, XT_ERR_RANGE,
                "detokenize: id %d at position %zu is outside the vocabulary of %zu tokens",
                (int)id, i, tok->n_tokens);
        const xt_tok_entry *t = &tok->tokens[id];
        if (t->type == XT_TOKEN_CONTROL) {
            if (!opts->skip_special && !buf_put(b, t->piece, t->piece_len)) goto oom;
        } else if (tok->kind == XT_VOCAB_BPE) {
            if (!buf_put(b, t->text, t->text_len)) goto oom;
            at_start = false;
        } else if (t->type == XT_TOKEN_BYTE) {
            char c = (char)strtoul(t->piece + 3, NULL, 16);
            if (!buf_put(b, &c, 1)) goto oom;
            at_start = false;
        } else if (t->type == XT_TOKEN_UNKNOWN) {
            if (!buf_put(b, t->piece, t->piece_len)) goto oom;
            at_start = false;
        } else {
            /* SPM piece: U+2581 (e2 96 81) stands for a space. */
            const char *p = t->piece;
            size_t len = t->piece_len, k = 0;
            if (at_start && tok->add_space_prefix && len >= 3 && !memcmp(p, "\xe2\x96\x81", 3))
                k = 3;
            while (k < len) {
                if (k + 3 <= len && !memcmp(p + k, "\xe2\x96\x81", 3)) {
                    if (!buf_put(b, " ", 1)) goto oom;
                    k += 3;
                } else {
                    if (!buf_put(b, p + k, 1)) goto oom;
                    k++;
                }
            }
            at_start = false;
        }
        if (ends) ends[i] = b->n;
    }
    return XT_OK;
oom:
    return xt_error_set(err, XT_ERR_NO_MEMORY, "detokenize: out of memory");
}

xt_status xt_detokenize(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                        const xt_decode_opts *opts, char **text, size_t *len, xt_error *err)
{
    byte_buf b = {0};
    *text = NULL;
    if (len) *len = 0;
    xt_status st = decode_impl(tok, ids, n, opts, &b, NULL, err);
    if (st) {
        free(b.p);
        return st;
    }
    *text = b.p;
    if (len) *len = b.n;
    return XT_OK;
}

xt_status xt_tokenizer_token_range(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                                   size_t byte_begin, size_t byte_end, size_t *begin, size_t *end,
                                   xt_error *err)
{
    byte_buf b = {0};
    size_t *ends = malloc((n ? n : 1) * sizeof *ends);
    if (!ends) return xt_error_set(err, XT_ERR_NO_MEMORY, "token range: out of memory");
    xt_status st = decode_impl(tok, ids, n, NULL, &b, ends, err);
    if (st) goto done;
    if (byte_begin >= byte_end || byte_end > b.n) {
        st = xt_error_set(
            err, XT_ERR_RANGE,
            "token range: bytes [%zu, %zu) are not a non-empty range of the %zu decoded bytes",
            byte_begin, byte_end, b.n);
        goto done;
    }
    size_t tb = n, te = n;
    for (size_t i = 0; i < n; i++) {
        if (tb == n && ends[i] > byte_begin) tb = i;
        if (ends[i] >= byte_end) {
            te = i + 1;
            break;
        }
    }
    *begin = tb;
    *end = te;
done:
    free(ends);
    free(b.p);
    return st;
}

xt_status xt_tokenizer_find_subject(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                                    const char *subject, size_t subject_len, size_t *begin,
                                    size_t *end, xt_error *err)
{
    size_t bad;
    if (!xt_utf8_valid(subject, subject_len, &bad))
        return xt_error_set(err, XT_ERR_FORMAT, "subject: invalid UTF-8 at byte offset %zu", bad);
    if (subject_len == 0) return xt_error_set(err, XT_ERR_RANGE, "subject: empty subject");
    const char *norm;
    size_t norm_len;
    char *owned = NULL;
    xt_status st = xt_tok_normalize(tok, subject, subject_len, &norm, &norm_len, &owned, err);
    if (st) return st;
    char *text = NULL;
    size_t text_len;
    if ((st = xt_detokenize(tok, ids, n, NULL, &text, &text_len, err))) goto done;
    size_t at = SIZE_MAX;
    for (size_t i = 0; norm_len <= text_len && i + norm_len <= text_len; i++)
        if (!memcmp(text + i, norm, norm_len)) {
            at = i;
            break;
        }
    if (at == SIZE_MAX) {
        st = xt_error_set(err, XT_ERR_NOT_FOUND, "subject '%.*s' does not occur in the prompt",
                          (int)(subject_len > 200 ? 200 : subject_len), subject);
        goto done;
    }
    st = xt_tokenizer_token_range(tok, ids, n, at, at + norm_len, begin, end, err);
done:
    free(text);
    free(owned);
    return st;
}

xt_status xt_tokenizer_resolve_answer(const xt_tokenizer *tok, const char *answer, size_t len,
                                      int32_t *id, xt_answer_form *form, xt_error *err)
{
    xt_encode_opts opts = {.bos = XT_BOS_OFF};
    xt_tokens t = {0};
    char *spaced = NULL;
    size_t n_plain;
    xt_status st = xt_tokenize(tok, answer, len, &opts, &t, err);
    if (st) goto done;
    if (t.n == 1) {
        *id = t.ids[0];
        if (form) *form = XT_ANSWER_AS_IS;
        goto done;
    }
    n_plain = t.n;
    spaced = malloc(len + 2);
    if (!spaced) {
        st = xt_error_set(err, XT_ERR_NO_MEMORY, "answer: out of memory");
        goto done;
    }
    spaced[0] = ' ';
    if (len) memcpy(spaced + 1, answer, len);
    spaced[len + 1] = 0;
    if ((st = xt_tokenize(tok, spaced, len + 1, &opts, &t, err))) goto done;
    if (t.n == 1) {
        *id = t.ids[0];
        if (form) *form = XT_ANSWER_LEADING_SPACE;
        goto done;
    }
    st = xt_error_set(
        err, XT_ERR_NOT_FOUND,
        "answer '%.*s' is not a single token: %zu tokens as is, %zu with a leading space",
        (int)(len > 200 ? 200 : len), answer, n_plain, t.n);
done:
    free(spaced);
    xt_tokens_free(&t);
    return st;
}
