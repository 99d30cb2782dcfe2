#!/usr/bin/env bash
# Benchmark of a whole trace (filter + layer sweep + expert pass) — ours against the transformers
# implementation of the same protocol (trace_reference.py --bench) on the same machine, in one
# run. Figures, not pass/fail.
#
#   bash tests/reference/bench_trace.sh EXPERTRACE PYTHON MODEL.gguf [MODEL.gguf ...]
#
# EXPERTRACE: our binary; PYTHON: a Python with torch + transformers + gguf (see
# tests/reference/README.md). Both engines trace the cases of tests/fixtures/trace/facts_small.json
# with filter none and the expert pass at layer 0: ours runs clean + noised prefills, one
# wavefront row per layer (sweep) and 2k + 3 rows at the layer (k experts, k equal-norm controls,
# two coalitions, the layer patch); the reference runs the clean and noised passes, one patched
# forward per layer and k + 2 at the layer (batched per case). Rates are cases/s over the whole
# protocol; rows/s counts each engine's own rows (ours: prefill sequences + wavefront rows; the
# reference: prefill sequences + patched sequences).
set -euo pipefail
exe=${1:?usage: bench_trace.sh EXPERTRACE PYTHON MODEL.gguf...}
py=${2:?python with torch and transformers}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
facts=$here/../fixtures/trace/facts_small.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-28s %-12s %8s %10s %10s %10s\n' model engine cases seconds cases/s rows/s
for model in "$@"; do
  name=$(basename "$model" .gguf)
  "$exe" trace "$model" --facts "$facts" --filter none --layer 0 --bootstrap 1000 --flips 1000 \
    --quiet --no-progress -o "$out/$name" >/dev/null
  read -r cases secs cps rps < <(python3 -c "
import json,sys
t=json.load(open(sys.argv[1]))
s=t['seconds_sweep']+t['seconds_experts']
print(t['cases_examined_this_run'], round(s,2), round(t['cases_per_s'],3), round(t['rows_per_s'],1))" \
    "$out/$name/timing.json")
  printf '%-28s %-12s %8s %10s %10s %10s\n' "$name" expertrace "$cases" "$secs" "$cps" "$rps"
  ref=$("$py" "$here/trace_reference.py" "$model" --bench "$cases" --facts "$facts" --expert-layer 0 | tail -n 1)
  read -r rc rsecs rcps rrps < <(python3 -c "
import json,sys
t=json.loads(sys.argv[1])
print(t['cases'], round(t['seconds'],2), round(t['cases_per_s'],3), round(t['rows_per_s'],1))" "$ref")
  printf '%-28s %-12s %8s %10s %10s %10s\n' "$name" transformers "$rc" "$rsecs" "$rcps" "$rrps"
  python3 -c "import sys; print('%-28s %-12s %8s %10s %10.2fx' % (sys.argv[1], 'ratio', '', '', float(sys.argv[2])/float(sys.argv[3])))" \
    "$name" "$cps" "$rcps"
done
