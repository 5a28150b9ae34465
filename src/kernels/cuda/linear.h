// cuBLASLt GEMM for linear(): out[T, N] = x[T, K] @ W[N, K]^T (+ bias), bf16 operands,
// f32 compute, bf16 or f32 output, bias fused through the epilogue when cuBLASLt offers it.
// Plans (descriptors + heuristic algo) are cached per shape, dtype and alignment.
//
// Autotuning (on unless TLLM_GEMM_TUNE=0): cuBLASLt's first heuristic is not always its
// fastest algorithm; at the 7B down projection of a 4,096-token prefill (m 3584, n 4096,
// k 18944) it ran at 81% of the GEMM peak while gate|up ran at 99% (H200, run 21). The first
// call of a (token bucket, N, K, dtype, alignment) with T >= kTuneMinTokens, outside graph
// capture, times the heuristic's candidates on the call's own operands and keeps the fastest
// when it beats the first choice by more than kTuneMargin; later calls of the bucket reuse
// that algorithm (cublasLtMatmulAlgoCheck) without timing. Token buckets are powers of two,
// so a server sees at most ~6 tunings per projection shape over its lifetime. Measured (runs
// 25-32): down 848 -> 754 us, o_proj 154 -> 137 us at 4,096 tokens on most cards, the other
// 7B shapes keep the first choice; the 7B prefill of 4,096 tokens +0.7% on average, which
// algorithm wins differs between cards (docs/cuda-notes.md, session 5).
//
// Workspace: GEMMs of at least TLLM_GEMM_NO_WORKSPACE_MIN_T tokens (1,024 by default; a
// power of two, so that a tuning bucket holds one choice; 0: never) ask for algorithms
// without one; smaller ones keep the 32 MB workspace (split-K and the like). With it,
// cuBLASLt's choices for a 7B prefill are dynamically scheduled kernels, each behind a 4-byte
// memset (1 us plus ~1.5 us of gap on each side, 112 per 4,096-token prefill); without one,
// statically scheduled kernels and no memsets: H100, pp4096, 7B +1.2-1.4%, Qwen3-8B +0.6%,
// Llama-3.1-8B +1.5%, 1.5B and 7B in 1,024-token chunks level (runs 300-303,
// docs/cuda-notes.md sessions 58-59).
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
  explicit LtMatmul(bool autotune = true);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  // With leave_bias, a bias that would take a kernel of its own after the GEMM is not added
  // (the caller's next kernel adds it: qk_norm_rope_kv_write's QkNormRopeParams::bias, with
  // add_bias's arithmetic); returns whether the bias was left out. The fallback GEMM (no
  // cuBLASLt algorithm) adds it in its f32 accumulator and returns false.
  bool run(void* out, DType out_dtype, const bf16* x, const bf16* w, const void* bias, DType bias_dtype,
           int T, int N, int K, cudaStream_t stream, bool leave_bias = false);

 private:
  static constexpr int kMaxCandidates = 16;  // heuristic results kept per plan
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    cublasLtMatmulAlgo_t candidates[kMaxCandidates]{};  // heuristic order; [0] is algo before tuning
    int n_candidates = 0;
    size_t workspace = 0;  // bytes its algorithms may use: workspace_bytes_ or 0
    bool fused_bias = false;
    bool ok = false;
    bool tuned = false;
  };
  using Key = std::tuple<int, int, int, int, int, int>;  // T, N, K, out dtype, bias kind, alignment
  Plan& plan(const Key& key, int T, int N, int K, DType out_dtype, int bias_kind, int align);
  static void destroy(Plan& p);
  // Picks p.algo for the bucket of key (see the header comment); runs the GEMM several times.
  void tune(Plan& p, const Key& key, void* out, const bf16* x, const bf16* w, cudaStream_t stream);
  cublasStatus_t launch(const Plan& p, const cublasLtMatmulAlgo_t& algo, void* out, const bf16* x, const bf16* w,
                        cudaStream_t stream);
  void matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, void* out, const bf16* x, const bf16* w,
              cudaStream_t stream);  // launch, throwing on a cuBLASLt error

  static constexpr int kTuneMinTokens = 256;
  // Between the gains of the best alternatives measured at the 7B shapes (runs 25-31):
  // gate_up 0-3.1%, o_proj 5.4-6.2%, down 8.0-9.0%; so each choice is the same in every
  // process there (at 5%, o_proj's flipped between processes in run 28).
  static constexpr double kTuneMargin = 0.04;

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 32u << 20;
  int no_workspace_min_t_ = 1024;  // TLLM_GEMM_NO_WORKSPACE_MIN_T; 0: never
  std::mutex mu_;
  std::map<Key, Plan> plans_;
  bool autotune_ = true;
  std::map<Key, cublasLtMatmulAlgo_t> tuned_;  // key with T replaced by its power-of-two bucket
};

}  // namespace tllm::cuda
