// Router, routing metadata and the final weighted sum of the CUDA MoE (see moe_ops.h).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/moe_ops.h"
#include "kernels/cuda/moe_route_common.cuh"

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

// One warp routes one token: softmax over the E logits of `row` (probabilities in prob[E]),
// then k rounds of a warp-wide arg-max over the experts not yet taken (taken[E]).
// Writes out_ids/out_w [k].
template <typename LogitT>
__device__ __forceinline__ void route_token_warp(const LogitT* row, int E, int k, bool renormalize, float* prob,
                                 unsigned char* taken, int32_t* out_ids, float* out_w) {
  const int lane = threadIdx.x & 31;
  for (int e = lane; e < E; e += 32) {
    prob[e] = load_logit(row + e);
    taken[e] = 0;
  }
  softmax_warp(prob, E);  // each lane reads back only its own entries
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
      out_ids[j] = bi;
      out_w[j] = bv;
    }
    chosen += bv;
    __syncwarp();
  }
  if (renormalize && lane == 0)
    for (int j = 0; j < k; ++j) out_w[j] = out_w[j] / chosen;
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
                   ids + static_cast<int64_t>(t) * k, weights + static_cast<int64_t>(t) * k);
}

// The fused decode router: logits, softmax, top-k and the grouping of moe_align in one kernel.
//
// Logits: a warp per expert row e computes logits[t, e] = x[t] . router[e] for all T tokens,
// lane l summing the 16-byte chunks l, l + 32, ... in order, then warp_sum (the row streamed
// once, its first 8 x 16 bytes per lane issued before pdl_wait), rounded to LogitT as the
// linear op would store them. Right after pdl_wait the block prefetches x into L1 (a 128-byte
// line a thread), and a warp loads a chunk of x for 4 tokens at once: the warps wait for one
// round trip to L2, not one per chunk and token.
//
// Routing, three stages:
//  1. the blocks that route hold all T x E logits (as stored) in shared memory;
//  2. softmax per token (a warp per token, softmax_warp: the arithmetic of moe_route), then
//     a warp per expert row e finds, for every token, the rank of e: the number of experts
//     better under route_better, counted by comparing route keys (a comparison per expert
//     and lane, one warp reduction). e is chosen iff rank < k, in slot `rank`: the order of k
//     rounds of arg-max, without k dependent rounds. The rank of the pair among the pairs of
//     expert e is the number of earlier tokens that chose e (a popcount over the warp's
//     mask of choosing tokens), so positions ascend with the token as in the old serial
//     count. Every chosen pair (expert, probability, rank in expert) and every expert's
//     count goes to the shared memory of the block that finishes;
//  3. that block writes ids and weights (renormalised by the sum of the k weights in slot
//     order, as the rounds summed them) and the metadata: offsets and the active list by a
//     warp scan of the counts, pair_pos / sorted_pair from offset + rank in expert.
//
// sm_90+: the grid is one thread block cluster of up to 8 blocks of 16 warps (no cross-block
// traffic through global memory). Every warp writes its logits into every block's shared
// memory through distributed shared memory; a cluster barrier ends stage 1; each block does
// stage 2 for its own rows, sending the pairs to block 0; a second barrier hands them over
// and block 0 alone does stage 3 (the others exit at once). The barriers cost no global
// round trips, unlike a fence + done counter + re-read of the logits from L2.
// Older GPUs: no clusters; each block counts itself done on p.done once its logits are in
// global memory (fenced), and the last one reads all logits back and does stages 2 and 3
// for every row.
constexpr int kRouterWarps = 16;
constexpr int kRouterThreads = kRouterWarps * 32;
constexpr int kRouterMaxCluster = 8;  // the portable cluster size
constexpr int kRouterPre = 8;         // 16-byte router chunks per lane loaded before pdl_wait
constexpr int kRouterXBatch = 4;      // tokens whose x chunk a lane loads at once
// 96 registers, no spills on sm_90 (8 tokens a batch needs 128, a whole SM): a block
// takes 3/4 of an SM's registers, so each block of the cluster can start (PDL) next to a
// small block of the previous kernel instead of waiting for idle SMs of one GPC.
constexpr int kRouterMaxRegs = 96;
constexpr int kRouterPairs = kMoeFusedMaxTokens * kMoeFusedMaxTopK;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define TLLM_MOE_ROUTER_CLUSTER 1
#else
#define TLLM_MOE_ROUTER_CLUSTER 0
#endif

template <typename LogitT>
__global__ void __maxnreg__(kRouterMaxRegs) moe_router_topk_kernel(const __grid_constant__ MoeDecodeParams p) {
  static_assert(kRouterThreads - 32 >= kRouterPairs, "a thread per pair besides warp 0");
  static_assert(kRouterWarps >= kMoeFusedMaxTokens && kMoeFusedMaxTokens <= 32, "a warp, and a lane, per token");
  static_assert(kMoeFusedMaxTokens * kMoeFusedMaxTopK < (1 << 16), "counts packed in 16 bits");
  __shared__ float s_logit[kMoeFusedMaxTokens][kMoeFusedMaxExperts];  // logits, then probabilities
  __shared__ unsigned s_key[kMoeFusedMaxTokens][kMoeFusedMaxExperts];  // route_key of the probabilities
  __shared__ int s_pair_e[kRouterPairs], s_pair_r[kRouterPairs];      // slot t*k + j: expert, rank in expert
  __shared__ float s_pair_w[kRouterPairs];                            // its probability
  __shared__ int s_cnt[kMoeFusedMaxExperts], s_off[kMoeFusedMaxExperts];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int E = p.E, H = p.H, T = p.T, k = p.k;
  const int chunks = H / 8;
  const int first = blockIdx.x * kRouterWarps + warp, stride = kRouterWarps * gridDim.x;  // this warp's rows

  uint4 wpre[kRouterPre];
  auto load_row = [&](int e) {
    const bf16* wrow = p.router + static_cast<int64_t>(e) * H;
#pragma unroll
    for (int i = 0; i < kRouterPre; ++i) {
      wpre[i] = ld_weight_u4(wrow + 8 * min(lane + 32 * i, chunks - 1));  // unconditional: all in flight
    }
  };
  load_row(min(first, E - 1));
#if TLLM_MOE_ROUTER_CLUSTER
  __cluster_barrier_arrive_relaxed();  // started: the wait below lets the others write our shared memory
#endif
  pdl_wait();  // x comes from the previous kernel
  pdl_launch_dependents();
  const char* xb = reinterpret_cast<const char*>(p.x);
  for (int64_t off = int64_t{tid} * 128; off < int64_t{T} * H * 2; off += int64_t{kRouterThreads} * 128)
    asm volatile("prefetch.global.L1 [%0];" ::"l"(xb + off));
#if TLLM_MOE_ROUTER_CLUSTER
  __cluster_barrier_wait();
#endif

  float acc[kMoeFusedMaxTokens];
  auto consume = [&](const uint4& wv, int c) {
    float wf[8];
    bf16x8_to_f32(wv, wf);
#pragma unroll
    for (int t0 = 0; t0 < kMoeFusedMaxTokens; t0 += kRouterXBatch) {
      if (t0 >= T) break;
      uint4 xv[kRouterXBatch];
#pragma unroll
      for (int u = 0; u < kRouterXBatch; ++u)
        if (t0 + u < T) xv[u] = __ldg(reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(t0 + u) * H + 8 * c));
#pragma unroll
      for (int u = 0; u < kRouterXBatch; ++u) {
        if (t0 + u >= T) break;
        float xf[8];
        bf16x8_to_f32(xv[u], xf);
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[t0 + u] += wf[i] * xf[i];
      }
    }
  };
  for (int e = first; e < E; e += stride) {
    if (e != first) load_row(e);
#pragma unroll
    for (int t = 0; t < kMoeFusedMaxTokens; ++t) acc[t] = 0.0f;
#pragma unroll
    for (int i = 0; i < kRouterPre; ++i)
      if (lane + 32 * i < chunks) consume(wpre[i], lane + 32 * i);
    for (int c = lane + 32 * kRouterPre; c < chunks; c += 32)
      consume(ld_weight_u4(p.router + static_cast<int64_t>(e) * H + 8 * c), c);
    LogitT mine{};  // lane t: logit (t, e) as stored
#pragma unroll
    for (int t = 0; t < kMoeFusedMaxTokens; ++t) {
      if (t >= T) break;
      const LogitT v = from_f32<LogitT>(warp_sum(acc[t]));
      if (lane == t) mine = v;
    }
    if (lane < T) {
      static_cast<LogitT*>(p.logits)[static_cast<int64_t>(lane) * E + e] = mine;
#if TLLM_MOE_ROUTER_CLUSTER
      for (int b = 0; b < static_cast<int>(gridDim.x); ++b)
        *static_cast<float*>(__cluster_map_shared_rank(&s_logit[lane][e], b)) = to_f32(mine);
#endif
    }
  }

  // Stage 1. The stage-2 rows of this warp (rfirst, rfirst + rstride, ...) and where the
  // pairs and counts go (leader(): block 0's shared memory, or our own).
#if TLLM_MOE_ROUTER_CLUSTER
  __cluster_barrier_arrive();  // release: our logits are in every block
  __cluster_barrier_wait();    // acquire: everyone's are in ours
  const int rfirst = first, rstride = stride;
  auto leader = [](auto* s) { return static_cast<decltype(s)>(__cluster_map_shared_rank(s, 0)); };
#else
  __shared__ bool s_last;
  __threadfence();  // release: our logits, before the count
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(p.done, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int i = tid; i < T * E; i += kRouterThreads)
    s_logit[i / E][i % E] = load_logit(static_cast<const LogitT*>(p.logits) + i);
  __syncthreads();
  const int rfirst = warp, rstride = kRouterWarps;
  auto leader = [](auto* s) { return s; };
#endif

  // Stage 2.
  if (warp < T) {
    softmax_warp(s_logit[warp], E);
    for (int e = lane; e < E; e += 32) s_key[warp][e] = route_key(s_logit[warp][e]);  // this lane's own entries
  }
  __syncthreads();
  int* const l_pair_e = leader(s_pair_e);
  int* const l_pair_r = leader(s_pair_r);
  float* const l_pair_w = leader(s_pair_w);
  int* const l_cnt = leader(s_cnt);
  for (int e = rfirst; e < E; e += rstride) {
    int my_rank = k;  // lane t: the rank of e for token t
    for (int t = 0; t < T; ++t) {
      const unsigned ke = s_key[t][e];
      unsigned better = 0;
      for (int x = lane; x < E; x += 32) {
        const unsigned kx = s_key[t][x];
        better += kx > ke || (kx == ke && x < e);
      }
      const int rank = static_cast<int>(__reduce_add_sync(kFull, better));
      if (lane == t) my_rank = rank;
    }
    const bool chosen = lane < T && my_rank < k;
    const unsigned tokens = __ballot_sync(kFull, chosen);  // the tokens that chose e
    if (chosen) {
      const int q = lane * k + my_rank;
      l_pair_e[q] = e;
      l_pair_r[q] = __popc(tokens & ((1u << lane) - 1));
      l_pair_w[q] = s_logit[lane][e];
    }
    if (lane == 0) l_cnt[e] = __popc(tokens);
  }
#if TLLM_MOE_ROUTER_CLUSTER
  __cluster_barrier_arrive();  // release: our pairs and counts are in block 0
  if (blockIdx.x != 0) return;
  __cluster_barrier_wait();
#else
  __syncthreads();
#endif

  // Stage 3. Warp 0: offsets and the active list; lane l scans experts [l * per, (l + 1) * per),
  // a count and an active flag packed in one int. The other warps: a thread per pair.
  const int P = T * k, q = tid - 32;
  if (warp == 0) {
    const int per = (E + 31) / 32, lo = min(E, lane * per), hi = min(E, lo + per);
    int local = 0;
    for (int e = lo; e < hi; ++e) local += s_cnt[e] + (s_cnt[e] > 0 ? 1 << 16 : 0);
    int incl = local;  // inclusive warp scan
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(kFull, incl, o);
      if (lane >= o) incl += y;
    }
    int run = incl - local;
    for (int e = lo; e < hi; ++e) {
      const int c = s_cnt[e];
      s_off[e] = run & 0xffff;
      p.meta.offsets[e] = run & 0xffff;
      if (c > 0) p.meta.active[run >> 16] = e;
      run += c + (c > 0 ? 1 << 16 : 0);
    }
    if (lane == 31) {
      p.meta.offsets[E] = incl & 0xffff;
      p.meta.counts[0] = incl >> 16;
      p.meta.counts[1] = 0;  // no GEMM tiles or units on this path
      p.meta.counts[2] = 0;
    }
  } else if (q < P) {
    float w = s_pair_w[q];
    if (p.renormalize) {
      const int t0 = q - q % k;
      float chosen = 0.0f;  // the k weights in slot order, as the arg-max rounds summed them
      for (int j = 0; j < k; ++j) chosen += s_pair_w[t0 + j];
      w = w / chosen;
    }
    p.ids[q] = s_pair_e[q];
    p.weights[q] = w;
  }
  __syncthreads();
  if (warp > 0 && q < P) {
    const int pos = s_off[s_pair_e[q]] + s_pair_r[q];
    p.meta.pair_pos[q] = pos;
    p.meta.sorted_pair[pos] = q;
  }
#if !TLLM_MOE_ROUTER_CLUSTER
  if (tid == 0) *p.done = 0;  // every block has counted: ready for the next launch
#endif
}

#undef TLLM_MOE_ROUTER_CLUSTER

// One block: counting sort of the pairs by expert plus the tile, unit and active-expert lists.
constexpr int kAlignThreads = 1024;

__global__ void __launch_bounds__(kAlignThreads)
    moe_align_kernel(const int32_t* __restrict__ ids, int P, int E, MoeMeta meta) {
  extern __shared__ int align_smem[];
  int* cnt = align_smem;       // [E]
  int* off = cnt + E;          // [E+1]
  int* tile_off = off + E + 1; // [E]
  int* act_off = tile_off + E; // [E]
  int* unit_off = act_off + E; // [E]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int e = tid; e < E; e += kAlignThreads) cnt[e] = 0;
  __syncthreads();
  for (int p = tid; p < P; p += kAlignThreads) {
    const int e = ids[p];
    meta.pair_pos[p] = (e >= 0 && e < E) ? atomicAdd(&cnt[e], 1) : -1;  // rank within the expert for now
  }
  __syncthreads();
  if (warp == 0) {
    int run_c = 0, run_t = 0, run_a = 0, run_u = 0;
    for (int base = 0; base < E; base += 32) {
      const int e = base + lane;
      const int c = e < E ? cnt[e] : 0;
      const int tl = (c + kMoeTileRows - 1) / kMoeTileRows;
      const int ul = (tl + 1) / 2;
      const int a = c > 0 ? 1 : 0;
      int ic = c, it = tl, ia = a, iu = ul;  // inclusive warp scans
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int yc = __shfl_up_sync(kFull, ic, o), yt = __shfl_up_sync(kFull, it, o),
                  ya = __shfl_up_sync(kFull, ia, o), yu = __shfl_up_sync(kFull, iu, o);
        if (lane >= o) {
          ic += yc;
          it += yt;
          ia += ya;
          iu += yu;
        }
      }
      if (e < E) {
        off[e] = run_c + ic - c;
        tile_off[e] = run_t + it - tl;
        act_off[e] = run_a + ia - a;
        unit_off[e] = run_u + iu - ul;
      }
      run_c += __shfl_sync(kFull, ic, 31);
      run_t += __shfl_sync(kFull, it, 31);
      run_a += __shfl_sync(kFull, ia, 31);
      run_u += __shfl_sync(kFull, iu, 31);
    }
    if (lane == 0) {
      off[E] = run_c;
      meta.offsets[E] = run_c;
      meta.counts[0] = run_a;
      meta.counts[1] = run_t;
      meta.counts[2] = run_u;
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
      if (j % 2 == 0) meta.unit_tile[unit_off[e] + j / 2] = ti;
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
  // sm_90+ (the devices of PDL, and those that run the cluster path of the kernel): one
  // cluster of up to 8 blocks, 16 rows each, a warp looping over rows when E > 128.
  // Older GPUs: a block per 16 rows, the done counter.
  const bool cluster = pdl_supported();
  const int blocks = cluster ? std::min(kRouterMaxCluster, ceil_div(p.E, kRouterWarps)) : ceil_div(p.E, kRouterWarps);
  const dim3 grid(blocks), block(kRouterThreads);
  const unsigned cluster_size = cluster ? blocks : 0;
  if (p.logits_dtype == DType::F32)
    launch_pdl_cluster(moe_router_topk_kernel<float>, grid, block, 0, stream, cluster_size, p);
  else if (p.logits_dtype == DType::BF16)
    launch_pdl_cluster(moe_router_topk_kernel<bf16>, grid, block, 0, stream, cluster_size, p);
  else
    TLLM_THROW("moe_router_topk: router logits must be f32 or bf16, got ", dtype_name(p.logits_dtype));
  CUDA_CHECK_LAUNCH("moe_router_topk");
}

size_t moe_meta_bytes(int64_t P, int E) {
  const int64_t tiles = moe_max_tiles(P, E);
  return align256((E + 1) * 4) + align256(E * 4) + 2 * align256(tiles * 4) + align256(moe_max_units(P, E) * 4) +
         align256(3 * 4) + 2 * align256(P * 4);
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
  m.unit_tile = take(static_cast<size_t>(moe_max_units(P, E)) * 4);
  m.counts = take(3 * 4);
  m.sorted_pair = take(P * 4);
  m.pair_pos = take(P * 4);
  return m;
}

void moe_align(const int32_t* ids, int64_t P, int E, const MoeMeta& meta, cudaStream_t stream) {
  TLLM_CHECK(E >= 1 && E <= kMoeMaxExperts, "moe_align: ", E, " experts (supported 1..", kMoeMaxExperts, ")");
  TLLM_CHECK(P >= 0 && P < (int64_t{1} << 30), "moe_align: ", P, " pairs");
  const size_t smem = static_cast<size_t>(5 * E + 1) * sizeof(int);
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
