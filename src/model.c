/* The model: architecture table, hyper-parameters with llama.cpp's defaults, the tensor map (with
 * Mixtral's legacy per-expert names), shape checks and the memory plan. See
 * include/expertrace/model.h. Semantics follow llama.cpp's loader (src/llama-model.cpp): which keys
 * are required, which default, which tensors each architecture has. */
#include "expertrace/model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expertrace/quant.h"

static const char *const arch_names[XT_ARCH_COUNT] = {
    [XT_ARCH_LLAMA] = "llama",       [XT_ARCH_QWEN2] = "qwen2",
    [XT_ARCH_QWEN3] = "qwen3",       [XT_ARCH_QWEN2MOE] = "qwen2moe",
    [XT_ARCH_QWEN3MOE] = "qwen3moe", [XT_ARCH_OLMOE] = "olmoe",
};

/* What differs between architectures (DESIGN.md §3). */
static const struct arch_traits {
    bool moe;      /* expert blocks required (llama: when expert_count > 0) */
    bool neox;
    xt_qk_norm qk_norm;
    bool qkv_bias;
    bool renorm;
    bool shared;
} arch_traits[XT_ARCH_COUNT] = {
    [XT_ARCH_LLAMA] = {.moe = false, .neox = false, .renorm = true},
    [XT_ARCH_QWEN2] = {.neox = true, .qkv_bias = true},
    [XT_ARCH_QWEN3] = {.neox = true, .qk_norm = XT_QK_NORM_HEAD},
    [XT_ARCH_QWEN2MOE] = {.moe = true, .neox = true, .qkv_bias = true, .shared = true},
    [XT_ARCH_QWEN3MOE] = {.moe = true, .neox = true, .qk_norm = XT_QK_NORM_HEAD, .renorm = true},
    [XT_ARCH_OLMOE] = {.moe = true, .neox = true, .qk_norm = XT_QK_NORM_WHOLE},
};

const char *xt_arch_name(xt_arch a)
{
    return (unsigned)a < XT_ARCH_COUNT ? arch_names[a] : "unknown";
}

struct xt_model {
    xt_gguf *g;
    xt_hparams hp;
    xt_wtensor token_embd, output_norm, output;
    xt_layer_tensors *layers; /* [n_layer] */
    const xt_gguf_tensor **parts; /* storage for every legacy expert's part list */
    size_t parts_used, parts_cap;
};

/* ---- hyper-parameters ----------------------------------------------------------------------- */

/* key = "<arch>.<suffix>"; *out keeps its value (the default) when the key is absent and
 * !required. */
/* Builds key = "<arch>.<suffix>" and says whether it is present; a missing required key is
 * XT_ERR_NOT_FOUND naming the file. */
static xt_status arch_key(const xt_gguf *g, const char *arch, const char *suffix, bool required,
                          char key[128], bool *present, xt_error *err)
{
    snprintf(key, 128, "%s.%s", arch, suffix);
    *present = xt_gguf_find_key(g, key) >= 0;
    if (!*present && required)
        return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: required key '%s' is missing",
                            xt_gguf_path(g), key);
    return XT_OK;
}

static xt_status get_u32(const xt_gguf *g, const char *arch, const char *suffix, bool required,
                         uint32_t *out, xt_error *err)
{
    char key[128];
    bool present;
    xt_status s = arch_key(g, arch, suffix, required, key, &present, err);
    if (s || !present) return s;
    uint64_t v;
    s = xt_gguf_get_uint(g, key, 0, 1u << 30, &v, err);
    if (s) {
        xt_error_prefix(err, "%s", xt_gguf_path(g));
        return s;
    }
    *out = (uint32_t)v;
    return XT_OK;
}

static xt_status get_f32(const xt_gguf *g, const char *arch, const char *suffix, bool required,
                         float *out, xt_error *err)
{
    char key[128];
    bool present;
    xt_status s = arch_key(g, arch, suffix, required, key, &present, err);
    if (s || !present) return s;
    double v;
    s = xt_gguf_get_float(g, key, &v, err);
    if (s) {
        xt_error_prefix(err, "%s", xt_gguf_path(g));
        return s;
    }
    *out = (float)v;
    return XT_OK;
}

static xt_status read_hparams(xt_model *m, xt_error *err)
{
    const xt_gguf *g = m->g;
    const char *path = xt_gguf_path(g);
    xt_gguf_str s_arch;
    if (xt_gguf_find_key(g, "general.architecture") < 0)
        return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: no general.architecture", path);
    xt_status s = xt_gguf_get_str(g, "general.architecture", &s_arch, err);
    if (s) return s;
    char arch[64];
    xt_gguf_str_copy(s_arch, arch, sizeof arch);
    xt_hparams *hp = &m->hp;
    memset(hp, 0, sizeof *hp);
    int a = -1;
    for (int i = 0; i < XT_ARCH_COUNT; i++)
        if (!strcmp(arch, arch_names[i])) a = i;
    if (a < 0)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: architecture '%s' is not supported (supported: llama, qwen2, "
                            "qwen3, qwen2moe, qwen3moe, olmoe)",
                            path, arch);
    hp->arch = (xt_arch)a;
    const struct arch_traits *tr = &arch_traits[a];
    if ((s = get_u32(g, arch, "block_count", true, &hp->n_layer, err)) ||
        (s = get_u32(g, arch, "embedding_length", true, &hp->n_embd, err)) ||
        (s = get_u32(g, arch, "attention.head_count", true, &hp->n_head, err)) ||
        (s = get_u32(g, arch, "expert_count", false, &hp->n_expert, err)) ||
        (s = get_u32(g, arch, "expert_used_count", false, &hp->n_expert_used, err)) ||
        (s = get_u32(g, arch, "feed_forward_length", false, &hp->n_ff, err)) ||
        (s = get_u32(g, arch, "expert_feed_forward_length", false, &hp->n_ff_exp, err)) ||
        (s = get_u32(g, arch, "expert_shared_feed_forward_length", false, &hp->n_ff_shexp, err)) ||
        (s = get_f32(g, arch, "attention.layer_norm_rms_epsilon", true, &hp->rms_eps, err)))
        return s;
    if (hp->n_layer == 0 || hp->n_embd == 0 || hp->n_head == 0)
        return xt_error_set(err, XT_ERR_RANGE,
                            "%s: block_count %u, embedding_length %u, head_count %u must be > 0",
                            path, hp->n_layer, hp->n_embd, hp->n_head);
    hp->n_head_kv = hp->n_head;
    hp->head_dim = hp->n_embd / hp->n_head;
    hp->rope_freq_base = 10000.0f;
    if ((s = get_u32(g, arch, "attention.head_count_kv", false, &hp->n_head_kv, err)) ||
        (s = get_u32(g, arch, "attention.key_length", false, &hp->head_dim, err)))
        return s;
    hp->head_dim_v = hp->head_dim;
    hp->n_rot = hp->head_dim;
    if ((s = get_u32(g, arch, "attention.value_length", false, &hp->head_dim_v, err)) ||
        (s = get_u32(g, arch, "rope.dimension_count", false, &hp->n_rot, err)) ||
        (s = get_f32(g, arch, "rope.freq_base", false, &hp->rope_freq_base, err)))
        return s;
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv)
        return xt_error_set(err, XT_ERR_RANGE, "%s: %s.attention.head_count_kv %u must divide "
                            "head_count %u", path, arch, hp->n_head_kv, hp->n_head);
    if (hp->head_dim == 0 || hp->head_dim != hp->head_dim_v)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: key_length %u and value_length %u must be equal and > 0", path,
                            hp->head_dim, hp->head_dim_v);
    if (hp->n_rot == 0 || hp->n_rot % 2 || hp->n_rot > hp->head_dim)
        return xt_error_set(err, XT_ERR_UNSUPPORTED,
                            "%s: rope.dimension_count %u must be even and <= head dim %u", path,
                            hp->n_rot, hp->head_dim);
    bool moe = tr->moe || (hp->arch == XT_ARCH_LLAMA && hp->n_expert > 0);
    if (moe) {
        if (hp->n_expert == 0 || hp->n_expert_used == 0 || hp->n_expert_used > hp->n_expert)
            return xt_error_set(err, XT_ERR_RANGE,
                                "%s: %s.expert_count %u and expert_used_count %u (need 1 <= used "
                                "<= count)",
                                path, arch, hp->n_expert, hp->n_expert_used);
    } else {
        hp->n_expert = hp->n_expert_used = 0;
        if (hp->n_ff == 0)
            return xt_error_set(err, XT_ERR_NOT_FOUND,
                                "%s: required key '%s.feed_forward_length' is missing or 0", path,
                                arch);
    }
    hp->rope_neox = tr->neox;
    hp->qk_norm = tr->qk_norm;
    hp->qkv_bias = tr->qkv_bias;
    hp->moe_renorm = moe && tr->renorm;
    hp->shared_expert = tr->shared;
    return XT_OK;
}

/* ---- tensors ------------------------------------------------------------------------------ */

static xt_status find(xt_model *m, const char *name, bool required, xt_wtensor *w, xt_error *err)
{
    memset(w, 0, sizeof *w);
    const xt_gguf_tensor *t = xt_gguf_find_tensor(m->g, name);
    if (!t) {
        if (!required) return XT_OK;
        return xt_error_set(err, XT_ERR_NOT_FOUND, "%s: tensor '%s' is missing (architecture %s)",
                            xt_gguf_path(m->g), name, xt_arch_name(m->hp.arch));
    }
    xt_status s = xt_gguf_get_tensor(m->g, name, &t, err);
    if (s) return s;
    if (t->n_dims > 3)
        return xt_error_set(err, XT_ERR_FORMAT, "%s: tensor '%s' has %u dimensions",
                            xt_gguf_path(m->g), name, t->n_dims);
    const xt_type_traits *tt = xt_type_get_traits(t->type);
    if (!tt || !tt->to_float)
        return xt_error_set(err, XT_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which is not "
                            "supported for compute", xt_gguf_path(m->g), name, t->type_name);
    w->t = t;
    w->type = t->type;
    for (int i = 0; i < 3; i++) w->ne[i] = t->ne[i];
    w->nbytes = t->nbytes;
    return XT_OK;
}

/* Checks w's shape against {a, b, c} (c = 1 for 2-D, b = c = 1 for vectors). */
static xt_status check_shape(const xt_model *m, const xt_wtensor *w, int64_t a, int64_t b,
                             int64_t c, xt_error *err)
{
    if (!w->t && !w->parts) return XT_OK;
    if (w->ne[0] == a && w->ne[1] == b && w->ne[2] == c) return XT_OK;
    const char *name = w->t ? w->t->name : w->parts[0]->name;
    return xt_error_set(err, XT_ERR_FORMAT,
                        "%s: tensor '%s' has shape {%" PRId64 ", %" PRId64 ", %" PRId64
                        "}, expected {%" PRId64 ", %" PRId64 ", %" PRId64 "}",
                        xt_gguf_path(m->g), name, w->ne[0], w->ne[1], w->ne[2], a, b, c);
}

/* An expert tensor: "blk.N.<role>_exps.weight", or the legacy per-expert "blk.N.<role>.E.weight"
 * stacked into slabs. */
static xt_status find_experts(xt_model *m, uint32_t il, const char *role, xt_wtensor *w,
                              xt_error *err)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%u.%s_exps.weight", il, role);
    if (xt_gguf_find_tensor(m->g, name)) return find(m, name, true, w, err);
    char legacy[96];
    snprintf(legacy, sizeof legacy, "blk.%u.%s.0.weight", il, role);
    if (!xt_gguf_find_tensor(m->g, legacy))
        return xt_error_set(err, XT_ERR_NOT_FOUND,
                            "%s: tensor '%s' is missing (nor the per-expert '%s')",
                            xt_gguf_path(m->g), name, legacy);
    uint32_t E = m->hp.n_expert;
    if (m->parts_used + E > m->parts_cap) return xt_error_set(err, XT_ERR_NO_MEMORY, "parts");
    const xt_gguf_tensor **parts = m->parts + m->parts_used;
    m->parts_used += E;
    xt_status s;
    for (uint32_t e = 0; e < E; e++) {
        xt_wtensor p;
        snprintf(legacy, sizeof legacy, "blk.%u.%s.%u.weight", il, role, e);
        if ((s = find(m, legacy, true, &p, err))) return s;
        if (e > 0 && (p.type != w->type || p.ne[0] != w->ne[0] || p.ne[1] != w->ne[1] ||
                      p.ne[2] != 1))
            return xt_error_set(err, XT_ERR_FORMAT,
                                "%s: tensor '%s' differs in type or shape from expert 0",
                                xt_gguf_path(m->g), legacy);
        if (e == 0) *w = p;
        parts[e] = p.t;
    }
    w->t = NULL;
    w->parts = parts;
    w->n_parts = E;
    w->ne[2] = E;
    w->nbytes *= E;
    m->hp.legacy_experts = true;
    return XT_OK;
}

static xt_status map_layer(xt_model *m, uint32_t il, xt_error *err)
{
    const xt_hparams *hp = &m->hp;
    xt_layer_tensors *L = &m->layers[il];
    char name[96];
    xt_status s;
#define REQ(field, role)                                                                           \
    do {                                                                                           \
        snprintf(name, sizeof name, "blk.%u." role, il);                                           \
        if ((s = find(m, name, true, &L->field, err))) return s;                                   \
    } while (0)
    REQ(attn_norm, "attn_norm.weight");
    REQ(wq, "attn_q.weight");
    REQ(wk, "attn_k.weight");
    REQ(wv, "attn_v.weight");
    REQ(wo, "attn_output.weight");
    if (hp->qkv_bias) {
        REQ(bq, "attn_q.bias");
        REQ(bk, "attn_k.bias");
        REQ(bv, "attn_v.bias");
    }
    if (hp->qk_norm != XT_QK_NORM_NONE) {
        REQ(q_norm, "attn_q_norm.weight");
        REQ(k_norm, "attn_k_norm.weight");
    }
    REQ(ffn_norm, "ffn_norm.weight");
    int64_t E = hp->n_expert, D = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim,
            nkv = (int64_t)hp->n_head_kv * hp->head_dim;
    if (E == 0) {
        REQ(ffn_gate, "ffn_gate.weight");
        REQ(ffn_up, "ffn_up.weight");
        REQ(ffn_down, "ffn_down.weight");
    } else {
        REQ(gate_inp, "ffn_gate_inp.weight");
        if ((s = find_experts(m, il, "ffn_gate", &L->gate_exps, err)) ||
            (s = find_experts(m, il, "ffn_up", &L->up_exps, err)) ||
            (s = find_experts(m, il, "ffn_down", &L->down_exps, err)))
            return s;
        if (hp->shared_expert) {
            REQ(gate_inp_shexp, "ffn_gate_inp_shexp.weight");
            REQ(gate_shexp, "ffn_gate_shexp.weight");
            REQ(up_shexp, "ffn_up_shexp.weight");
            REQ(down_shexp, "ffn_down_shexp.weight");
        }
    }
#undef REQ
    /* expert FFN widths: the key when present (checked against the tensors), else the tensor's */
    xt_hparams *hpw = &m->hp;
    if (E) {
        if (hpw->n_ff_exp == 0) hpw->n_ff_exp = (uint32_t)L->gate_exps.ne[1];
        if (hp->shared_expert && hpw->n_ff_shexp == 0)
            hpw->n_ff_shexp = (uint32_t)L->gate_shexp.ne[1];
    }
    int64_t F = hp->n_ff_exp, FS = hp->n_ff_shexp;
    if ((s = check_shape(m, &L->attn_norm, D, 1, 1, err)) ||
        (s = check_shape(m, &L->wq, D, nq, 1, err)) ||
        (s = check_shape(m, &L->wk, D, nkv, 1, err)) ||
        (s = check_shape(m, &L->wv, D, nkv, 1, err)) ||
        (s = check_shape(m, &L->wo, nq, D, 1, err)) ||
        (s = check_shape(m, &L->bq, nq, 1, 1, err)) ||
        (s = check_shape(m, &L->bk, nkv, 1, 1, err)) ||
        (s = check_shape(m, &L->bv, nkv, 1, 1, err)) ||
        (s = check_shape(m, &L->ffn_norm, D, 1, 1, err)))
        return s;
    if (hp->qk_norm == XT_QK_NORM_HEAD &&
        ((s = check_shape(m, &L->q_norm, hp->head_dim, 1, 1, err)) ||
         (s = check_shape(m, &L->k_norm, hp->head_dim, 1, 1, err))))
        return s;
    if (hp->qk_norm == XT_QK_NORM_WHOLE &&
        ((s = check_shape(m, &L->q_norm, nq, 1, 1, err)) ||
         (s = check_shape(m, &L->k_norm, nkv, 1, 1, err))))
        return s;
    if (E == 0) {
        int64_t FF = hp->n_ff;
        if ((s = check_shape(m, &L->ffn_gate, D, FF, 1, err)) ||
            (s = check_shape(m, &L->ffn_up, D, FF, 1, err)) ||
            (s = check_shape(m, &L->ffn_down, FF, D, 1, err)))
            return s;
    } else if ((s = check_shape(m, &L->gate_inp, D, E, 1, err)) ||
               (s = check_shape(m, &L->gate_exps, D, F, E, err)) ||
               (s = check_shape(m, &L->up_exps, D, F, E, err)) ||
               (s = check_shape(m, &L->down_exps, F, D, E, err)) ||
               (s = check_shape(m, &L->gate_inp_shexp, D, 1, 1, err)) ||
               (s = check_shape(m, &L->gate_shexp, D, FS, 1, err)) ||
               (s = check_shape(m, &L->up_shexp, D, FS, 1, err)) ||
               (s = check_shape(m, &L->down_shexp, FS, D, 1, err))) {
        return s;
    }
    /* the norms and biases are read by the elementwise shaders as fp32 vectors */
    const xt_wtensor *vecs[] = {&L->attn_norm, &L->ffn_norm, &L->q_norm, &L->k_norm,
                                &L->bq, &L->bk, &L->bv};
    for (size_t i = 0; i < sizeof vecs / sizeof *vecs; i++)
        if (vecs[i]->t && vecs[i]->type != XT_TYPE_F32)
            return xt_error_set(err, XT_ERR_UNSUPPORTED,
                                "%s: tensor '%s' has type %s; norm weights and biases must be F32",
                                xt_gguf_path(m->g), vecs[i]->t->name, vecs[i]->t->type_name);
    return XT_OK;
}

void xt_model_close(xt_model *m)
{
    if (!m) return;
    free(m->layers);
    free(m->parts);
    xt_gguf_close(m->g);
    free(m);
}

xt_status xt_model_open(const char *path, xt_model **out, xt_error *err)
{
    *out = NULL;
    xt_model *m = calloc(1, sizeof *m);
    if (!m) return xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of host memory", path);
    xt_status s = xt_gguf_open(path, &m->g, err);
    if (s) goto fail;
    if ((s = read_hparams(m, err))) goto fail;
    xt_hparams *hp = &m->hp;
    if ((s = find(m, "token_embd.weight", true, &m->token_embd, err)) ||
        (s = find(m, "output_norm.weight", true, &m->output_norm, err)) ||
        (s = find(m, "output.weight", false, &m->output, err)))
        goto fail;
    if (m->token_embd.ne[0] != hp->n_embd || m->token_embd.ne[1] < 1 || m->token_embd.ne[2] != 1 ||
        m->token_embd.ne[1] > INT32_MAX) {
        s = check_shape(m, &m->token_embd, hp->n_embd, m->token_embd.ne[1], 1, err);
        if (!s) s = xt_error_set(err, XT_ERR_FORMAT, "%s: bad token_embd", path);
        goto fail;
    }
    hp->n_vocab = (uint32_t)m->token_embd.ne[1];
    if (!m->output.t) {
        hp->tied_output = true;
        m->output = m->token_embd;
    }
    if ((s = check_shape(m, &m->output_norm, hp->n_embd, 1, 1, err)) ||
        (s = check_shape(m, &m->output, hp->n_embd, hp->n_vocab, 1, err)))
        goto fail;
    if (m->output_norm.type != XT_TYPE_F32) {
        s = xt_error_set(err, XT_ERR_UNSUPPORTED, "%s: output_norm.weight must be F32", path);
        goto fail;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    m->parts_cap = (size_t)hp->n_layer * 3 * hp->n_expert;
    m->parts = m->parts_cap ? calloc(m->parts_cap, sizeof *m->parts) : NULL;
    if (!m->layers || (m->parts_cap && !m->parts)) {
        s = xt_error_set(err, XT_ERR_NO_MEMORY, "%s: out of host memory", path);
        goto fail;
    }
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((s = map_layer(m, il, err))) goto fail;
    *out = m;
    return XT_OK;
fail:
    xt_model_close(m);
    return s;
}

const xt_hparams *xt_model_hparams(const xt_model *m) { return &m->hp; }
const xt_gguf *xt_model_gguf(const xt_model *m) { return m->g; }
const char *xt_model_path(const xt_model *m) { return xt_gguf_path(m->g); }
const xt_wtensor *xt_model_token_embd(const xt_model *m) { return &m->token_embd; }
const xt_wtensor *xt_model_output_norm(const xt_model *m) { return &m->output_norm; }
const xt_wtensor *xt_model_output(const xt_model *m) { return &m->output; }

const xt_layer_tensors *xt_model_layer(const xt_model *m, uint32_t il)
{
    return il < m->hp.n_layer ? &m->layers[il] : NULL;
}

void xt_model_foreach_tensor(const xt_model *m, void (*fn)(const xt_wtensor *w, void *user),
                             void *user)
{
    fn(&m->token_embd, user);
    fn(&m->output_norm, user);
    if (!m->hp.tied_output) fn(&m->output, user);
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const xt_wtensor *all = (const xt_wtensor *)&m->layers[il];
        size_t n = sizeof(xt_layer_tensors) / sizeof(xt_wtensor);
        for (size_t i = 0; i < n; i++)
            if (all[i].t || all[i].parts) fn(&all[i], user);
    }
}

const void *xt_wtensor_slab(const xt_wtensor *w, uint32_t e, uint64_t *slab_bytes)
{
    if (w->parts) {
        if (e >= w->n_parts) return NULL;
        *slab_bytes = w->parts[e]->nbytes;
        return w->parts[e]->data;
    }
    if (!w->t) return NULL;
    uint64_t per = w->nbytes / (uint64_t)(w->ne[2] ? w->ne[2] : 1);
    if (e >= (uint64_t)w->ne[2]) return NULL;
    *slab_bytes = per;
    return (const uint8_t *)w->t->data + per * e;
}

/* ---- memory plan --------------------------------------------------------------------------- */

typedef struct plan_ctx {
    xt_mem_plan *plan;
    xt_status status;
    xt_error *err;
} plan_ctx;

static void plan_tensor(const xt_wtensor *w, void *user)
{
    plan_ctx *pc = user;
    xt_mem_plan *p = pc->plan;
    if (pc->status) return;
    const char *name = w->t ? w->t->name : w->parts[0]->name;
    uint64_t row_bytes;
    xt_status s = xt_type_nbytes(w->type, (uint64_t)w->ne[0], &row_bytes, pc->err);
    if (s) {
        pc->status = s;
        return;
    }
    uint64_t limit = p->binding_limit;
    if (row_bytes == 0 || row_bytes + 3 > limit) {
        pc->status = xt_error_set(pc->err, XT_ERR_RANGE,
                                  "tensor '%s': one row is %" PRIu64 " bytes, more than one "
                                  "storage binding may cover (%" PRIu64 " bytes)",
                                  name, row_bytes, limit);
        return;
    }
    uint64_t rows = (uint64_t)w->ne[1] * (uint64_t)w->ne[2];
    uint64_t per = (limit - 3) / row_bytes, slab = (uint64_t)w->ne[1];
    if (per >= slab) per -= per % slab;
    if (per > rows) per = rows;
    uint64_t n_chunks = (rows + per - 1) / per, bytes = 0;
    for (uint64_t c = 0; c < n_chunks; c++) {
        uint64_t r = rows - c * per < per ? rows - c * per : per;
        uint64_t b = (r * row_bytes + 3) & ~(uint64_t)3;
        bytes += b;
        if (b > p->largest_binding) {
            p->largest_binding = b;
            snprintf(p->largest_binding_tensor, sizeof p->largest_binding_tensor, "%s", name);
        }
    }
    if (n_chunks > 1) p->chunked_tensors++;
    if (w->nbytes > p->largest_tensor) p->largest_tensor = w->nbytes;
    p->weight_bytes += bytes;
    uint32_t i = 0;
    while (i < p->n_types && p->per_type[i].type != w->type) i++;
    if (i == p->n_types) {
        if (p->n_types == XT_MEM_PLAN_MAX_TYPES) return;
        p->n_types++;
        p->per_type[i].type = w->type;
    }
    p->per_type[i].tensors++;
    p->per_type[i].bytes += bytes;
}

xt_status xt_model_plan(const xt_model *m, uint64_t binding_limit, xt_mem_plan *plan,
                        xt_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->binding_limit = binding_limit & ~(uint64_t)3;
    plan_ctx pc = {plan, XT_OK, err};
    xt_model_foreach_tensor(m, plan_tensor, &pc);
    if (pc.status) xt_error_prefix(err, "%s", xt_model_path(m));
    return pc.status;
}
