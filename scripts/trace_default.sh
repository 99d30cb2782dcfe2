#!/usr/bin/env bash
# The main job on the default model: installs what it needs (scripts/setup.sh --main), builds, traces
# assets/default-model.gguf on assets/facts.json into trace-results/ and writes
# trace-results/report.html (ROME-style grids for 8 cases included).   bash scripts/trace_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --main
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target expertrace_cli
# with ROME-style grids (p(true), windows of 2 of the 4 layers) for the first 8 cases
build/expertrace trace -o trace-results --rome 8 --rome-metric p-true --rome-window 2
build/expertrace report trace-results -o trace-results/report.html
echo "report: trace-results/report.html"
