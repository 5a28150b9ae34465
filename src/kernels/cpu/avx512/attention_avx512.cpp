// avx512 variant of the attention work item (simd_attention.inc).
// GCC 12 flags _mm512_undefined_*() inside its own intrinsics at -O3 (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx512 {
namespace {
#include "kernels/cpu/avx512/vec_avx512.h"
}  // namespace
#include "kernels/cpu/simd_attention.inc"
}  // namespace tllm::cpu::avx512
