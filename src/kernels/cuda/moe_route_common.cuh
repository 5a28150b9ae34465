// Routing arithmetic shared by the MoE router kernels (moe_route.cu) and the decoder-stack
// kernel (decoder_stack.cu): both must route the same probabilities to the same experts,
// bit for bit.
#pragma once

#include "kernels/cuda/cuda_common.cuh"

namespace tllm::cuda {

// Softmax in f32 of one token's E values, in place (a warp; max and sum as lane-strided
// partials, then over the warp). Every router path calls it: they all route the same
// probabilities, bit for bit.
__device__ __forceinline__ void softmax_warp(float* v, int E) {
  const int lane = threadIdx.x & 31;
  float mx = -INFINITY;
  for (int e = lane; e < E; e += 32) mx = fmaxf(mx, v[e]);
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int e = lane; e < E; e += 32) {
    const float x = expf(v[e] - mx);
    v[e] = x;
    sum += x;
  }
  sum = warp_sum(sum);
  for (int e = lane; e < E; e += 32) v[e] = v[e] / sum;
}

// A key whose unsigned order is the routing order of the values (moe_route.cu's
// route_better): NaN above everything, -0 equal to +0; equal keys fall back to the lower
// expert id.
__device__ __forceinline__ unsigned route_key(float v) {
  if (isnan(v)) return 0xffffffffu;
  const unsigned u = __float_as_uint(v + 0.0f);  // -0 + 0 = +0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

}  // namespace tllm::cuda
