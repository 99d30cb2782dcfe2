#!/usr/bin/env python3
"""Runs llama.cpp (the llama-cpp-python package) on the models make_models.py writes and stores its
logits as fixtures for the forward-pass tests.

    python3 tests/reference/llama_logits.py MODEL_DIR FIXTURE_DIR [--only NAME,...] [--big]

For each model: the prompts below are tokenized by llama.cpp's own tokenizer (a BOS token is added
when the file's tokenizer.ggml.add_bos_token says so), each sequence is evaluated on its own
(fp32 K/V cache, flash attention off, 2 threads, logits for every position), and two files are
written:

  FIXTURE_DIR/<name>.json    model, file_sha256, llama_cpp_python version, llama_cpp_commit,
                             sequences [{text, tokens}], n_vocab, argmax and top5 for every
                             position (sequence order), logits file name, dtype, the rows it holds,
                             the parameters of the run and which backend ran which op
  FIXTURE_DIR/<name>.logits  raw little-endian [len(rows)][n_vocab] of dtype, rows in order

To keep the committed fixtures small (the 32,000-token vocabulary makes a position 64 KB in f16),
logits are stored as f16 and "rows" is every position for the F32 models (the NMSE <= 1e-5 check)
and the last position of each sequence for the quantized ones and the real-shape models; argmax
and top5 always cover every position, computed from llama.cpp's f32 logits.
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys

import numpy as np

# Print the scheduler's node -> backend assignment (GGML_LOG_DEBUG) so the fixture can say which
# backend ran each op; read when the context's scheduler is created, so set before that.
os.environ.setdefault('GGML_SCHED_DEBUG', '2')

import llama_cpp  # noqa: E402  (after the environment is set)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402

# CounterFact-style prompts: about 1, 5 and 12 tokens with the Llama 2 tokenizer (incl. BOS)
PROMPTS = ['Rome', 'The Eiffel Tower is', 'The Eiffel Tower is located in the city of']
BIG_PROMPTS = ['The Eiffel Tower is in']
LLAMA_CPP_COMMIT = {'0.3.36': '0c1e57098'}   # from llama-cpp-python's CHANGELOG
GGML_TYPE_F32 = 0


def sha256_file(path):
    return make_models.sha256_file(path)


class Capture:
    """Collects llama.cpp's log (llama-cpp-python prints it to sys.stderr when verbose)."""

    def __enter__(self):
        self.old, self.buf = sys.stderr, io.StringIO()
        sys.stderr = self.buf
        return self

    def __exit__(self, *exc):
        sys.stderr = self.old
        self.text = self.buf.getvalue()
        return False


NODE_RE = re.compile(r'node #\s*\d+ \(\s*([^)]*?)\):\s*(\S+)\s+\(\s*[^)]*\)\s+\[\s*(\S+)')


def backend_summary(log_text):
    """{'ops': {backend: {op: count}}, 'splits': n} of the last graph the scheduler printed."""
    graphs = log_text.split('## SPLIT #0:')
    last = graphs[-1] if len(graphs) > 1 else ''
    ops = {}
    for op, _name, be in NODE_RE.findall(last):
        ops.setdefault(be, {})
        ops[be][op] = ops[be].get(op, 0) + 1
    splits = len(re.findall(r'## SPLIT #\d+:', '## SPLIT #0:' + last)) if last else 0
    bufs = sorted(set(re.findall(r'(\S+) model buffer size', log_text)))
    return {'ops': ops, 'graph_splits': splits, 'weight_buffers': bufs}


class LoadError(RuntimeError):
    pass


def run_model(path, prompts, n_threads):
    cap = Capture()
    try:
        with cap:
            return _run_model(path, prompts, n_threads, cap)
    except ValueError as e:  # llama-cpp-python's "Failed to load model": keep llama.cpp's reason
        why = [ln.strip() for ln in cap.text.splitlines() if 'error' in ln.lower() or 'failed' in ln.lower()]
        msg = '; '.join([str(e)] + why).replace(os.path.dirname(path) + os.sep, '')
        raise LoadError(msg) from None


def _run_model(path, prompts, n_threads, cap):
    if True:
        llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_batch=256, n_ubatch=256,
                              n_threads=n_threads, n_threads_batch=n_threads, logits_all=True,
                              type_k=GGML_TYPE_F32, type_v=GGML_TYPE_F32, flash_attn=False,
                              n_gpu_layers=0, verbose=True, seed=0)
        seqs, logits = [], []
        for text in prompts:
            toks = llm.tokenize(text.encode('utf-8'), add_bos=True, special=False)
            llm.reset()
            llm.eval(toks)
            logits.append(np.array(llm.scores[:len(toks)], dtype=np.float32))
            seqs.append({'text': text, 'tokens': [int(t) for t in toks]})
        n_vocab = llm.n_vocab()
        add_bos = llm.metadata.get('tokenizer.ggml.add_bos_token') == 'true'
        llm.close()
    return seqs, logits, n_vocab, add_bos, cap.buf.getvalue()


def write_fixture(name, path, fixture_dir, rows_policy, prompts, n_threads):
    seqs, logits, n_vocab, add_bos, log = run_model(path, prompts, n_threads)
    rows = []
    for s, lg in enumerate(logits):
        if rows_policy == 'all':
            rows += [[s, p] for p in range(lg.shape[0])]
        else:
            rows.append([s, lg.shape[0] - 1])
    stored = np.stack([logits[s][p] for s, p in rows]).astype('<f2')
    if not np.all(np.isfinite(stored)):
        raise RuntimeError(f'{name}: non-finite logits')
    with open(os.path.join(fixture_dir, name + '.logits'), 'wb') as f:
        f.write(stored.tobytes())
    every = np.concatenate(logits, axis=0)
    top5 = np.argsort(-every, axis=1, kind='stable')[:, :5]
    doc = {
        'model': name,
        'file_sha256': sha256_file(path),
        'llama_cpp_python': llama_cpp.__version__,
        'llama_cpp_commit': LLAMA_CPP_COMMIT.get(llama_cpp.__version__),
        'sequences': seqs,
        'add_bos': add_bos,
        'n_vocab': int(n_vocab),
        'logits': name + '.logits',
        'dtype': 'f16',
        'rows_policy': rows_policy,
        'rows': rows,
        'argmax': [int(i) for i in every.argmax(axis=1)],
        'top5': [[int(i) for i in r] for r in top5],
        'top5_logits': [[round(float(every[k, i]), 4) for i in r] for k, r in enumerate(top5)],
        'logit_rms': round(float(np.sqrt(np.mean(every ** 2))), 4),
        'run': {'type_k': 'f32', 'type_v': 'f32', 'flash_attn': False, 'n_threads': n_threads,
                'n_batch': 256, 'one_sequence_per_decode': True, 'backend': 'CPU'},
        'llama_cpp_backends': backend_summary(log),
    }
    with open(os.path.join(fixture_dir, name + '.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    return doc, stored.nbytes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model_dir')
    ap.add_argument('fixture_dir')
    ap.add_argument('--only', help='comma-separated model names')
    ap.add_argument('--big', action='store_true', help='also the real-shape models')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    os.makedirs(a.fixture_dir, exist_ok=True)
    every = dict(make_models.MODELS, **make_models.BIG_MODELS)
    names = a.only.split(',') if a.only else list(make_models.MODELS) + (
        list(make_models.BIG_MODELS) if a.big else [])
    failed = []
    for n in names:
        family, wtype, over = every[n]
        path = os.path.join(a.model_dir, n + '.gguf')
        big = n in make_models.BIG_MODELS
        policy = 'all' if wtype == 'f32' and not big else 'last'
        try:
            doc, nbytes = write_fixture(n, path, a.fixture_dir, policy,
                                        BIG_PROMPTS if big else PROMPTS, a.threads)
        except LoadError as e:  # llama.cpp refused the file: say so in the fixture
            failed.append(n)
            with open(os.path.join(a.fixture_dir, n + '.json'), 'w') as f:
                json.dump({'model': n, 'file_sha256': sha256_file(path),
                           'llama_cpp_python': llama_cpp.__version__,
                           'llama_cpp_commit': LLAMA_CPP_COMMIT.get(llama_cpp.__version__),
                           'llama_cpp_error': str(e),
                           # legacy per-expert names hold the same weights as the merged file
                           'same_weights_as': f'{family}-{wtype}' if over.get('legacy_experts') else None},
                          f, indent=1)
                f.write('\n')
            print(f'{n:24s} llama.cpp refused it: {e}', flush=True)
            continue
        ntok = [len(s['tokens']) for s in doc['sequences']]
        print(f'{n:24s} tokens {ntok} rows {len(doc["rows"])} {nbytes} B  argmax {doc["argmax"]}'
              f'  backends {sorted(doc["llama_cpp_backends"]["ops"])}', flush=True)
    if failed:
        print('refused: ' + ', '.join(failed))


if __name__ == '__main__':
    main()
