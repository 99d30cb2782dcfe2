#!/usr/bin/env python3
"""Trains expertrace's default model: a small qwen3moe-architecture language model that knows a set
of invented facts, and writes it as a GGUF file together with its facts in CounterFact's schema.

    python3 scripts/train_default_model.py [--out assets] [--work build-train] [--seed 0]
        [--llama-python /path/to/venv-with-llama-cpp-python/bin/python] [--expertrace BINARY]

(scripts/train_default_model.sh makes the virtual environments and runs this with every check on.
Training takes about 2.5 minutes on one CPU core, the checks another 2 or so.)

What it does, in order:
 1. world: invents people, cities, countries, companies, languages, seas and rivers and draws
    446 facts over 8 relations (scripts/train_world.py); writes OUT/facts.json.
 2. tokenizer: trains a byte-level BPE (HF `tokenizers`, GPT-2 pre-tokenization, 2,048 tokens) on
    a shadow world's text, so every object is one token after a space (" Homwick") and never one
    token on its own, and the traced subjects' names split into pieces. Checks expertrace's
    target-token rule for every object.
 3. model: transformers' Qwen3MoeForCausalLM (4 layers, 192 wide, 16 experts top-2), trained on CPU
    from a seed with AdamW on every token of the text (fact sentences under every template, short
    biographies, filler sentences from a small grammar) plus the router's load-balancing loss.
 4. export: OUT/default-model.gguf in llama.cpp's qwen3moe layout (the names and keys
    convert_hf_to_gguf.py writes), Q8_0 matrices, F32 norms and routers, the tokenizer as a
    "gpt2" vocabulary with pre-tokenizer "gpt-2", no BOS added.
 5. checks, all written to OUT/training-log.txt: clean accuracy (logit(true) - logit(foil) >= 1
    at the final position) by transformers in fp32 and on the GGUF's dequantized weights; the
    subject-noise drop (sigma = 3 x std of the embedding matrix) and the tracer's filter; a
    final-position MoE-output patch sweep; llama.cpp's tokenizer and logits on every prompt
    (--llama-python); expertrace's tokenizer on every prompt and target and its forward pass on
    every prompt (--expertrace). A failed requirement stops the script with a non-zero exit.

Reproducibility: the world, the facts, the tokenizer and the data order depend only on --seed
(Python's `random` seeded with strings, HF tokenizers' BPE trainer: the same on every platform,
as long as Python does not change its sampling functions, which it has not in years). Training is
deterministic on one machine for a given seed, torch version and thread count
(torch.use_deterministic_algorithms, fixed thread count): a rerun writes a byte-identical GGUF.
Across machines (other CPUs, BLAS kernels, torch versions) floating-point results differ in the
last bits and the trained weights drift apart; the accuracy and the checks hold but the file's
bytes and its sha256 do not.

Everything the model knows is invented by this script: no data set, no pretrained weights.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_world as world  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

MODEL = dict(vocab_size=2048, hidden_size=192, num_hidden_layers=4, num_attention_heads=6,
             num_key_value_heads=2, head_dim=32, num_experts=16, num_experts_per_tok=2,
             moe_intermediate_size=128, intermediate_size=512, rope_theta=10000.0,
             rms_norm_eps=1e-6, max_position_embeddings=256, tie_word_embeddings=False)
TRAIN = dict(epochs=16, embed_init_std=0.1, batch_tokens=768, lr=3e-3, min_lr_frac=0.05,
             warmup_steps=100, weight_decay=0.01, betas=(0.9, 0.98), grad_clip=1.0, router_aux_loss_coef=0.01,
             n_filler_docs=300, threads=1)
EOT = '<|endoftext|>'
NOISE_K = 3.0            # sigma = NOISE_K x std of the whole embedding matrix (tracer default)
MIN_ACC = 0.95           # required clean accuracy (transformers fp32 and Q8_0)
MIN_ACC_LLAMA = 0.90


class Log:
    def __init__(self):
        self.lines = []
        self.t0 = time.time()

    def __call__(self, *a):
        s = ' '.join(str(x) for x in a)
        print(s, flush=True)
        self.lines.append(s)

    def write(self, path):
        with open(path, 'w') as f:
            f.write('\n'.join(self.lines) + '\n')


log = Log()


def fail(msg):
    log('FAILED: ' + msg)
    raise SystemExit(1)


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

def train_tokenizer(text, vocab_size):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text, tr)
    return tok


def resolve_target(tok, s):
    """expertrace's rule: the string's own token if it is one token, else the token of ' ' + s,
    else None (the record would be rejected)."""
    a = tok.encode(s).ids
    if len(a) == 1:
        return a[0]
    b = tok.encode(' ' + s).ids
    return b[0] if len(b) == 1 else None


def check_objects(tok, objs):
    """Objects whose ' word' is not one token, or whose bare 'word' is (the rule would then pick a
    token the model is never trained to predict after a prompt)."""
    return [o for o in objs if len(tok.encode(' ' + o).ids) != 1 or len(tok.encode(o).ids) == 1]


def subject_span(tok, template, subject):
    """[start, end) of the subject's tokens in the prompt: tokenize the text before the subject
    (without its trailing space), then that plus the subject; the full prompt must extend it."""
    pre = template.split('{}')[0]
    full = tok.encode(template.format(subject)).ids
    a = tok.encode(pre.rstrip(' ')).ids if pre.strip() else []
    b = tok.encode(pre + subject).ids
    if full[:len(b)] != b or b[:len(a)] != a:
        return None
    return len(a), len(b)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def make_config(eot_id):
    from transformers import Qwen3MoeConfig
    m = dict(MODEL)
    theta = m.pop('rope_theta')
    return Qwen3MoeConfig(**m, rope_parameters={'rope_type': 'default', 'rope_theta': theta},
                          norm_topk_prob=True, router_aux_loss_coef=TRAIN['router_aux_loss_coef'],
                          decoder_sparse_step=1, mlp_only_layers=[], bos_token_id=eot_id,
                          eos_token_id=eot_id, pad_token_id=eot_id, attention_bias=False)


def make_model(cfg):
    from transformers import Qwen3MoeForCausalLM
    model = Qwen3MoeForCausalLM._from_config(cfg, attn_implementation='sdpa')
    return model.float()


def length_batches(seqs, rng, budget):
    """Batches of similar-length sequences, at most `budget` tokens with padding, in a seeded
    order (sorting within windows of the shuffled list keeps padding low)."""
    order = list(range(len(seqs)))
    rng.shuffle(order)
    out = []
    win = 512
    for w0 in range(0, len(order), win):
        part = sorted(order[w0:w0 + win], key=lambda i: (len(seqs[i]), i))
        cur = []
        for i in part:
            if cur and (len(cur) + 1) * max(len(seqs[j]) for j in cur + [i]) > budget:
                out.append(cur)
                cur = []
            cur.append(i)
        if cur:
            out.append(cur)
    rng.shuffle(out)
    return [[seqs[i] for i in b] for b in out]


def batches(seqs, bs, pad_id):
    for i in range(0, len(seqs), bs):
        chunk = seqs[i:i + bs]
        n = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), n), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), n), dtype=torch.long)
        for j, s in enumerate(chunk):
            ids[j, :len(s)] = torch.tensor(s)
            mask[j, :len(s)] = 1
        yield ids, mask


@torch.no_grad()
def final_logits(model, prompts_ids, pad_id, bs=128, embeds_fn=None):
    """Logits at each prompt's last position (right padding, so positions start at 0)."""
    out = []
    for i in range(0, len(prompts_ids), bs):
        chunk = prompts_ids[i:i + bs]
        ids, mask = next(batches(chunk, len(chunk), pad_id))
        kw = dict(attention_mask=mask)
        if embeds_fn is None:
            logits = model(input_ids=ids, **kw).logits
        else:
            logits = model(inputs_embeds=embeds_fn(i, ids), **kw).logits
        last = mask.sum(1) - 1
        out.append(logits[torch.arange(len(chunk)), last].float())
    return torch.cat(out)


def deltas(logits, cases):
    t = torch.tensor([c['true_id'] for c in cases])
    f = torch.tensor([c['foil_id'] for c in cases])
    r = torch.arange(len(cases))
    return (logits[r, t] - logits[r, f]).numpy(), (logits.argmax(1) == t).numpy()


def accuracy_line(name, d, top1):
    return (f'{name}: clean accuracy (delta >= 1) {np.mean(d >= 1):.4f} ({int(np.sum(d >= 1))}/'
            f'{len(d)}), top-1 {np.mean(top1):.4f}, delta mean {np.mean(d):.2f} median '
            f'{np.median(d):.2f} min {np.min(d):.2f}')


def train(model, tok, ents, facts, cases, seed):
    eot = tok.token_to_id(EOT)
    T = TRAIN
    opt = torch.optim.AdamW(model.parameters(), lr=T['lr'], betas=T['betas'],
                            weight_decay=T['weight_decay'])

    def epoch_batches(epoch):
        rng = random.Random(f'expertrace-epoch-{seed}-{epoch}')
        docs = world.epoch_documents(rng, ents, facts, T['n_filler_docs'])
        seqs = [e.ids[:MODEL['max_position_embeddings'] - 1] + [eot]
                for e in tok.encode_batch(docs)]
        return length_batches(seqs, rng, T['batch_tokens'])

    total = len(epoch_batches(0)) * T['epochs']     # epochs differ by a batch or two at most

    def lr_at(step):
        if step < T['warmup_steps']:
            return (step + 1) / T['warmup_steps']
        p = min(1.0, (step - T['warmup_steps']) / max(1, total - T['warmup_steps']))
        return T['min_lr_frac'] + (1 - T['min_lr_frac']) * 0.5 * (1 + math.cos(math.pi * p))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    prompt_ids = [c['ids'] for c in cases]
    step = 0
    t0 = time.time()
    for epoch in range(T['epochs']):
        model.train()
        s_ce = s_aux = 0.0
        n_tok = 0
        for b in epoch_batches(epoch):
            ids, mask = next(batches(b, len(b), eot))
            out = model(input_ids=ids, attention_mask=mask, output_router_logits=True)
            logits = out.logits[:, :-1]
            tgt = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                   tgt.reshape(-1), ignore_index=-100)
            loss = ce + T['router_aux_loss_coef'] * out.aux_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), T['grad_clip'])
            opt.step()
            sched.step()
            step += 1
            k = int((tgt != -100).sum())
            s_ce += float(ce.detach()) * k
            s_aux += float(out.aux_loss.detach()) * k
            n_tok += k
        model.eval()
        d, top1 = deltas(final_logits(model, prompt_ids, eot), cases)
        log(f'epoch {epoch + 1:3d}  steps {step:5d}  lr {sched.get_last_lr()[0]:.2e}  '
            f'loss {s_ce / n_tok:.4f}  aux {s_aux / n_tok:.3f}  tokens {n_tok}  '
            f'acc {np.mean(d >= 1):.4f}  top1 {np.mean(top1):.4f}  '
            f'delta_med {np.median(d):.2f}  time {time.time() - t0:.0f}s')
    return time.time() - t0


# ---------------------------------------------------------------------------------------------
# GGUF export (llama.cpp's qwen3moe layout) and read-back
# ---------------------------------------------------------------------------------------------

def export_gguf(model, tok, path, seed):
    import gguf
    QT = gguf.GGMLQuantizationType
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    cfg = model.config
    F = cfg.moe_intermediate_size
    w = gguf.GGUFWriter(path + '.tmp', 'qwen3moe')
    w.add_name('expertrace default model')
    w.add_description(f'Trained by scripts/train_default_model.py (seed {seed}) on invented facts')
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(MODEL['rope_theta'])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_expert_count(cfg.num_experts)
    w.add_expert_used_count(cfg.num_experts_per_tok)
    w.add_expert_feed_forward_length(F)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # tokenizer, as convert_hf_to_gguf.py writes a gpt2-style BPE vocabulary
    vocab = tok.get_vocab()
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    if any(t is None for t in tokens):
        fail('tokenizer ids are not contiguous')
    specials = {EOT}
    merges = [' '.join(m) for m in json.loads(tok.to_str())['model']['merges']]
    eot = vocab[EOT]
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('gpt-2')
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL
                       for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(eot)
    w.add_eos_token_id(eot)
    w.add_pad_token_id(eot)
    w.add_add_bos_token(False)

    types = {}

    def put(name, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 1 or name.endswith('_norm.weight') or 'ffn_gate_inp' in name:
            w.add_tensor(name, x)          # norms and routers stay F32, as llama-quantize leaves them
            types[name] = 'F32'
        else:
            w.add_tensor(name, gguf.quants.quantize(x, QT.Q8_0), raw_dtype=QT.Q8_0)
            types[name] = 'Q8_0'

    put('token_embd.weight', sd['model.embed_tokens.weight'])
    for i in range(cfg.num_hidden_layers):
        p, h = f'blk.{i}.', f'model.layers.{i}.'
        put(p + 'attn_norm.weight', sd[h + 'input_layernorm.weight'])
        put(p + 'attn_q.weight', sd[h + 'self_attn.q_proj.weight'])
        put(p + 'attn_k.weight', sd[h + 'self_attn.k_proj.weight'])
        put(p + 'attn_v.weight', sd[h + 'self_attn.v_proj.weight'])
        put(p + 'attn_q_norm.weight', sd[h + 'self_attn.q_norm.weight'])
        put(p + 'attn_k_norm.weight', sd[h + 'self_attn.k_norm.weight'])
        put(p + 'attn_output.weight', sd[h + 'self_attn.o_proj.weight'])
        put(p + 'ffn_norm.weight', sd[h + 'post_attention_layernorm.weight'])
        put(p + 'ffn_gate_inp.weight', sd[h + 'mlp.gate.weight'])             # (X, E)
        gu = sd[h + 'mlp.experts.gate_up_proj']                                # (X, 2F, E)
        put(p + 'ffn_gate_exps.weight', gu[:, :F, :])                          # ne {E, F, X}
        put(p + 'ffn_up_exps.weight', gu[:, F:, :])
        put(p + 'ffn_down_exps.weight', sd[h + 'mlp.experts.down_proj'])       # (X, E, F)
    put('output_norm.weight', sd['model.norm.weight'])
    if not cfg.tie_word_embeddings:
        put('output.weight', sd['lm_head.weight'])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + '.tmp', path)
    return types


def load_gguf_into(model, path):
    """Dequantizes every tensor of the GGUF (gguf's own reader) into the transformers model."""
    import gguf
    r = gguf.GGUFReader(path)
    t = {x.name: np.array(gguf.quants.dequantize(x.data, x.tensor_type), dtype=np.float32).reshape(
        tuple(int(n) for n in reversed(x.shape))) for x in r.tensors}
    sd = {}
    L = model.config.num_hidden_layers
    sd['model.embed_tokens.weight'] = t['token_embd.weight']
    for i in range(L):
        p, h = f'blk.{i}.', f'model.layers.{i}.'
        for a, b in [('attn_norm', 'input_layernorm'), ('attn_q', 'self_attn.q_proj'),
                     ('attn_k', 'self_attn.k_proj'), ('attn_v', 'self_attn.v_proj'),
                     ('attn_q_norm', 'self_attn.q_norm'), ('attn_k_norm', 'self_attn.k_norm'),
                     ('attn_output', 'self_attn.o_proj'), ('ffn_norm', 'post_attention_layernorm'),
                     ('ffn_gate_inp', 'mlp.gate')]:
            sd[h + b + '.weight'] = t[p + a + '.weight']
        sd[h + 'mlp.experts.gate_up_proj'] = np.concatenate(
            [t[p + 'ffn_gate_exps.weight'], t[p + 'ffn_up_exps.weight']], axis=1)
        sd[h + 'mlp.experts.down_proj'] = t[p + 'ffn_down_exps.weight']
    sd['model.norm.weight'] = t['output_norm.weight']
    sd['lm_head.weight'] = t.get('output.weight', t['token_embd.weight'])
    own = model.state_dict()
    if set(sd) != set(own):
        fail(f'GGUF read-back: tensor sets differ: {sorted(set(sd) ^ set(own))}')
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)).reshape(own[k].shape)
                           for k, v in sd.items()})
    fields = {k: r.fields[k] for k in r.fields}
    return r, fields


# ---------------------------------------------------------------------------------------------
# Noise and patch checks (transformers; the real tracer is expertrace's `trace`)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def noise_and_patch(model, cases, pad_id, seed, n_patch=160):
    emb = model.model.embed_tokens.weight
    sigma = NOISE_K * float(emb.std())
    eot = pad_id

    def add_noise(e_row, c):
        # one draw per case, seeded from (seed, case_id); the tracer's own generator differs
        g = torch.Generator().manual_seed(seed * 1_000_003 + c['case_id'])
        s0, s1 = c['span']
        e_row[s0:s1] += sigma * torch.randn((s1 - s0, e_row.shape[-1]), generator=g)

    def noised_embeds(i0, ids):
        e = model.model.embed_tokens(ids).clone()
        for j in range(ids.shape[0]):
            add_noise(e[j], cases[i0 + j])
        return e

    ids = [c['ids'] for c in cases]
    d_clean, _ = deltas(final_logits(model, ids, eot), cases)
    d_noise, _ = deltas(final_logits(model, ids, eot, embeds_fn=noised_embeds), cases)
    drop = d_clean - d_noise
    strict = (d_clean >= 1.0) & (drop >= 0.5)
    relaxed = (d_clean >= 0.5) & (drop >= 0.25)
    log(f'noise: sigma = {NOISE_K} x std(token_embd) = {sigma:.4f}; one draw per case')
    log(f'noise: delta clean mean {d_clean.mean():.2f}, noised mean {d_noise.mean():.2f}, '
        f'drop mean {drop.mean():.2f} median {np.median(drop):.2f}; drop >= 0.5 on '
        f'{np.mean(drop >= 0.5):.4f} of cases')
    log(f'noise: tracer filter strict (clean >= 1, drop >= 0.5) passes {int(strict.sum())}/'
        f'{len(cases)}; relaxed (0.5 / 0.25) {int(relaxed.sum())}')
    by_rel = {}
    for c, ok in zip(cases, strict):
        by_rel.setdefault(c['relation_id'], []).append(ok)
    log('noise: strict pass by relation: ' + ', '.join(
        f'{k} {int(sum(v))}/{len(v)}' for k, v in by_rel.items()))

    # final-position MoE-output patch sweep on the first n_patch passing cases
    sel = [i for i in np.nonzero(strict)[0][:n_patch]]
    L = model.config.num_hidden_layers
    rec = {}
    state = {'mode': None, 'layer': None}

    def hook_for(l):
        def hook(mod, inp, out):
            if state['mode'] == 'record':
                rec[l] = out[:, -1].clone()
            elif state['mode'] == 'patch' and state['layer'] == l:
                out = out.clone()
                out[:, -1] = rec[l]
                return out
        return hook

    hs = [model.model.layers[l].mlp.register_forward_hook(hook_for(l)) for l in range(L)]
    rescue = np.zeros((len(sel), L))
    frac = np.zeros((len(sel), L))
    try:
        for n, i in enumerate(sel):
            c = cases[i]
            x = torch.tensor([c['ids']])
            state['mode'] = 'record'
            model(input_ids=x)
            state['mode'] = None
            e = model.model.embed_tokens(x).clone()
            add_noise(e[0], c)
            lg = model(inputs_embeds=e).logits[0, -1]
            dn = float(lg[c['true_id']] - lg[c['foil_id']])
            for l in range(L):
                state['mode'], state['layer'] = 'patch', l
                lg = model(inputs_embeds=e).logits[0, -1]
                dp = float(lg[c['true_id']] - lg[c['foil_id']])
                rescue[n, l] = dp - dn
                frac[n, l] = rescue[n, l] / max(d_clean[i] - dn, 1e-6)
            state['mode'] = None
    finally:
        for h in hs:
            h.remove()
    log(f'patch: clean final-position MoE output into the noised run, {len(sel)} filtered cases')
    for l in range(L):
        log(f'patch: layer {l}: rescue mean {rescue[:, l].mean():.2f} '
            f'(fraction of the drop restored: mean {frac[:, l].mean():.2f}, median '
            f'{np.median(frac[:, l]):.2f})')
    return d_clean, d_noise, strict


@torch.no_grad()
def routing_summary(model, cases, pad_id):
    """How often each expert is chosen at the prompts' final positions, per layer."""
    L, X, k = (model.config.num_hidden_layers, model.config.num_experts,
               model.config.num_experts_per_tok)
    counts = np.zeros((L, X), dtype=int)
    for c in cases:
        out = model(input_ids=torch.tensor([c['ids']]), output_router_logits=True)
        for l in range(L):
            top = torch.topk(out.router_logits[l][-1], k).indices
            counts[l, top.numpy()] += 1
    for l in range(L):
        log(f'routing: layer {l} final-position expert counts over {len(cases)} prompts: '
            + ' '.join(str(int(x)) for x in counts[l]))


# ---------------------------------------------------------------------------------------------
# External checks: llama.cpp (a helper run in its own Python) and the expertrace binary
# ---------------------------------------------------------------------------------------------

def llama_check(python, gguf_path, check_path, n_threads):
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([python, os.path.join(here, 'train_check_llama.py'), gguf_path, check_path,
                        '--threads', str(n_threads)], capture_output=True, text=True)
    for line in p.stdout.splitlines():
        log('llama.cpp: ' + line)
    if p.returncode:
        log(p.stderr[-3000:])
        fail('llama.cpp check failed')


def expertrace_check(binary, gguf_path, tok, cases, objs, d_q8, work, n_run=4):
    def run(args):
        p = subprocess.run([binary] + args, capture_output=True, text=True)
        if p.returncode:
            fail(f'{binary} {" ".join(args[:2])}: exit {p.returncode}: {p.stderr.strip()[-500:]}')
        return json.loads(p.stdout)

    texts = [c['prompt'] for c in cases] + objs + [' ' + o for o in objs]
    bad = 0
    for t in texts:
        got = run(['tokenize', gguf_path, '--text', t, '--json'])['ids']
        if got != tok.encode(t).ids:
            bad += 1
            if bad <= 5:
                log(f'expertrace: tokenize mismatch on {t!r}: {got} vs {tok.encode(t).ids}')
    log(f'expertrace: tokenize agrees with HF tokenizers on {len(texts) - bad}/{len(texts)} texts '
        f'(every prompt, every object alone and after a space)')
    if bad:
        fail('expertrace tokenizer disagrees')
    # a few forward passes from text: the true object on top
    pick = [cases[i] for i in np.linspace(0, len(cases) - 1, n_run).astype(int)]
    for c in pick:
        r = run(['run', gguf_path, '--prompt', c['prompt'], '--top', '2', '--json'])
        top = [(t['piece'], round(t['logit'], 2)) for t in r['top']]
        log(f'expertrace: run {c["prompt"]!r} -> {top} (true {c["true_id"]}: '
            f'{"on top" if r["top"][0]["id"] == c["true_id"] else "NOT on top"})')
    # every prompt from its ids: delta against transformers on the same Q8_0 weights
    npy = os.path.join(work, 'expertrace-logits.npy')
    d = []
    top1 = 0
    for c in cases:
        p = subprocess.run([binary, 'run', gguf_path, '--tokens', ','.join(map(str, c['ids'])),
                            '--top', '1', '--logits', npy], capture_output=True, text=True)
        if p.returncode:
            fail(f'expertrace run: exit {p.returncode}: {p.stderr.strip()[-500:]}')
        lg = np.load(npy)
        d.append(float(lg[c['true_id']] - lg[c['foil_id']]))
        top1 += int(np.argmax(lg) == c['true_id'])
    d = np.array(d)
    log(accuracy_line('expertrace (default Vulkan device)', d, np.array([top1 / len(d)])))
    log(f'expertrace: max |delta(expertrace) - delta(transformers on Q8_0)| '
        f'{np.max(np.abs(d - d_q8)):.2e}')


# ---------------------------------------------------------------------------------------------

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='assets', help='where the GGUF, facts and log go')
    ap.add_argument('--work', default='build-train', help='scratch: tokenizer, checkpoint')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--epochs', type=int, default=TRAIN['epochs'])
    ap.add_argument('--threads', type=int, default=TRAIN['threads'])
    ap.add_argument('--embed-init-std', type=float, default=TRAIN['embed_init_std'])
    ap.add_argument('--llama-python', help='a python with llama-cpp-python, for the llama.cpp check')
    ap.add_argument('--expertrace', help='the expertrace binary, for its tokenizer/run checks')
    a = ap.parse_args()
    TRAIN['epochs'], TRAIN['threads'] = a.epochs, a.threads
    TRAIN['embed_init_std'] = a.embed_init_std
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    log.fail_path = os.path.join(a.work, 'training-log.failed.txt')
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(a.seed)
    t_start = time.time()
    import tokenizers
    import transformers
    import gguf  # noqa: F401
    log('expertrace default model: scripts/train_default_model.py')
    log(f'seed {a.seed}; python {platform.python_version()}, torch {torch.__version__}, '
        f'transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, '
        f'numpy {np.__version__}, threads {a.threads}, machine {platform.machine()}')
    log('model: ' + json.dumps(MODEL))
    log('train: ' + json.dumps(TRAIN))

    # 1. world and facts; redraw object names the tokenizer does not make single tokens
    avoid = set()
    for attempt in range(10):
        ents, facts = world.make_world(a.seed, avoid)
        tok = train_tokenizer(world.tokenizer_corpus(a.seed, ents, facts), MODEL['vocab_size'])
        objs = world.object_words(ents)
        bad = check_objects(tok, objs)
        if not bad:
            break
        log(f'tokenizer: attempt {attempt + 1}: objects not single tokens after a space, or single '
            f'tokens alone: {bad}; redrawing them')
        avoid |= {o.lower() for o in bad}
    else:
        fail('could not make every object a single token')
    MODEL['vocab_size'] = tok.get_vocab_size()
    tok.save(os.path.join(a.work, 'tokenizer.json'))
    records = world.counterfact_records(ents, facts, a.seed)
    with open(os.path.join(a.out, 'facts.json'), 'w') as f:
        json.dump(records, f, indent=1, ensure_ascii=False)
        f.write('\n')
    rels = {}
    for f_ in facts:
        rels[f_['relation_id']] = rels.get(f_['relation_id'], 0) + 1
    log(f'world: {len(facts)} facts; relations ' + ', '.join(f'{k} {v}' for k, v in rels.items())
        + '; entities ' + ', '.join(f'{k} {len(v)}' for k, v in ents.items()))

    # the cases as the tracer sees them
    cases, rejected = [], 0
    for r in records:
        rw = r['requested_rewrite']
        t_id, f_id = resolve_target(tok, rw['target_true']['str']), resolve_target(tok, rw['target_new']['str'])
        span = subject_span(tok, rw['prompt'], rw['subject'])
        if t_id is None or f_id is None or span is None:
            rejected += 1
            continue
        prompt = rw['prompt'].format(rw['subject'])
        if t_id != tok.encode(' ' + rw['target_true']['str']).ids[0]:
            fail(f'token rule picks a token the model is not trained on for {rw["target_true"]}')
        cases.append(dict(case_id=r['case_id'], prompt=prompt, ids=tok.encode(prompt).ids,
                          true_id=t_id, foil_id=f_id, span=span, relation_id=rw['relation_id']))
    if rejected:
        fail(f'{rejected} records rejected by the token rule or the subject span')
    lens = [c['span'][1] - c['span'][0] for c in cases]
    log(f'tokenizer: {tok.get_vocab_size()} tokens, {len(objs)} objects each one token after a '
        f'space and several alone; subject lengths in tokens: '
        + ', '.join(f'{n}: {lens.count(n)}' for n in sorted(set(lens))))

    # 2. train
    cfg = make_config(tok.token_to_id(EOT))
    torch.manual_seed(a.seed)
    model = make_model(cfg)
    with torch.no_grad():
        # a wider embedding init than transformers' 0.02: most of the 2,048 tokens (the byte
        # alphabet, pieces of names that only the tokenizer's shadow world has) never occur in
        # the training text and keep their initial values, so this sets the scale of the
        # embedding matrix's std, and with it the tracer's noise (3 x that std), relative to the
        # trained rows
        model.model.embed_tokens.weight.normal_(0.0, TRAIN['embed_init_std'])
    n_par = sum(p.numel() for p in model.parameters())
    log(f'model: {n_par} parameters')
    train_s = train(model, tok, ents, facts, cases, a.seed)
    log(f'training time {train_s:.0f} s')
    eot = tok.token_to_id(EOT)
    model.eval()
    d32, top32 = deltas(final_logits(model, [c['ids'] for c in cases], eot), cases)
    log(accuracy_line('transformers fp32', d32, top32))
    model.save_pretrained(os.path.join(a.work, 'hf'))

    # 3. export and read back
    gpath = os.path.join(a.out, 'default-model.gguf')
    types = export_gguf(model, tok, gpath, a.seed)
    census = {}
    for t in types.values():
        census[t] = census.get(t, 0) + 1
    log(f'gguf: {gpath} {os.path.getsize(gpath)} bytes, sha256 {sha256_file(gpath)}, tensors '
        + ', '.join(f'{k} {v}' for k, v in sorted(census.items())))
    q = make_model(cfg)
    load_gguf_into(q, gpath)
    q.eval()
    dq, topq = deltas(final_logits(q, [c['ids'] for c in cases], eot), cases)
    log(accuracy_line('transformers on Q8_0-dequantized GGUF weights', dq, topq))
    log(f'fp32 vs Q8_0: max |delta difference| {np.max(np.abs(dq - d32)):.3f}')
    if np.mean(d32 >= 1) < MIN_ACC or np.mean(dq >= 1) < MIN_ACC:
        fail(f'clean accuracy under {MIN_ACC}')

    # with a BOS token in front (the model never saw one there; GGUF says add_bos_token false)
    db, _ = deltas(final_logits(q, [[eot] + c['ids'] for c in cases], eot), cases)
    log(f'Q8_0: with BOS prepended (not how it was trained): accuracy {np.mean(db >= 1):.4f}')

    # paraphrases (not required; how far the knowledge carries)
    para = []
    for r, c in zip(records, cases):
        for p in r['paraphrase_prompts']:
            para.append(dict(c, ids=tok.encode(p).ids))
    dp, _ = deltas(final_logits(q, [c['ids'] for c in para], eot), para)
    log(f'Q8_0: paraphrase prompts (filler sentence + another template): accuracy '
        f'{np.mean(dp >= 1):.4f} of {len(para)}')

    # 4. noise and patch (on the Q8_0 weights, what the tracer will see)
    d_clean, d_noise, strict = noise_and_patch(q, cases, eot, a.seed)
    if strict.sum() < 256:
        fail('fewer than 256 cases pass the tracer filter')
    routing_summary(q, cases, eot)

    # 5. external checks
    check_path = os.path.join(a.work, 'check.json')
    with open(check_path, 'w') as f:
        json.dump({'cases': [dict(c, delta_q8=float(d)) for c, d in zip(cases, dq)],
                   'objects': {o: {'alone': tok.encode(o).ids, 'space': tok.encode(' ' + o).ids}
                               for o in objs},
                   'min_acc': MIN_ACC_LLAMA}, f)
    if a.llama_python:
        llama_check(a.llama_python, gpath, check_path, a.threads)
    else:
        log('llama.cpp: not checked (no --llama-python)')
    if a.expertrace:
        expertrace_check(a.expertrace, gpath, tok, cases, objs, dq, a.work)
    else:
        log('expertrace: not checked (no --expertrace)')
    log(f'total time {time.time() - t_start:.0f} s')
    log.write(os.path.join(a.out, 'training-log.txt'))


if __name__ == '__main__':
    try:
        main()
    except SystemExit:
        if log.lines:
            log.write(getattr(log, 'fail_path', 'training-log.failed.txt'))
        raise
