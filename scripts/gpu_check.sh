#!/usr/bin/env bash
# The checks to run on a new GPU, with binaries built elsewhere or here: the device list, the op
# tests and the model test against the CPU reference, the kernel benchmark and the default trace,
# whose result directory can then be compared with another device's (`expertrace compare`).
#   bash scripts/gpu_check.sh BUILD_DIR OUT_DIR [bench tokens, default 1,16,256,2048]
# BUILD_DIR holds expertrace and tests/test_op_*, tests/test_model; XT_MODEL_DIR (optional) holds
# the small models test_model checks. Each step's output goes to OUT_DIR/<step>.log; a failing
# step is reported and the others still run; the exit status is the number of failed steps.
set -uo pipefail
build=${1:?usage: gpu_check.sh BUILD_DIR OUT_DIR [tokens]}
out=${2:?usage: gpu_check.sh BUILD_DIR OUT_DIR [tokens]}
tokens=${3:-1,16,256,2048}
cd "$(dirname "$0")/.."
mkdir -p "$out"
failed=0
step() {
  local name=$1
  shift
  local t0=$SECONDS
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc $rc, $((SECONDS - t0)) s"
  tail -n 25 "$out/$name.log"
  [ $rc -eq 0 ] || failed=$((failed + 1))
}
export EXPERTRACE_VALIDATION=${EXPERTRACE_VALIDATION:-1}
step devices "$build/expertrace" devices
step test_op_matmul "$build/tests/test_op_matmul"
step test_op_moe "$build/tests/test_op_moe"
step test_op_attn "$build/tests/test_op_attn"
if [ -n "${XT_MODEL_DIR:-}" ]; then step test_model "$build/tests/test_model"; fi
step bench env EXPERTRACE_VALIDATION=0 "$build/expertrace" bench --ops matmul,moe \
  --tokens "$tokens" --types q4_K,q6_K,q8_0 --repeats 3
step trace env EXPERTRACE_VALIDATION=0 "$build/expertrace" trace -o "$out/trace" --rome 8 \
  --rome-metric p-true --rome-window 2
echo "gpu_check: $failed step(s) failed"
exit $failed
