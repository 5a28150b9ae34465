#!/usr/bin/env bash
# Packs binaries built here for a run on the GPU machine (no Debian -dev packages there):
#   B=build-gpu bash scripts/device/pack.sh  ->  $B/pack/{tinyllm, test_*, bench_*} + $B/pack/lib
# The lib folder holds the shared libraries they link that are not part of the CUDA toolkit
# or glibc/libstdc++ (PCRE2, utf8proc, cpp-httplib, OpenSSL, brotli, ...). Carry: $B/pack.
set -euo pipefail
B=${B:-build-gpu}
P="$B/pack"
rm -rf "$P" && mkdir -p "$P/lib"
for f in src/cli/tinyllm tests/kernels/cuda/test_kernels_cuda tests/kernels/cuda_moe/test_moe_cuda \
         tests/engine/test_engine_gpu tests/quant/test_quant_cuda "$B"/bench/cuda/bench_*_cuda; do
  f=${f#"$B/"}
  if [[ -x "$B/$f" ]]; then cp "$B/$f" "$P/"; strip "$P/$(basename "$f")"; fi
done
for lib in $(ldd "$P"/* 2>/dev/null | awk '/=>/{print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*|ld-linux*|libcuda.so*|libcudart*|libcublas*|libpthread*|libdl*|librt*) ;;
    *) cp -L "$lib" "$P/lib/" ;;
  esac
done
du -sh "$P"
