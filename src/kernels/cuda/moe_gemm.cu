// Grouped GEMM of the MoE experts for prefill-sized batches (T > kMoeGemvMaxTokens).
//
// Work list: the tiles made by moe_align, each <= BM positions of one expert's pairs (grid.y,
// a fixed capacity; blocks past the routed count exit), times output column blocks
// (grid.x). Each block streams its expert's weight rows and the tile's activation rows
// through a 4-stage cp.async pipeline into padded shared memory, feeds mma.m16n8k16 (bf16
// in, f32 accumulate) through ldmatrix, and writes bf16 results by position:
//   gated (gate|up): A rows are x[token(pair)], gathered on load (the permutation costs no
//                    pass of its own); out = act[pos, f] = silu(gate) * up for f in the
//                    block's 64 features.
//   down:            A rows are act[pos]; out = y[pos, n] for the block's 128 columns.
// All index maps are in moe_gemm_layout.h (host-tested). On Hopper moe_gemm_sm90.cu (TMA +
// wgmma) takes the calls instead where it supports them (take_sm90 below).
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/moe_gemm_layout.h"
#include "kernels/cuda/moe_ops.h"

namespace tllm::cuda {
namespace {

using namespace moe_gemm;

struct GemmParams {
  const bf16* a;             // gated: x [T, K]; down: act [P, K]
  const bf16* w;             // expert e's weights at w + e * w_expert_stride, rows of K
  int64_t w_expert_stride;   // elements
  int N;                     // gated: I (features); down: H
  int K;
  int up_offset;             // gated: row of up_proj's first row within an expert (I)
  bf16* out;                 // [P, N] by position
  const int32_t* offsets;    // [E+1]
  const int32_t* tile_expert;
  const int32_t* tile_start;
  const int32_t* counts;     // [1] = n_tiles
  const int32_t* sorted_pair;
  int top_k;
};

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

template <bool GATED>
__global__ void __launch_bounds__(THREADS) moe_gemm_kernel(const __grid_constant__ GemmParams p) {
  const int tile = blockIdx.y;
  if (tile >= p.counts[1]) return;
  const int e = p.tile_expert[tile];
  const int row0 = p.tile_start[tile];
  const int rows = min(BM, p.offsets[e + 1] - row0);  // >= 1 by construction
  const int n0 = blockIdx.x * cols_per_block(GATED);
  const bf16* we = p.w + static_cast<int64_t>(e) * p.w_expert_stride;

  extern __shared__ __align__(16) unsigned char smem_raw[];
  bf16* As = reinterpret_cast<bf16*>(smem_raw);     // [STAGES][BM][LDS]
  bf16* Bs = As + STAGES * BM * LDS;                 // [STAGES][BN][LDS]

  const int t = threadIdx.x;
  const int kc = load_k(t);
  // Source rows of this thread's chunks (null: zero-filled).
  const bf16* a_src[A_CHUNKS];
#pragma unroll
  for (int i = 0; i < A_CHUNKS; ++i) {
    const int r = load_row(t, i);
    a_src[i] = nullptr;
    if (r < rows) {
      const int pos = row0 + r;
      const int64_t arow = GATED ? p.sorted_pair[pos] / p.top_k : pos;
      a_src[i] = p.a + arow * p.K;
    }
  }
  const bf16* b_src[B_CHUNKS];
#pragma unroll
  for (int i = 0; i < B_CHUNKS; ++i) {
    const int wr = b_weight_row(GATED, load_row(t, i), n0, p.N, p.up_offset);
    b_src[i] = wr < 0 ? nullptr : we + static_cast<int64_t>(wr) * p.K;
  }

  const int KT = (p.K + BK - 1) / BK;
  auto load_stage = [&](int stage, int kt) {
    const int k0 = kt * BK + kc;
    const bool kin = k0 + 8 <= p.K;  // K % 8 == 0: a chunk is all in or all out
#pragma unroll
    for (int i = 0; i < A_CHUNKS; ++i) {
      bf16* dst = As + (stage * BM + load_row(t, i)) * LDS + kc;
      const bool ok = kin && a_src[i] != nullptr;
      cp_async16(dst, ok ? a_src[i] + k0 : p.a, ok ? 16 : 0);
    }
#pragma unroll
    for (int i = 0; i < B_CHUNKS; ++i) {
      bf16* dst = Bs + (stage * BN + load_row(t, i)) * LDS + kc;
      const bool ok = kin && b_src[i] != nullptr;
      cp_async16(dst, ok ? b_src[i] + k0 : p.w, ok ? 16 : 0);
    }
  };

  const int warp = t >> 5, lane = t & 31;
  const int warp_m = warp >> 1, warp_n = warp & 1;
  float acc[2][8][4];
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mt][j][c] = 0.0f;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();  // always: group counting below assumes one group per stage
  }
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<STAGES - 2>();  // stage kt has landed (for this thread) ...
    __syncthreads();              // ... for every thread, and stage kt-1 is no longer read
    const int nk = kt + STAGES - 1;
    if (nk < KT) load_stage(nk % STAGES, nk);
    cp_async_commit();
    const bf16* as = As + (kt % STAGES) * BM * LDS;
    const bf16* bs = Bs + (kt % STAGES) * BN * LDS;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
        ldmatrix_x4(af[mt], as + a_frag_row(warp_m, mt, lane) * LDS + a_frag_col(kk, lane));
      uint32_t bfr[4][4];
#pragma unroll
      for (int jp = 0; jp < 4; ++jp)
        ldmatrix_x4(bfr[jp], bs + b_frag_row(GATED, warp_n, jp, lane) * LDS + b_frag_col(kk, lane));
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int j = 0; j < 8; ++j) mma_16816(acc[mt][j], af[mt], bfr[j >> 1][(j & 1) * 2], bfr[j >> 1][(j & 1) * 2 + 1]);
    }
  }

  // Epilogue straight from registers: bf16 pairs of adjacent columns.
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int j = 0; j < (GATED ? 4 : 8); ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = c_row(warp_m, mt, lane, 2 * h);
        const int col = n0 + c_col(GATED, warp_n, j, lane, 2 * h);
        if (r >= rows || col >= p.N) continue;  // N % 8 == 0: col < N implies col + 1 < N
        float v0, v1;
        if constexpr (GATED) {
          v0 = silu(acc[mt][j][2 * h]) * acc[mt][j + 4][2 * h];
          v1 = silu(acc[mt][j][2 * h + 1]) * acc[mt][j + 4][2 * h + 1];
        } else {
          v0 = acc[mt][j][2 * h];
          v1 = acc[mt][j][2 * h + 1];
        }
        *reinterpret_cast<__nv_bfloat162*>(p.out + static_cast<int64_t>(row0 + r) * p.N + col) =
            __floats2bfloat162_rn(v0, v1);
      }
}

}  // namespace

// Per device (allow_dynamic_smem remembers each (device, kernel)): a kernel's shared-memory
// limit belongs to the device's context, and tensor-parallel ranks launch on several GPUs.
void moe_gemm_init() {
  allow_dynamic_smem(reinterpret_cast<const void*>(moe_gemm_kernel<true>), SMEM_BYTES);
  allow_dynamic_smem(reinterpret_cast<const void*>(moe_gemm_kernel<false>), SMEM_BYTES);
  moe_gemm_sm90_init();
}

MoeGemmKernel moe_gemm_forced() {
  const char* e = std::getenv("TLLM_MOE_GEMM");
  if (!e || !*e || std::strcmp(e, "auto") == 0) return MoeGemmKernel::Auto;
  if (std::strcmp(e, "mma") == 0) return MoeGemmKernel::Mma;
  if (std::strcmp(e, "decode") == 0) return MoeGemmKernel::Decode;
  TLLM_CHECK(std::strcmp(e, "wgmma") == 0, "TLLM_MOE_GEMM=", e, " is not supported (auto, decode, mma, wgmma)");
  return MoeGemmKernel::Wgmma;
}

namespace {
// Whether this call takes the sm_90a kernels (moe_ops.h: TLLM_MOE_GEMM, else where supported).
bool take_sm90(const MoeExpertParams& p) {
  switch (moe_gemm_forced()) {
    case MoeGemmKernel::Mma: return false;
    case MoeGemmKernel::Wgmma:
      TLLM_CHECK(moe_gemm_sm90_supported(p), "TLLM_MOE_GEMM=wgmma: the sm_90a grouped GEMM does not take this call (",
                 "it needs an sm_90 device with sm_90a code in this build, H = ", p.H, " and I = ", p.I,
                 " multiples of 8 and >= 64)");
      return true;
    case MoeGemmKernel::Auto:
    case MoeGemmKernel::Decode: break;
  }
  return moe_gemm_sm90_supported(p);
}
}  // namespace

void moe_experts_prefill(const MoeExpertParams& p, cudaStream_t stream) {
  moe_gemm_init();
  if (take_sm90(p)) {
    moe_experts_prefill_sm90(p, stream);
    return;
  }
  const int max_tiles = p.meta.max_tiles;
  TLLM_CHECK(max_tiles >= 1 && max_tiles <= 65535, "moe prefill: ", max_tiles, " tiles exceed the grid limit");
  GemmParams g{};
  g.offsets = p.meta.offsets;
  g.tile_expert = p.meta.tile_expert;
  g.tile_start = p.meta.tile_start;
  g.counts = p.meta.counts;
  g.sorted_pair = p.meta.sorted_pair;
  g.top_k = p.k;

  g.a = p.x;
  g.w = p.gate_up;
  g.w_expert_stride = static_cast<int64_t>(2) * p.I * p.H;
  g.N = p.I;
  g.K = p.H;
  g.up_offset = p.I;
  g.out = p.act;
  moe_gemm_kernel<true><<<dim3(ceil_div(p.I, cols_per_block(true)), max_tiles), THREADS, SMEM_BYTES, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemm gate_up");

  g.a = p.act;
  g.w = p.down;
  g.w_expert_stride = static_cast<int64_t>(p.H) * p.I;
  g.N = p.H;
  g.K = p.I;
  g.up_offset = 0;
  g.out = p.y;
  moe_gemm_kernel<false><<<dim3(ceil_div(p.H, cols_per_block(false)), max_tiles), THREADS, SMEM_BYTES, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemm down");
}

}  // namespace tllm::cuda
