#!/usr/bin/env bash
# A sanitizer build of the CLI (AddressSanitizer + UndefinedBehaviorSanitizer, CPU only, in
# build-asan/) driven by the checks that feed it bad input: the request-field sweep and the
# async-scheduling check against a real server, and mutated config.json / safetensors / GGUF
# files through `tinyllm generate` (scripts/dev/fuzz_loaders.py). A developer's check, not CI
# (the build alone takes ~30 min on 2 cores). Any report aborts the process that hit it, and the
# check that drove it fails. Session 62 found four bugs this way (docs/cuda-notes.md has the
# GPU half of that session; the CPU fixes are commits c796f14..3f17df3).
#   bash scripts/dev/sanitize.sh [GGUF_CASES]
set -euo pipefail
cd "$(dirname "$0")/../.."
B=build-asan
if [[ ! -f $B/build.ninja ]]; then
  cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLLM_CUDA=OFF -DTLLM_TESTS=OFF -DTLLM_BENCH=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
fi
ninja -C $B tinyllm
export ASAN_OPTIONS=detect_leaks=1
python3 tests/server/bad_fields_sweep.py $B/src/cli/tinyllm models/tiny-qwen2-demo
python3 tests/server/serve_async_check.py $B/src/cli/tinyllm models/tiny-qwen2-demo --device cpu
/usr/bin/python3 scripts/dev/fuzz_loaders.py $B/src/cli/tinyllm --gguf-cases "${1:-150}"
