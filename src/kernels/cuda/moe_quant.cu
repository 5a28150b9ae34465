// Quantized (int8 / int4) experts on the decode path (moe_ops.h, moe_quant_experts_decode):
// the grouping of moe_align, then two kernels that read only the active experts' codes:
//   gate|up  a block per (16 features, active expert): warps 0-3 the gate panel, 4-7 the up
//            panel, each a quarter of the k tiles; act[pos] = silu(gate) * up for the
//            expert's pairs (positions [offsets[e], offsets[e + 1]) of moe_align)
//   down     a block per (16 rows of H, active expert), 8 warps splitting the k tiles:
//            y[pos] = act[pos] down_e^T
// then moe_combine, as for bf16 experts. The codes are in the CUDA layout of
// kernels/quant_layout.h (16-row panels, 1024-byte k tiles in mma.m16n8k16 fragment order),
// and the arithmetic is quant_gemv's (quant_ops.h): a code enters the MMA as the exact bf16
// integer q + C, and per scale segment
//   out += scale * acc + (offset - C * scale) * X,   X = sum of x over the segment
// (X from an MMA with an all-ones A). An expert's rows are whole panels of the stacked weight
// (2I and H multiples of 16), so expert e's gate panel j is panel e 2I / 16 + j.
// Tokens of one expert go 8 NT at a time (NT = 1, 2 or 4 tiles of 8 tokens, from T); token
// columns past the expert's count read its first pair's row and are never stored.
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/quant_common.cuh"

namespace tllm::cuda {
namespace {

using namespace qk;

constexpr int kWarps = 8;
constexpr int kDepth = 4;  // k tiles of codes in flight per lane (a register ring)

// Scale or offset i of a panel's [groups][16] block.
__device__ __forceinline__ float scale_at(const void* base, bool f16, int64_t i) {
  return f16 ? __half2float(__ldg(reinterpret_cast<const __half*>(base) + i)) : __ldg(reinterpret_cast<const float*>(base) + i);
}

// One warp's part of a panel: tiles [tb, te) of panel `panel` of w against the x rows xr[nt]
// (lane column c = lane % 4 already added), summed into tot[nt] ({row g, token 2c}, {row g,
// token 2c + 1}, {row g + 8, token 2c}, {row g + 8, token 2c + 1} of n tile nt).
template <int BITS, int NT>
__device__ __forceinline__ void panel_dot(const MoeQuantWeight& w, int64_t panel, int tb, int te,
                                          const uint32_t* (&xr)[NT], float (&tot)[NT][4]) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16;
  constexpr float C = BITS == 4 ? 128.0f : 2176.0f;
  const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const uint8_t* wp = w.codes + panel * w.ktiles * 1024 + 16 * lane;
  const int64_t sbase = panel * w.groups * 16;
  uint4 ring[kDepth][2];
#pragma unroll
  for (int s = 0; s < kDepth; ++s)
    if (tb + s < te) {
      ring[s][0] = ld_weight_u4(wp + (tb + s) * 1024);
      ring[s][1] = ld_weight_u4(wp + (tb + s) * 1024 + 512);
    }
  float acc[NT][4], accx[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = accx[nt][i] = 0.0f;
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
      const bool tail = (kt + 1) * TILE > w.K;  // the last tile of a K that is not a multiple of TILE
#pragma unroll
      for (int m = 0; m < STEPS; ++m) {
        const int k = kt * TILE + 16 * m;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const uint32_t* xp = xr[nt] + k / 2;
          const uint32_t b0 = !tail || k + 2 * c < w.K ? __ldg(xp) : 0u;
          const uint32_t b1 = !tail || k + 2 * c + 8 < w.K ? __ldg(xp + 4) : 0u;
          mma_codes<BITS>(acc[nt], lo, hi, m, b0, b1);
          mma16816(accx[nt], kOnes, kOnes, kOnes, kOnes, b0, b1);
        }
        // A scale segment ends at a group's end or the tile's (group_size is a multiple of 16).
        if ((k + 16) % w.group_size == 0 || m == STEPS - 1) {
          const int grp = w.groups == 1 ? 0 : min(k / w.group_size, w.groups - 1);
          const int64_t i0 = sbase + grp * 16 + g;
          const float sg = scale_at(w.scales, w.scales_f16, i0), sh = scale_at(w.scales, w.scales_f16, i0 + 8);
          const float og = scale_at(w.offsets, w.scales_f16, i0) - C * sg;
          const float oh = scale_at(w.offsets, w.scales_f16, i0 + 8) - C * sh;
#pragma unroll
          for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              tot[nt][i] += (i < 2 ? sg : sh) * acc[nt][i] + (i < 2 ? og : oh) * accx[nt][i];
              acc[nt][i] = accx[nt][i] = 0.0f;
            }
        }
      }
    }
  }
}

// SILU: the gate|up kernel (K = H, x = the tokens' rows, out = act [P, I]); else the down
// kernel (K = I, x = act by position, out = y [P, H]). grid = (panels of one expert's output
// (I / 16 or H / 16), active-expert capacity).
template <int BITS, int NT, bool SILU>
__global__ void __launch_bounds__(kWarps * 32) moe_quant_gemv_kernel(const __grid_constant__ MoeQuantExpertParams p) {
  constexpr int COLS = NT * 8;
  __shared__ float red[kWarps][16][COLS + 1];
  const int a = blockIdx.y;
  if (a >= p.meta.counts[0]) return;
  const int e = p.meta.active[a];
  const int pos0 = p.meta.offsets[e], cnt = p.meta.offsets[e + 1] - pos0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const MoeQuantWeight& w = SILU ? p.gate_up : p.down;
  const int K = SILU ? p.H : p.I;
  const int wpp = SILU ? kWarps / 2 : kWarps;  // warps per panel
  const int wk = warp % wpp;
  const int64_t panel = SILU ? (int64_t{e} * 2 * p.I + (warp / wpp) * p.I) / 16 + blockIdx.x
                             : int64_t{e} * p.H / 16 + blockIdx.x;
  const int tb = wk * w.ktiles / wpp, te = (wk + 1) * w.ktiles / wpp;
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
    panel_dot<BITS, NT>(w, panel, tb, te, xr, tot);
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      red[warp][g][nt * 8 + 2 * c] = tot[nt][0];
      red[warp][g][nt * 8 + 2 * c + 1] = tot[nt][1];
      red[warp][g + 8][nt * 8 + 2 * c] = tot[nt][2];
      red[warp][g + 8][nt * 8 + 2 * c + 1] = tot[nt][3];
    }
    __syncthreads();
    const int n_here = min(COLS, cnt - n0);
    for (int i = threadIdx.x; i < 16 * n_here; i += kWarps * 32) {
      const int r = i / n_here, n = i % n_here;
      float s0 = 0.0f;
      for (int v = 0; v < wpp; ++v) s0 += red[v][r][n];
      const int64_t pos = pos0 + n0 + n;
      if constexpr (SILU) {
        float s1 = 0.0f;
        for (int v = wpp; v < kWarps; ++v) s1 += red[v][r][n];
        p.act[pos * p.I + blockIdx.x * 16 + r] = __float2bfloat16_rn(s0 / (1.0f + expf(-s0)) * s1);  // as moe_gemv.cu
      } else {
        p.y[pos * p.H + blockIdx.x * 16 + r] = __float2bfloat16_rn(s0);
      }
    }
    __syncthreads();
  }
}

template <bool SILU>
void launch(const MoeQuantExpertParams& p, int nt, cudaStream_t stream) {
  const MoeQuantWeight& w = SILU ? p.gate_up : p.down;
  const int64_t P = int64_t{p.T} * p.k;
  const dim3 grid((SILU ? p.I : p.H) / 16, static_cast<unsigned>(P < p.E ? P : p.E));
  auto go = [&](auto kernel) { kernel<<<grid, kWarps * 32, 0, stream>>>(p); };
  if (w.bits == 4) {
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
  TLLM_CHECK(p.T >= 1 && p.T <= kMoeQuantGemvMaxTokens, "moe_quant_experts_decode: T = ", p.T);
  TLLM_CHECK(p.I % 16 == 0 && p.H % 16 == 0, "moe_quant_experts_decode: H ", p.H, " and I ", p.I,
             " must be multiples of 16");
  // Routed experts are distinct per token, so an expert usually has at most T pairs (repeated
  // ids only take more passes of 8 NT tokens).
  const int nt = p.T <= 8 ? 1 : p.T <= 16 ? 2 : 4;
  launch<true>(p, nt, stream);
  launch<false>(p, nt, stream);
}

}  // namespace tllm::cuda
