// Grouped GEMM of the bf16 MoE experts on Hopper (sm_90a): TMA + wgmma, the structure of
// gemm_silu_sm90.cu over moe_align's tile list.
//
// Why: the mma.sync grouped GEMM (moe_gemm.cu: 64 x 128 tiles, 4 warps) runs a Qwen3-30B-A3B
// layer at 20-24% of the bf16 GEMM peak at T >= 2,048 (docs/cuda-notes.md, session 45), and
// the experts are ~80% of a 30B-A3B prefill.
//
// Structure:
//  - x rows are gathered once into expert order (x_sorted[pos] = x[token(pos)], written into
//    the y scratch, which the down GEMM overwrites later), so every operand tile is a plain 2-D
//    box for the TMA unit: rows [start, start + 128) of x_sorted (gate|up) or of act (down),
//    and 2 x 128 rows of the expert's weights;
//  - a unit is 128 positions of one expert (two of moe_align's 64-position tiles, listed by
//    moe_align as meta.unit_tile) times one column block. Rows past the expert's positions
//    belong to the next expert or lie past the matrix (zeros): they are computed and not
//    stored;
//  - a persistent grid (one 384-thread block per SM) takes the units round robin, in expert
//    order with the column blocks fastest, so the units in flight share their experts' weight
//    rows and x rows in L2;
//  - warpgroup 0's first thread is the producer: per 64-wide k step one A box [128 x 64] and
//    two weight boxes [128 x 64] into a 4-stage ring (48 KB a stage, 128-byte swizzle), on the
//    stage's "full" mbarrier; warpgroups 1 and 2 own 64 rows each and all 256 weight rows,
//    one wgmma.m64n256k16 per 16-wide k step, releasing a stage once its MMAs retired; in a
//    unit of at most 64 positions (an expert's last) warpgroup 2 issues no MMAs;
//  - gate|up: the weight rows are the expert's gate rows n0.. and up rows I + n0.., so a thread
//    holds gate column c and its up column (accumulators 4i + e and 4(i + 16) + e) and stores
//    silu(gate) * up (moe_gemm.cu's arithmetic) for 128 features; down: rows n0..n0 + 255 of
//    the expert's [H, I] block, 256 output columns.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/tma.cuh"
#include "kernels/cuda/wgmma_ring.cuh"

namespace tllm::cuda {
namespace {

constexpr int kBM = 2 * kMoeTileRows, kBK = 64, kStages = 4, kThreads = 384;
constexpr int kWRows = 256;                                        // weight rows per unit
constexpr int kABytes = kBM * kBK * 2;                             // 16 KB
constexpr int kBBytes = kWRows * kBK * 2;                          // 32 KB
constexpr int kStageBytes = kABytes + kBBytes;                     // 48 KB
constexpr int kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers, alignment slack

struct Sm90GemmParams {
  bf16* out;                // [P, N] by position
  int N, K;
  int expert_rows;          // weight rows per expert: 2I (gate|up) or H (down)
  int second_box;           // row of the second weight box relative to the first: I or 128
  int cols_per_unit;        // output columns per unit: 128 (gate|up) or 256 (down)
  int tiles_n;              // column blocks
  MoeMeta meta;             // moe_align's grouping: the unit list (unit_tile, counts[2]) and its tiles
};

// Unit u of the walk (units in expert order, column blocks fastest): its expert, first
// position, positions (<= 128) and first output column.
__device__ __forceinline__ void unit_origin(const Sm90GemmParams& p, int u, int& expert, int& start, int& rows,
                                            int& n0) {
  const int unit = u / p.tiles_n, tile = p.meta.unit_tile[unit];
  expert = p.meta.tile_expert[tile];
  start = p.meta.tile_start[tile];
  rows = min(kBM, p.meta.offsets[expert + 1] - start);
  n0 = (u - unit * p.tiles_n) * p.cols_per_unit;
}

__device__ __forceinline__ float silu_precise(float g) { return g / (1.0f + expf(-g)); }

template <bool GATED, int WG>
__device__ __forceinline__ void consume(const Sm90GemmParams& p, int n_units, uint32_t ring, uint32_t full,
                                        uint32_t empty) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  float acc[128];
  const int lane = threadIdx.x % 32, warp = (threadIdx.x / 32) % 4;
  const int units = n_units * p.tiles_n, nk = (p.K + kBK - 1) / kBK;
  int it = 0;  // k steps consumed by this block over all its units: the ring position
  for (int u = blockIdx.x; u < units; u += gridDim.x) {
    int e, start, rows, n0;
    unit_origin(p, u, e, start, rows, n0);
    if (WG * 64 >= rows) {
      // No rows of this warpgroup (an expert's last unit of <= 64 positions): no MMAs, so the
      // other warpgroup has the tensor cores to itself. Each stage is still waited for, so
      // that this warpgroup's releases stay one per fill.
      for (int kb = 0; kb < nk; ++kb, ++it) {
        const int s = it % kStages;
        mbar_wait(full + 8 * s, (it / kStages) & 1);
        if (lane == 0) mbar_arrive(empty + 8 * s);
      }
      continue;
    }
    wgmma_ring_n256<kStages, kStageBytes>(acc, ring, full, WG * 64 * 128, kABytes, nk, it,
                                          [&](int s) { mbar_arrive(empty + 8 * s); });

    // Accumulator 4i + e: row g + 8 (e >> 1) of the warp's 16, column 8i + 2 t4 + (e & 1).
    const int g = lane / 4, t4 = lane % 4;
    const int r0 = WG * 64 + warp * 16 + g;
#pragma unroll
    for (int i = 0; i < (GATED ? 16 : 32); ++i) {
      const int col = n0 + 8 * i + 2 * t4;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = r0 + 8 * h;
        if (r >= rows || col >= p.N) continue;  // N % 8 == 0: col < N implies col + 1 < N
        float v0 = acc[4 * i + 2 * h], v1 = acc[4 * i + 2 * h + 1];
        if constexpr (GATED) {
          v0 = silu_precise(v0) * acc[4 * (i + 16) + 2 * h];
          v1 = silu_precise(v1) * acc[4 * (i + 16) + 2 * h + 1];
        }
        *reinterpret_cast<__nv_bfloat162*>(p.out + static_cast<int64_t>(start + r) * p.N + col) =
            __floats2bfloat162_rn(v0, v1);
      }
    }
  }
#endif
}

template <bool GATED>
__global__ void __launch_bounds__(kThreads, 1)
    moe_gemm_sm90_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_w,
                         const __grid_constant__ Sm90GemmParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t ring = (raw + 1023) & ~1023u;  // the 128-byte swizzle's atoms are 1024-aligned
  const uint32_t full = ring + kStages * kStageBytes, empty = full + 8 * kStages;
  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full + 8 * s, 1);   // the producer's arrive, plus the TMA's transaction bytes
      mbar_init(empty + 8 * s, 8);  // one arrive per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  const int n_units = p.meta.counts[2];

  if (tid < 128) {  // producer warpgroup: one thread issues every copy
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (tid == 0) {
      const int units = n_units * p.tiles_n, nk = (p.K + kBK - 1) / kBK;
      int it = 0;
      for (int u = blockIdx.x; u < units; u += gridDim.x) {
        int e, start, rows, n0;
        unit_origin(p, u, e, start, rows, n0);
        const int wrow = e * p.expert_rows + n0;
        for (int kb = 0; kb < nk; ++kb, ++it) {
          const int s = it % kStages;
          if (it >= kStages) mbar_wait(empty + 8 * s, ((it / kStages) - 1) & 1);
          const uint32_t dst = ring + s * kStageBytes, bar = full + 8 * s;
          mbar_arrive_expect_tx(bar, kStageBytes);
          tma_load_2d(dst, &map_a, kb * kBK, start, bar);
          tma_load_2d(dst + kABytes, &map_w, kb * kBK, wrow, bar);
          tma_load_2d(dst + kABytes + kBBytes / 2, &map_w, kb * kBK, wrow + p.second_box, bar);
        }
      }
    }
    __syncwarp();
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    if (tid < 256) consume<GATED, 0>(p, n_units, ring, full, empty);
    else consume<GATED, 1>(p, n_units, ring, full, empty);
  }
#else
  __trap();  // launched only where sm90a_available()
#endif
}

// x_sorted[pos] = x[sorted_pair[pos] / k] for the routed positions (pos < offsets[E]); a warp
// per row, 16 bytes per lane and step.
__global__ void gather_sorted_kernel(bf16* __restrict__ out, const bf16* __restrict__ x,
                                     const int32_t* __restrict__ sorted_pair, const int32_t* __restrict__ routed,
                                     int k, int H, int64_t P) {
  const int64_t pos = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (pos >= P || pos >= *routed) return;
  const int lane = threadIdx.x % 32;
  const uint4* src = reinterpret_cast<const uint4*>(x + static_cast<int64_t>(sorted_pair[pos] / k) * H);
  uint4* dst = reinterpret_cast<uint4*>(out + pos * H);
  for (int c = lane; c < H / 8; c += 32) dst[c] = __ldg(src + c);
}

template <bool GATED>
void launch(const CUtensorMap& ma, const CUtensorMap& mw, const Sm90GemmParams& p, int max_units, int num_sms,
            cudaStream_t stream) {
  const int grid = std::max(1, std::min(num_sms, max_units * p.tiles_n));
  moe_gemm_sm90_kernel<GATED><<<grid, kThreads, kSmemBytes, stream>>>(ma, mw, p);
  CUDA_CHECK_LAUNCH(GATED ? "moe_gemm_sm90 gate_up" : "moe_gemm_sm90 down");
}

}  // namespace

bool moe_gemm_sm90_init() {
  // Per device (sm90a_available and allow_dynamic_smem keep their answers per device):
  // tensor-parallel ranks launch on several GPUs.
  if (!sm90a_available()) return false;
  allow_dynamic_smem(reinterpret_cast<const void*>(moe_gemm_sm90_kernel<true>), kSmemBytes);
  allow_dynamic_smem(reinterpret_cast<const void*>(moe_gemm_sm90_kernel<false>), kSmemBytes);
  static const bool tma = (tma_init(), true);  // the driver's tensor-map encoder, looked up outside any capture
  return tma;
}

bool moe_gemm_sm90_supported(const MoeExpertParams& p) {
  const uintptr_t align = reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.gate_up) |
                          reinterpret_cast<uintptr_t>(p.down) | reinterpret_cast<uintptr_t>(p.act) |
                          reinterpret_cast<uintptr_t>(p.y);
  return p.H >= 64 && p.I >= 64 && p.H % 8 == 0 && p.I % 8 == 0 && align % 16 == 0 &&
         static_cast<int64_t>(p.E) * 2 * p.I < (int64_t{1} << 31) && static_cast<int64_t>(p.E) * p.H < (int64_t{1} << 31) &&
         moe_gemm_sm90_init();
}

void moe_experts_prefill_sm90(const MoeExpertParams& p, cudaStream_t stream) {
  TLLM_CHECK(moe_gemm_sm90_supported(p), "moe_gemm_sm90: unsupported call (needs sm_90a code and device, H = ", p.H,
             " and I = ", p.I, " multiples of 8 and >= 64, 16-byte aligned buffers)");
  const int64_t P = static_cast<int64_t>(p.T) * p.k;
  const int max_units = moe_max_units(P, p.E);
  // x in expert order, into the y scratch (the down GEMM writes y only after gate|up read it).
  constexpr int kGatherRows = 8;
  gather_sorted_kernel<<<ceil_div(P, kGatherRows), 32 * kGatherRows, 0, stream>>>(p.y, p.x, p.meta.sorted_pair,
                                                                                   p.meta.offsets + p.E, p.k, p.H, P);
  CUDA_CHECK_LAUNCH("moe_gemm_sm90 gather");

  Sm90GemmParams g{};
  g.meta = p.meta;

  g.out = p.act;
  g.N = p.I;
  g.K = p.H;
  g.expert_rows = 2 * p.I;
  g.second_box = p.I;
  g.cols_per_unit = kWRows / 2;
  g.tiles_n = ceil_div(p.I, g.cols_per_unit);
  launch<true>(tma_map_bf16(p.y, P, p.H, kBM, "moe_gemm_sm90"),
               tma_map_bf16(p.gate_up, static_cast<int64_t>(p.E) * 2 * p.I, p.H, kWRows / 2, "moe_gemm_sm90"), g,
               max_units, p.num_sms, stream);

  g.out = p.y;
  g.N = p.H;
  g.K = p.I;
  g.expert_rows = p.H;
  g.second_box = kWRows / 2;
  g.cols_per_unit = kWRows;
  g.tiles_n = ceil_div(p.H, g.cols_per_unit);
  launch<false>(tma_map_bf16(p.act, P, p.I, kBM, "moe_gemm_sm90"),
                tma_map_bf16(p.down, static_cast<int64_t>(p.E) * p.H, p.I, kWRows / 2, "moe_gemm_sm90"), g, max_units,
                p.num_sms, stream);
}

}  // namespace tllm::cuda
