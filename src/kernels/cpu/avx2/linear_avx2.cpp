// avx2 variant of linear (simd_linear.inc).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx2 {
namespace {
#include "kernels/cpu/avx2/vec_avx2.h"
}  // namespace
#include "kernels/cpu/simd_linear.inc"
}  // namespace tllm::cpu::avx2
