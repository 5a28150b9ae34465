// Skinny GEMM for decode: out[T, N] = x[T, K] @ W[N, K]^T (+ bias) for T <= 32.
//
// Batch-1..32 decode is bound by streaming W once from HBM, so the kernel is built around
// the weight loads: each warp owns a 16-row tile of W and a contiguous range of K; every
// lane issues 16-byte streaming loads (L1 bypassed) of rows g and g+8 (g = lane/4) at
// k = 32s + 8*(lane%4), UNROLL steps in flight before the first use. Those registers are fed
// to mma.sync m16n8k16 as the A operand (16 rows x 16 k) with x as B (16 k x 8 tokens): K is
// a reduction, so any permutation of k works as long as A and B agree, which lets each
// lane's 16 contiguous bytes serve two MMAs (elements 0-3, then 4-7). T <= 8 uses one
// n-tile, T <= 16 two, T <= 32 four. The warps of a block split K and sum their 16 x T
// partials in shared memory, so no global workspace and no second launch. Tensor cores keep
// the math far below the load time (one MMA per 512 bytes of W per warp), even at T = 32.
//
// SILU variant (the MLP's gate|up projection, W = [gate (I rows) | up (I rows)]): block b
// takes gate rows 8b..8b+7 as the tile's rows 0-7 and the matching up rows I+8b.. as rows
// 8-15, so after the K reduction the block holds both halves of 8 intermediate features and
// writes act = silu(gate) * up [T, I] directly, with the bf16 roundings of gemv + silu_mul.
// The gate_up activations never go through global memory and one launch per layer goes.
// (Fusing the activation into the down projection's operand loads instead was measured
// 40 us per 7B layer slower on an H200: every block recomputed all of it.)
//
// NORM variant (T <= 4): the last block to finish runs the residual add + RMSNorm that
// follows the projection in the decoder (gemv_last_block_norm in rms_norm_row.cuh: the bits
// of the add_rms_norm kernel; rows up to 1,024 wide a warp each); the next kernel's
// griddepcontrol.wait sees the finished grid.
//
// ROPE variant (the attention's q|k|v projection, no q/k norms): a block of a q or k
// head takes dims 8j..8j+7 of the head as the tile's rows 0-7 and their RoPE partners
// D/2+8j.. as rows 8-15 (the rows of W need not be adjacent: each is its own stream), so
// after the K reduction it rotates its pairs and writes q and k, and k and v to their cache
// slots, with the bits of gemv + qk_norm_rope_kv_write; the separate rotation kernel, ~1.7
// us of a 7B layer's chain (H200 run 98), goes. The positions' cos / sin and the cache
// slots are read before griddepcontrol.wait: they are uploaded before the step's embedding,
// which is not launched with PDL, so every kernel after it starts after they landed.
#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/gemv_variants.h"
#include "kernels/cuda/rms_norm_row.cuh"

namespace tllm::cuda {
namespace {

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                               uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <bool HINT>
__device__ __forceinline__ uint4 ld_w(const bf16* p) {
  uint4 r;
  if constexpr (HINT) {
    r = ld_weight_u4(p);
  } else {
    r = ld_stream_u4(p);
  }
  return r;
}

template <int NT>
__device__ __forceinline__ void mma_step(float (&acc)[NT][4], const uint4& a0, const uint4& a1,
                                         const uint4 (&b)[NT]) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mma_bf16_16816(acc[nt], a0.x, a1.x, a0.y, a1.y, b[nt].x, b[nt].y);
    mma_bf16_16816(acc[nt], a0.z, a1.z, a0.w, a1.w, b[nt].z, b[nt].w);
  }
}

template <typename OutT>
__device__ __forceinline__ void store_out(OutT* out, float v);
template <> __device__ __forceinline__ void store_out<float>(float* out, float v) { *out = v; }
template <> __device__ __forceinline__ void store_out<bf16>(bf16* out, float v) {
  *out = __float2bfloat16_rn(v);
}

// The K sum of the block's row `row` for token tok, over its warps in order, plus its bias.
template <int WARPS, int COLS>
__device__ __forceinline__ float row_sum(const float (&red)[WARPS][16][COLS], bool has_bias, const float* bias_s,
                                         int row, int tok) {
  float v = 0.0f;
#pragma unroll
  for (int wi = 0; wi < WARPS; ++wi) v += red[wi][row][tok];
  if (has_bias) v += bias_s[row];
  return v;
}

// The same for rows `row` and `row + 8`: the SILU (gate, up) and ROPE (d, d + D/2) row pairs.
template <int WARPS, int COLS>
__device__ __forceinline__ void row_pair_sums(const float (&red)[WARPS][16][COLS], bool has_bias, const float* bias_s,
                                              int row, int tok, float& a, float& b) {
  a = 0.0f;
  b = 0.0f;
#pragma unroll
  for (int wi = 0; wi < WARPS; ++wi) {
    a += red[wi][row][tok];
    b += red[wi][row + 8][tok];
  }
  if (has_bias) {
    a += bias_s[row];
    b += bias_s[8 + row];
  }
}

// grid.x = ceil(N / 16) (SILU: ceil(N / 2 / 8)); block = WARPS warps. bias_kind: 0 none, 1 f32, 2 bf16.
template <int NT, int WARPS, int UNROLL, bool HINT, typename OutT, bool SILU = false, bool NORM = false,
          bool ROPE = false, bool XPF = false>
__global__ void __launch_bounds__(WARPS * 32)
    gemv_mma_kernel(OutT* __restrict__ out, const bf16* __restrict__ x, const bf16* __restrict__ w,
                    const void* __restrict__ bias, int bias_kind, int T, int N, int K, const GemvNorm norm,
                    const QkNormRopeParams rope) {
  static_assert(!ROPE || (std::is_same_v<OutT, bf16> && !SILU && !NORM), "ROPE: bf16 q|k|v alone");
  __shared__ float red[WARPS][16][NT * 8];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t4 = lane & 3;
  // SILU: N counts gate|up rows (2 I); this block's 16 rows are 8 gate rows and their up rows.
  const int I = N / 2;
  // ROPE: blocks [0, (n_q + n_kv) D / 16) rotate (`rot`): head `head`, dims n0 - head D + [0, 8)
  // and their partners half later; the v heads' blocks are plain 16-row panels.
  const int D = ROPE ? rope.head_dim : 0, half = D / 2;
  const bool rot = ROPE && static_cast<int>(blockIdx.x) < (rope.n_q_heads + rope.n_kv_heads) * (D / 16);
  const int head = rot ? blockIdx.x / (D / 16) : 0;
  const int n0 = SILU ? blockIdx.x * 8 : rot ? head * D + 8 * (blockIdx.x % (D / 16)) : blockIdx.x * 16;
  const int r0 = SILU ? min(n0 + g, I - 1) : min(n0 + g, N - 1);
  const int r1 = SILU ? I + r0 : rot ? r0 + half : min(n0 + g + 8, N - 1);
  const bf16* w0 = w + static_cast<int64_t>(r0) * K + 8 * t4;
  const bf16* w1 = w + static_cast<int64_t>(r1) * K + 8 * t4;
  const bf16* xr[NT];
  bool xok[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int tok = g + 8 * nt;
    xok[nt] = tok < T;
    xr[nt] = x + static_cast<int64_t>(xok[nt] ? tok : 0) * K + 8 * t4;
  }

  const int steps = (K + 31) / 32;
  // Whole groups of UNROLL steps per warp where K allows: steps past a warp's last group
  // were loaded one at a time after it, a round trip each at the tail of the critical path
  // (7B o_proj: 112 steps over 8 warps are now 7 x 16, not 8 x 14 = 3 groups + 2 single
  // steps; down 7 x 76 + 60, not 8 x 74). H200 run 116: 7B tg b1 247.9 -> 249.7 tok/s,
  // 1.5B b8 +4%, 0.5B b8 +2.5%; shapes whose split was already whole groups are unchanged.
  const int per_warp = (((steps + WARPS - 1) / WARPS) + UNROLL - 1) / UNROLL * UNROLL;
  const int s_begin = min(warp * per_warp, steps);
  const int s_end = min(s_begin + per_warp, steps);
  const int full_end = min(s_end, K / 32);  // steps with all 32 k present

  float acc[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;

  // Register double buffering: the loads of group s + UNROLL are issued before the MMAs of
  // group s, so 2 x UNROLL x 2 loads per lane stay in flight. The first group of weight loads
  // precedes pdl_wait(): W does not depend on the previous kernel, x does.
  // The dependent is launched here (at entry), except behind the rotation above 8 tokens when
  // the host asks for it (rope.release_at_entry false: heads wider than 64): the attention
  // that follows it, launched at entry, took 3.5 us more per 1.5B layer at batch 32 (H200 run
  // 172: its early K/V loads and resident blocks beside the whole GEMV), while 0.5B (64-wide
  // heads) gained (run 171); those blocks launch it after their epilogue.
  const bool late_release = ROPE && NT > 1 && !rope.release_at_entry;
  if (!late_release) pdl_launch_dependents();
  int s = s_begin;
  uint4 a0[UNROLL], a1[UNROLL];
  bool have = s + UNROLL <= full_end;
  if (have) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      a0[u] = ld_w<HINT>(w0 + 32 * (s + u));
      a1[u] = ld_w<HINT>(w1 + 32 * (s + u));
    }
  }
  // The block's 16 bias values, fetched before the wait: read in the epilogue they would be
  // a DRAM round trip (evicted by the weight stream) at the end of the critical path.
  __shared__ float bias_s[16];
  if (bias_kind != 0 && threadIdx.x < 16) {
    const int r = threadIdx.x;
    const int n = SILU ? (r < 8 ? n0 + r : I + n0 + r - 8) : rot ? n0 + (r & 7) + (r < 8 ? 0 : half) : n0 + r;
    const bool ok = SILU ? n0 + (r & 7) < I : n < N;
    bias_s[r] = !ok ? 0.0f
                    : bias_kind == 1 ? static_cast<const float*>(bias)[n]
                                     : __bfloat162float(static_cast<const bf16*>(bias)[n]);
  }
  // ROPE: each token's cos / sin of the block's 8 dims and its cache slot, also before the
  // wait (see the top of the file for why they are ready).
  __shared__ float cs_s[ROPE ? NT * 8 : 1][8][2];
  __shared__ int64_t slot_s[ROPE ? NT * 8 : 1];
  if constexpr (ROPE && NT == 1) {
    const int i = static_cast<int>(threadIdx.x) - 16;
    if (rot && i >= 0 && i < 8 * T) {
      const int tok = i >> 3, d = n0 - head * D + (i & 7);
      const float* cs = rope.cos_sin + static_cast<int64_t>(rope.rope_rows[tok]) * D;
      cs_s[tok][i & 7][0] = cs[d];
      cs_s[tok][i & 7][1] = cs[half + d];
    } else if (i >= 64 && i < 64 + T) {
      slot_s[i - 64] = cache_slot(rope, i - 64);
    }
  } else if constexpr (ROPE) {  // up to 8 x 32 cos / sin pairs and 32 slots: more than a thread each
    for (int i = threadIdx.x; i < 9 * T; i += WARPS * 32) {
      if (i < 8 * T) {
        if (rot) {
          const int tok = i >> 3, d = n0 - head * D + (i & 7);
          const float* cs = rope.cos_sin + static_cast<int64_t>(rope.rope_rows[tok]) * D;
          cs_s[tok][i & 7][0] = cs[d];
          cs_s[tok][i & 7][1] = cs[half + d];
        }
      } else {
        slot_s[i - 8 * T] = cache_slot(rope, i - 8 * T);
      }
    }
  }
  pdl_wait();
  // x for a group: XPF loads the next group's x with its weights (one group ahead, as W)
  // instead of at the top of each group.
  // kAddrFirst (kernels that load x at each group, up to 8 warps: one token, and 9..32 tokens
  // in 8-warp blocks): the same loads written as `!ok ? 0 : load(p)` with the address computed
  // first. Same values; nvcc then compiles a group of the 7B gate|up loop in 126 instructions
  // instead of 136, with its x loads issued 14 instructions in instead of 27
  // (docs/measurements/run199/silu_t1_loop_sass.txt). H200, alternated on one card: 7B tg b1
  // 250.3 -> 257.7 tok/s (+2.9%, run 200), Qwen3-8B +0.5%, the stack-kernel shapes level; 7B
  // b12 / b16 +2.3% (run 201), b32 and 0.5B / 1.5B at 12..32 level. The kernels with x a group
  // ahead keep the other form: in them this one cost 7B b8 2.5% (1,974.8 -> 1,925.8, run 199).
  constexpr bool kAddrFirst = !XPF && WARPS <= 8;
  uint4 b[UNROLL][NT];
  auto load_x = [&](uint4 (&dst)[UNROLL][NT], int s0) {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if constexpr (kAddrFirst) {
          const uint4* p = reinterpret_cast<const uint4*>(xr[nt] + 32 * (s0 + u));
          dst[u][nt] = !xok[nt] ? make_uint4(0, 0, 0, 0) : __ldg(p);
        } else {
          dst[u][nt] = xok[nt] ? __ldg(reinterpret_cast<const uint4*>(xr[nt] + 32 * (s0 + u))) : make_uint4(0, 0, 0, 0);
        }
      }
  };
  if constexpr (XPF) {
    if (have) load_x(b, s);
  }
  while (have) {
    if constexpr (!XPF) load_x(b, s);
    const bool next = s + 2 * UNROLL <= full_end;
    uint4 n0[UNROLL], n1[UNROLL];
    uint4 bn[UNROLL][NT];
    if (next) {
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        n0[u] = ld_w<HINT>(w0 + 32 * (s + UNROLL + u));
        n1[u] = ld_w<HINT>(w1 + 32 * (s + UNROLL + u));
      }
      if constexpr (XPF) load_x(bn, s + UNROLL);
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) mma_step<NT>(acc, a0[u], a1[u], b[u]);
    s += UNROLL;
    have = next;
    if (next) {
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        a0[u] = n0[u];
        a1[u] = n1[u];
        if constexpr (XPF) {
#pragma unroll
          for (int nt = 0; nt < NT; ++nt) b[u][nt] = bn[u][nt];
        }
      }
    }
  }
  // What is left: the last, partial step (K % 32 != 0), or all of a warp's steps when it has
  // fewer than UNROLL full ones; loaded UNROLL at a time, then summed in step order.
  while (s < s_end) {
    const int cnt = min(UNROLL, s_end - s);
    const uint4 z = make_uint4(0, 0, 0, 0);
    uint4 ra0[UNROLL], ra1[UNROLL], rb[UNROLL][NT];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      if (u < cnt) {
        const bool in = 32 * (s + u) + 8 * t4 + 8 <= K;
        ra0[u] = in ? ld_w<HINT>(w0 + 32 * (s + u)) : z;
        ra1[u] = in ? ld_w<HINT>(w1 + 32 * (s + u)) : z;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          if constexpr (kAddrFirst) {
            const uint4* p = reinterpret_cast<const uint4*>(xr[nt] + 32 * (s + u));
            rb[u][nt] = !(in && xok[nt]) ? z : __ldg(p);
          } else {
            rb[u][nt] = (in && xok[nt]) ? __ldg(reinterpret_cast<const uint4*>(xr[nt] + 32 * (s + u))) : z;
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
      if (u < cnt) mma_step<NT>(acc, ra0[u], ra1[u], rb[u]);
    s += cnt;
  }

  // acc[nt]: {row g, tok 2t}, {row g, tok 2t+1}, {row g+8, tok 2t}, {row g+8, tok 2t+1}
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    red[warp][g][nt * 8 + 2 * t4] = acc[nt][0];
    red[warp][g][nt * 8 + 2 * t4 + 1] = acc[nt][1];
    red[warp][g + 8][nt * 8 + 2 * t4] = acc[nt][2];
    red[warp][g + 8][nt * 8 + 2 * t4 + 1] = acc[nt][3];
  }
  __syncthreads();
  if constexpr (ROPE) {
    const int nq = rope.n_q_heads, nkv = rope.n_kv_heads;
    if (rot) {
      // Rows 0-7: dims d of the head, rows 8-15: d + D/2. bf16 between the projection and the
      // rotation, as the unfused ops.
      bf16* k_cache = head >= nq ? rope.k_cache + static_cast<int64_t>(head - nq) * D : nullptr;
      for (int i = threadIdx.x; i < 8 * T; i += WARPS * 32) {
        const int row = i & 7, tok = i >> 3;
        float v1, v2;
        row_pair_sums(red, bias_kind != 0, bias_s, row, tok, v1, v2);
        float y1, y2;
        rope_rotate(round_bf16(v1), round_bf16(v2), cs_s[tok][row][0], cs_s[tok][row][1], y1, y2);
        const bf16 b1 = __float2bfloat16_rn(y1), b2 = __float2bfloat16_rn(y2);
        const int n = n0 + row;
        out[static_cast<int64_t>(tok) * N + n] = b1;
        out[static_cast<int64_t>(tok) * N + n + half] = b2;
        const int64_t slot = slot_s[tok];
        if (k_cache && slot >= 0) {
          bf16* c = k_cache + slot * nkv * D + (n - head * D);
          c[0] = b1;
          c[half] = b2;
        }
      }
    } else {
      // v rows: 16 of one head (D % 16 == 0), to qkv and to the v cache.
      const int vh = n0 / D - nq - nkv;
      for (int i = threadIdx.x; i < 16 * T; i += WARPS * 32) {
        const int row = i & 15, tok = i >> 4;
        const int n = n0 + row;
        const bf16 b = __float2bfloat16_rn(row_sum(red, bias_kind != 0, bias_s, row, tok));
        out[static_cast<int64_t>(tok) * N + n] = b;
        const int64_t slot = slot_s[tok];
        if (slot >= 0) rope.v_cache[(slot * nkv + vh) * D + (n - n0 / D * D)] = b;
      }
    }
    if (late_release) pdl_launch_dependents();
    return;
  } else if constexpr (SILU) {
    for (int i = threadIdx.x; i < 8 * T; i += WARPS * 32) {
      const int row = i & 7, tok = i >> 3;
      const int n = n0 + row;
      if (n >= I) continue;
      float gv, uv;
      row_pair_sums(red, bias_kind != 0, bias_s, row, tok, gv, uv);
      gv = round_bf16(gv);  // gate_up is bf16 between the two ops of the unfused path
      uv = round_bf16(uv);
      store_out<OutT>(out + static_cast<int64_t>(tok) * I + n, silu_f32(gv) * uv);
    }
    return;
  } else {
    for (int i = threadIdx.x; i < 16 * T; i += WARPS * 32) {
      const int row = i & 15, tok = i >> 4;
      const int n = n0 + row;
      if (n >= N) continue;
      store_out<OutT>(out + static_cast<int64_t>(tok) * N + n, row_sum(red, bias_kind != 0, bias_s, row, tok));
    }
  }
  if constexpr (NORM) {
    static_assert(std::is_same_v<OutT, bf16>, "the fused norm reads bf16 outputs");
    gemv_last_block_norm(norm, out, T, N);
  }
}

template <int V>
using IntC = std::integral_constant<int, V>;
template <bool V>
using BoolC = std::integral_constant<bool, V>;

template <int NT, int WARPS, int UNROLL, bool HINT, typename OutT, bool SILU = false, bool NORM = false,
          bool ROPE = false, bool XPF = false>
void launch_t(void* out, const bf16* x, const bf16* w, const void* bias, int bias_kind, int T, int N,
              int K, cudaStream_t stream, const GemvNorm& norm = {}, const QkNormRopeParams& rope = {}) {
  launch_pdl(gemv_mma_kernel<NT, WARPS, UNROLL, HINT, OutT, SILU, NORM, ROPE, XPF>,
             dim3(SILU ? ceil_div(N / 2, 8) : ceil_div(N, 16)), dim3(WARPS * 32), 0, stream, static_cast<OutT*>(out), x,
             w, bias, bias_kind, T, N, K, norm, rope);
  CUDA_CHECK_LAUNCH("gemv_bf16");
}

// f(IntC<NT>{}) with NT the 8-token tiles that T tokens take (1, 2 or 4).
template <typename F>
void with_token_tiles(int T, F&& f) {
  if (T > 16) f(IntC<4>{});
  else if (T > 8) f(IntC<2>{});
  else f(IntC<1>{});
}

// f(OutT{}) for the output dtype (bf16 or f32).
template <typename F>
void with_out_type(DType od, F&& f) {
  if (od == DType::BF16) f(bf16{});
  else if (od == DType::F32) f(float{});
  else TLLM_THROW("cuda linear: output dtype ", dtype_name(od), " unsupported (bf16, f32)");
}

template <int WARPS, int UNROLL, bool HINT, bool XPF = false>
void launch_cfg(void* out, DType od, const bf16* x, const bf16* w, const void* bias, int bias_kind,
                int T, int N, int K, cudaStream_t stream) {
  with_out_type(od, [&](auto zero) {
    with_token_tiles(T, [&](auto nt) {
      launch_t<decltype(nt)::value, WARPS, UNROLL, HINT, decltype(zero), false, false, false, XPF>(
          out, x, w, bias, bias_kind, T, N, K, stream);
    });
  });
}

// Warps per block. Each warp of a block takes 1/WARPS of K for the block's 16 rows. Measured
// on an H200 (runs 15 and 17, T=1, bench_kernels_cuda variants w4u4h / w8u4h): 4 warps win
// when the grid has at least two blocks per SM and K gives each warp >= 24 steps of 32
// (qkv 4608x3584: 11.8 vs 14.7 us; gate_up 37888x3584: 64.5 vs 70.8 us, 99% of the copy
// rate; lm_head 152064x3584: 240.6 vs 260.5 us); 8 warps otherwise: with fewer blocks
// (o_proj 3584x3584, 224 blocks on 132 SMs: 8.4 vs 10.2 us; down 3584x18944: 35.8 vs 42.6
// us) 4-warp blocks leave too few loads in flight per SM, and with short rows (K = 896:
// gate_up 9728x896 7.6 vs 7.8 us, run 150) the 8-warp block's shorter walk wins. Except for
// the vocabulary-sized grids (>= 32 blocks per SM): since the k steps go to the warps in whole
// groups (run 116), an 8-warp block of K = 896 is 7 warps of a single 4-step group, and the
// 4-warp block, 2 groups per warp, streams better (H200 run 150: lm_head 151936x896 75.1 ->
// 66.2 us, 151936x1536 117.5 -> 106.0, 151936x2048 141.0 -> 139.8).
bool four_warps(int64_t blocks, int64_t K, int num_sms) {
  const int64_t sms = num_sms;
  return blocks >= 2 * sms && (K >= 3072 || blocks >= 32 * sms);
}

// The launch shape of every entry point (plain, SILU, NORM, ROPE), so that a fused variant
// sums in the order of its plain projection. T = 1 as tuned for batch-1 decode (four_warps,
// x loaded at each group). Batched decode (H200 run 164, bench_kernels_cuda --batch, 0.5B /
// 1.5B / 7B linears at T = 8..32): x loaded one group ahead (XPF) wins at T <= 8 in every
// shape (7B q|k|v 13.2 -> 12.3 us, 0.5B gate|up 8.5 -> 7.6); 4-warp blocks from two blocks per
// SM whatever K (1.5B gate|up 17,920 x 1,536 at T = 8: 18.7 -> 16.2); grids smaller than the
// SM count take 16-warp blocks (0.5B down 896 x 4,864: 6.8 -> 5.6, 1.5B down 12.1 -> 10.3);
// at T = 9..16 XPF only with 4-warp blocks (8-warp 7B o_proj: 9.6 -> 13.1 with it); at
// T = 17..32 8 warps without it (within 5% of the best variant wherever linear() takes the
// skinny GEMM there, CudaBackend::skinny). Short rows (K <= 1,024) in 4-warp grids below the
// vocabulary size at T = 2..8 take 2-step groups: K = 896 is 28 steps, 7 groups of 4 for 4
// warps (2, 2, 2, 1) against 14 groups of 2 (run 175: 0.5B gate|up 9,728 x 896 at T = 8
// 7.54 -> 6.71 us; run 185, same binary: 0.5B b2 +1.3%, b4 +0.6%, b8 +0.9%; at T = 9..16,
// without x ahead, -1.4% / -1.5% at b12 / b16; run 175's table has the vocabulary-sized 0.5B
// logits at T = 8 8 us slower in 2-step groups).
struct GemvCfg {
  int warps;
  bool xpf;
  int unroll = 4;  // k steps per group
};
GemvCfg gemv_cfg(int T, int64_t blocks, int64_t K, int num_sms) {
  if (T <= 1) return {four_warps(blocks, K, num_sms) ? 4 : 8, false};
  if (T > 16) return {8, false};
  if (T > kGemvNormMaxTokens && blocks < num_sms) return {16, false};
  const bool four = blocks >= 2 * static_cast<int64_t>(num_sms);
  if (T <= 8 && four && K <= 1024 && blocks < 32 * static_cast<int64_t>(num_sms)) return {4, true, 2};
  return {four ? 4 : 8, T <= 8 || four};
}

// Launches gemv_mma_kernel in the shape c for T tokens (1, 2 or 4 token tiles).
template <typename OutT, bool SILU = false, bool NORM = false, bool ROPE = false>
void launch_picked(const GemvCfg& c, void* out, const bf16* x, const bf16* w, const void* bias, int bias_kind, int T,
                   int N, int K, cudaStream_t stream, const GemvNorm& norm = {}, const QkNormRopeParams& rope = {}) {
  auto go = [&](auto nt, auto wp, auto xp, auto up) {
    constexpr int NT = decltype(nt)::value, W = decltype(wp)::value, U = decltype(up)::value;
    constexpr bool X = decltype(xp)::value;
    // Shapes gemv_cfg never gives are not instantiated: above 8 tokens x one group ahead
    // only with 4 warps, above 16 tokens 8 warps alone; the fused norm (T <= 4) only in
    // 8-warp blocks (gemv_norm_supported).
    // 2-step groups: one token tile in 4-warp blocks with x ahead.
    constexpr bool given = U == 2 ? NT == 1 && W == 4 && X
                                  : NT == 1 || (NT == 2 && (W == 4) == X) || (NT == 4 && W == 8 && !X);
    if constexpr (!given || (NORM && (NT != 1 || W != 8))) {
      TLLM_THROW("gemv: no kernel for ", W, "-warp blocks", X ? " with x ahead" : "", " at T = ", T,
                 NORM ? " with the fused norm" : "");
    } else {
      launch_t<NT, W, U, true, OutT, SILU, NORM, ROPE, X>(out, x, w, bias, bias_kind, T, N, K, stream, norm, rope);
    }
  };
  auto by_shape = [&](auto nt) {
    if (c.unroll == 2) go(nt, IntC<4>{}, BoolC<true>{}, IntC<2>{});
    else if (c.warps == 16) go(nt, IntC<16>{}, BoolC<false>{}, IntC<4>{});
    else if (c.warps == 4 && c.xpf) go(nt, IntC<4>{}, BoolC<true>{}, IntC<4>{});
    else if (c.warps == 4) go(nt, IntC<4>{}, BoolC<false>{}, IntC<4>{});
    else if (c.xpf) go(nt, IntC<8>{}, BoolC<true>{}, IntC<4>{});
    else go(nt, IntC<8>{}, BoolC<false>{}, IntC<4>{});
  };
  with_token_tiles(T, by_shape);
}

int bias_kind_of(const void* bias, DType bd) {
  if (!bias) return 0;
  if (bd == DType::F32) return 1;
  if (bd == DType::BF16) return 2;
  TLLM_THROW("cuda linear: bias dtype ", dtype_name(bd), " unsupported (f32, bf16)");
}

}  // namespace

bool gemv_supported(int T, int64_t N, int64_t K) {
  return T >= 1 && T <= kGemvMaxTokens && N >= 1 && K >= 8 && K % 8 == 0 && N < (1ll << 31) &&
         K < (1ll << 30);
}

void gemv_bf16(void* out, DType od, const bf16* x, const bf16* w, const void* bias, DType bd, int T,
               int N, int K, int num_sms, cudaStream_t stream) {
  TLLM_CHECK(gemv_supported(T, N, K), "gemv_bf16: unsupported shape T=", T, " N=", N, " K=", K);
  TLLM_CHECK((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 == 0,
             "gemv_bf16: x and W must be 16-byte aligned");
  // L2::256B on the weight loads: each load instruction touches 64 B of 16 rows, and the
  // prefetch hint lets DRAM serve whole 256 B runs (measured on H200: 49% -> 60% of copy
  // bandwidth for 4608x3584, 67% -> 88% for 37888x3584; docs/cuda-notes.md).
  const int bk = bias_kind_of(bias, bd);
  const GemvCfg c = gemv_cfg(T, ceil_div(N, 16), K, num_sms);
  with_out_type(od, [&](auto zero) { launch_picked<decltype(zero)>(c, out, x, w, bias, bk, T, N, K, stream); });
}

bool gemv_norm_supported(int T, int64_t N, int64_t K, int num_sms) {
  // Only where the plain GEMV takes 8-warp blocks: the fused kernel must give the bits of
  // gemv + add_rms_norm, and its last block needs up to 256 threads for the row.
  return gemv_norm_fits(T, N, 256) && gemv_cfg(T, ceil_div(N, 16), K, num_sms).warps == 8;
}

void gemv_silu_bf16(bf16* act, const bf16* x, const bf16* w, const void* bias, DType bd, int T, int N, int K,
                    int num_sms, cudaStream_t stream) {
  TLLM_CHECK(gemv_supported(T, N, K) && N % 2 == 0, "gemv_silu_bf16: unsupported shape T=", T, " N=", N, " K=", K);
  TLLM_CHECK((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 == 0,
             "gemv_silu_bf16: x and W must be 16-byte aligned");
  launch_picked<bf16, true>(gemv_cfg(T, ceil_div(N / 2, 8), K, num_sms), act, x, w, bias, bias_kind_of(bias, bd), T, N,
                            K, stream);
}

void gemv_norm_bf16(bf16* out, const bf16* x, const bf16* w, const void* bias, DType bd, int T, int N, int K,
                    const GemvNorm& norm, int num_sms, cudaStream_t stream) {
  TLLM_CHECK(gemv_supported(T, N, K) && gemv_norm_supported(T, N, K, num_sms), "gemv_norm_bf16: unsupported shape T=", T,
             " N=", N, " K=", K);
  TLLM_CHECK((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 == 0,
             "gemv_norm_bf16: x and W must be 16-byte aligned");
  launch_picked<bf16, false, true>(gemv_cfg(T, ceil_div(N, 16), K, num_sms), out, x, w, bias, bias_kind_of(bias, bd), T,
                                   N, K, stream, norm);
}

bool gemv_rope_supported(int T, int n_q_heads, int n_kv_heads, int head_dim, int64_t K) {
  return T >= 1 && T <= kGemvMaxTokens && n_q_heads > 0 && n_kv_heads > 0 && head_dim >= 16 && head_dim % 16 == 0 &&
         gemv_supported(T, static_cast<int64_t>(n_q_heads + 2 * n_kv_heads) * head_dim, K);
}

void gemv_rope_kv_bf16(const QkNormRopeParams& p, const bf16* x, const bf16* w, const void* bias, DType bd, int K,
                       int num_sms, cudaStream_t stream) {
  TLLM_CHECK(gemv_rope_supported(p.T, p.n_q_heads, p.n_kv_heads, p.head_dim, K),
             "gemv_rope_kv_bf16: unsupported shape T=", p.T, " heads ", p.n_q_heads, "/", p.n_kv_heads, " x ",
             p.head_dim, " K=", K);
  TLLM_CHECK((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 == 0,
             "gemv_rope_kv_bf16: x and W must be 16-byte aligned");
  const int N = (p.n_q_heads + 2 * p.n_kv_heads) * p.head_dim;
  // Above 8 tokens the attention is released at entry for heads of up to 64 only (see the
  // kernel); up to 8 always.
  QkNormRopeParams q = p;
  q.release_at_entry = p.T <= 8 || p.head_dim <= 64;
  // The launch shape of gemv_bf16 for the same shape, so that the sums are those of the
  // unfused projection.
  launch_picked<bf16, false, false, true>(gemv_cfg(p.T, ceil_div(N, 16), K, num_sms), p.qkv, x, w, bias,
                                          bias_kind_of(bias, bd), p.T, N, K, stream, {}, q);
}

// Variants for the micro-benchmark (bench/cuda), bf16 output: W warps, U k-steps per group,
// H the L2 256B hint, X x loaded a group ahead.
namespace {
template <int W, int U, bool H, bool X = false>
GemvVariant variant(const char* name) {
  return {name, [](void* o, const bf16* x, const bf16* w, int T, int N, int K, cudaStream_t s) {
            launch_cfg<W, U, H, X>(o, DType::BF16, x, w, nullptr, 0, T, N, K, s);
          }};
}

}  // namespace

const std::vector<GemvVariant>& gemv_variants() {
  static const std::vector<GemvVariant> v = {
      variant<8, 4, true>("w8u4h"),
      variant<8, 8, true>("w8u8h"),
      variant<16, 4, true>("w16u4h"),
      variant<4, 4, true>("w4u4h"),
      variant<8, 4, false>("w8u4"),
      variant<8, 2, true>("w8u2h"),
      variant<4, 2, true>("w4u2h"),
      variant<8, 4, true, true>("w8u4hx"),
      variant<4, 4, true, true>("w4u4hx"),
      variant<8, 2, true, true>("w8u2hx"),
      variant<4, 2, true, true>("w4u2hx"),
  };
  return v;
}

}  // namespace tllm::cuda
