#!/usr/bin/env python3
"""Forward tokens/s, ours vs llama.cpp's CPU and Vulkan backends, in one run (a benchmark, not a test).

    python3 tests/reference/bench_forward.py MODEL.gguf [MODEL.gguf ...] [--out-dir DIR]
        [--expertrace BIN] [--cpu-python PY] [--vulkan-python PY] [--repeats N] [--vk-repeats N]
        [--threads N] [--no-vulkan] [--ours-backend gpu|cpu]
    python3 tests/reference/bench_forward.py --render DIR/summary.json   # the tables again

For each model, on the same token ids:
  1. llama.cpp's CPU backend: bench_llama.py run by --cpu-python (a CPU build of llama-cpp-python);
     it also writes DIR/<model>.json with the fixed-seed prompts of both workloads;
  2. llama.cpp's Vulkan backend: bench_llama.py's Vulkan worker run by --vulkan-python (a
     -DGGML_VULKAN=on build; GGML_VK_VISIBLE_DEVICES=0 so that it takes a CPU-type device such as
     lavapipe), with --vk-repeats timed runs (on lavapipe one 64x16 run takes ~8 minutes);
  3. ours: `expertrace bench --ops forward --tokens-file DIR/<model>.json --json`.
Workloads (bench_llama.py's): batch64x16 (64 prompts x 16 tokens in one submission) and prefill512
(one 512-token prompt); logits of each prompt's last position only; one warm-up run, then best
and median of the timed runs. Prints one table per model (tokens/s, ours/peer ratios, where
llama.cpp ran its ops) and the machine's load average before and after; writes DIR/summary.json
and DIR/summary.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_LLAMA = os.path.join(HERE, 'bench_llama.py')


def load():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', flush=True)


def last_json_line(text):
    for ln in reversed(text.strip().splitlines()):
        ln = ln.strip()
        if ln.startswith('{'):
            return json.loads(ln)
    raise ValueError('no JSON line')


def run(cmd, env=None):
    log('$ ' + ' '.join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p, round(time.time() - t0, 1)


def llama_cpu(a, model, prefix):
    env = dict(os.environ)
    env.pop('XT_LLAMA_VK_PYTHON', None)   # bench_llama.py's main runs the CPU backend only
    p, wall = run([a.cpu_python, BENCH_LLAMA, model, prefix, '--cpu-python', a.cpu_python,
                   '--repeats', str(a.repeats), '--threads', str(a.threads)], env)
    if p.returncode != 0:
        raise SystemExit(f'bench_llama.py failed ({p.returncode}):\n{p.stderr[-4000:]}')
    with open(prefix + '.json') as f:
        doc = json.load(f)
    r = doc['runs'][0]
    r['wall_s'] = wall
    return r


def llama_vulkan(a, model, prefix):
    env = dict(os.environ, GGML_VK_VISIBLE_DEVICES=os.environ.get('GGML_VK_VISIBLE_DEVICES', '0'))
    p, wall = run([a.vulkan_python, BENCH_LLAMA, model, prefix, '--worker', 'vulkan',
                   '--repeats', str(a.vk_repeats), '--threads', str(a.threads)], env)
    try:
        r = last_json_line(p.stdout)
    except ValueError:
        r = {'backend': 'vulkan', 'error': (p.stderr.strip().splitlines() or ['no output'])[-1]}
    r['wall_s'] = wall
    return r


def ours(a, model, prefix):
    p, wall = run([a.expertrace, 'bench', '--ops', 'forward', '--model', model,
                   '--workloads', 'batch64x16,prefill512', '--tokens-file', prefix + '.json',
                   '--backend', a.ours_backend, '--repeats', str(a.repeats), '--json'])
    if p.returncode != 0:
        return {'backend': 'ours', 'error': (p.stderr.strip().splitlines() or ['no output'])[-1],
                'wall_s': wall}
    r = last_json_line(p.stdout)
    r['wall_s'] = wall
    return r


def placement(run_, w):
    """llama.cpp: ops the scheduler put on a backend other than the run's own."""
    v = run_['workloads'][w]
    own = 'CPU' if run_['backend'] == 'cpu' else 'Vulka'   # the scheduler prints 5 characters
    parts = []
    for be, ops in sorted(v.get('op_placement', {}).items()):
        n = sum(ops.values())
        if be.startswith(own):
            parts.insert(0, f'{n} ops on {"Vulkan" if own == "Vulka" else be}')
        else:
            parts.append(f'{be}: ' + ', '.join(f'{op}x{c}' for op, c in sorted(ops.items())))
    return '; '.join(parts) or 'n/a'


def table(model, cpu, vk, me):
    rows = ['| workload | engine | tokens | best s | median s | tokens/s (best) | tokens/s (median) '
            '| ours/peer (best) | GFLOP/s (best) | check logit | where the ops ran |',
            '|---|---|---|---|---|---|---|---|---|---|---|']
    for w in ('batch64x16', 'prefill512'):
        mine = me.get('workloads', {}).get(w)
        flop = mine['flop'] if mine else None
        engines = []
        if 'error' not in cpu:
            engines.append((f'llama.cpp {cpu["llama_cpp_python"]} CPU ({cpu["threads"]} threads)',
                            cpu['workloads'][w], placement(cpu, w)))
        if vk is not None and 'error' not in vk:
            dev = (vk.get('vulkan_devices') or ['?'])[0].split(' (')[0]
            engines.append((f'llama.cpp {vk["llama_cpp_python"]} Vulkan ({dev})',
                            vk['workloads'][w], placement(vk, w)))
        for name, v, where in engines:
            ratio = f'{mine["tokens_per_s_best"] / v["tokens_per_s_best"]:.3g}' if mine else '—'
            gf = f'{flop / v["best_s"] * 1e-9:.2f}' if flop else '—'
            rows.append(f'| {w} | {name} | {v["tokens"]} | {v["best_s"]:.3f} | {v["median_s"]:.3f} | '
                        f'{v["tokens_per_s_best"]:.1f} | {v["tokens_per_s_median"]:.1f} | {ratio} | '
                        f'{gf} | {v["check_logit"]:.4f} | {where} |')
        if mine:
            pk = me.get('peak_flops_per_s')
            pct = f' ({100 * mine["peak_fraction_best"]:.1f}% of {pk * 1e-9:.1f} peak)' if pk else ''
            dev = me['device'].split(' (')[0]
            rows.append(f'| {w} | expertrace {me["backend"]} ({dev}) | {mine["tokens"]:.0f} | '
                        f'{mine["best_s"]:.3f} | {mine["median_s"]:.3f} | '
                        f'{mine["tokens_per_s_best"]:.1f} | {mine["tokens_per_s_median"]:.1f} | — | '
                        f'{mine["flops_per_s_best"] * 1e-9:.2f}{pct} | {mine["check_logit"]:.4f} | '
                        f'every op on {dev} |')
    return '\n'.join(rows)


def render(name, res, cpus):
    t = table(name, res['llama_cpu'], res['llama_vulkan'], res['ours'])
    errs = [f'{k}: {v["error"]}' for k, v in res.items() if isinstance(v, dict) and 'error' in v]
    notes = []
    vk = res['llama_vulkan']
    if vk and vk.get('load_notes'):
        notes.append("llama.cpp Vulkan load notes: " + '; '.join(vk['load_notes']))
    return (f'### {name}\n\nload average (1/5/15 min) before {res["load_before"]}, after '
            f'{res["load_after"]}; {cpus} CPUs\n\n{t}\n' + ''.join(f'\n{n}\n' for n in notes + errs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('models', nargs='*')
    ap.add_argument('--render', metavar='SUMMARY_JSON', help='print the tables of an earlier run')
    ap.add_argument('--out-dir', default=os.path.join(tempfile.gettempdir(), 'xt-bench-forward'))
    ap.add_argument('--expertrace', default=os.environ.get('XT_BIN', 'build/expertrace'))
    ap.add_argument('--cpu-python', default=os.environ.get('XT_LLAMA_CPU_PYTHON', sys.executable))
    ap.add_argument('--vulkan-python', default=os.environ.get('XT_LLAMA_VK_PYTHON'))
    ap.add_argument('--repeats', type=int, default=3, help='timed runs of llama.cpp CPU and ours')
    ap.add_argument('--vk-repeats', type=int, default=1, help='timed runs of llama.cpp Vulkan')
    ap.add_argument('--threads', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--no-vulkan', action='store_true', help="skip llama.cpp's Vulkan backend")
    ap.add_argument('--ours-backend', choices=['gpu', 'cpu'], default='gpu')
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            summary = json.load(f)
        for name, res in summary['models'].items():
            print(render(name, res, summary['cpus']))
        return
    if not a.models:
        ap.error('no model given')
    os.makedirs(a.out_dir, exist_ok=True)
    if not a.vulkan_python and not a.no_vulkan:
        ap.error('--vulkan-python (or $XT_LLAMA_VK_PYTHON) is needed, or --no-vulkan')
    started = time.time()
    summary = {'load_before': load(), 'cpus': os.cpu_count(), 'models': {}}
    log(f'load average before: {summary["load_before"]}')
    md = []
    for model in a.models:
        prefix = os.path.join(a.out_dir, os.path.splitext(os.path.basename(model))[0])
        res = {'load_before': load()}
        res['llama_cpu'] = llama_cpu(a, model, prefix)
        log(f'llama.cpp CPU done in {res["llama_cpu"]["wall_s"]} s')
        res['llama_vulkan'] = None
        if not a.no_vulkan:
            res['llama_vulkan'] = llama_vulkan(a, model, prefix)
            log(f'llama.cpp Vulkan done in {res["llama_vulkan"]["wall_s"]} s')
        res['ours'] = ours(a, model, prefix)
        log(f'expertrace done in {res["ours"]["wall_s"]} s')
        res['load_after'] = load()
        summary['models'][os.path.basename(model)] = res
        block = render(os.path.basename(model), res, summary['cpus'])
        md.append(block)
        print('\n' + block, flush=True)
    summary['load_after'] = load()
    summary['wall_s'] = round(time.time() - started, 1)
    with open(os.path.join(a.out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(a.out_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(md))
    log(f'load average after: {summary["load_after"]}; total {summary["wall_s"]} s; '
        f'results in {a.out_dir}/summary.{{md,json}}')


if __name__ == '__main__':
    main()
