#!/usr/bin/env bash
# The main job on the default model: installs what is needed (scripts/setup.sh), builds, traces
# assets/default-model.gguf on assets/facts.json into trace-results/ and writes
# trace-results/report.html.   bash scripts/trace_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target expertrace_cli
build/expertrace trace -o trace-results
build/expertrace report trace-results -o trace-results/report.html
echo "report: trace-results/report.html"
