// The MoE experts at decode (T <= kMoeGemvMaxTokens): a skinny grouped GEMM that reads each
// active expert's weights once, at streaming speed.
//
// grid.y walks the active experts (a fixed capacity min(E, T*k); blocks past the routed
// count exit), grid.x the expert's weight rows in tiles of 16. As in gemv.cu, every lane
// streams 16-byte loads of two weight rows (g and g+8, g = lane / 4) at k = 32 s + 8 (lane % 4),
// 2 x UNROLL steps in flight (mma_k_range), and feeds them to mma.m16n8k16 as the A operand with the tokens
// as B (any permutation of k is fine for a reduction as long as A and B agree); the 8 warps
// of a block split K and add up in shared memory. The B columns are the expert's pairs, up
// to 8 NT at a time (an expert gets at most T pairs from distinct per-token ids; more are
// handled by looping).
//   gated: a tile is 8 gate rows (lane rows g) and the 8 matching up rows (rows g + 8), so
//          act[pos, f] = silu(gate) * up is formed in the reduction; x rows by token.
//   down:  16 rows of down_e; act rows by position; y[pos, n].
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/moe_ops.h"

namespace tllm::cuda {
namespace {

constexpr int kWarps = 8;

struct GemvParams {
  const bf16* x;            // gated: x [T, K] by token; down: act [P, K] by position
  const bf16* w;            // expert e at w + e * w_expert_stride, rows of K
  int64_t w_expert_stride;
  int N;                    // gated: I; down: H
  int K;
  int up_offset;            // gated: I
  bf16* out;                // [P, N] by position
  const int32_t* offsets;   // [E+1]
  const int32_t* active;    // [n_active]
  const int32_t* counts;    // [0] = n_active
  const int32_t* sorted_pair;
  int top_k;
};

__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// acc[nt] += (rows w0, w1) . (B rows xr[nt]) over the 32-wide K steps [s_begin, s_end) of
// one lane (A: 16-byte chunks at k = 32 s + 8 t4 of the two weight rows; B: the same chunks
// of the token rows, zero where !xok). Register double buffering as in gemv.cu: the weight
// loads of group s + UNROLL are issued before the MMAs of group s, so 2 x 2 UNROLL loads per
// lane can be in flight; loads are unconditional (one outside K re-reads the row start and
// is zeroed) so that no branch separates them. pdl_wait() follows the first group's loads
// when `wait` (the weights never depend on the previous kernel; B may).
// PIPE = false: the loop of the kernel before the fused block (a group's A and B loads,
// guarded, then its MMAs; no second A buffer): at NT = 4 it needs ~100 registers, 2 blocks
// per SM, where the pipelined loop took 204 (152 unpipelined with unconditional
// ld_weight_u4 loads), one block per SM; batch 32 end to end lost ~20% on an H200 with it.
template <int NT, int UNROLL, bool B_CG, bool PIPE = true>
__device__ __forceinline__ void mma_k_range(float (&acc)[NT][4], const bf16* w0, const bf16* w1,
                                            const bf16* const (&xr)[NT], const bool (&xok)[NT], int s_begin,
                                            int s_end, int K, int t4, bool wait) {
  const uint4 zero = make_uint4(0, 0, 0, 0);
  auto in_range = [&](int su) { return su < s_end && 32 * su + 8 * t4 + 8 <= K; };
  if constexpr (!PIPE) {
    if (wait) pdl_wait();
    for (int s = s_begin; s < s_end; s += UNROLL) {
      uint4 a0[UNROLL], a1[UNROLL], b[UNROLL][NT];
      bool in[UNROLL];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        in[u] = in_range(s + u);
        a0[u] = in[u] ? ld_stream_u4(w0 + 32 * (s + u)) : zero;
        a1[u] = in[u] ? ld_stream_u4(w1 + 32 * (s + u)) : zero;
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const uint4* bp = reinterpret_cast<const uint4*>(xr[nt] + 32 * (s + u));
          b[u][nt] = (in[u] && xok[nt]) ? (B_CG ? __ldcg(bp) : __ldg(bp)) : zero;
        }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          mma_16816(acc[nt], a0[u].x, a1[u].x, a0[u].y, a1[u].y, b[u][nt].x, b[u][nt].y);
          mma_16816(acc[nt], a0[u].z, a1[u].z, a0[u].w, a1[u].w, b[u][nt].z, b[u][nt].w);
        }
    }
  } else {
    uint4 a0[UNROLL], a1[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      const int off = in_range(s_begin + u) ? 32 * (s_begin + u) : -8 * t4;
      a0[u] = ld_weight_u4(w0 + off);
      a1[u] = ld_weight_u4(w1 + off);
    }
    if (wait) pdl_wait();
    for (int s = s_begin; s < s_end; s += UNROLL) {
      uint4 b[UNROLL][NT];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const bool ok = in_range(s + u) && xok[nt];
          const uint4* bp = reinterpret_cast<const uint4*>(xr[nt] + (ok ? 32 * (s + u) : -8 * t4));
          b[u][nt] = B_CG ? __ldcg(bp) : __ldg(bp);
          if (!ok) b[u][nt] = zero;
        }
      uint4 n0[UNROLL], n1[UNROLL];
      const bool next = s + UNROLL < s_end;
      if (next) {
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
          const int off = in_range(s + UNROLL + u) ? 32 * (s + UNROLL + u) : -8 * t4;
          n0[u] = ld_weight_u4(w0 + off);
          n1[u] = ld_weight_u4(w1 + off);
        }
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        if (!in_range(s + u)) a0[u] = a1[u] = zero;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          mma_16816(acc[nt], a0[u].x, a1[u].x, a0[u].y, a1[u].y, b[u][nt].x, b[u][nt].y);
          mma_16816(acc[nt], a0[u].z, a1[u].z, a0[u].w, a1[u].w, b[u][nt].z, b[u][nt].w);
        }
      }
      if (next) {
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
          a0[u] = n0[u];
          a1[u] = n1[u];
        }
      }
    }
  }
}

// Two blocks per SM (<= 128 registers) at NT = 1 (the decode grid has ~6 blocks per SM) and
// NT = 4 (the unpipelined loop, T = 17..32).
template <int NT, bool GATED, int UNROLL>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 || NT == 4 ? 2 : 1)
    moe_gemv_kernel(const __grid_constant__ GemvParams p) {
  __shared__ float red[kWarps][16][NT * 8];
  // Launched with PDL on the fused path: the routing metadata comes from the previous
  // kernel(s). Dependents may launch once every block is past this wait (moe_down_combine
  // relies on it: the metadata is complete when it starts).
  pdl_wait();
  pdl_launch_dependents();
  const int slot = blockIdx.y;
  if (slot >= __ldcg(p.counts)) return;  // uniform over the block
  const int e = __ldcg(p.active + slot);
  const int seg0 = __ldcg(p.offsets + e);
  const int cnt = __ldcg(p.offsets + e + 1) - seg0;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t4 = lane & 3;

  int r0, r1;  // weight rows (within the expert) of this lane's A rows g and g + 8
  if constexpr (GATED) {
    const int f = min(static_cast<int>(blockIdx.x) * 8 + g, p.N - 1);
    r0 = f;
    r1 = p.up_offset + f;
  } else {
    const int n0 = blockIdx.x * 16;
    r0 = min(n0 + g, p.N - 1);
    r1 = min(n0 + g + 8, p.N - 1);
  }
  const bf16* we = p.w + static_cast<int64_t>(e) * p.w_expert_stride;
  const bf16* w0 = we + static_cast<int64_t>(r0) * p.K + 8 * t4;
  const bf16* w1 = we + static_cast<int64_t>(r1) * p.K + 8 * t4;

  const int steps = (p.K + 31) / 32;
  const int per_warp = (steps + kWarps - 1) / kWarps;
  const int s_begin = min(warp * per_warp, steps);
  const int s_end = min(s_begin + per_warp, steps);

  for (int c0 = 0; c0 < cnt; c0 += NT * 8) {
    const bf16* xr[NT];
    bool xok[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int tok = c0 + g + 8 * nt;
      xok[nt] = tok < cnt;
      int64_t row = 0;
      if (xok[nt]) row = GATED ? __ldcg(p.sorted_pair + seg0 + tok) / p.top_k : seg0 + tok;
      xr[nt] = p.x + row * p.K + 8 * t4;
    }
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;

    if (s_begin < s_end)
      mma_k_range<NT, UNROLL, false, (NT < 4)>(acc, w0, w1, xr, xok, s_begin, s_end, p.K, t4, false);

    // acc[nt]: {row g, col 2 t4}, {row g, col 2 t4 + 1}, {row g + 8, col 2 t4}, {row g + 8, col 2 t4 + 1};
    // column c of n-tile nt is pair c0 + 8 nt + c of the expert.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      red[warp][g][nt * 8 + 2 * t4] = acc[nt][0];
      red[warp][g][nt * 8 + 2 * t4 + 1] = acc[nt][1];
      red[warp][g + 8][nt * 8 + 2 * t4] = acc[nt][2];
      red[warp][g + 8][nt * 8 + 2 * t4 + 1] = acc[nt][3];
    }
    __syncthreads();
    const int n_tok = min(cnt - c0, NT * 8);
    constexpr int kRowsOut = GATED ? 8 : 16;
    for (int i = threadIdx.x; i < kRowsOut * n_tok; i += kWarps * 32) {
      const int r = i % kRowsOut, tok = i / kRowsOut;
      const int64_t pos = seg0 + c0 + tok;
      float v0 = 0.0f, v1 = 0.0f;
#pragma unroll
      for (int wi = 0; wi < kWarps; ++wi) {
        v0 += red[wi][r][tok];
        if constexpr (GATED) v1 += red[wi][r + 8][tok];
      }
      if constexpr (GATED) {
        const int f = blockIdx.x * 8 + r;
        if (f < p.N) p.out[pos * p.N + f] = __float2bfloat16_rn(v0 / (1.0f + expf(-v0)) * v1);
      } else {
        const int n = blockIdx.x * 16 + r;
        if (n < p.N) p.out[pos * p.N + n] = __float2bfloat16_rn(v0);
      }
    }
    __syncthreads();  // red is rewritten by the next chunk
  }
}

template <int NT, int UNROLL>
void launch_pair(const MoeExpertParams& p, const GemvParams& base, cudaStream_t stream) {
  const int slots = static_cast<int>(std::min<int64_t>(p.E, static_cast<int64_t>(p.T) * p.k));
  GemvParams g = base;
  g.x = p.x;
  g.w = p.gate_up;
  g.w_expert_stride = static_cast<int64_t>(2) * p.I * p.H;
  g.N = p.I;
  g.K = p.H;
  g.up_offset = p.I;
  g.out = p.act;
  moe_gemv_kernel<NT, true, UNROLL><<<dim3(ceil_div(p.I, 8), slots), kWarps * 32, 0, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemv gate_up");
  g.x = p.act;
  g.w = p.down;
  g.w_expert_stride = static_cast<int64_t>(p.H) * p.I;
  g.N = p.H;
  g.K = p.I;
  g.up_offset = 0;
  g.out = p.y;
  moe_gemv_kernel<NT, false, UNROLL><<<dim3(ceil_div(p.H, 16), slots), kWarps * 32, 0, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemv down");
}

// Fused down projection + combine (moe_ops.h, kernel 3): a block per 16 rows [n0, n0 + 16)
// of H over all active experts. Work items (active slot, K half) go round-robin to the 8
// warps; K is split in two when there are at most 4 active experts, so that every warp
// streams. A warp computes y[pair, n0 .. n0 + 15] of its expert's pairs with the gemv's
// mma.m16n8k16 scheme (16 down rows as A, the pairs' act rows as B) into shared memory;
// then thread (t, r) forms out[t, n0 + r] = sum_j w[t, j] bf16(y[t*k + j, r]) in j order
// (+ sigmoid(x[t] . g) shared_y[t, n0 + r]), the arithmetic of moe_combine.
// The routing metadata is read before pdl_wait: the previous kernel (gate|up) lets this one
// launch only after all its blocks passed their own wait, i.e. after the router finished.
// act, written by gate|up, is read after pdl_wait, through L2.

// kDownUnroll: 8 at NT = 1 (32 loads of 16 B in flight per lane: one block per SM at the
// 30B-A3B shape has to keep ~64 KB in flight), 4 at NT = 2 (registers).
template <int NT>
__global__ void __launch_bounds__(kWarps * 32) moe_down_combine_kernel(const __grid_constant__ MoeDecodeParams p) {
  constexpr int kMaxPairs = kMoeFusedMaxTokens * kMoeFusedMaxTopK;
  constexpr int kDownUnroll = NT == 1 ? 8 : 4;
  __shared__ float ys[2][kMaxPairs][16];  // [K half][pair][row]
  __shared__ float s_gate[kMoeFusedMaxTokens];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int n0 = blockIdx.x * 16, H = p.H, K = p.I, T = p.T, k = p.k;
  const int n_active = __ldcg(p.meta.counts);
  const int splits = 2 * n_active <= kWarps ? 2 : 1;
  const int steps = (K + 31) / 32;
  const int per_split = (steps + splits - 1) / splits;
  const int r0 = min(n0 + g, H - 1), r1 = min(n0 + g + 8, H - 1);

  bool waited = false;
  for (int item = warp; item < n_active * splits; item += kWarps) {
    const int slot = item / splits, half = item % splits;
    const int e = __ldcg(p.meta.active + slot);
    const int seg0 = __ldcg(p.meta.offsets + e);
    const int cnt = __ldcg(p.meta.offsets + e + 1) - seg0;  // <= T <= 8 NT: distinct tokens
    const bf16* we = p.down + static_cast<int64_t>(e) * H * K;
    const bf16* w0 = we + static_cast<int64_t>(r0) * K + 8 * t4;
    const bf16* w1 = we + static_cast<int64_t>(r1) * K + 8 * t4;
    const bf16* xr[NT];
    bool xok[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int tok = g + 8 * nt;
      xok[nt] = tok < cnt;
      xr[nt] = p.act + static_cast<int64_t>(seg0 + (xok[nt] ? tok : 0)) * K + 8 * t4;
    }
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;
    const int s_begin = half * per_split, s_end = min(steps, s_begin + per_split);
    // The first weight loads of the warp's first item go out before pdl_wait: act needs the
    // previous kernel, the weights do not.
    if (s_begin < s_end) {
      mma_k_range<NT, kDownUnroll, true>(acc, w0, w1, xr, xok, s_begin, s_end, K, t4, !waited);
      waited = true;
    }
    // acc[nt][c]: row g (c < 2) or g + 8, column 2 t4 + (c & 1) of n-tile nt = the expert's
    // pair seg0 + 8 nt + column.
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int col = nt * 8 + 2 * t4 + c;
        if (col < cnt) {
          const int pair = __ldcg(p.meta.sorted_pair + seg0 + col);
          ys[half][pair][g] = acc[nt][c];
          ys[half][pair][g + 8] = acc[nt][c + 2];
        }
      }
  }
  if (!waited) pdl_wait();
  pdl_launch_dependents();

  if (p.shared_y != nullptr)
    for (int t = warp; t < T; t += kWarps) {
      float d = 0.0f;
      for (int c = lane; c < H / 8; c += 32) {
        float f[8];
        bf16x8_to_f32(__ldcg(reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(t) * H + 8 * c)), f);
#pragma unroll
        for (int i = 0; i < 8; ++i) d += f[i] * p.shared_gate[8 * c + i];
      }
      d = warp_sum(d);
      if (lane == 0) s_gate[t] = 1.0f / (1.0f + expf(-d));
    }
  __syncthreads();
  for (int i = tid; i < T * 16; i += kWarps * 32) {
    const int t = i >> 4, r = i & 15, n = n0 + r;
    if (n >= H) continue;
    float acc = 0.0f;
    for (int j = 0; j < k; ++j) {
      const int pair = t * k + j;
      float y = ys[0][pair][r];
      if (splits == 2) y += ys[1][pair][r];
      acc += __bfloat162float(__float2bfloat16_rn(y)) * __ldcg(p.weights + pair);
    }
    if (p.shared_y != nullptr) {
      const unsigned short* sy_row = reinterpret_cast<const unsigned short*>(p.shared_y) + static_cast<int64_t>(t) * H;
      const unsigned short sy = __ldcg(sy_row + n);
      acc += s_gate[t] * __bfloat162float(__ushort_as_bfloat16(sy));
    }
    p.out[static_cast<int64_t>(t) * H + n] = __float2bfloat16_rn(acc);
  }
}

}  // namespace

void moe_decode_gate_up(const MoeDecodeParams& p, cudaStream_t stream) {
  TLLM_CHECK(moe_fused_supported(p.T, p.E, p.k), "moe_decode_gate_up: T = ", p.T, " outside the fused path");
  GemvParams g{};
  g.x = p.x;
  g.w = p.gate_up;
  g.w_expert_stride = static_cast<int64_t>(2) * p.I * p.H;
  g.N = p.I;
  g.K = p.H;
  g.up_offset = p.I;
  g.out = p.act;
  g.offsets = p.meta.offsets;
  g.active = p.meta.active;
  g.counts = p.meta.counts;
  g.sorted_pair = p.meta.sorted_pair;
  g.top_k = p.k;
  const dim3 grid(ceil_div(p.I, 8), std::min(p.E, p.T * p.k)), block(kWarps * 32);
  if (p.T <= 8) launch_pdl(moe_gemv_kernel<1, true, 4>, grid, block, 0, stream, g);
  else launch_pdl(moe_gemv_kernel<2, true, 4>, grid, block, 0, stream, g);
  CUDA_CHECK_LAUNCH("moe_decode_gate_up");
}

void moe_decode_down_combine(const MoeDecodeParams& p, cudaStream_t stream) {
  TLLM_CHECK(moe_fused_supported(p.T, p.E, p.k), "moe_decode_down_combine: T = ", p.T, " outside the fused path");
  TLLM_CHECK(p.H % 8 == 0 && p.I % 8 == 0, "moe_decode_down_combine: H and I must be multiples of 8");
  TLLM_CHECK((p.shared_y == nullptr) == (p.shared_gate == nullptr),
             "moe_decode_down_combine: shared_y and shared_gate go together");
  const dim3 grid(ceil_div(p.H, 16)), block(kWarps * 32);
  if (p.T <= 8) launch_pdl(moe_down_combine_kernel<1>, grid, block, 0, stream, p);
  else launch_pdl(moe_down_combine_kernel<2>, grid, block, 0, stream, p);
  CUDA_CHECK_LAUNCH("moe_decode_down_combine");
}

void moe_experts_decode(const MoeExpertParams& p, cudaStream_t stream) {
  TLLM_CHECK(p.T >= 1 && p.T <= kMoeGemvMaxTokens, "moe decode path: T = ", p.T, " outside [1, ",
             kMoeGemvMaxTokens, "]");
  GemvParams base{};
  base.offsets = p.meta.offsets;
  base.active = p.meta.active;
  base.counts = p.meta.counts;
  base.sorted_pair = p.meta.sorted_pair;
  base.top_k = p.k;
  if (p.T <= 8) launch_pair<1, 4>(p, base, stream);
  else if (p.T <= 16) launch_pair<2, 4>(p, base, stream);
  else launch_pair<4, 4>(p, base, stream);
}

}  // namespace tllm::cuda
