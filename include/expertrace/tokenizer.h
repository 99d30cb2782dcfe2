/* Tokenizer: text <-> token ids exactly as the model's own tokenizer does it, built from the
 * vocabulary a GGUF file carries (tokenizer.ggml.*).
 *
 *     xt_tokenizer *tok;
 *     if (xt_tokenizer_create_from_gguf(g, &tok, &err)) return xt_cli_fail(&err);
 *     xt_tokens ids = {0};
 *     xt_tokenize(tok, text, strlen(text), &(xt_encode_opts){.bos = XT_BOS_OFF}, &ids, &err);
 *     ...
 *     xt_tokens_free(&ids);
 *     xt_tokenizer_destroy(tok);
 *
 * Two model kinds: byte-level BPE ("gpt2": Qwen2/3, Llama 3, OLMo/OLMoE, GPT-2) with a named
 * pre-tokenizer regex and ranked merges, and SentencePiece BPE ("llama": Llama 2, Mistral,
 * Mixtral) with scores, the U+2581 space marker and <0xNN> byte fallback.
 *
 * Special and added tokens (GGUF token types CONTROL, USER_DEFINED, UNKNOWN) are matched in the
 * text before pre-tokenization, longest first, as Hugging Face tokenizers do by default: user text
 * containing "<|im_start|>" yields that token's id. Set xt_encode_opts.split_special to tokenize
 * such text as plain characters instead (llama.cpp's parse_special=false, HF's
 * split_special_tokens=True).
 *
 * The core is built from an in-memory descriptor (xt_vocab_desc) so that it can be tested without
 * files; xt_tokenizer_create_from_gguf reads the descriptor from a GGUF file. A tokenizer is
 * immutable after creation and may be used from several threads at once.
 */
#ifndef EXPERTRACE_TOKENIZER_H
#define EXPERTRACE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expertrace/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct xt_gguf;

typedef enum xt_vocab_kind {
    XT_VOCAB_NONE = 0,
    XT_VOCAB_BPE = 1, /* tokenizer.ggml.model = "gpt2": byte-level BPE with merges */
    XT_VOCAB_SPM = 2, /* tokenizer.ggml.model = "llama": SentencePiece BPE with scores */
} xt_vocab_kind;

/* Token types; the numbers are GGUF's (tokenizer.ggml.token_type). */
typedef enum xt_token_type {
    XT_TOKEN_UNDEFINED = 0,
    XT_TOKEN_NORMAL = 1,
    XT_TOKEN_UNKNOWN = 2,
    XT_TOKEN_CONTROL = 3,
    XT_TOKEN_USER_DEFINED = 4,
    XT_TOKEN_UNUSED = 5,
    XT_TOKEN_BYTE = 6,
} xt_token_type;

/* A byte string that need not be NUL-terminated. */
typedef struct xt_strview {
    const char *ptr;
    size_t len;
} xt_strview;

#define XT_TOKEN_NONE (-1)

/* Everything a tokenizer is built from. Arrays are read during xt_tokenizer_create only (the
 * tokenizer copies what it keeps). Start from XT_VOCAB_DESC_INIT: ids default to "none" and
 * flags to the model kind's default. */
typedef struct xt_vocab_desc {
    xt_vocab_kind kind;
    const char *pre;  /* pre-tokenizer name (tokenizer.ggml.pre); NULL: "default" */
    const char *name; /* names the vocabulary in messages (e.g. the file); may be NULL */
    size_t n_tokens;
    /* [n_tokens] as stored: byte-level unicode for BPE, with U+2581 for SPM */
    const xt_strview *tokens;
    size_t n_scores;
    const float *scores; /* [n_scores]; required for SPM, must equal n_tokens when given */
    size_t n_token_types;
    const int32_t *token_types; /* [n_token_types] xt_token_type; NULL: all NORMAL */
    size_t n_merges;
    const xt_strview *merges; /* [n_merges] "left right", rank order; required for BPE */
    int32_t bos_id, eos_id, unk_id, pad_id; /* XT_TOKEN_NONE when absent */
    int add_bos;                            /* -1: kind default (SPM yes, BPE no); 0; 1 */
    int add_eos;                            /* -1: no; 0; 1 */
    int add_space_prefix;                   /* -1: kind default (SPM yes, BPE no); 0; 1 */
} xt_vocab_desc;

#define XT_VOCAB_DESC_INIT                                                                         \
    {.bos_id = XT_TOKEN_NONE,                                                                      \
     .eos_id = XT_TOKEN_NONE,                                                                      \
     .unk_id = XT_TOKEN_NONE,                                                                      \
     .pad_id = XT_TOKEN_NONE,                                                                      \
     .add_bos = -1,                                                                                \
     .add_eos = -1,                                                                                \
     .add_space_prefix = -1}

typedef struct xt_tokenizer xt_tokenizer;

/* Builds a tokenizer from desc. Errors (XT_ERR_FORMAT unless noted), each naming the vocabulary
 * and the field: no tokens; scores/token_types arrays whose sizes differ from the token count;
 * BPE without merges or with a merge that is not "left right" over tokens of the vocabulary;
 * SPM without scores; special ids out of range; an unknown pre-tokenizer (XT_ERR_UNSUPPORTED);
 * XT_ERR_NO_MEMORY. */
xt_status xt_tokenizer_create(const xt_vocab_desc *desc, xt_tokenizer **out, xt_error *err);

/* Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, bos_token_id,
 * eos_token_id, unknown_token_id, padding_token_id, add_bos_token, add_eos_token,
 * add_space_prefix} from g and builds the tokenizer. Messages name the file and key. */
xt_status xt_tokenizer_create_from_gguf(const struct xt_gguf *g, xt_tokenizer **out, xt_error *err);

void xt_tokenizer_destroy(xt_tokenizer *tok); /* NULL is fine */

xt_vocab_kind xt_tokenizer_kind(const xt_tokenizer *tok);
const char *xt_tokenizer_pre(const xt_tokenizer *tok); /* canonical pre-tokenizer name */
size_t xt_tokenizer_n_tokens(const xt_tokenizer *tok);
int32_t xt_tokenizer_bos(const xt_tokenizer *tok); /* XT_TOKEN_NONE when absent */
int32_t xt_tokenizer_eos(const xt_tokenizer *tok);
bool xt_tokenizer_adds_bos(const xt_tokenizer *tok); /* the vocabulary's add_bos_token */
xt_token_type xt_tokenizer_token_type(const xt_tokenizer *tok, int32_t id);
/* The token's string as stored in the vocabulary (e.g. "Ġthe", "▁the", "<0x0A>"); len 0 and
 * ptr NULL for ids out of range. Valid until xt_tokenizer_destroy. */
xt_strview xt_tokenizer_piece(const xt_tokenizer *tok, int32_t id);

/* BOS policy (DESIGN.md §4: the Mixtral result depends on it). AUTO follows add_bos_token. */
typedef enum xt_bos_mode { XT_BOS_AUTO = 0, XT_BOS_ON = 1, XT_BOS_OFF = 2 } xt_bos_mode;

/* "auto", "on", "off" -> mode; false for anything else. */
bool xt_bos_mode_parse(const char *s, xt_bos_mode *out);
const char *xt_bos_mode_name(xt_bos_mode m);

typedef struct xt_encode_opts {
    xt_bos_mode bos;
    bool add_eos;       /* append EOS (when the vocabulary has one) */
    bool split_special; /* treat special-token text in the input as plain text */
} xt_encode_opts;

/* A growable id list. Zero-initialise; free with xt_tokens_free. */
typedef struct xt_tokens {
    int32_t *ids;
    size_t n;
    size_t cap;
} xt_tokens;

void xt_tokens_free(xt_tokens *t);

/* Appends the ids of text[0..len) to out (which is reset first). opts may be NULL (defaults).
 * Invalid UTF-8 fails with XT_ERR_FORMAT naming the byte offset; out is then empty. */
xt_status xt_tokenize(const xt_tokenizer *tok, const char *text, size_t len,
                      const xt_encode_opts *opts, xt_tokens *out, xt_error *err);

typedef struct xt_decode_opts {
    bool skip_special; /* drop CONTROL tokens (BOS, EOS, <|im_start|>, ...) */
} xt_decode_opts;

/* Decodes ids to bytes: byte-level tokens back to their bytes, "▁" to spaces, <0xNN> to the byte,
 * special tokens to their text, and (SPM) the prefix space added at encode removed, so that
 * decode(encode(text)) == text for any valid text encoded without BOS/EOS. The result may be
 * invalid UTF-8 when ids split a character. *text is malloc'd and NUL-terminated (the caller
 * frees it); *len excludes the NUL. Out-of-range ids fail with XT_ERR_RANGE. */
xt_status xt_detokenize(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                        const xt_decode_opts *opts, char **text, size_t *len, xt_error *err);

/* The token range [*begin, *end) of ids covering bytes [byte_begin, byte_end) of the decoded
 * text (xt_detokenize with default options): the first token whose text ends after byte_begin to
 * the first token whose text reaches byte_end — ROME's find_token_range rule. XT_ERR_RANGE when
 * the bytes lie outside the decoded text or the range is empty. */
xt_status xt_tokenizer_token_range(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                                   size_t byte_begin, size_t byte_end, size_t *begin, size_t *end,
                                   xt_error *err);

/* The token range of the first occurrence of subject in the decoded text of ids (ROME's rule),
 * the subject normalised as the tokenizer normalises input. XT_ERR_NOT_FOUND when absent. */
xt_status xt_tokenizer_find_subject(const xt_tokenizer *tok, const int32_t *ids, size_t n,
                                    const char *subject, size_t subject_len, size_t *begin,
                                    size_t *end, xt_error *err);

/* How an answer string became one token (DESIGN.md §4). */
typedef enum xt_answer_form {
    XT_ANSWER_AS_IS = 1,         /* the string itself is one token */
    XT_ANSWER_LEADING_SPACE = 2, /* " " + the string is one token */
} xt_answer_form;

/* Resolves an answer (a target string) to one token id, encoded without BOS/EOS: the string's own
 * token if it is a single token, else the token of " " + string if that is one. When neither is
 * a single token, returns XT_ERR_NOT_FOUND with a message giving both token counts. */
xt_status xt_tokenizer_resolve_answer(const xt_tokenizer *tok, const char *answer, size_t len,
                                      int32_t *id, xt_answer_form *form, xt_error *err);

/* Checks that s[0..len) is UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Returns true, or false with *bad_offset set to the first offending byte. */
bool xt_utf8_valid(const char *s, size_t len, size_t *bad_offset);

#ifdef __cplusplus
}
#endif

#endif
