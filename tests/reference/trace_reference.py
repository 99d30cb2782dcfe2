#!/usr/bin/env python3
"""Independent reference for the tracing protocol's numerics (DESIGN.md §4), with HF transformers.

    trace_reference.py MODEL.gguf [--facts FILE] [--out FILE] [--seed 1] [--k 3] [--expert-layer L]
                       [--rome N [--rome-window 10]]
    trace_reference.py MODEL.gguf --check-logits [--fixture tests/fixtures/models/NAME.json]
    trace_reference.py MODEL.gguf --bench N [--facts FILE]

A GGUF file is read with gguf.GGUFReader, every tensor dequantized with gguf.quants.dequantize,
and loaded into the transformers model of its architecture (Qwen3MoeForCausalLM,
Qwen2MoeForCausalLM, MixtralForCausalLM for `llama` files with experts, OlmoeForCausalLM), fp32,
eager attention, eager experts. Tokens come from llama.cpp's own tokenizer (llama-cpp-python,
run in a subprocess of --llama-python, vocab_only), BOS iff tokenizer.ggml.add_bos_token.

Per case (rules the C implementation follows):
  prompt  = requested_rewrite.prompt with "{}" -> subject (exactly one "{}", else rejected)
  subject = [a, b): tp = tok(prefix), ts = tok(prefix + subject), tf = tok(prompt), prefix the
            template text before "{}"; a = lcp(tp, tf); b = lcp(ts, tf) + (1 if that < len(ts));
            a < b required
  targets = tok(str) without BOS if one token, else tok(" " + str) if one token, else rejected;
            true = target_true, foil = target_new; delta = logit[true] - logit[foil], last position
  noise   = Philox4x32-10, key (seed, case_id), counter (draw=0, position, dim//4, 0); u = (x+0.5)
            2^-32; Box-Muller (u0,u1) -> dims 4j, 4j+1, (u2,u3) -> 4j+2, 4j+3; value =
            float32(sigma * n) in double; sigma = k * population std (float64) of token_embd;
            added in fp32 to the input embeddings at positions [a, b)
  clean, noised runs record per layer at the last position: MoE block output (shared expert
            included), router top-k ids (descending, as the arch's softmax/top-k gives them) and
            weights (renormalised for qwen3moe/mixtral, not for qwen2moe/olmoe), c_e = w_e E_e(x)
  layer rescue_l = delta(noised, MoE output at (l, last) := clean one) - delta_noised
  expert pass at layer L: noised output + (c_e(clean) - c_e(noised)) per clean-routed e
            (c_e(noised) = 0 when e is not noised-routed; no re-routing); coalitions top (all
            clean-routed) and union (clean or noised routed; noised-only delta = -c_e(noised)).
            The shared expert is never part of a delta.
  rome (--rome N, first N valid cases in facts order): for site in (residual entering layer l,
            self_attn output = o_proj's before the residual add, mlp output) and every (layer l,
            position p): the noised run with the clean run's value of that site restored at p,
            at layer l alone for the residual, at layers [l - w/2, l + w - w/2) clipped to
            [0, n_layer) for the other two; stored: the restored run's delta and p(true) (softmax
            of the last-position logits over the whole vocabulary, float64), not differences.

Outputs: --out writes the fixture JSON (keys in tests/reference/README.md, "Trace reference").
--check-logits compares this model's logits with llama.cpp's fixture logits (f16) and with a live
llama.cpp f32 run. --bench N runs the protocol as a PyTorch implementation would (batched per case)
and prints one JSON line. Threads: --threads (default 2), also OMP_NUM_THREADS.
"""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('MKL_NUM_THREADS', '2')

import numpy as np  # noqa: E402
import gguf  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_FACTS = os.path.join(ROOT, 'tests', 'fixtures', 'trace', 'facts_small.json')
# The python with llama-cpp-python: --llama-python or $XT_LLAMA_PYTHON (no default path).
DEFAULT_LLAMA_PY = os.environ.get('XT_LLAMA_PYTHON')

# Expert-pass layer per fixture model: both ends of the 2-layer models are covered (layer 0: the
# patch goes on through a whole MoE layer, re-routing included; the last layer: only the head).
EXPERT_LAYER = {'qwen3moe-f32': 0, 'qwen3moe-f16': 1, 'qwen2moe-f32': 0, 'mixtral-f32': 1,
                'olmoe-f32': 0, 'default-model': 3}

# ---------------------------------------------------------------------------------------------
# Philox4x32-10 (Random123) and the noise
# ---------------------------------------------------------------------------------------------

M32 = np.uint64(0xFFFFFFFF)
PHILOX_M0, PHILOX_M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
PHILOX_W0, PHILOX_W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)


def philox4x32_10(ctr, key):
    """ctr: 4 arrays (or ints) of 32-bit words, key: 2 words -> 4 uint64 arrays of 32-bit words."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in ctr)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for r in range(10):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & M32, (k1 + PHILOX_W1) & M32
        p0, p1 = PHILOX_M0 * c0, PHILOX_M1 * c2        # < 2^64: exact
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & M32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def philox_selftest():
    kat = [((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
           ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
            (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1))]
    for ctr, key, want in kat:
        got = tuple(int(x) for x in philox4x32_10(ctr, key))
        assert got == want, f'philox KAT failed: {[hex(x) for x in got]}'


def noise_vectors(seed, case_id, positions, n_embd, sigma, draw=0):
    """float32 [len(positions), n_embd]: the noise added at each listed token position."""
    assert n_embd % 4 == 0
    j = np.arange(n_embd // 4, dtype=np.uint64)
    out = np.empty((len(positions), n_embd), dtype=np.float32)
    for r, pos in enumerate(positions):
        x = philox4x32_10((np.full_like(j, draw), np.full_like(j, pos), j, np.zeros_like(j)),
                          (seed, case_id))
        u = [(w.astype(np.float64) + 0.5) * 2.0 ** -32 for w in x]
        ra, rb = np.sqrt(-2.0 * np.log(u[0])), np.sqrt(-2.0 * np.log(u[2]))
        n = np.empty((n_embd // 4, 4), dtype=np.float64)
        n[:, 0] = ra * np.cos(2.0 * math.pi * u[1])
        n[:, 1] = ra * np.sin(2.0 * math.pi * u[1])
        n[:, 2] = rb * np.cos(2.0 * math.pi * u[3])
        n[:, 3] = rb * np.sin(2.0 * math.pi * u[3])
        out[r] = (sigma * n.reshape(-1)).astype(np.float32)   # one rounding, double -> float
    return out


def population_std(x):
    """float64 population std of a float32 matrix, two passes, in row chunks (bounded memory)."""
    x = x.reshape(-1, x.shape[-1])
    n = x.size
    step = max(1, (1 << 24) // x.shape[1])
    s = sum(float(np.sum(x[i:i + step], dtype=np.float64)) for i in range(0, x.shape[0], step))
    mean = s / n
    ss = 0.0
    for i in range(0, x.shape[0], step):
        d = x[i:i + step].astype(np.float64) - mean
        ss += float(np.sum(d * d))
    return math.sqrt(ss / n)


# ---------------------------------------------------------------------------------------------
# GGUF -> transformers
# ---------------------------------------------------------------------------------------------


class Gguf:
    def __init__(self, path):
        self.path = path
        self.r = gguf.GGUFReader(path)
        self.tensors = {t.name: t for t in self.r.tensors}
        self.arch = self.get('general.architecture')

    def get(self, key, default=None):
        f = self.r.fields.get(key)
        return default if f is None else f.contents()

    def hp(self, suffix, default=None):
        return self.get(f'{self.arch}.{suffix}', default)

    def ne(self, name):
        return [int(n) for n in self.tensors[name].shape]

    def tensor(self, name):
        """float32 numpy array, shape = ggml ne reversed (rows, ne[0])."""
        t = self.tensors[name]
        x = gguf.quants.dequantize(t.data, t.tensor_type)
        x = np.asarray(x, dtype=np.float32).reshape(tuple(reversed(self.ne(name))))
        return np.array(x, dtype=np.float32, copy=True) if not x.flags.writeable else x


def unpermute_rope(w, n_head):
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute (Q/K rows for NORM rope)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


ARCHS = {  # gguf arch -> (config class, model class, renormalise top-k)
    'qwen3moe': ('Qwen3MoeConfig', 'Qwen3MoeForCausalLM', True),
    'qwen2moe': ('Qwen2MoeConfig', 'Qwen2MoeForCausalLM', False),
    'llama': ('MixtralConfig', 'MixtralForCausalLM', True),
    'olmoe': ('OlmoeConfig', 'OlmoeForCausalLM', False),
}


def build_model(g, experts_impl='eager'):
    """(model, info) from a parsed GGUF; every weight dequantized to fp32."""
    arch = g.arch
    if arch not in ARCHS:
        sys.exit(f'trace_reference: {g.path}: architecture {arch!r} not supported')
    E = g.hp('embedding_length')
    L = g.hp('block_count')
    H = g.hp('attention.head_count')
    HKV = g.hp('attention.head_count_kv', H)
    D = g.hp('attention.key_length', E // H)
    X = g.hp('expert_count')
    K = g.hp('expert_used_count')
    if not X:
        sys.exit(f'trace_reference: {g.path}: no experts (dense models are not traced here)')
    V = g.ne('token_embd.weight')[1]
    tied = 'output.weight' not in g.tensors
    legacy = 'blk.0.ffn_gate_exps.weight' not in g.tensors
    ff_exp = g.ne('blk.0.ffn_gate.0.weight' if legacy else 'blk.0.ffn_gate_exps.weight')[1]
    rope_dim = g.hp('rope.dimension_count', D)
    if rope_dim != D:
        sys.exit(f'trace_reference: partial rope (rope.dimension_count {rope_dim} != head dim {D})')
    if g.hp('rope.scaling.type') not in (None, 'none'):
        sys.exit('trace_reference: rope scaling is not supported')
    cfg_name, model_name, renorm = ARCHS[arch]
    common = dict(vocab_size=V, hidden_size=E, num_hidden_layers=L, num_attention_heads=H,
                  num_key_value_heads=HKV, rms_norm_eps=float(g.hp('attention.layer_norm_rms_epsilon')),
                  rope_parameters={'rope_type': 'default',
                                   'rope_theta': float(g.hp('rope.freq_base', 10000.0))},
                  max_position_embeddings=int(g.hp('context_length', 4096)),
                  tie_word_embeddings=tied, num_experts_per_tok=K, hidden_act='silu',
                  pad_token_id=None, bos_token_id=None, eos_token_id=None, use_cache=False)
    if arch == 'qwen3moe':
        extra = dict(head_dim=D, intermediate_size=g.hp('feed_forward_length', ff_exp),
                     moe_intermediate_size=ff_exp, num_experts=X, norm_topk_prob=True,
                     attention_bias=False, use_sliding_window=False, sliding_window=None,
                     decoder_sparse_step=1, mlp_only_layers=[])
    elif arch == 'qwen2moe':
        if D != E // H:
            sys.exit('trace_reference: qwen2moe with head_dim != n_embd / n_head')
        extra = dict(intermediate_size=g.hp('feed_forward_length', ff_exp), moe_intermediate_size=ff_exp,
                     shared_expert_intermediate_size=g.ne('blk.0.ffn_gate_shexp.weight')[1],
                     num_experts=X, norm_topk_prob=False, qkv_bias=True, use_sliding_window=False,
                     decoder_sparse_step=1, mlp_only_layers=[])
    elif arch == 'llama':
        extra = dict(head_dim=D, intermediate_size=ff_exp, num_local_experts=X, sliding_window=None,
                     router_jitter_noise=0.0)
    else:  # olmoe
        if D != E // H:
            sys.exit('trace_reference: olmoe with head_dim != n_embd / n_head')
        extra = dict(intermediate_size=ff_exp, num_experts=X, norm_topk_prob=False, clip_qkv=None,
                     attention_bias=False)
    config = getattr(transformers, cfg_name)(**common, **extra)
    config._attn_implementation = 'eager'
    config._experts_implementation = experts_impl
    with torch.device('meta'):
        model = getattr(transformers, model_name)(config)

    # state dict from the GGUF tensors (numpy (rows, ne[0]) == torch Linear (out, in))
    sd = {}
    t = lambda name: torch.from_numpy(g.tensor(name))
    sd['model.embed_tokens.weight'] = t('token_embd.weight')
    sd['model.norm.weight'] = t('output_norm.weight')
    sd['lm_head.weight'] = sd['model.embed_tokens.weight'] if tied else t('output.weight')
    for i in range(L):
        b, p = f'blk.{i}.', f'model.layers.{i}.'
        sd[p + 'input_layernorm.weight'] = t(b + 'attn_norm.weight')
        sd[p + 'post_attention_layernorm.weight'] = t(b + 'ffn_norm.weight')
        for src, dst in (('attn_q', 'q_proj'), ('attn_k', 'k_proj'), ('attn_v', 'v_proj'),
                         ('attn_output', 'o_proj')):
            w = g.tensor(b + src + '.weight')
            if arch == 'llama' and src in ('attn_q', 'attn_k'):
                w = unpermute_rope(w, H if src == 'attn_q' else HKV)
            sd[p + f'self_attn.{dst}.weight'] = torch.from_numpy(np.ascontiguousarray(w))
            if b + src + '.bias' in g.tensors:
                bias = g.tensor(b + src + '.bias')
                if arch == 'llama' and src in ('attn_q', 'attn_k'):
                    bias = unpermute_rope(bias, H if src == 'attn_q' else HKV)
                sd[p + f'self_attn.{dst}.bias'] = torch.from_numpy(np.ascontiguousarray(bias))
        if b + 'attn_q_norm.weight' in g.tensors:
            sd[p + 'self_attn.q_norm.weight'] = t(b + 'attn_q_norm.weight')
            sd[p + 'self_attn.k_norm.weight'] = t(b + 'attn_k_norm.weight')
        sd[p + 'mlp.gate.weight'] = t(b + 'ffn_gate_inp.weight')
        if legacy:
            stack = lambda kind: np.stack([g.tensor(f'{b}ffn_{kind}.{x}.weight') for x in range(X)])
            gate, up, down = stack('gate'), stack('up'), stack('down')
        else:
            gate, up = g.tensor(b + 'ffn_gate_exps.weight'), g.tensor(b + 'ffn_up_exps.weight')
            down = g.tensor(b + 'ffn_down_exps.weight')
        # transformers 5 packs [gate; up] along the output rows: gate_up_proj (X, 2F, E)
        sd[p + 'mlp.experts.gate_up_proj'] = torch.from_numpy(np.concatenate([gate, up], axis=1))
        del gate, up
        sd[p + 'mlp.experts.down_proj'] = torch.from_numpy(down)
        if b + 'ffn_gate_inp_shexp.weight' in g.tensors:
            sd[p + 'mlp.shared_expert.gate_proj.weight'] = t(b + 'ffn_gate_shexp.weight')
            sd[p + 'mlp.shared_expert.up_proj.weight'] = t(b + 'ffn_up_shexp.weight')
            sd[p + 'mlp.shared_expert.down_proj.weight'] = t(b + 'ffn_down_shexp.weight')
            sd[p + 'mlp.shared_expert_gate.weight'] = t(b + 'ffn_gate_inp_shexp.weight').reshape(1, E)
    model.load_state_dict(sd, strict=True, assign=True)
    del sd
    # non-persistent buffers (rotary inv_freq) were made on the meta device: rebuild them
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)
    for n, v in list(model.named_parameters()) + list(model.named_buffers()):
        if v.device.type == 'meta':
            sys.exit(f'trace_reference: {n} was not loaded')
    if tied:
        model.lm_head.weight = model.model.embed_tokens.weight
    model.eval()
    info = dict(arch=arch, hf_class=model_name, n_layer=L, n_embd=E, n_head=H, n_head_kv=HKV,
                head_dim=D, n_expert=X, n_expert_used=K, n_ff_exp=ff_exp, n_vocab=V, tied=tied,
                renormalise_topk=renorm, shared_expert=arch == 'qwen2moe',
                add_bos=bool(g.get('tokenizer.ggml.add_bos_token', False)))
    return model, info


# ---------------------------------------------------------------------------------------------
# llama.cpp (tokenizer, logits) in a subprocess of the llama-cpp-python environment
# ---------------------------------------------------------------------------------------------

LLAMA_HELPER = r'''
import ctypes, json, sys
import numpy as np
import llama_cpp as lc
req = json.load(sys.stdin)
out = {'llama_cpp_python': lc.__version__}
need_ctx = bool(req.get('eval') or req.get('eval_embd'))
T = req.get('threads', 2)
llm = lc.Llama(model_path=req['model'], vocab_only=not need_ctx, n_ctx=256, n_batch=256,
               n_ubatch=256, n_threads=T, n_threads_batch=T, logits_all=True, type_k=0, type_v=0,
               flash_attn=False, n_gpu_layers=0, verbose=False, seed=0)
out['tokens'] = [llm.tokenize(t.encode('utf-8'), add_bos=b, special=False)
                 for t, b in req.get('tokenize', [])]
arrays = {}
for i, toks in enumerate(req.get('eval', [])):
    llm.reset()
    llm.eval(toks)
    arrays['eval%d' % i] = np.array(llm.scores[:len(toks)], dtype=np.float32)
if req.get('eval_embd'):
    emb = np.load(req['eval_embd'])
    n_embd, n_vocab = lc.llama_n_embd(llm.model), llm.n_vocab()
    for i in range(len(emb.files)):
        x = np.ascontiguousarray(emb['e%d' % i], dtype=np.float32)
        n = x.shape[0]
        lc.llama_memory_clear(lc.llama_get_memory(llm.ctx), True)
        batch = lc.llama_batch_init(n, n_embd, 1)
        batch.n_tokens = n
        ctypes.memmove(batch.embd, x.ctypes.data, x.nbytes)
        for p in range(n):
            batch.pos[p] = p
            batch.n_seq_id[p] = 1
            batch.seq_id[p][0] = 0
            batch.logits[p] = p == n - 1
        rc = lc.llama_decode(llm.ctx, batch)
        if rc != 0:
            raise SystemExit('llama_decode failed: %d' % rc)
        ptr = lc.llama_get_logits_ith(llm.ctx, n - 1)
        arrays['embd%d' % i] = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()
        lc.llama_batch_free(batch)
if arrays:
    np.savez(req['out_npz'], **arrays)
json.dump(out, sys.stdout)
'''


def llama_call(model_path, llama_py, tokenize=(), evals=(), embds=(), threads=2):
    """Runs LLAMA_HELPER: returns (json reply, {name: array})."""
    with tempfile.TemporaryDirectory(prefix='xt-trace-') as tmp:
        req = {'model': model_path, 'tokenize': list(tokenize), 'eval': [list(map(int, e)) for e in evals],
               'threads': threads, 'out_npz': os.path.join(tmp, 'out.npz')}
        if embds:
            req['eval_embd'] = os.path.join(tmp, 'embd.npz')
            np.savez(req['eval_embd'], **{f'e{i}': e for i, e in enumerate(embds)})
        p = subprocess.run([llama_py, '-c', LLAMA_HELPER], input=json.dumps(req), capture_output=True,
                           text=True)
        if p.returncode != 0:
            sys.exit(f'trace_reference: llama.cpp helper failed:\n{p.stderr[-3000:]}')
        reply = json.loads(p.stdout)
        arrays = {}
        if os.path.exists(req['out_npz']):
            with np.load(req['out_npz']) as z:
                arrays = {k: z[k] for k in z.files}
    return reply, arrays


# ---------------------------------------------------------------------------------------------
# Cases: prompt, subject span, targets
# ---------------------------------------------------------------------------------------------


def lcp(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def prepare_cases(facts, model_path, add_bos, llama_py):
    """(valid cases, rejected [{case_id, reason}]); one tokenizer subprocess for every string."""
    texts, plans = [], []
    def want(text, bos):
        texts.append((text, bos))
        return len(texts) - 1
    for rec in facts:
        rw = rec['requested_rewrite']
        tpl, subj = rw['prompt'], rw['subject']
        plan = {'rec': rec}
        if tpl.count('{}') != 1:
            plan['reject'] = f'prompt template has {tpl.count("{}")} "{{}}" (exactly one expected)'
        elif not subj:
            plan['reject'] = 'empty subject'
        else:
            prefix = tpl[:tpl.index('{}')]
            full = tpl.replace('{}', subj)
            plan.update(prompt=full, tp=want(prefix, add_bos), ts=want(prefix + subj, add_bos),
                        tf=want(full, add_bos))
            for role in ('target_true', 'target_new'):
                s = rw[role]['str']
                plan[role] = (s, want(s, False), want(' ' + s, False))
        plans.append(plan)
    reply, _ = llama_call(model_path, llama_py, tokenize=texts)
    toks = reply['tokens']
    cases, rejected = [], []
    for plan in plans:
        rec = plan['rec']
        cid = int(rec['case_id'])
        if 'reject' in plan:
            rejected.append({'case_id': cid, 'reason': plan['reject']})
            continue
        tp, ts, tf = toks[plan['tp']], toks[plan['ts']], toks[plan['tf']]
        a = lcp(tp, tf)
        m = lcp(ts, tf)
        b = m + 1 if m < len(ts) else m
        b = min(b, len(tf))
        ids, why = {}, None
        for role in ('target_true', 'target_new'):
            s, i0, i1 = plan[role]
            if len(toks[i0]) == 1:
                ids[role] = toks[i0][0]
            elif len(toks[i1]) == 1:
                ids[role] = toks[i1][0]
            else:
                why = f'target not a single token: {role} {s!r} -> {toks[i0]} / " "+str -> {toks[i1]}'
                break
        if why is None and not a < b:
            why = f'empty subject span [{a}, {b})'
        if why:
            rejected.append({'case_id': cid, 'reason': why})
            continue
        cases.append({'case_id': cid, 'prompt': plan['prompt'], 'tokens': tf, 'subject': [a, b],
                      'true_id': ids['target_true'], 'foil_id': ids['target_new'],
                      'true_str': rec['requested_rewrite']['target_true']['str'],
                      'foil_str': rec['requested_rewrite']['target_new']['str']})
    return cases, rejected, reply.get('llama_cpp_python')


# ---------------------------------------------------------------------------------------------
# The tracer: forward hooks on every layer's MoE block (record at the last position, patch it)
# ---------------------------------------------------------------------------------------------


class Tracer:
    """Hooks on layers[l].mlp (the MoE block, shared expert included) and its router, and for the
    ROME grids on layers[l] itself (its input: the residual entering the layer) and on
    layers[l].self_attn (its output: o_proj's, before the residual add).

    record: after a forward, self.rec[l] = {'x': mlp input (B, E), 'out': mlp output (B, E),
    'ids': (B, K), 'w': (B, K), 'logits': (B, X)} at each row's last position.
    patch: {layer: (row indices LongTensor, vectors (n, E))} replaces the last-position output.
    keep: after a forward, self.kept[site][l] = that site's (B, S, E) at every position, site in
    ROME_SITES.
    restore: {(site, layer): (rows LongTensor, positions LongTensor, vectors (n, E))} replaces the
    site's value at those (row, position) pairs.
    """

    def __init__(self, model):
        self.model = model
        self.layers = model.model.layers
        self.record = False
        self.patch = {}
        self.rec = {}
        self.keep = False
        self.kept = {}
        self.restore = {}
        self.margins = None      # {'member', 'order'} minima while set (see _router_hook)
        for l, layer in enumerate(self.layers):
            layer.mlp.register_forward_hook(self._mlp_hook(l))
            layer.mlp.gate.register_forward_hook(self._router_hook(l))
            layer.register_forward_pre_hook(self._layer_in_hook(l), with_kwargs=True)
            layer.self_attn.register_forward_hook(self._attn_hook(l))

    def _site(self, site, l, x):
        """Keeps x (B, S, E) when asked and returns it with this site's restorations applied, or
        None when there are none (the module's own output stands, untouched)."""
        if self.keep:
            self.kept.setdefault(site, {})[l] = x.detach().clone()
        r = self.restore.get((site, l))
        if r is None:
            return None
        rows, pos, vec = r
        x = x.clone()
        x[rows, pos] = vec.to(x.dtype)
        return x

    def _layer_in_hook(self, l):
        def hook(mod, args, kwargs):
            if args:
                x = self._site('residual', l, args[0])
                return None if x is None else ((x, *args[1:]), kwargs)
            x = self._site('residual', l, kwargs['hidden_states'])
            return None if x is None else (args, dict(kwargs, hidden_states=x))
        return hook

    def _attn_hook(self, l):
        def hook(mod, args, out):
            x = self._site('attention', l, out[0])
            return None if x is None else (x, *out[1:])
        return hook

    def _router_hook(self, l):
        def hook(mod, args, out):
            logits, w, ids = out
            if self.margins is not None:
                # top-k membership margin (k-th minus (k+1)-th router logit) and the smallest gap
                # inside the top-k (slot order), over every row of the batch, every position
                s = torch.topk(logits.float(), ids.shape[-1] + 1, dim=-1).values
                self.margins['member'] = min(self.margins['member'], float((s[:, -2] - s[:, -1]).min()))
                if ids.shape[-1] > 1:
                    self.margins['order'] = min(self.margins['order'], float((s[:, :-2] - s[:, 1:-1]).min()))
            if self.record:
                S = self._seq
                self.rec.setdefault(l, {}).update(logits=logits[S - 1::S].detach().clone(),
                                                   w=w[S - 1::S].detach().clone(),
                                                   ids=ids[S - 1::S].detach().clone())
        return hook

    def _mlp_hook(self, l):
        def hook(mod, args, out):
            if self.record:
                self.rec.setdefault(l, {}).update(x=args[0][:, -1].detach().clone(),
                                                   out=out[:, -1].detach().clone())
            restored = self._site('moe', l, out)
            if l in self.patch:
                rows, vec = self.patch[l]
                out = out.clone() if restored is None else restored
                out[rows, -1] = vec.to(out.dtype)
                return out
            return restored
        return hook

    @torch.no_grad()
    def run(self, embeds, record=False, patch=None, keep=False, restore=None):
        """embeds (B, S, E) fp32 -> last-position logits (B, V); records / patches / keeps /
        restores per the args."""
        self.record, self.patch, self.rec = record, patch or {}, {}
        self.keep, self.restore = keep, restore or {}
        if keep:
            self.kept = {}
        self._seq = embeds.shape[1]
        try:
            out = self.model(inputs_embeds=embeds, use_cache=False, logits_to_keep=1)
        finally:
            self.record, self.patch, self.keep, self.restore = False, {}, False, {}
        return out.logits[:, -1].float()

    @torch.no_grad()
    def shared_contrib(self, l, x):
        """The shared expert's gated output for one row x (E,) (zero where the arch has none)."""
        mlp = self.layers[l].mlp
        if not hasattr(mlp, 'shared_expert'):
            return torch.zeros_like(x)
        return (torch.sigmoid(mlp.shared_expert_gate(x[None])) * mlp.shared_expert(x[None]))[0]

    @torch.no_grad()
    def expert_contrib(self, l, x, ids, w):
        """c_e = w_e * E_e(x) for one row: x (E,), ids/w (K,) -> (K, E), as the eager experts do."""
        ex = self.layers[l].mlp.experts
        out = []
        for e, we in zip(ids.tolist(), w):
            g, u = F.linear(x[None], ex.gate_up_proj[e]).chunk(2, dim=-1)
            y = F.linear(ex.act_fn(g) * u, ex.down_proj[e])
            out.append((y * we)[0])
        return torch.stack(out)


def delta(logits, t, f):
    return float(logits[t]) - float(logits[f])


def r7(x):
    return float(f'{float(x):.7g}')


def trace_case(tracer, emb_w, case, sigma, seed, expert_layer, info):
    """Everything the fixture stores for one case (full-recompute runs, one row each)."""
    tok = torch.tensor(case['tokens'])
    a, b = case['subject']
    clean = emb_w[tok].clone()                                  # (S, E)
    noise = torch.from_numpy(noise_vectors(seed, case['case_id'], range(a, b), info['n_embd'], sigma))
    noised = clean.clone()
    noised[a:b] += noise                                        # fp32 add
    t, f = case['true_id'], case['foil_id']
    L = info['n_layer']
    tracer.margins = {'member': math.inf, 'order': math.inf}

    lg_c = tracer.run(clean[None], record=True)[0]
    rc = tracer.rec
    lg_n = tracer.run(noised[None], record=True)[0]
    rn = tracer.rec
    d_c, d_n = delta(lg_c, t, f), delta(lg_n, t, f)

    layer_rescue = []
    for l in range(L):
        lg = tracer.run(noised[None], patch={l: (torch.tensor([0]), rc[l]['out'])})[0]
        layer_rescue.append(delta(lg, t, f) - d_n)

    # expert pass at expert_layer
    Le = expert_layer
    ids_c, w_c = rc[Le]['ids'][0], rc[Le]['w'][0]
    ids_n, w_n = rn[Le]['ids'][0], rn[Le]['w'][0]
    c_clean = tracer.expert_contrib(Le, rc[Le]['x'][0], ids_c, w_c)
    c_noised = tracer.expert_contrib(Le, rn[Le]['x'][0], ids_n, w_n)
    cn = {int(e): c_noised[i] for i, e in enumerate(ids_n.tolist())}
    base = rn[Le]['out'][0]
    zero = torch.zeros_like(base)
    deltas = {}
    for i, e in enumerate(ids_c.tolist()):
        deltas[e] = c_clean[i] - cn.get(e, zero)
    only_noised = [e for e in ids_n.tolist() if e not in deltas]

    def patched(vec):
        lg = tracer.run(noised[None], patch={Le: (torch.tensor([0]), vec[None])})[0]
        return delta(lg, t, f) - d_n

    experts = []
    for i, e in enumerate(ids_c.tolist()):
        experts.append({'expert': e, 'weight_clean': r7(w_c[i]), 'rescue': r7(patched(base + deltas[e]))})
    d_top = sum(deltas.values(), zero)
    d_union = d_top - sum((cn[e] for e in only_noised), zero)
    top = patched(base + d_top)
    union = patched(base + d_union)

    # consistency of the recorded pieces (routed contributions sum to the block output)
    shared_c = tracer.shared_contrib(Le, rc[Le]['x'][0])
    shared_n = tracer.shared_contrib(Le, rn[Le]['x'][0])
    for r, cs, sh in ((rc, c_clean, shared_c), (rn, c_noised, shared_n)):
        err = float((r[Le]['out'][0] - cs.sum(0) - sh).abs().max())
        assert err < 1e-4, f'case {case["case_id"]}: sum of c_e (+ shared) differs from the MoE output by {err}'

    margins, tracer.margins = tracer.margins, None
    extra = {}
    if info['shared_expert']:
        # D_union leaves the shared expert noised; with its delta added it equals the layer patch
        extra['coalition_union_with_shared'] = r7(patched(base + d_union + (shared_c - shared_n)))

    return {
        'case_id': case['case_id'], 'prompt': case['prompt'], 'tokens': case['tokens'],
        'subject': [a, b], 'true_id': t, 'foil_id': f, 'true_str': case['true_str'],
        'foil_str': case['foil_str'],
        'delta_clean': r7(d_c), 'delta_noised': r7(d_n),
        'layer_rescue': [r7(x) for x in layer_rescue],
        'expert_layer': Le,
        'experts': experts,
        'coalition_top': r7(top), 'coalition_union': r7(union), **extra,
        'routing_clean': [[int(e) for e in rc[l]['ids'][0]] for l in range(L)],
        'routing_weights_clean': [[r7(w) for w in rc[l]['w'][0]] for l in range(L)],
        'routing_noised': [[int(e) for e in rn[l]['ids'][0]] for l in range(L)],
        'routing_weights_noised': [[r7(w) for w in rn[l]['w'][0]] for l in range(L)],
        'moe_out_clean': [[r7(v) for v in rc[l]['out'][0]] for l in range(L)],
        'moe_out_noised': [[r7(v) for v in rn[l]['out'][0]] for l in range(L)],
        'router_margin': r7(margins['member']),
        '_check': {'router_order_gap': margins['order'],
                   'union_with_shared_minus_layer_patch': (float(extra['coalition_union_with_shared'])
                                                           - layer_rescue[Le]) if extra else None,
                   'union_minus_layer_patch': union - layer_rescue[Le],
                   'noise_rms_over_sigma': float(noise.double().pow(2).mean().sqrt()) / sigma,
                   'noised_embd': noised.numpy()},
    }


# ---------------------------------------------------------------------------------------------
# ROME-style grids: one site restored at one position of the noised run
# ---------------------------------------------------------------------------------------------

ROME_SITES = ('residual', 'attention', 'moe')


def rome_metrics(logits, t, f):
    """Last-position logits (B, V) fp32 -> [(delta, p_true)] per row; p(true) is a softmax over
    the whole vocabulary in float64."""
    x = logits.double()
    m = x.max(-1).values
    p = torch.exp(x[:, t] - m) / torch.exp(x - m[:, None]).sum(-1)
    return [(float(logits[i, t]) - float(logits[i, f]), float(p[i])) for i in range(x.shape[0])]


def rome_window(kind, l, n_layer, window):
    """Layers a restoration at layer l covers: l alone for the residual, else ROME's window
    [l - w/2, l + w - w/2) clipped to the model."""
    if kind == 'residual':
        return range(l, l + 1)
    return range(max(0, l - window // 2), min(n_layer, l + window - window // 2))


def rome_case(tracer, emb_w, case, sigma, seed, info, window, rows_per_run=48):
    """(grids, checks) of one case: both metrics of every restored run (not their differences to
    the noised run) and of the clean and noised runs; the router margin over these runs and how
    far batching moved a restoration that changes nothing (layer-0 residual outside the subject)."""
    tok = torch.tensor(case['tokens'])
    a, b = case['subject']
    T, L = len(case['tokens']), info['n_layer']
    clean = emb_w[tok].clone()
    noised = clean.clone()
    noise = noise_vectors(seed, case['case_id'], range(a, b), info['n_embd'], sigma)
    noised[a:b] += torch.from_numpy(noise)
    t, f = case['true_id'], case['foil_id']
    tracer.margins = {'member': math.inf, 'order': math.inf}
    (m_clean,) = rome_metrics(tracer.run(clean[None], keep=True), t, f)
    kept = tracer.kept
    (m_noised,) = rome_metrics(tracer.run(noised[None]), t, f)
    todo = [(kind, l, q) for kind in ROME_SITES for l in range(L) for q in range(T)]
    got = {}
    # the restored runs in batches of noised rows, row j restoring its own (kind, layer, position)
    for first in range(0, len(todo), rows_per_run):
        chunk = todo[first:first + rows_per_run]
        spec = {}
        for j, (kind, l, q) in enumerate(chunk):
            for l2 in rome_window(kind, l, L, window):
                spec.setdefault((kind, l2), []).append((j, q, kept[kind][l2][0, q]))
        restore = {key: (torch.tensor([r[0] for r in v]), torch.tensor([r[1] for r in v]),
                         torch.stack([r[2] for r in v])) for key, v in spec.items()}
        x = noised[None].expand(len(chunk), -1, -1).contiguous()
        for key, m in zip(chunk, rome_metrics(tracer.run(x, restore=restore), t, f)):
            got[key] = m
    margins, tracer.margins = tracer.margins, None
    out = {'case_id': case['case_id'],
           'clean': {'delta': r7(m_clean[0]), 'p_true': r7(m_clean[1])},
           'noised': {'delta': r7(m_noised[0]), 'p_true': r7(m_noised[1])}}
    for kind in ROME_SITES:
        out[kind] = {name: [[r7(got[kind, l, q][i]) for q in range(T)] for l in range(L)]
                     for i, name in enumerate(('delta', 'p_true'))}
    # outside the subject the layer-0 residual is the same in both runs: only batching can move it
    same = [got['residual', 0, q] for q in range(T) if not a <= q < b]
    p_n = max(m_noised[1], 1e-300)
    check = {'router_margin': margins['member'],
             'unchanged_delta': max((abs(d - m_noised[0]) for d, _ in same), default=0.0),
             'unchanged_p_rel': max((abs(p - m_noised[1]) / p_n for _, p in same), default=0.0)}
    return out, check


# ---------------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------------


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for blk in iter(lambda: f.read(1 << 22), b''):
            h.update(blk)
    return h.hexdigest()


def load(path, experts_impl='eager'):
    t0 = time.time()
    g = Gguf(path)
    model, info = build_model(g, experts_impl)
    return g, model, info, time.time() - t0


def check_logits(model, info, path, fixture, llama_py, threads):
    """Max |logit diff| against the f16 fixture and a live f32 llama.cpp run, every position."""
    doc = json.load(open(fixture))
    seqs = [s['tokens'] for s in doc['sequences']]
    stored = np.fromfile(os.path.join(os.path.dirname(fixture), doc['logits']), dtype='<f2')
    stored = stored.reshape(len(doc['rows']), doc['n_vocab']).astype(np.float32)
    _, live = llama_call(path, llama_py, evals=seqs, threads=threads)
    res = {'fixture': os.path.relpath(fixture, ROOT), 'max_abs_vs_fixture_f16': 0.0,
           'max_abs_vs_llama_f32': 0.0, 'argmax_agree': True, 'logit_rms': 0.0}
    hf = []
    with torch.no_grad():
        for toks in seqs:
            hf.append(model(input_ids=torch.tensor([toks]), use_cache=False).logits[0].float().numpy())
    # the fixture holds f16: judge the excess over half an f16 ulp of the stored value too
    res['max_excess_over_f16_rounding'] = 0.0
    for k, (s, p) in enumerate(doc['rows']):
        d = np.abs(hf[s][p] - stored[k])
        half_ulp = np.spacing(np.abs(stored[k]).astype(np.float16)).astype(np.float32) / 2
        res['max_abs_vs_fixture_f16'] = max(res['max_abs_vs_fixture_f16'], float(d.max()))
        res['max_excess_over_f16_rounding'] = max(res['max_excess_over_f16_rounding'],
                                                  float((d - half_ulp).max()))
    for i, toks in enumerate(seqs):
        ref = live[f'eval{i}']
        res['max_abs_vs_llama_f32'] = max(res['max_abs_vs_llama_f32'], float(np.abs(hf[i] - ref).max()))
        res['argmax_agree'] &= bool((hf[i].argmax(-1) == ref.argmax(-1)).all())
    allhf = np.concatenate(hf)
    res['logit_rms'] = float(np.sqrt(np.mean(allhf ** 2)))
    res['positions'] = int(allhf.shape[0])
    return res


def dumps_compact(x, ind=''):
    """JSON with one key per line but every list of scalars (tokens, vectors) on one line."""
    if isinstance(x, dict):
        if not x:
            return '{}'
        inner = ind + ' '
        return '{\n' + ',\n'.join(f'{inner}{json.dumps(k)}: {dumps_compact(v, inner)}'
                                   for k, v in x.items()) + '\n' + ind + '}'
    if isinstance(x, list):
        if all(not isinstance(v, (dict, list)) for v in x):
            return json.dumps(x, ensure_ascii=False)
        inner = ind + ' '
        return '[\n' + ',\n'.join(inner + dumps_compact(v, inner) for v in x) + '\n' + ind + ']'
    return json.dumps(x, ensure_ascii=False)


def cmd_fixture(a):
    philox_selftest()
    name = os.path.basename(a.model)[:-5] if a.model.endswith('.gguf') else os.path.basename(a.model)
    g, model, info, load_s = load(a.model)
    tracer = Tracer(model)
    emb_w = model.model.embed_tokens.weight.detach()
    sigma = a.k * population_std(emb_w.numpy())
    bos = {'auto': info['add_bos'], 'on': True, 'off': False}[a.bos]
    facts = json.load(open(a.facts))
    cases, rejected, llama_ver = prepare_cases(facts, a.model, bos, a.llama_python)
    L = a.expert_layer if a.expert_layer is not None else EXPERT_LAYER.get(name, info['n_layer'] - 1)
    if not 0 <= L < info['n_layer']:
        sys.exit(f'trace_reference: --expert-layer {L} out of range')
    out_cases, checks = [], {'min_router_margin': math.inf, 'min_router_order_gap': math.inf,
                             'max_abs_union_minus_layer_patch': 0.0}
    for c in cases:
        r = trace_case(tracer, emb_w, c, sigma, a.seed, L, info)
        ck = r.pop('_check')
        checks['min_router_margin'] = min(checks['min_router_margin'], r['router_margin'])
        checks['min_router_order_gap'] = min(checks['min_router_order_gap'], ck['router_order_gap'])
        if ck['union_with_shared_minus_layer_patch'] is not None:
            checks['max_abs_union_with_shared_minus_layer_patch'] = max(
                checks.get('max_abs_union_with_shared_minus_layer_patch', 0.0),
                abs(ck['union_with_shared_minus_layer_patch']))
        checks['max_abs_union_minus_layer_patch'] = max(checks['max_abs_union_minus_layer_patch'],
                                                        abs(ck['union_minus_layer_patch']))
        r['_noised_embd'] = ck['noised_embd']
        out_cases.append(r)
        print(f'{name} case {c["case_id"]:>6}: S={len(c["tokens"])} subj={c["subject"]} '
              f'dC={r["delta_clean"]:+.4f} dN={r["delta_noised"]:+.4f} '
              f'layers={[round(x, 3) for x in r["layer_rescue"]]} top={r["coalition_top"]:+.4f} '
              f'union={r["coalition_union"]:+.4f} margin={r["router_margin"]:.2e}', flush=True)
    # cross-check the clean and noised deltas with llama.cpp itself (tokens / embeddings input)
    if not a.no_llama_check:
        _, arr = llama_call(a.model, a.llama_python, evals=[c['tokens'] for c in out_cases],
                            embds=[c['_noised_embd'] for c in out_cases], threads=a.threads)
        dc = dn = 0.0
        for i, c in enumerate(out_cases):
            lc, ln = arr[f'eval{i}'][-1], arr[f'embd{i}']
            dc = max(dc, abs(float(lc[c['true_id']]) - float(lc[c['foil_id']]) - c['delta_clean']))
            dn = max(dn, abs(float(ln[c['true_id']]) - float(ln[c['foil_id']]) - c['delta_noised']))
        checks['max_abs_delta_clean_vs_llama_cpp'] = dc
        checks['max_abs_delta_noised_vs_llama_cpp'] = dn
    for c in out_cases:
        c.pop('_noised_embd')
    rome = None
    if a.rome:
        if a.rome_window < 1:
            sys.exit('trace_reference: --rome-window must be at least 1')
        rome = {'window': a.rome_window, 'values': 'metric of the restored run', 'checks': {
            'min_router_margin': math.inf, 'max_abs_delta_layer0_unnoised_minus_noised': 0.0,
            'max_rel_p_true_layer0_unnoised_minus_noised': 0.0}, 'cases': []}
        for c in cases[:a.rome]:
            t0 = time.time()
            r, ck = rome_case(tracer, emb_w, c, sigma, a.seed, info, a.rome_window)
            rc = rome['checks']
            rc['min_router_margin'] = min(rc['min_router_margin'], ck['router_margin'])
            rc['max_abs_delta_layer0_unnoised_minus_noised'] = max(
                rc['max_abs_delta_layer0_unnoised_minus_noised'], ck['unchanged_delta'])
            rc['max_rel_p_true_layer0_unnoised_minus_noised'] = max(
                rc['max_rel_p_true_layer0_unnoised_minus_noised'], ck['unchanged_p_rel'])
            rome['cases'].append(r)
            print(f'{name} rome {c["case_id"]:>6}: T={len(c["tokens"])} clean {r["clean"]} '
                  f'noised {r["noised"]} {time.time() - t0:.1f}s', flush=True)
    fixture = os.path.join(ROOT, 'tests', 'fixtures', 'models', name + '.json')
    if os.path.exists(fixture) and not a.no_llama_check:
        checks['logits'] = check_logits(model, info, a.model, fixture, a.llama_python, a.threads)
    doc = {
        'settings': {
            'model': name, 'file_sha256': sha256_file(a.model), 'arch': info['arch'],
            'hf_class': info['hf_class'], 'n_layer': info['n_layer'], 'n_embd': info['n_embd'],
            'n_expert': info['n_expert'], 'n_expert_used': info['n_expert_used'],
            'renormalise_topk': info['renormalise_topk'], 'shared_expert': info['shared_expert'],
            'seed': a.seed, 'draw': 0, 'noise_k': a.k, 'embd_std': sigma / a.k, 'sigma': sigma,
            'bos': a.bos, 'add_bos': bos, 'expert_layer': L,
            'facts': os.path.relpath(os.path.abspath(a.facts), ROOT), 'facts_sha256': sha256_file(a.facts),
            'dtype': 'f32', 'attn_implementation': 'eager', 'experts_implementation': 'eager',
            'transformers': transformers.__version__, 'torch': torch.__version__.split('+')[0],
            'gguf': getattr(gguf, '__version__', None) or _dist_version('gguf'),
            'numpy': np.__version__, 'llama_cpp_python_tokenizer': llama_ver,
            'rounding': 'floats to 7 significant digits',
        },
        'checks': checks,
        'cases': out_cases,
        'rejected': rejected,
    }
    if rome:
        doc['rome'] = rome
    out = a.out or os.path.join(ROOT, 'tests', 'fixtures', 'trace', f'ref_{name}.json')
    with open(out, 'w') as fh:
        fh.write(dumps_compact(doc) + '\n')
    print(f'{name}: {len(out_cases)} cases, {len(rejected)} rejected, sigma {sigma:.6g}, '
          f'load {load_s:.1f}s -> {out}')
    print(json.dumps(checks))
    if rome:
        print(json.dumps({'rome': rome['checks']}))


def _dist_version(pkg):
    try:
        from importlib.metadata import version
        return version(pkg)
    except Exception:
        return None


def cmd_check(a):
    name = os.path.basename(a.model)[:-5]
    g, model, info, load_s = load(a.model)
    fixture = a.fixture or os.path.join(ROOT, 'tests', 'fixtures', 'models', name + '.json')
    res = check_logits(model, info, a.model, fixture, a.llama_python, a.threads)
    print(json.dumps(dict(model=name, load_s=round(load_s, 2), **res)))


def cmd_bench(a):
    """The protocol as a PyTorch implementation would run it, batched per case."""
    philox_selftest()
    t0 = time.time()
    a.experts_impl = a.experts_impl or 'grouped_mm'
    g, model, info, load_s = load(a.model, a.experts_impl)
    tracer = Tracer(model)
    emb_w = model.model.embed_tokens.weight.detach()
    sigma = a.k * population_std(emb_w.numpy())
    prep_s = time.time() - t0
    bos = {'auto': info['add_bos'], 'on': True, 'off': False}[a.bos]
    cases, rejected, _ = prepare_cases(json.load(open(a.facts)), a.model, bos, a.llama_python)
    if not cases:
        sys.exit('trace_reference: no valid case in the facts file')
    L, Le = info['n_layer'], (a.expert_layer if a.expert_layer is not None else info['n_layer'] - 1)
    K = info['n_expert_used']
    work = [cases[i % len(cases)] for i in range(a.bench)]
    prefill_rows = patched_rows = tokens = 0
    t1, cpu1 = time.time(), time.process_time()
    for c in work:
        tok = torch.tensor(c['tokens'])
        a_, b_ = c['subject']
        clean = emb_w[tok]
        noised = clean.clone()
        noised[a_:b_] += torch.from_numpy(noise_vectors(a.seed, c['case_id'], range(a_, b_), info['n_embd'], sigma))
        t, f = c['true_id'], c['foil_id']
        # clean + noised prefill in one batch (B=2), recording the last position of every layer
        lg = tracer.run(torch.stack([clean, noised]), record=True)
        rec = tracer.rec
        d_n = delta(lg[1], t, f)
        prefill_rows += 2
        tokens += 2 * len(c['tokens'])
        # layer sweep: L copies of the noised input; row l is patched at layer l
        x = noised[None].expand(L, -1, -1).contiguous()
        patch = {l: (torch.tensor([l]), rec[l]['out'][0][None]) for l in range(L)}
        lg = tracer.run(x, patch=patch)
        _ = [delta(lg[l], t, f) - d_n for l in range(L)]
        patched_rows += L
        tokens += L * len(c['tokens'])
        # expert pass at Le: one row per clean-routed expert + top + union coalitions
        ids_c, w_c = rec[Le]['ids'][0], rec[Le]['w'][0]
        ids_n, w_n = rec[Le]['ids'][1], rec[Le]['w'][1]
        cc = tracer.expert_contrib(Le, rec[Le]['x'][0], ids_c, w_c)
        cn_ = tracer.expert_contrib(Le, rec[Le]['x'][1], ids_n, w_n)
        cn = {int(e): cn_[i] for i, e in enumerate(ids_n.tolist())}
        base = rec[Le]['out'][1]
        zero = torch.zeros_like(base)
        ds = [cc[i] - cn.get(e, zero) for i, e in enumerate(ids_c.tolist())]
        d_top = torch.stack(ds).sum(0)
        d_union = d_top - sum((cn[e] for e in cn if e not in set(ids_c.tolist())), zero)
        vecs = torch.stack([base + d for d in ds] + [base + d_top, base + d_union])
        B = vecs.shape[0]
        x = noised[None].expand(B, -1, -1).contiguous()
        lg = tracer.run(x, patch={Le: (torch.arange(B), vecs)})
        _ = [delta(lg[i], t, f) - d_n for i in range(B)]
        patched_rows += B
        tokens += B * len(c['tokens'])
    secs, cpu_secs = time.time() - t1, time.process_time() - cpu1
    rows = prefill_rows + patched_rows
    print(json.dumps({'model': os.path.basename(a.model), 'cases': len(work), 'prefill_rows': prefill_rows,
                      'patched_rows': patched_rows, 'tokens_computed': tokens,
                      'seconds': round(secs, 3), 'cpu_seconds': round(cpu_secs, 3), 'cases_per_s': round(len(work) / secs, 4),
                      'rows_per_s': round(rows / secs, 3), 'threads': torch.get_num_threads(),
                      'load_s': round(load_s, 1), 'load_and_sigma_s': round(prep_s, 1),
                      'loadavg_1m': round(os.getloadavg()[0], 2), 'cpus': os.cpu_count(),
                      'experts_implementation': a.experts_impl, 'expert_layer': Le, 'top_k': K,
                      'valid_cases_in_facts': len(cases), 'torch': torch.__version__,
                      'transformers': transformers.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model', help='GGUF file')
    ap.add_argument('--facts', default=DEFAULT_FACTS)
    ap.add_argument('--out', help='fixture path (default tests/fixtures/trace/ref_<model>.json)')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--k', type=float, default=3.0, help='noise scale: sigma = k * std(token_embd)')
    ap.add_argument('--bos', choices=('auto', 'on', 'off'), default='auto')
    ap.add_argument('--expert-layer', type=int)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--llama-python', default=DEFAULT_LLAMA_PY,
                    help='python with llama-cpp-python (tokenizer and logits oracle; '
                         'default $XT_LLAMA_PYTHON)')
    ap.add_argument('--no-llama-check', action='store_true', help='skip the llama.cpp cross-checks')
    ap.add_argument('--rome', type=int, default=0, metavar='N',
                    help='ROME-style grids (both metrics), first N valid cases in facts order')
    ap.add_argument('--rome-window', type=int, default=10, metavar='W',
                    help='layers per attention / MoE restoration window (default 10)')
    ap.add_argument('--check-logits', action='store_true')
    ap.add_argument('--fixture', help='llama.cpp logits fixture JSON for --check-logits')
    ap.add_argument('--bench', type=int, metavar='N')
    ap.add_argument('--experts-impl', help='transformers experts implementation for --bench (default '
                    'grouped_mm, transformers\' own default; the fixtures always use eager)')
    a = ap.parse_args()
    if not a.llama_python:
        ap.error('the tokenizer oracle needs a python with llama-cpp-python: pass --llama-python '
                 'or set XT_LLAMA_PYTHON')
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if a.check_logits:
        cmd_check(a)
    elif a.bench:
        cmd_bench(a)
    else:
        cmd_fixture(a)


if __name__ == '__main__':
    main()
