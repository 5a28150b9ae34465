// avx2 variant of the attention work item (simd_attention.inc).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::avx2 {
namespace {
#include "kernels/cpu/avx2/vec_avx2.h"
}  // namespace
#include "kernels/cpu/simd_attention.inc"
}  // namespace tllm::cpu::avx2
