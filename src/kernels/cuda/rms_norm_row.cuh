// One row of (add_)rms_norm by a block, shared by the rms_norm kernels and the skinny GEMM's
// fused epilogue (gemv.cu), so both give the same bits: the first `nthr` threads own the
// row's 16-byte vectors i = t + j * nthr (j < kNormMaxVec), the other threads of the block
// only join the reduction with zeros (which leaves the sum unchanged).
#pragma once

#include <type_traits>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

constexpr int kNormMaxVec = 4;  // 1024 threads * 4 * 8 = rows up to 32768 wide

// Threads of the one-row-per-block kernel for a row of H (H % 8 == 0, H / 8 <= 4096).
__host__ __device__ inline int rms_norm_threads(int H) {
  const int nvec = H / 8;
  const int t = ((nvec + kNormMaxVec - 1) / kNormMaxVec + 31) / 32 * 32;
  return t < 32 ? 32 : (t > 1024 ? 1024 : t);
}

// Whether gemv_last_block_norm (below) takes T rows of N in a block of `block_threads`.
inline bool gemv_norm_fits(int T, int64_t N, int block_threads) {
  return T >= 1 && T <= kGemvNormMaxTokens && N % 8 == 0 && N / 8 <= 1024 * kNormMaxVec &&
         rms_norm_threads(static_cast<int>(N)) <= block_threads;
}

template <typename W>
__device__ __forceinline__ void load_w8(const W* w, int i, float (&f)[8]);
template <>
__device__ __forceinline__ void load_w8<float>(const float* w, int i, float (&f)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(w + i);
  const float4 b = *reinterpret_cast<const float4*>(w + i + 4);
  f[0] = a.x; f[1] = a.y; f[2] = a.z; f[3] = a.w; f[4] = b.x; f[5] = b.y; f[6] = b.z; f[7] = b.w;
}
template <>
__device__ __forceinline__ void load_w8<__nv_bfloat16>(const __nv_bfloat16* w, int i, float (&f)[8]) {
  bf16x8_to_f32(*reinterpret_cast<const uint4*>(w + i), f);
}

// ADD: residual = bf16(residual + x) first, and the norm reads the rounded residual (as HF,
// whose residual stream is bf16). x and residual are read through L2 (ld.cg): in the fused
// epilogue x was just written by other blocks. WEIGHTS_FIRST: the norm weights are loaded
// with the row (32 more registers), not after the reduction: in a decode step they have
// been evicted from L2 by the weight stream, and the GEMV epilogue's last block is on the
// critical path (the standalone kernels keep their register budget). Same bits either way.
// Every thread of the block must call this. WARP: one warp normalises the row alone (nthr =
// 32, the norm kernel's block for rows up to 1,024 wide; every lane of the warp calls it):
// its warp_sum is that block's block_sum, whose second pass adds zeros, so same bits. GROUP:
// the nthr threads [g nthr, (g + 1) nthr) of the block (g = threadIdx.x / nthr) normalise the
// row alone, reducing through their warps' scratch slots and named barrier 1 + g: the norm
// kernel's nthr-thread block_sum, so same bits; every thread of the group calls it.
template <typename W, bool ADD, bool WEIGHTS_FIRST = false, bool WARP = false, bool GROUP = false>
__device__ __forceinline__ void rms_norm_row(bf16* out, const bf16* x, bf16* residual, const W* __restrict__ w,
                                             int H, float eps, int nthr, float* scratch) {
  const int nvec = H / 8;
  const int t = WARP    ? static_cast<int>(threadIdx.x & 31)
                : GROUP ? static_cast<int>(threadIdx.x) % nthr
                        : static_cast<int>(threadIdx.x);
  uint4 v[kNormMaxVec], rv[kNormMaxVec];
  float g[WEIGHTS_FIRST ? kNormMaxVec : 1][8];
  // All loads first, so that every vector of the thread is in flight at once.
#pragma unroll
  for (int j = 0; j < kNormMaxVec; ++j) {
    const int i = t + j * nthr;
    if (t < nthr && i < nvec) {
      v[j] = __ldcg(reinterpret_cast<const uint4*>(x) + i);
      if constexpr (ADD) rv[j] = __ldcg(reinterpret_cast<const uint4*>(residual) + i);
      if constexpr (WEIGHTS_FIRST) load_w8<W>(w, i * 8, g[j]);
    }
  }
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kNormMaxVec; ++j) {
    const int i = t + j * nthr;
    if (t < nthr && i < nvec) {
      float f[8];
      bf16x8_to_f32(v[j], f);
      if constexpr (ADD) {
        float r[8];
        bf16x8_to_f32(rv[j], r);
#pragma unroll
        for (int e = 0; e < 8; ++e) f[e] = round_bf16(f[e] + r[e]);
        v[j] = f32_to_bf16x8(f);
        reinterpret_cast<uint4*>(residual)[i] = v[j];
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += f[e] * f[e];
    }
  }
  float sum;
  if constexpr (WARP) {
    sum = warp_sum(ss);
  } else if constexpr (GROUP) {
    const int g = static_cast<int>(threadIdx.x) / nthr, lane = static_cast<int>(threadIdx.x & 31);
    const int warp = static_cast<int>(threadIdx.x >> 5), w0 = g * nthr / 32;
    ss = warp_sum(ss);
    named_bar_sync(1 + g, nthr);  // the group's scratch slots free (as block_sum's first barrier)
    if (lane == 0) scratch[warp] = ss;
    named_bar_sync(1 + g, nthr);
    sum = warp_sum(lane < nthr / 32 ? scratch[w0 + lane] : 0.0f);
  } else {
    sum = block_sum(ss, scratch);
  }
  const float inv = rsqrtf(sum / static_cast<float>(H) + eps);
#pragma unroll
  for (int j = 0; j < kNormMaxVec; ++j) {
    const int i = t + j * nthr;
    if (t < nthr && i < nvec) {
      float f[8];
      bf16x8_to_f32(v[j], f);
      if constexpr (!WEIGHTS_FIRST) load_w8<W>(w, i * 8, g[0]);
      const float* gj = g[WEIGHTS_FIRST ? j : 0];
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] = f[e] * inv * gj[e];
      reinterpret_cast<uint4*>(out)[i] = f32_to_bf16x8(f);
    }
  }
}

// The residual add + RMSNorm that follows a decode GEMV (gemv.cu, quant_gemv.cu), run by the
// last block of the grid to finish: each block fences its stores of out [T, N] (bf16) and
// counts itself on norm.counter; the last one sees them all, updates the residual, writes
// the normed rows (rms_norm_row: the bits of the add_rms_norm kernel) and resets the
// counter. Rows of up to 1,024 (rms_norm_threads 32) go a warp each, side by side (H200 run
// 174: 0.5B b4 4,795 -> 5,842 tok/s against one row after another); wider rows a group of
// rms_norm_threads(N) threads each, as many side by side as the block holds (run 175: 1.5B
// b2 / b4 +3% / +9%, 7B +1% / +2%, 7B int4 b4 +2%), else one after another with the whole
// block. (Above 4 tokens the standalone norm kernel stays faster: with a warp per row in the
// last block, 0.5B b8 -3.4%, b32 -15%, run 174; with the grid's last T blocks a row each,
// polling for the last, -5% / -3.5%, run 170.) Nobody else reads the residual during the
// GEMV, so updating it in place is safe.
// Every thread of the block calls it, after the block's own stores; rms_norm_threads(N)
// must not exceed the block size.
// WEIGHTS_FIRST: as rms_norm_row's (kernels with registers to spare).
template <bool WEIGHTS_FIRST = true>
__device__ __forceinline__ void gemv_last_block_norm(const GemvNorm& norm, const bf16* out, int T, int N) {
  __shared__ unsigned int last;
  __shared__ float scratch[32];
  __threadfence();  // this block's outputs, before it counts itself done
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(norm.counter, 1u) == gridDim.x - 1;
  __syncthreads();
  if (last) {
    __threadfence();
    const int nthr = rms_norm_threads(N), groups = static_cast<int>(blockDim.x) / nthr;
    auto row = [&](auto warp, auto group, int tok) {
      rms_norm_row<float, true, WEIGHTS_FIRST, decltype(warp)::value, decltype(group)::value>(
          norm.normed + static_cast<int64_t>(tok) * N, out + static_cast<int64_t>(tok) * N,
          norm.residual + static_cast<int64_t>(tok) * N, norm.weight, N, norm.eps, nthr, scratch);
    };
    if (T > 1 && nthr == 32) {
      const int warps = static_cast<int>(blockDim.x >> 5);
      for (int tok = static_cast<int>(threadIdx.x >> 5); tok < T; tok += warps)
        row(std::true_type{}, std::false_type{}, tok);
    } else if (T > 1 && groups > 1) {
      // A group's threads take the same rows, so its named barrier sees all of them.
      const int g = static_cast<int>(threadIdx.x) / nthr;
      if (g < groups)
        for (int tok = g; tok < T; tok += groups) row(std::false_type{}, std::true_type{}, tok);
    } else {
      for (int tok = 0; tok < T; ++tok) row(std::false_type{}, std::false_type{}, tok);
    }
    if (threadIdx.x == 0) *norm.counter = 0;
  }
}

}  // namespace tllm::cuda
