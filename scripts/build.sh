#!/usr/bin/env bash
# Configures and builds tinyllm into build/ (CUDA backend on when nvcc exists).
# Extra arguments go to cmake, e.g. -DCMAKE_CUDA_ARCHITECTURES=90a-real.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)" --target tinyllm
