#!/usr/bin/env bash
# ctest entry test_server_openai_js: the official OpenAI Node client (pinned in
# package.json) against `tinyllm serve` with the tiny model on CPU.
# Usage: run.sh NODE TINYLLM_BINARY. Exits 77 (ctest: skipped) without node_modules;
# install them with `npm ci --prefix tests/server/js`.
set -euo pipefail
NODE="$1"
BIN="$2"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
if [[ ! -f "$HERE/node_modules/openai/package.json" ]]; then
  echo "SKIP: $HERE/node_modules is missing; run: npm ci --prefix tests/server/js" >&2
  exit 77
fi
MODEL=""
for d in "$ROOT/models/tiny-qwen2-demo" "$ROOT/../shared/models/tiny-qwen2-demo"; do
  if [[ -f "$d/config.json" ]]; then MODEL="$d"; break; fi
done
if [[ -z "$MODEL" ]]; then
  echo "SKIP: tiny-qwen2-demo not found (models/ or ../shared/models/)" >&2
  exit 77
fi
cd "$HERE"
TINYLLM_BIN="$BIN" TINYLLM_MODEL="$MODEL" exec "$NODE" --test --test-concurrency=1 test_openai.mjs
