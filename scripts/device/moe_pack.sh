#!/usr/bin/env bash
# Packs what scripts/device/moe_check.sh runs on the GPU machine, from the build made here:
#   cmake -S . -B build-moe -G Ninja -DCMAKE_CUDA_ARCHITECTURES=90a-real
#   ninja -C build-moe test_moe_cuda tinyllm && bash scripts/device/moe_pack.sh
# -> build-moe/bin/{test_moe_cuda, tinyllm} (stripped) and build-moe/bin/lib/ with the
# non-system shared libraries they link (PCRE2, utf8proc, cpp-httplib, brotli), in case the
# device machine lacks them. Carry: build-moe/bin (about 12 MB).
set -euo pipefail
B=${B:-build-moe}
mkdir -p "$B/bin/lib"
cp "$B/tests/kernels/cuda_moe/test_moe_cuda" "$B/src/cli/tinyllm" "$B/bin/"
strip "$B/bin/test_moe_cuda" "$B/bin/tinyllm"
for lib in $(ldd "$B/bin/tinyllm" "$B/bin/test_moe_cuda" | awk '/=>/{print $3}' | sort -u); do
  case "$(basename "$lib")" in
    libpcre2*|libutf8proc*|libcpp-httplib*|libbrotli*) cp -L "$lib" "$B/bin/lib/" ;;
  esac
done
du -sh "$B/bin"
ls -la "$B/bin" "$B/bin/lib"
