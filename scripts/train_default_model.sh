#!/usr/bin/env bash
# Regenerates assets/default-model.gguf, assets/facts.json and assets/training-log.txt: makes the
# virtual environments (pinned versions), trains the model on the CPU (2-3 minutes on one core)
# and runs every check (transformers, llama.cpp, expertrace; a few minutes more). See the top of
# scripts/train_default_model.py for what it does and what is reproducible.
#
#   bash scripts/train_default_model.sh [train_default_model.py options, e.g. --seed 1 --out DIR]
#
# Environment:
#   XT_TRAIN_VENV     a Python venv that already has the pinned packages below (skips the install)
#   XT_TORCH_INDEX    pip index for torch (e.g. https://download.pytorch.org/whl/cpu for the small
#                     CPU-only wheel; default: PyPI)
#   XT_LLAMA_PYTHON   a python with llama-cpp-python for the llama.cpp check; default: a venv
#                     build-train/venv-llama with llama-cpp-python 0.3.36 (compiles llama.cpp);
#                     XT_LLAMA_PYTHON=none skips the check
#   XT_EXPERTRACE     the expertrace binary for its checks; default: build/expertrace if present
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build-train

venv=${XT_TRAIN_VENV:-build-train/venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch, transformers, tokenizers, gguf' 2>/dev/null; then
  python3 -m venv "$venv"
  idx=()
  [ -n "${XT_TORCH_INDEX:-}" ] && idx=(--index-url "$XT_TORCH_INDEX" --extra-index-url https://pypi.org/simple)
  "$venv/bin/pip" install -q --disable-pip-version-check "${idx[@]}" torch==2.15.0
  "$venv/bin/pip" install -q --disable-pip-version-check transformers==5.23.0 tokenizers==0.23.3 \
    gguf==0.19.0 numpy==2.4.6
fi

args=()
llama=${XT_LLAMA_PYTHON:-build-train/venv-llama/bin/python}
if [ "$llama" != none ]; then
  if [ -z "${XT_LLAMA_PYTHON:-}" ] && ! "$llama" -c 'import llama_cpp' 2>/dev/null; then
    python3 -m venv build-train/venv-llama
    build-train/venv-llama/bin/pip install -q --disable-pip-version-check llama-cpp-python==0.3.36 numpy==2.4.6
  fi
  args+=(--llama-python "$llama")
fi
xt=${XT_EXPERTRACE:-build/expertrace}
[ -x "$xt" ] && args+=(--expertrace "$xt")

exec "$venv/bin/python" scripts/train_default_model.py "${args[@]}" "$@"
