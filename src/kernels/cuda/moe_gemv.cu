// The MoE experts at decode (T <= kMoeGemvMaxTokens): a skinny grouped GEMM that reads each
// active expert's weights once, at streaming speed.
//
// grid.y walks the active experts (a fixed capacity min(E, T*k); blocks past the routed
// count exit), grid.x the expert's weight rows in tiles of 16. As in gemv.cu, every lane
// streams 16-byte loads of two weight rows (g and g+8, g = lane / 4) at k = 32 s + 8 (lane % 4),
// UNROLL steps in flight, and feeds them to mma.m16n8k16 as the A operand with the tokens
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
constexpr int kUnroll = 4;

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

template <int NT, bool GATED>
__global__ void __launch_bounds__(kWarps * 32) moe_gemv_kernel(const __grid_constant__ GemvParams p) {
  __shared__ float red[kWarps][16][NT * 8];
  const int slot = blockIdx.y;
  if (slot >= p.counts[0]) return;  // uniform over the block
  const int e = p.active[slot];
  const int seg0 = p.offsets[e];
  const int cnt = p.offsets[e + 1] - seg0;
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
  const uint4 zero = make_uint4(0, 0, 0, 0);

  for (int c0 = 0; c0 < cnt; c0 += NT * 8) {
    const bf16* xr[NT];
    bool xok[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int tok = c0 + g + 8 * nt;
      xok[nt] = tok < cnt;
      int64_t row = 0;
      if (xok[nt]) row = GATED ? p.sorted_pair[seg0 + tok] / p.top_k : seg0 + tok;
      xr[nt] = p.x + row * p.K + 8 * t4;
    }
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;

    for (int s = s_begin; s < s_end; s += kUnroll) {
      uint4 a0[kUnroll], a1[kUnroll], b[kUnroll][NT];
      bool in[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int su = s + u;
        in[u] = su < s_end && 32 * su + 8 * t4 + 8 <= p.K;
        a0[u] = in[u] ? ld_stream_u4(w0 + 32 * su) : zero;
        a1[u] = in[u] ? ld_stream_u4(w1 + 32 * su) : zero;
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
          b[u][nt] = (in[u] && xok[nt]) ? __ldg(reinterpret_cast<const uint4*>(xr[nt] + 32 * (s + u))) : zero;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          mma_16816(acc[nt], a0[u].x, a1[u].x, a0[u].y, a1[u].y, b[u][nt].x, b[u][nt].y);
          mma_16816(acc[nt], a0[u].z, a1[u].z, a0[u].w, a1[u].w, b[u][nt].z, b[u][nt].w);
        }
    }

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

template <int NT>
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
  moe_gemv_kernel<NT, true><<<dim3(ceil_div(p.I, 8), slots), kWarps * 32, 0, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemv gate_up");
  g.x = p.act;
  g.w = p.down;
  g.w_expert_stride = static_cast<int64_t>(p.H) * p.I;
  g.N = p.H;
  g.K = p.I;
  g.up_offset = 0;
  g.out = p.y;
  moe_gemv_kernel<NT, false><<<dim3(ceil_div(p.H, 16), slots), kWarps * 32, 0, stream>>>(g);
  CUDA_CHECK_LAUNCH("moe_gemv down");
}

}  // namespace

void moe_experts_decode(const MoeExpertParams& p, cudaStream_t stream) {
  TLLM_CHECK(p.T >= 1 && p.T <= kMoeGemvMaxTokens, "moe decode path: T = ", p.T, " outside [1, ",
             kMoeGemvMaxTokens, "]");
  GemvParams base{};
  base.offsets = p.meta.offsets;
  base.active = p.meta.active;
  base.counts = p.meta.counts;
  base.sorted_pair = p.meta.sorted_pair;
  base.top_k = p.k;
  if (p.T <= 8) launch_pair<1>(p, base, stream);
  else if (p.T <= 16) launch_pair<2>(p, base, stream);
  else launch_pair<4>(p, base, stream);
}

}  // namespace tllm::cuda
