// Decode path of the quantized linear (quant_ops.h): out[T, N] = x[T, K] W^T (+ bias) for
// T <= 16, W4A16 / W8A16 codes in the CUDA layout of kernels/quant_layout.h (per 16-row panel
// and k tile one 1024-byte block; lane L reads its A fragments of every k step of the tile
// with two 16-byte loads at [16 L, 16 L + 16) and [512 + 16 L, ...)).
//
// Batch-1..16 decode is bound by streaming the codes once from HBM. The first version (one
// panel per block, 2 tiles per lane in flight, scales read from global memory inside the k
// loop) ran at 23% (int4) / 37% (int8) of the copy rate on an H200; this one is built for the
// stream:
// - Bytes in flight: every lane keeps 4 tiles of codes (4 x 32 B) in a register
//   ring, the first 4 issued before griddepcontrol.wait (PDL: codes do not depend on the
//   previous kernel). Two blocks of 8 warps per SM hold 64 KB in flight, above the ~32-48 KB
//   the copy rate needs (4.2 TB/s / 132 SMs x ~1 us of loaded latency).
// - No DRAM round trip inside the k loop: the scales and offsets of a warp's k range are
//   copied to shared memory with cp.async at entry, behind the first code loads; the
//   per-segment reads are then shared-memory hits.
// - Work per block sized to the matrix: a block of 8 warps takes PB = 1, 2, 4 or 8 panels and
//   the 8 / PB warps of a panel split its k tiles, summing their 16 x T partials in shared
//   memory (no workspace, one launch). Large N (gate_up, lm_head) takes several panels per
//   block, so each warp streams 14-56 tiles; small N (qkv, o_proj, down: 224-288 panels) one
//   panel per block, so that every SM has work.
// - Little math per byte: a code becomes an exact bf16 operand (128 + q) with one shift and
//   one lop3, one mma.m16n8k16 per 16 k x 16 rows (two for 8 bits) plus one all-ones MMA for
//   the x sums of the offset term.
// - The kernel is issue-bound, not latency-bound: ncu (H200, run 35) counted ~230
//   instructions issued per 1 KB tile of the 7B int4 gate|up at 0.56 per scheduler and
//   cycle. Hence one accumulator set (two alternating by k step halved the MMA dependency
//   chains but cost registers and adds: the 113 linears of a 7B int4 step -1.3% at T = 1,
//   run 37), the and/or of a code as one lop3 (the compiler had emitted two: quant_common.cuh)
//   and x loads without a per-token predicate and zeroing: 221 -> 181 instructions per tile,
//   the step's linears 1,854 -> 1,727 us (int8 2,710 -> 2,490 us; run 39). Refilling a ring
//   slot after its tile (5 slots, no register copies) saved another 6% of the instructions
//   but ran 1.7% slower (run 40): not kept.
// - T = 1, large grids: a second kernel (XSM) stages x once per block in shared memory, in
//   the order the lanes read it, with its sum over every scale segment. The per-tile work
//   loses the all-ones MMA (half the tile's MMAs) and 12 of its 16 x loads (4 16-byte shared
//   loads instead), which frees registers: 80 per thread, 3 blocks of 8 warps per SM, 3
//   tiles in flight per lane. Where the grid has more blocks than 2 per SM (7B q|k|v,
//   gate|up, lm_head) it is faster: gate|up 28.8 -> 22.5 us, q|k|v 7.0 -> 6.3, int8 lm_head
//   146 -> 133, the 113 linears of a 7B int4 g128 step 1,734 -> 1,422 us (H200, runs 84-85);
//   on o_proj and down (224 blocks) it is slower (5.2 -> 6.3, 14.3 -> 18.9 us: 1.7 blocks
//   per SM, fewer bytes in flight), so those keep the first kernel (plan_gemv).
// - Epilogues (bf16 out): SiLU (the gate|up projection writes act = silu(gate) * up: a
//   block pairs gate panels with their up panels) and the residual add + RMSNorm after o_proj
//   and down (the last block, as gemv.cu): three small kernels fewer per layer, with the
//   bits of the unfused ops. Engine, 7B tg128 b1 (H200, run 86): int4 g128 428 -> 495 tok/s
//   (staged kernel 477), int8 332 -> 362 (357). And RoPE + the KV-cache writes after q|k|v
//   (rope_kv, as gemv.cu's ROPE does for bf16): a block pairs a head's panel of dims [16 j,
//   16 j + 16) with the panel D/2 later, rotates and writes the cache slots; the rotation
//   kernel (~2 us per layer) goes. 7B tg b1 (H200, run 132, same binary, TLLM_FUSED_ROPE=0/1):
//   int4 g128 543.5 / 544.1 -> 553.1 / 553.2 tok/s, int8 381.9 -> 384.1; b8 int4 2,382 -> 2,393
//   (the 2-panel grid runs x from L1 at T = 1: 144 blocks, under plan_gemv's staged cut).
// - 8-bit codes in the x-staged kernel as f16 operands: x is staged as f16 (x 2^-E per scale
//   segment, E from the segment's largest |x|: exact, no overflow), a code byte becomes 1024 +
//   q in one prmt, one MMA per k step (the bf16 form split each byte into two nibble operands:
//   14 shift / lop3 and two MMAs per step). And a deep form of the staged kernel (2 blocks per
//   SM, 4 tiles in flight) for 8-bit grids of 1-2 blocks per SM whose x stages in one round
//   of loads (7B o_proj, the RoPE q|k|v; not down, K = 18,944). Engine tg b1 against the
//   previous build, alternated (H200 run 140): 7B int8 384.5 -> 392.5 tok/s, Qwen3-8B int8
//   347.6 -> 356.5, 1.5B int8 847.6 -> 859.2. The 4-bit f16 form (the high nibble 1024 + 16 q
//   by masking alone, against x / 16) saves 2 of 7 operations per word and measured level to
//   -0.5% (runs 137-139): 4-bit codes keep the bf16 kernels.
// - FP8 weights (BITS = kE4M3) run as 8-bit codes whose bytes convert to their own f16 / bf16
//   values (quant_common.cuh): no offsets to stage, no x sums, C = 0. 7B tg b1 362.1 tok/s
//   (67% of its roofline) against int8's 392.2 (65%), H200 run 241.
#include <algorithm>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/cuda/quant_ops.h"
#include "kernels/cuda/rms_norm_row.cuh"

namespace tllm::cuda {
namespace {

using namespace qk;

constexpr int kWarps = 8;
// Blocks per SM and k tiles of codes in flight per lane: the kernel with x from L1 (128
// registers per thread), the x-staged T = 1 kernel (80 registers: 3 blocks per SM).
constexpr int kBlocksL1 = 2, kDepthL1 = 4;
constexpr int kBlocksXs = 3, kDepthXs = 3;
// 8-bit codes: the x-staged kernel at the L1 kernel's residency (128 registers, 4 tiles in
// flight), for grids of 1-2 blocks per SM (7B o_proj, the RoPE q|k|v).
constexpr int kBlocksXsDeep = 2, kDepthXsDeep = 4;

// Scale groups a warp stages for a range of `tiles` k tiles (a range may start inside a
// group when groups span several tiles). Host (shared memory size) and kernel agree on it.
__host__ __device__ inline int staged_groups(int tiles, int tile, int group_size, int groups) {
  if (groups == 1) return 1;
  const int n = group_size <= tile ? tiles * (tile / group_size) : tiles * tile / group_size + 2;
  return n < groups ? n : groups;
}

// T = 1 (XSM kernels): x staged in shared memory in fragment order, per k tile and lane
// column c the 2 STEPS words lane c reads (words 8 m + c and 8 m + 4 + c of the tile for
// step m), padded so that the four c rows of a tile start in different banks; then the sums
// of x over each scale segment (segment s: columns [16 SEGM s, 16 SEGM (s + 1))).
// 8-bit codes stage x as f16 (x 2^-E per segment): each segment's 2^E follows the sums.
__host__ __device__ constexpr bool x_staged_f16(int bits) { return bits != 4; }
__host__ __device__ constexpr int x_lane_words(int bits) { return bits == 4 ? 20 : 12; }
inline size_t x_stage_bytes(int bits, int ktiles, int segm) {
  const int segments = ktiles * (k_tile(bits) / 16 / segm);
  return static_cast<size_t>(ktiles) * 4 * x_lane_words(bits) * 4 + static_cast<size_t>(segments) * (x_staged_f16(bits) ? 8 : 4);
}
// 16-byte x chunks each thread loads per round while staging; a K of at most kWarps * 32 *
// kStageBatch chunks (8,192 columns) is staged in one round of loads.
constexpr int kStageBatch = 4;

template <bool F16S>
__device__ __forceinline__ float smem_scale(const unsigned char* base, int i) {
  if constexpr (F16S) {
    return __half2float(reinterpret_cast<const __half*>(base)[i]);
  } else {
    return reinterpret_cast<const float*>(base)[i];
  }
}

// grid.x = ceil(panels / pb), block = 8 warps; warp w works on panel blockIdx.x * pb + w / wpp
// (wpp = 8 / pb; SiLU epilogue: gate / up pairs, below), k tiles [tb, te) of it. Dynamic
// shared memory:
//   red      f32 [8 warps][16 rows][NT * 8 tokens]   (partials, summed over a panel's warps)
//   scales   [8 warps][gpw groups][16 rows]           (f16 or f32, as stored)
//   offsets  [8 warps][gpw groups][16 rows]
//   XSM: x   u32 [ktiles][4 lane columns][CW words], then f32 segment sums [ktiles * NS]
//            (8 bits: then the segments' scales 2^E [ktiles * NS])
// XSB: 0 x from L1; kBlocksXs, or kBlocksXsDeep (8 bits only): x staged, that many blocks per
// SM. With 8-bit codes (F16X) the staged kernels take x as f16, x 2^-E per segment (E from
// the segment's largest |x|, so that every bf16 value converts exactly and none overflows),
// and the codes as f16 operands (mma_codes_f16: a byte is one prmt, one MMA per k step
// instead of the bf16 form's two); the scale step multiplies by 2^E again.
template <int BITS, int NT, int SEGM, bool F16S, typename OutT, int XSB>
__global__ void __launch_bounds__(kWarps * 32, XSB ? XSB : kBlocksL1)
    quant_gemv_kernel(const __grid_constant__ QuantGemmParams p, int pb, int gpw) {
  constexpr bool XSM = XSB > 0, F16X = XSM && x_staged_f16(BITS), FP8 = is_fp8(BITS);
  static_assert(XSB == 0 || XSB == kBlocksXs || (XSB == kBlocksXsDeep && BITS != 4), "staged kernel residency");
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16, NS = STEPS / SEGM;
  constexpr int CW = x_lane_words(BITS);  // XSM: words per lane c and tile (padded)
  static_assert(!XSM || NT == 1, "x in shared memory: one token");
  constexpr int DEPTH = XSB == kBlocksXs ? kDepthXs : XSB == kBlocksXsDeep ? kDepthXsDeep : kDepthL1;
  constexpr int SS = F16S ? 2 : 4;      // bytes per scale
  constexpr float C = code_bias(BITS, F16X);
  static_assert(STEPS % SEGM == 0, "a segment divides the tile");

  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, c = lane & 3;
  float* red = reinterpret_cast<float*>(smem);
  unsigned char* st_scales = smem + kWarps * 16 * NT * 8 * 4 + warp * gpw * 16 * SS;
  unsigned char* st_offsets = st_scales + kWarps * gpw * 16 * SS;
  // XSM: x in fragment order [ktiles][4][CW] words, then the segment sums [ktiles * NS].
  uint32_t* xs = reinterpret_cast<uint32_t*>(smem + kWarps * 16 * NT * 8 * 4 + 2 * kWarps * gpw * 16 * SS);
  float* xsum = reinterpret_cast<float*>(xs + p.ktiles * 4 * CW);
  float* xscl = xsum + p.ktiles * NS;  // F16X: 2^E per segment

  // Panel slot j = warp / wpp of the block is panel blockIdx.x * pb + j; with the SiLU
  // epilogue, slots j < pb / 2 are gate panels blockIdx.x * pb / 2 + j and slots j >= pb / 2
  // the matching up panels (I / 16 further), so the block holds both halves of its features;
  // with the RoPE epilogue (pb = 2) block b < rot_blocks holds panel j of a q or k head and
  // its partner D / 32 panels later, the v heads' blocks two panels in order.
  const int wpp = kWarps / pb, slot = warp / wpp, half = pb / 2;
  // RoPE: hp = D / 32 panel pairs per head, a power of two (head_dim 32, 64, 128 or 256).
  const int hs = p.rope_kv ? __ffs(p.rope.head_dim >> 5) - 1 : 0, hp = 1 << hs;
  const bool rot = p.rope_kv && static_cast<int>(blockIdx.x) < (p.rope.n_q_heads + p.rope.n_kv_heads) << hs;
  auto panel_of = [&](int j) {  // panel of slot j, -1 past the matrix
    if (p.silu) {
      const int gp = blockIdx.x * half + j % max(half, 1);
      return gp < p.N / 32 ? gp + (j >= half ? p.N / 32 : 0) : -1;
    }
    const int b = blockIdx.x;
    const int pn = rot ? ((b >> hs) << (hs + 1)) + (b & (hp - 1)) + (j << hs) : b * pb + j;
    return pn < (p.N + 15) / 16 ? pn : -1;
  };
  const int panel_or = panel_of(slot);
  const bool live = panel_or >= 0;
  const int panel = live ? panel_or : 0;
  const int per_warp = (p.ktiles + wpp - 1) / wpp;
  const int tb = live ? min((warp % wpp) * per_warp, p.ktiles) : 0;
  const int te = live ? min(tb + per_warp, p.ktiles) : 0;
  // Tiles with all TILE columns inside K go through the ring; the last tile of a K that is
  // not a multiple of TILE (x must be masked there) is done after it. XSM: the staged x is
  // zero past K, so every tile goes through the ring.
  const int te_ring = XSM ? te : max(tb, min(te, p.K / TILE));
  const uint4* wp = reinterpret_cast<const uint4*>(p.codes) + static_cast<int64_t>(panel) * p.ktiles * 64 + lane;

  pdl_launch_dependents();
  uint4 ring[DEPTH][2];
#pragma unroll
  for (int s = 0; s < DEPTH; ++s) {
    if (tb + s < te_ring) {
      ring[s][0] = ld_weight_u4(wp + (tb + s) * 64);
      ring[s][1] = ld_weight_u4(wp + (tb + s) * 64 + 32);
    } else {
      ring[s][0] = ring[s][1] = make_uint4(0, 0, 0, 0);
    }
  }

  // Groups [grp0, grp0 + ng) of this panel cover the warp's k range.
  int grp0 = 0, ng = 0;
  if (te > tb) {
    if (p.groups == 1) {
      ng = 1;
    } else {
      grp0 = tb * TILE / p.group_size;
      ng = min((te * TILE + p.group_size - 1) / p.group_size, p.groups) - grp0;
    }
  }
  {
    const int chunks = ng * SS;  // 16-byte chunks per tensor: ng groups x 16 rows x SS bytes
    const int64_t off = (static_cast<int64_t>(panel) * p.groups + grp0) * 16 * SS;
    const unsigned char* gs = static_cast<const unsigned char*>(p.scales) + off;
    const unsigned char* go = static_cast<const unsigned char*>(p.offsets) + off;
    for (int i = lane; i < (FP8 ? 1 : 2) * chunks; i += 32) {  // FP8: no offsets
      const bool second = i >= chunks;
      const int j = second ? i - chunks : i;
      cp_async16((second ? st_offsets : st_scales) + 16 * j, (second ? go : gs) + 16 * j, 16);
    }
    cp_async_commit();
  }

  // The block's bias values (rows of slot j at bias_s[16 j, 16 j + 16)), fetched now: read in
  // the epilogue they would be a DRAM round trip (evicted by the weight stream) at the end of
  // the grid's critical path.
  __shared__ float bias_s[kWarps * 16];
  if (p.bias && static_cast<int>(threadIdx.x) < pb * 16) {
    const int pj = panel_of(threadIdx.x >> 4), n = pj * 16 + (threadIdx.x & 15);
    bias_s[threadIdx.x] = pj >= 0 && n < p.N ? bias_at(p, n) : 0.0f;
  }
  // RoPE: each token's cos / sin of the block's 16 dims and its cache slot, also before the
  // wait (uploaded before the step's first kernel).
  __shared__ float cs_s[8][16][2];
  __shared__ int64_t slot_s[8];
  if (p.rope_kv) {
    const int i = threadIdx.x, D = p.rope.head_dim;
    if (rot && i < 16 * p.T) {
      const int tok = i >> 4, d = ((blockIdx.x & (hp - 1)) << 4) + (i & 15);
      const float* cs = p.rope.cos_sin + static_cast<int64_t>(p.rope.rope_rows[tok]) * D;
      cs_s[tok][i & 15][0] = cs[d];
      cs_s[tok][i & 15][1] = cs[D / 2 + d];
    } else if (i >= 128 && i < 128 + p.T) {
      slot_s[i - 128] = cache_slot(p.rope, i - 128);
    }
  }
  pdl_wait();  // x is the previous kernel's output
  const uint32_t* xr[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int tok = g + 8 * nt < p.T ? g + 8 * nt : 0;  // columns past T: row 0, never stored
    // word index of x[tok][2c]; + kt * TILE / 2 + 8 m gives x[tok][kt * TILE + 16 m + 2c]
    xr[nt] = reinterpret_cast<const uint32_t*>(p.x) + (static_cast<int64_t>(tok) * p.K >> 1) + c;
  }
  if constexpr (XSM) {
    // 16-byte chunk q = x[8 q, 8 q + 8) is chunk j = q % (TILE / 8) = 2 m + h of tile q / (TILE / 8):
    // its words are lane c's word h of step m. Lanes of one segment sum it with shuffles (a
    // segment is 2 SEGM chunks, which divides 32, and the trip count is the same in every warp).
    constexpr int CPT = TILE / 8, CPS = 2 * SEGM, BATCH = kStageBatch;  // loads in flight per thread
    const int chunks = p.ktiles * CPT;
    for (int q0 = 0; q0 < chunks; q0 += BATCH * kWarps * 32) {
      uint4 v[BATCH];
#pragma unroll
      for (int b = 0; b < BATCH; ++b) {
        const int q = q0 + b * kWarps * 32 + static_cast<int>(threadIdx.x);
        v[b] = q < chunks && 8 * q < p.K ? __ldg(reinterpret_cast<const uint4*>(p.x) + q)
                                         : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int b = 0; b < BATCH; ++b) {
        const int q = q0 + b * kWarps * 32 + static_cast<int>(threadIdx.x);
        float sum = 0.0f;
        uint32_t mx = 0;  // F16X: the largest |x| of the chunk, as bf16 bits (they order as the values)
#pragma unroll
        for (int w = 0; w < 4; ++w) {
          const uint32_t u = word_of(v[b], w);
          sum += __uint_as_float(u << 16) + __uint_as_float(u & 0xffff0000u);
          if constexpr (F16X) mx = max(mx, max(u & 0x7fffu, (u >> 16) & 0x7fffu));
        }
#pragma unroll
        for (int o = CPS / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        int E = 0;
        if constexpr (F16X) {
#pragma unroll
          for (int o = CPS / 2; o > 0; o >>= 1) mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, o));
          // max |x| 2^-E in [2^14, 2^15): f16 holds every bf16 value of the segment exactly
          // (down to 2^-24 of the largest), none overflows.
          E = max(static_cast<int>(mx >> 7) - 141, -64);
          const float inv = __int_as_float((127 - E) << 23);
          auto f16x2 = [inv](uint32_t u) {
            const __half2 h = __floats2half2_rn(__uint_as_float(u << 16) * inv, __uint_as_float(u & 0xffff0000u) * inv);
            return *reinterpret_cast<const uint32_t*>(&h);
          };
          v[b].x = f16x2(v[b].x);
          v[b].y = f16x2(v[b].y);
          v[b].z = f16x2(v[b].z);
          v[b].w = f16x2(v[b].w);
        }
        if (q < chunks) {
          uint32_t* d = xs + (q / CPT) * 4 * CW + q % CPT;
          d[0] = v[b].x;
          d[CW] = v[b].y;
          d[2 * CW] = v[b].z;
          d[3 * CW] = v[b].w;
          if (q % CPS == 0) {
            xsum[q / CPS] = sum;
            if constexpr (F16X) xscl[q / CPS] = __int_as_float((E + 127) << 23);
          }
        }
      }
    }
  }
  cp_async_wait<0>();
  if constexpr (XSM) __syncthreads();
  else __syncwarp();

  float tot[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) tot[nt][i] = 0.0f;

  // One k tile: x fragments, the MMAs, and per segment (a group, or the tile) the scaling
  //   tot += scale * sum (q + C) x + (offset - C * scale) * sum x.
  auto tile = [&](int kt, const uint4& lo, const uint4& hi, auto check) {
    [[maybe_unused]] constexpr bool CHECK = decltype(check)::value;
    uint32_t b[STEPS][NT][2];
    if constexpr (XSM) {
      const uint32_t* xw = xs + kt * 4 * CW + c * CW;
#pragma unroll
      for (int j = 0; j < STEPS / 2; ++j) {
        const uint4 v = *reinterpret_cast<const uint4*>(xw + 4 * j);
        b[2 * j][0][0] = v.x;
        b[2 * j][0][1] = v.y;
        b[2 * j + 1][0][0] = v.z;
        b[2 * j + 1][0][1] = v.w;
      }
    } else {
#pragma unroll
    for (int m = 0; m < STEPS; ++m)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        // Token columns >= T read row 0 (xr) and are never stored: no predicate, no zeroing.
        const uint32_t* xp = xr[nt] + kt * (TILE / 2) + 8 * m;
        if constexpr (CHECK) {
          const int k = kt * TILE + 16 * m + 2 * c;  // K % 8 == 0: k < K covers k + 1 too
          b[m][nt][0] = k < p.K ? __ldg(xp) : 0u;
          b[m][nt][1] = k + 8 < p.K ? __ldg(xp + 4) : 0u;
        } else {
          b[m][nt][0] = __ldg(xp);
          b[m][nt][1] = __ldg(xp + 4);
        }
      }
    }
    float acc[NT][4], accx[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = accx[nt][i] = 0.0f;
#pragma unroll
    for (int m = 0; m < STEPS; ++m) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        if constexpr (F16X) mma_codes_f16<BITS>(acc[nt], lo, hi, m, b[m][nt][0], b[m][nt][1]);
        else mma_codes<BITS>(acc[nt], lo, hi, m, b[m][nt][0], b[m][nt][1]);
        if constexpr (!XSM && !FP8) mma16816(accx[nt], kOnes, kOnes, kOnes, kOnes, b[m][nt][0], b[m][nt][1]);
      }
      if ((m + 1) % SEGM == 0) {
        // Group of this segment; a segment past K (last tile) has zero sums, its group is
        // clamped to stay in bounds.
        int grp = 0;
        if (p.groups > 1)
          grp = min(p.group_size <= TILE ? kt * NS + m / SEGM : kt * TILE / p.group_size, p.groups - 1);
        const int i0 = (grp - grp0) * 16 + g;
        const float sg = smem_scale<F16S>(st_scales, i0), sh = smem_scale<F16S>(st_scales, i0 + 8);
        [[maybe_unused]] const float og = FP8 ? 0.0f : smem_scale<F16S>(st_offsets, i0) - C * sg;
        [[maybe_unused]] const float oh = FP8 ? 0.0f : smem_scale<F16S>(st_offsets, i0 + 8) - C * sh;
        [[maybe_unused]] const float xsv = XSM && !FP8 ? xsum[kt * NS + m / SEGM] : 0.0f;  // T = 1: every column is token 0
        const float xsc = F16X ? xscl[kt * NS + m / SEGM] : 1.0f;  // 2^E: x was staged as x 2^-E
        const float sgx = sg * xsc, shx = sh * xsc;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            if constexpr (FP8) tot[nt][i] += (i < 2 ? sgx : shx) * acc[nt][i];
            else tot[nt][i] += (i < 2 ? sgx : shx) * acc[nt][i] + (i < 2 ? og : oh) * (XSM ? xsv : accx[nt][i]);
            acc[nt][i] = accx[nt][i] = 0.0f;
          }
      }
    }
  };

  int kt = tb;
  for (; kt + DEPTH <= te_ring; kt += DEPTH) {
#pragma unroll
    for (int s = 0; s < DEPTH; ++s) {
      const uint4 lo = ring[s][0], hi = ring[s][1];
      if (kt + DEPTH + s < te_ring) {  // refill the slot before using what it held
        ring[s][0] = ld_weight_u4(wp + (kt + DEPTH + s) * 64);
        ring[s][1] = ld_weight_u4(wp + (kt + DEPTH + s) * 64 + 32);
      }
      tile(kt + s, lo, hi, std::false_type{});
    }
  }
  for (; kt < te_ring; ++kt) {  // fewer than DEPTH tiles left, all loaded: shift the ring
    tile(kt, ring[0][0], ring[0][1], std::false_type{});
#pragma unroll
    for (int s = 0; s + 1 < DEPTH; ++s) {
      ring[s][0] = ring[s + 1][0];
      ring[s][1] = ring[s + 1][1];
    }
  }
  if constexpr (!XSM) {
    if (te > te_ring) {  // the last tile, K not a multiple of TILE (codes are zero-padded)
      const uint4 lo = ld_weight_u4(wp + te_ring * 64), hi = ld_weight_u4(wp + te_ring * 64 + 32);
      tile(te_ring, lo, hi, std::true_type{});
    }
  }

  // tot[nt]: {row g, tok 2c}, {row g, tok 2c+1}, {row g+8, tok 2c}, {row g+8, tok 2c+1} (+ 8 nt)
  constexpr int RS = NT * 8;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    red[(warp * 16 + g) * RS + nt * 8 + 2 * c] = tot[nt][0];
    red[(warp * 16 + g) * RS + nt * 8 + 2 * c + 1] = tot[nt][1];
    red[(warp * 16 + g + 8) * RS + nt * 8 + 2 * c] = tot[nt][2];
    red[(warp * 16 + g + 8) * RS + nt * 8 + 2 * c + 1] = tot[nt][3];
  }
  __syncthreads();
  OutT* out = static_cast<OutT*>(p.out);
  auto row_sum = [&](float v, int pl, int row, int tok) {  // v (the bias) + the panel's warp partials
    for (int w = 0; w < wpp; ++w) v += red[((pl * wpp + w) * 16 + row) * RS + tok];
    return v;
  };
  if (p.silu) {  // act[tok][n] = silu(gate) * up, each rounded to bf16 first as gate_up would be
    const int I = p.N / 2, rows = half * 16;
    for (int i = threadIdx.x; i < rows * p.T; i += kWarps * 32) {
      const int tok = i / rows, r = i - tok * rows;
      const int pl = r >> 4, row = r & 15;
      const int n = (blockIdx.x * half + pl) * 16 + row;
      if (n >= I) continue;
      const float gv = round_bf16(row_sum(p.bias ? bias_s[pl * 16 + row] : 0.0f, pl, row, tok));
      const float uv = round_bf16(row_sum(p.bias ? bias_s[(pl + half) * 16 + row] : 0.0f, pl + half, row, tok));
      store_val<OutT>(out + static_cast<int64_t>(tok) * I + n, silu_f32(gv) * uv);
    }
    return;
  }
  if (p.rope_kv) {  // pb = 2, bf16 out, T <= 8
    bf16* q = reinterpret_cast<bf16*>(p.out);
    const int D = p.rope.head_dim, nq = p.rope.n_q_heads, nkv = p.rope.n_kv_heads;
    if (rot) {
      // Slot 0 rows: dims d0 + r of the head, slot 1 rows: d0 + D/2 + r. bf16 between the
      // projection and the rotation, as the unfused ops.
      const int head = blockIdx.x >> hs, d0 = (blockIdx.x & (hp - 1)) << 4;
      bf16* k_cache = head >= nq ? p.rope.k_cache + static_cast<int64_t>(head - nq) * D : nullptr;
      for (int i = threadIdx.x; i < 16 * p.T; i += kWarps * 32) {
        const int row = i & 15, tok = i >> 4;
        const float v1 = round_bf16(row_sum(p.bias ? bias_s[row] : 0.0f, 0, row, tok));
        const float v2 = round_bf16(row_sum(p.bias ? bias_s[16 + row] : 0.0f, 1, row, tok));
        float y1, y2;
        rope_rotate(v1, v2, cs_s[tok][row][0], cs_s[tok][row][1], y1, y2);
        const bf16 b1 = __float2bfloat16_rn(y1), b2 = __float2bfloat16_rn(y2);
        const int n = head * D + d0 + row;
        q[static_cast<int64_t>(tok) * p.N + n] = b1;
        q[static_cast<int64_t>(tok) * p.N + n + D / 2] = b2;
        const int64_t s = slot_s[tok];
        if (k_cache && s >= 0) {
          bf16* c = k_cache + s * nkv * D + d0 + row;
          c[0] = b1;
          c[D / 2] = b2;
        }
      }
    } else {
      // v rows: two panels of one head (D % 32 == 0), to qkv and to the v cache.
      for (int i = threadIdx.x; i < 32 * p.T; i += kWarps * 32) {
        const int tok = i >> 5, pl = (i >> 4) & 1, row = i & 15;
        const int n = panel_of(pl) * 16 + row;
        const bf16 b = __float2bfloat16_rn(row_sum(p.bias ? bias_s[pl * 16 + row] : 0.0f, pl, row, tok));
        q[static_cast<int64_t>(tok) * p.N + n] = b;
        const int64_t s = slot_s[tok];
        if (s >= 0) p.rope.v_cache[(s * nkv + (n / D - nq - nkv)) * D + n % D] = b;
      }
    }
    return;
  }
  const int rows = pb * 16;
  for (int i = threadIdx.x; i < rows * p.T; i += kWarps * 32) {
    const int tok = i / rows, r = i - tok * rows;
    const int pl = r >> 4, row = r & 15;
    const int n = (blockIdx.x * pb + pl) * 16 + row;
    if (n >= p.N) continue;
    store_val<OutT>(out + static_cast<int64_t>(tok) * p.N + n, row_sum(p.bias ? bias_s[r] : 0.0f, pl, row, tok));
  }
  if constexpr (std::is_same_v<OutT, bf16>) {
    if (p.norm.counter) gemv_last_block_norm<XSB != kBlocksXs>(p.norm, out, p.T, p.N);  // kBlocksXs: 80 registers
  }
}

int device_attr(cudaDeviceAttr a) {
  int dev = 0, v = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaDeviceGetAttribute(&v, a, dev));
  return v;
}

size_t gemv_smem_bytes(const QuantGemmParams& p, int pb, int& gpw) {
  const int nt = p.T > 8 ? 2 : 1, ss = p.scales_f16 ? 2 : 4, wpp = kWarps / pb;
  gpw = staged_groups((p.ktiles + wpp - 1) / wpp, k_tile(p.bits), p.group_size, p.groups);
  return static_cast<size_t>(kWarps) * 16 * nt * 8 * 4 + 2 * static_cast<size_t>(kWarps) * gpw * 16 * ss;
}

// 16-row panels of p's N rows, and the grid of a launch with pb of them per block.
inline int gemv_panels(const QuantGemmParams& p) { return (p.N + 15) / 16; }
inline int gemv_blocks(const QuantGemmParams& p, int pb) { return (gemv_panels(p) + pb - 1) / pb; }

// Several panels per block (longer streams per warp) only while that still leaves >= 4
// blocks per SM; otherwise one panel per block and 8 warps over its k tiles, except where
// one panel per block would spill a few blocks into a second wave (`per_sm` blocks of 8
// warps are resident per SM): then 2 panels per block, all in one wave. 7B qkv (288 panels
// on 132 SMs, 2 blocks per SM), H200 run 39: 8.6 us with 1 panel per block (288 blocks),
// 7.0 us with 2 (144); int4 g64 9.3 -> 7.9, int8 11.7 -> 10.2.
int auto_panels_per_block(int panels, int sms, int per_sm) {
  for (int pb : {8, 4, 2})
    if ((panels + pb - 1) / pb >= 4 * sms) return pb;
  if (panels > per_sm * sms && (panels + 1) / 2 <= per_sm * sms) return 2;
  return 1;
}

struct GemvPlan {
  QuantGemvChoice choice;
  int gpw = 0;       // scale groups staged per warp
  size_t smem = 0;   // dynamic shared memory per block
};

// Panels per block and shared memory of one kernel; fewer panels per block (more warps split
// K, fewer groups each) while the staged scales would not leave `per_sm` blocks per SM. The
// SiLU epilogue pairs gate and up panels in a block: 2 panels per block at least.
GemvPlan plan_for(const QuantGemmParams& p, QuantGemmParams::GemvKernel kernel, size_t max_smem, int sms) {
  using K = QuantGemmParams::GemvKernel;
  const bool staged = kernel != K::XFromL1;
  const int per_sm = kernel == K::XStaged ? kBlocksXs : kernel == K::XStagedDeep ? kBlocksXsDeep : kBlocksL1;
  GemvPlan g;
  g.choice.kernel = kernel;
  const int min_pb = p.silu || p.rope_kv ? 2 : 1;
  int pb = p.gemv_panels_per_block ? p.gemv_panels_per_block
           : p.rope_kv             ? 2
                                   : std::max(min_pb, auto_panels_per_block(gemv_panels(p), sms, per_sm));
  TLLM_CHECK(pb == 1 || pb == 2 || pb == 4 || pb == 8, "quant_gemv: ", pb, " panels per block (1, 2, 4 or 8)");
  TLLM_CHECK(!p.rope_kv || pb == 2, "quant_gemv: the RoPE epilogue takes 2 panels per block, not ", pb);
  TLLM_CHECK(pb >= min_pb, "quant_gemv: the SiLU epilogue takes 2, 4 or 8 panels per block, not ", pb);
  const size_t xs = staged ? x_stage_bytes(p.bits, p.ktiles, segment_mmas(p)) : 0;
  g.smem = gemv_smem_bytes(p, pb, g.gpw) + xs;
  while (g.smem > max_smem / per_sm && pb > min_pb) {
    pb /= 2;
    g.smem = gemv_smem_bytes(p, pb, g.gpw) + xs;
  }
  g.choice.panels_per_block = pb;
  g.choice.gemm = g.smem > max_smem;
  return g;
}

// T = 1 takes the x-staged kernel (x and its segment sums in shared memory: no all-ones MMA,
// 4 instead of 16 loads of x per tile, 3 blocks per SM) where its grid has more blocks than
// 2 per SM: 7B int4 g128 (H200, run 84) gate|up 28.8 -> 22.3 us, q|k|v 7.0 -> 6.2, int8
// lm_head 146 -> 132. Smaller grids (o_proj and down: 224 blocks) keep the kernel with x
// from L1: staged, their blocks start later (o 5.0 -> 6.2 us, down 14.1 -> 19.6).
GemvPlan plan_gemv(const QuantGemmParams& p) {
  using K = QuantGemmParams::GemvKernel;
  const int sms = device_attr(cudaDevAttrMultiProcessorCount);
  const size_t max_smem = static_cast<size_t>(device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin));
  const bool forced_staged = p.gemv_kernel == K::XStaged || p.gemv_kernel == K::XStagedDeep;
  TLLM_CHECK(!forced_staged || p.T == 1, "quant_gemv: the x-staged kernel takes T = 1, not ", p.T);
  TLLM_CHECK(p.gemv_kernel != K::XStagedDeep || p.bits == 8, "quant_gemv: the deep x-staged kernel takes 8-bit codes");
  if (p.T == 1 && p.gemv_kernel != K::XFromL1) {
    GemvPlan s = plan_for(p, K::XStaged, max_smem, sms);
    if (p.gemv_kernel == K::XStaged && !s.choice.gemm) return s;
    const GemvPlan d = plan_for(p, K::XStagedDeep, max_smem, sms);
    if (p.gemv_kernel == K::XStagedDeep && !d.choice.gemm) return d;
    const int blocks = gemv_blocks(p, s.choice.panels_per_block);
    // The RoPE epilogue's 2-panel grid (7B q|k|v: 144 blocks) falls below the cut: staged, it
    // ran slower than from L1 (H200 run 132, 7B tg b1: int4 543.2 against 553.1 tok/s, int8
    // 371.4 against 384.1).
    if (s.smem <= max_smem / kBlocksXs && blocks > kBlocksL1 * sms) return s;
    // 8 bits, 1-2 blocks per SM: the deep staged kernel, where x is staged in one round of
    // loads. Its f16 operands halve the MMAs and cut the code unpacking of the kernel with x
    // from L1; a longer x (7B down: 3 rounds) delays the first tile more than that saves.
    const int dblocks = gemv_blocks(p, d.choice.panels_per_block);
    if (p.bits == 8 && dblocks >= sms && p.ktiles * k_tile(p.bits) <= kWarps * 32 * kStageBatch * 8 &&
        d.smem <= max_smem / kBlocksXsDeep)
      return d;
  }
  return plan_for(p, K::XFromL1, max_smem, sms);
}

}  // namespace

QuantGemvChoice quant_gemv_choice(const QuantGemmParams& p) { return plan_gemv(p).choice; }

bool quant_gemv_norm_supported(int T, int N) { return gemv_norm_fits(T, N, kWarps * 32); }

bool quant_gemv_rope_supported(int T, int n_q_heads, int n_kv_heads, int head_dim) {
  return T >= 1 && T <= 8 && n_q_heads > 0 && n_kv_heads > 0 &&
         (head_dim == 32 || head_dim == 64 || head_dim == 128 || head_dim == 256);
}

void quant_gemv(const QuantGemmParams& p, cudaStream_t stream) {
  check_params(p, "quant_gemv");
  TLLM_CHECK(p.T >= 1 && p.T <= kQuantGemvMaxTokens, "quant_gemv: T=", p.T, " outside [1, 16]");
  TLLM_CHECK(reinterpret_cast<uintptr_t>(p.scales) % 16 == 0 && reinterpret_cast<uintptr_t>(p.offsets) % 16 == 0,
             "quant_gemv: scales and offsets must be 16-byte aligned");
  const bool norm = p.norm.counter != nullptr;
  if (p.silu || norm) {
    TLLM_CHECK(p.out_dtype == DType::BF16, "quant_gemv: the SiLU and norm epilogues write bf16");
    TLLM_CHECK(!p.silu || !norm, "quant_gemv: one epilogue at a time");
    TLLM_CHECK(!p.silu || p.N % 32 == 0, "quant_gemv: the SiLU epilogue needs gate|up rows 2 I with I % 16 == 0, not ",
               p.N);
    TLLM_CHECK(!norm || quant_gemv_norm_supported(p.T, p.N), "quant_gemv: no fused norm for T=", p.T, " N=", p.N);
    TLLM_CHECK(!norm || (p.norm.residual && p.norm.normed && p.norm.weight), "quant_gemv: norm tensors missing");
  }
  if (p.rope_kv) {
    const QkNormRopeParams& r = p.rope;
    TLLM_CHECK(p.out_dtype == DType::BF16 && !p.silu && !norm, "quant_gemv: the RoPE epilogue writes bf16 q|k|v alone");
    TLLM_CHECK(quant_gemv_rope_supported(p.T, r.n_q_heads, r.n_kv_heads, r.head_dim), "quant_gemv: no RoPE epilogue for T=",
               p.T, " heads ", r.n_q_heads, "/", r.n_kv_heads, " x ", r.head_dim);
    TLLM_CHECK(p.N == (r.n_q_heads + 2 * r.n_kv_heads) * r.head_dim && r.row_stride == p.N && r.T == p.T,
               "quant_gemv: the RoPE epilogue's rows are the q|k|v heads, N=", p.N);
    TLLM_CHECK(r.rotary_dim == r.head_dim && !r.interleaved && !r.q_norm && !r.k_norm,
               "quant_gemv: the RoPE epilogue rotates whole heads split-half, without q/k norms");
    TLLM_CHECK(r.cos_sin && r.rope_rows && r.slot_mapping && r.k_cache && r.v_cache,
               "quant_gemv: RoPE tensors missing");
  }
  const GemvPlan plan = plan_gemv(p);
  if (plan.choice.gemm) {  // a very long K in small groups: the GEMM reads scales from global memory
    TLLM_CHECK(!p.silu && !norm && !p.rope_kv, "quant_gemv: no epilogue where the GEMM runs instead (K=", p.K, ")");
    quant_gemm(p, stream);
    return;
  }
  const int pb = plan.choice.panels_per_block, gpw = plan.gpw;
  const size_t smem = plan.smem;
  const QuantGemmParams::GemvKernel kernel = plan.choice.kernel;
  dispatch(p, [&](auto bits, auto segm, auto f16, auto* out_tag) {
    using OutT = std::remove_pointer_t<decltype(out_tag)>;
    auto launch = [&](auto kernel) {
      allow_dynamic_smem(kernel, smem);
      launch_pdl(kernel, dim3(gemv_blocks(p, pb)), dim3(kWarps * 32), smem, stream, p, pb, gpw);
    };
    constexpr int B = decltype(bits)::value, S = decltype(segm)::value;
    constexpr bool F = decltype(f16)::value;
    if (p.T > 8) {
      launch(quant_gemv_kernel<B, 2, S, F, OutT, 0>);
    } else if (kernel == QuantGemmParams::GemvKernel::XStagedDeep) {
      if constexpr (B != 4) launch(quant_gemv_kernel<B, 1, S, F, OutT, kBlocksXsDeep>);
      else TLLM_THROW("quant_gemv: the deep x-staged kernel takes 8-bit codes");  // plan_gemv never picks it
    } else if (kernel == QuantGemmParams::GemvKernel::XStaged) {
      launch(quant_gemv_kernel<B, 1, S, F, OutT, kBlocksXs>);
    } else {
      launch(quant_gemv_kernel<B, 1, S, F, OutT, 0>);
    }
  });
  CUDA_CHECK_LAUNCH("quant_gemv");
}

}  // namespace tllm::cuda
