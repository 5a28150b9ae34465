// Quantized (int8 / int4) experts on the decode path (moe_ops.h, moe_quant_experts_decode).
// After the grouping (moe_align, or the fused router's), two kernels read only the active
// experts' codes, and moe_combine sums each token's slots as for bf16 experts:
//   gate|up  a block per (gate / up panel pairs, active expert): warps 0-3 the gate panels,
//            4-7 the up panels; act[pos] = silu(gate) * up for the expert's pairs
//            (positions [offsets[e], offsets[e + 1]) of the grouping)
//   down     a block per (panels of 16 rows of H, active expert): y[pos] = act[pos] down_e^T
// The codes are in the CUDA layout of kernels/quant_layout.h (16-row panels, 1024-byte k tiles
// in mma.m16n8k16 fragment order), and the arithmetic is quant_gemv's (quant_ops.h): a code
// enters the MMA as the exact bf16 integer q + C, and per scale segment
//   out += scale * acc + (offset - C * scale) * X,   X = sum of x over the segment
// (X from an MMA with an all-ones A). An expert's rows are whole panels of the stacked weight
// (2I and H multiples of 16), so expert e's gate panel j is panel e 2I / 16 + j.
// A panel's k tiles are split over 1-8 warps so that each streams about kDepth tiles (a ring
// of kDepth tiles of codes per lane in flight), with fewer warps a panel where the grid would
// take more than one wave; the block's scales and offsets are staged in shared memory beside
// the first code requests, and at NT = 1 x is loaded a tile ahead. Tokens of one expert go
// 8 NT at a time (NT = 1, 2 or 4 tiles of 8 tokens, from T); token columns past the expert's
// count read its first pair's row and are never stored.
// H200, Qwen3-30B-A3B int4 g128 tg b1 (runs 213-215): 18 + 12 us per layer for 12.6 + 6.3 MB
// of codes (~5 us at the copy rate). ncu (run 223): issue-bound, not waiting on DRAM: ~500
// instructions per k tile per warp at 1.6 IPC, of which ~180 were a `% group_size` at every
// k step and a `/ group_size` at every segment end; a quant::GroupWalk counter replaces them.
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/quant_group_walk.h"

namespace tllm::cuda {
namespace {

using namespace qk;

constexpr int kWarps = 8;
constexpr int kDepth = 4;  // k tiles of codes in flight per lane (a register ring)

// Bytes of one panel's scales (or offsets): [groups][16] of 2 or 4 bytes.
__host__ __device__ inline int panel_scale_bytes(const MoeQuantWeight& w) {
  return w.groups * 16 * (w.scales_f16 ? 2 : 4);
}

// The x fragment pair of the 16-wide k step at k (lane column c = lane % 4 already in xr): x
// at k + 2 c (+ 1) and k + 2 c + 8 (+ 9), 0 past K (checked only in the last tile: `tail`).
__device__ __forceinline__ void load_x_step(const uint32_t* xr, int k, int K, bool tail, uint32_t& b0, uint32_t& b1) {
  const int c = threadIdx.x & 3;
  const uint32_t* xp = xr + k / 2;
  b0 = !tail || k + 2 * c < K ? __ldg(xp) : 0u;
  b1 = !tail || k + 2 * c + 8 < K ? __ldg(xp + 4) : 0u;
}

// The x fragments of one k tile for n tile 0 (NT = 1: loaded a tile ahead), b[m] of step m.
template <int BITS>
__device__ __forceinline__ void load_x_tile(const uint32_t* xr, int kt, int K, uint32_t (&b)[BITS == 4 ? 8 : 4][2]) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16;
  const bool tail = (kt + 1) * TILE > K;
#pragma unroll
  for (int m = 0; m < STEPS; ++m) load_x_step(xr, kt * TILE + 16 * m, K, tail, b[m][0], b[m][1]);
}

// One warp's part of a panel: tiles [tb, te) of panel `panel` of w against the x rows xr[nt]
// (lane column c = lane % 4 already added), summed into tot[nt] ({row g, token 2c}, {row g,
// token 2c + 1}, {row g + 8, token 2c}, {row g + 8, token 2c + 1} of n tile nt). The codes of
// the first kDepth tiles are requested first, then `stage` requests the block's scales and
// offsets (ss / so: the panel's [groups][16]) and this warp the first tile's x; `ready` waits
// for the staged values: codes, scales and x are in flight together.
template <int BITS, int NT, typename Stage, typename Ready>
__device__ __forceinline__ void panel_dot(const MoeQuantWeight& w, int64_t panel, int tb, int te,
                                          const uint32_t* (&xr)[NT], const unsigned char* ss,
                                          const unsigned char* so, Stage stage, Ready ready, float (&tot)[NT][4]) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16;
  constexpr float C = code_bias(BITS, false);
  constexpr bool FP8 = is_fp8(BITS);  // no offsets: no x sums
  const int lane = threadIdx.x & 31, g = lane >> 2;
  const uint8_t* wp = w.codes + panel * w.ktiles * 1024 + 16 * lane;
  uint4 ring[kDepth][2];
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (tb + s < te) {
      ring[s][0] = ld_weight_u4(wp + (tb + s) * 1024);
      ring[s][1] = ld_weight_u4(wp + (tb + s) * 1024 + 512);
    }
  stage();
  uint32_t xc[STEPS][2], xn[STEPS][2];  // NT = 1: this tile's x fragments and the next one's
  if constexpr (NT == 1) {
    if (tb < te) load_x_tile<BITS>(xr[0], tb, w.K, xc);
  }
  ready();
  float acc[NT][4], accx[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = accx[nt][i] = 0.0f;
  quant::GroupWalk walk(tb * TILE, w.group_size);  // the scale group of each step, without divisions
  for (int kt0 = tb; kt0 < te; kt0 += kDepth) {
#pragma unroll
    for (int s = 0; s < kDepth; ++s) {
      const int kt = kt0 + s;
      if (kt >= te) break;
      const uint4 lo = ring[s][0], hi = ring[s][1];
      if (kt + kDepth < te) {  // refill the slot before using what it held
        ring[s][0] = ld_weight_u4(wp + (kt + kDepth) * 1024);
        ring[s][1] = ld_weight_u4(wp + (kt + kDepth) * 1024 + 512);
      }
      if constexpr (NT == 1) {
        if (kt + 1 < te) load_x_tile<BITS>(xr[0], kt + 1, w.K, xn);
      }
      const bool tail = (kt + 1) * TILE > w.K;  // the last tile of a K that is not a multiple of TILE
#pragma unroll
      for (int m = 0; m < STEPS; ++m) {
        const int k = kt * TILE + 16 * m;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          uint32_t b0, b1;
          if constexpr (NT == 1) {
            b0 = xc[m][0];
            b1 = xc[m][1];
          } else {
            load_x_step(xr[nt], k, w.K, tail, b0, b1);
          }
          mma_codes<BITS>(acc[nt], lo, hi, m, b0, b1);
          if constexpr (!FP8) mma16816(accx[nt], kOnes, kOnes, kOnes, kOnes, b0, b1);
        }
        // A scale segment ends at a group's end or the tile's (group_size is a multiple of 16).
        const int step_group = walk.group;
        if (walk.step() || m == STEPS - 1) {
          const int grp = w.groups == 1 ? 0 : min(step_group, w.groups - 1);
          const int i0 = grp * 16 + g;
          const float sg = staged(ss, w.scales_f16, i0), sh = staged(ss, w.scales_f16, i0 + 8);
          const float og = FP8 ? 0.0f : staged(so, w.scales_f16, i0) - C * sg;
          const float oh = FP8 ? 0.0f : staged(so, w.scales_f16, i0 + 8) - C * sh;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              if constexpr (FP8) tot[nt][i] += (i < 2 ? sg : sh) * acc[nt][i];
              else tot[nt][i] += (i < 2 ? sg : sh) * acc[nt][i] + (i < 2 ? og : oh) * accx[nt][i];
              acc[nt][i] = accx[nt][i] = 0.0f;
            }
        }
      }
      if constexpr (NT == 1) {
#pragma unroll
        for (int m = 0; m < STEPS; ++m) {
          xc[m][0] = xn[m][0];
          xc[m][1] = xn[m][1];
        }
      }
    }
  }
}

// SILU: the gate|up kernel (K = H, x = the tokens' rows, out = act [P, I]); else the down
// kernel (K = I, x = act by position, out = y [P, H]). uw warps share a panel's k tiles (a
// power of 2, from the tile count: each warp should stream ~kDepth tiles), so a block takes
// 8 / uw output panels (down) or 4 / uw gate / up panel pairs (warps 0-3 the gate panels,
// 4-7 the up panels). grid = (output panels / panels per block, active-expert capacity).
template <int BITS, int NT, bool SILU>
__global__ void __launch_bounds__(kWarps * 32, NT == 4 ? 1 : 2)
    moe_quant_gemv_kernel(const __grid_constant__ MoeQuantExpertParams p, int uw) {
  constexpr int COLS = NT * 8;
  __shared__ float red[kWarps][16][COLS + 1];
  extern __shared__ __align__(16) unsigned char stage[];  // per panel of the block: scales, then offsets
  const int a = blockIdx.y;
  if (a >= p.meta.counts[0]) return;
  const int e = p.meta.active[a];
  const int pos0 = p.meta.offsets[e], cnt = p.meta.offsets[e + 1] - pos0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const MoeQuantWeight& w = SILU ? p.gate_up : p.down;
  const int K = SILU ? p.H : p.I;
  const int n_out = (SILU ? p.I : p.H) / 16;          // output panels of one expert
  const int per_block = (SILU ? kWarps / 2 : kWarps) / uw;  // output panels per block
  // This warp's output panel (j) and weight panel: SILU half = warp / 4 (gate or up).
  const int half = SILU ? warp / (kWarps / 2) : 0, slot = (SILU ? warp % (kWarps / 2) : warp) / uw;
  const int j = blockIdx.x * per_block + slot, wk = warp % uw;
  const bool live = j < n_out;
  const int64_t panel = SILU ? (int64_t{e} * 2 * p.I + half * p.I) / 16 + j : int64_t{e} * n_out + j;
  const int tb = live ? wk * w.ktiles / uw : 0, te = live ? (wk + 1) * w.ktiles / uw : 0;
  // The block's panels' scales and offsets into shared memory (16-byte copies by every
  // thread), behind each warp's first code requests; awaited once before the first tile.
  // Staged panel q = half * per_block + slot (a panel past n_out is not staged).
  const int psb = panel_scale_bytes(w), np = (SILU ? 2 : 1) * per_block;
  auto stage_scales = [&] {
    const int per = psb / 16;
    for (int i = threadIdx.x; i < np * 2 * per; i += kWarps * 32) {
      const int q = i / (2 * per), kind = (i / per) % 2, off = 16 * (i % per);
      const int qh = SILU ? q / per_block : 0, qj = blockIdx.x * per_block + q % per_block;
      if (qj >= n_out || (is_fp8(BITS) && kind)) continue;  // FP8: no offsets
      const int64_t pnl = SILU ? (int64_t{e} * 2 * p.I + qh * p.I) / 16 + qj : int64_t{e} * n_out + qj;
      const unsigned char* src = static_cast<const unsigned char*>(kind ? w.offsets : w.scales) + pnl * psb + off;
      cp_async16(stage + (2 * q + kind) * psb + off, src);
    }
  };
  const unsigned char* ss = stage + 2 * (half * per_block + slot) * psb;
  const unsigned char* so = ss + psb;
  bool staged_once = false;
  // x row of the expert's n-th pair: its token's row of x (gate|up) or its position's row of act.
  auto x_row = [&](int n) -> const bf16* {
    const int pos = pos0 + (n < cnt ? n : 0);
    return SILU ? p.x + static_cast<int64_t>(p.meta.sorted_pair[pos] / p.k) * K : p.act + static_cast<int64_t>(pos) * K;
  };
  for (int n0 = 0; n0 < cnt; n0 += COLS) {
    const uint32_t* xr[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) xr[nt] = reinterpret_cast<const uint32_t*>(x_row(n0 + 8 * nt + g)) + c;
    float tot[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) tot[nt][i] = 0.0f;
    panel_dot<BITS, NT>(
        w, panel, tb, te, xr, ss, so,
        [&] {
          if (!staged_once) stage_scales();
        },
        [&] {
          if (staged_once) return;
          staged_once = true;
          cp_async_wait_all();
          __syncthreads();
        },
        tot);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      red[warp][g][nt * 8 + 2 * c] = tot[nt][0];
      red[warp][g][nt * 8 + 2 * c + 1] = tot[nt][1];
      red[warp][g + 8][nt * 8 + 2 * c] = tot[nt][2];
      red[warp][g + 8][nt * 8 + 2 * c + 1] = tot[nt][3];
    }
    __syncthreads();
    const int n_here = min(COLS, cnt - n0);
    for (int i = threadIdx.x; i < per_block * 16 * n_here; i += kWarps * 32) {
      const int q = i / (16 * n_here), r = (i / n_here) % 16, n = i % n_here;
      const int jo = blockIdx.x * per_block + q;
      if (jo >= n_out) continue;
      float s0 = 0.0f;
      for (int v = 0; v < uw; ++v) s0 += red[q * uw + v][r][n];
      const int64_t pos = pos0 + n0 + n;
      if constexpr (SILU) {
        float s1 = 0.0f;
        for (int v = 0; v < uw; ++v) s1 += red[kWarps / 2 + q * uw + v][r][n];
        p.act[pos * p.I + jo * 16 + r] = __float2bfloat16_rn(s0 / (1.0f + expf(-s0)) * s1);  // as moe_gemv.cu
      } else {
        p.y[pos * p.H + jo * 16 + r] = __float2bfloat16_rn(s0);
      }
    }
    __syncthreads();
  }
}

template <bool SILU>
void launch(const MoeQuantExpertParams& p, int nt, cudaStream_t stream) {
  const MoeQuantWeight& w = SILU ? p.gate_up : p.down;
  const int64_t P = int64_t{p.T} * p.k;
  // Warps per panel: each should stream about kDepth tiles (down at I = 768, int4: 6 tiles, so
  // one warp a panel and 8 panels a block; gate|up at H = 2048: 16 tiles, 4 warps a panel).
  const int max_uw = SILU ? kWarps / 2 : kWarps;
  int uw = 1;
  while (uw < max_uw && w.ktiles / (2 * uw) >= kDepth) uw *= 2;
  const int n_out = (SILU ? p.I : p.H) / 16, experts = static_cast<int>(P < p.E ? P : p.E);
  // Fewer warps a panel where the grid would take more than one wave of 2 blocks per SM.
  int sms = 0, dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  while (uw > 1 && static_cast<int64_t>((n_out + max_uw / uw - 1) / (max_uw / uw)) * experts > 2 * sms) uw /= 2;
  const int per_block = max_uw / uw;
  const dim3 grid((n_out + per_block - 1) / per_block, static_cast<unsigned>(experts));
  const size_t smem = static_cast<size_t>(SILU ? 2 : 1) * per_block * 2 * panel_scale_bytes(w);
  TLLM_CHECK(smem <= 160 * 1024, "moe_quant: ", w.groups, " scale groups per row are too many for shared memory");
  auto go = [&](auto kernel) {
    allow_dynamic_smem(kernel, smem);
    kernel<<<grid, kWarps * 32, smem, stream>>>(p, uw);
  };
  if (w.fp8) {
    if (nt == 1) go(moe_quant_gemv_kernel<kE4M3, 1, SILU>);
    else if (nt == 2) go(moe_quant_gemv_kernel<kE4M3, 2, SILU>);
    else go(moe_quant_gemv_kernel<kE4M3, 4, SILU>);
  } else if (w.bits == 4) {
    if (nt == 1) go(moe_quant_gemv_kernel<4, 1, SILU>);
    else if (nt == 2) go(moe_quant_gemv_kernel<4, 2, SILU>);
    else go(moe_quant_gemv_kernel<4, 4, SILU>);
  } else {
    if (nt == 1) go(moe_quant_gemv_kernel<8, 1, SILU>);
    else if (nt == 2) go(moe_quant_gemv_kernel<8, 2, SILU>);
    else go(moe_quant_gemv_kernel<8, 4, SILU>);
  }
  CUDA_CHECK_LAUNCH(SILU ? "moe_quant gate_up" : "moe_quant down");
}

}  // namespace

void moe_quant_experts_decode(const MoeQuantExpertParams& p, cudaStream_t stream) {
  // Any T: beyond kMoeQuantGemvMaxTokens only when TLLM_MOE_QUANT=decode forces it (tests, benchmarks).
  TLLM_CHECK(p.T >= 1, "moe_quant_experts_decode: T = ", p.T);
  TLLM_CHECK(p.I % 16 == 0 && p.H % 16 == 0, "moe_quant_experts_decode: H ", p.H, " and I ", p.I,
             " must be multiples of 16");
  // Routed experts are distinct per token, so an expert usually has at most T pairs (repeated
  // ids only take more passes of 8 NT tokens).
  const int nt = p.T <= 8 ? 1 : p.T <= 16 ? 2 : 4;
  launch<true>(p, nt, stream);
  launch<false>(p, nt, stream);
}

}  // namespace tllm::cuda
