/* A GGUF model as the engine sees it: the architecture, its hyper-parameters (llama.cpp's defaults
 * where a key is absent), the map from each layer's role to its tensor, and the memory plan of
 * putting the weights on a device. Host side only: nothing is uploaded here (see src/forward.h).
 *
 *     xt_model *m;
 *     if (xt_model_open("qwen3moe.gguf", &m, &err)) return xt_cli_fail(&err);
 *     const xt_hparams *hp = xt_model_hparams(m);
 *     xt_mem_plan plan;
 *     xt_model_plan(m, 128u << 20, &plan, &err);
 *     xt_model_close(m);
 *
 * Architectures (DESIGN.md §3): qwen3moe, qwen2moe, olmoe, llama with experts (Mixtral, including
 * the legacy per-expert names blk.N.ffn_gate.E.weight, stacked into one 3-D tensor at upload), and
 * the dense llama, qwen2, qwen3. Anything else is XT_ERR_UNSUPPORTED naming the architecture and
 * the file; a missing tensor or a tensor of the wrong shape is an error naming both.
 */
#ifndef EXPERTRACE_MODEL_H
#define EXPERTRACE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "expertrace/gguf.h"
#include "expertrace/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xt_arch {
    XT_ARCH_LLAMA = 0, /* dense llama, or Mixtral when expert_count > 0 */
    XT_ARCH_QWEN2,
    XT_ARCH_QWEN3,
    XT_ARCH_QWEN2MOE,
    XT_ARCH_QWEN3MOE,
    XT_ARCH_OLMOE,
    XT_ARCH_COUNT
} xt_arch;

/* "llama", "qwen2", ... (the GGUF general.architecture spelling). */
const char *xt_arch_name(xt_arch a);

typedef enum xt_qk_norm {
    XT_QK_NORM_NONE = 0,
    XT_QK_NORM_HEAD,  /* qwen3(moe): RMSNorm over head_dim, per head, after the reshape */
    XT_QK_NORM_WHOLE, /* olmoe: RMSNorm over the whole projection, before the reshape */
} xt_qk_norm;

typedef struct xt_hparams {
    xt_arch arch;
    uint32_t n_layer;     /* block_count */
    uint32_t n_embd;      /* embedding_length */
    uint32_t n_vocab;     /* rows of token_embd */
    uint32_t n_head;      /* attention.head_count */
    uint32_t n_head_kv;   /* attention.head_count_kv (default n_head) */
    uint32_t head_dim;    /* attention.key_length (default n_embd / n_head) */
    uint32_t head_dim_v;  /* attention.value_length (default head_dim); must equal head_dim */
    uint32_t n_ff;        /* feed_forward_length: the dense FFN (0 in MoE models without one) */
    uint32_t n_expert;    /* expert_count; 0: dense */
    uint32_t n_expert_used; /* expert_used_count */
    uint32_t n_ff_exp;    /* expert_feed_forward_length (llama.cpp's defaults when absent) */
    uint32_t n_ff_shexp;  /* expert_shared_feed_forward_length; 0: no shared expert */
    uint32_t n_rot;       /* rope.dimension_count (default head_dim) */
    float rope_freq_base; /* rope.freq_base (default 10000) */
    float rms_eps;        /* attention.layer_norm_rms_epsilon (required, as llama.cpp) */
    int rope_neox;        /* 1: NEOX pairs (qwen*, olmoe), 0: NORM pairs (llama, Mixtral) */
    xt_qk_norm qk_norm;
    bool qkv_bias;        /* qwen2, qwen2moe */
    bool moe_renorm;      /* renormalise the top-k weights: qwen3moe, Mixtral */
    bool shared_expert;   /* qwen2moe */
    bool tied_output;     /* no `output` tensor: the lm head is token_embd */
    bool legacy_experts;  /* Mixtral's per-expert tensors blk.N.ffn_{gate,up,down}.E.weight */
} xt_hparams;

/* One weight as the file holds it. For a legacy per-expert tensor, `parts` lists the n_parts
 * per-expert 2-D tensors that are stacked (as slabs) into the 3-D tensor {ne0, ne1, n_parts}. */
typedef struct xt_wtensor {
    const xt_gguf_tensor *t;      /* NULL: absent (optional tensors only) */
    const xt_gguf_tensor **parts; /* legacy experts: n_parts 2-D tensors, else NULL */
    uint32_t n_parts;
    uint32_t type;    /* ggml type */
    int64_t ne[3];    /* the (stacked) shape, ggml order */
    uint64_t nbytes;  /* of the (stacked) tensor */
} xt_wtensor;

/* Every role of one block. Dense blocks fill ffn_gate/up/down, MoE blocks the expert fields. */
typedef struct xt_layer_tensors {
    xt_wtensor attn_norm;                  /* {n_embd} */
    xt_wtensor wq, wk, wv, wo;             /* {n_embd, n_head*hd}, {n_embd, n_kv*hd} x2,
                                              {n_head*hd, n_embd} */
    xt_wtensor bq, bk, bv;                 /* qwen2(moe) biases {n_head*hd}, {n_kv*hd} x2 */
    xt_wtensor q_norm, k_norm;             /* {hd} per head, or olmoe {n_head*hd}, {n_kv*hd} */
    xt_wtensor ffn_norm;                   /* {n_embd} */
    xt_wtensor ffn_gate, ffn_up, ffn_down; /* dense: {n_embd, n_ff} x2, {n_ff, n_embd} */
    xt_wtensor gate_inp;                   /* {n_embd, E} */
    xt_wtensor gate_exps, up_exps;         /* {n_embd, n_ff_exp, E} */
    xt_wtensor down_exps;                  /* {n_ff_exp, n_embd, E} */
    xt_wtensor gate_inp_shexp;             /* {n_embd} */
    xt_wtensor gate_shexp, up_shexp;       /* {n_embd, n_ff_shexp} */
    xt_wtensor down_shexp;                 /* {n_ff_shexp, n_embd} */
} xt_layer_tensors;

typedef struct xt_model xt_model;

/* Opens path (xt_gguf_open), reads the hyper-parameters and maps and checks every tensor. The
 * caller closes the result with xt_model_close. */
xt_status xt_model_open(const char *path, xt_model **out, xt_error *err);
void xt_model_close(xt_model *m);

const xt_hparams *xt_model_hparams(const xt_model *m);
const xt_gguf *xt_model_gguf(const xt_model *m);
const char *xt_model_path(const xt_model *m);
const xt_wtensor *xt_model_token_embd(const xt_model *m); /* {n_embd, n_vocab} */
const xt_wtensor *xt_model_output_norm(const xt_model *m); /* {n_embd} */
const xt_wtensor *xt_model_output(const xt_model *m);      /* lm head; token_embd when tied */
const xt_layer_tensors *xt_model_layer(const xt_model *m, uint32_t il);

/* Calls fn for every distinct weight tensor the model uploads (the tied lm head once). */
void xt_model_foreach_tensor(const xt_model *m, void (*fn)(const xt_wtensor *w, void *user),
                             void *user);

/* The bytes of slab (expert) e of a 3-D weight, or of the whole 2-D weight when e is 0: a view
 * into the file mapping (legacy experts: the part's data). */
const void *xt_wtensor_slab(const xt_wtensor *w, uint32_t e, uint64_t *slab_bytes);

/* ---- memory plan ---------------------------------------------------------------------------- */

#define XT_MEM_PLAN_MAX_TYPES 16

/* What putting the weights on a device costs, computed without a device (the binding limit is a
 * parameter: 128 MiB on lavapipe). */
typedef struct xt_mem_plan {
    uint32_t n_types;
    struct {
        uint32_t type;   /* ggml type */
        uint32_t tensors;
        uint64_t bytes;  /* device bytes (chunks padded to 4 bytes) */
    } per_type[XT_MEM_PLAN_MAX_TYPES];
    uint64_t weight_bytes;        /* sum over types */
    uint64_t largest_binding;     /* the largest chunk of any tensor */
    char largest_binding_tensor[64];
    uint64_t largest_tensor;      /* bytes of the largest tensor */
    uint32_t chunked_tensors;     /* tensors that need more than one chunk */
    uint64_t binding_limit;       /* the limit the plan was made for */
} xt_mem_plan;

/* Fills plan for chunks of at most binding_limit bytes (the chunking xt_dtensor_create uses:
 * whole experts where one fits, else whole rows). XT_ERR_RANGE when a single row exceeds the
 * limit (naming the tensor). */
xt_status xt_model_plan(const xt_model *m, uint64_t binding_limit, xt_mem_plan *plan,
                        xt_error *err);

#ifdef __cplusplus
}
#endif

#endif
