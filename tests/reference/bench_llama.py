#!/usr/bin/env python3
"""Times llama.cpp's forward pass on the 2-layer real-shape model, for the benchmark note (not a test).

    python3 tests/reference/bench_llama.py MODEL.gguf OUT_PREFIX [--cpu-python PY] [--vulkan-python PY]
                                          [--repeats N] [--threads N]

Two workloads, each timed after one warm-up run, best and median of --repeats:
  batch64x16  64 prompts x 16 tokens in one llama_decode (64 sequence ids, unified K/V cache),
              logits of each prompt's last position only;
  prefill512  one 512-token prompt in one llama_decode, logits of the last position only.
Token ids are drawn from a fixed seed (written to OUT_PREFIX.json) so another engine can run the
same input. Each backend runs in a subprocess of the Python that has the matching
llama-cpp-python build: --cpu-python (a CPU-only build; default this Python) and --vulkan-python
(a -DGGML_VULKAN=on build; default $XT_LLAMA_VK_PYTHON, skipped when neither is given). The Vulkan
run uses every layer on the device (n_gpu_layers 99) and GGML_VK_VISIBLE_DEVICES=0, since
llama.cpp skips CPU-type Vulkan devices such as lavapipe unless told otherwise.
llama.cpp's scheduler debug output (GGML_SCHED_DEBUG=2) says which backend ran each op; the
op counts per backend of each workload's graph are part of the result.
Writes OUT_PREFIX.json and OUT_PREFIX.md (the table) and prints the table.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

WORKLOADS = {'batch64x16': (64, 16), 'prefill512': (1, 512)}
TOKEN_SEED = 1234


def prompts_for(n_seq, n_tok, n_vocab):
    import numpy as np
    rng = np.random.default_rng([TOKEN_SEED, n_seq, n_tok])
    # ordinary tokens only: avoid the first ids and the added/special ones at the top
    hi = min(n_vocab, 150000)
    return rng.integers(1000, hi, size=(n_seq, n_tok)).tolist()


NODE_RE = re.compile(r'node #\s*\d+ \(\s*([^)]*?)\):\s*(\S+)\s+\(\s*[^)]*\)\s+\[\s*(\S+)')


def op_placement(log_text):
    """{backend: {op: count}} for the last graph the scheduler printed."""
    parts = log_text.split('## SPLIT #0:')
    if len(parts) < 2:
        return {}
    ops = {}
    for op, _name, be in NODE_RE.findall(parts[-1]):
        ops.setdefault(be, {})
        ops[be][op] = ops[be].get(op, 0) + 1
    return ops


def worker(backend, model, repeats, threads):
    """Runs inside the Python of the matching build; prints one JSON line."""
    import io
    os.environ['GGML_SCHED_DEBUG'] = '2'
    if backend == 'vulkan':
        os.environ.setdefault('GGML_VK_VISIBLE_DEVICES', '0')
    import ctypes
    import llama_cpp as L

    log = io.StringIO()
    real_stderr, sys.stderr = sys.stderr, log   # llama-cpp-python's log callback prints here
    try:
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 99 if backend == 'vulkan' else 0
        model_p = L.llama_model_load_from_file(model.encode(), mp)
        if not model_p:
            raise RuntimeError('llama.cpp could not load ' + model)
        vocab = L.llama_model_get_vocab(model_p)
        n_vocab = L.llama_vocab_n_tokens(vocab)
        load_log = log.getvalue()
        results = {}
        for wname, (n_seq, n_tok) in WORKLOADS.items():
            toks = prompts_for(n_seq, n_tok, n_vocab)
            n = n_seq * n_tok
            cp = L.llama_context_default_params()
            cp.n_ctx = max(n, 512)
            cp.n_batch = n
            cp.n_ubatch = n
            cp.n_seq_max = n_seq
            cp.n_threads = threads
            cp.n_threads_batch = threads
            if hasattr(cp, 'kv_unified'):
                cp.kv_unified = True
            # plain attention on both builds (newer llama.cpp defaults to flash attention "auto")
            if hasattr(cp, 'flash_attn_type'):
                cp.flash_attn_type = 0        # LLAMA_FLASH_ATTN_TYPE_DISABLED
            elif hasattr(cp, 'flash_attn'):
                cp.flash_attn = False
            ctx = L.llama_init_from_model(model_p, cp)
            if not ctx:
                raise RuntimeError(f'{wname}: llama.cpp could not create a context')
            batch = L.llama_batch_init(n, 0, n_seq)
            batch.n_tokens = n
            k = 0
            for s in range(n_seq):
                for p in range(n_tok):
                    batch.token[k] = toks[s][p]
                    batch.pos[k] = p
                    batch.n_seq_id[k] = 1
                    batch.seq_id[k][0] = s
                    batch.logits[k] = 1 if p == n_tok - 1 else 0
                    k += 1
            times = []
            log.seek(0)
            log.truncate()
            for r in range(repeats + 1):
                L.llama_memory_clear(L.llama_get_memory(ctx), True)
                t0 = time.perf_counter()
                rc = L.llama_decode(ctx, batch)
                L.llama_synchronize(ctx)
                last = [L.llama_get_logits_ith(ctx, s * n_tok + n_tok - 1)[0] for s in range(n_seq)]
                dt = time.perf_counter() - t0
                if rc != 0:
                    raise RuntimeError(f'{wname}: llama_decode returned {rc}')
                if r > 0:                      # run 0 is the warm-up
                    times.append(dt)
            placement = op_placement(log.getvalue())   # the graph is printed when it is (re)built
            L.llama_batch_free(batch)
            L.llama_free(ctx)
            results[wname] = {
                'tokens': n, 'seconds': times, 'best_s': min(times),
                'median_s': statistics.median(times),
                'tokens_per_s_best': n / min(times), 'tokens_per_s_median': n / statistics.median(times),
                'op_placement': placement, 'check_logit': float(last[0]),
            }
        L.llama_model_free(model_p)
    finally:
        sys.stderr = real_stderr
    dev = sorted(set(re.findall(r'ggml_vulkan: \d+ = ([^\n|]+)', load_log)))
    unsupported = sorted(set(ln.strip() for ln in load_log.splitlines() if 'not supported' in ln))
    print(json.dumps({'backend': backend, 'llama_cpp_python': L.__version__,
                      'system_info': L.llama_print_system_info().decode().strip(),
                      'vulkan_devices': [d.strip() for d in dev], 'load_notes': unsupported,
                      'weight_buffers': sorted(set(re.findall(r'(\S+) model buffer size', load_log))),
                      'threads': threads, 'workloads': results}))


def table(runs):
    rows = ['| backend | llama-cpp-python | workload | tokens | best s | median s | tokens/s (best) | ops not on the backend |',
            '|---|---|---|---|---|---|---|---|']
    for r in runs:
        if 'error' in r:
            rows.append(f'| {r["backend"]} | — | — | — | — | — | failed: {r["error"][:120]} | |')
            continue
        for w, v in r['workloads'].items():
            own = 'CPU' if r['backend'] == 'cpu' else 'Vulka'
            other = {be: ops for be, ops in v['op_placement'].items() if not be.startswith(own)}
            moved = '; '.join(f'{be}: ' + ', '.join(f'{op}×{c}' for op, c in sorted(ops.items()))
                              for be, ops in sorted(other.items())) or 'none'
            rows.append(f'| {r["backend"]} | {r["llama_cpp_python"]} | {w} | {v["tokens"]} | '
                        f'{v["best_s"]:.3f} | {v["median_s"]:.3f} | {v["tokens_per_s_best"]:.1f} | {moved} |')
    return '\n'.join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('model', nargs='?')
    ap.add_argument('out_prefix', nargs='?')
    ap.add_argument('--cpu-python', default=sys.executable)
    ap.add_argument('--vulkan-python', default=os.environ.get('XT_LLAMA_VK_PYTHON'))
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--worker', choices=['cpu', 'vulkan'], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker, a.model, a.repeats, a.threads)
        return
    if not a.model or not a.out_prefix:
        ap.error('MODEL and OUT_PREFIX are required')
    runs = []
    for backend, py in (('cpu', a.cpu_python), ('vulkan', a.vulkan_python)):
        if not py:
            continue
        cmd = [py, os.path.abspath(__file__), a.model, a.out_prefix, '--worker', backend,
               '--repeats', str(a.repeats), '--threads', str(a.threads)]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ''
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            r = {'backend': backend, 'error': (p.stderr.strip().splitlines() or ['no output'])[-1]}
        r['wall_s'] = round(time.time() - t0, 1)
        runs.append(r)
        print(f'{backend}: done in {r["wall_s"]} s', flush=True)
    import numpy as np  # noqa: F401  (prompts_for needs it; fail early here rather than in a worker)
    doc = {'model': os.path.basename(a.model), 'token_seed': TOKEN_SEED,
           'workloads': {w: {'n_seq': s, 'n_tok': t, 'logits': 'last position of each sequence'}
                         for w, (s, t) in WORKLOADS.items()},
           'prompts': {w: prompts_for(s, t, 151936) for w, (s, t) in WORKLOADS.items()},
           'runs': runs}
    with open(a.out_prefix + '.json', 'w') as f:
        json.dump(doc, f, indent=1)
    t = table(runs)
    with open(a.out_prefix + '.md', 'w') as f:
        f.write(f'llama.cpp on {doc["model"]}\n\n{t}\n')
    print(t)


if __name__ == '__main__':
    main()
