// avx512 variant of linear (simd_linear.inc).
// GCC 12 flags _mm512_undefined_*() inside its own intrinsics at -O3 (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx512 {
namespace {
#include "kernels/cpu/avx512/vec_avx512.h"
}  // namespace
#include "kernels/cpu/simd_linear.inc"
}  // namespace tllm::cpu::avx512
