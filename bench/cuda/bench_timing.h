// What every CUDA micro-benchmark measures with: the timer (median time in us of one call of
// fn, after `warmup` untimed calls, timed in `reps` batches of `inner` calls between two
// events on stream s; fn gets a running call index, to rotate inputs or layers) and the
// bandwidth ceiling (a 1 GiB device-to-device copy), the bf16 GEMM ceiling (cuBLASLt 8192^3),
// and random bf16 inputs filled on the backend's stream.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace tllm::bench {

inline double time_us(cudaStream_t s, const std::function<void(int)>& fn, int inner, int reps, int warmup) {
  for (int i = 0; i < warmup; ++i) fn(i);
  CUDA_CHECK(cudaStreamSynchronize(s));
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> v;
  int it = 0;
  for (int r = 0; r < reps; ++r) {
    CUDA_CHECK(cudaEventRecord(a, s));
    for (int i = 0; i < inner; ++i) fn(it++);
    CUDA_CHECK(cudaEventRecord(b, s));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    v.push_back(ms * 1000.0 / inner);
  }
  CUDA_CHECK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A 1 GiB device-to-device copy on the backend's stream: its time (us) and the bytes read
// plus written per second (GB/s).
struct CopyCeiling {
  double us, gbps;
};
inline CopyCeiling copy_ceiling(cuda::CudaBackend& be, int warmup) {
  const size_t bytes = size_t{1} << 30;
  cudaStream_t s = be.stream();
  Tensor a = be.empty({int64_t(bytes)}, DType::U8), b = be.empty({int64_t(bytes)}, DType::U8);
  CUDA_CHECK(cudaMemsetAsync(a.raw(), 1, bytes, s));
  const double us = time_us(
      s, [&](int) { CUDA_CHECK(cudaMemcpyAsync(b.raw(), a.raw(), bytes, cudaMemcpyDeviceToDevice, s)); }, 5, 9,
      warmup);
  return {us, 2.0 * bytes / us / 1e3};
}

// Uniform values in [-scale / 2, scale / 2) from a hash of (index, seed).
static __global__ void fill_uniform_bf16(cuda::bf16* p, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint64_t z = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = __float2bfloat16((static_cast<float>(z >> 40) * (1.0f / 16777216.0f) - 0.5f) * scale);
  }
}

// Filled on the backend's stream: it is a non-blocking stream, so a fill on the legacy
// default stream would not be ordered before the kernels under test (bench_attention_cuda's
// first H200 run read a cached allocation's stale contents that way).
inline Tensor rand_bf16(cuda::CudaBackend& be, Shape s, uint64_t seed, float scale) {
  Tensor t = be.empty(s, DType::BF16);
  fill_uniform_bf16<<<1024, 256, 0, be.stream()>>>(t.data<cuda::bf16>(), t.numel(), seed, scale);
  CUDA_CHECK_LAUNCH("fill");
  return t;
}

inline std::vector<float> to_host_f32(cuda::CudaBackend& be, const Tensor& t) {
  Tensor h = be.download(t);
  std::vector<float> f(static_cast<size_t>(h.numel()));
  const cuda::bf16* p = h.data<cuda::bf16>();
  for (size_t i = 0; i < f.size(); ++i) f[i] = __bfloat162float(p[i]);
  return f;
}

// cuBLASLt's bf16 rate on a 8192^3 GEMM (TFLOP/s), printed as the CEILING line.
inline double gemm_peak_tflops(cuda::CudaBackend& be) {
  const int M = 8192;
  Tensor x = rand_bf16(be, {M, M}, 1, 1.0f), y = be.empty({M, M}, DType::BF16);
  LinearWeight w;
  w.weight = rand_bf16(be, {M, M}, 2, 0.05f);
  const double us = time_us(be.stream(), [&](int) { be.linear_cublas(y, x, w); }, 3, 9, 2);
  const double peak = 2.0 * M * double(M) * M / us / 1e6;
  std::printf("CEILING cuBLASLt bf16 GEMM 8192^3: %.1f us, %.1f TFLOP/s\n", us, peak);
  return peak;
}

}  // namespace tllm::bench
