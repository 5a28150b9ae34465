// Row-wise log-softmax of f32 logits [R, V]: one block per row, max and sum of exp in f32.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

__global__ void log_softmax_kernel(float* __restrict__ out, const float* __restrict__ logits, int V) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const float* x = logits + r * V;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
  mx = block_max(mx, scratch);
  float s = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) s += __expf(x[i] - mx);
  const float lse = mx + logf(block_sum(s, scratch));
  for (int i = threadIdx.x; i < V; i += blockDim.x) out[r * V + i] = x[i] - lse;
}

}  // namespace

void log_softmax(float* out, const float* logits, int R, int V, cudaStream_t stream) {
  if (R == 0) return;
  log_softmax_kernel<<<R, 1024, 0, stream>>>(out, logits, V);
  CUDA_CHECK_LAUNCH("log_softmax");
}

}  // namespace tllm::cuda
