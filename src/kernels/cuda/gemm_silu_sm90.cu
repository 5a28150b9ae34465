// Prefill's gate|up projection with the activation in its epilogue, on Hopper (sm_90a):
//   act[T, I] = silu(bf16(x Wg^T)) * bf16(x Wu^T),  W = [Wg; Wu] rows [2I, K], x [T, K], bf16.
// cuBLASLt has no SwiGLU epilogue, so prefill wrote gate|up ([T, 2I]) and read it back in
// silu_mul: 620 MB of DRAM traffic per 7B layer at 4,096 tokens (docs/cuda-notes.md, session
// 39: the H100 prefill runs at its power cap, so bytes not moved are clock gained).
//
// Structure (the PTX ISA's wgmma and cp.async.bulk.tensor sections, nothing copied):
//  - a persistent grid (one 384-thread block per SM) walks 128 x 128 output tiles, in groups
//    of group_m row tiles so that concurrent blocks share their x and W rows in L2. With
//    CL = 2 the blocks run in clusters of two that take vertically adjacent tiles (rows m0
//    and m0 + 128, the same columns) and share the weight rows: each block loads half of
//    them and the TMA multicasts it into both blocks' shared memory, so a k step reads 32 KB
//    from L2 per block instead of 48;
//  - warpgroup 0's first thread is the producer: per 64-wide k step it asks the TMA unit for
//    the x tile [128 x 64] and the weight rows of the tile's gate and up columns ([128 x 64]
//    each, rows n0.. and I + n0..), 48 KB into a 4-stage ring in the 128-byte swizzle that
//    wgmma reads, completing on the stage's "full" mbarrier; out-of-range rows and k columns
//    arrive as zeros. A stage is refilled once the consumers of every block of the cluster
//    have released it (their warps arrive on each block's "empty" mbarrier);
//  - warpgroups 1 and 2 each own 64 rows of the tile and all 256 weight columns, so a thread
//    holds a gate value and its up value in the same registers' layout (columns c and 128 + c:
//    accumulators 4i + e and 4(i + 16) + e): one wgmma.m64n256k16 per 16-wide k step, the
//    stage released on its "empty" mbarrier once the MMAs that read it have retired;
//  - the epilogue rounds gate and up to bf16 (the unfused path's GEMM output) and stores
//    silu(g) * u with silu_mul's arithmetic, while the producer already fills the next tile.
// Measured (H200, runs 229-231; docs/cuda-notes.md, session 40): the same bits as cuBLASLt +
// silu_mul at every bench shape, but the single-block form runs at 75-79% of the GEMM peak at
// 7B T = 4,096 (cuBLASLt's gate|up alone ~100%), 0.95x the unfused pair, and the cluster form
// (TLLM_GEMM_SILU_CLUSTER=2) at 48-53%, not understood (66 clusters co-resident). So the
// backend takes it only with TLLM_GEMM_SILU=1. What it lacks against cuBLASLt: the epilogue
// overlapped with the next tile's MMAs (both consumer warpgroups store at once), and a
// multicast that pays.
#include "core/env.h"
#include "core/logging.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/wgmma_ring.cuh"

namespace tllm::cuda {
namespace {

constexpr int kBM = 128, kBN = 128, kBK = 64, kStages = 4, kThreads = 384;
constexpr int kABytes = kBM * kBK * 2;                             // x tile, 16 KB
constexpr int kBBytes = 2 * kBN * kBK * 2;                         // gate + up rows, 32 KB
constexpr int kStageBytes = kABytes + kBBytes;                     // 48 KB
constexpr int kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers, alignment slack

struct GemmSiluParams {
  bf16* out;
  int T, I, K;
  int units_m, tiles_n, group_m;  // units_m: row tiles / CL (a cluster's blocks take CL row tiles)
};

// The same copy written into the shared memory of every block of the cluster in `mask` (same
// offset), completing on each one's mbarrier at `bar`'s offset.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                                      uint32_t bar, uint16_t mask) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
      " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(mask)
      : "memory");
#endif
}

__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
  return r;
}

// Every thread of every block of the cluster (release / acquire).
__device__ __forceinline__ void cluster_sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}

// An arrive on the mbarrier at `bar`'s offset in block `rank` of the cluster.
__device__ __forceinline__ void mbar_arrive_in(uint32_t bar, uint32_t rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(bar), "r"(rank));
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
#endif
}

// Work unit `u` of the walk: row units in groups of group_m, columns within a group, rows
// fastest; block `rank` of the cluster takes row tile CL * unit + rank.
template <int CL>
__device__ __forceinline__ void tile_origin(const GemmSiluParams& p, int u, int rank, int& m0, int& n0) {
  const int per_group = p.group_m * p.tiles_n;
  const int group = u / per_group, first_m = group * p.group_m;
  const int gm = min(p.group_m, p.units_m - first_m);
  const int r = u - group * per_group;
  m0 = ((first_m + r % gm) * CL + rank) * kBM;
  n0 = (r / gm) * kBN;
}

__device__ __forceinline__ float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

// A stage is free once this warp's MMAs on it retired: one arrive per warp on the "empty"
// mbarrier of every block of the cluster (each one multicasts into this block's stage).
template <int CL>
__device__ __forceinline__ void release_stage(uint32_t bar) {
  if constexpr (CL == 1) {
    mbar_arrive(bar);
  } else {
#pragma unroll
    for (int r = 0; r < CL; ++r) mbar_arrive_in(bar, r);
  }
}

template <int CL, int WG>
__device__ __forceinline__ void consume(const GemmSiluParams& p, uint32_t ring, uint32_t full, uint32_t empty) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  float acc[128];
  const int lane = threadIdx.x % 32, warp = (threadIdx.x / 32) % 4;
  const int units = p.units_m * p.tiles_n, nk = (p.K + kBK - 1) / kBK;
  const int rank = CL == 1 ? 0 : static_cast<int>(cluster_rank());
  int it = 0;  // k steps consumed by this block, over all its tiles: the ring position
  for (int u = blockIdx.x / CL; u < units; u += gridDim.x / CL) {
    int m0, n0;
    tile_origin<CL>(p, u, rank, m0, n0);
    wgmma_ring_n256<kStages, kStageBytes>(acc, ring, full, WG * 64 * 128, kABytes, nk, it,
                                          [&](int s) { release_stage<CL>(empty + 8 * s); });

    // Accumulator 4i + e: row g + 8 (e >> 1) of the warp's 16, column 8i + 2 t4 + (e & 1).
    const int g = lane / 4, t4 = lane % 4;
    const int row0 = m0 + WG * 64 + warp * 16 + g;
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int col = n0 + 8 * i + 2 * t4;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = row0 + 8 * h;
        const float g0 = bf16_round(acc[4 * i + 2 * h]), g1 = bf16_round(acc[4 * i + 2 * h + 1]);
        const float u0 = bf16_round(acc[4 * (i + 16) + 2 * h]), u1 = bf16_round(acc[4 * (i + 16) + 2 * h + 1]);
        if (row < p.T && col < p.I)  // I is even, so col + 1 < I too
          *reinterpret_cast<__nv_bfloat162*>(p.out + static_cast<int64_t>(row) * p.I + col) =
              __floats2bfloat162_rn(silu_f32(g0) * u0, silu_f32(g1) * u1);
      }
    }
  }
#endif
}

template <int CL>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_silu_sm90_kernel(const __grid_constant__ CUtensorMap map_x, const __grid_constant__ CUtensorMap map_w,
                          const GemmSiluParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t ring = (raw + 1023) & ~1023u;  // the 128-byte swizzle's atoms are 1024-aligned
  const uint32_t full = ring + kStages * kStageBytes, empty = full + 8 * kStages;
  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full + 8 * s, 1);        // the producer's arrive, plus the TMA's transaction bytes
      mbar_init(empty + 8 * s, 8 * CL);  // one arrive per consumer warp of every block of the cluster
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  // The cluster's barriers are initialised before any block multicasts into another.
  if constexpr (CL > 1) cluster_sync();
  else __syncthreads();

  if (tid < 128) {  // producer warpgroup: one thread issues every copy
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (tid == 0) {
      const int units = p.units_m * p.tiles_n, nk = (p.K + kBK - 1) / kBK;
      const int rank = CL == 1 ? 0 : static_cast<int>(cluster_rank());
      int it = 0;
      for (int u = blockIdx.x / CL; u < units; u += gridDim.x / CL) {
        int m0, n0;
        tile_origin<CL>(p, u, rank, m0, n0);
        for (int kb = 0; kb < nk; ++kb, ++it) {
          const int s = it % kStages;
          if (it >= kStages) mbar_wait(empty + 8 * s, ((it / kStages) - 1) & 1);
          const uint32_t dst = ring + s * kStageBytes, bar = full + 8 * s;
          mbar_arrive_expect_tx(bar, kStageBytes);
          tma_load_2d(dst, &map_x, kb * kBK, m0, bar);
          if constexpr (CL == 1) {
            tma_load_2d(dst + kABytes, &map_w, kb * kBK, n0, bar);
            tma_load_2d(dst + kABytes + kBBytes / 2, &map_w, kb * kBK, p.I + n0, bar);
          } else {  // block 0 the gate rows, block 1 the up rows, each into both
            tma_load_2d_multicast(dst + kABytes + rank * (kBBytes / 2), &map_w, kb * kBK, rank * p.I + n0, bar,
                                  static_cast<uint16_t>(3));
          }
        }
      }
    }
    __syncwarp();
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    if (tid < 256) consume<CL, 0>(p, ring, full, empty);
    else consume<CL, 1>(p, ring, full, empty);
  }
  // No block leaves while another may still multicast into it or arrive on its barriers.
  if constexpr (CL > 1) cluster_sync();
#else
  __trap();  // launched only where sm90a_available()
#endif
}

// A launch configuration of `clusters` clusters of `cl` blocks of the kernel (not copyable:
// cfg points at attr).
struct ClusterLaunch {
  cudaLaunchAttribute attr{};
  cudaLaunchConfig_t cfg{};
  ClusterLaunch(int cl, int clusters, cudaStream_t stream) {
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = cl;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.gridDim = dim3(cl * clusters);
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = kSmemBytes;
    cfg.stream = stream;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
};

template <int CL>
void launch(const CUtensorMap& mx, const CUtensorMap& mw, GemmSiluParams p, int num_sms, cudaStream_t stream) {
  // Per device (a kernel's shared-memory limit belongs to the device's context; tensor-parallel
  // ranks launch on several GPUs): co-resident clusters, 1 block per SM, pairs within a GPC.
  static int max_clusters_of[64] = {};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  TLLM_CHECK(dev < 64, "cuda device ", dev, ": gemm_silu_sm90 keeps its launch shape for devices 0-63");
  int& max_clusters = max_clusters_of[dev];
  if (max_clusters == 0) {
    CUDA_CHECK(
        cudaFuncSetAttribute(gemm_silu_sm90_kernel<CL>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    max_clusters = num_sms / CL;
    if constexpr (CL > 1) {
      const ClusterLaunch query(CL, max_clusters, nullptr);
      int n = 0;
      CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, gemm_silu_sm90_kernel<CL>, &query.cfg));
      if (n > 0) max_clusters = std::min(max_clusters, n);
      const int forced = env_int("TLLM_GEMM_SILU_MAX_CLUSTERS", 0);
      TLLM_LOG(Info, "gemm_silu_sm90: ", n, " co-resident clusters of ", CL, " (occupancy query), ",
               forced > 0 ? forced : max_clusters, " used");
      if (forced > 0) max_clusters = forced;
    }
  }
  const ClusterLaunch l(CL, std::min(p.units_m * p.tiles_n, max_clusters), stream);
  CUDA_CHECK(cudaLaunchKernelEx(&l.cfg, gemm_silu_sm90_kernel<CL>, mx, mw, p));
  CUDA_CHECK_LAUNCH("gemm_silu_sm90");
}

}  // namespace

bool gemm_silu_sm90_supported(int T, int I, int K, const void* out, const void* x, const void* w) {
  const uintptr_t align = reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w);
  return T >= 1 && I >= 2 && I % 2 == 0 && K >= 8 && K % 8 == 0 && align % 16 == 0 &&
         reinterpret_cast<uintptr_t>(out) % 4 == 0 && sm90a_available();
}

void gemm_silu_sm90(bf16* out, const bf16* x, const bf16* w, int T, int I, int K, int num_sms, cudaStream_t stream) {
  TLLM_CHECK(gemm_silu_sm90_supported(T, I, K, out, x, w), "gemm_silu_sm90: unsupported call T=", T, " I=", I,
             " K=", K, " (needs sm_90a code and device, even I, K % 8 == 0, 16-byte aligned x and w)");
  static const int group_m = [] {
    const int v = env_int("TLLM_GEMM_SILU_GROUP_M", 16);
    TLLM_CHECK_ARG(v >= 1, "environment variable TLLM_GEMM_SILU_GROUP_M=", v, ": expected >= 1");
    return v;
  }();
  static const int cluster = [] {
    const int v = env_int("TLLM_GEMM_SILU_CLUSTER", 1);
    TLLM_CHECK_ARG(v == 1 || v == 2, "environment variable TLLM_GEMM_SILU_CLUSTER=", v, ": expected 1 or 2");
    return v;
  }();
  GemmSiluParams p{};
  p.out = out;
  p.T = T;
  p.I = I;
  p.K = K;
  p.units_m = ceil_div(ceil_div(T, kBM), cluster);
  p.tiles_n = ceil_div(I, kBN);
  p.group_m = std::max(1, group_m / cluster);  // group_m counts row tiles
  const CUtensorMap mx = tma_map_bf16(x, T, K, kBM, "gemm_silu_sm90"), mw = tma_map_bf16(w, 2 * I, K, kBN, "gemm_silu_sm90");
  if (cluster == 2) launch<2>(mx, mw, p, num_sms, stream);
  else launch<1>(mx, mw, p, num_sms, stream);
}

}  // namespace tllm::cuda
