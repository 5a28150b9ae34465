// The quantized GEMV of the persistent decoder-stack kernel (decoder_stack.cu, a quantized
// stack: StackQuantDims). The bf16 stack's gemv_tile does fp32 FMAs on 2 KB row segments; a
// 1 KB tile of 4-bit codes holds 2,048 weights, and FMAs on them would take ~200
// instructions a tile (an SM must finish one every ~60 cycles to keep up with HBM). So
// this GEMV takes quant_gemv's arithmetic (quant_ops.h): a code enters mma.m16n8k16 as the
// exact bf16 q + C, the input vector is the B operand (all 8 columns the same vector, so
// every lane's accumulators hold whole row sums and no lane reduction is needed), an MMA
// with an all-ones A sums x over each step, and per scale segment
//   out += scale * acc + (offset - C * scale) * X.
// ~100 instructions a tile (int4): 4 lop3 and 2 MMAs per 16-wide k step.
//
// Units are (16-row panel, k tile) of the block's panels; each warp takes a contiguous range
// of them with 1 tile in flight and the next requested before the current math (2 + 2, as
// gemv_tile, made the 128-register kernel spill 140 / 1,004 bytes (stores / loads); 1 + 1
// spills 36 / 164, and Qwen3-30B-A3B int4 g128 tg b1 went 388 -> 438 tok/s, H200 run 258).
// A unit's two row sums per lane land in part[unit][16] and a row sums its panel's units in
// order (deterministic). The input vector is in shared memory as bf16 in
// fragment order (XB: lane c of a 16-wide step reads x[2c, 2c + 1] and x[2c + 8, 2c + 9] as
// one 8-byte piece, two steps as one 16-byte load); the block's panels' scales and offsets
// are copied into shared memory by cp.async before the barrier wait, beside the first code
// requests.
#pragma once

#include "kernels/cuda/quant_common.cuh"
#include "kernels/quant_group_walk.h"

namespace tllm::cuda {
namespace stackq {

using namespace qk;

// The GEMV input of a quantized phase: `segs` segments of seg_len elements (the MoE down
// projection: one per chosen expert), each at kp (seg_len padded to the k tile with zeros).
struct XB {
  uint32_t* w = nullptr;  // bf16x2 words, in fragment order; null: not a quantized phase
  int seg_len = 0;
  int kp = 0;
};

// The word of element pair (k, k + 1) (k even) of a segment in fragment order: step s = k /
// 16, kk = k % 16; lane c = (kk % 8) / 2 reads [x 2c, x 2c+1, x 2c+8, x 2c+9] of step s as
// 8 bytes, steps 2p and 2p + 1 side by side (16 bytes of lane c at word 16 p + 4 c).
__device__ __forceinline__ int xb_word(int k) {
  const int s = k >> 4, kk = k & 15;
  return (s >> 1) * 16 + ((kk & 7) >> 1) * 4 + (s & 1) * 2 + (kk >> 3);
}

// Elements [k0, k0 + 8) (k0 % 8 == 0) of segment `seg` as bf16 (the values are bf16 already).
__device__ __forceinline__ void xb_store8(const XB& xb, int seg, int k0, const float (&f)[8]) {
  uint32_t* base = xb.w + seg * (xb.kp / 2);
#pragma unroll
  for (int t = 0; t < 8; t += 2) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(f[t], f[t + 1]);
    base[xb_word(k0 + t)] = *reinterpret_cast<const uint32_t*>(&v);
  }
}

// Zeros in [seg_len, kp) of every segment (the codes there are padding: x must be 0).
__device__ __forceinline__ void xb_pad(const XB& xb, int segs, int threads) {
  const int pad = (xb.kp - xb.seg_len) / 2;  // words
  for (int i = threadIdx.x; i < segs * pad; i += threads) {
    const int seg = i / pad, k = xb.seg_len + 2 * (i - seg * pad);
    xb.w[seg * (xb.kp / 2) + xb_word(k)] = 0u;
  }
}

// One panel of a quantized projection: its codes, scales and offsets.
struct Panel {
  const uint8_t* codes;
  const unsigned char* scales;
  const unsigned char* offsets;  // null: FP8
};

// Panel gp of the projection w (psb: bytes of one panel's scales).
__device__ __forceinline__ Panel panel_at(const StackQuantPtrs& w, int64_t gp, int ktiles, int psb) {
  return {w.codes + gp * ktiles * 1024, static_cast<const unsigned char*>(w.scales) + gp * psb,
          w.offsets ? static_cast<const unsigned char*>(w.offsets) + gp * psb : nullptr};
}

// Bytes of one panel's scales (or offsets).
__host__ __device__ inline int panel_scale_bytes(const StackQuantK& q, bool f16) {
  return q.groups * 16 * (f16 ? 2 : 4);
}

// This block's share of a quantized GEMV: P panels (panel_of(i): panel i's codes and scales,
// seg_of(i): its input segment) of a projection with k-tiling q. arrive() runs first, then
// the first tiles are requested and the panels' scales staged (`stage`: 2 P panel_scale_bytes),
// then pre() waits at the barrier and fills the input; epi(row_sum) runs on every thread with
// row_sum(r) the dot product of row r % 16 of panel r / 16. ev() marks as gemv_tile's.
template <int BITS, int WARPS, typename PanelOf, typename SegOf, typename Arrive, typename Pre, typename Epi,
          typename Ev>
__device__ __forceinline__ void qgemv_tile(int P, const StackQuantK& q, bool f16s, PanelOf panel_of, SegOf seg_of,
                                           const XB& xb, float* part, unsigned char* stage, Arrive arrive, Pre pre,
                                           Epi epi, Ev ev) {
  constexpr int TILE = BITS == 4 ? 128 : 64, STEPS = TILE / 16, U = 1;
  constexpr float C = code_bias(BITS, false);
  constexpr bool FP8 = is_fp8(BITS);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int KT = q.ktiles, units = P * KT;
  const int u_begin = warp * units / WARPS, u_end = (warp + 1) * units / WARPS;
  const int psb = panel_scale_bytes(q, f16s);
  arrive();
  // Issue cursor: the panel and tile of the next request.
  int ii = u_begin / KT, it = u_begin - ii * KT;
  const uint8_t* iw = u_begin < u_end ? panel_of(ii).codes + 16 * lane : nullptr;
  auto issue = [&](uint4 (&r)[2]) {
    r[0] = ld_weight_u4(iw + it * 1024);
    r[1] = ld_weight_u4(iw + it * 1024 + 512);
    if (++it == KT) {
      it = 0;
      ++ii;
      if (ii < P) iw = panel_of(ii).codes + 16 * lane;
    }
  };
  uint4 a[U][2];
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (u_begin + u < u_end) issue(a[u]);
  // The block's panels' scales (then offsets) into shared memory, 16 bytes a thread.
  {
    const int per = psb / 16, kinds = FP8 ? 1 : 2;
    for (int j = threadIdx.x; j < P * kinds * per; j += WARPS * 32) {
      const int i = j / (kinds * per), rem = j - i * kinds * per, kind = rem / per, off = 16 * (rem - kind * per);
      const Panel pn = panel_of(i);
      cp_async16(stage + (2 * i + kind) * psb + off, (kind ? pn.offsets : pn.scales) + off);
    }
  }
  pre();
  cp_async_wait_all();
  __syncthreads();
  ev();
  // Math cursor.
  int mi = u_begin / KT, mt = u_begin - mi * KT;
  quant::GroupWalk walk(mt * TILE, q.group_size);
  const uint4* xq = reinterpret_cast<const uint4*>(xb.w) + (u_begin < u_end ? seg_of(mi) : 0) * (xb.kp / 8) + c;
  auto math = [&](int unit, const uint4 (&r)[2]) {
    const unsigned char* ss = stage + 2 * mi * psb;
    const unsigned char* so = ss + psb;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, accx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    float t0 = 0.0f, t1 = 0.0f;  // rows g and g + 8 of the panel
    uint4 xv = make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int m = 0; m < STEPS; ++m) {
      if (m % 2 == 0) xv = xq[(mt * STEPS + m) / 2 * 4];
      const uint32_t b0 = m % 2 ? xv.z : xv.x, b1 = m % 2 ? xv.w : xv.y;
      mma_codes<BITS>(acc, r[0], r[1], m, b0, b1);
      if constexpr (!FP8) mma16816(accx, kOnes, kOnes, kOnes, kOnes, b0, b1);
      const int step_group = walk.group;
      if (walk.step() || m == STEPS - 1) {  // a scale segment ends (a group's end or the tile's)
        const int grp = q.groups == 1 ? 0 : min(step_group, q.groups - 1);
        const int i0 = grp * 16 + g;
        const float sg = staged(ss, f16s, i0), sh = staged(ss, f16s, i0 + 8);
        if constexpr (FP8) {
          t0 += sg * acc[0];
          t1 += sh * acc[2];
        } else {
          t0 += sg * acc[0] + (staged(so, f16s, i0) - C * sg) * accx[0];
          t1 += sh * acc[2] + (staged(so, f16s, i0 + 8) - C * sh) * accx[2];
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[e] = accx[e] = 0.0f;
      }
    }
    if (c == 0) {
      part[unit * 16 + g] = t0;
      part[unit * 16 + g + 8] = t1;
    }
    if (++mt == KT) {  // the next panel
      mt = 0;
      ++mi;
      walk.group = 0;
      walk.left = walk.steps;
      if (mi < P) xq = reinterpret_cast<const uint4*>(xb.w) + seg_of(mi) * (xb.kp / 8) + c;
    }
  };
  for (int u0 = u_begin; u0 < u_end; u0 += U) {
    uint4 b[U][2];
    const bool more = u0 + U < u_end;
    if (more) {
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (u0 + U + u < u_end) issue(b[u]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (u0 + u < u_end) math(u0 + u, a[u]);
    if (more) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        a[u][0] = b[u][0];
        a[u][1] = b[u][1];
      }
    }
  }
  ev();
  __syncthreads();
  ev();
  epi([&](int r) {
    const float* pr = part + (r >> 4) * KT * 16 + (r & 15);
    float sum = 0.0f;
    for (int t = 0; t < KT; ++t) sum += pr[t * 16];
    return sum;
  });
  ev();
  __syncthreads();
}

}  // namespace stackq
}  // namespace tllm::cuda
