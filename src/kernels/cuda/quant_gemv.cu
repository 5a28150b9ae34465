// Decode path of the quantized linear (quant_ops.h): out[T, N] = x[T, K] W^T (+ bias) for
// T <= 16, W4A16 / W8A16 codes in the CUDA layout of kernels/quant_layout.h (per 16-row panel
// and k tile one 1024-byte block; lane L reads its A fragments of every k step of the tile
// with two 16-byte loads at [16 L, 16 L + 16) and [512 + 16 L, ...)).
//
// Batch-1..16 decode is bound by streaming the codes once from HBM. The first version (one
// panel per block, 2 tiles per lane in flight, scales read from global memory inside the k
// loop) ran at 23% (int4) / 37% (int8) of the copy rate on an H200; this one is built for the
// stream:
// - Bytes in flight: every lane keeps kDepth = 4 tiles of codes (4 x 32 B) in a register
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
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/quant_common.cuh"
#include "kernels/cuda/quant_ops.h"

namespace tllm::cuda {
namespace {

using namespace qk;

constexpr int kWarps = 8;
constexpr int kDepth = 4;  // k tiles of codes in flight per lane

// Scale groups a warp stages for a range of `tiles` k tiles (a range may start inside a
// group when groups span several tiles). Host (shared memory size) and kernel agree on it.
__host__ __device__ inline int staged_groups(int tiles, int tile, int group_size, int groups) {
  if (groups == 1) return 1;
  const int n = group_size <= tile ? tiles * (tile / group_size) : tiles * tile / group_size + 2;
  return n < groups ? n : groups;
}

template <bool F16S>
__device__ __forceinline__ float smem_scale(const unsigned char* base, int i) {
  if constexpr (F16S) {
    return __half2float(reinterpret_cast<const __half*>(base)[i]);
  } else {
    return reinterpret_cast<const float*>(base)[i];
  }
}

// grid.x = ceil(panels / pb), block = 8 warps; warp w works on panel blockIdx.x * pb + w / wpp
// (wpp = 8 / pb), k tiles [tb, te) of it. Dynamic shared memory:
//   red      f32 [8 warps][16 rows][NT * 8 tokens]   (partials, summed over a panel's warps)
//   scales   [8 warps][gpw groups][16 rows]           (f16 or f32, as stored)
//   offsets  [8 warps][gpw groups][16 rows]
template <int BITS, int NT, int SEGM, bool F16S, typename OutT>
__global__ void __launch_bounds__(kWarps * 32, 2)
    quant_gemv_kernel(const __grid_constant__ QuantGemmParams p, int pb, int gpw) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16, NS = STEPS / SEGM;
  constexpr int SS = F16S ? 2 : 4;      // bytes per scale
  constexpr float C = BITS == 4 ? 128.0f : 2176.0f;
  static_assert(STEPS % SEGM == 0, "a segment divides the tile");

  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, c = lane & 3;
  float* red = reinterpret_cast<float*>(smem);
  unsigned char* st_scales = smem + kWarps * 16 * NT * 8 * 4 + warp * gpw * 16 * SS;
  unsigned char* st_offsets = st_scales + kWarps * gpw * 16 * SS;

  const int wpp = kWarps / pb;
  const int panel = blockIdx.x * pb + warp / wpp;
  const bool live = panel < (p.N + 15) / 16;
  const int per_warp = (p.ktiles + wpp - 1) / wpp;
  const int tb = live ? min((warp % wpp) * per_warp, p.ktiles) : 0;
  const int te = live ? min(tb + per_warp, p.ktiles) : 0;
  // Tiles with all TILE columns inside K go through the ring; the last tile of a K that is
  // not a multiple of TILE (x must be masked there) is done after it.
  const int te_ring = max(tb, min(te, p.K / TILE));
  const uint4* wp = reinterpret_cast<const uint4*>(p.codes) + static_cast<int64_t>(live ? panel : 0) * p.ktiles * 64 + lane;

  pdl_launch_dependents();
  uint4 ring[kDepth][2];
#pragma unroll
  for (int s = 0; s < kDepth; ++s) {
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
    for (int i = lane; i < 2 * chunks; i += 32) {
      const bool second = i >= chunks;
      const int j = second ? i - chunks : i;
      cp_async16((second ? st_offsets : st_scales) + 16 * j, (second ? go : gs) + 16 * j, 16);
    }
    cp_async_commit();
  }

  pdl_wait();  // x is the previous kernel's output
  const uint32_t* xr[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int tok = g + 8 * nt < p.T ? g + 8 * nt : 0;  // columns past T: row 0, never stored
    // word index of x[tok][2c]; + kt * TILE / 2 + 8 m gives x[tok][kt * TILE + 16 m + 2c]
    xr[nt] = reinterpret_cast<const uint32_t*>(p.x) + (static_cast<int64_t>(tok) * p.K >> 1) + c;
  }
  cp_async_wait<0>();
  __syncwarp();

  float tot[NT][4];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int i = 0; i < 4; ++i) tot[nt][i] = 0.0f;

  // One k tile: x fragments, the MMAs, and per segment (a group, or the tile) the scaling
  //   tot += scale * sum (q + C) x + (offset - C * scale) * sum x.
  auto tile = [&](int kt, const uint4& lo, const uint4& hi, auto check) {
    constexpr bool CHECK = decltype(check)::value;
    uint32_t b[STEPS][NT][2];
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
    float acc[NT][4], accx[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = accx[nt][i] = 0.0f;
#pragma unroll
    for (int m = 0; m < STEPS; ++m) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        mma_codes<BITS>(acc[nt], lo, hi, m, b[m][nt][0], b[m][nt][1]);
        mma16816(accx[nt], kOnes, kOnes, kOnes, kOnes, b[m][nt][0], b[m][nt][1]);
      }
      if ((m + 1) % SEGM == 0) {
        // Group of this segment; a segment past K (last tile) has zero sums, its group is
        // clamped to stay in bounds.
        int grp = 0;
        if (p.groups > 1)
          grp = min(p.group_size <= TILE ? kt * NS + m / SEGM : kt * TILE / p.group_size, p.groups - 1);
        const int i0 = (grp - grp0) * 16 + g;
        const float sg = smem_scale<F16S>(st_scales, i0), sh = smem_scale<F16S>(st_scales, i0 + 8);
        const float og = smem_scale<F16S>(st_offsets, i0) - C * sg;
        const float oh = smem_scale<F16S>(st_offsets, i0 + 8) - C * sh;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            tot[nt][i] += (i < 2 ? sg : sh) * acc[nt][i] + (i < 2 ? og : oh) * accx[nt][i];
            acc[nt][i] = accx[nt][i] = 0.0f;
          }
      }
    }
  };

  int kt = tb;
  for (; kt + kDepth <= te_ring; kt += kDepth) {
#pragma unroll
    for (int s = 0; s < kDepth; ++s) {
      const uint4 lo = ring[s][0], hi = ring[s][1];
      if (kt + kDepth + s < te_ring) {  // refill the slot before using what it held
        ring[s][0] = ld_weight_u4(wp + (kt + kDepth + s) * 64);
        ring[s][1] = ld_weight_u4(wp + (kt + kDepth + s) * 64 + 32);
      }
      tile(kt + s, lo, hi, std::false_type{});
    }
  }
  for (; kt < te_ring; ++kt) {  // fewer than kDepth tiles left, all loaded: shift the ring
    tile(kt, ring[0][0], ring[0][1], std::false_type{});
#pragma unroll
    for (int s = 0; s + 1 < kDepth; ++s) {
      ring[s][0] = ring[s + 1][0];
      ring[s][1] = ring[s + 1][1];
    }
  }
  if (te > te_ring) {  // the last tile, K not a multiple of TILE (codes are zero-padded)
    const uint4 lo = ld_weight_u4(wp + te_ring * 64), hi = ld_weight_u4(wp + te_ring * 64 + 32);
    tile(te_ring, lo, hi, std::true_type{});
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
  const int rows = pb * 16;
  for (int i = threadIdx.x; i < rows * p.T; i += kWarps * 32) {
    const int tok = i / rows, r = i - tok * rows;
    const int pl = r >> 4, row = r & 15;
    const int n = (blockIdx.x * pb + pl) * 16 + row;
    if (n >= p.N) continue;
    float v = bias_at(p, n);
    for (int w = 0; w < wpp; ++w) v += red[((pl * wpp + w) * 16 + row) * RS + tok];
    store_val<OutT>(out + static_cast<int64_t>(tok) * p.N + n, v);
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

}  // namespace

int quant_gemv_auto_panels_per_block(const QuantGemmParams& p) {
  // Several panels per block (longer streams per warp) only while that still leaves >= 4
  // blocks per SM; otherwise one panel per block and 8 warps over its k tiles, except where
  // one panel per block would spill a few blocks into a second wave (2 blocks of 8 warps are
  // resident per SM): then 2 panels per block, all in one wave. 7B qkv (288 panels on 132
  // SMs), H200 run 39: 8.6 us with 1 panel per block (288 blocks), 7.0 us with 2 (144);
  // int4 g64 9.3 -> 7.9, int8 11.7 -> 10.2.
  const int sms = device_attr(cudaDevAttrMultiProcessorCount);
  const int panels = (p.N + 15) / 16, resident = 2 * sms;
  for (int pb : {8, 4, 2})
    if ((panels + pb - 1) / pb >= 4 * sms) return pb;
  if (panels > resident && (panels + 1) / 2 <= resident) return 2;
  return 1;
}

void quant_gemv(const QuantGemmParams& p, cudaStream_t stream) {
  check_params(p, "quant_gemv");
  TLLM_CHECK(p.T >= 1 && p.T <= kQuantGemvMaxTokens, "quant_gemv: T=", p.T, " outside [1, 16]");
  TLLM_CHECK(reinterpret_cast<uintptr_t>(p.scales) % 16 == 0 && reinterpret_cast<uintptr_t>(p.offsets) % 16 == 0,
             "quant_gemv: scales and offsets must be 16-byte aligned");
  int pb = p.gemv_panels_per_block ? p.gemv_panels_per_block : quant_gemv_auto_panels_per_block(p);
  TLLM_CHECK(pb == 1 || pb == 2 || pb == 4 || pb == 8, "quant_gemv: ", pb, " panels per block (1, 2, 4 or 8)");
  const size_t max_smem = static_cast<size_t>(device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin));
  int gpw = 0;
  size_t smem = gemv_smem_bytes(p, pb, gpw);
  while (smem > max_smem / 2 && pb > 1) {  // fewer panels: more warps split K, fewer groups each
    pb /= 2;
    smem = gemv_smem_bytes(p, pb, gpw);
  }
  if (smem > max_smem) {  // a very long K in small groups: the GEMM reads scales from global memory
    quant_gemm(p, stream);
    return;
  }
  dispatch(p, [&](auto bits, auto segm, auto f16, auto* out_tag) {
    using OutT = std::remove_pointer_t<decltype(out_tag)>;
    auto launch = [&](auto kernel) {
      if (smem > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
      launch_pdl(kernel, dim3(((p.N + 15) / 16 + pb - 1) / pb), dim3(kWarps * 32), smem, stream, p, pb, gpw);
    };
    constexpr int B = decltype(bits)::value, S = decltype(segm)::value;
    constexpr bool F = decltype(f16)::value;
    if (p.T > 8) launch(quant_gemv_kernel<B, 2, S, F, OutT>);
    else launch(quant_gemv_kernel<B, 1, S, F, OutT>);
  });
  CUDA_CHECK_LAUNCH("quant_gemv");
}

}  // namespace tllm::cuda
