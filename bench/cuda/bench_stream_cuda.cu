// bench_stream_cuda: how fast a read-only stream of S MB reaches the SMs under the access
// patterns of the decode GEMVs, without their arithmetic. The question it answers (session 9,
// docs/cuda-notes.md): the persistent decoder-stack kernel streams its 20-60 MB phases at
// ~2-3 TB/s, the op-by-op GEMV the same on matrices of that size, and only ~270 MB matrices
// reach the copy rate; a deeper ring of loads in flight did not help. Is that the DRAM/L2
// system under this pattern, the one-block-per-SM grid, or the size itself?
//
// Patterns (all read 16-byte vectors with ld.global.nc.L1::no_allocate.L2::256B, as the
// GEMVs do, and fold them into an XOR so that no load is dead):
//   stack-U     one block of 16 warps per SM; block b owns a contiguous 1/G of the bytes, its
//               warps contiguous runs of 2 KB units, U to 2U units in flight per warp
//               (registers, the next group issued before the current one is folded):
//               gemv_tile's shape at U = 2
//   spread-U    same grid, but unit u goes to warp u mod (16 G): the whole grid walks one
//               window of the matrix at a time
//   blocks-W    one block of W warps per 16 KB chunk, as many blocks as chunks (the
//               op-by-op GEMV's grid: many small blocks, several resident per SM)
//   ring-S-C    the decoder stack's weight-ring build: one block per SM of 16 computing warps
//               and a producer warp that bulk-copies (TMA) the block's contiguous share into a
//               shared-memory ring of S stages of 32 KB, C bytes per copy (2 KB: one copy per
//               unit, as decoder_stack.cu; 32 KB: one per stage); each warp folds its 2 KB
//               unit of a stage from shared memory and releases it (sm_90 only)
// Sizes 8 to 512 MB, each over fresh buffers (no L2 reuse between calls: the buffers rotate
// through 1.5 GB). Printed: us, GB/s read, % of the read + write rate of a 1 GiB
// device-to-device copy (a read-only stream reaches that rate: HBM serves reads and writes
// from one pool of bandwidth).
// Answer (H200, run 74): the pattern does not matter (all within ~5% at every size); the
// size does: ~3.3 us of fixed cost per launch plus ~4.1 TB/s (8 MB 5.5 us = 36% of the copy
// rate, 64 MB 19 us = 84%, 512 MB 125-131 us = 97-102%). The ring patterns (run 80): level
// with the others up to 64 MB and faster above (256-512 MB: 100-104% of the copy rate against
// 94-97% for stack-2), whatever the copy size (2 to 32 KB).
#include <cstdio>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_common.cuh"

namespace {

using tllm::cuda::ld_weight_u4;

constexpr int kUnitBytes = 2048;           // a warp's unit: 32 lanes x 4 x 16 B
constexpr int kVecs = kUnitBytes / 512;    // 16-byte loads per lane per unit

__device__ __forceinline__ unsigned fold(const uint4& v) { return v.x ^ v.y ^ v.z ^ v.w; }

// Units [u0, u1) of one warp (unit u at base + u * kUnitBytes), U in flight.
template <int U>
__device__ __forceinline__ unsigned stream_units(const char* base, int64_t u0, int64_t u1, int64_t stride) {
  const int lane = threadIdx.x & 31;
  unsigned acc = 0;
  uint4 a[U][kVecs], b[U][kVecs];
  auto issue = [&](int64_t u, uint4 (&r)[kVecs]) {
    const char* p = base + u * stride * kUnitBytes + 16 * lane;
#pragma unroll
    for (int v = 0; v < kVecs; ++v) r[v] = ld_weight_u4(p + 512 * v);
  };
  auto use = [&](const uint4 (&r)[kVecs]) {
#pragma unroll
    for (int v = 0; v < kVecs; ++v) acc ^= fold(r[v]);
  };
#pragma unroll
  for (int i = 0; i < U; ++i)
    if (u0 + i < u1) issue(u0 + i, a[i]);
  for (int64_t u = u0; u < u1; u += U) {
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (u + U + i < u1) issue(u + U + i, b[i]);
#pragma unroll
    for (int i = 0; i < U; ++i)
      if (u + i < u1) use(a[i]);
#pragma unroll
    for (int i = 0; i < U; ++i)
#pragma unroll
      for (int v = 0; v < kVecs; ++v) a[i][v] = b[i][v];
  }
  return acc;
}

// stack: block b, warp w of 16 take a contiguous run of the block's contiguous share.
template <int U>
__global__ void __launch_bounds__(512, 1) stack_kernel(const char* src, int64_t units, unsigned* sink) {
  const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t b0 = units * blockIdx.x / gridDim.x, b1 = units * (blockIdx.x + 1) / gridDim.x;
  const int64_t u0 = b0 + (b1 - b0) * warp / warps, u1 = b0 + (b1 - b0) * (warp + 1) / warps;
  const unsigned acc = stream_units<U>(src, u0, u1, 1);
  if (acc == 0x12345678u) sink[0] = acc;  // practically never: keeps the loads alive
}

// spread: unit u to global warp u mod (all warps), walked in steps of all warps.
template <int U>
__global__ void __launch_bounds__(512, 1) spread_kernel(const char* src, int64_t units, unsigned* sink) {
  const int64_t gw = int64_t{blockIdx.x} * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int64_t all = int64_t{gridDim.x} * (blockDim.x >> 5);
  const int64_t mine = gw < units % all ? units / all + 1 : units / all;
  // this warp's k-th unit is gw + k * all: a strided walk (stride in units)
  const unsigned acc = stream_units<U>(src + gw * kUnitBytes, 0, mine, all);
  if (acc == 0x12345678u) sink[0] = acc;
}

// blocks: one block of W warps per 16 KB chunk (8 units), each warp 8 / W units, 2 in flight.
__global__ void blocks_kernel(const char* src, int64_t units, unsigned* sink) {
  const int warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t c0 = int64_t{blockIdx.x} * 8, c1 = c0 + 8 < units ? c0 + 8 : units;
  const int64_t u0 = c0 + (c1 - c0) * warp / warps, u1 = c0 + (c1 - c0) * (warp + 1) / warps;
  const unsigned acc = stream_units<2>(src, u0, u1, 1);
  if (acc == 0x12345678u) sink[0] = acc;
}

// ring: block b's contiguous share in stages of 32 KB (16 units), copied by the producer
// warp (warp 16) in C-byte bulk copies into S stages; warp w folds unit w of each stage.
template <int S, int C>
__global__ void __launch_bounds__(544, 1) ring_kernel(const char* src, int64_t units, unsigned* sink) {
  extern __shared__ __align__(128) unsigned char ring_smem[];
  __shared__ __align__(8) unsigned long long bars[2 * S];
  constexpr int kStage = 16 * kUnitBytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const uint32_t data = static_cast<uint32_t>(__cvta_generic_to_shared(ring_smem));
  const uint32_t full = static_cast<uint32_t>(__cvta_generic_to_shared(bars)), empty = full + 8 * S;
  if (threadIdx.x == 0) {
    for (int i = 0; i < S; ++i) {
      tllm::cuda::mbar_init(full + 8 * i, 1);
      tllm::cuda::mbar_init(empty + 8 * i, 16);
    }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900  // sm_90 only (main() runs it there only)
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
  }
  __syncthreads();
  const int64_t b0 = units * blockIdx.x / gridDim.x, b1 = units * (blockIdx.x + 1) / gridDim.x;
  const int64_t stages = (b1 - b0 + 15) / 16;
  if (warp == 16) {
    for (int64_t g = 0; g < stages; ++g) {
      const int slot = static_cast<int>(g % S);
      const int64_t u0 = b0 + 16 * g, nu = b1 - u0 < 16 ? b1 - u0 : 16;
      const int bytes = static_cast<int>(nu) * kUnitBytes;
      if (lane == 0) {
        if (g >= S) tllm::cuda::mbar_wait(empty + 8 * slot, static_cast<uint32_t>((g / S - 1) & 1));
        tllm::cuda::mbar_arrive_expect_tx(full + 8 * slot, bytes);
      }
      __syncwarp();
      for (int o = lane * C; o < bytes; o += 32 * C)
        tllm::cuda::bulk_copy_g2s(data + slot * kStage + o, src + u0 * kUnitBytes + o,
                                  bytes - o < C ? bytes - o : C, full + 8 * slot);
    }
    return;
  }
  unsigned acc = 0;
  for (int64_t g = 0; g < stages; ++g) {
    const int slot = static_cast<int>(g % S);
    tllm::cuda::mbar_wait(full + 8 * slot, static_cast<uint32_t>((g / S) & 1));
    if (b0 + 16 * g + warp < b1) {
#pragma unroll
      for (int v = 0; v < kVecs; ++v) {
        uint4 r;
        asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                     : "r"(data + slot * kStage + warp * kUnitBytes + 512 * v + 16 * lane));
        acc ^= fold(r);
      }
    }
    __syncwarp();
    if (lane == 0) tllm::cuda::mbar_arrive(empty + 8 * slot);
  }
  if (acc == 0x12345678u) sink[0] = acc;
}
template <int S, int C>
void launch_ring(const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) {
  constexpr int smem = S * 16 * kUnitBytes;
  static bool configured = false;
  if (!configured) {
    CUDA_CHECK(cudaFuncSetAttribute(ring_kernel<S, C>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = true;
  }
  ring_kernel<S, C><<<g, 544, smem, st>>>(p, u, k);
}

}  // namespace

int main() {
  using namespace tllm;
  if (!cuda_available()) {
    std::printf("no CUDA device: nothing to measure\n");
    return 0;
  }
  cuda::CudaBackend be(CudaBackendOptions{});
  cudaStream_t s = be.stream();
  const int sms = be.num_sms();
  const bench::CopyCeiling c = bench::copy_ceiling(be, 3);
  std::printf("%s, %d SMs; copy 1 GiB d2d: %.1f GB/s read + write\n", be.name().c_str(), sms, c.gbps);

  const int64_t pool = int64_t{3} << 29;  // 1.5 GB of buffers to rotate through
  Tensor buf = be.empty({pool}, DType::U8);
  CUDA_CHECK(cudaMemsetAsync(buf.raw(), 7, static_cast<size_t>(pool), s));
  Tensor sink = be.empty({16}, DType::U8);
  const char* base = static_cast<const char*>(buf.raw());
  unsigned* sk = static_cast<unsigned*>(sink.raw());

  struct Pattern {
    std::string name;
    void (*launch)(const char*, int64_t, unsigned*, int, cudaStream_t);
  };
  int major = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  std::vector<Pattern> patterns = {
      {"stack-1", [](const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) { stack_kernel<1><<<g, 512, 0, st>>>(p, u, k); }},
      {"stack-2", [](const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) { stack_kernel<2><<<g, 512, 0, st>>>(p, u, k); }},
      {"stack-3", [](const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) { stack_kernel<3><<<g, 512, 0, st>>>(p, u, k); }},
      {"spread-2", [](const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) { spread_kernel<2><<<g, 512, 0, st>>>(p, u, k); }},
      {"spread-3", [](const char* p, int64_t u, unsigned* k, int g, cudaStream_t st) { spread_kernel<3><<<g, 512, 0, st>>>(p, u, k); }},
      {"blocks-4", [](const char* p, int64_t u, unsigned* k, int, cudaStream_t st) {
         blocks_kernel<<<static_cast<unsigned>((u + 7) / 8), 128, 0, st>>>(p, u, k);
       }},
      {"blocks-8", [](const char* p, int64_t u, unsigned* k, int, cudaStream_t st) {
         blocks_kernel<<<static_cast<unsigned>((u + 7) / 8), 256, 0, st>>>(p, u, k);
       }},
  };
  if (major >= 9) {
    patterns.push_back({"ring-4-2K", launch_ring<4, 2048>});
    patterns.push_back({"ring-4-32K", launch_ring<4, 32768>});
    patterns.push_back({"ring-6-2K", launch_ring<6, 2048>});
    patterns.push_back({"ring-6-8K", launch_ring<6, 8192>});
  }
  std::printf("%-10s %8s %10s %10s %8s\n", "pattern", "MB", "us", "GB/s", "%copy");
  for (int64_t mb : {8, 16, 32, 64, 128, 256, 512}) {
    const int64_t bytes = mb << 20, units = bytes / kUnitBytes, slots = pool / bytes;
    for (const Pattern& pt : patterns) {
      const double us = bench::time_us(
          s, [&](int i) { pt.launch(base + (i % slots) * bytes, units, sk, sms, s); }, 10, 7, 3);
      CUDA_CHECK(cudaGetLastError());
      const double gbps = static_cast<double>(bytes) / us / 1e3;
      std::printf("%-10s %8lld %10.2f %10.1f %7.1f%%\n", pt.name.c_str(), static_cast<long long>(mb), us, gbps,
                  100.0 * gbps / c.gbps);
    }
  }
  return 0;
}
