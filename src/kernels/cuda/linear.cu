#include "kernels/cuda/linear.h"

#include <limits>

#include "core/env.h"
#include "core/logging.h"
#include "kernels/cuda/cuda_common.cuh"

#define CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                      \
    cublasStatus_t st_ = (expr);                                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                          \
      TLLM_THROW("cuBLASLt error ", static_cast<int>(st_), " (", cublasLtGetStatusString(st_), \
                 ") in ", #expr, " at ", __FILE__, ":", __LINE__);                          \
  } while (0)

namespace tllm::cuda {
namespace {

template <typename OutT, typename BiasT>
__global__ void add_bias_kernel(OutT* __restrict__ out, const BiasT* __restrict__ bias, int N) {
  const int64_t t = blockIdx.y;
  for (int n = blockIdx.x * blockDim.x + threadIdx.x; n < N; n += gridDim.x * blockDim.x)
    out[t * N + n] = from_f32<OutT>(to_f32<OutT>(out[t * N + n]) + to_f32<BiasT>(bias[n]));
}

template <typename OutT>
void add_bias_out(void* out, const void* bias, DType bd, int T, int N, cudaStream_t s) {
  const dim3 grid(std::min(ceil_div(N, 256), 64), T);
  if (bd == DType::F32)
    add_bias_kernel<OutT, float><<<grid, 256, 0, s>>>(static_cast<OutT*>(out), static_cast<const float*>(bias), N);
  else if (bd == DType::BF16)
    add_bias_kernel<OutT, bf16><<<grid, 256, 0, s>>>(static_cast<OutT*>(out), static_cast<const bf16*>(bias), N);
  else
    TLLM_THROW("linear: bias dtype ", dtype_name(bd), " unsupported (f32, bf16)");
  CUDA_CHECK_LAUNCH("add_bias");
}

// Plain tiled GEMM for shapes cuBLASLt has no algorithm for (leading dimensions that are
// not a multiple of 8 bytes, e.g. odd N). Never on a real model's path; correct for any shape.
template <typename OutT>
__global__ void gemm_simt_kernel(OutT* __restrict__ out, const bf16* __restrict__ x, const bf16* __restrict__ w,
                                 const void* __restrict__ bias, int bias_kind, int T, int N, int K) {
  __shared__ float xs[16][33], ws[16][33];
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int n = blockIdx.x * 16 + tx, t = blockIdx.y * 16 + ty;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += 32) {
    for (int i = threadIdx.x; i < 16 * 32; i += 256) {
      const int r = i / 32, c = i % 32, k = k0 + c;
      const int tt = blockIdx.y * 16 + r, nn = blockIdx.x * 16 + r;
      xs[r][c] = (tt < T && k < K) ? __bfloat162float(x[static_cast<int64_t>(tt) * K + k]) : 0.0f;
      ws[r][c] = (nn < N && k < K) ? __bfloat162float(w[static_cast<int64_t>(nn) * K + k]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < 32; ++c) acc += xs[ty][c] * ws[tx][c];
    __syncthreads();
  }
  if (t < T && n < N) {
    if (bias_kind == 1) acc += static_cast<const float*>(bias)[n];
    else if (bias_kind == 2) acc += __bfloat162float(static_cast<const bf16*>(bias)[n]);
    out[static_cast<int64_t>(t) * N + n] = from_f32<OutT>(acc);
  }
}

int pointer_alignment(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 2 && a % al != 0) al >>= 1;
  return al;
}

}  // namespace

void add_bias(void* out, DType od, const void* bias, DType bd, int T, int N, cudaStream_t stream) {
  if (T == 0 || N == 0) return;
  TLLM_CHECK(T <= 65535, "add_bias: at most 65535 rows per call, got ", T);
  if (od == DType::BF16) add_bias_out<bf16>(out, bias, bd, T, N, stream);
  else if (od == DType::F32) add_bias_out<float>(out, bias, bd, T, N, stream);
  else TLLM_THROW("linear: output dtype ", dtype_name(od), " unsupported (bf16, f32)");
}

LtMatmul::LtMatmul(bool autotune) : autotune_(autotune) {
  no_workspace_min_t_ = env_int("TLLM_GEMM_NO_WORKSPACE_MIN_T", 1024);
  TLLM_CHECK_ARG(no_workspace_min_t_ >= 0 && (no_workspace_min_t_ & (no_workspace_min_t_ - 1)) == 0,
                 "environment variable TLLM_GEMM_NO_WORKSPACE_MIN_T=", no_workspace_min_t_,
                 ": expected 0 (off) or a power of two (the autotuner shares choices within power-of-two token buckets)");
  CUBLAS_CHECK(cublasLtCreate(&handle_));
  CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

LtMatmul::~LtMatmul() {
  for (auto& [k, p] : plans_) destroy(p);
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

void LtMatmul::destroy(Plan& p) {
  if (p.op) cublasLtMatmulDescDestroy(p.op);
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  p = Plan{};
}

// Column-major view: D (N x T, ld N) = op(A) (N x K) * B (K x T), where A is W stored as
// K x N (ld K) with op T, and B is x stored as K x T (ld K). Row-major out[T, N] == D.
LtMatmul::Plan& LtMatmul::plan(const Key& key, int T, int N, int K, DType od, int bias_kind, int align) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;
  Plan p;
  const cudaDataType_t out_t = od == DType::F32 ? CUDA_R_32F : CUDA_R_16BF;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, K, N, K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, K, T, K));
  CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, out_t, N, T, N));
  p.workspace = no_workspace_min_t_ > 0 && T >= no_workspace_min_t_ ? 0 : workspace_bytes_;
  cublasLtMatmulPreference_t pref;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &p.workspace, sizeof(p.workspace)));
  const uint32_t al = static_cast<uint32_t>(align);
  for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                    CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &al, sizeof(al)));

  auto heuristic = [&]() {
    cublasLtMatmulHeuristicResult_t res[kMaxCandidates]{};
    int n = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref, kMaxCandidates, res, &n);
    if (st != CUBLAS_STATUS_SUCCESS) return false;
    for (int i = 0; i < n; ++i)
      if (res[i].state == CUBLAS_STATUS_SUCCESS) p.candidates[p.n_candidates++] = res[i].algo;
    if (p.n_candidates == 0) return false;
    p.algo = p.candidates[0];
    return true;
  };
  // Bias is added by a separate kernel, not the BIAS epilogue: on H200 (cuBLASLt 13.0) the
  // epilogue's plan ran a [4096 x 4608 x 3584] product at 7 TFLOP/s against 95+ without it
  // (measured 2026-11-28 through TLLM_PROFILE, docs/performance.md).
  (void)bias_kind;
  p.ok = p.fused_bias || heuristic();
  cublasLtMatmulPreferenceDestroy(pref);
  if (!p.ok) destroy(p);  // no algorithm (e.g. 2-byte aligned rows): run() uses the plain kernel
  return plans_.emplace(key, p).first->second;
}

bool LtMatmul::run(void* out, DType od, const bf16* x, const bf16* w, const void* bias, DType bd, int T, int N,
                   int K, cudaStream_t stream, bool leave_bias) {
  if (T == 0 || N == 0) return false;
  TLLM_CHECK(od == DType::BF16 || od == DType::F32, "linear: output dtype ", dtype_name(od),
             " unsupported (bf16, f32)");
  const int bias_kind = bias ? (bd == DType::F32 ? 1 : bd == DType::BF16 ? 2 : -1) : 0;
  TLLM_CHECK(bias_kind >= 0, "linear: bias dtype ", dtype_name(bd), " unsupported (f32, bf16)");
  int align = std::min({pointer_alignment(out), pointer_alignment(x), pointer_alignment(w)});
  // Leading dimensions also bound the alignment every column start can have.
  const int elt_out = od == DType::F32 ? 4 : 2;
  align = std::min(align, pointer_alignment(reinterpret_cast<const void*>(static_cast<uintptr_t>(K) * 2 | 256)));
  align = std::min(align, pointer_alignment(reinterpret_cast<const void*>(static_cast<uintptr_t>(N) * elt_out | 256)));
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{T, N, K, static_cast<int>(od), bias_kind, align};
  Plan& p = plan(key, T, N, K, od, bias_kind, align);
  if (!p.ok) {
    TLLM_CHECK(T <= 65535 * 16, "linear: T=", T, " too large for the fallback GEMM");
    const dim3 grid(ceil_div(N, 16), ceil_div(T, 16));
    if (od == DType::F32)
      gemm_simt_kernel<float><<<grid, 256, 0, stream>>>(static_cast<float*>(out), x, w, bias, bias_kind, T, N, K);
    else
      gemm_simt_kernel<bf16><<<grid, 256, 0, stream>>>(static_cast<bf16*>(out), x, w, bias, bias_kind, T, N, K);
    CUDA_CHECK_LAUNCH("gemm_simt");
    return false;
  }
  if (p.fused_bias)
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  if (autotune_ && !p.tuned && T >= kTuneMinTokens && p.n_candidates > 1) tune(p, key, out, x, w, stream);
  matmul(p, p.algo, out, x, w, stream);
  if (!bias || p.fused_bias) return false;
  if (leave_bias) return true;
  add_bias(out, od, bias, bd, T, N, stream);
  return false;
}

cublasStatus_t LtMatmul::launch(const Plan& p, const cublasLtMatmulAlgo_t& algo, void* out, const bf16* x,
                                const bf16* w, cudaStream_t stream) {
  const float alpha = 1.0f, beta = 0.0f;
  return cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, out, p.c, out, p.c, &algo, workspace_,
                        p.workspace, stream);
}

void LtMatmul::matmul(const Plan& p, const cublasLtMatmulAlgo_t& algo, void* out, const bf16* x, const bf16* w,
                      cudaStream_t stream) {
  CUBLAS_CHECK(launch(p, algo, out, x, w, stream));
}

void LtMatmul::tune(Plan& p, const Key& key, void* out, const bf16* x, const bf16* w, cudaStream_t stream) {
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  if (cap != cudaStreamCaptureStatusNone) return;  // no timing inside a graph; tuned on a later call
  p.tuned = true;
  Key bucket = key;
  int& bt = std::get<0>(bucket);
  while (bt & (bt - 1)) bt &= bt - 1;  // highest power of two <= T
  if (auto it = tuned_.find(bucket); it != tuned_.end()) {
    cublasLtMatmulHeuristicResult_t chk{};
    if (cublasLtMatmulAlgoCheck(handle_, p.op, p.a, p.b, p.c, p.c, &it->second, &chk) == CUBLAS_STATUS_SUCCESS &&
        chk.workspaceSize <= p.workspace)
      p.algo = it->second;
    return;
  }
  // Time every candidate on the call's operands: one warm-up run, then kReps runs between two
  // events; the output is rewritten by the real call that follows. A candidate cuBLASLt
  // refuses to launch is skipped, not an error.
  constexpr int kReps = 3;
  struct Events {
    cudaEvent_t e[2]{};
    Events() {
      for (auto& x : e) CUDA_CHECK(cudaEventCreate(&x));
    }
    ~Events() {
      for (auto& x : e) cudaEventDestroy(x);
    }
  } ev;
  float ms[kMaxCandidates];
  for (int i = 0; i < p.n_candidates; ++i) {
    ms[i] = std::numeric_limits<float>::infinity();
    if (launch(p, p.candidates[i], out, x, w, stream) != CUBLAS_STATUS_SUCCESS) continue;
    CUDA_CHECK(cudaEventRecord(ev.e[0], stream));
    bool ok = true;
    for (int r = 0; r < kReps && ok; ++r) ok = launch(p, p.candidates[i], out, x, w, stream) == CUBLAS_STATUS_SUCCESS;
    CUDA_CHECK(cudaEventRecord(ev.e[1], stream));
    CUDA_CHECK(cudaEventSynchronize(ev.e[1]));
    if (ok) CUDA_CHECK(cudaEventElapsedTime(&ms[i], ev.e[0], ev.e[1]));
  }
  int best = 0;
  for (int i = 1; i < p.n_candidates; ++i)
    if (ms[i] < ms[best]) best = i;
  if (best != 0 && ms[best] > ms[0] * (1.0 - kTuneMargin)) best = 0;  // not clearly faster: keep the first
  p.algo = p.candidates[best];
  tuned_.emplace(bucket, p.algo);
  TLLM_LOG(Debug, "gemm tune T=", std::get<0>(key), " N=", std::get<1>(key), " K=", std::get<2>(key), ": candidate ",
           best, " of ", p.n_candidates, ", ", 1e3 * ms[best] / kReps, " us (first choice ", 1e3 * ms[0] / kReps, " us)");
}

}  // namespace tllm::cuda
