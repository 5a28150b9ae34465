// Tuning variants of the skinny GEMM, exposed for bench/cuda only.
#pragma once

#include <vector>

#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

struct GemvVariant {
  const char* name;
  void (*run)(void* out_bf16, const bf16* x, const bf16* w, int T, int N, int K, cudaStream_t s);
};
const std::vector<GemvVariant>& gemv_variants();

}  // namespace tllm::cuda
