#!/usr/bin/env bash
# Installs what tinyllm needs to build and test on Debian 12 (run as root). Idempotent.
# The CUDA backend is built too when the CUDA toolkit is present (/usr/local/cuda/bin/nvcc).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake ninja-build ccache pkg-config git ca-certificates
      nlohmann-json3-dev libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
      libpcre2-dev libutf8proc-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
      python3-numpy)
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
