// out[T, I] = silu(gate) * up with gate_up rows [gate(I) | up(I)]; f32 math, one rounding.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

// grid (ceil(I/8 / threads), T): 16-byte vectors of gate and up.
__global__ void silu_mul_vec_kernel(uint4* __restrict__ out, const uint4* __restrict__ gate_up,
                                    int nvec) {
  pdl_wait();  // launched with PDL
  pdl_launch_dependents();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t t = blockIdx.y;
  if (i >= nvec) return;
  float g[8], u[8], o[8];
  bf16x8_to_f32(gate_up[t * 2 * nvec + i], g);
  bf16x8_to_f32(gate_up[t * 2 * nvec + nvec + i], u);
#pragma unroll
  for (int e = 0; e < 8; ++e) o[e] = silu_f32(g[e]) * u[e];
  out[t * nvec + i] = f32_to_bf16x8(o);
}

__global__ void silu_mul_scalar_kernel(bf16* __restrict__ out, const bf16* __restrict__ gate_up, int I) {
  pdl_wait();  // launched with PDL
  pdl_launch_dependents();
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t t = blockIdx.y;
  if (i >= I) return;
  const float g = __bfloat162float(gate_up[t * 2 * I + i]);
  const float u = __bfloat162float(gate_up[t * 2 * I + I + i]);
  out[t * I + i] = __float2bfloat16_rn(silu_f32(g) * u);
}

}  // namespace

void silu_mul(bf16* out, const bf16* gate_up, int T, int I, cudaStream_t stream) {
  if (T == 0 || I == 0) return;
  TLLM_CHECK(T <= 65535 * 64, "silu_mul: too many rows ", T);
  if (I % 8 == 0 && (reinterpret_cast<uintptr_t>(out) | reinterpret_cast<uintptr_t>(gate_up)) % 16 == 0) {
    const int nvec = I / 8;
    const int threads = std::min(256, (nvec + 31) / 32 * 32);
    launch_pdl(silu_mul_vec_kernel, dim3(ceil_div(nvec, threads), T), dim3(threads), 0, stream,
               reinterpret_cast<uint4*>(out), reinterpret_cast<const uint4*>(gate_up), nvec);
  } else {
    launch_pdl(silu_mul_scalar_kernel, dim3(ceil_div(I, 256), T), dim3(256), 0, stream, out, gate_up, I);
  }
  CUDA_CHECK_LAUNCH("silu_mul");
}

}  // namespace tllm::cuda
