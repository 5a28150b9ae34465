// Shared pieces of the CUDA kernels: error checks, bf16 vector helpers, warp/block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/error.h"

#define CUDA_CHECK(expr)                                                                  \
  do {                                                                                    \
    cudaError_t err_ = (expr);                                                            \
    if (err_ != cudaSuccess) [[unlikely]]                                                 \
      TLLM_THROW("CUDA error ", cudaGetErrorName(err_), " (", cudaGetErrorString(err_),    \
                 ") in ", #expr, " at ", __FILE__, ":", __LINE__);                        \
  } while (0)

// After every launch: catches bad launch configurations at once. Errors inside a kernel
// surface at the next synchronising call (also checked).
#define CUDA_CHECK_LAUNCH(name)                                                           \
  do {                                                                                    \
    cudaError_t err_ = cudaGetLastError();                                                \
    if (err_ != cudaSuccess) [[unlikely]]                                                 \
      TLLM_THROW("CUDA launch of ", name, " failed: ", cudaGetErrorName(err_), " (",       \
                 cudaGetErrorString(err_), ") at ", __FILE__, ":", __LINE__);             \
  } while (0)

namespace tllm::cuda {

inline int ceil_div(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// 16 bytes = 8 bf16, the unit of every vectorised load.
struct alignas(16) Bf16x8 {
  __nv_bfloat162 h[4];
};

__device__ __forceinline__ void bf16x8_to_f32(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

__device__ __forceinline__ uint4 f32_to_bf16x8(const float (&f)[8]) {
  return make_uint4(pack_bf16x2(f[0], f[1]), pack_bf16x2(f[2], f[3]), pack_bf16x2(f[4], f[5]),
                    pack_bf16x2(f[6], f[7]));
}

__device__ __forceinline__ float round_bf16(float x) {
  return __bfloat162float(__float2bfloat16_rn(x));
}

// SiLU in f32, the formula of every kernel that applies it (silu_mul.cu, the GEMV epilogues,
// the decoder stack), so fused and unfused paths give the same bits.
__device__ __forceinline__ float silu_f32(float g) { return g / (1.0f + __expf(-g)); }

// One RoPE pair: (x1, x2) -> (x1 c - x2 s, x2 c + x1 s), with the multiply-adds spelled out
// so that every kernel that rotates (qk_norm_rope_kv_write, the q|k|v GEMV's epilogue) gives
// the same bits whatever the compiler would contract.
__device__ __forceinline__ void rope_rotate(float x1, float x2, float c, float s, float& y1, float& y2) {
  y1 = __fmaf_rn(x1, c, -__fmul_rn(x2, s));
  y2 = __fmaf_rn(x2, c, __fmul_rn(x1, s));
}

// Scalar loads/stores of the element types the ops accept.
template <typename T> __device__ __forceinline__ float to_f32(T x);
template <> __device__ __forceinline__ float to_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <> __device__ __forceinline__ float to_f32<__half>(__half x) { return __half2float(x); }

template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// bar.sync on named barrier `id` (1-15; 0 is __syncthreads') for `count` threads (a multiple
// of 32): a barrier for a subset of the block's warps.
__device__ __forceinline__ void named_bar_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(count) : "memory");
}

// Block-wide sum; every thread gets the result. `scratch` holds >= 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  float r = lane < nw ? scratch[lane] : 0.0f;
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int nw = (blockDim.x + 31) >> 5;
  float r = lane < nw ? scratch[lane] : -INFINITY;
  return warp_max(r);
}

// Programmatic dependent launch (sm_90+; no-ops elsewhere). A kernel calls
// pdl_launch_dependents() early so that the next kernel, when launched with the PDL
// attribute, may start its independent prologue (the skinny GEMM's weight loads) while this
// one finishes; that next kernel calls pdl_wait() before it reads what we wrote.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// True when the current device supports PDL launches (compute capability >= 9.0).
bool pdl_supported();

// Lets `kernel` launch on the current device with `dynamic_bytes` of dynamic shared memory.
// A launch whose dynamic memory exceeds the function's limit fails with an invalid argument;
// the limit starts at 48 KB less the kernel's static shared memory, which the driver knows
// (cudaFuncGetAttributes) and a launcher's own count can miss (session 57: quant_gemv and
// moe_quant each skipped the opt-in just under 48 KB). Raises the limit where needed; the
// limits are remembered per device and kernel, so a launch costs one lookup.
void allow_dynamic_smem(const void* kernel, size_t dynamic_bytes);
template <typename... KArgs>
void allow_dynamic_smem(void (*kernel)(KArgs...), size_t dynamic_bytes) {
  allow_dynamic_smem(reinterpret_cast<const void*>(kernel), dynamic_bytes);
}

// Launches kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute where the
// device supports it and, when cluster > 0, in thread block clusters of `cluster` blocks
// along x (sm_90+; grid.x a multiple of it). The kernel must call pdl_wait() in every thread
// before it reads what an earlier kernel wrote (and before it exits, so that completion
// stays ordered).
template <typename... KArgs, typename... Args>
void launch_pdl_cluster(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        unsigned cluster, Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (pdl_supported()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  if (cluster > 0) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster;
    attr[n].val.clusterDim.y = 1;
    attr[n].val.clusterDim.z = 1;
    ++n;
  }
  cfg.attrs = attr;
  cfg.numAttrs = n;
  CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}
template <typename... KArgs, typename... Args>
void launch_pdl(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  launch_pdl_cluster(kernel, grid, block, smem, stream, 0u, std::forward<Args>(args)...);
}

// 16-byte weight load, streamed past L1, with the L2::256B prefetch hint: a warp's load
// touches 64 B of each of 16 rows, and the hint lets DRAM serve whole 256 B runs that the
// next steps then find in L2 (measured for gemv.cu in docs/cuda-notes.md).
__device__ __forceinline__ uint4 ld_weight_u4(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

// cp.async (sm_80+): 16 bytes from global to shared memory, past L1; the 3-operand form reads
// src_bytes (0-16) and zero-fills the rest (src_bytes 0: no read, a zeroed destination).
// commit / wait_group N: this thread's copies of all but the last N groups have landed. The
// "memory" clobbers keep the compiler from moving shared-memory accesses across them.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(a), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(a), "l"(gmem), "r"(src_bytes) : "memory");
}
// 8 bytes (cp.async.cg takes only 16: this one goes through L1, .ca).
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(a), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// mbarriers in shared memory (sm_90 for try_wait; `bar` is a shared-memory address):
// arrivals of `count` threads complete a phase; waiting takes the parity of the phase.
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  }
#else
  __trap();
#endif
}
// The arrival that also announces `bytes` of asynchronous copies completing on `bar`.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
#else
  __trap();
#endif
}
// Bulk copy (the TMA unit, sm_90) of `bytes` (a multiple of 16, both addresses 16-byte
// aligned) from global to shared memory; completes on mbarrier `bar` as transaction bytes.
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#else
  __trap();
#endif
}

// Streaming 16-byte load that skips L1 (weights are read once).
__device__ __forceinline__ uint4 ld_stream_u4(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

}  // namespace tllm::cuda
