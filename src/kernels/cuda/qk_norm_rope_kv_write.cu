// In place on qkv: the projection's bias where the GEMM left it out (prefill: it saves a
// pass over qkv), per-head RMSNorm of q and k (Qwen3), RoPE of q and k, then k and v of
// each token written to its cache slot. One warp per (token, head); the head goes through
// a per-warp f32 buffer in shared memory so RoPE can pair any two dims (split-half or
// interleaved, rotary_dim <= head_dim).
//
// Where head_dim is 64, 128 or 256 and the rows are aligned, lane L moves elements
// [VEC L, VEC L + VEC) with one 4/8/16-byte load and store (VEC = head_dim / 32) instead of
// VEC 2-byte ones: the 7B prefill of 4,096 tokens ran this op at 30% of the copy rate with
// 2-byte accesses (65 us per layer, H200 run 21), 40% with vector accesses (49-50 us, runs
// 25-26; loading a lane's cos / sin together with the head measured the same, not kept).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 512;

// VEC elements of bf16 as one load / store.
template <int VEC> struct VecOf;
template <> struct VecOf<2> { using T = uint32_t; };
template <> struct VecOf<4> { using T = uint2; };
template <> struct VecOf<8> { using T = uint4; };

// Element `col` of a q|k|v row plus the projection's bias (QkNormRopeParams::bias), rounded
// to bf16 as add_bias rounds it.
__device__ __forceinline__ bf16 with_bias(const QkNormRopeParams& p, bf16 v, int64_t col) {
  // add_bias_kernel's arithmetic (linear.cu), so that qkv keeps the bits of linear + bias.
  const float b = p.bias_bf16 ? to_f32<bf16>(static_cast<const bf16*>(p.bias)[col])
                              : to_f32<float>(static_cast<const float*>(p.bias)[col]);
  return from_f32<bf16>(to_f32<bf16>(v) + b);
}

// VEC elements of head h held by lane `lane` (dims [VEC lane, VEC lane + VEC)), biased in place.
template <typename V, int VEC>
__device__ __forceinline__ void add_bias_vec(const QkNormRopeParams& p, V& raw, int h, int lane) {
  bf16* e = reinterpret_cast<bf16*>(&raw);
  const int64_t col = static_cast<int64_t>(h) * p.head_dim + VEC * lane;
#pragma unroll
  for (int j = 0; j < VEC; ++j) e[j] = with_bias(p, e[j], col + j);
}

// VEC = 0: any head_dim, one element per lane and step; VEC > 0: head_dim == 32 VEC.
template <typename W, int VEC>
__global__ void __launch_bounds__(kWarps * 32) qk_norm_rope_kernel(const QkNormRopeParams p) {
  __shared__ __align__(16) float buf[kWarps][kMaxHeadDim];
  // Launched with PDL: qkv comes from the projection just before. release_at_entry (set by
  // the backend for quantized q|k|v without q/k norms: CudaBackend::linear_rope_kv_write) lets
  // the decode attention start now, so that its loads of earlier steps' keys overlap the
  // projection; it waits in griddepcontrol.wait for this grid.
  if (p.release_at_entry) pdl_launch_dependents();
  pdl_wait();
  if (!p.release_at_entry) pdl_launch_dependents();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x;
  const int head = blockIdx.y * kWarps + warp;  // [0, n_q) q, [n_q, n_q+n_kv) k, then v
  const int nq = p.n_q_heads, nkv = p.n_kv_heads, D = p.head_dim;
  if (head >= nq + 2 * nkv) return;
  const bool is_q = head < nq, is_k = !is_q && head < nq + nkv, is_v = head >= nq + nkv;
  bf16* src = p.qkv + static_cast<int64_t>(t) * p.row_stride + static_cast<int64_t>(head) * D;

  const int64_t slot = is_q ? -1 : cache_slot(p, t);
  const int kvh = is_k ? head - nq : head - nq - nkv;
  bf16* cache_dst = nullptr;
  if (slot >= 0) {
    bf16* cache = is_k ? p.k_cache : p.v_cache;
    cache_dst = cache + (slot * nkv + kvh) * D;
  }
  using V = typename VecOf<VEC == 0 ? 2 : VEC>::T;
  if (is_v && p.bias) {  // v plus its bias, back to qkv and to the cache slot
    for (int i = lane; i < D; i += 32) {
      const bf16 v = with_bias(p, src[i], static_cast<int64_t>(head) * D + i);
      src[i] = v;
      if (cache_dst) cache_dst[i] = v;
    }
    return;
  }
  if (is_v) {
    if (cache_dst) {
      if constexpr (VEC > 0) {
        reinterpret_cast<V*>(cache_dst)[lane] = reinterpret_cast<const V*>(src)[lane];
      } else {
        for (int i = lane; i < D; i += 32) cache_dst[i] = src[i];
      }
    }
    return;
  }

  float* b = buf[warp];
  float ss = 0.0f;
  if constexpr (VEC > 0) {
    V raw = reinterpret_cast<const V*>(src)[lane];
    if (p.bias) add_bias_vec<V, VEC>(p, raw, head, lane);
    const bf16* e = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float v = __bfloat162float(e[j]);
      b[VEC * lane + j] = v;
      ss += v * v;
    }
  } else {
    for (int i = lane; i < D; i += 32) {
      const float v = __bfloat162float(p.bias ? with_bias(p, src[i], static_cast<int64_t>(head) * D + i) : src[i]);
      b[i] = v;
      ss += v * v;
    }
  }
  const W* nw = static_cast<const W*>(is_q ? p.q_norm : p.k_norm);
  if (nw) {
    const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(D) + p.eps);
    __syncwarp();
    for (int i = lane; i < D; i += 32) b[i] = round_bf16(b[i] * inv * to_f32<W>(nw[i]));
  }
  __syncwarp();
  const int half = p.rotary_dim / 2;
  const float* cs = p.cos_sin + static_cast<int64_t>(p.rope_rows[t]) * p.rotary_dim;
  for (int i = lane; i < half; i += 32) {
    const float c = cs[i], s = cs[half + i];
    const int i1 = p.interleaved ? 2 * i : i;
    const int i2 = p.interleaved ? 2 * i + 1 : i + half;
    rope_rotate(b[i1], b[i2], c, s, b[i1], b[i2]);
  }
  __syncwarp();
  if constexpr (VEC > 0) {
    V out;
    bf16* e = reinterpret_cast<bf16*>(&out);
#pragma unroll
    for (int j = 0; j < VEC; ++j) e[j] = __float2bfloat16_rn(b[VEC * lane + j]);
    reinterpret_cast<V*>(src)[lane] = out;
    if (cache_dst) reinterpret_cast<V*>(cache_dst)[lane] = out;
  } else {
    for (int i = lane; i < D; i += 32) {
      const bf16 v = __float2bfloat16_rn(b[i]);
      src[i] = v;
      if (cache_dst) cache_dst[i] = v;
    }
  }
}

// The common prefill case (no q / k norms, split-half RoPE over the whole head, head_dim 32 VEC
// with aligned rows): one block per token, the token's heads dealt to its warps round-robin
// (at most kMaxHeadsPerWarp each), every head's VEC-element load issued before the first
// rotation, the token's cos / sin read once per lane. Lane L holds dims [VEC L, VEC L + VEC);
// the RoPE partner of dim i < D/2 is i + D/2, which lane L ^ 16 holds, so pairs meet by shuffle.
// rope_rotate gets the floats the warp-per-head kernel gives it: the same bits. (That kernel
// has one 2 D-byte load in flight per warp, then the cos / sin loads: the 7B prefill of 4,096
// tokens ran it at 40% of the copy rate, 49 us per layer, H200 runs 25-26.)
constexpr int kMaxHeadsPerWarp = 16;

template <int VEC>
__global__ void __launch_bounds__(kWarps * 32) rope_token_kernel(const QkNormRopeParams p) {
  if (p.release_at_entry) pdl_launch_dependents();
  pdl_wait();
  if (!p.release_at_entry) pdl_launch_dependents();
  using V = typename VecOf<VEC>::T;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x;
  const int nq = p.n_q_heads, nkv = p.n_kv_heads, D = 32 * VEC, half = 16 * VEC;
  const int heads = nq + 2 * nkv;
  bf16* row = p.qkv + static_cast<int64_t>(t) * p.row_stride;
  V raw[kMaxHeadsPerWarp];
#pragma unroll
  for (int k = 0; k < kMaxHeadsPerWarp; ++k) {
    const int h = warp + k * kWarps;
    if (h < heads) raw[k] = reinterpret_cast<const V*>(row + static_cast<int64_t>(h) * D)[lane];
  }
  if (p.bias) {
#pragma unroll
    for (int k = 0; k < kMaxHeadsPerWarp; ++k) {
      const int h = warp + k * kWarps;
      if (h < heads) add_bias_vec<V, VEC>(p, raw[k], h, lane);
    }
  }
  const int64_t slot = cache_slot(p, t);
  const bool second = lane >= 16;  // lanes 16-31 hold dims D/2..D-1
  const float* cs = p.cos_sin + static_cast<int64_t>(p.rope_rows[t]) * D + (VEC * lane) % half;
  float c[VEC], s[VEC];
#pragma unroll
  for (int j = 0; j < VEC; ++j) {
    c[j] = cs[j];
    s[j] = cs[half + j];
  }
#pragma unroll
  for (int k = 0; k < kMaxHeadsPerWarp; ++k) {
    const int h = warp + k * kWarps;  // the same for every lane of the warp
    if (h >= heads) break;
    if (h >= nq + nkv) {  // v: to its cache slot only (and back to qkv when the bias was added here)
      if (slot >= 0) reinterpret_cast<V*>(p.v_cache + (slot * nkv + (h - nq - nkv)) * D)[lane] = raw[k];
      if (p.bias) reinterpret_cast<V*>(row + static_cast<int64_t>(h) * D)[lane] = raw[k];
      continue;
    }
    const bf16* e = reinterpret_cast<const bf16*>(&raw[k]);
    V out;
    bf16* o = reinterpret_cast<bf16*>(&out);
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
      const float mine = __bfloat162float(e[j]);
      const float other = __shfl_xor_sync(0xffffffffu, mine, 16);
      float y1, y2;
      if (second) {
        rope_rotate(other, mine, c[j], s[j], y1, y2);
        o[j] = __float2bfloat16_rn(y2);
      } else {
        rope_rotate(mine, other, c[j], s[j], y1, y2);
        o[j] = __float2bfloat16_rn(y1);
      }
    }
    reinterpret_cast<V*>(row + static_cast<int64_t>(h) * D)[lane] = out;
    if (h >= nq && slot >= 0) reinterpret_cast<V*>(p.k_cache + (slot * nkv + (h - nq)) * D)[lane] = out;
  }
}

template <typename W>
void launch_rope(const QkNormRopeParams& p, dim3 grid, cudaStream_t stream) {
  // Vector accesses need every row start (qkv rows, cache slots) aligned to VEC elements.
  const int vec = p.head_dim % 32 == 0 ? p.head_dim / 32 : 0;
  const auto aligned = [&](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % (2 * vec) == 0; };
  const bool ok = (vec == 2 || vec == 4 || vec == 8) && p.row_stride % vec == 0 && aligned(p.qkv) &&
                  aligned(p.k_cache) && aligned(p.v_cache);
  const dim3 block(kWarps * 32);
  const bool token_blocks = ok && p.token_blocks && !p.q_norm && !p.k_norm && !p.interleaved &&
                            p.rotary_dim == p.head_dim && p.n_q_heads + 2 * p.n_kv_heads <= kWarps * kMaxHeadsPerWarp;
  if (token_blocks) {
    const dim3 tgrid(p.T);
    if (vec == 2) launch_pdl(rope_token_kernel<2>, tgrid, block, 0, stream, p);
    else if (vec == 4) launch_pdl(rope_token_kernel<4>, tgrid, block, 0, stream, p);
    else launch_pdl(rope_token_kernel<8>, tgrid, block, 0, stream, p);
    return;
  }
  if (ok && vec == 2) launch_pdl(qk_norm_rope_kernel<W, 2>, grid, block, 0, stream, p);
  else if (ok && vec == 4) launch_pdl(qk_norm_rope_kernel<W, 4>, grid, block, 0, stream, p);
  else if (ok && vec == 8) launch_pdl(qk_norm_rope_kernel<W, 8>, grid, block, 0, stream, p);
  else launch_pdl(qk_norm_rope_kernel<W, 0>, grid, block, 0, stream, p);
}

}  // namespace

void qk_norm_rope_kv_write(const QkNormRopeParams& p, cudaStream_t stream) {
  if (p.T == 0) return;
  TLLM_CHECK(p.head_dim <= kMaxHeadDim, "qk_norm_rope_kv_write: head_dim ", p.head_dim,
             " > ", kMaxHeadDim);
  TLLM_CHECK(p.rotary_dim % 2 == 0 && p.rotary_dim <= p.head_dim, "qk_norm_rope_kv_write: rotary_dim ",
             p.rotary_dim, " must be even and <= head_dim ", p.head_dim);
  const dim3 grid(p.T, ceil_div(p.n_q_heads + 2 * p.n_kv_heads, kWarps));
  if (p.norm_dtype == DType::BF16)
    launch_rope<__nv_bfloat16>(p, grid, stream);
  else if (p.norm_dtype == DType::F32)
    launch_rope<float>(p, grid, stream);
  else
    TLLM_THROW("qk_norm_rope_kv_write: norm weight dtype ", dtype_name(p.norm_dtype),
               " unsupported (f32, bf16)");
  CUDA_CHECK_LAUNCH("qk_norm_rope_kv_write");
}

}  // namespace tllm::cuda
