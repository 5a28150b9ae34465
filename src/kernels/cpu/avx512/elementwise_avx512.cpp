// avx512 variants of the row kernels (simd_elementwise.inc).
// GCC 12 flags _mm512_undefined_*() inside its own intrinsics at -O3 (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx512 {
namespace {
#include "kernels/cpu/avx512/vec_avx512.h"
}  // namespace
#include "kernels/cpu/simd_elementwise.inc"
}  // namespace tllm::cpu::avx512
