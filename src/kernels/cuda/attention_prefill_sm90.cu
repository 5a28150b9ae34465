// Prefill attention over the paged KV cache with Hopper warpgroup MMAs (wgmma, sm_90a).
//
// Same work list, GQA packing (row r of a sequence = token r / G, q head kv_head*G + r % G),
// causal / sliding-window masks and output as attention_prefill_kernel in attention.cu,
// which it replaces on sm_90 for head_dim 64 and 128. A block owns 128 query rows of one kv
// head and runs 2 consumer warpgroups (64 rows each) and 1 producer warpgroup:
//  - the producer streams K and V tiles (64 keys, 4 stages; or 128 keys, 3 stages, where a
//    sequence has more than 1,024 keys) into a shared-memory ring with cp.async, in the
//    128-byte swizzle wgmma reads (rows of 64 bf16, 16-byte chunks XOR row % 8). K and V of
//    a stage have their own "full" and "empty" mbarriers: each producer thread's copies
//    arrive on "full" when they land (cp.async.mbarrier.arrive, the thread does not wait),
//    and the consumers release K once S = Q K^T has retired and V once P V has. So a tile is
//    announced as soon as it is in shared memory, whatever the producer is waiting for, and
//    K is refilled while P V still reads V (FlashAttention-3's paged-KV pipeline). No
//    block-wide barrier inside the loop;
//  - S = Q K^T and O += P V are wgmma.m64nNk16: Q, K, V read by the tensor cores from shared
//    memory through descriptors, P from registers;
//  - within a warpgroup the next tile's S = Q K^T is issued before the softmax of the current
//    one, and O += P V right after it (FlashAttention-3's intra-warpgroup pipelining);
//  - the two warpgroups take turns at issuing their MMAs (FlashAttention-3's
//    inter-warpgroup schedule), so that one's softmax runs while the other's MMAs hold the
//    tensor cores; TLLM_ATTN_PINGPONG=0 turns it off (bench A/B).
// With args.splits > 1 (grid.y, small grids: attention.cu's sm90_splits) a block takes one
// part of its keys and writes normalised f32 partials and their log2-sum-exp, which
// attention.cu's combine kernel merges.
// Measured (H200, runs 234-235, 7B heads, one 4,096-token prompt): 393 us with the producer
// announcing a tile only after refilling the next stage (both warpgroups then waited for it
// at every step), 325 us with the announcement on landing, 308 us with the turns.
// Measured slower and replaced (docs/cuda-notes.md, session 8): a block barrier per tile with
// every thread loading; a TMA producer (16-row boxes, one per page piece, serialised behind
// the block-table reads); a single producer warp (~600 instructions per tile).
// 384 threads, 1 block per SM; at head_dim 128, 162 KB (64-key tiles) or 225 KB (128-key
// tiles) of shared memory.
#include <cstdlib>
#include <type_traits>

#include "core/env.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace tllm::cuda::attn {
namespace {

constexpr int kConsumerThreads = 256;  // 2 warpgroups
constexpr int kProducerThreads = 128;  // 1 warpgroup: 2 threads per key row of a tile
constexpr int kThreads = kConsumerThreads + kProducerThreads;
// Keys per tile BN: 64 (4-stage ring) or 128 (3 stages). Either way the consumers take 232
// registers and the producer 40 through setmaxnreg (at 168 each the D = 128, BN = 64 form
// spilled once the softmax kept 4 chains per row).
template <int BN> constexpr int stages() { return BN == 64 ? 4 : 3; }

template <int D, int BN>
struct SmemLayout {
  static constexpr int kQBytes = kSm90BM * 2 * D;  // [D / 64 regions][BM rows][128 B]
  static constexpr int kTileBytes = BN * 2 * D;    // K or V of one tile, same form
  static constexpr int kStageBytes = 2 * kTileBytes;
  // mbarriers: full_k[S], full_v[S], empty_k[S], empty_v[S]
  static constexpr int kBarOffset = kQBytes + stages<BN>() * kStageBytes;
  static constexpr int kBytes = kBarOffset + 4 * stages<BN>() * 8 + 1024;  // + slack to align to 1024
};

// Byte offset of (row r, 16-byte chunk c) in a [D / 64][ROWS][128 B] tile with the 128-byte
// swizzle of wgmma_desc_sw128.
template <int ROWS>
__device__ __forceinline__ uint32_t sw128_offset(int r, int c) {
  return (c >> 3) * (ROWS * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

// An arrive on mbarrier `bar` once every cp.async this thread issued before it has landed
// (the count of arrivals the barrier expects includes it: .noinc). The thread goes on.
__device__ __forceinline__ void cp_async_arrive_noinc(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(bar) : "memory");
}

// Named barrier `id`: counts this warp's threads without waiting (bar.sync on the same id by
// the other side completes it; `count` includes both sides).
__device__ __forceinline__ void named_bar_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(count) : "memory");
}

template <int D>
__device__ __forceinline__ void pv_mma(float (&o)[D / 2], const uint32_t (&a)[4], uint64_t desc) {
  if constexpr (D == 128) wgmma_m64n128k16_rs_tb(o, a, desc, 1);
  else wgmma_m64n64k16_rs_tb(o, a, desc, 1);
}

template <int D, int BN>
__global__ void __launch_bounds__(kThreads, 1)
    attention_prefill_sm90_kernel(const __grid_constant__ KernelArgs args, bool pingpong) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(D == 64 || D == 128, "head_dim 64 or 128");
  static_assert(BN == 64 || BN == 128, "64 or 128 keys per tile");
  constexpr int BM = kSm90BM, S = stages<BN>();
  constexpr int CH = D / 8;    // 16-byte chunks per row
  constexpr int KS = D / 16;   // k-steps of S = Q K^T
  constexpr int PK = BN / 16;  // k-steps of O += P V
  constexpr int SN = BN / 2;   // S accumulators per thread (64 x BN per warpgroup)
  constexpr int ON = D / 2;    // O accumulators per thread (64 x D per warpgroup)
  using L = SmemLayout<D, BN>;
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024 - (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) & 1023)) & 1023);
  const uint32_t sbase = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t full_k = sbase + L::kBarOffset, full_v = full_k + 8 * S;
  const uint32_t empty_k = full_v + 8 * S, empty_v = empty_k + 8 * S;

  const AttentionParams& p = args.p;
  const PrefillTile pt = prefill_tile(args, BM);
  if (!pt.valid) return;
  const int b = pt.b, kvh = pt.kvh, G = pt.G, q_start = pt.q_start, row0 = pt.row0;
  const int rows_total = pt.rows_total, ctx0 = pt.ctx0;
  // Keys [k_begin, k_end) of this block: with splits > 1 (grid.y), partition blockIdx.y of
  // the tile's keys, whole tiles each, as attention.cu's generic kernel cuts them.
  int k_begin = pt.k_begin, k_end = pt.k_end;
  const int split = static_cast<int>(blockIdx.y);
  if (args.splits > 1) {
    const int per = ((max(k_end - k_begin, 0) + args.splits - 1) / args.splits + BN - 1) / BN * BN;
    k_begin = min(k_begin + split * per, k_end);
    k_end = min(k_begin + per, k_end);
  }
  const int window = p.sliding_window;
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + BN - 1) / BN : 0;
  const int tid = threadIdx.x;

  if (tid == kConsumerThreads) {
    for (int s = 0; s < S; ++s) {
      mbar_init(full_k + 8 * s, kProducerThreads);  // one (asynchronous) arrive per producer thread
      mbar_init(full_v + 8 * s, kProducerThreads);
      mbar_init(empty_k + 8 * s, kConsumerThreads / 32);  // one arrive per consumer warp
      mbar_init(empty_v + 8 * s, kConsumerThreads / 32);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();  // the barriers are initialised; the producer starts at once
  // The consumers load Q while the first K / V tiles are in flight; named barrier 3 (their
  // 256 threads) tells them it is complete.
  if (tid < kConsumerThreads) {  // Q rows past rows_total: zeros
    constexpr int ROWS_PER_PASS = kConsumerThreads / CH;
    const int ch = tid % CH;
    for (int r = tid / CH; r < BM; r += ROWS_PER_PASS) {
      const int gr = row0 + r;
      const bool ok = gr < rows_total;
      const int tok = ok ? gr / G : 0, h = kvh * G + (ok ? gr % G : 0);
      const bf16* src = p.q + static_cast<int64_t>(q_start + tok) * p.q_stride + h * D + ch * 8;
      cp_async16(smem + sw128_offset<BM>(r, ch), ok ? src : p.q, ok ? 16 : 0);
    }
    cp_async_commit();
    cp_async_wait<0>();
    fence_proxy_async_shared();
    named_bar_sync(3, kConsumerThreads);
  }

  // --- producer warpgroup ---------------------------------------------------------------
  // Thread t copies key rows t / 2 + 64 q of every K and V tile, the 16-byte chunks
  // 2k + t % 2 (two threads read a row's 32-byte sectors whole), with cp.async; keys past
  // k_end are zero-filled (0 * V stays 0 whatever an unwritten cache slot holds). Order:
  // K of tile j, then V of tile j - 1 (a step needs K_{j+1} before V_j). A stage's K (V) is
  // refilled once every consumer warp has released it; each thread's copies then arrive on
  // the stage's full barrier when they land. The next tile's cache slots are read while
  // this tile's copies are issued.
  if (tid >= kConsumerThreads) {
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    constexpr int RPT = BN / 64;  // rows per thread
    const int t = tid - kConsumerThreads, r = t >> 1, half = t & 1;
    const int32_t* btab = p.block_tables + static_cast<int64_t>(b) * p.max_blocks_per_seq;
    const int64_t row_stride = static_cast<int64_t>(p.n_kv_heads) * D;
    const bf16* k_src = p.k_cache + static_cast<int64_t>(kvh) * D + half * 8;
    const bf16* v_src = p.v_cache + static_cast<int64_t>(kvh) * D + half * 8;
    auto slot_of = [&](int j, int q) {  // cache slot of key row r + 64 q of tile j; -1 past the keys
      const int key = k_begin + j * BN + r + 64 * q;
      return key < k_end ? btab[key / p.block_size] * p.block_size + key % p.block_size : -1;
    };
    // Tile j's K (V) into its stage: wait for the stage, issue, arrive on full when landed.
    auto load = [&](int j, const int (&sl)[RPT], const bf16* src, uint32_t empty, uint32_t full, int offset) {
      const int st = j % S;
      if (j >= S) mbar_wait(empty + 8 * st, ((j / S) - 1) & 1);
      uint8_t* dst = smem + L::kQBytes + st * L::kStageBytes + offset;
#pragma unroll
      for (int q = 0; q < RPT; ++q) {
        const int64_t off = sl[q] < 0 ? 0 : sl[q] * row_stride;
        const int bytes = sl[q] < 0 ? 0 : 16;
#pragma unroll
        for (int k = 0; k < CH / 2; ++k)
          cp_async16(dst + sw128_offset<BN>(r + 64 * q, 2 * k + half), src + off + 16 * k, bytes);
      }
      cp_async_arrive_noinc(full + 8 * st);
    };
    int slot[RPT], prev[RPT];
#pragma unroll
    for (int q = 0; q < RPT; ++q) slot[q] = slot_of(0, q);
    for (int j = 0; j < n_tiles; ++j) {
      int next[RPT];
#pragma unroll
      for (int q = 0; q < RPT; ++q) next[q] = slot_of(j + 1, q);
      load(j, slot, k_src, empty_k, full_k, 0);
      if (j > 0) load(j - 1, prev, v_src, empty_v, full_v, L::kTileBytes);
#pragma unroll
      for (int q = 0; q < RPT; ++q) {
        prev[q] = slot[q];
        slot[q] = next[q];
      }
    }
    if (n_tiles > 0) load(n_tiles - 1, prev, v_src, empty_v, full_v, L::kTileBytes);
    cp_async_wait<0>();
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");

  // --- consumer warpgroups ---------------------------------------------------------------
  // The warpgroup index is a template constant, so the descriptors of this warpgroup's Q rows
  // are uniform values (computed in uniform registers, not moved there per MMA).
  auto consume = [&](auto wg_c) {
    constexpr int wg = decltype(wg_c)::value;
    const int warp = (tid >> 5) & 3, lane = tid & 31;
    const int g = lane >> 2, t4 = lane & 3;
    const int wg_row0 = row0 + wg * 64;
    const bool wg_active = wg_row0 < rows_total;
    const int warp_row0 = wg_row0 + warp * 16;
    const int warp_pos_min = ctx0 + min(warp_row0, rows_total - 1) / G;
    const int warp_pos_max = ctx0 + min(warp_row0 + 15, rows_total - 1) / G;
    int pos_r[2];  // positions of this thread's rows g and g + 8 (-1: padding row, all masked)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int gr = warp_row0 + g + 8 * i;
      pos_r[i] = gr < rows_total ? ctx0 + gr / G : -1;
    }

    // Descriptors: a k-step inside a 128-byte row is +32 B of start address (+2 encoded), the
    // next 64 columns of Q / K are one region further; V k-steps are 16 rows (2 KB) apart.
    const uint64_t q_desc = wgmma_desc_sw128(sbase + wg * 64 * 128, 16, 1024);
    const uint64_t k_desc0 = wgmma_desc_sw128(sbase + L::kQBytes, 16, 1024);
    const uint64_t v_desc0 = wgmma_desc_sw128(sbase + L::kQBytes + L::kTileBytes, BN * 128, 1024);
    auto qk = [&](float (&s)[SN], int st) {  // S = Q K^T on the K of stage st, issued asynchronously
      const uint64_t kd = k_desc0 + static_cast<uint64_t>((st * L::kStageBytes) >> 4);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        constexpr int kQRegion = BM * 128 >> 4, kKRegion = BN * 128 >> 4;
        const int in_row = (ks & 3) * 2, region = ks >> 2;
        if constexpr (BN == 64)
          wgmma_m64n64k16_ss(s, q_desc + region * kQRegion + in_row, kd + region * kKRegion + in_row, ks > 0);
        else
          wgmma_m64n128k16_ss(s, q_desc + region * kQRegion + in_row, kd + region * kKRegion + in_row, ks > 0);
      }
      wgmma_commit();
    };
    float o[ON];
#pragma unroll
    for (int i = 0; i < ON; ++i) o[i] = 0.0f;
    auto pv = [&](const uint32_t (&pa)[PK][4], int st) {  // O += P V on the V of stage st, issued asynchronously
      const uint64_t vd = v_desc0 + static_cast<uint64_t>((st * L::kStageBytes) >> 4);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < PK; ++kk) pv_mma<D>(o, pa[kk], vd + kk * (16 * 128 >> 4));
      wgmma_commit();
    };

    // Online softmax in the exp2 domain, as attention_prefill_kernel: p = 2^(s*scale_log2 - m).
    float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};
    const float sl2 = args.scale_log2;  // > 0
    auto softmax = [&](float (&s)[SN], int j, float (&corr)[2]) {
      const int key0 = k_begin + j * BN;
      const bool need_mask = key0 + BN > k_end || key0 + BN - 1 > warp_pos_min ||
                             (window > 0 && key0 <= warp_pos_max - window);
      if (need_mask) {
#pragma unroll
        for (int i = 0; i < SN; ++i) {
          const int key = key0 + (i >> 2) * 8 + 2 * t4 + (i & 1);
          const int pos = pos_r[(i >> 1) & 1];
          const bool ok = key < k_end && key <= pos && (window <= 0 || key > pos - window);
          if (!ok) s[i] = -INFINITY;
        }
      }
      // Row maxima and sums in 4 independent chains per row, joined at the end: with two
      // consumer warps per scheduler, one chain of 32 dependent operations per row left the
      // warps waiting on latencies (run 234's ncu: max and sum ~20% of the stall samples).
      constexpr int NC = 4;
      float mc[2][NC];
#pragma unroll
      for (int c = 0; c < NC; ++c) mc[0][c] = mc[1][c] = -INFINITY;
#pragma unroll
      for (int i = 0; i < SN; i += 4) {
        const int c = (i >> 2) % NC;
        mc[0][c] = fmaxf(mc[0][c], fmaxf(s[i], s[i + 1]));
        mc[1][c] = fmaxf(mc[1][c], fmaxf(s[i + 2], s[i + 3]));
      }
      float mx[2], base[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(fmaxf(mc[i][0], mc[i][1]), fmaxf(mc[i][2], mc[i][3]));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        const float m_new = fmaxf(m_r[i], mx[i] * sl2);  // -inf stays -inf (sl2 > 0)
        base[i] = m_new == -INFINITY ? 0.0f : m_new;
        corr[i] = fast_exp2(m_r[i] - base[i]);  // m_r = -inf -> 0
        m_r[i] = m_new;
      }
      float rc[2][NC];
#pragma unroll
      for (int c = 0; c < NC; ++c) rc[0][c] = rc[1][c] = 0.0f;
#pragma unroll
      for (int i = 0; i < SN; ++i) {
        const float pe = fast_exp2(fmaf(s[i], sl2, -base[(i >> 1) & 1]));
        s[i] = pe;
        rc[(i >> 1) & 1][(i >> 2) % NC] += pe;
      }
#pragma unroll
      for (int i = 0; i < 2; ++i) l_r[i] = l_r[i] * corr[i] + ((rc[i][0] + rc[i][1]) + (rc[i][2] + rc[i][3]));
    };
    // Ring positions (stage, phase) of the next K and V tile to consume: counters, not j % S
    // (S = 3 is no power of two; the divisions cost ~30 instructions per step).
    int k_st = 0, v_st = 0;
    uint32_t k_ph = 0, v_ph = 0;
    auto advance = [](int& st, uint32_t& ph) {
      if (++st == S) {
        st = 0;
        ph ^= 1;
      }
    };
    auto release = [&](uint32_t empty, int st) {  // this warp's MMAs on stage st's K (V) have retired
      __syncwarp();
      if (lane == 0) mbar_arrive(empty + 8 * st);
    };
    // P as bf16 A fragments: the C layout of two n8 column tiles is the A layout of one k16 step.
    auto pack_p = [&](const float (&s)[SN], uint32_t (&pa)[PK][4]) {
#pragma unroll
      for (int kk = 0; kk < PK; ++kk) {
        pa[kk][0] = pack_bf16x2(s[8 * kk + 0], s[8 * kk + 1]);
        pa[kk][1] = pack_bf16x2(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = pack_bf16x2(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = pack_bf16x2(s[8 * kk + 6], s[8 * kk + 7]);
      }
    };

    // Ping-pong (unless TLLM_ATTN_PINGPONG=0): named barrier 1 is warpgroup 0's turn at issuing
    // MMAs, 2 warpgroup 1's; a warpgroup waits for its turn (bar.sync, completed by the
    // other's bar.arrive), issues, and passes the turn. Both have n_tiles + 1 issue points;
    // warpgroup 1 opens with an arrive on barrier 1 and leaves out its last one, so every
    // barrier phase has 128 waiting and 128 arriving threads.
    const bool pp = pingpong && n_tiles > 0;
    auto turn_wait = [&]() {
      if (pp) named_bar_sync(1 + wg, kConsumerThreads);
    };
    auto turn_pass = [&](bool last) {
      if (pp && !(wg == 1 && last)) named_bar_arrive(2 - wg, kConsumerThreads);
    };
    if (pp && wg == 1) named_bar_arrive(1, kConsumerThreads);

    // Every warpgroup runs the MMAs of every tile of the block, also where all of its rows
    // are masked (at most the block's last tile for the first warpgroup, and tiles of padding
    // rows): wgmma under a branch the compiler cannot prove uniform gets serialized, which
    // costs more than those few MMAs. Masked scores give p = 0.
    float s[SN];
    uint32_t pa[PK][4];
    float corr[2] = {1.0f, 1.0f};  // O's rescale for the tile whose P is in pa
    if (n_tiles > 0) {
      mbar_wait(full_k, 0);
      fence_proxy_async_shared();
      turn_wait();
      qk(s, 0);
      turn_pass(false);
      wgmma_wait<0>();
      wgmma_fence_regs(s);
      release(empty_k, 0);
      advance(k_st, k_ph);
      softmax(s, 0, corr);
      pack_p(s, pa);
      corr[0] = corr[1] = 1.0f;  // O is still zero: nothing to rescale
    }
    // One tile step; NEXT (all but the last tile) also issues S_{j+1}. A compile-time flag:
    // a wgmma issued under a runtime branch is serialized by the compiler. O is rescaled for
    // tile j's maximum (corr, from the softmax of tile j in the previous step) while S_{j+1}
    // runs, just before P_j V_j is issued.
    auto step = [&](int j, auto next) {
      constexpr bool NEXT = decltype(next)::value;
      auto rescale = [&]() {
#pragma unroll
        for (int i = 0; i < ON; i += 4) {
          o[i] *= corr[0];
          o[i + 1] *= corr[0];
          o[i + 2] *= corr[1];
          o[i + 3] *= corr[1];
        }
      };
      if (pp) rescale();  // before the turn, so that the turn holds only MMA issues
      if constexpr (NEXT) mbar_wait(full_k + 8 * k_st, k_ph);
      mbar_wait(full_v + 8 * v_st, v_ph);
      fence_proxy_async_shared();  // the copies landed through the generic proxy, wgmma reads through the async one
      turn_wait();
      if constexpr (NEXT) qk(s, k_st);  // s is free: tile j's P is in pa
      if (!pp) rescale();               // while S_{j+1} runs
      pv(pa, v_st);
      turn_pass(!NEXT);
      // Softmax of S_{j+1} while P_j V_j runs; P_{j+1} goes to pa only once P_j V_j has
      // retired: registers an in-flight wgmma reads are not written.
      if constexpr (NEXT) {
        wgmma_wait<1>();  // S_{j+1} done, P_j V_j may still run
        wgmma_fence_regs(s);
        release(empty_k, k_st);
        advance(k_st, k_ph);
        softmax(s, j + 1, corr);
      }
      wgmma_wait<0>();  // P_j V_j done: V's stage is free again
      wgmma_fence_regs(o);
#pragma unroll
      for (int kk = 0; kk < PK; ++kk) wgmma_fence_regs(pa[kk]);  // read until here: no reuse before
      release(empty_v, v_st);
      advance(v_st, v_ph);
      if constexpr (NEXT) pack_p(s, pa);
    };
    for (int j = 0; j + 1 < n_tiles; ++j) step(j, std::true_type{});
    if (n_tiles > 0) step(n_tiles - 1, std::false_type{});

    if (!wg_active) return;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float l = l_r[i];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int gr = warp_row0 + g + 8 * i;
      if (gr >= rows_total) continue;
      const int tok = q_start + gr / G;
      const int h = kvh * G + gr % G;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      if (args.splits == 1) {
        bf16* dst = p.out + static_cast<int64_t>(tok) * p.n_q_heads * D + static_cast<int64_t>(h) * D;
#pragma unroll
        for (int d = 0; d < D / 8; ++d)
          *reinterpret_cast<uint32_t*>(dst + d * 8 + 2 * t4) =
              pack_bf16x2(o[4 * d + 2 * i] * inv, o[4 * d + 2 * i + 1] * inv);
      } else {  // normalised f32 partials and log2-sum-exp, for attention.cu's combine kernel
        const int64_t rowi = (static_cast<int64_t>(split) * p.num_tokens + tok) * p.n_q_heads + h;
        float* dst = args.o_part + rowi * D;
#pragma unroll
        for (int d = 0; d < D / 8; ++d)
          *reinterpret_cast<float2*>(dst + d * 8 + 2 * t4) = make_float2(o[4 * d + 2 * i] * inv, o[4 * d + 2 * i + 1] * inv);
        if (t4 == 0) args.lse_part[rowi] = l > 0.0f ? m_r[i] + log2f(l) : -INFINITY;
      }
    }
  };
  if (tid < 128) consume(std::integral_constant<int, 0>{});
  else consume(std::integral_constant<int, 1>{});
#else
  __trap();  // launched only where prefill_sm90_available()
#endif
}

bool env_disabled() {
  static const bool off = !env_switch_on("TLLM_ATTN_SM90");
  return off;
}

template <int D, int BN>
void launch_d(const KernelArgs& a, int64_t tiles_upper_bound, cudaStream_t stream) {
  constexpr int smem = SmemLayout<D, BN>::kBytes;
  allow_dynamic_smem(attention_prefill_sm90_kernel<D, BN>, smem);
  static const bool pingpong = env_switch_on("TLLM_ATTN_PINGPONG");
  attention_prefill_sm90_kernel<D, BN>
      <<<dim3(static_cast<unsigned>(tiles_upper_bound * a.p.n_kv_heads), static_cast<unsigned>(a.splits)), kThreads, smem,
         stream>>>(a, pingpong);
  CUDA_CHECK_LAUNCH("attention_prefill_sm90");
}

// Keys per tile: 128 where some sequence has more than 1,024 keys, else 64 (run 64, H200:
// 7B heads T=4096 391 against 409 us, T=16384 5154 against 5693; 8 prompts x 512 keys 119
// against 112). TLLM_ATTN_SM90_BN=64 / 128 forces one (bench A/B).
int tile_keys(const AttentionParams& p) {
  static const int forced = [] {
    const int v = env_int("TLLM_ATTN_SM90_BN", 0);
    TLLM_CHECK_ARG(v == 0 || v == 64 || v == 128, "environment variable TLLM_ATTN_SM90_BN=", v,
                   ": expected 64 or 128");
    return v;
  }();
  if (forced != 0) return forced;
  return p.max_seqlen_k > 1024 ? 128 : 64;
}

}  // namespace

bool prefill_sm90_available() { return !env_disabled() && sm90a_available(); }

void launch_prefill_sm90(const KernelArgs& a, int64_t tiles_upper_bound, cudaStream_t stream) {
  TLLM_CHECK(a.p.head_dim == 64 || a.p.head_dim == 128,
             "cuda attention: the sm_90 prefill kernel needs head_dim 64 or 128, got ", a.p.head_dim);
  const bool n64 = tile_keys(a.p) == 64;
  if (a.p.head_dim == 64) {
    if (n64) launch_d<64, 64>(a, tiles_upper_bound, stream);
    else launch_d<64, 128>(a, tiles_upper_bound, stream);
  } else {
    if (n64) launch_d<128, 64>(a, tiles_upper_bound, stream);
    else launch_d<128, 128>(a, tiles_upper_bound, stream);
  }
}

}  // namespace tllm::cuda::attn
