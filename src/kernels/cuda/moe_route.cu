// Router, routing metadata and the final weighted sum of the CUDA MoE (see moe_ops.h).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/moe_ops.h"

namespace tllm::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;

// The top-k order: larger value first, NaN above everything (as torch orders NaN), equal
// values by lower expert id; id < 0 is "none".
__device__ __forceinline__ bool route_better(float a, int ia, float b, int ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  const bool na = isnan(a), nb = isnan(b);
  if (na != nb) return na;
  if (!na && a != b) return a > b;
  return ia < ib;
}

constexpr int kRouteWarps = 4;

// Logits are read through L2 (ld.global.cg): in the fused router they were written by other
// blocks of the same grid.
__device__ __forceinline__ float load_logit(const float* p) { return __ldcg(p); }
__device__ __forceinline__ float load_logit(const bf16* p) {
  return __bfloat162float(__ushort_as_bfloat16(__ldcg(reinterpret_cast<const unsigned short*>(p))));
}

// One warp routes one token: softmax over the E logits of `row` in f32 (probabilities in
// prob[E]), then k rounds of a warp-wide arg-max over the experts not yet taken (taken[E]).
// Writes out_ids/out_w [k] and, when not null, smem_ids [k].
template <typename LogitT>
__device__ __forceinline__ void route_token_warp(const LogitT* row, int E, int k, bool renormalize, float* prob,
                                 unsigned char* taken, int32_t* out_ids, float* out_w, int* smem_ids) {
  const int lane = threadIdx.x & 31;
  // The first 32 x kHeld logits are loaded before any is used (predicated, one L2 round trip;
  // a loop of load-then-store to shared memory waited for each load in turn).
  constexpr int kHeld = kMoeFusedMaxExperts / 32;
  float held[kHeld];
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int e = lane + 32 * i;
    held[i] = e < E ? load_logit(row + e) : 0.0f;
  }
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < kHeld; ++i) {
    const int e = lane + 32 * i;
    if (e < E) {
      prob[e] = held[i];
      taken[e] = 0;
      mx = fmaxf(mx, held[i]);
    }
  }
  for (int e = lane + 32 * kHeld; e < E; e += 32) {
    const float v = load_logit(row + e);
    prob[e] = v;
    taken[e] = 0;
    mx = fmaxf(mx, v);
  }
  mx = warp_max(mx);
  float sum = 0.0f;
  for (int e = lane; e < E; e += 32) {
    const float v = expf(prob[e] - mx);
    prob[e] = v;
    sum += v;
  }
  sum = warp_sum(sum);
  for (int e = lane; e < E; e += 32) prob[e] = prob[e] / sum;
  __syncwarp();

  float chosen = 0.0f;
  for (int j = 0; j < k; ++j) {
    float bv = 0.0f;
    int bi = -1;
    for (int e = lane; e < E; e += 32)
      if (!taken[e] && route_better(prob[e], e, bv, bi)) {
        bv = prob[e];
        bi = e;
      }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(kFull, bv, o);
      const int oi = __shfl_xor_sync(kFull, bi, o);
      if (route_better(ov, oi, bv, bi)) {
        bv = ov;
        bi = oi;
      }
    }
    // A total order, so every lane holds the same (bv, bi); bi >= 0 since k <= E.
    if (lane == 0) {
      taken[bi] = 1;
      if (smem_ids != nullptr) {
        smem_ids[j] = bi;
      } else {
        out_ids[j] = bi;
        out_w[j] = bv;
      }
    }
    chosen += bv;
    __syncwarp();
  }
  if (smem_ids != nullptr) {
    // The outputs from shared memory, a lane per choice (prob[e] is the bv of its round):
    // no global read-back of the weights for the renormalisation.
    for (int j = lane; j < k; j += 32) {
      const int e = smem_ids[j];
      out_ids[j] = e;
      out_w[j] = renormalize ? prob[e] / chosen : prob[e];
    }
  } else if (renormalize && lane == 0) {
    for (int j = 0; j < k; ++j) out_w[j] = out_w[j] / chosen;
  }
  __syncwarp();
}

// A warp per token.
template <typename LogitT>
__global__ void __launch_bounds__(kRouteWarps * 32)
    moe_route_kernel(const LogitT* __restrict__ logits, int T, int E, int k, bool renormalize,
                     int32_t* __restrict__ ids, float* __restrict__ weights) {
  extern __shared__ float route_smem[];  // [warps][E] probabilities, then [warps][E] taken flags
  const int warp = threadIdx.x >> 5;
  const int t = blockIdx.x * kRouteWarps + warp;
  if (t >= T) return;  // warp-level work only below
  route_token_warp(logits + static_cast<int64_t>(t) * E, E, k, renormalize, route_smem + warp * E,
                   reinterpret_cast<unsigned char*>(route_smem + kRouteWarps * E) + warp * E,
                   ids + static_cast<int64_t>(t) * k, weights + static_cast<int64_t>(t) * k, nullptr);
}

// The fused decode router. A warp per expert row e: logits[t, e] = x[t] . router[e] for all
// T tokens (the row streamed once, its first 8 x 16 bytes per lane issued before pdl_wait),
// rounded to LogitT as the linear op would store them. The last block to finish (done
// counter) routes every token (a warp per token, as moe_route) and groups the pairs by
// expert as moe_align does, but deterministically: a pair's rank within its expert is the
// number of earlier pairs on the same expert, so positions ascend with the token.
constexpr int kRouterWarps = 8;
constexpr int kRouterPre = 8;  // 16-byte router chunks per lane loaded before pdl_wait

template <typename LogitT>
__global__ void __launch_bounds__(kRouterWarps * 32) moe_router_topk_kernel(const __grid_constant__ MoeDecodeParams p) {
  static_assert(kRouterWarps * 32 >= kMoeFusedMaxTokens * kMoeFusedMaxTopK, "a thread per pair");
  __shared__ float s_prob[kRouterWarps][kMoeFusedMaxExperts];
  __shared__ unsigned char s_taken[kRouterWarps][kMoeFusedMaxExperts];
  __shared__ int s_ids[kMoeFusedMaxTokens * kMoeFusedMaxTopK];
  __shared__ int s_cnt[kMoeFusedMaxExperts], s_off[kMoeFusedMaxExperts], s_act[kMoeFusedMaxExperts];
  __shared__ bool s_last;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int E = p.E, H = p.H, T = p.T;
  const int e = blockIdx.x * kRouterWarps + warp;
  const int chunks = H / 8;
  const bf16* wrow = p.router + static_cast<int64_t>(min(e, E - 1)) * H;

  uint4 wpre[kRouterPre];
#pragma unroll
  for (int i = 0; i < kRouterPre; ++i) {
    wpre[i] = ld_weight_u4(wrow + 8 * min(lane + 32 * i, chunks - 1));  // unconditional: all in flight
  }
  pdl_wait();  // x comes from the previous kernel
  pdl_launch_dependents();

  float acc[kMoeFusedMaxTokens];
#pragma unroll
  for (int t = 0; t < kMoeFusedMaxTokens; ++t) acc[t] = 0.0f;
  // The prefetched chunks, a pair of tokens at a time: the pair's 2 x kRouterPre x chunks are
  // loaded (clamped, unconditionally) before any is used, so a lane waits for one L2 round
  // trip per pair. (A loop that loaded each token's chunk where it was used waited for them
  // one by one: 13 us at T = 1 and 26 us at T = 8 for the whole kernel on an H200.) Each
  // acc[t] still sums its chunks in ascending order, as before.
  static_assert(kMoeFusedMaxTokens % 2 == 0, "token pairs");
#pragma unroll
  for (int t0 = 0; t0 < kMoeFusedMaxTokens; t0 += 2) {
    if (t0 >= T) break;
    const int t1 = min(t0 + 1, T - 1);
    uint4 xa[kRouterPre], xb[kRouterPre];
#pragma unroll
    for (int i = 0; i < kRouterPre; ++i) {
      const int c = min(lane + 32 * i, chunks - 1);
      xa[i] = __ldg(reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(t0) * H + 8 * c));
      xb[i] = __ldg(reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(t1) * H + 8 * c));
    }
#pragma unroll
    for (int i = 0; i < kRouterPre; ++i) {
      if (lane + 32 * i >= chunks) break;
      float wf[8], fa[8], fb[8];
      bf16x8_to_f32(wpre[i], wf);
      bf16x8_to_f32(xa[i], fa);
      bf16x8_to_f32(xb[i], fb);
#pragma unroll
      for (int q = 0; q < 8; ++q) {
        acc[t0] += wf[q] * fa[q];
        acc[t0 + 1] += wf[q] * fb[q];  // t0 + 1 == T: a copy of t0's sum, never stored
      }
    }
  }
  // Rows longer than 32 x kRouterPre chunks: the rest streamed, token by token.
  for (int c = lane + 32 * kRouterPre; c < chunks; c += 32) {
    float w8[8];
    bf16x8_to_f32(ld_weight_u4(wrow + 8 * c), w8);
#pragma unroll
    for (int t = 0; t < kMoeFusedMaxTokens; ++t) {
      if (t >= T) break;
      float xf[8];
      bf16x8_to_f32(__ldg(reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(t) * H + 8 * c)), xf);
#pragma unroll
      for (int q = 0; q < 8; ++q) acc[t] += w8[q] * xf[q];
    }
  }
#pragma unroll
  for (int t = 0; t < kMoeFusedMaxTokens; ++t) {
    if (t >= T) break;
    const float v = warp_sum(acc[t]);
    if (lane == 0 && e < E) {
      LogitT* out = static_cast<LogitT*>(p.logits) + static_cast<int64_t>(t) * E + e;
      if constexpr (sizeof(LogitT) == 4) *out = v;
      else *out = __float2bfloat16_rn(v);
    }
  }

  // Last block: every logit is written (release by each block's fence before its count).
  __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(p.done, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();

  const int k = p.k, P = T * k;
  for (int t = warp; t < T; t += kRouterWarps)
    route_token_warp(static_cast<const LogitT*>(p.logits) + static_cast<int64_t>(t) * E, E, k, p.renormalize,
                     s_prob[warp], s_taken[warp], p.ids + t * k, p.weights + t * k, s_ids + t * k);
  for (int x = tid; x < E; x += kRouterWarps * 32) s_cnt[x] = 0;
  __syncthreads();
  int my_e = -1, rank = 0;
  if (tid < P) {
    my_e = s_ids[tid];
    for (int q = 0; q < tid; ++q) rank += s_ids[q] == my_e;
    atomicAdd(&s_cnt[my_e], 1);
  }
  __syncthreads();
  if (warp == 0) {
    int run_c = 0, run_a = 0;
    for (int base = 0; base < E; base += 32) {
      const int x = base + lane;
      const int c = x < E ? s_cnt[x] : 0;
      const int a = c > 0 ? 1 : 0;
      int ic = c, ia = a;  // inclusive warp scans
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int yc = __shfl_up_sync(kFull, ic, o), ya = __shfl_up_sync(kFull, ia, o);
        if (lane >= o) {
          ic += yc;
          ia += ya;
        }
      }
      if (x < E) {
        s_off[x] = run_c + ic - c;
        s_act[x] = run_a + ia - a;
      }
      run_c += __shfl_sync(kFull, ic, 31);
      run_a += __shfl_sync(kFull, ia, 31);
    }
    if (lane == 0) {
      p.meta.offsets[E] = run_c;
      p.meta.counts[0] = run_a;
      p.meta.counts[1] = 0;  // no GEMM tiles on this path
    }
  }
  __syncthreads();
  for (int x = tid; x < E; x += kRouterWarps * 32) {
    p.meta.offsets[x] = s_off[x];
    if (s_cnt[x] > 0) p.meta.active[s_act[x]] = x;
  }
  if (tid < P) {
    const int pos = s_off[my_e] + rank;
    p.meta.pair_pos[tid] = pos;
    p.meta.sorted_pair[pos] = tid;
  }
  if (tid == 0) *p.done = 0;  // every block has counted: ready for the next launch
}

// One block: counting sort of the pairs by expert plus the tile and active-expert lists.
constexpr int kAlignThreads = 1024;

__global__ void __launch_bounds__(kAlignThreads)
    moe_align_kernel(const int32_t* __restrict__ ids, int P, int E, MoeMeta meta) {
  extern __shared__ int align_smem[];
  int* cnt = align_smem;       // [E]
  int* off = cnt + E;          // [E+1]
  int* tile_off = off + E + 1; // [E]
  int* act_off = tile_off + E; // [E]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int e = tid; e < E; e += kAlignThreads) cnt[e] = 0;
  __syncthreads();
  for (int p = tid; p < P; p += kAlignThreads) {
    const int e = ids[p];
    meta.pair_pos[p] = (e >= 0 && e < E) ? atomicAdd(&cnt[e], 1) : -1;  // rank within the expert for now
  }
  __syncthreads();
  if (warp == 0) {
    int run_c = 0, run_t = 0, run_a = 0;
    for (int base = 0; base < E; base += 32) {
      const int e = base + lane;
      const int c = e < E ? cnt[e] : 0;
      const int tl = (c + kMoeTileRows - 1) / kMoeTileRows;
      const int a = c > 0 ? 1 : 0;
      int ic = c, it = tl, ia = a;  // inclusive warp scans
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int yc = __shfl_up_sync(kFull, ic, o), yt = __shfl_up_sync(kFull, it, o),
                  ya = __shfl_up_sync(kFull, ia, o);
        if (lane >= o) {
          ic += yc;
          it += yt;
          ia += ya;
        }
      }
      if (e < E) {
        off[e] = run_c + ic - c;
        tile_off[e] = run_t + it - tl;
        act_off[e] = run_a + ia - a;
      }
      run_c += __shfl_sync(kFull, ic, 31);
      run_t += __shfl_sync(kFull, it, 31);
      run_a += __shfl_sync(kFull, ia, 31);
    }
    if (lane == 0) {
      off[E] = run_c;
      meta.offsets[E] = run_c;
      meta.counts[0] = run_a;
      meta.counts[1] = run_t;
    }
  }
  __syncthreads();
  for (int e = tid; e < E; e += kAlignThreads) {
    meta.offsets[e] = off[e];
    const int c = cnt[e];
    if (c == 0) continue;
    meta.active[act_off[e]] = e;
    for (int j = 0, ti = tile_off[e]; j * kMoeTileRows < c; ++j, ++ti) {
      meta.tile_expert[ti] = e;
      meta.tile_start[ti] = off[e] + j * kMoeTileRows;
    }
  }
  for (int p = tid; p < P; p += kAlignThreads) {  // the same p as above: this thread's own ranks
    const int rank = meta.pair_pos[p];
    if (rank < 0) continue;
    const int pos = off[ids[p]] + rank;
    meta.pair_pos[p] = pos;
    meta.sorted_pair[pos] = p;
  }
}

// A block per token: out = sum_j w_j y[pos_j] (+ sigmoid(x . g) shared), 8 columns a thread.
constexpr int kCombineThreads = 256;

__global__ void __launch_bounds__(kCombineThreads)
    moe_combine_kernel(bf16* __restrict__ out, const bf16* __restrict__ y, const int32_t* __restrict__ pair_pos,
                       const float* __restrict__ weights, int k, int H, const bf16* __restrict__ x,
                       const bf16* __restrict__ shared_y, const float* __restrict__ shared_gate) {
  __shared__ float red[32];
  const int64_t t = blockIdx.x;
  const int chunks = H / 8;
  float s = 0.0f;
  if (shared_y != nullptr) {
    float d = 0.0f;
    for (int c = threadIdx.x; c < chunks; c += kCombineThreads) {
      float f[8];
      bf16x8_to_f32(*reinterpret_cast<const uint4*>(x + t * H + 8 * c), f);
#pragma unroll
      for (int i = 0; i < 8; ++i) d += f[i] * shared_gate[8 * c + i];
    }
    d = block_sum(d, red);
    s = 1.0f / (1.0f + expf(-d));
  }
  for (int c = threadIdx.x; c < chunks; c += kCombineThreads) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < k; ++j) {
      const int pos = pair_pos[t * k + j];
      if (pos < 0) continue;
      const float w = weights[t * k + j];
      float f[8];
      bf16x8_to_f32(*reinterpret_cast<const uint4*>(y + static_cast<int64_t>(pos) * H + 8 * c), f);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += f[i] * w;
    }
    if (shared_y != nullptr) {
      float f[8];
      bf16x8_to_f32(*reinterpret_cast<const uint4*>(shared_y + t * H + 8 * c), f);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += s * f[i];
    }
    *reinterpret_cast<uint4*>(out + t * H + 8 * c) = f32_to_bf16x8(acc);
  }
}

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

void moe_route(const void* logits, DType dt, int T, int E, int k, bool renormalize, int32_t* ids, float* weights,
               cudaStream_t stream) {
  if (T == 0) return;
  TLLM_CHECK(E >= 1 && E <= kMoeMaxExperts, "moe_route: ", E, " experts (the CUDA router supports 1..",
             kMoeMaxExperts, ")");
  TLLM_CHECK(k >= 1 && k <= E, "moe_route: k = ", k, " must be in [1, E = ", E, "]");
  const size_t smem = static_cast<size_t>(kRouteWarps) * E * (sizeof(float) + 1);
  const int grid = ceil_div(T, kRouteWarps);
  if (dt == DType::F32)
    moe_route_kernel<float><<<grid, kRouteWarps * 32, smem, stream>>>(static_cast<const float*>(logits), T, E, k,
                                                                        renormalize, ids, weights);
  else if (dt == DType::BF16)
    moe_route_kernel<bf16><<<grid, kRouteWarps * 32, smem, stream>>>(static_cast<const bf16*>(logits), T, E, k,
                                                                       renormalize, ids, weights);
  else
    TLLM_THROW("moe_route: router logits must be f32 or bf16, got ", dtype_name(dt));
  CUDA_CHECK_LAUNCH("moe_route");
}

void moe_router_topk(const MoeDecodeParams& p, cudaStream_t stream) {
  TLLM_CHECK(moe_fused_supported(p.T, p.E, p.k), "moe_router_topk: T = ", p.T, ", E = ", p.E, ", k = ", p.k,
             " outside the fused decode path (T <= ", kMoeFusedMaxTokens, ", E <= ", kMoeFusedMaxExperts,
             ", k <= ", kMoeFusedMaxTopK, ")");
  TLLM_CHECK(p.H % 8 == 0, "moe_router_topk: hidden size ", p.H, " must be a multiple of 8");
  const dim3 grid(ceil_div(p.E, kRouterWarps)), block(kRouterWarps * 32);
  if (p.logits_dtype == DType::F32)
    launch_pdl(moe_router_topk_kernel<float>, grid, block, 0, stream, p);
  else if (p.logits_dtype == DType::BF16)
    launch_pdl(moe_router_topk_kernel<bf16>, grid, block, 0, stream, p);
  else
    TLLM_THROW("moe_router_topk: router logits must be f32 or bf16, got ", dtype_name(p.logits_dtype));
  CUDA_CHECK_LAUNCH("moe_router_topk");
}

size_t moe_meta_bytes(int64_t P, int E) {
  const int64_t tiles = moe_max_tiles(P, E);
  return align256((E + 1) * 4) + align256(E * 4) + 2 * align256(tiles * 4) + align256(2 * 4) +
         2 * align256(P * 4);
}

MoeMeta moe_meta_layout(void* base, int64_t P, int E) {
  MoeMeta m;
  m.max_tiles = moe_max_tiles(P, E);
  char* c = static_cast<char*>(base);
  auto take = [&](size_t bytes) {
    int32_t* r = reinterpret_cast<int32_t*>(c);
    c += align256(bytes);
    return r;
  };
  m.offsets = take((E + 1) * 4);
  m.active = take(E * 4);
  m.tile_expert = take(static_cast<size_t>(m.max_tiles) * 4);
  m.tile_start = take(static_cast<size_t>(m.max_tiles) * 4);
  m.counts = take(2 * 4);
  m.sorted_pair = take(P * 4);
  m.pair_pos = take(P * 4);
  return m;
}

void moe_align(const int32_t* ids, int64_t P, int E, const MoeMeta& meta, cudaStream_t stream) {
  TLLM_CHECK(E >= 1 && E <= kMoeMaxExperts, "moe_align: ", E, " experts (supported 1..", kMoeMaxExperts, ")");
  TLLM_CHECK(P >= 0 && P < (int64_t{1} << 30), "moe_align: ", P, " pairs");
  const size_t smem = static_cast<size_t>(4 * E + 1) * sizeof(int);
  moe_align_kernel<<<1, kAlignThreads, smem, stream>>>(ids, static_cast<int>(P), E, meta);
  CUDA_CHECK_LAUNCH("moe_align");
}

void moe_combine(bf16* out, const bf16* y, const int32_t* pair_pos, const float* weights, int T, int k, int H,
                 const bf16* x, const bf16* shared_y, const float* shared_gate, cudaStream_t stream) {
  if (T == 0) return;
  TLLM_CHECK(H % 8 == 0, "moe_combine: hidden size ", H, " must be a multiple of 8");
  TLLM_CHECK((shared_y == nullptr) == (shared_gate == nullptr), "moe_combine: shared_y and shared_gate go together");
  moe_combine_kernel<<<T, kCombineThreads, 0, stream>>>(out, y, pair_pos, weights, k, H, x, shared_y, shared_gate);
  CUDA_CHECK_LAUNCH("moe_combine");
}

}  // namespace tllm::cuda
