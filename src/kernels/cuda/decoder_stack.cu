// Every decoder layer of a one-token decode step in one persistent kernel.
//
// Why: at batch 1 the op-by-op decode step is a chain of ~8 kernels per layer, each too
// small to reach the copy rate: at the Qwen2.5-0.5B shape a layer's 30 MB of weights
// would stream in 7 us but the chain takes ~33 us (docs/cuda-notes.md, "0.5B layer").
// Here one block per SM walks the layers; the phases of a layer are separated by grid
// barriers split in two: a block arrives when its work of the phase is done, then issues
// its first weight loads of the next phase (weights do not depend on the other blocks),
// then waits, so DRAM latency overlaps the barrier.
//
// Measured (H200, docs/cuda-notes.md "Session 7", run 52): at 0.5B a layer takes ~26 us
// (qkv 3.4, attention 6.0, o 3.6, gate|up 8.5, down 4.7: each phase is a chain of a barrier
// and one or two dependent L2 round trips): tg128 batch 1 1,243 -> 1,347 tok/s (29% -> 32%
// of roofline); 1.5B 611 -> 688 (45% -> 51%); 7B 237 -> 228 (CudaBackend uses it for layers
// up to 128 MB). Session 9 (runs 68-73): MoE layers, and a conflict-free input vector:
// 0.5B ~25 us per layer (1,351 tok/s), 1.5B 712 tok/s (53%), Qwen3-30B-A3B 59 us per layer
// (qkv 8.1, attention 8.8, o 6.3, router 3.1, gate|up 20.8, down 12.0): 300 -> 331 tok/s
// (44% -> 48%). Not kept: whole phases requested into L2 ahead of use
// (cp.async.bulk.prefetch.L2; 0.5B 992 -> 798 tok/s, run 43), and weights staged into
// shared memory with cp.async one phase ahead or at phase entry (runs 46, 47, 50, 51: the
// copies delay the block's barrier arrival or queue ahead of the phase's dependent loads);
// the attention computed inside every block instead of across the grid, one grid barrier
// per layer fewer (runs 122-126, session 18: all heads per block 1,468 -> 1,084 tok/s at
// 0.5B; one head per block with the o projection split by head and summed in fixed point
// 1,463 -> 1,295: the in-block chain is as long as the grid's, and the second path's
// registers spill into both); the layer's earlier K / V requested into L2 in the q|k|v phase
// (run 127: -5%).

// Phases of layer l (5 grid barriers per dense layer, 6 per MoE layer):
//   1. h = rms_norm(x, input_norm) (every block, into shared memory); qkv = h Wqkv + b
//   2. attention units (q head, key split), one warp each: q/k norm (Qwen3) and RoPE of the
//      head, k/v of the token written to its cache slot, online softmax over the split's keys
//      (the token's own key and value come from the warp, not the cache); splits of a head
//      are merged by the last one to finish (per-head counter), or, up to kAttnWarps splits,
//      run on one block (head h on block h) and merge in shared memory
//   3. x += attn Wo (+ b)
//   dense MLP:
//   4. h = rms_norm(x, post_norm); act = silu(h Wg) * (h Wu)
//   5. x += act Wd
//   sparse MoE MLP (Qwen3-MoE; no shared expert):
//   4. h = rms_norm(x, post_norm) (every block, kept in shared memory for 5); router logits
//      h . Wr[e], rounded to bf16
//   5. every block routes the token itself from the E logits (softmax and rank-based top-k,
//      moe_route_common.cuh: the router kernels' arithmetic); act[j I + f] = silu(h Wg_e) *
//      (h Wu_e) for the k chosen experts e = e_j (the MoE kernels' formula)
//   6. x += sum_j w_j bf16(act_j Wd_e) (j in slot order, as moe_down_combine)
// and after the last layer block 0 writes h = rms_norm(x, final_norm).
//
// GEMV (gemv_tile): each block owns an even share of the output rows; its warps take
// (row, 2 KB segment) units in contiguous ranges, the input vector in shared memory as f32,
// fp32 FMA (T = 1 needs no tensor cores). The bf16 roundings are those of the op-by-op path
// (qkv, attn, o, act and the residual in bf16), so results differ from it only by summation
// order; every sum has a fixed order, so a step is reproducible bit for bit.
//
// Activations written by one block and read by another go through L2 (ld.cg / st), never
// L1, and only across a grid barrier (release/acquire at gpu scope).
//
// Quantized stacks (StackQuantDims, template parameter WB = 4, 8 or kStackFp8): the four
// projections run as stackq::qgemv_tile (decoder_stack_qgemv.cuh: the codes as MMA operands,
// the input as bf16 in fragment order beside the f32 one, scales staged by cp.async); a block
// then owns whole 16-row panels of every projection (split), the router stays the bf16 GEMV.
// Same phases, barriers and roundings. H200, Qwen3-30B-A3B int4 g128 tg b1 (run 255): 328.6
// tok/s op by op -> 391.2, phases qkv 7.6, attention 8.8, o 6.0, router 3.6, gate|up 15.6,
// down 9.5 us per layer (the bf16 stack's: 8.1, 8.8, 6.3, 3.1, 20.8, 12.0): each phase is
// still mostly its barrier and dependent round trips, not its bytes.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/decoder_stack.h"
#include "kernels/cuda/decoder_stack_qgemv.cuh"
#include "kernels/cuda/moe_route_common.cuh"

namespace tllm::cuda {
namespace {

constexpr int kWarps = 16;
constexpr int kThreads = 32 * kWarps;
constexpr int kAttnWarps = 8;      // warps per block that take attention units
constexpr int kChunkKeys = 32;     // keys per attention split (about): one tile

struct Scratch {
  bf16* qkv;
  bf16* attn;
  bf16* act;         // [max(I, k Im)]
  float* logits;     // [E]: a MoE layer's router logits (bf16 values)
  float* part;       // [n_q][max_splits][2 + D]: m, l, acc
  unsigned* sync;    // [0]: barrier arrivals; [1 + h]: finished splits of head h; [1 + n_q]: blocks done
  int max_splits;
  size_t bytes;      // the whole workspace
};

__host__ __device__ inline int max_splits_of(int n_q, int num_sms) {
  const int s = num_sms * kAttnWarps / n_q;
  return s < 1 ? 1 : (s > 256 ? 256 : s);
}

// Elements of the MLP activation: the dense layers' I, the MoE layers' k experts of Im.
__host__ __device__ inline int act_len(int I, const MoeDims& moe) {
  const int m = moe.k * moe.I;
  return I > m ? I : m;
}

// The workspace carve-up (base null: only the sizes), the same on host and device.
__host__ __device__ inline Scratch carve(void* base, int I, int n_q, int n_kv, int D, const MoeDims& moe,
                                         int num_sms) {
  Scratch s;
  auto* p = static_cast<unsigned char*>(base);
  size_t off = 0;
  auto take = [&](size_t bytes) {
    void* r = p ? p + off : nullptr;
    off += (bytes + 255) / 256 * 256;
    return r;
  };
  s.max_splits = max_splits_of(n_q, num_sms);
  s.sync = static_cast<unsigned*>(take(sizeof(unsigned) * (2 + n_q)));
  s.qkv = static_cast<bf16*>(take(sizeof(bf16) * (n_q + 2 * n_kv) * D));
  s.attn = static_cast<bf16*>(take(sizeof(bf16) * n_q * D));
  s.act = static_cast<bf16*>(take(sizeof(bf16) * act_len(I, moe)));
  s.logits = static_cast<float*>(take(sizeof(float) * (moe.E > 0 ? moe.E : 1)));
  s.part = static_cast<float*>(take(sizeof(float) * n_q * s.max_splits * (2 + D)));
  s.bytes = off;
  return s;
}

// ---- grid barrier -------------------------------------------------------

// Barrier k (k = 1, 2, ...) of the launch, split in two: every block adds 1 to the counter
// when its work of the phase is done (arrive), may then issue loads that do not depend on
// the other blocks (the next phase's weights), and waits until it reads k * gridDim.x. The
// counter is 0 at the launch: the last block to finish resets it (grid_exit). (Issuing those
// loads before arriving delayed the arrival: H200 runs 46, 47, 50.)
__device__ __forceinline__ void grid_arrive(unsigned* counter, unsigned& target) {
  // bar.sync orders the block's writes before thread 0's release (cumulative at gpu scope).
  __syncthreads();
  target += gridDim.x;
  if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
}
__device__ __forceinline__ void grid_wait(const unsigned* counter, unsigned target) {
  // Thread 0's acquire, then bar.sync: the block's later reads see every block's writes.
  if (threadIdx.x == 0) {
    unsigned v;
    do {
      asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
    } while (v < target);
  }
  __syncthreads();
}

// After the block's last barrier wait: the last block to get here zeroes the barrier counter
// and this exit count, so that the next launch finds them 0 without a memset before it (a
// memset node between the embedding and this kernel cost ~3 us of every 0.5B step, run 152's
// timeline). Every other block has passed its last wait (and so read the counter for the last
// time) before it counted its exit.
__device__ __forceinline__ void grid_exit(unsigned* counter, unsigned* exits) {
  if (threadIdx.x == 0) {
    const unsigned before = atomicAdd(exits, 1u);
    if (before == gridDim.x - 1) {
      *counter = 0;
      *exits = 0;
    }
  }
}

// ---- vectors in shared memory -------------------------------------------------------------

// acc + the 8 bf16 values of a . (x0, x1), in element order.
__device__ __forceinline__ float dot8(const uint4& a, const float4& x0, const float4& x1, float acc) {
  acc = fmaf(__uint_as_float(a.x << 16), x0.x, acc);
  acc = fmaf(__uint_as_float(a.x & 0xffff0000u), x0.y, acc);
  acc = fmaf(__uint_as_float(a.y << 16), x0.z, acc);
  acc = fmaf(__uint_as_float(a.y & 0xffff0000u), x0.w, acc);
  acc = fmaf(__uint_as_float(a.z << 16), x1.x, acc);
  acc = fmaf(__uint_as_float(a.z & 0xffff0000u), x1.y, acc);
  acc = fmaf(__uint_as_float(a.w << 16), x1.z, acc);
  acc = fmaf(__uint_as_float(a.w & 0xffff0000u), x1.w, acc);
  return acc;
}
__device__ __forceinline__ float dot8(const uint4& a, const float* x, float acc) {
  return dot8(a, reinterpret_cast<const float4*>(x)[0], reinterpret_cast<const float4*>(x)[1], acc);
}

// The GEMV input vector in shared memory, f32, as two planes of float4: element 8 v + e is
// lo[v].e for e < 4 and lo[plane + v].(e - 4) otherwise. The lanes of a warp reading vectors
// v0 + lane then touch consecutive 16-byte words in each plane: no bank conflict. (One plane
// of 32-byte vectors made every such load a 2-way conflict: 41% of the kernel's shared-memory
// wavefronts, ncu run 70.)
struct XVec {
  float4* lo;
  int plane;  // hi = lo + plane
  __device__ __forceinline__ float get(int i) const {
    return reinterpret_cast<const float*>(&lo[(i >> 3) + ((i & 4) ? plane : 0)])[i & 3];
  }
  __device__ __forceinline__ void set8(int v, const float (&f)[8]) const {
    lo[v] = make_float4(f[0], f[1], f[2], f[3]);
    lo[plane + v] = make_float4(f[4], f[5], f[6], f[7]);
  }
  __device__ __forceinline__ void get8(int v, float (&f)[8]) const {
    const float4 a = lo[v], b = lo[plane + v];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
  }
  // acc + the 8 bf16 weights of a . vector v, in element order.
  __device__ __forceinline__ float dot8(const uint4& a, int v, float acc) const {
    return tllm::cuda::dot8(a, lo[v], lo[plane + v], acc);
  }
};

// dst[0, n) = f32(src) (n % 8 == 0), read through L2; in a quantized phase (xq.w) also the
// quantized GEMV's input: n / xq.seg_len segments in fragment order, zero-padded.
__device__ __forceinline__ void load_vec(const XVec& dst, const stackq::XB& xq, const bf16* src, int n) {
  for (int i = threadIdx.x; i < n / 8; i += kThreads) {
    float f[8];
    bf16x8_to_f32(__ldcg(reinterpret_cast<const uint4*>(src) + i), f);
    dst.set8(i, f);
    if (xq.w) {
      const int seg = 8 * i / xq.seg_len;
      stackq::xb_store8(xq, seg, 8 * i - seg * xq.seg_len, f);
    }
  }
  if (xq.w) stackq::xb_pad(xq, n / xq.seg_len, kThreads);
  __syncthreads();
}

// Requests w [n] into L2 (one 128-byte line per thread, no registers held). Called before a
// barrier wait for what the phase after it reads on its critical path and the step's weight
// stream has evicted: the norm weights (read after norm_vec's reduction) and the q|k|v bias
// rows (read in the epilogue). (Copying the norm weights into shared memory by cp.async
// there instead was slower: run 94.)
__device__ __forceinline__ void prefetch_l2(const float* w, int n) {
  for (int i = threadIdx.x; i < (n + 31) / 32; i += kThreads)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(w + 32 * i));
}

// dst = bf16-rounded rms_norm(x) * w as f32 (the formula of rms_norm_row.cuh).
__device__ __forceinline__ void norm_vec(const XVec& dst, const stackq::XB& xq, const bf16* x,
                                         const float* __restrict__ w, int n, float eps, float* red) {
  float ss = 0.0f;
  for (int i = threadIdx.x; i < n / 8; i += kThreads) {
    float f[8];
    bf16x8_to_f32(__ldcg(reinterpret_cast<const uint4*>(x) + i), f);
#pragma unroll
    for (int e = 0; e < 8; ++e) ss += f[e] * f[e];
    dst.set8(i, f);
  }
  const float inv = rsqrtf(block_sum(ss, red) / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n / 8; i += kThreads) {
    float f[8];
    dst.get8(i, f);
#pragma unroll
    for (int e = 0; e < 8; ++e) f[e] = round_bf16(f[e] * inv * w[8 * i + e]);
    dst.set8(i, f);
    if (xq.w) stackq::xb_store8(xq, 0, 8 * i, f);
  }
  if (xq.w) stackq::xb_pad(xq, 1, kThreads);
  __syncthreads();
}

// ---- GEMV ------------------------------------------------------------------------------

// This block's share of a GEMV: R rows of K (row i: the weight row row_ptr(i) times the
// input vector at vector x_of(i) of xs) cut into units of one row x one segment of
// 32 x kSegVecs 16-byte vectors (lane L reads vectors L, L + 32, ...: coalesced). Each warp
// takes a contiguous range of units, kGemvUnits units (kGemvUnits x kSegVecs loads per
// lane) in flight, the next group's loads issued before the current group's math; a unit's
// dot product, summed over the warp once, lands in part[unit], and a row is summed over its
// segments in order (deterministic).
// arrive() (the block's arrival at the barrier that ends the previous phase) runs first,
// then the first group's loads are issued, then pre() waits at that barrier and fills xs:
// the first weight loads overlap the wait (weights do not depend on the previous phase) and
// do not delay the arrival. epi(row_sum) then runs on every thread; row_sum(i) is row i's
// dot product. ev() marks, for the optional trace, input ready, this thread's loop done, the
// block's loops done and the epilogue done.
// (A ring of 3 or 5 units per warp in shared memory filled by cp.async instead of the
// register double buffer was measured on an H200, run 69: 0.5B and 1.5B steps 2-7% slower,
// 30B-A3B 5% faster, the deeper ring no faster than the shallow one: the GEMV is not short
// of bytes in flight.)
constexpr int kSegVecs = 4;
constexpr int kUnitVecs = 32 * kSegVecs;  // 16-byte vectors of a unit (2 KB)
constexpr int kGemvUnits = 2;

template <typename RowPtr, typename XOf, typename Arrive, typename Pre, typename Epi, typename Ev>
__device__ __forceinline__ void gemv_tile(int R, int K, RowPtr row_ptr, XOf x_of, const XVec& xs, float* part,
                                          Arrive arrive, Pre pre, Epi epi, Ev ev) {
  constexpr int U = kGemvUnits, V = kSegVecs;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int nvec = K / 8, nseg = (nvec + kUnitVecs - 1) / kUnitVecs, units = R * nseg;
  const int u_begin = warp * units / kWarps, u_end = (warp + 1) * units / kWarps;
  arrive();
  auto issue = [&](int unit, uint4 (&r)[V]) {
#pragma unroll
    for (int v = 0; v < V; ++v) r[v] = make_uint4(0, 0, 0, 0);
    if (unit >= u_end) return;
    const int i = unit / nseg, seg = unit - i * nseg;
    const bf16* w = row_ptr(i);
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int vec = (seg * V + v) * 32 + lane;
      if (vec < nvec) r[v] = ld_weight_u4(w + 8 * vec);
    }
  };
  auto math = [&](int unit, const uint4 (&r)[V]) {
    const int i = unit / nseg, seg = unit - i * nseg;
    const int x0 = x_of(i);
    float d = 0.0f;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const int vec = (seg * V + v) * 32 + lane;
      if (vec < nvec) d = xs.dot8(r[v], x0 + vec, d);
    }
    d = warp_sum(d);
    if (lane == 0) part[unit] = d;
  };
  uint4 a[U][V];
#pragma unroll
  for (int u = 0; u < U; ++u) issue(u_begin + u, a[u]);
  pre();
  ev();
  for (int u0 = u_begin; u0 < u_end; u0 += U) {
    uint4 b[U][V];
    const bool more = u0 + U < u_end;
    if (more) {
#pragma unroll
      for (int u = 0; u < U; ++u) issue(u0 + U + u, b[u]);
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (u0 + u < u_end) math(u0 + u, a[u]);
    if (more) {
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int v = 0; v < V; ++v) a[u][v] = b[u][v];
    }
  }
  ev();
  __syncthreads();
  ev();
  epi([&](int i) {
    float sum = 0.0f;
    for (int sg = 0; sg < nseg; ++sg) sum += part[i * nseg + sg];
    return sum;
  });
  ev();
  __syncthreads();
}

// Rows [r0, r1) of N dealt to this block: an even split.
__device__ __forceinline__ void block_rows(int N, int& r0, int& r1) {
  r0 = static_cast<int>(static_cast<int64_t>(N) * blockIdx.x / gridDim.x);
  r1 = static_cast<int>(static_cast<int64_t>(N) * (blockIdx.x + 1) / gridDim.x);
}

// ---- MoE routing -------------------------------------------------------------------------

// Routing state of the current MoE layer, in shared memory (every block routes for itself).
struct Route {
  float prob[kStackMaxExperts];
  unsigned key[kStackMaxExperts];
  int id[kStackMaxTopK];       // slot j: the expert
  float p[kStackMaxTopK];      // its probability
  float w[kStackMaxTopK];      // its weight (renormalised when asked)
};

// softmax of the E logits, then expert e takes slot rank(e) when rank(e) < k, rank(e) being
// the number of experts ahead of it in the routing order (route_key, ties to the lower id):
// the router kernel's choice and slot order, without k dependent rounds. The logits come in
// one round trip (a thread each), warp 0 takes the softmax (softmax_warp: the router
// kernels' bits), and G threads per expert count its rank over a G-th of the keys each.
// r.id and r.p are ready on return; r.w (read by the down projection's epilogue, several
// bar.syncs later) is published by the next bar.sync.
__device__ __forceinline__ void route_token(const float* logits, const MoeDims& moe, Route& r) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, E = moe.E, k = moe.k;
  for (int e = threadIdx.x; e < E; e += kThreads) r.prob[e] = __ldcg(logits + e);
  __syncthreads();
  if (warp == 0) {
    softmax_warp(r.prob, E);
    for (int e = lane; e < E; e += 32) r.key[e] = route_key(r.prob[e]);
  }
  __syncthreads();
  int G = 32;  // threads per expert: a power of two, at most a warp
  while (G > 1 && G * E > kThreads) G >>= 1;
  const int part = threadIdx.x & (G - 1), per_pass = kThreads / G;
  for (int e0 = 0; e0 < E; e0 += per_pass) {  // the same passes on every lane of a warp
    const int e = e0 + static_cast<int>(threadIdx.x) / G;
    unsigned better = 0;
    if (e < E) {
      const unsigned ke = r.key[e];
      for (int x = part; x < E; x += G) {
        const unsigned kx = r.key[x];
        better += kx > ke || (kx == ke && x < e);
      }
    }
    for (int o = 1; o < G; o <<= 1) better += __shfl_xor_sync(0xffffffffu, better, o);
    if (e < E && part == 0 && better < static_cast<unsigned>(k)) {
      r.id[better] = e;
      r.p[better] = r.prob[e];
    }
  }
  __syncthreads();
  if (threadIdx.x < k) {
    float w = r.p[threadIdx.x];
    if (moe.renormalize) {
      float chosen = 0.0f;  // the k weights in slot order, as the router kernel sums them
      for (int j = 0; j < k; ++j) chosen += r.p[j];
      w = w / chosen;
    }
    r.w[threadIdx.x] = w;
  }
}

// ---- attention --------------------------------------------------------------------------

// VEC elements of bf16 as one load / store.
template <int VEC> struct VecBits;
template <> struct VecBits<2> { using T = uint32_t; };
template <> struct VecBits<4> { using T = uint2; };

template <int VEC>
__device__ __forceinline__ void load_bf16(const bf16* p, float (&f)[VEC]) {
  const typename VecBits<VEC>::T raw = *reinterpret_cast<const typename VecBits<VEC>::T*>(p);
  const bf16* e = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
  for (int i = 0; i < VEC; ++i) f[i] = __bfloat162float(e[i]);
}
template <int VEC>
__device__ __forceinline__ void load_bf16_cg(const bf16* p, float (&f)[VEC]) {
  typename VecBits<VEC>::T raw;
  if constexpr (VEC == 2) raw = __ldcg(reinterpret_cast<const unsigned*>(p));
  else raw = __ldcg(reinterpret_cast<const uint2*>(p));
  const bf16* e = reinterpret_cast<const bf16*>(&raw);
#pragma unroll
  for (int i = 0; i < VEC; ++i) f[i] = __bfloat162float(e[i]);
}
template <int VEC>
__device__ __forceinline__ void store_bf16(bf16* p, const float (&f)[VEC]) {
  typename VecBits<VEC>::T raw;
  bf16* e = reinterpret_cast<bf16*>(&raw);
#pragma unroll
  for (int i = 0; i < VEC; ++i) e[i] = __float2bfloat16_rn(f[i]);
  *reinterpret_cast<typename VecBits<VEC>::T*>(p) = raw;
}

// Per-head RMSNorm (Qwen3 q/k norm, bf16-rounded as the rope kernel does) and split-half
// RoPE over the whole head of a lane's VEC dims [VEC lane, VEC lane + VEC); the rotation
// partner of lane L is lane L ^ 16. The result is rounded to bf16 (what the cache holds).
template <int D>
__device__ __forceinline__ void norm_rope(float (&v)[D / 32], const float* norm_w, float eps, const float* cs) {
  constexpr int VEC = D / 32, half = D / 2;
  const int lane = threadIdx.x & 31;
  if (norm_w) {
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < VEC; ++i) ss += v[i] * v[i];
    const float inv = rsqrtf(warp_sum(ss) / static_cast<float>(D) + eps);
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = round_bf16(v[i] * inv * norm_w[VEC * lane + i]);
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    const int j = (VEC * lane + i) % half;
    const float c = cs[j], s = cs[half + j];
    const float other = __shfl_xor_sync(0xffffffffu, v[i], 16);
    v[i] = round_bf16(lane < 16 ? v[i] * c - other * s : v[i] * c + other * s);
  }
}

// Entries of the block table the kernel copies into shared memory at launch (the attention
// reads the rest from global memory).
constexpr int kTableCopy = 256;

// One (q head h, key split s of S) unit on one warp. wbuf: this warp's 3 D floats (q, the
// token's k and v); vt: its [32][D] bf16 tile of values. Keys go 32 at a time, lane j
// owning key j of the tile: its K row straight into registers, its V row into vt with
// cp.async, so a tile costs one memory latency; then lane L sums p_j v_j over the tile for
// its VEC dims from vt.
// block_merge: the S splits of head h run on warps 0..S-1 of one block (warp s = split s),
// so they merge through shared memory (each split's partial in its warp's wbuf, a named
// barrier of the S warps) instead of through L2 (a partial store, a counter's atomic round
// trip, the last split's loads of the others).
template <int D>
__device__ void attention_unit(const DecoderStackParams& p, const StackLayerPtrs& L, const Scratch& sc, int h, int s,
                               int S, int chunk, int n_keys, float* wbuf, bf16* vt, const float* cs, const int* bt,
                               bool block_merge) {
  constexpr int VEC = D / 32;
  const int lane = threadIdx.x & 31;
  const int group = p.n_q / p.n_kv, kvh = h / group;
  const int pos = n_keys - 1;  // the token's own key
  const int Q = p.n_q * D, KV = p.n_kv * D;
  float q[VEC], k[VEC], v[VEC];
  load_bf16_cg<VEC>(sc.qkv + h * D + VEC * lane, q);
  load_bf16_cg<VEC>(sc.qkv + Q + kvh * D + VEC * lane, k);
  load_bf16_cg<VEC>(sc.qkv + Q + KV + kvh * D + VEC * lane, v);
  norm_rope<D>(q, L.q_norm, p.eps, cs);
  norm_rope<D>(k, L.k_norm, p.eps, cs);
  float* qs = wbuf;
  float* kn = wbuf + D;
  float* vn = wbuf + 2 * D;
#pragma unroll
  for (int i = 0; i < VEC; ++i) {
    qs[VEC * lane + i] = q[i];
    kn[VEC * lane + i] = k[i];
    vn[VEC * lane + i] = v[i];
  }
  __syncwarp();
  if (h % group == 0 && s == S - 1) {  // one unit per kv head writes the token's k and v
    const int64_t slot = p.slot_mapping[0];
    if (slot >= 0 && slot < p.num_slots) {
      const int64_t off = (slot * p.n_kv + kvh) * D + VEC * lane;
      store_bf16<VEC>(L.k_cache + off, k);
      store_bf16<VEC>(L.v_cache + off, v);
    }
  }

  const int k0 = s * chunk;
  const int k1 = min(n_keys, k0 + chunk);
  float m = -INFINITY, l = 0.0f, acc[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) acc[i] = 0.0f;
  for (int jb = k0; jb < k1; jb += 32) {
    const int j = jb + lane;
    float score = -INFINITY;
    bf16* vrow = vt + lane * D;
    if (j < k1) {
      float d = 0.0f;
      if (j == pos) {
#pragma unroll
        for (int e = 0; e < D; e += 8) {
          float f[8];
#pragma unroll
          for (int t = 0; t < 8; ++t) f[t] = vn[e + t];
          *reinterpret_cast<uint4*>(vrow + e) = f32_to_bf16x8(f);
        }
#pragma unroll 8
        for (int e = 0; e < D; ++e) d = fmaf(kn[e], qs[e], d);
      } else {
        const int blk = j / p.block_size;
        const int64_t row = (static_cast<int64_t>(blk < kTableCopy ? bt[blk] : p.block_tables[blk]) * p.block_size +
                             j % p.block_size) * p.n_kv + kvh;
        const bf16* vp = L.v_cache + row * D;
#pragma unroll
        for (int e = 0; e < D; e += 8) cp_async16(vrow + e, vp + e);
        const bf16* kp = L.k_cache + row * D;
        uint4 kr[D / 8];
#pragma unroll
        for (int e = 0; e < D / 8; ++e) kr[e] = __ldg(reinterpret_cast<const uint4*>(kp) + e);
#pragma unroll
        for (int e = 0; e < D / 8; ++e) d = dot8(kr[e], qs + 8 * e, d);
      }
      score = d * p.scale;
    }
    const float m_new = fmaxf(m, warp_max(score));
    const float pj = j < k1 ? __expf(score - m_new) : 0.0f;
    const float corr = __expf(m - m_new);
    l = l * corr + warp_sum(pj);
    m = m_new;
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[i] *= corr;
    cp_async_wait_all();
    __syncwarp();
    const int nk = min(32, k1 - jb);
#pragma unroll 4
    for (int jj = 0; jj < nk; ++jj) {
      const float w = __shfl_sync(0xffffffffu, pj, jj);
      float vv[VEC];
      load_bf16<VEC>(vt + jj * D + VEC * lane, vv);
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = fmaf(w, vv[i], acc[i]);
    }
    __syncwarp();
  }

  bf16* out = sc.attn + h * D + VEC * lane;
  if (S == 1) {
    float o[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) o[i] = acc[i] / l;
    store_bf16<VEC>(out, o);
    return;
  }
  // This split's partial (m, l, acc): in shared memory (its warp's wbuf, free after the key
  // loop) or in L2; the parts of head h are `stride` floats apart.
  const int stride = block_merge ? 3 * D : 2 + D;
  float* part = block_merge ? wbuf : sc.part + (static_cast<int64_t>(h) * sc.max_splits + s) * (2 + D);
  __syncwarp();  // every lane's reads of wbuf in the key loop are done
  if (lane == 0) {
    part[0] = m;
    part[1] = l;
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) part[2 + VEC * lane + i] = acc[i];
  const float* parts;
  if (block_merge) {
    asm volatile("bar.sync 1, %0;" ::"r"(32 * S) : "memory");  // the S warps' partials are written
    if (s != 0) return;
    parts = wbuf;  // warp 0's: split t's is t wbufs on
  } else {
    __syncwarp();  // the warp's stores, then lane 0's count with release (and acquire) semantics
    unsigned done = 0;
    if (lane == 0)
      asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(done) : "l"(sc.sync + 1 + h) : "memory");
    done = __shfl_sync(0xffffffffu, done, 0);
    if (done != static_cast<unsigned>(S - 1)) return;
    parts = sc.part + static_cast<int64_t>(h) * sc.max_splits * (2 + D);
  }
  // Split 0 (block merge) or the last split to finish merges all S: lane t reads split t's m
  // and l, every lane then its dims of each split's acc (written by other SMs: through L2).
  auto ld = [&](const float* a) { return block_merge ? *a : __ldcg(a); };
  float M = -INFINITY;
  for (int t = lane; t < S; t += 32) M = fmaxf(M, ld(parts + t * stride));
  M = warp_max(M);
  float lt = 0.0f, o[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) o[i] = 0.0f;
  for (int t0 = 0; t0 < S; t0 += 32) {
    const int t = t0 + lane;
    const float w_mine = t < S ? __expf(ld(parts + t * stride) - M) : 0.0f;  // 0 for an empty split
    lt += warp_sum(t < S ? w_mine * ld(parts + t * stride + 1) : 0.0f);
    const int nt = min(32, S - t0);
#pragma unroll 4
    for (int tt = 0; tt < nt; ++tt) {
      const float w = __shfl_sync(0xffffffffu, w_mine, tt);
      const float* pt = parts + (t0 + tt) * stride + 2 + VEC * lane;
#pragma unroll
      for (int i = 0; i < VEC; ++i) o[i] = fmaf(w, ld(pt + i), o[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < VEC; ++i) o[i] /= lt;
  store_bf16<VEC>(out, o);
  if (!block_merge && lane == 0) sc.sync[1 + h] = 0;  // for the next layer
}

// Splits of n_keys keys: about kChunkKeys each, at most max_splits; chunk a multiple of 32.
__device__ __forceinline__ void attention_splits(int n_keys, int max_splits, int& S, int& chunk) {
  S = (n_keys + kChunkKeys - 1) / kChunkKeys;
  S = S < 1 ? 1 : (S > max_splits ? max_splits : S);
  chunk = ((n_keys + S - 1) / S + 31) / 32 * 32;
}

// ---- the kernel -------------------------------------------------------------------------

// Floats of the GEMV input vector (xs: the longest of H, n_q D and the activation), rounded
// up to whole 8-vectors; its second plane starts vec_area / 8 float4s in.
__host__ __device__ inline int vec_area(int H, int I, int n_q, int D, const MoeDims& moe) {
  const int v = H > n_q * D ? H : n_q * D;
  const int a = act_len(I, moe);
  return ((v > a ? v : a) + 7) / 8 * 8;
}
__host__ __device__ inline int imax(int a, int b) { return a > b ? a : b; }
__host__ __device__ inline int cdiv(int a, int b) { return (a + b - 1) / b; }
__host__ __device__ inline int q_tile(int bits) { return bits == 4 ? 128 : 64; }

// Elements of a quantized stack's GEMV input (bf16, fragment order, segments padded to the k
// tile) in its longest phase; 0 for bf16 weights.
__host__ __device__ inline int xb_elems(int I, const MoeDims& moe, const StackQuantDims& q) {
  if (q.bits == 16) return 0;
  const int T = q_tile(q.bits);
  int m = imax(imax(q.qkv.ktiles, q.o.ktiles), q.gate_up.ktiles) * T;
  if (I > 0) m = imax(m, q.down.ktiles * T);
  if (moe.E > 0) m = imax(m, moe.k * q.edown.ktiles * T);
  return m;
}

// Floats of the shared-memory area that holds the GEMV input vector (f32; a quantized stack's
// bf16 copy right after it) or, during attention, the warps' value tiles; and of the GEMV
// partial sums (part).
__host__ __device__ inline int xs_area(int H, int I, int n_q, int D, const MoeDims& moe, const StackQuantDims& q) {
  const int v = vec_area(H, I, n_q, D, moe) + cdiv(xb_elems(I, moe, q), 8) * 4, tiles = kAttnWarps * 32 * D / 2;
  return v > tiles ? v : tiles;
}
__host__ __device__ inline int part_area(int H, int I, int n_q, int n_kv, int D, const MoeDims& moe,
                                         const StackQuantDims& q, int G) {
  auto units = [&](int N, int K) { return ((N + G - 1) / G) * ((K / 8 + kUnitVecs - 1) / kUnitVecs); };  // as gemv_tile
  const int Q = n_q * D, NQKV = Q + 2 * n_kv * D;
  int m = 0;
  if (q.bits == 16) {
    m = imax(imax(units(NQKV, H), units(H, Q)), imax(2 * units(I, H), units(H, I)));
    m = imax(m, imax(2 * units(moe.k * moe.I, H), moe.k * units(H, moe.I)));
  } else {  // the router's bf16 units, and 16 floats a (panel, k tile) unit of qgemv_tile
    auto panels = [&](int N) { return cdiv(N / 16, G); };
    m = imax(units(moe.E, H), 16 * imax(panels(NQKV) * q.qkv.ktiles, panels(H) * q.o.ktiles));
    if (I > 0) m = imax(m, 16 * imax(2 * panels(I) * q.gate_up.ktiles, panels(H) * q.down.ktiles));
    if (moe.E > 0)
      m = imax(m, 16 * imax(2 * panels(moe.k * moe.I) * q.gate_up.ktiles, panels(H) * moe.k * q.edown.ktiles));
  }
  return (m + 3) / 4 * 4;
}

// Bytes of a quantized stack's staged scales and offsets: the block's panels of the phase with
// the most (2 panel_scale_bytes a panel); 0 for bf16 weights.
__host__ __device__ inline int stage_bytes(int H, int I, int n_q, int n_kv, int D, const MoeDims& moe,
                                           const StackQuantDims& q, int G) {
  if (q.bits == 16) return 0;
  const bool f = q.scales_f16;
  auto panels = [&](int N) { return cdiv(N / 16, G); };
  auto psb = [&](const StackQuantK& k) { return 2 * stackq::panel_scale_bytes(k, f); };
  const int NQKV = (n_q + 2 * n_kv) * D;
  int m = imax(panels(NQKV) * psb(q.qkv), panels(H) * psb(q.o));
  if (I > 0) m = imax(m, imax(2 * panels(I) * psb(q.gate_up), panels(H) * psb(q.down)));
  if (moe.E > 0) m = imax(m, imax(2 * panels(moe.k * moe.I) * psb(q.gate_up), panels(H) * moe.k * psb(q.edown)));
  return m;
}

// Floats of the block's own residual rows (a quantized stack splits whole 16-row panels).
__host__ __device__ inline int xown_area(int H, int G, const StackQuantDims& q) {
  const int rows = q.bits == 16 ? cdiv(H, G) : 16 * cdiv(H / 16, G);
  return (rows + 3) / 4 * 4;
}

// A layer's pointers into shared memory by cp.async (8-byte pieces, thread i the i-th; the
// caller waits with cp_async_wait_all and a bar.sync before reading them).
__device__ __forceinline__ void copy_layer_ptrs(StackLayerPtrs* dst, const StackLayerPtrs* src) {
  static_assert(sizeof(StackLayerPtrs) % 8 == 0, "8-byte pieces");
  constexpr int kPieces = sizeof(StackLayerPtrs) / 8;
  if (threadIdx.x < kPieces)
    cp_async8(reinterpret_cast<uint64_t*>(dst) + threadIdx.x, reinterpret_cast<const uint64_t*>(src) + threadIdx.x);
}

__device__ __forceinline__ void stamp(const DecoderStackParams& p, int& k) {
  if (p.timing && blockIdx.x == 0 && threadIdx.x == 0) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    p.timing[k] = t;
  }
  ++k;
}

// WB: the weights' bits: 16 (bf16 projections, gemv_tile) or a quantized stack's 4, 8 or
// kStackFp8 (the four projections through stackq::qgemv_tile; the router stays bf16).
// kMoe: the kernel has the sparse MoE phases. A dense model's bf16 kernel leaves them out: with
// them (session 49's route_token and the quantized stack's code), ptxas spilled the bf16 D = 64
// kernel (0 -> 20 / 48 bytes), and Qwen2.5-0.5B tg b1 had lost ~3% since b7f3a68 (H100 run
// 281: the kernel 597 -> 616 us per step).
template <int D, bool kTrace, int WB, bool kMoe>
__global__ void __launch_bounds__(kThreads, 1) decoder_stack_kernel(const __grid_constant__ DecoderStackParams p) {
  constexpr bool kQuant = WB != 16;
  extern __shared__ __align__(16) float smem[];
  __shared__ float red[32];
  __shared__ Route route;
  // Constants of the launch that every layer's attention reads on its critical path: the
  // token's cos | sin row and the first kTableCopy blocks of its block table (from global
  // memory they were one or two dependent round trips per attention unit per layer).
  __shared__ float cs_s[D];
  __shared__ int bt_s[kTableCopy];
  // Layer l's pointers (lp[l & 1]), copied a layer ahead. Read from p.layers in global memory
  // they were L2 round trips on the phases' critical paths (a grid barrier's acquire leaves no
  // L1 copy): the q/k norm and cache pointers at the head of attention, the experts' after
  // routing. H200 run 262, tg b1: Qwen3-30B-A3B int4 g128 438.4 -> 453.1 tok/s (with the
  // faster route_token), Qwen2.5-0.5B bf16 1,491.5 -> 1,517. The bf16 kernel of 128-wide heads
  // keeps reading p.layers: with the copy ptxas spills it (0 -> 20 bytes) and Qwen3-30B-A3B
  // bf16 ran 342.3 -> 337.7. So do the dense bf16 kernels (no spills either way): H100 run
  // 282, tg b1, 0.5B 1,402.9 with the copy against 1,431.1 without; 1.5B 669.6 against 662.8
  // with the copy at D = 128.
  constexpr bool kSharedPtrs = kQuant || (D == 64 && kMoe);
  __shared__ __align__(16) StackLayerPtrs lp[kSharedPtrs ? 2 : 1];
  const MoeDims& moe = p.moe;
  const StackQuantDims& qd = p.quant;
  const Scratch sc = carve(p.workspace, p.I, p.n_q, p.n_kv, D, moe, gridDim.x);
  const int H = p.H, I = p.I, Q = p.n_q * D, NQKV = Q + 2 * p.n_kv * D;
  const int warp = threadIdx.x >> 5;
  const int area = xs_area(H, I, p.n_q, D, moe, qd);
  const int va = vec_area(H, I, p.n_q, D, moe);
  const XVec xs{reinterpret_cast<float4*>(smem), va / 8};  // GEMV input vector
  uint32_t* xbw = kQuant ? reinterpret_cast<uint32_t*>(smem + va) : nullptr;  // its bf16 copy (quantized)
  bf16* vt = reinterpret_cast<bf16*>(smem) + warp * 32 * D;            // attention: this warp's value tile
  float* wbuf = smem + area + (warp % kAttnWarps) * 3 * D;             // attention: q, k, v of the head
  float* part = smem + area + kAttnWarps * 3 * D;                      // GEMV partial sums
  // x[h0, h1): only this block updates them
  float* xown = part + part_area(H, I, p.n_q, p.n_kv, D, moe, qd, gridDim.x);
  unsigned char* stage = reinterpret_cast<unsigned char*>(xown + xown_area(H, gridDim.x, qd));  // quantized: scales
  unsigned target = 0;
  int timer = 0;
  stamp(p, timer);
  // The optional trace (kTrace, TLLM_STACK_TRACE) of layers trace_layer and trace_layer + 1:
  // each block's globaltimer at every event (arrival, barrier pass, gemv_tile's marks,
  // attention done), in program order.
  bool tracing = false;
  int tk = 0;
  auto ev = [&] {
    if (!kTrace || !tracing) return;
    if (threadIdx.x == 0 && tk < kStackTraceSlots) {
      unsigned long long t;
      asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
      p.trace[static_cast<int64_t>(tk) * gridDim.x + blockIdx.x] = t;
    }
    ++tk;
  };
  auto arrive = [&] {
    grid_arrive(sc.sync, target);
    ev();
  };
  auto wait = [&] {
    grid_wait(sc.sync, target);
    stamp(p, timer);
    ev();
  };
  auto sync = [&] {
    arrive();
    wait();
  };
  // The block's rows of a projection: an even split of the rows, or of whole 16-row panels
  // in a quantized stack.
  auto split = [&](int N, int& r0, int& r1) {
    if constexpr (kQuant) {
      block_rows(N / 16, r0, r1);
      r0 *= 16;
      r1 *= 16;
    } else {
      block_rows(N, r0, r1);
    }
  };
  int q0, q1, h0, h1, f0, f1, m0, m1, e0, e1;
  split(NQKV, q0, q1);
  split(H, h0, h1);
  split(I, f0, f1);
  split(moe.k * moe.I, m0, m1);  // MoE: features j Im + f of the k chosen experts
  block_rows(moe.E, e0, e1);     // MoE: router rows (bf16)
  const int F = f1 - f0, M = m1 - m0, k = moe.k, Im = moe.I;
  const int n_keys = p.seq_lens_k[0];  // keys after this step, the token's own last
  int S, chunk;
  attention_splits(n_keys, sc.max_splits, S, chunk);
  // Short contexts: a head's splits in one block, merged in shared memory (attention_unit).
  const bool block_merge = S > 1 && S <= kAttnWarps && p.n_q <= static_cast<int>(gridDim.x);
  auto add_residual = [&](auto row_sum, const float* bias) {  // x[n] += bf16(row_sum(n - h0) + b) for the block's rows
    for (int i = threadIdx.x; i < h1 - h0; i += kThreads) {
      const int n = h0 + i;
      const float a = row_sum(i);
      const float o = round_bf16(bias ? a + bias[n] : a);
      xown[i] = round_bf16(xown[i] + o);
      p.x[n] = __float2bfloat16_rn(xown[i]);
    }
  };
  auto vec = [](int) { return 0; };  // every row's input starts at vector 0
  auto seg0 = [](int) { return 0; };  // every panel's input is segment 0
  // The quantized GEMV's input for a projection of input width K (qk), segments of K each
  // (none in a bf16 stack: xbw is null there).
  auto xq = [&](int K, const StackQuantK& qk) { return stackq::XB{xbw, K, qk.ktiles * q_tile(WB)}; };
  // A projection phase: rows [0, R) of the bf16 GEMV (row_ptr(i): row i's weights, x_of(i):
  // its input vector) or the R / 16 panels of the quantized one (panel_of(i), seg_of(i)).
  auto project = [&](int R, int K, const StackQuantK& qk, auto row_ptr, auto x_of, auto panel_of, auto seg_of,
                     auto arr, auto pre, auto epi) {
    if constexpr (kQuant) {
      stackq::qgemv_tile<WB, kWarps>(R / 16, qk, qd.scales_f16, panel_of, seg_of, xq(K, qk), part, stage, arr, pre,
                                     epi, ev);
    } else {
      gemv_tile(R, K, row_ptr, x_of, xs, part, arr, pre, epi, ev);
    }
  };
  // Panel gp of a quantized projection.
  auto qpanel = [&](const StackQuantPtrs& w, const StackQuantK& qk, int64_t gp) {
    return stackq::panel_at(w, gp, qk.ktiles, stackq::panel_scale_bytes(qk, qd.scales_f16));
  };
  for (int i = threadIdx.x; i < D; i += kThreads) cs_s[i] = p.cos_sin[static_cast<int64_t>(p.rope_rows[0]) * D + i];
  for (int i = threadIdx.x; i < min(kTableCopy, (n_keys + p.block_size - 1) / p.block_size); i += kThreads)
    bt_s[i] = p.block_tables[i];  // read after the first grid barrier (bar.sync there)
  for (int i = threadIdx.x; i < h1 - h0; i += kThreads) xown[i] = __bfloat162float(p.x[h0 + i]);
  if constexpr (kSharedPtrs) {
    copy_layer_ptrs(&lp[0], p.layers);
    cp_async_wait_all();
    __syncthreads();
  }

  for (int l = 0; l < p.n_layers; ++l) {
    if constexpr (kSharedPtrs) cp_async_wait_all();  // layer l's (copied in layer l - 1; the next bar.sync publishes)
    const StackLayerPtrs& L = kSharedPtrs ? lp[l & 1] : p.layers[l];
    tracing = kTrace && (l == p.trace_layer || l == p.trace_layer + 1);
    // 1. qkv = norm(x) Wqkv + b
    project(
        q1 - q0, H, qd.qkv, [&](int i) { return L.w_qkv + static_cast<int64_t>(q0 + i) * H; }, vec,
        [&](int i) { return qpanel(L.q_qkv, qd.qkv, q0 / 16 + i); }, seg0,
        [&] {
          if (l > 0) arrive();
        },
        [&] {
          prefetch_l2(L.input_norm, H);
          if (L.b_qkv) prefetch_l2(L.b_qkv + q0, q1 - q0);
          if (kSharedPtrs && l + 1 < p.n_layers) copy_layer_ptrs(&lp[(l + 1) & 1], p.layers + l + 1);
          if (l > 0) wait();
          norm_vec(xs, xq(H, qd.qkv), p.x, L.input_norm, H, p.eps, red);
        },
        [&](auto row_sum) {
          for (int i = threadIdx.x; i < q1 - q0; i += kThreads) {
            const int n = q0 + i;
            const float a = row_sum(i);
            sc.qkv[n] = __float2bfloat16_rn(L.b_qkv ? a + L.b_qkv[n] : a);
          }
        });
    sync();
    // 2. attention, units (head, split)
    {
      if (block_merge) {  // head h on block h, split s on its warp s
        if (blockIdx.x < p.n_q && warp < S)
          attention_unit<D>(p, L, sc, blockIdx.x, warp, S, chunk, n_keys, wbuf, vt, cs_s, bt_s, true);
      } else {  // units spread over the SMs first
        for (int u = warp * gridDim.x + blockIdx.x; warp < kAttnWarps && u < p.n_q * S; u += gridDim.x * kAttnWarps)
          attention_unit<D>(p, L, sc, u / S, u % S, S, chunk, n_keys, wbuf, vt, cs_s, bt_s, false);
      }
    }
    ev();
    // 3. x += attn Wo + b
    project(
        h1 - h0, Q, qd.o, [&](int i) { return L.w_o + static_cast<int64_t>(h0 + i) * Q; }, vec,
        [&](int i) { return qpanel(L.q_o, qd.o, h0 / 16 + i); }, seg0, arrive,
        [&] {
          wait();
          load_vec(xs, xq(Q, qd.o), sc.attn, Q);
        },
        [&](auto row_sum) { add_residual(row_sum, L.b_o); });
    if (!kMoe || !L.w_router) {
      // 4. act = silu(norm(x) Wg) * norm(x) Wu: the block's gate rows, then the matching up rows
      project(
          2 * F, H, qd.gate_up,
          [&](int i) { return L.w_gate_up + static_cast<int64_t>(i < F ? f0 + i : I + f0 + (i - F)) * H; }, vec,
          [&](int i) {
            const int fp = F / 16;
            return qpanel(L.q_gate_up, qd.gate_up, i < fp ? f0 / 16 + i : (I + f0) / 16 + (i - fp));
          },
          seg0, arrive,
          [&] {
            prefetch_l2(L.post_norm, H);
            wait();
            stamp(p, timer);  // no router phase
            norm_vec(xs, xq(H, qd.gate_up), p.x, L.post_norm, H, p.eps, red);
          },
          [&](auto row_sum) {
            for (int i = threadIdx.x; i < F; i += kThreads)
              sc.act[f0 + i] = __float2bfloat16_rn(silu_f32(round_bf16(row_sum(i))) * round_bf16(row_sum(F + i)));
          });
      // 5. x += act Wd
      project(
          h1 - h0, I, qd.down, [&](int i) { return L.w_down + static_cast<int64_t>(h0 + i) * I; }, vec,
          [&](int i) { return qpanel(L.q_down, qd.down, h0 / 16 + i); }, seg0, arrive,
          [&] {
            wait();
            load_vec(xs, xq(I, qd.down), sc.act, I);
          },
          [&](auto row_sum) { add_residual(row_sum, nullptr); });
      continue;
    }
    // MoE 4. h = norm(x) (kept in xs, and a quantized stack's bf16 copy, for 5); the block's
    // rows of the router logits (a bf16 GEMV), rounded to bf16 as the op-by-op path stores them
    gemv_tile(
        e1 - e0, H, [&](int i) { return L.w_router + static_cast<int64_t>(e0 + i) * H; }, vec, xs, part, arrive,
        [&] {
          prefetch_l2(L.post_norm, H);
          wait();
          norm_vec(xs, xq(H, qd.gate_up), p.x, L.post_norm, H, p.eps, red);
        },
        [&](auto row_sum) {
          for (int i = threadIdx.x; i < e1 - e0; i += kThreads) sc.logits[e0 + i] = round_bf16(row_sum(i));
        }, ev);
    // MoE 5. route; act[j Im + f] = silu(h Wg_e) * h Wu_e for the block's features (gate
    // rows, then the matching up rows). No weight can be requested before the routing.
    auto expert_row = [&](int i) {  // feature m0 + i (i < M: its gate row) or m0 + i - M (its up row)
      const int f = m0 + (i < M ? i : i - M), j = f / Im, ff = f - j * Im;
      return L.w_gate_up + (static_cast<int64_t>(route.id[j]) * 2 * Im + ff + (i < M ? 0 : Im)) * H;
    };
    auto expert_panel = [&](int i) {  // panel i of the block's gate panels, then its up panels (Im % 16 == 0)
      const int mp = M / 16, f = m0 + 16 * (i < mp ? i : i - mp), j = f / Im, ff = f - j * Im;
      const int64_t row = static_cast<int64_t>(route.id[j]) * 2 * Im + ff + (i < mp ? 0 : Im);
      return qpanel(L.q_gate_up, qd.gate_up, row / 16);
    };
    project(
        2 * M, H, qd.gate_up, expert_row, vec, expert_panel, seg0,
        [&] {
          sync();
          route_token(sc.logits, moe, route);
        },
        [] {},
        [&](auto row_sum) {
          for (int i = threadIdx.x; i < M; i += kThreads) {
            const float g = row_sum(i), u = row_sum(M + i);
            sc.act[m0 + i] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * u);  // as moe_gemv.cu
          }
        });
    // MoE 6. x += sum_j w_j bf16(act_j Wd_e) for the block's rows. bf16: row i = (row h0 +
    // i / k, slot i % k); quantized: panel i = (panel i / k of the block's rows, slot i % k),
    // input segment i % k.
    auto slot_row = [&](int r, int j) { return kQuant ? ((r >> 4) * k + j) * 16 + (r & 15) : r * k + j; };
    project(
        (h1 - h0) * k, Im, qd.edown,
        [&](int i) {
          const int r = i / k, j = i - r * k;
          return L.w_down + (static_cast<int64_t>(route.id[j]) * H + h0 + r) * Im;
        },
        [&](int i) { return (i % k) * (Im / 8); },
        [&](int i) {
          const int rp = i / k, j = i - rp * k;
          return qpanel(L.q_down, qd.edown, (static_cast<int64_t>(route.id[j]) * H + h0) / 16 + rp);
        },
        [&](int i) { return i % k; }, arrive,
        [&] {
          wait();
          load_vec(xs, xq(Im, qd.edown), sc.act, k * Im);
        },
        [&](auto row_sum) {
          add_residual(
              [&](int r) {
                float acc = 0.0f;
                for (int j = 0; j < k; ++j) acc += round_bf16(row_sum(slot_row(r, j))) * route.w[j];
                return acc;
              },
              nullptr);
        });
  }
  sync();
  if (blockIdx.x == 0) {
    norm_vec(xs, stackq::XB{}, p.x, p.final_norm, H, p.eps, red);
    for (int i = threadIdx.x; i < H; i += kThreads) p.h[i] = __float2bfloat16_rn(xs.get(i));
  }
  grid_exit(sc.sync, sc.sync + 1 + p.n_q);
}

size_t smem_bytes(int H, int I, int n_q, int n_kv, int D, const MoeDims& moe, const StackQuantDims& q, int num_sms) {
  return sizeof(float) * (static_cast<size_t>(xs_area(H, I, n_q, D, moe, q)) + static_cast<size_t>(kAttnWarps) * 3 * D +
                          static_cast<size_t>(part_area(H, I, n_q, n_kv, D, moe, q, num_sms)) +
                          xown_area(H, num_sms, q)) +
         static_cast<size_t>(stage_bytes(H, I, n_q, n_kv, D, moe, q, num_sms));
}

using StackKernel = void (*)(DecoderStackParams);

// The kernel for head dim D and weight bits (the traced build: bf16 weights only); moe: the
// model has sparse MoE layers (the bf16 kernels of dense models leave those phases out).
StackKernel kernel_for(int D, int bits, bool trace, bool moe) {
  if (bits == 16) {
    if (trace) return D == 64 ? decoder_stack_kernel<64, true, 16, true> : decoder_stack_kernel<128, true, 16, true>;
    if (!moe) return D == 64 ? decoder_stack_kernel<64, false, 16, false> : decoder_stack_kernel<128, false, 16, false>;
    return D == 64 ? decoder_stack_kernel<64, false, 16, true> : decoder_stack_kernel<128, false, 16, true>;
  }
  if (bits == 4) return D == 64 ? decoder_stack_kernel<64, false, 4, true> : decoder_stack_kernel<128, false, 4, true>;
  if (bits == 8) return D == 64 ? decoder_stack_kernel<64, false, 8, true> : decoder_stack_kernel<128, false, 8, true>;
  return D == 64 ? decoder_stack_kernel<64, false, kStackFp8, true> : decoder_stack_kernel<128, false, kStackFp8, true>;
}

// Sets a kernel's dynamic shared memory limit on the current device; true when one block of
// it fits an SM.
bool configure(StackKernel kernel, size_t smem) {
  const void* f = reinterpret_cast<const void*>(kernel);
  if (cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, f, kThreads, smem) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return blocks >= 1;
}

bool cooperative_device() {
  int dev = 0, coop = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess) return false;
  return coop != 0;
}

}  // namespace

bool decoder_stack_supported(int H, int I, int n_q, int n_kv, int D, const MoeDims& moe, const StackQuantDims& quant,
                             int num_sms) {
  if (D != 64 && D != 128) return false;
  if (H <= 0 || I < 0 || n_q <= 0 || n_kv <= 0 || n_q % n_kv != 0) return false;
  if (H % 8 != 0 || I % 8 != 0) return false;
  if (moe.E < 0 || moe.E > kStackMaxExperts) return false;
  if (moe.E > 0 && (moe.k < 1 || moe.k > kStackMaxTopK || moe.k > moe.E || moe.I <= 0 || moe.I % 8 != 0))
    return false;
  if (I == 0 && moe.E == 0) return false;
  if (static_cast<int64_t>(moe.k) * moe.I > (1 << 24)) return false;
  const int b = quant.bits;
  if (b != 16 && b != 4 && b != 8 && b != kStackFp8) return false;
  if (b != 16) {  // whole 16-row panels everywhere, tiles that cover each input width
    if (H % 16 != 0 || I % 16 != 0 || (moe.E > 0 && moe.I % 16 != 0)) return false;
    const int T = q_tile(b);
    auto fits = [&](const StackQuantK& q, int K) {
      return K <= 0 || (q.ktiles == cdiv(K, T) && q.groups >= 1 && q.group_size >= 16 &&
                        (q.groups == 1 || (q.group_size % 16 == 0 && q.groups == cdiv(K, q.group_size))));
    };
    if (!fits(quant.qkv, H) || !fits(quant.o, n_q * D) || !fits(quant.gate_up, H) || !fits(quant.down, I) ||
        !fits(quant.edown, moe.E > 0 ? moe.I : 0))
      return false;
  }
  if (!cooperative_device()) return false;
  if (num_sms <= 0) return false;
  const size_t smem = smem_bytes(H, I, n_q, n_kv, D, moe, quant, num_sms);
  if (smem > 200 * 1024) return false;
  if (!configure(kernel_for(D, b, false, moe.E > 0), smem)) return false;
  return b != 16 || configure(kernel_for(D, b, true, moe.E > 0), smem);
}

size_t decoder_stack_workspace_bytes(int I, int n_q, int n_kv, int D, const MoeDims& moe, int num_sms) {
  return carve(nullptr, I, n_q, n_kv, D, moe, num_sms).bytes;
}

size_t decoder_stack_sync_bytes(int n_q) { return sizeof(unsigned) * (2 + n_q); }

bool decoder_stack(const DecoderStackParams& p, int num_sms, cudaStream_t stream) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(num_sms);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem_bytes(p.H, p.I, p.n_q, p.n_kv, p.D, p.moe, p.quant, num_sms);
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  const cudaError_t err = cudaLaunchKernelEx(&cfg, kernel_for(p.D, p.quant.bits, p.trace && p.quant.bits == 16, p.moe.E > 0), p);
  if (err == cudaErrorCooperativeLaunchTooLarge) {  // fewer SMs free than the device has (MPS, another context)
    cudaGetLastError();
    return false;
  }
  CUDA_CHECK(err);
  CUDA_CHECK_LAUNCH("decoder_stack");
  return true;
}

}  // namespace tllm::cuda
