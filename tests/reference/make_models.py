#!/usr/bin/env python3
"""Writes small synthetic GGUF models of every supported architecture, for the forward-pass tests.

    python3 tests/reference/make_models.py OUT_DIR [--only NAME,...] [--list] [--big] [--tokenizers DIR]

Each model has the tensor names, shapes and metadata keys that llama.cpp's converter
(convert_hf_to_gguf.py) and quantizer (llama-quantize) would write for that architecture, a real
tokenizer copied from the vocabulary-only GGUFs that build_tokenizer_fixtures.sh writes (directory
from --tokenizers or $XT_TOKENIZER_GGUF_DIR; built on the fly when neither is given), and random
weights scaled so that activations stay O(1): linear weights N(0, 1/fan_in), norm weights near 1,
a router with enough spread that its top-k is not tied.

Everything is deterministic: every tensor's generator is seeded from (model family, tensor name),
so one family's F32 and quantized files hold the same underlying weights, and every file is
byte-identical from run to run (the fixtures record each file's sha256).

gguf.quants has no K-quant quantizer, so Q4_K, Q5_K and Q6_K blocks are packed here (per-sub-block
scales from the sub-block's min/max, as simple as llama.cpp's reference quantizers without their
error search); every packed tensor is checked against gguf.quants.dequantize before it is written.
The small models are the default; --big adds the two real-shape models (Qwen3-30B-A3B layers).
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

QK_K = 256

# ---------------------------------------------------------------------------------------------
# K-quant packing (vectorised over blocks). Layouts as ggml-common.h defines them.
# ---------------------------------------------------------------------------------------------


def _f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16)


def _pack_scale_min_k4(sc, mn):
    """sc, mn: (B, 8) uint8 6-bit values -> (B, 12) bytes in get_scale_min_k4's layout."""
    q = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    q[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    q[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    q[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    return q


def _affine_k(x, nmax):
    """Q4_K / Q5_K core: x (B, 256) -> d, dmin (B,) f16, sc, mn (B, 8) 6-bit, q (B, 8, 32) in 0..nmax."""
    xs = x.reshape(-1, 8, 32)
    lo = np.minimum(xs.min(axis=2), 0.0)             # a sub-block's offset is never positive
    hi = xs.max(axis=2)
    scale = (hi - lo) / nmax                          # (B, 8)
    minv = -lo
    d = _f16(scale.max(axis=1) / 63.0)
    dmin = _f16(minv.max(axis=1) / 63.0)
    d32, dmin32 = d.astype(np.float32), dmin.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        sc = np.where(d32[:, None] > 0, np.rint(scale / d32[:, None]), 0)
        mn = np.where(dmin32[:, None] > 0, np.rint(minv / dmin32[:, None]), 0)
    sc = np.clip(sc, 0, 63).astype(np.uint8)
    mn = np.clip(mn, 0, 63).astype(np.uint8)
    step = (d32[:, None] * sc).astype(np.float32)     # (B, 8)
    off = (dmin32[:, None] * mn).astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        q = np.where(step[:, :, None] > 0, np.rint((xs + off[:, :, None]) / step[:, :, None]), 0)
    q = np.clip(q, 0, nmax).astype(np.uint8)
    return d, dmin, sc, mn, q


def quantize_q4_k(x):
    """x: (B*256,) f32 -> (B, 144) bytes of block_q4_K {d, dmin, scales[12], qs[128]}."""
    d, dmin, sc, mn, q = _affine_k(x.reshape(-1, QK_K), 15)
    B = q.shape[0]
    qs = (q[:, 0::2, :] | (q[:, 1::2, :] << 4)).reshape(B, 128)  # 64-value chunk c: low nibbles sub 2c
    out = np.empty((B, 144), dtype=np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(B, 2)
    out[:, 2:4] = dmin.view(np.uint8).reshape(B, 2)
    out[:, 4:16] = _pack_scale_min_k4(sc, mn)
    out[:, 16:144] = qs
    return out


def quantize_q5_k(x):
    """x: (B*256,) f32 -> (B, 176) bytes of block_q5_K {d, dmin, scales[12], qh[32], qs[128]}."""
    d, dmin, sc, mn, q = _affine_k(x.reshape(-1, QK_K), 31)
    B = q.shape[0]
    lo = q & 0xF
    qs = (lo[:, 0::2, :] | (lo[:, 1::2, :] << 4)).reshape(B, 128)
    hb = (q >> 4).astype(np.uint8)                    # (B, 8, 32): sub-block j's high bit -> qh bit j
    qh = np.zeros((B, 32), dtype=np.uint8)
    for j in range(8):
        qh |= hb[:, j, :] << j
    out = np.empty((B, 176), dtype=np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(B, 2)
    out[:, 2:4] = dmin.view(np.uint8).reshape(B, 2)
    out[:, 4:16] = _pack_scale_min_k4(sc, mn)
    out[:, 16:48] = qh
    out[:, 48:176] = qs
    return out


def quantize_q6_k(x):
    """x: (B*256,) f32 -> (B, 210) bytes of block_q6_K {ql[128], qh[64], scales[16] int8, d}."""
    xs = x.reshape(-1, 16, 16)
    B = xs.shape[0]
    scale = np.abs(xs).max(axis=2) / 31.0             # (B, 16), symmetric, q in -32..31
    d = _f16(scale.max(axis=1) / 127.0)
    d32 = d.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        sc = np.where(d32[:, None] > 0, np.rint(scale / d32[:, None]), 0)
    sc = np.clip(sc, 0, 127).astype(np.int8)
    step = (d32[:, None] * sc.astype(np.float32)).astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        q = np.where(step[:, :, None] > 0, np.rint(xs / step[:, :, None]), 0)
    q = (np.clip(q, -32, 31) + 32).astype(np.uint8).reshape(B, 2, 4, 32)  # half n, quarter k, l
    h0, h1, h2, h3 = q[:, :, 0], q[:, :, 1], q[:, :, 2], q[:, :, 3]       # each (B, 2, 32)
    ql = np.concatenate([(h0 & 0xF) | ((h2 & 0xF) << 4), (h1 & 0xF) | ((h3 & 0xF) << 4)], axis=2)
    qh = (h0 >> 4) | ((h1 >> 4) << 2) | ((h2 >> 4) << 4) | ((h3 >> 4) << 6)
    out = np.empty((B, 210), dtype=np.uint8)
    out[:, 0:128] = ql.reshape(B, 128)
    out[:, 128:192] = qh.reshape(B, 64)
    out[:, 192:208] = sc.view(np.uint8)
    out[:, 208:210] = d.view(np.uint8).reshape(B, 2)
    return out


K_QUANTIZERS = {QT.Q4_K: quantize_q4_k, QT.Q5_K: quantize_q5_k, QT.Q6_K: quantize_q6_k}
# Relative RMS error (error rms / value rms) a packed Gaussian tensor must stay under; measured
# about 0.078 (Q4_K), 0.038 (Q5_K), 0.019 (Q6_K), 0.005 (Q8_0), so these catch a wrong layout.
MAX_REL_RMS = {QT.Q4_K: 0.13, QT.Q5_K: 0.07, QT.Q6_K: 0.035, QT.Q8_0: 0.01, QT.Q5_0: 0.07,
               QT.Q5_1: 0.07, QT.F16: 1e-3}


def quantize(x, qtype):
    """x: f32 array, last axis the contiguous ggml ne[0] -> uint8 rows (..., bytes per row)."""
    if qtype == QT.F32:
        return x
    rows = x.reshape(-1, x.shape[-1])
    step = max(1, (1 << 22) // rows.shape[1])     # ~4M values at a time bounds the temporaries
    parts = []
    for r in range(0, rows.shape[0], step):
        chunk = rows[r:r + step]
        if qtype in K_QUANTIZERS:
            packed = K_QUANTIZERS[qtype](chunk.reshape(-1))
            parts.append(packed.reshape(chunk.shape[0], -1))
        else:
            parts.append(gguf.quants.quantize(chunk, qtype))
    out = np.concatenate(parts, axis=0).reshape(*x.shape[:-1], -1)
    # check a sample of rows against gguf's own dequantizer (the independent reader)
    flat_x = x.reshape(-1, x.shape[-1])
    flat_q = out.reshape(flat_x.shape[0], -1)
    idx = np.unique(np.linspace(0, flat_x.shape[0] - 1, num=min(flat_x.shape[0], 256)).astype(np.int64))
    back = gguf.quants.dequantize(flat_q[idx], qtype).reshape(len(idx), -1)
    ref = flat_x[idx]
    rel = float(np.sqrt(np.mean((back - ref) ** 2)) / max(np.sqrt(np.mean(ref ** 2)), 1e-30))
    if rel > MAX_REL_RMS[qtype]:
        raise RuntimeError(f'{qtype.name} round trip error {rel:.4f} over {MAX_REL_RMS[qtype]}')
    return out


# ---------------------------------------------------------------------------------------------
# Which type each tensor gets: llama-quantize's rules (src/llama-quant.cpp) in miniature.
# ---------------------------------------------------------------------------------------------

FALLBACK = {QT.Q4_K: QT.Q5_0, QT.Q5_K: QT.Q5_1, QT.Q6_K: QT.Q8_0}   # when ne[0] % 256 != 0
FILE_TYPE = {'f32': gguf.LlamaFileType.ALL_F32, 'f16': gguf.LlamaFileType.MOSTLY_F16,
             'q8_0': gguf.LlamaFileType.MOSTLY_Q8_0, 'q4_k': gguf.LlamaFileType.MOSTLY_Q4_K_S,
             'q5_k': gguf.LlamaFileType.MOSTLY_Q5_K_S, 'q6_k': gguf.LlamaFileType.MOSTLY_Q6_K,
             'q4_k_m': gguf.LlamaFileType.MOSTLY_Q4_K_M}
BASE_TYPE = {'f32': QT.F32, 'f16': QT.F16, 'q8_0': QT.Q8_0, 'q4_k': QT.Q4_K, 'q5_k': QT.Q5_K,
             'q6_k': QT.Q6_K, 'q4_k_m': QT.Q4_K}


def _use_more_bits(i, n):
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_type(name, ne, wtype, hp, counters):
    """The GGML type of tensor `name` (ggml shape `ne`) in a file of weight type `wtype`."""
    if len(ne) < 2 or name.endswith('_norm.weight') or 'ffn_gate_inp' in name:
        return QT.F32                       # 1-D tensors, norms and routers stay F32 (converter + quantizer)
    t = BASE_TYPE[wtype]
    if wtype == 'q4_k_m':
        n_layer = hp['n_layer']
        layer = int(name.split('.')[1]) if name.startswith('blk.') else -1
        is_tied_embd = name == 'token_embd.weight' and hp.get('tied')
        if name == 'output.weight' or is_tied_embd:
            t = QT.Q6_K
        elif '.attn_v.' in name:
            i = counters['attn_v']
            counters['attn_v'] += 1
            if hp.get('n_expert') == 8:
                t = QT.Q8_0
            elif _use_more_bits(i, n_layer):
                t = QT.Q6_K
        elif '.attn_k.' in name and hp.get('n_expert') == 8:
            t = QT.Q8_0
        elif '.attn_output.' in name and hp.get('n_expert') == 8:
            t = QT.Q5_K
        elif '.ffn_down' in name and _use_more_bits(layer, n_layer):
            t = QT.Q6_K
    if ne[0] % gguf.GGML_QUANT_SIZES[t][0] != 0:
        t = FALLBACK.get(t, QT.F16)
        if ne[0] % gguf.GGML_QUANT_SIZES[t][0] != 0:
            t = QT.F16
    return t


# ---------------------------------------------------------------------------------------------
# Model descriptions
# ---------------------------------------------------------------------------------------------

# family -> hyper-parameters. n_embd 256 so that K-quant blocks (256 along ne[0]) fit the input
# side of every projection; some expert widths are not multiples of 256, as in Qwen1.5-MoE
# (1408), so llama.cpp's fallback types (Q5_0 for Q4_K ...) appear where they would in real files.
FAMILIES = {
    'qwen3moe': dict(arch='qwen3moe', n_embd=256, n_layer=2, n_head=8, n_head_kv=2, head_dim=64,
                     n_ff=768, n_expert=16, n_expert_used=4, n_ff_exp=256, rope_base=1e6,
                     qk_norm='head', tok='llama2', ctx=40960),
    'qwen2moe': dict(arch='qwen2moe', n_embd=256, n_layer=2, n_head=8, n_head_kv=2, head_dim=32,
                     n_ff=512, n_expert=16, n_expert_used=4, n_ff_exp=128, n_ff_shexp=512,
                     rope_base=1e6, qkv_bias=True, tok='llama2', ctx=8192),
    'mixtral': dict(arch='llama', n_embd=256, n_layer=2, n_head=8, n_head_kv=2, head_dim=32,
                    n_ff=256, n_expert=8, n_expert_used=2, rope_base=1e6, tok='llama2', ctx=32768,
                    rope_dim=True, vocab_size=True),
    'olmoe': dict(arch='olmoe', n_embd=256, n_layer=2, n_head=8, n_head_kv=8, head_dim=32,
                  n_ff=128, n_expert=32, n_expert_used=8, rope_base=1e4, qk_norm='full',
                  tok='llama2', ctx=4096),
    'llama': dict(arch='llama', n_embd=256, n_layer=2, n_head=8, n_head_kv=4, head_dim=32,
                  n_ff=512, rope_base=1e4, tok='llama2', ctx=4096, rope_dim=True, vocab_size=True),
    'qwen2': dict(arch='qwen2', n_embd=256, n_layer=2, n_head=8, n_head_kv=2, head_dim=32,
                  n_ff=512, rope_base=1e6, qkv_bias=True, tok='llama2', ctx=32768),
    'qwen3': dict(arch='qwen3', n_embd=256, n_layer=2, n_head=4, n_head_kv=2, head_dim=128,
                  n_ff=512, rope_base=1e6, qk_norm='head', tok='llama2', ctx=40960, tied=True),
    # Qwen3-30B-A3B's layer shapes, 2 of its 48 layers, with its real 151,936-token vocabulary
    'qwen3moe-real': dict(arch='qwen3moe', n_embd=2048, n_layer=2, n_head=32, n_head_kv=4,
                          head_dim=128, n_ff=6144, n_expert=128, n_expert_used=8, n_ff_exp=768,
                          rope_base=1e6, qk_norm='head', tok='qwen3', ctx=40960),
}


def _models():
    """name -> (family, weight type, overrides). Order is the --list order."""
    m = {}
    for fam in ('qwen3moe', 'qwen2moe', 'mixtral', 'olmoe', 'llama', 'qwen2', 'qwen3'):
        m[f'{fam}-f32'] = (fam, 'f32', {})
    for wt in ('f16', 'q8_0', 'q4_k', 'q5_k', 'q6_k', 'q4_k_m'):
        m[f'qwen3moe-{wt}'] = ('qwen3moe', wt, {})
    for fam in ('qwen2moe', 'mixtral', 'olmoe', 'llama', 'qwen2', 'qwen3'):
        for wt in ('q8_0', 'q4_k'):
            m[f'{fam}-{wt}'] = (fam, wt, {})
    # Mixtral as the first converters wrote it: one 2-D tensor per expert, blk.N.ffn_gate.E.weight
    m['mixtral-legacy-f32'] = ('mixtral', 'f32', {'legacy_experts': True})
    # the real Qwen3 vocabulary on a small model (the others carry Llama 2's, to keep logits small)
    m['qwen3moe-qtok-q4_k_m'] = ('qwen3moe', 'q4_k_m', {'tok': 'qwen3'})
    return m


MODELS = _models()
BIG_MODELS = {
    'qwen3moe-real-2l': ('qwen3moe-real', 'q4_k_m', {}),
    # the same weights in Q8_0: each expert tensor is 128 x 768 x 2048 Q8_0 = 214 MB > 128 MiB
    'qwen3moe-real-2l-q8_0': ('qwen3moe-real', 'q8_0', {}),
}


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _rng(family, tname):
    h = hashlib.sha256(f'expertrace:{family}:{tname}'.encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(h[:16], 'little')))


def _normal(family, tname, shape, std, mean=0.0):
    """N(mean, std^2) f32 of numpy shape `shape` (reversed ggml ne), drawn in fixed-size chunks."""
    rng = _rng(family, tname)
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float32)
    chunk = 1 << 24
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        out[s:e] = rng.standard_normal(e - s, dtype=np.float32)
    out *= np.float32(std)
    if mean:
        out += np.float32(mean)
    return out.reshape(shape)


class Writer:
    """GGUFWriter plus per-tensor type selection and the file's type census."""

    def __init__(self, path, arch, hp, wtype):
        self.w = gguf.GGUFWriter(path, arch)
        self.hp, self.wtype = hp, wtype
        self.counters = {'attn_v': 0}
        self.types = {}

    def tensor(self, name, x):
        ne = tuple(reversed(x.shape))
        t = tensor_type(name, ne, self.wtype, self.hp, self.counters)
        self.types[name] = t.name
        if t == QT.F32:
            self.w.add_tensor(name, np.ascontiguousarray(x, dtype=np.float32))
        elif t == QT.F16:
            self.w.add_tensor(name, x.astype(np.float16))
        else:
            self.w.add_tensor(name, quantize(x, t), raw_dtype=t)


def _add_tokenizer(w, tok_path):
    """Copies every tokenizer.* key of a vocabulary-only GGUF, byte for byte."""
    r = gguf.GGUFReader(tok_path)
    n_vocab = None
    for key, f in r.fields.items():
        if not key.startswith('tokenizer.'):
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            sub = f.types[1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(f.parts[i]) for i in f.data]
            else:
                val = [f.parts[i][0].item() for i in f.data]
            w.add_key_value(key, val, vt, sub)
            if key == 'tokenizer.ggml.tokens':
                n_vocab = len(val)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_key_value(key, bytes(f.parts[f.data[0]]), vt)
        else:
            w.add_key_value(key, f.parts[f.data[0]][0].item(), vt)
    return n_vocab


def build(name, spec, out_dir, tok_dir):
    family, wtype, over = spec
    hp = dict(FAMILIES[family])
    hp.update(over)
    arch = hp['arch']
    path = os.path.join(out_dir, name + '.gguf')
    tmp = path + '.tmp'
    wr = Writer(tmp, arch, hp, wtype)
    w = wr.w

    # metadata: what convert_hf_to_gguf.py writes for these architectures
    E, L = hp['n_embd'], hp['n_layer']
    H, HKV, D = hp['n_head'], hp['n_head_kv'], hp['head_dim']
    w.add_name(f'expertrace synthetic {name}')
    w.add_context_length(hp['ctx'])
    w.add_embedding_length(E)
    w.add_block_count(L)
    w.add_feed_forward_length(hp['n_ff'])
    w.add_head_count(H)
    w.add_head_count_kv(HKV)
    w.add_rope_freq_base(hp['rope_base'])
    w.add_layer_norm_rms_eps(1e-6 if arch != 'llama' else 1e-5)
    if hp.get('n_expert'):
        w.add_expert_count(hp['n_expert'])
        w.add_expert_used_count(hp['n_expert_used'])
    if hp.get('n_ff_exp'):
        w.add_expert_feed_forward_length(hp['n_ff_exp'])
    if hp.get('n_ff_shexp'):
        w.add_expert_shared_feed_forward_length(hp['n_ff_shexp'])
    if arch in ('qwen3', 'qwen3moe'):                  # config.json carries head_dim
        w.add_key_length(D)
        w.add_value_length(D)
    if hp.get('rope_dim'):                             # the llama converter writes it
        w.add_rope_dimension_count(D)
    w.add_file_type(FILE_TYPE[wtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tok_path = os.path.join(tok_dir, hp['tok'] + '.gguf')
    V = _add_tokenizer(w, tok_path)
    if hp.get('vocab_size'):
        w.add_vocab_size(V)

    # weights (numpy shapes are ggml ne reversed: (rows, ne[0]))
    fam = family if hp['tok'] == FAMILIES[family]['tok'] else family + ':' + hp['tok']
    nrm = lambda n, shape: _normal(fam, n, shape, 0.1, 1.0)          # norm weights ~ 1 +- 0.1
    lin = lambda n, shape, scale=1.0: _normal(fam, n, shape, scale / np.sqrt(shape[-1]))
    # Output rows get log-normal norms (sigma 0.8), like the frequency-dependent norms of a trained
    # lm head: the top logit then usually stands clear of the second (a median gap of ~2 logit rms
    # instead of ~0.15 for iid rows), so argmax checks do not hinge on rounding.
    row_scale = np.exp(0.8 * _normal(fam, 'output.row_scale', (V, 1), 1.0))
    embd = _normal(fam, 'token_embd.weight', (V, E), 1.0)
    if hp.get('tied'):
        embd *= row_scale
    wr.tensor('token_embd.weight', embd)
    del embd
    for i in range(L):
        p = f'blk.{i}.'
        wr.tensor(p + 'attn_norm.weight', nrm(p + 'attn_norm.weight', (E,)))
        wr.tensor(p + 'attn_q.weight', lin(p + 'attn_q.weight', (H * D, E)))
        wr.tensor(p + 'attn_k.weight', lin(p + 'attn_k.weight', (HKV * D, E)))
        wr.tensor(p + 'attn_v.weight', lin(p + 'attn_v.weight', (HKV * D, E)))
        if hp.get('qkv_bias'):
            wr.tensor(p + 'attn_q.bias', _normal(fam, p + 'attn_q.bias', (H * D,), 0.1))
            wr.tensor(p + 'attn_k.bias', _normal(fam, p + 'attn_k.bias', (HKV * D,), 0.1))
            wr.tensor(p + 'attn_v.bias', _normal(fam, p + 'attn_v.bias', (HKV * D,), 0.1))
        if hp.get('qk_norm') == 'head':
            wr.tensor(p + 'attn_q_norm.weight', nrm(p + 'attn_q_norm.weight', (D,)))
            wr.tensor(p + 'attn_k_norm.weight', nrm(p + 'attn_k_norm.weight', (D,)))
        elif hp.get('qk_norm') == 'full':
            wr.tensor(p + 'attn_q_norm.weight', nrm(p + 'attn_q_norm.weight', (H * D,)))
            wr.tensor(p + 'attn_k_norm.weight', nrm(p + 'attn_k_norm.weight', (HKV * D,)))
        wr.tensor(p + 'attn_output.weight', lin(p + 'attn_output.weight', (E, H * D)))
        wr.tensor(p + 'ffn_norm.weight', nrm(p + 'ffn_norm.weight', (E,)))
        if not hp.get('n_expert'):
            F = hp['n_ff']
            wr.tensor(p + 'ffn_gate.weight', lin(p + 'ffn_gate.weight', (F, E)))
            wr.tensor(p + 'ffn_up.weight', lin(p + 'ffn_up.weight', (F, E)))
            wr.tensor(p + 'ffn_down.weight', lin(p + 'ffn_down.weight', (E, F)))
            continue
        X = hp['n_expert']
        F = hp.get('n_ff_exp') or hp['n_ff']
        # router logits with std ~3: distinct top-k, not one expert taking everything
        wr.tensor(p + 'ffn_gate_inp.weight', lin(p + 'ffn_gate_inp.weight', (X, E), 3.0))
        gate = lin(p + 'ffn_gate_exps.weight', (X, F, E))
        down = lin(p + 'ffn_down_exps.weight', (X, E, F))
        up = lin(p + 'ffn_up_exps.weight', (X, F, E))
        if hp.get('legacy_experts'):
            # llama.cpp's LLM_TENSOR_FFN_{GATE,DOWN,UP}_EXP: "blk.%d.ffn_gate.%d" (+ ".weight")
            for x in range(X):
                wr.tensor(f'{p}ffn_gate.{x}.weight', gate[x])
                wr.tensor(f'{p}ffn_down.{x}.weight', down[x])
                wr.tensor(f'{p}ffn_up.{x}.weight', up[x])
        else:
            wr.tensor(p + 'ffn_gate_exps.weight', gate)
            wr.tensor(p + 'ffn_down_exps.weight', down)
            wr.tensor(p + 'ffn_up_exps.weight', up)
        del gate, down, up
        if hp.get('n_ff_shexp'):
            S = hp['n_ff_shexp']
            wr.tensor(p + 'ffn_gate_inp_shexp.weight', lin(p + 'ffn_gate_inp_shexp.weight', (E,)))
            wr.tensor(p + 'ffn_gate_shexp.weight', lin(p + 'ffn_gate_shexp.weight', (S, E)))
            wr.tensor(p + 'ffn_up_shexp.weight', lin(p + 'ffn_up_shexp.weight', (S, E)))
            wr.tensor(p + 'ffn_down_shexp.weight', lin(p + 'ffn_down_shexp.weight', (E, S)))
    wr.tensor('output_norm.weight', nrm('output_norm.weight', (E,)))
    if not hp.get('tied'):
        # logits with std ~2 after the final norm
        wr.tensor('output.weight', lin('output.weight', (V, E), 2.0) * row_scale)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    return path, wr.types


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 22), b''):
            h.update(b)
    return h.hexdigest()


def tokenizer_dir(arg):
    d = arg or os.environ.get('XT_TOKENIZER_GGUF_DIR')
    if d and all(os.path.exists(os.path.join(d, t + '.gguf')) for t in ('qwen3', 'llama2')):
        return d
    if d:
        sys.exit(f'make_models: {d} lacks qwen3.gguf / llama2.gguf (build_tokenizer_fixtures.sh writes them)')
    d = tempfile.mkdtemp(prefix='xt-tok-')
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([os.path.join(here, 'build_tokenizer_fixtures.sh'), d], check=True)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out_dir', nargs='?')
    ap.add_argument('--only', help='comma-separated model names')
    ap.add_argument('--list', action='store_true', help='print the model names and exit')
    ap.add_argument('--big', action='store_true', help='also the real-shape models (~1.5 GB each)')
    ap.add_argument('--tokenizers', help='directory with qwen3.gguf and llama2.gguf')
    a = ap.parse_args()
    every = dict(MODELS, **BIG_MODELS)
    if a.list:
        for n in every:
            print(n + ('  (--big)' if n in BIG_MODELS else ''))
        return
    if not a.out_dir:
        ap.error('OUT_DIR is required')
    if a.only:
        names = a.only.split(',')
        bad = [n for n in names if n not in every]
        if bad:
            sys.exit(f'make_models: unknown model(s) {", ".join(bad)}; --list shows the names')
    else:
        names = list(MODELS) + (list(BIG_MODELS) if a.big else [])
    os.makedirs(a.out_dir, exist_ok=True)
    tdir = tokenizer_dir(a.tokenizers)
    for n in names:
        path, types = build(n, every[n], a.out_dir, tdir)
        census = {}
        for t in types.values():
            census[t] = census.get(t, 0) + 1
        print(f'{n:24s} {os.path.getsize(path):>11d} B  {sha256_file(path)}  '
              + ' '.join(f'{k}:{v}' for k, v in sorted(census.items())), flush=True)


if __name__ == '__main__':
    main()
