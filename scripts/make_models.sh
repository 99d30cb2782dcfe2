#!/usr/bin/env bash
# Writes the small test models (tests/reference/make_models.py) into OUT_DIR with the pinned gguf
# and numpy in a virtual environment next to it: the llama.cpp fixtures check each file's sha256,
# so the generator's inputs must not drift. Needs XT_TOKENIZER_GGUF_DIR (the real tokenizers'
# vocabularies; scripts/test.sh builds them) or node+npm to build them on the fly.
#   bash scripts/make_models.sh OUT_DIR [make_models.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: make_models.sh OUT_DIR [options]}
shift
venv="$out.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check gguf==0.19.0 numpy==2.4.6
fi
tok=()
[ -n "${XT_TOKENIZER_GGUF_DIR:-}" ] && tok=(--tokenizers "$XT_TOKENIZER_GGUF_DIR")
"$venv/bin/python" tests/reference/make_models.py "$out" "${tok[@]}" "$@"
