#!/usr/bin/env bash
# Installs what expertrace needs to build and test on Debian 12 (bookworm) or newer:
# compiler and CMake, Vulkan headers + loader, volk, glslc, SPIR-V tools, cJSON, the validation
# layers and Mesa's lavapipe (a CPU Vulkan device, so tests run without a GPU), clang for the
# fuzz target, Node.js for the tokenizer oracle, Python for the model generator. Safe to run again: it installs only what is missing.
#   bash scripts/setup.sh          everything (build, tests, oracles, fuzzing, the report test)
#   bash scripts/setup.sh --main   only what building and running expertrace needs
set -euo pipefail

# building and running: compiler, CMake, Vulkan headers + loader, volk, glslc, the libraries, and
# lavapipe so that a machine without a GPU has a Vulkan device
packages=(
  build-essential cmake ninja-build pkg-config
  libvulkan-dev libvulkan1 libvulkan-volk-dev glslc mesa-vulkan-drivers
  libcjson-dev libpcre2-dev libutf8proc-dev
)
if [ "${1:-}" != "--main" ]; then
  packages+=(
    spirv-tools spirv-cross vulkan-validationlayers vulkan-tools
    python3 python3-venv
    clang libclang-rt-14-dev chromium
  )
  # node + npm run the reference tokenizers (tests/reference); a Node.js that is already
  # installed (e.g. from another source, with its own npm) is used as it is.
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
