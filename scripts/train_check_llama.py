#!/usr/bin/env python3
"""llama.cpp's view of the default model: run by train_default_model.py (--llama-python) in a Python
that has llama-cpp-python, so llama.cpp's own GGUF loader, tokenizer and CPU forward pass check the
file independently of transformers.

    python3 scripts/train_check_llama.py MODEL.gguf CHECK.json [--threads N]

CHECK.json (written by train_default_model.py) holds every case's prompt, the HF tokenizer's ids,
the true and foil token ids and transformers' delta on the Q8_0 weights, and every object's ids
alone and after a space. Prints one line per finding; exits 1 when the tokenizers disagree or
the clean accuracy is under the file's min_acc.
"""
import argparse
import json
import sys

import numpy as np
import llama_cpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('check')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args()
    chk = json.load(open(a.check))
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=256, n_batch=256, n_threads=a.threads,
                          logits_all=True, verbose=False, flash_attn=False)
    print(f'llama-cpp-python {llama_cpp.__version__}; n_vocab {llm.n_vocab()}, add_bos '
          f'{llm._model.add_bos_token() if hasattr(llm._model, "add_bos_token") else "?"}')

    def tok(text):
        return llm.tokenize(text.encode('utf-8'), add_bos=False, special=False)

    bad = 0
    n = 0
    for o, ids in chk['objects'].items():
        for key, text in (('alone', o), ('space', ' ' + o)):
            n += 1
            if tok(text) != ids[key]:
                bad += 1
                print(f'tokenize mismatch {text!r}: llama {tok(text)} hf {ids[key]}')
    for c in chk['cases']:
        n += 1
        if tok(c['prompt']) != c['ids']:
            bad += 1
            if bad <= 5:
                print(f'tokenize mismatch {c["prompt"]!r}: llama {tok(c["prompt"])} hf {c["ids"]}')
    print(f'tokenizer agrees with HF tokenizers on {n - bad}/{n} texts (every prompt, every object '
          f'alone and after a space)')

    d = []
    top1 = []
    for c in chk['cases']:
        llm.reset()
        llm.eval(c['ids'])
        lg = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        d.append(float(lg[c['true_id']] - lg[c['foil_id']]))
        top1.append(int(np.argmax(lg)) == c['true_id'])
    d = np.array(d)
    ref = np.array([c['delta_q8'] for c in chk['cases']])
    print(f'clean accuracy (delta >= 1) {np.mean(d >= 1):.4f} ({int(np.sum(d >= 1))}/{len(d)}), '
          f'top-1 {np.mean(top1):.4f}, delta mean {d.mean():.2f} median {np.median(d):.2f}')
    print(f'max |delta(llama.cpp) - delta(transformers on Q8_0)| {np.max(np.abs(d - ref)):.4f}, '
          f'mean {np.mean(np.abs(d - ref)):.4f}')
    if bad or np.mean(d >= 1) < chk['min_acc']:
        sys.exit(1)


if __name__ == '__main__':
    main()
