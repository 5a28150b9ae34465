// What every CUDA micro-benchmark measures with: the timer (median time in us of one call of
// fn, after `warmup` untimed calls, timed in `reps` batches of `inner` calls between two
// events on stream s; fn gets a running call index, to rotate inputs or layers) and the
// bandwidth ceiling (a 1 GiB device-to-device copy).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
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

}  // namespace tllm::bench
