// W4A16 / W8A16 kernels (quant_ops.h) for T > 16 (GEMM), dequantization and embedding rows;
// the T <= 16 decode path is quant_gemv.cu. Layout: kernels/quant_layout.h (CUDA codes): per
// 16-row panel and k tile (128 columns for 4 bits, 64 for 8) 1024 bytes in which lane L of a
// warp finds its mma.m16n8k16 A fragments for every 16-wide k step of the tile at bytes
// [16 L, 16 L + 16) (rows L / 4) and [512 + 16 L, ...) (rows L / 4 + 8).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/cuda/quant_ops.h"

namespace tllm::cuda {
namespace {

using namespace qk;

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// ---------------------------------------------------------------------------------------
// GEMM: block = 64 rows (4 panels) x 64 tokens, 4 warps as 2 (rows) x 2 (tokens), each warp
// 2 panels x 4 token tiles of 8. k tiles go through a ring of STAGES shared-memory stages
// (cp.async of the codes, 4 KiB, and of x, 64 tokens x tile), STAGES - 1 of them in flight
// while one is used: X sums of the stage, then the MMAs. Two stages (44 KB for int4): 3
// (int4) and 4 (8-bit) measured level on the H200 (run 246: 7B pp128 / tg b32 and the MoE
// grouped form within 1%).
template <int BITS>
struct GemmSmem {
  static constexpr int TILE = BITS == 4 ? 128 : 64;
  static constexpr int STAGES = 2;
  static constexpr int XS = TILE + 8;  // bf16 row stride: ldmatrix rows hit distinct banks
  static constexpr int NSEG_MAX = TILE / 32;
  static constexpr int CODES_STAGE = 4 * 1024;
  static constexpr int X_STAGE = 64 * XS;  // bf16 elements
  static constexpr int CODES = STAGES * CODES_STAGE;
  static constexpr int X = STAGES * X_STAGE * 2;
  static constexpr int XSUM = 64 * NSEG_MAX * 4;
  static constexpr int OUT = 64 * 65 * 4;  // epilogue tile, aliases X
  static_assert(OUT <= X, "epilogue tile must fit the activation stages");
  static constexpr int BYTES = CODES + X + XSUM;
};

// Whose rows a block multiplies (the grouped MoE forms take their tile from moe_align's list,
// QuantMoeTiles):
//   Dense     out [T, N] = x w^T; block (n, t): weight rows [64 n, 64 n + 64), tokens
//             [64 t, 64 t + 64).
//   MoeGated  act [P, I] = silu(x gate_e^T) * (x up_e^T) for tile y's positions (<= 64 pairs of
//             expert e; x rows gathered by token): block (f, y) takes gate rows [32 f, 32 f + 32)
//             of expert e (panels 0, 1 of the block) and the matching up rows (panels 2, 3).
//   MoeDown   y [P, H] = act down_e^T for tile y's positions: rows [64 n, 64 n + 64) of
//             expert e's H.
enum class GemmRows { Dense, MoeGated, MoeDown };

template <int BITS, int SEGM, bool F16S, typename OutT, GemmRows ROWS = GemmRows::Dense>
__global__ void __launch_bounds__(128) quant_gemm_kernel(const __grid_constant__ QuantGemmParams p,
                                                         const __grid_constant__ QuantMoeTiles mt) {
  using S = GemmSmem<BITS>;
  constexpr bool MOE = ROWS != GemmRows::Dense;
  constexpr int TILE = S::TILE, XS = S::XS, STEPS = TILE / 16, SEG = SEGM * 16, NSEG = TILE / SEG;
  constexpr float C = code_bias(BITS, false);
  constexpr bool FP8 = is_fp8(BITS);
  constexpr int STAGES = S::STAGES;
  __shared__ __align__(16) unsigned char smem[S::BYTES];
  unsigned char* codes_s = smem;                                     // [STAGES][4][1024]
  bf16* xs = reinterpret_cast<bf16*>(smem + S::CODES);               // [STAGES][64][XS]
  float* xsum = reinterpret_cast<float*>(smem + S::CODES + S::X);    // [64][NSEG]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, c = lane & 3;
  const int wr = warp >> 1, wc = warp & 1;
  // The block's four panels (-1: past the weight) and the x row of each of its 64 token
  // columns (-1: none; zeros enter the MMAs and the column is not stored).
  __shared__ int panel_s[4];
  __shared__ int xrow_s[64];
  int expert = 0, pos0 = 0, ncols = 0;  // MoE: the tile's expert, first position and pair count
  if constexpr (MOE) {
    const int tile = blockIdx.y;
    if (tile >= mt.counts[1]) return;  // past the routed tiles (the grid is a capacity)
    expert = mt.tile_expert[tile];
    pos0 = mt.tile_start[tile];
    ncols = min(64, mt.offsets[expert + 1] - pos0);
  } else {
    pos0 = blockIdx.y * 64;
    ncols = min(64, p.T - pos0);
  }
  if (tid < 4) {
    int panel;
    if constexpr (ROWS == GemmRows::Dense) {
      panel = blockIdx.x * 4 + tid;
      if (panel >= (p.N + 15) / 16) panel = -1;
    } else if constexpr (ROWS == GemmRows::MoeGated) {
      const int j = blockIdx.x * 2 + (tid & 1), ip = mt.I / 16;  // feature panel; panels per I
      panel = j < ip ? expert * 2 * ip + (tid >> 1) * ip + j : -1;
    } else {
      const int j = blockIdx.x * 4 + tid, hp = p.N / 16;
      panel = j < hp ? expert * hp + j : -1;
    }
    panel_s[tid] = panel;
  }
  if (tid < 64) {
    int row = -1;
    if (tid < ncols) {
      if constexpr (ROWS == GemmRows::MoeGated) row = mt.sorted_pair[pos0 + tid] / mt.top_k;
      else row = pos0 + tid;
    }
    xrow_s[tid] = row;
  }
  __syncthreads();

  auto load_stage = [&](int kt, int st) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int q = tid + i * 128;
      const int pi = q >> 6, j = q & 63;
      const int panel = panel_s[pi];
      const bool ok = panel >= 0;
      const uint8_t* src = p.codes + ((static_cast<int64_t>(ok ? panel : 0) * p.ktiles + kt) * 1024 + j * 16);
      cp_async16(codes_s + st * S::CODES_STAGE + pi * 1024 + j * 16, src, ok ? 16 : 0);
    }
    constexpr int CH = TILE / 8;  // 16-byte chunks per token row
#pragma unroll
    for (int i = 0; i < 64 * CH / 128; ++i) {
      const int q = tid + i * 128;
      const int t = q / CH, cc = q % CH;
      const int row = xrow_s[t], k = kt * TILE + cc * 8;
      const bool ok = row >= 0 && k < p.K;
      const bf16* src = ok ? p.x + static_cast<int64_t>(row) * p.K + k : p.x;
      cp_async16(xs + st * S::X_STAGE + t * XS + cc * 8, src, ok ? 16 : 0);
    }
  };

  float tot[2][4][4], acc[2][4][4];
#pragma unroll
  for (int a = 0; a < 2; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b)
#pragma unroll
      for (int i = 0; i < 4; ++i) tot[a][b][i] = acc[a][b][i] = 0.0f;

  // A warp whose 32 token columns hold none of the block's tokens skips its MMAs (a MoE tile
  // often holds a few pairs, a dense tail fewer than 64 tokens). Per token tile of 8 it costs
  // more than it saves: the codes' operands are then rebuilt for every tile (run 245: 7B int4
  // pp128 -31%).
  const bool idle = 32 * wc >= ncols;
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < p.ktiles) load_stage(s, s);
    cp_async_commit();  // always: the wait below counts one group per k tile
  }
  for (int kt = 0; kt < p.ktiles; ++kt) {
    const int st = kt % STAGES;
    cp_async_wait<STAGES - 2>();  // k tile kt has landed (this thread's copies) ...
    __syncthreads();              // ... everyone's, and everyone is done with k tile kt - 1
    {
      const int nk = kt + STAGES - 1;  // into the stage k tile kt - 1 used
      if (nk < p.ktiles) load_stage(nk, nk % STAGES);
      cp_async_commit();
    }
    // X[t][s]: sum of the stage's activations of token t over segment s (FP8: no offsets).
    for (int q = tid; q < (FP8 ? 0 : 64 * NSEG); q += 128) {
      const int t = q / NSEG, s = q % NSEG;
      const bf16* row = xs + st * S::X_STAGE + t * XS + s * SEG;
      float sum = 0.0f;
#pragma unroll
      for (int k = 0; k < SEG; k += 8) {
        float f[8];
        bf16x8_to_f32(*reinterpret_cast<const uint4*>(row + k), f);
#pragma unroll
        for (int e = 0; e < 8; ++e) sum += f[e];
      }
      xsum[t * NSEG + s] = sum;
    }
    if constexpr (!FP8) __syncthreads();
    if (idle) continue;
    uint4 lo[2], hi[2];
#pragma unroll
    for (int pi = 0; pi < 2; ++pi) {
      const unsigned char* base = codes_s + st * S::CODES_STAGE + (2 * wr + pi) * 1024 + lane * 16;
      lo[pi] = *reinterpret_cast<const uint4*>(base);
      hi[pi] = *reinterpret_cast<const uint4*>(base + 512);
    }
#pragma unroll
    for (int m = 0; m < STEPS; ++m) {
      uint32_t b[4][2];
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        const int mi = lane >> 3;
        const int t = 32 * wc + 8 * (j + (mi >> 1)) + (lane & 7);
        uint32_t r[4];
        ldmatrix_x4(r, xs + st * S::X_STAGE + t * XS + 16 * m + 8 * (mi & 1));
        b[j][0] = r[0];
        b[j][1] = r[1];
        b[j + 1][0] = r[2];
        b[j + 1][1] = r[3];
      }
#pragma unroll
      for (int pi = 0; pi < 2; ++pi)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) mma_codes<BITS>(acc[pi][nt], lo[pi], hi[pi], m, b[nt][0], b[nt][1]);
      if ((m + 1) % SEGM == 0) {
        const int s = m / SEGM;
        const int kseg = kt * TILE + s * SEG;
        const int grp = p.groups == 1 ? 0 : min(kseg / p.group_size, p.groups - 1);
#pragma unroll
        for (int pi = 0; pi < 2; ++pi) {
          const int panel = panel_s[2 * wr + pi];
          float sg = 0.0f, sh = 0.0f, og = 0.0f, oh = 0.0f;
          if (panel >= 0) {
            const int64_t si = (static_cast<int64_t>(panel) * p.groups + grp) * 16 + g;
            sg = load_scale<F16S>(p.scales, si);
            sh = load_scale<F16S>(p.scales, si + 8);
            if constexpr (!FP8) {
              og = load_scale<F16S>(p.offsets, si) - C * sg;
              oh = load_scale<F16S>(p.offsets, si + 8) - C * sh;
            }
          }
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) {
            const int t = 32 * wc + 8 * nt + 2 * c;
            const float x0 = FP8 ? 0.0f : xsum[t * NSEG + s], x1 = FP8 ? 0.0f : xsum[(t + 1) * NSEG + s];
            tot[pi][nt][0] += sg * acc[pi][nt][0] + og * x0;
            tot[pi][nt][1] += sg * acc[pi][nt][1] + og * x1;
            tot[pi][nt][2] += sh * acc[pi][nt][2] + oh * x0;
            tot[pi][nt][3] += sh * acc[pi][nt][3] + oh * x1;
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[pi][nt][i] = 0.0f;
          }
        }
      }
    }
  }
  __syncthreads();  // every warp is done with the stages the epilogue tile aliases

  float* ot = reinterpret_cast<float*>(smem + S::CODES);  // [64 rows][65]
#pragma unroll
  for (int pi = 0; pi < 2; ++pi)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) {
      const int row = (2 * wr + pi) * 16 + g, t = 32 * wc + 8 * nt + 2 * c;
      ot[row * 65 + t] = tot[pi][nt][0];
      ot[row * 65 + t + 1] = tot[pi][nt][1];
      ot[(row + 8) * 65 + t] = tot[pi][nt][2];
      ot[(row + 8) * 65 + t + 1] = tot[pi][nt][3];
    }
  __syncthreads();
  OutT* out = static_cast<OutT*>(p.out);
  if constexpr (ROWS == GemmRows::MoeGated) {  // act [P, I]: rows 0-31 gate, 32-63 up
    for (int i = tid; i < 32 * 64; i += 128) {
      const int t = i >> 5, f = i & 31, n = blockIdx.x * 32 + f;
      if (n < mt.I && t < ncols) {
        const float gate = ot[f * 65 + t];
        store_val<OutT>(out + static_cast<int64_t>(pos0 + t) * mt.I + n, silu_f32(gate) * ot[(32 + f) * 65 + t]);
      }
    }
  } else {
    for (int i = tid; i < 64 * 64; i += 128) {
      const int t = i >> 6, row = i & 63;
      const int n = blockIdx.x * 64 + row;
      if (n < p.N && t < ncols)
        store_val<OutT>(out + static_cast<int64_t>(pos0 + t) * p.N + n, ot[row * 65 + t] + (MOE ? 0.0f : bias_at(p, n)));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Code (row, k) of the CUDA layout (see quant_layout.cpp, cuda_pos) for 4 / 8 bits.
template <int BITS>
__device__ __forceinline__ int code_at(const uint8_t* codes, int ktiles, int row, int k) {
  constexpr int TILE = BITS == 4 ? 128 : 64;
  const int panel = row >> 4, r = row & 15, kt = k / TILE, kin = k % TILE;
  const int m = kin >> 4, kk = kin & 15, c = (kk & 7) >> 1, e = kk & 1, pslot = kk >> 3;
  const int lane = (r & 7) * 4 + c, half = r >> 3;
  const uint8_t* base = codes + (static_cast<int64_t>(panel) * ktiles + kt) * 1024 + half * 512 + lane * 16;
  if constexpr (BITS == 4) {
    const int bit = 16 * e + 4 * ((m & 1) * 2 + pslot);
    return (base[(m >> 1) * 4 + (bit >> 3)] >> (bit & 7)) & 15;
  } else {
    return base[m * 4 + pslot + 2 * e];
  }
}

template <int BITS, bool F16S>
__device__ __forceinline__ float dequant_at(const QuantGemmParams& p, int row, int k) {
  const int grp = p.groups == 1 ? 0 : k / p.group_size;
  const int64_t si = (static_cast<int64_t>(row >> 4) * p.groups + grp) * 16 + (row & 15);
  const int q = code_at<BITS>(p.codes, p.ktiles, row, k);
  if constexpr (is_fp8(BITS)) return load_scale<F16S>(p.scales, si) * e4m3_to_f32(q);
  return load_scale<F16S>(p.scales, si) * static_cast<float>(q) + load_scale<F16S>(p.offsets, si);
}

// A warp per 16-row panel and k tile (8 tiles per block): lane L reads its 2 x 16 bytes of
// the tile as the decode kernels do (rows L / 4 and L / 4 + 8) and writes each pair of
// adjacent columns as one bf16x2 (prefill runs this over every weight of a layer, so it is a
// stream: one coalesced 1 KB read and 2-4 KB of writes per tile). A 16-column k step lies in
// one scale group (groups are multiples of 32 columns, or the row).
template <int BITS, bool F16S>
__global__ void __launch_bounds__(256) quant_dequant_kernel(const __grid_constant__ QuantGemmParams p,
                                                            bf16* __restrict__ w) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16;
  const int64_t tile = static_cast<int64_t>(blockIdx.x) * 8 + (threadIdx.x >> 5);
  const int npanels = (p.N + 15) / 16;
  if (tile >= static_cast<int64_t>(npanels) * p.ktiles) return;
  const int panel = static_cast<int>(tile / p.ktiles), kt = static_cast<int>(tile % p.ktiles);
  const int lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const uint4* src = reinterpret_cast<const uint4*>(p.codes + tile * 1024) + lane;
  const uint4 lo = __ldg(src), hi = __ldg(src + 32);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = panel * 16 + g + 8 * h;
    if (row >= p.N) continue;
    const uint4& v = h ? hi : lo;
    bf16* out = w + static_cast<int64_t>(row) * p.K;
#pragma unroll
    for (int m = 0; m < STEPS; ++m) {
      const int k0 = kt * TILE + 16 * m;  // the step's first column
      if (k0 >= p.K) break;
      const int grp = p.groups == 1 ? 0 : min(k0 / p.group_size, p.groups - 1);
      const int64_t si = (static_cast<int64_t>(panel) * p.groups + grp) * 16 + g + 8 * h;
      const float sc = load_scale<F16S>(p.scales, si);
      const float of = is_fp8(BITS) ? 0.0f : load_scale<F16S>(p.offsets, si);
      // Codes of columns 2c, 2c + 1 (pair 0) and 2c + 8, 2c + 9 (pair 1) of this step.
      const uint32_t wd = word_of(v, BITS == 4 ? m >> 1 : m);
      uint32_t q[2][2];
#pragma unroll
      for (int pr = 0; pr < 2; ++pr)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if constexpr (BITS == 4) q[pr][e] = (wd >> (16 * e + 4 * ((m & 1) * 2 + pr))) & 15;
          else q[pr][e] = (wd >> (8 * (pr + 2 * e))) & 255;
        }
#pragma unroll
      for (int pr = 0; pr < 2; ++pr) {
        const int k = k0 + 8 * pr + 2 * c;
        if (k >= p.K) continue;  // K % 8 == 0: k < K covers k + 1
        float v0, v1;
        if constexpr (is_fp8(BITS)) {
          v0 = sc * e4m3_to_f32(q[pr][0]);
          v1 = sc * e4m3_to_f32(q[pr][1]);
        } else {
          v0 = sc * static_cast<float>(q[pr][0]) + of;
          v1 = sc * static_cast<float>(q[pr][1]) + of;
        }
        *reinterpret_cast<uint32_t*>(out + k) = pack_bf16x2(v0, v1);
      }
    }
  }
}

// Block (t, j) writes columns [j chunk, (j + 1) chunk) of token t's row (chunk 512). One
// block per token took 6.8-7.5 us at the start of every 7B int4 / int8 decode step (H200 runs
// 118-119): a row's codes are scattered bytes across the 28-56 tiles of its 16-row panel, and
// one SM did not keep enough of those loads in flight (8 columns per thread loaded before
// their stores did not change that, run 119).
template <int BITS, bool F16S, typename OutT>
__global__ void quant_embedding_kernel(const __grid_constant__ QuantGemmParams p, const int32_t* __restrict__ tokens,
                                       OutT* __restrict__ out, int chunk) {
  const int t = blockIdx.x;
  const int id = tokens[t];
  const bool ok = id >= 0 && id < p.N;
  const int k_end = min(p.K, (static_cast<int>(blockIdx.y) + 1) * chunk);
  for (int k = static_cast<int>(blockIdx.y) * chunk + threadIdx.x; k < k_end; k += blockDim.x)
    store_val<OutT>(out + static_cast<int64_t>(t) * p.K + k, ok ? dequant_at<BITS, F16S>(p, id, k) : 0.0f);
}

}  // namespace

std::string quant_unsupported_reason(int bits, int64_t K, int64_t group_size, int64_t groups) {
  if (bits != 4 && bits != 8) return detail::concat(bits, "-bit codes are not supported (4, 8)");
  if (K % 8 != 0) return detail::concat("in_features ", K, " must be a multiple of 8 on CUDA");
  const int tile = bits == 4 ? 128 : 64;
  if (groups > 1 && group_size % tile != 0 && tile % group_size != 0)
    return detail::concat("group size ", group_size, " does not divide and is not a multiple of the ", tile,
                          "-column tile of ", bits, "-bit weights on CUDA (use 32, 64 or a multiple of ", tile, ")");
  return {};
}

void quant_gemm(const QuantGemmParams& p, cudaStream_t stream) {
  check_params(p, "quant_gemm");
  if (p.T == 0) return;
  TLLM_CHECK((p.T + 63) / 64 <= 65535, "quant_gemm: too many tokens (", p.T, ")");
  dispatch(p, [&](auto bits, auto segm, auto f16, auto* out_tag) {
    using OutT = std::remove_pointer_t<decltype(out_tag)>;
    const dim3 grid((p.N + 63) / 64, (p.T + 63) / 64);
    quant_gemm_kernel<decltype(bits)::value, decltype(segm)::value, decltype(f16)::value, OutT>
        <<<grid, 128, 0, stream>>>(p, QuantMoeTiles{});
  });
  CUDA_CHECK_LAUNCH("quant_gemm");
}

// The weight fields of quant_gemm's parameters for one stacked expert weight.
QuantGemmParams expert_params(const MoeQuantWeight& w, int N, const bf16* x, int T, bf16* out) {
  QuantGemmParams q;
  q.codes = w.codes;
  q.scales = w.scales;
  q.offsets = w.offsets;
  q.scales_f16 = w.scales_f16;
  q.bits = w.bits;
  q.fp8 = w.fp8;
  q.K = w.K;
  q.ktiles = w.ktiles;
  q.groups = w.groups;
  q.group_size = w.group_size;
  q.N = N;
  q.x = x;
  q.T = T;
  q.out = out;
  q.out_dtype = DType::BF16;
  return q;
}

static_assert(kMoeTileRows == 64, "a grouped quant_gemm block takes one moe_align tile of 64 positions");

void moe_quant_experts_prefill(const MoeQuantExpertParams& p, cudaStream_t stream) {
  const int max_tiles = p.meta.max_tiles;
  TLLM_CHECK(max_tiles >= 1 && max_tiles <= 65535, "moe quantized prefill: ", max_tiles,
             " tiles exceed the grid limit");
  TLLM_CHECK(p.I % 16 == 0 && p.H % 16 == 0, "moe quantized prefill: H ", p.H, " and I ", p.I,
             " must be multiples of 16");
  QuantMoeTiles mt;
  mt.offsets = p.meta.offsets;
  mt.tile_expert = p.meta.tile_expert;
  mt.tile_start = p.meta.tile_start;
  mt.counts = p.meta.counts;
  mt.sorted_pair = p.meta.sorted_pair;
  mt.top_k = p.k;
  mt.I = p.I;
  // gate|up: x [T, H] gathered by token -> act [P, I]; down: act -> y [P, H], both by position.
  const QuantGemmParams gu = expert_params(p.gate_up, p.E * 2 * p.I, p.x, p.T, p.act);
  const QuantGemmParams dn = expert_params(p.down, p.H, p.act, p.T * p.k, p.y);
  check_params(gu, "moe quantized prefill (gate|up)");
  check_params(dn, "moe quantized prefill (down)");
  dispatch(gu, [&](auto bits, auto segm, auto f16, auto*) {
    quant_gemm_kernel<decltype(bits)::value, decltype(segm)::value, decltype(f16)::value, bf16, GemmRows::MoeGated>
        <<<dim3((p.I + 31) / 32, max_tiles), 128, 0, stream>>>(gu, mt);
  });
  CUDA_CHECK_LAUNCH("moe quantized prefill (gate|up)");
  dispatch(dn, [&](auto bits, auto segm, auto f16, auto*) {
    quant_gemm_kernel<decltype(bits)::value, decltype(segm)::value, decltype(f16)::value, bf16, GemmRows::MoeDown>
        <<<dim3((p.H + 63) / 64, max_tiles), 128, 0, stream>>>(dn, mt);
  });
  CUDA_CHECK_LAUNCH("moe quantized prefill (down)");
}

void quant_dequantize(const QuantGemmParams& p, bf16* w, cudaStream_t stream) {
  check_params(p, "quant_dequantize");
  const int64_t tiles = static_cast<int64_t>((p.N + 15) / 16) * p.ktiles;
  const int blocks = static_cast<int>((tiles + 7) / 8);
  if (p.fp8) {
    if (p.scales_f16) quant_dequant_kernel<kE4M3, true><<<blocks, 256, 0, stream>>>(p, w);
    else quant_dequant_kernel<kE4M3, false><<<blocks, 256, 0, stream>>>(p, w);
  } else if (p.bits == 4) {
    if (p.scales_f16) quant_dequant_kernel<4, true><<<blocks, 256, 0, stream>>>(p, w);
    else quant_dequant_kernel<4, false><<<blocks, 256, 0, stream>>>(p, w);
  } else {
    if (p.scales_f16) quant_dequant_kernel<8, true><<<blocks, 256, 0, stream>>>(p, w);
    else quant_dequant_kernel<8, false><<<blocks, 256, 0, stream>>>(p, w);
  }
  CUDA_CHECK_LAUNCH("quant_dequantize");
}

void quant_embedding(const QuantGemmParams& p, const int32_t* tokens, int T, void* out, DType od, cudaStream_t stream) {
  if (T == 0) return;
  TLLM_CHECK(od == DType::BF16 || od == DType::F32, "embedding: output dtype ", dtype_name(od), " unsupported");
  const int chunk = 512;
  const dim3 grid(T, (p.K + chunk - 1) / chunk);
  TLLM_CHECK(grid.y <= 65535, "embedding: ", p.K, " columns is too large");
  auto go = [&](auto bits, auto f16) {
    constexpr int B = decltype(bits)::value;
    constexpr bool F = decltype(f16)::value;
    if (od == DType::BF16)
      quant_embedding_kernel<B, F, bf16><<<grid, 256, 0, stream>>>(p, tokens, static_cast<bf16*>(out), chunk);
    else
      quant_embedding_kernel<B, F, float><<<grid, 256, 0, stream>>>(p, tokens, static_cast<float*>(out), chunk);
  };
  if (p.fp8) {
    if (p.scales_f16) go(std::integral_constant<int, kE4M3>{}, std::true_type{});
    else go(std::integral_constant<int, kE4M3>{}, std::false_type{});
  } else if (p.bits == 4) {
    if (p.scales_f16) go(std::integral_constant<int, 4>{}, std::true_type{});
    else go(std::integral_constant<int, 4>{}, std::false_type{});
  } else {
    if (p.scales_f16) go(std::integral_constant<int, 8>{}, std::true_type{});
    else go(std::integral_constant<int, 8>{}, std::false_type{});
  }
  CUDA_CHECK_LAUNCH("quant_embedding");
}

}  // namespace tllm::cuda
