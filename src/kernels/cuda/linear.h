// cuBLASLt GEMM for linear(): out[T, N] = x[T, K] @ W[N, K]^T (+ bias), bf16 operands,
// f32 compute, bf16 or f32 output, bias fused through the epilogue when cuBLASLt offers it.
// Plans (descriptors + heuristic algo) are cached per shape, dtype and alignment.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

class LtMatmul {
 public:
  LtMatmul();
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  void run(void* out, DType out_dtype, const bf16* x, const bf16* w, const void* bias, DType bias_dtype,
           int T, int N, int K, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool fused_bias = false;
    bool ok = false;
  };
  using Key = std::tuple<int, int, int, int, int, int>;  // T, N, K, out dtype, bias kind, alignment
  Plan& plan(const Key& key, int T, int N, int K, DType out_dtype, int bias_kind, int align);
  static void destroy(Plan& p);

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;
  std::mutex mu_;
  std::map<Key, Plan> plans_;
};

}  // namespace tllm::cuda
