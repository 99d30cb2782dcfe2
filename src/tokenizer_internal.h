/* Private to src/tokenizer*.c: the tokenizer's tables and the per-model encoders.
 *
 * Every token keeps two strings: `piece`, as the vocabulary stores it, and `text`, what it stands
 * for in input bytes (byte-level BPE pieces are decoded from GPT-2's byte<->unicode alphabet;
 * SentencePiece pieces keep their U+2581 because SPM input is rewritten with it before matching).
 * Lookups go through `text`. */
#ifndef XT_TOKENIZER_INTERNAL_H
#define XT_TOKENIZER_INTERNAL_H

#include <stdint.h>

#include "expertrace/tokenizer.h"

typedef struct xt_tok_entry {
    char *piece; /* as stored, NUL-terminated (may hold NULs; use piece_len) */
    char *text;  /* bytes this token matches / decodes to; may alias piece */
    uint32_t piece_len;
    uint32_t text_len;
    float score;
    uint8_t type; /* xt_token_type */
} xt_tok_entry;

/* Open-addressing map from byte strings (the tokens' `text`) to ids; -1 marks empty slots. */
typedef struct xt_str_map {
    int32_t *slots;
    size_t mask; /* capacity - 1, capacity a power of two */
} xt_str_map;

/* Open-addressing map from a pair of ids to the merge's rank and result. */
typedef struct xt_merge_slot {
    uint64_t key; /* (left << 32) | right, UINT64_MAX when empty */
    int32_t rank;
    int32_t result;
} xt_merge_slot;

typedef struct xt_merge_map {
    xt_merge_slot *slots;
    size_t mask;
} xt_merge_map;

struct pcre2_real_code_8;

/* One pre-tokenizer: the regex that splits words and whether input is NFC-normalised first. */
typedef struct xt_pretok_def {
    const char *name;    /* canonical name */
    const char *aliases; /* other tokenizer.ggml.pre values, space separated */
    const char *regex;   /* PCRE2 syntax */
    bool nfc;
    bool ignore_merges; /* a word that is a token is not split (HF BPE ignore_merges) */
} xt_pretok_def;

struct xt_tokenizer {
    xt_vocab_kind kind;
    size_t n_tokens;
    xt_tok_entry *tokens;
    xt_str_map map;        /* text -> id, for tokens the models produce (not specials) */
    xt_merge_map merges;   /* BPE only */
    int32_t byte_ids[256]; /* token for each single byte (BPE: "Ġ" etc., SPM: <0xNN>); -1 */
    /* Special/added tokens, matched in input before pre-tokenization: ids sorted by first byte,
     * then by length descending; special_start[b] .. special_start[b+1] index into special_ids. */
    int32_t *special_ids;
    uint32_t special_start[257];
    const xt_pretok_def *pretok;
    struct pcre2_real_code_8 *regex; /* BPE only */
    int32_t bos_id, eos_id, unk_id, pad_id;
    bool add_bos, add_eos, add_space_prefix;
};

int32_t xt_str_map_find(const xt_str_map *m, const xt_tok_entry *tokens, const char *s, size_t len);

/* Model encoders: append the ids of one section of ordinary text (no special tokens inside) to
 * out. `first` says whether the section starts the input or follows a special token. */
xt_status xt_bpe_encode_section(const xt_tokenizer *tok, const char *s, size_t len, xt_tokens *out,
                                xt_error *err);
xt_status xt_spm_encode_section(const xt_tokenizer *tok, const char *s, size_t len, xt_tokens *out,
                                xt_error *err);

/* Pre-tokenizer table lookup by name (canonical or alias); NULL when unknown. */
const xt_pretok_def *xt_pretok_find(const char *name);
/* Compiles def->regex (JIT where available) into tok->regex. */
xt_status xt_pretok_compile(xt_tokenizer *tok, const char *vocab_name, xt_error *err);
void xt_pretok_free(xt_tokenizer *tok);

/* NFC-normalises s[0..len) when the pre-tokenizer asks for it; *out is s itself (and *owned
 * NULL) when nothing changes, else a malloc'd copy the caller frees through *owned. */
xt_status xt_tok_normalize(const xt_tokenizer *tok, const char *s, size_t len, const char **out,
                           size_t *out_len, char **owned, xt_error *err);

/* GPT-2's byte-level alphabet: the code point standing for byte b, and back (-1: none). */
uint32_t xt_bytelevel_cp(uint8_t b);
int xt_bytelevel_byte(uint32_t cp);

xt_status xt_tokens_push(xt_tokens *t, int32_t id, xt_error *err);

#endif
