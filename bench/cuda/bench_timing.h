// The timer every CUDA micro-benchmark uses: median time (us) of one call of fn, after
// `warmup` untimed calls, timed in `reps` batches of `inner` calls between two events on
// stream s. fn gets a running call index (to rotate inputs or layers).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

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

}  // namespace tllm::bench
