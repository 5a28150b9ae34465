// Paged attention for the flat varlen batch: FlashAttention-2 style with mma.sync, one
// kernel for prefill, decode and mixed batches, plus split-KV (flash-decoding) when the
// grid would not fill the GPU.
//
// GQA packing: a block owns one kv head of one sequence and BM = 64 "query rows", where
// row r of the sequence is (token r / G, q head kv_head*G + r % G), G = n_q / n_kv. So K/V
// tiles are loaded once per group, and a decode step (q_len 1) still fills G rows of a tile.
// Blocks are listed by a tiny prep kernel (tiles per sequence, prefix-summed), heavy
// (late) tiles first. The key range of a block, [causal/window lower bound, last row's
// position], is cut into `splits` partitions (grid.z); with splits == 1 a block writes bf16
// out directly, else f32 partials (normalised O and log2-sum-exp) that a combine kernel
// merges.
//
// Prefill-heavy launches take a specialisation with 128-row tiles: on sm_90 the wgmma kernel
// of attention_prefill_sm90.cu (which splits its keys the same way where its grid is small,
// through the same combine kernel), elsewhere attention_prefill_kernel (below, unsplit: only
// grids of 3 waves). The rest of this header describes the generic kernel.
//
// Per block: 4 warps x 16 rows; K and V tiles of BN keys arrive by cp.async (16 B, zero-fill
// past the end) into double-buffered, XOR-swizzled shared memory; S = Q K^T and O += P V
// are m16n8k16 bf16 MMAs with f32 accumulators; softmax is online in the exp2 domain.
#include "core/env.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_variants.h"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {
namespace {
using namespace attn;

constexpr int kBM = 64;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;

__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

__device__ __forceinline__ void ldmatrix_x4_at(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans_at(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Row r, 16-byte chunk c of a [rows, D] bf16 tile: chunks XOR-swizzled so that the 8 rows an
// ldmatrix reads hit 8 different bank groups: by r % 8 for rows of 8 or more chunks; at D = 32
// (4 chunks, two rows per 128 bytes) by (r / 2) % 4, the row's parity giving the other half.
template <int D>
__device__ __forceinline__ int swz(int r, int c) {
  if constexpr (D == 32) return r * D + ((c ^ ((r >> 1) & 3)) << 3);
  else return r * D + ((c ^ (r & 7)) << 3);
}

__device__ __forceinline__ uint32_t pack2(float lo, float hi) { return pack_bf16x2(lo, hi); }

// Work list: tile_cu[b] = first tile of sequence b (tiles of kBM rows over q_len*G rows).
__global__ void attention_prep_kernel(int* tile_cu, const int32_t* cu_seqlens_q, int B, int G, int bm) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  int acc = 0;
  for (int b = 0; b < B; ++b) {
    tile_cu[b] = acc;
    const int rows = (cu_seqlens_q[b + 1] - cu_seqlens_q[b]) * G;
    acc += (rows + bm - 1) / bm;
  }
  tile_cu[B] = acc;
}

// SPLIT_KEYS (decode, <= 16 query rows per sequence): the 4 warps share one 16-row tile and
// each takes a 16-key slice of every K/V tile, so all warps compute; their (max, sum, O) are
// merged through shared memory at the end. Otherwise each warp owns 16 of the 64 rows.
template <int D, int BN, bool SPLIT_KEYS>
__global__ void __launch_bounds__(kThreads) attention_kernel(const __grid_constant__ KernelArgs args) {
  static_assert((D == 32 || D % 64 == 0) && BN % 16 == 0, "tile shapes");
  static_assert(!SPLIT_KEYS || BN == 16 * kWarps, "split-keys mode gives each warp 16 keys of a tile");
  constexpr int CH = D / 8;  // 16-byte chunks per row
  constexpr int BM = SPLIT_KEYS ? 16 : kBM;
  constexpr int NT = SPLIT_KEYS ? 2 : BN / 8;  // key n-tiles per warp
  constexpr int DT = D / 8;  // output d n-tiles
  constexpr int KS = D / 16; // k-steps over D
  extern __shared__ __align__(128) uint8_t smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);
  bf16* sK = sQ + BM * D;        // [2][BN][D]
  bf16* sV = sK + 2 * BN * D;    // [2][BN][D]

  // Launched with PDL: q and this step's k/v come from the kernel just before (the rope /
  // cache-write kernel, or the q|k|v GEMV with both in its epilogue). No early
  // launch_dependents here: the next kernel (the o projection, whose GEMV triggers its own
  // dependents at entry) starts when this one completes. Triggered at entry, that chain of
  // early launches made 7B decode 12% slower when no combine kernel sat in between (run 23).
  // SPLIT_KEYS waits further down, after the loads that do not depend on that kernel; the
  // general kernel's work list comes from the prep kernel, so it waits here.
  if constexpr (!SPLIT_KEYS) pdl_wait();
  const AttentionParams& p = args.p;
  const int B = p.num_seqs;
  int b, m_tile;
  if constexpr (SPLIT_KEYS) {
    // Every sequence fits one 16-row tile: block x is sequence x (no work list needed).
    b = blockIdx.x;
    m_tile = 0;
  } else {
    const int total_tiles = args.tile_cu[B];
    const int tile = total_tiles - 1 - static_cast<int>(blockIdx.x);  // heavy tiles first
    if (tile < 0) return;
    b = tile_sequence(args.tile_cu, B, tile);
    m_tile = tile - args.tile_cu[b];
  }
  const int kvh = blockIdx.y;
  const int split = blockIdx.z;
  const int G = p.n_q_heads / p.n_kv_heads;
  const int q_start = p.cu_seqlens_q[b];
  const int q_len = p.cu_seqlens_q[b + 1] - q_start;
  const int kv_len = p.seq_lens_k[b];
  const int row0 = m_tile * BM;
  const int rows_total = q_len * G;
  const int ctx0 = kv_len - q_len;  // position of query 0
  if (rows_total == 0) {            // a sequence without queries this step
    if constexpr (SPLIT_KEYS) pdl_wait();
    return;
  }

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;

  // Key range of the whole block: rows row0..row0+BM-1 (clamped to valid rows).
  const int last_row = min(row0 + BM, rows_total) - 1;
  const int pos_lo = ctx0 + row0 / G, pos_hi = ctx0 + last_row / G;
  int k_begin = 0;
  if (p.sliding_window > 0) k_begin = max(0, pos_lo - p.sliding_window + 1);
  const int k_end = min(kv_len, pos_hi + 1);
  int part_begin = k_begin, part_end = k_end;
  if (args.splits > 1) {
    const int span = max(k_end - k_begin, 0);
    const int per = (((span + args.splits - 1) / args.splits) + BN - 1) / BN * BN;
    part_begin = min(k_begin + split * per, k_end);
    part_end = min(part_begin + per, k_end);
  }
  const int n_tiles = part_end > part_begin ? (part_end - part_begin + BN - 1) / BN : 0;

  const int32_t* btab = p.block_tables + static_cast<int64_t>(b) * p.max_blocks_per_seq;
  const int64_t kv_row_stride = static_cast<int64_t>(p.n_kv_heads) * D;  // elements per slot

  // --- async loads -------------------------------------------------------------------
  // which: 0 every key of tile j; 1 only keys of earlier steps (< ctx0, in range); 2 the rest
  // (this step's keys and the zero-filled rows past the range).
  auto load_kv = [&](int j, int stage, int which) {
    const int key0 = part_begin + j * BN;
    bf16* dK = sK + stage * BN * D;
    bf16* dV = sV + stage * BN * D;
    for (int c = tid; c < BN * CH; c += kThreads) {
      const int r = c / CH, ch = c % CH;
      const int key = key0 + r;
      const bool ok = key < part_end;
      if (which != 0 && (which == 1) != (ok && key < ctx0)) continue;
      int64_t off = 0;
      if (ok) {
        const int64_t slot = static_cast<int64_t>(btab[key / p.block_size]) * p.block_size + key % p.block_size;
        off = slot * kv_row_stride + static_cast<int64_t>(kvh) * D + ch * 8;
      }
      cp_async16(dK + swz<D>(r, ch), p.k_cache + off, ok ? 16 : 0);
      cp_async16(dV + swz<D>(r, ch), p.v_cache + off, ok ? 16 : 0);
    }
  };
  if constexpr (SPLIT_KEYS) {
    // Decode: the sequence lengths and block tables were uploaded before the step's first
    // kernel (the embedding, launched without PDL), and keys of earlier steps are not written
    // by this step, so their loads into the first two K/V stages go ahead of the wait and
    // overlap the q|k|v projection (which releases this kernel at its entry). q and this
    // step's keys are loaded after it. (Run 37 measured this behind the separate rope
    // kernel, which released attention only after its own wait: +0.4%.)
    if (args.early_loads) {
      if (n_tiles > 0) load_kv(0, 0, 1);
      if (n_tiles > 1) load_kv(1, 1, 1);
    }
    pdl_wait();
  }
  const int rest = SPLIT_KEYS && args.early_loads ? 2 : 0;  // what the first two tiles still need
  {  // Q tile: rows beyond rows_total are zero-filled.
    for (int c = tid; c < BM * CH; c += kThreads) {
      const int r = c / CH, ch = c % CH;
      const int gr = row0 + r;
      const bool ok = gr < rows_total;
      const int tok = ok ? gr / G : 0, h = kvh * G + (ok ? gr % G : 0);
      const bf16* src = p.q + static_cast<int64_t>(q_start + tok) * p.q_stride + h * D + ch * 8;
      cp_async16(sQ + swz<D>(r, ch), ok ? src : p.q, ok ? 16 : 0);
    }
  }
  if (n_tiles > 0) load_kv(0, 0, rest);
  cp_async_commit();

  // Per-thread rows: g = lane/4 and g+8 of the warp's 16.
  const int g = lane >> 2, t4 = lane & 3;
  const int row_base = SPLIT_KEYS ? 0 : warp * 16;  // first row of this warp in the tile
  const int key_base = SPLIT_KEYS ? warp * 16 : 0;  // first key of this warp in a K/V tile
  int pos_r[2];
  bool valid_r[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int gr = row0 + row_base + g + 8 * i;
    valid_r[i] = gr < rows_total;
    pos_r[i] = valid_r[i] ? ctx0 + gr / G : -1;
  }
  const bool warp_active = row0 + row_base < rows_total;
  const int warp_pos_min = ctx0 + (row0 + row_base) / G;
  const int warp_pos_max = ctx0 + min(row0 + row_base + 15, rows_total - 1) / G;

  float o[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_r[2] = {-INFINITY, -INFINITY}, l_r[2] = {0.0f, 0.0f};
  uint32_t qf[KS][4];

  for (int j = 0; j < n_tiles; ++j) {
    if (j + 1 < n_tiles) load_kv(j + 1, (j + 1) & 1, j == 0 ? rest : 0);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (j == 0 && warp_active) {
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        const int r = row_base + (lane & 7) + ((lane >> 3) & 1) * 8;
        const int ch = ks * 2 + (lane >> 4);
        ldmatrix_x4(qf[ks], sQ + swz<D>(r, ch));
      }
    }
    if (warp_active) {
      const bf16* cK = sK + (j & 1) * BN * D;
      const bf16* cV = sV + (j & 1) * BN * D;
      float s[NT][4];
#pragma unroll
      for (int n = 0; n < NT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
#pragma unroll
        for (int n2 = 0; n2 < NT / 2; ++n2) {
          uint32_t kf[4];
          const int r = key_base + n2 * 16 + (lane & 7) + ((lane >> 4) << 3);
          const int ch = ks * 2 + ((lane >> 3) & 1);
          ldmatrix_x4(kf, cK + swz<D>(r, ch));
          mma16816(s[2 * n2], qf[ks], kf[0], kf[1]);
          mma16816(s[2 * n2 + 1], qf[ks], kf[2], kf[3]);
        }
      }
      // Mask and online softmax (exp2 domain).
      const int key0 = part_begin + j * BN;
      const bool need_mask = key0 + BN > part_end || key0 + BN - 1 > warp_pos_min ||
                             (p.sliding_window > 0 && key0 <= warp_pos_max - p.sliding_window);
      float mx[2] = {m_r[0], m_r[1]};
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int i = e >> 1;
          const int key = key0 + key_base + n * 8 + 2 * t4 + (e & 1);
          float v = s[n][e] * args.scale_log2;
          if (need_mask) {
            const bool ok = key < part_end && key <= pos_r[i] &&
                            (p.sliding_window <= 0 || key > pos_r[i] - p.sliding_window);
            v = ok ? v : -INFINITY;
          }
          s[n][e] = v;
          mx[i] = fmaxf(mx[i], v);
        }
      }
      float corr[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        const float base = mx[i] == -INFINITY ? 0.0f : mx[i];
        corr[i] = exp2f(m_r[i] - base);  // m_r = -inf -> 0
        m_r[i] = mx[i];
        l_r[i] *= corr[i];
        mx[i] = base;
      }
      float rs[2] = {0.0f, 0.0f};
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float pe = exp2f(s[n][e] - mx[e >> 1]);
          s[n][e] = pe;
          rs[e >> 1] += pe;
        }
      }
      l_r[0] += rs[0];
      l_r[1] += rs[1];
#pragma unroll
      for (int d = 0; d < DT; ++d) {
        o[d][0] *= corr[0]; o[d][1] *= corr[0];
        o[d][2] *= corr[1]; o[d][3] *= corr[1];
      }
      // O += P V: P (16 x BN) as A fragments from the S accumulators.
#pragma unroll
      for (int kk = 0; kk < NT / 2; ++kk) {
        uint32_t pa[4];
        pa[0] = pack2(s[2 * kk][0], s[2 * kk][1]);
        pa[1] = pack2(s[2 * kk][2], s[2 * kk][3]);
        pa[2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        pa[3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int d2 = 0; d2 < DT / 2; ++d2) {
          uint32_t vf[4];
          const int r = key_base + kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
          const int ch = d2 * 2 + (lane >> 4);
          ldmatrix_x4_trans(vf, cV + swz<D>(r, ch));
          mma16816(o[2 * d2], pa, vf[0], vf[1]);
          mma16816(o[2 * d2 + 1], pa, vf[2], vf[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  if constexpr (SPLIT_KEYS) {
    // The model's hint (AttentionMeta::release_dependents_early): let the next kernel start
    // now; it waits in griddepcontrol.wait for this grid to finish.
    if (p.release_early) pdl_launch_dependents();
  }

  // Row sums across the quad.
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l_r[i] += __shfl_xor_sync(0xffffffffu, l_r[i], 1);
    l_r[i] += __shfl_xor_sync(0xffffffffu, l_r[i], 2);
  }
  if constexpr (SPLIT_KEYS) {
    // Merge the 4 warps' partial softmax states (K/V smem is free now).
    float* sO = reinterpret_cast<float*>(sK);  // [4][16][D]
    float* sM = sO + kWarps * 16 * D;          // [4][16]
    float* sL = sM + kWarps * 16;              // [4][16]
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = g + 8 * i;
#pragma unroll
      for (int d = 0; d < DT; ++d) {
        sO[(warp * 16 + r) * D + d * 8 + 2 * t4] = o[d][2 * i];
        sO[(warp * 16 + r) * D + d * 8 + 2 * t4 + 1] = o[d][2 * i + 1];
      }
      if (t4 == 0) {
        sM[warp * 16 + r] = m_r[i];
        sL[warp * 16 + r] = l_r[i];
      }
    }
    __syncthreads();
    for (int idx = tid; idx < 16 * D; idx += kThreads) {
      const int r = idx / D, d = idx % D;
      const int gr = row0 + r;
      if (gr >= rows_total) continue;
      float M = -INFINITY;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sM[w * 16 + r]);
      float L = 0.0f, acc = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float sc = M == -INFINITY ? 0.0f : exp2f(sM[w * 16 + r] - M);
        L += sL[w * 16 + r] * sc;
        acc += sO[(w * 16 + r) * D + d] * sc;
      }
      const int tok = q_start + gr / G;
      const int h = kvh * G + gr % G;
      const float v = L > 0.0f ? acc / L : 0.0f;
      if (args.splits == 1) {
        p.out[static_cast<int64_t>(tok) * p.n_q_heads * D + static_cast<int64_t>(h) * D + d] = __float2bfloat16_rn(v);
      } else {
        const int64_t rowi = (static_cast<int64_t>(split) * p.num_tokens + tok) * p.n_q_heads + h;
        args.o_part[rowi * D + d] = v;
        if (d == 0) args.lse_part[rowi] = L > 0.0f ? M + log2f(L) : -INFINITY;
      }
    }
    return;
  }
  if (!warp_active) return;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    if (!valid_r[i]) continue;
    const int gr = row0 + warp * 16 + g + 8 * i;
    const int tok = q_start + gr / G;
    const int h = kvh * G + gr % G;
    const float inv = l_r[i] > 0.0f ? 1.0f / l_r[i] : 0.0f;
    if (args.splits == 1) {
      bf16* dst = p.out + static_cast<int64_t>(tok) * p.n_q_heads * D + static_cast<int64_t>(h) * D;
#pragma unroll
      for (int d = 0; d < DT; ++d)
        *reinterpret_cast<uint32_t*>(dst + d * 8 + 2 * t4) = pack2(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
    } else {
      const int64_t rowi = (static_cast<int64_t>(split) * p.num_tokens + tok) * p.n_q_heads + h;
      float* dst = args.o_part + rowi * D;
#pragma unroll
      for (int d = 0; d < DT; ++d)
        *reinterpret_cast<float2*>(dst + d * 8 + 2 * t4) = make_float2(o[d][2 * i] * inv, o[d][2 * i + 1] * inv);
      if (t4 == 0) args.lse_part[rowi] = l_r[i] > 0.0f ? m_r[i] + log2f(l_r[i]) : -INFINITY;
    }
  }
}

// out[t, h, :] = sum_s w_s o_s / sum_s w_s with w_s = 2^(lse_s - max lse). One block per
// (token, head): the weights go to shared memory first, then each thread sums its d over
// the partitions with independent loads in flight (the loop over up to 256 partitions would
// otherwise be a chain of dependent L2 round trips).
constexpr int kCombineThreads = 128;
constexpr int kMaxSplits = 256;

template <int D>
__global__ void __launch_bounds__(kCombineThreads)
    attention_combine_kernel(bf16* __restrict__ out, const float* __restrict__ o_part,
                             const float* __restrict__ lse_part, int splits, int T, int n_q) {
  __shared__ float w[kMaxSplits];
  __shared__ float red[32];
  pdl_wait();  // launched with PDL after the split attention kernel
  pdl_launch_dependents();
  const int t = blockIdx.x, h = blockIdx.y;
  const int64_t stride = static_cast<int64_t>(T) * n_q;
  const int64_t row = static_cast<int64_t>(t) * n_q + h;
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    const float l = lse_part[s * stride + row];
    w[s] = l;
    mx = fmaxf(mx, l);
  }
  mx = block_max(mx, red);
  float ws = 0.0f;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) {
    const float e = w[s] == -INFINITY ? 0.0f : exp2f(w[s] - mx);
    w[s] = e;
    ws += e;
  }
  ws = block_sum(ws, red);  // its barriers also publish w[]
  const float inv = ws > 0.0f ? 1.0f / ws : 0.0f;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, acc3 = 0.0f;
    const float* src = o_part + row * D + d;
    int s = 0;
    for (; s + 4 <= splits; s += 4) {
      acc0 += w[s] * src[(s + 0) * stride * D];
      acc1 += w[s + 1] * src[(s + 1) * stride * D];
      acc2 += w[s + 2] * src[(s + 2) * stride * D];
      acc3 += w[s + 3] * src[(s + 3) * stride * D];
    }
    for (; s < splits; ++s) acc0 += w[s] * src[s * stride * D];
    out[row * D + d] = __float2bfloat16_rn((acc0 + acc1 + acc2 + acc3) * inv);
  }
}

// --- prefill kernel ---------------------------------------------------------------------
// Prefill-heavy launches (a sequence with >= kPrefillBM query rows, no split-KV) run this
// specialisation. Same work list, GQA packing and paging as attention_kernel, but each warp
// owns 32 rows (two m16 tiles) of a 128-row tile, so every K/V fragment read from shared
// memory feeds two MMAs: per warp and 64-key tile, 1 MFLOP against 40 KB of ldmatrix
// traffic (Q 8 + K 16 + V 16 KB at D = 128) instead of 0.5 MFLOP against 32 KB. Q stays in
// shared memory and is re-read per k-step (holding 64 more registers would spill).
// K and V of a tile are separate cp.async groups: S = Q K^T starts as soon as K lands while
// V is still in flight; P goes from the S accumulators to bf16 A fragments of P V in
// registers; block-table entries are read a tile ahead (see slot_of). Masks are only
// evaluated on tiles that cross the causal diagonal, the window edge or the end of the keys;
// tiles entirely masked for a warp are skipped. Blocks run heaviest tile first across all kv
// heads. 128 threads, <= 255 registers and 96 KB of shared memory (D 128): 2 blocks per SM.
constexpr int kPrefillBM = 128;
constexpr int kPrefillBN = 64;  // keys per tile of the dispatched variant (32: bench/tests only)
constexpr int kPrefillWarps = 4;
constexpr int kPrefillThreads = kPrefillWarps * 32;

template <int D, int BN>
__global__ void __launch_bounds__(kPrefillThreads, 2)
    attention_prefill_kernel(const __grid_constant__ KernelArgs args) {
  static_assert(D == 64 || D == 128, "prefill kernel: head_dim 64 or 128");
  static_assert(BN == 32 || BN == 64, "prefill kernel: 32 or 64 keys per tile");
  constexpr int BM = kPrefillBM;
  constexpr int WM = BM / kPrefillWarps;  // 32 rows per warp
  constexpr int MT = WM / 16;             // m16 tiles per warp
  constexpr int CH = D / 8;               // 16-byte chunks per row
  constexpr int NT = BN / 8;              // key n-tiles
  constexpr int DT = D / 8;               // output d n-tiles
  constexpr int KS = D / 16;              // k-steps over D
  constexpr int ROWS_PER_PASS = kPrefillThreads / CH;
  static_assert(kPrefillThreads % CH == 0 && BN % ROWS_PER_PASS == 0, "load mapping");
  constexpr int LOADS = BN / ROWS_PER_PASS;  // K/V rows per thread per tile
  extern __shared__ __align__(128) uint8_t smem_raw[];
  bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [BM][D]
  bf16* sK = sQ + BM * D;                        // [2][BN][D]
  bf16* sV = sK + 2 * BN * D;                    // [2][BN][D]
  int* sSlot = reinterpret_cast<int*>(sV + 2 * BN * D);  // [2][BN] cache slot per key row

  pdl_launch_dependents();
  const AttentionParams& p = args.p;
  const PrefillTile pt = prefill_tile(args, BM);
  if (!pt.valid) return;
  const int b = pt.b, kvh = pt.kvh, G = pt.G, q_start = pt.q_start, row0 = pt.row0;
  const int rows_total = pt.rows_total, ctx0 = pt.ctx0, k_begin = pt.k_begin, k_end = pt.k_end;
  const int window = p.sliding_window;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int n_tiles = k_end > k_begin ? (k_end - k_begin + BN - 1) / BN : 0;

  const int32_t* btab = p.block_tables + static_cast<int64_t>(b) * p.max_blocks_per_seq;
  const int64_t kv_row_stride = static_cast<int64_t>(p.n_kv_heads) * D;  // elements per slot
  const int ld_ch = tid % CH, ld_r0 = tid / CH;  // this thread's chunk and first row of a load

  {  // Q tile (rows past rows_total zero-filled): same commit group as K of tile 0.
    for (int r = ld_r0; r < BM; r += ROWS_PER_PASS) {
      const int gr = row0 + r;
      const bool ok = gr < rows_total;
      const int tok = ok ? gr / G : 0, h = kvh * G + (ok ? gr % G : 0);
      const bf16* src = p.q + static_cast<int64_t>(q_start + tok) * p.q_stride + h * D + ld_ch * 8;
      cp_async16(sQ + swz<D>(r, ld_ch), ok ? src : p.q, ok ? 16 : 0);
    }
  }
  // Cache slot of key row r of tile j (-1: past the keys). The block table is read one tile
  // ahead of the loads that use it: thread r < BN reads tile j+2's entry before the P V of
  // tile j and stores it to sSlot after, so its latency hides behind MMAs.
  auto slot_of = [&](int j, int r) {
    const int key = k_begin + j * BN + r;
    return key < k_end ? btab[key / p.block_size] * p.block_size + key % p.block_size : -1;
  };
  const int64_t head_off = static_cast<int64_t>(kvh) * D + ld_ch * 8;
  auto load_rows = [&](bf16* dst, const bf16* cache, const int* slots) {
#pragma unroll
    for (int i = 0; i < LOADS; ++i) {
      const int r = ld_r0 + i * ROWS_PER_PASS;
      const int slot = slots[r];
      const bf16* src = slot < 0 ? cache : cache + slot * kv_row_stride + head_off;
      cp_async16(dst + swz<D>(r, ld_ch), src, slot < 0 ? 0 : 16);
    }
  };
  // Commit groups, in order: {Q, K0}, {V0}, then {K_j+1}, {V_j+1} per iteration j (empty
  // groups past the last tile keep the count uniform): K_j is group 2j, V_j group 2j+1.
  if (tid < BN) {
    sSlot[tid] = slot_of(0, tid);
    sSlot[BN + tid] = slot_of(1, tid);
  }
  __syncthreads();
  if (n_tiles > 0) {
    load_rows(sK, p.k_cache, sSlot);
    cp_async_commit();
    load_rows(sV, p.v_cache, sSlot);
    cp_async_commit();
  } else {
    cp_async_commit();
    cp_async_commit();
  }

  // ldmatrix byte offsets. swz<D> of (row r, chunk 2*ks + x) is ((r * 2D) | ((x ^ r % 8) << 4))
  // ^ (ks << 5) in bytes, since the row stride 2D is a multiple of 128 B and ks << 5 < 2D:
  // one XOR with an immediate per fragment instead of a register per unrolled (ks, n) pair.
  constexpr int ROWB = 2 * D;  // bytes per smem row
  const uint32_t sQa = static_cast<uint32_t>(__cvta_generic_to_shared(sQ));
  const uint32_t sKa = static_cast<uint32_t>(__cvta_generic_to_shared(sK));
  const uint32_t sVa = static_cast<uint32_t>(__cvta_generic_to_shared(sV));
  const int qr = warp * WM + (lane & 7) + ((lane >> 3) & 1) * 8;  // Q (A operand) rows
  const uint32_t q_off = qr * ROWB + (((lane >> 4) ^ (qr & 7)) << 4);
  const int kr = (lane & 7) + ((lane >> 4) << 3);  // K (B operand, non-transposed) rows
  const uint32_t k_off = kr * ROWB + ((((lane >> 3) & 1) ^ (kr & 7)) << 4);
  const int vr = (lane & 7) + ((lane >> 3) & 1) * 8;  // V (B operand, transposed) rows
  const uint32_t v_off = vr * ROWB + (((lane >> 4) ^ (vr & 7)) << 4);

  const int g = lane >> 2, t4 = lane & 3;
  const int warp_row0 = row0 + warp * WM;  // first row of this warp (may be >= rows_total)
  const bool warp_active = warp_row0 < rows_total;
  const int warp_pos_min = ctx0 + warp_row0 / G;
  const int warp_pos_max = ctx0 + min(warp_row0 + WM - 1, rows_total - 1) / G;

  float o[MT][DT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int d = 0; d < DT; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
  // Running max (log2 domain, scaled) and sum per row: [mt][i] for rows g and g+8.
  float m_r[MT][2], l_r[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m_r[mt][0] = m_r[mt][1] = -INFINITY, l_r[mt][0] = l_r[mt][1] = 0.0f;
  const float sl2 = args.scale_log2;  // > 0

  for (int j = 0; j < n_tiles; ++j) {
    const int st = j & 1;
    if (j + 1 < n_tiles) {  // tile j+1's slots are in sSlot[st ^ 1]
      load_rows(sK + (st ^ 1) * BN * D, p.k_cache, sSlot + (st ^ 1) * BN);
      cp_async_commit();
      load_rows(sV + (st ^ 1) * BN * D, p.v_cache, sSlot + (st ^ 1) * BN);
      cp_async_commit();
    } else {
      cp_async_commit();
      cp_async_commit();
    }
    const int key0 = k_begin + j * BN;
    const bool work = warp_active && key0 <= warp_pos_max && (window <= 0 || key0 + BN - 1 > warp_pos_min - window);
    const bool need_mask = key0 + BN > k_end || key0 + BN - 1 > warp_pos_min ||
                           (window > 0 && key0 <= warp_pos_max - window);
    uint32_t pa[MT][NT / 2][4];  // P of this tile, bf16 pairs
    cp_async_wait<3>();  // Q and K_j
    __syncthreads();
    if (work) {
      const uint32_t cKa = sKa + st * BN * ROWB;
      float s[MT][NT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        uint32_t qa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) ldmatrix_x4_at(qa[mt], sQa + mt * 16 * ROWB + (q_off ^ (ks << 5)));
#pragma unroll
        for (int n2 = 0; n2 < NT / 2; ++n2) {
          uint32_t kf[4];
          ldmatrix_x4_at(kf, cKa + n2 * 16 * ROWB + (k_off ^ (ks << 5)));
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816(s[mt][2 * n2], qa[mt], kf[0], kf[1]);
            mma16816(s[mt][2 * n2 + 1], qa[mt], kf[2], kf[3]);
          }
        }
      }
      // Online softmax in the exp2 domain: p = 2^(s * scale_log2 - m), m the scaled row max.
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if (need_mask) {  // row positions recomputed here (registers are tight)
          int pos_r[2];
#pragma unroll
          for (int i = 0; i < 2; ++i) {
            const int gr = warp_row0 + mt * 16 + g + 8 * i;
            pos_r[i] = gr < rows_total ? ctx0 + gr / G : -1;  // -1: every key masked
          }
#pragma unroll
          for (int n = 0; n < NT; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int key = key0 + n * 8 + 2 * t4 + (e & 1);
              const int pos = pos_r[e >> 1];
              const bool ok = key < k_end && key <= pos && (window <= 0 || key > pos - window);
              if (!ok) s[mt][n][e] = -INFINITY;
            }
        }
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int n = 0; n < NT; ++n) {
          mx[0] = fmaxf(mx[0], fmaxf(s[mt][n][0], s[mt][n][1]));
          mx[1] = fmaxf(mx[1], fmaxf(s[mt][n][2], s[mt][n][3]));
        }
        float base[2], corr[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
          mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
          const float m_new = fmaxf(m_r[mt][i], mx[i] * sl2);  // -inf stays -inf (sl2 > 0)
          base[i] = m_new == -INFINITY ? 0.0f : m_new;
          corr[i] = fast_exp2(m_r[mt][i] - base[i]);  // m_r = -inf -> 0
          m_r[mt][i] = m_new;
        }
        float rs[2] = {0.0f, 0.0f};
#pragma unroll
        for (int n = 0; n < NT; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float pe = fast_exp2(fmaf(s[mt][n][e], sl2, -base[e >> 1]));
            s[mt][n][e] = pe;
            rs[e >> 1] += pe;
          }
        l_r[mt][0] = l_r[mt][0] * corr[0] + rs[0];
        l_r[mt][1] = l_r[mt][1] * corr[1] + rs[1];
#pragma unroll
        for (int d = 0; d < DT; ++d) {
          o[mt][d][0] *= corr[0]; o[mt][d][1] *= corr[0];
          o[mt][d][2] *= corr[1]; o[mt][d][3] *= corr[1];
        }
        // P as bf16 A fragments of O += P V (the C layout of two n8 tiles is the A layout of
        // one k16 step); packing now halves what stays live across the V barrier.
#pragma unroll
        for (int kk = 0; kk < NT / 2; ++kk) {
          pa[mt][kk][0] = pack2(s[mt][2 * kk][0], s[mt][2 * kk][1]);
          pa[mt][kk][1] = pack2(s[mt][2 * kk][2], s[mt][2 * kk][3]);
          pa[mt][kk][2] = pack2(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
          pa[mt][kk][3] = pack2(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
      }
    }
    // Tile j+2's slots go to sSlot[st] (tile j's, consumed at the top of iteration j-1).
    const int slot_ahead = tid < BN && j + 2 < n_tiles ? slot_of(j + 2, tid) : -1;
    cp_async_wait<2>();  // V_j
    __syncthreads();
    if (work) {
      // O += P V with P from registers (FA2: no round trip through shared memory).
      const uint32_t cVa = sVa + st * BN * ROWB;
#pragma unroll
      for (int kk = 0; kk < NT / 2; ++kk) {
#pragma unroll
        for (int d2 = 0; d2 < DT / 2; ++d2) {
          uint32_t vf[4];
          ldmatrix_x4_trans_at(vf, cVa + kk * 16 * ROWB + (v_off ^ (d2 << 5)));
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma16816(o[mt][2 * d2], pa[mt][kk], vf[0], vf[1]);
            mma16816(o[mt][2 * d2 + 1], pa[mt][kk], vf[2], vf[3]);
          }
        }
      }
    }
    if (tid < BN) sSlot[st * BN + tid] = slot_ahead;
    __syncthreads();  // iteration j+1 loads tile j+2 into stage st, read above
  }
  cp_async_wait<0>();
  if (!warp_active) return;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float l = l_r[mt][i];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int gr = warp_row0 + mt * 16 + g + 8 * i;
      if (gr >= rows_total) continue;
      const int tok = q_start + gr / G;
      const int h = kvh * G + gr % G;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      bf16* dst = p.out + static_cast<int64_t>(tok) * p.n_q_heads * D + static_cast<int64_t>(h) * D;
#pragma unroll
      for (int d = 0; d < DT; ++d)
        *reinterpret_cast<uint32_t*>(dst + d * 8 + 2 * t4) = pack2(o[mt][d][2 * i] * inv, o[mt][d][2 * i + 1] * inv);
    }
}

template <int D, bool SPLIT_KEYS> constexpr int block_n() { return SPLIT_KEYS ? 64 : (D >= 256 ? 32 : 64); }
template <int D, bool SPLIT_KEYS> constexpr size_t smem_bytes() {
  return ((SPLIT_KEYS ? 16 : kBM) + 4 * block_n<D, SPLIT_KEYS>()) * D * sizeof(bf16);
}

// Decode-like batches (every sequence's q_len * G rows fit one 16-row tile) use split-keys.
bool use_split_keys(const AttentionParams& p) {
  return static_cast<int64_t>(p.max_seqlen_q) * (p.n_q_heads / p.n_kv_heads) <= 16;
}

int choose_splits(const AttentionParams& p) {
  const int G = p.n_q_heads / p.n_kv_heads;
  const int bm = use_split_keys(p) ? 16 : kBM;
  const int64_t tiles_ub = (static_cast<int64_t>(p.num_tokens) * G + bm - 1) / bm;
  const int64_t tiles = std::min<int64_t>(tiles_ub, static_cast<int64_t>(p.num_seqs) *
                                                        ((static_cast<int64_t>(p.max_seqlen_q) * G + bm - 1) / bm));
  const int64_t blocks = std::max<int64_t>(1, tiles * p.n_kv_heads);
  const int target = 3 * std::max(p.num_sms, 1);
  if (blocks >= target) return 1;
  // Up to 256 keys (the decode graphs' smallest context bucket) no split: a block reads at
  // most 4 K/V tiles, and the partials plus the combine kernel cost more than a second
  // block per kv head saves (run 23: 0.5B decode +3%, 7B +0.8%). Beyond, partitions of at
  // least 128 keys; at most 256 of them.
  if (p.max_seqlen_k <= 256) return 1;
  const int max_by_len = std::max(1, p.max_seqlen_k / 128);
  return static_cast<int>(std::min<int64_t>({(target + blocks - 1) / blocks, int64_t{max_by_len}, int64_t{kMaxSplits}}));
}

size_t align256(size_t x) { return (x + 255) / 256 * 256; }

// The workspace of a launch: the work list (tile_cu), then with splits > 1 the partials
// (o_part, lse_part) that attention_combine_kernel merges. Byte offsets of each part and the
// end; attention_workspace_bytes sizes it for choose_splits(p), the most any launch takes.
struct WorkspaceLayout {
  size_t o_part = 0, lse_part = 0, end = 0;
};
WorkspaceLayout workspace_layout(const AttentionParams& p, int splits) {
  WorkspaceLayout l;
  l.end = align256(sizeof(int) * (p.num_seqs + 1));
  if (splits > 1) {
    l.o_part = l.end;
    l.end += align256(sizeof(float) * splits * static_cast<size_t>(p.num_tokens) * p.n_q_heads * p.head_dim);
    l.lse_part = l.end;
    l.end += align256(sizeof(float) * splits * static_cast<size_t>(p.num_tokens) * p.n_q_heads);
  }
  return l;
}

void lay_out_workspace(const AttentionParams& p, int splits, KernelArgs& a) {
  const WorkspaceLayout l = workspace_layout(p, splits);
  TLLM_CHECK(l.end <= p.workspace_bytes, "attention: workspace too small (", p.workspace_bytes, " < ", l.end, ")");
  uint8_t* ws = reinterpret_cast<uint8_t*>(p.workspace);
  a.tile_cu = reinterpret_cast<int*>(ws);
  a.splits = splits;
  if (splits > 1) {
    a.o_part = reinterpret_cast<float*>(ws + l.o_part);
    a.lse_part = reinterpret_cast<float*>(ws + l.lse_part);
  }
}

template <int D>
void launch_combine(const AttentionParams& p, const KernelArgs& a, cudaStream_t stream) {
  launch_pdl(attention_combine_kernel<D>, dim3(p.num_tokens, p.n_q_heads), dim3(kCombineThreads), 0, stream, p.out,
             a.o_part, a.lse_part, a.splits, p.num_tokens, p.n_q_heads);
  CUDA_CHECK_LAUNCH("attention_combine");
}

template <int D, bool SPLIT_KEYS>
void launch_d(const AttentionParams& p, cudaStream_t stream) {
  constexpr int BN = block_n<D, SPLIT_KEYS>();
  constexpr int BM = SPLIT_KEYS ? 16 : kBM;
  const int splits = choose_splits(p);
  const int G = p.n_q_heads / p.n_kv_heads;
  KernelArgs a{};
  a.p = p;
  lay_out_workspace(p, splits, a);
  a.scale_log2 = p.scale * kLog2e;
  // TLLM_ATTN_EARLY_LOADS=0: every load after griddepcontrol.wait (A/B measurements).
  static const bool early_loads = env_switch_on("TLLM_ATTN_EARLY_LOADS");
  a.early_loads = early_loads;

  if constexpr (!SPLIT_KEYS) {
    attention_prep_kernel<<<1, 32, 0, stream>>>(const_cast<int*>(a.tile_cu), p.cu_seqlens_q, p.num_seqs, G, BM);
    CUDA_CHECK_LAUNCH("attention_prep");
  }
  const int64_t grid_x =
      SPLIT_KEYS ? p.num_seqs : (static_cast<int64_t>(p.num_tokens) * G + BM - 1) / BM + p.num_seqs;
  constexpr size_t smem = smem_bytes<D, SPLIT_KEYS>();
  static_assert(!SPLIT_KEYS || smem - 16 * D * sizeof(bf16) >= (kWarps * 16 * D + 2 * kWarps * 16) * sizeof(float),
                "the split-keys merge reuses the K/V buffers");
  allow_dynamic_smem(attention_kernel<D, BN, SPLIT_KEYS>, smem);
  // PDL launches: in a decode graph each starts while its predecessor drains.
  launch_pdl(attention_kernel<D, BN, SPLIT_KEYS>, dim3(static_cast<unsigned>(grid_x), p.n_kv_heads, splits),
             dim3(kThreads), smem, stream, a);
  CUDA_CHECK_LAUNCH("attention");
  if (splits > 1) launch_combine<D>(p, a, stream);
}

template <int D>
void launch_dim(const AttentionParams& p, cudaStream_t stream) {
  if (use_split_keys(p)) launch_d<D, true>(p, stream);
  else launch_d<D, false>(p, stream);
}

// Key splits of the wgmma prefill kernel (one block per SM): where its grid leaves SMs idle
// and a sequence has >= 2,048 keys, as many parts as fill one wave, at most the generic
// kernel's count (so attention_workspace_bytes covers them). Below 2,048 keys no split: the
// blocks are short, and the combine kernel cost more than the parts saved (0.5B heads, one
// 512-token prompt: 18 us whole, 24.5 in two parts; run 238).
int sm90_splits(const AttentionParams& p) {
  const int splits = choose_splits(p);
  if (splits == 1 || p.max_seqlen_k < 2048) return 1;
  const int64_t rows = static_cast<int64_t>(p.num_tokens) * (p.n_q_heads / p.n_kv_heads);
  const int64_t blocks = std::max<int64_t>(1, (rows + kPrefillBM - 1) / kPrefillBM * p.n_kv_heads);
  return static_cast<int>(std::clamp<int64_t>(std::max(p.num_sms, 1) / blocks, 1, splits));
}

// The prefill kernels: mma.sync (attention_prefill_kernel<D, BN>, unsplit) or, with sm90, the
// wgmma kernel of attention_prefill_sm90.cu (split by sm90_splits). Same 128-row work list.
template <int D, int BN>
void launch_prefill(const AttentionParams& p, bool sm90, cudaStream_t stream) {
  static_assert(kPrefillBM == kSm90BM, "one work list for both prefill kernels");
  constexpr size_t smem = static_cast<size_t>(kPrefillBM + 4 * BN) * D * sizeof(bf16) + 2 * BN * sizeof(int);
  const int G = p.n_q_heads / p.n_kv_heads;
  KernelArgs a{};
  a.p = p;
  lay_out_workspace(p, sm90 ? sm90_splits(p) : 1, a);
  a.scale_log2 = p.scale * kLog2e;
  TLLM_CHECK(p.scale > 0.0f, "attention: the prefill kernel needs scale > 0, got ", p.scale);
  attention_prep_kernel<<<1, 32, 0, stream>>>(const_cast<int*>(a.tile_cu), p.cu_seqlens_q, p.num_seqs, G,
                                              kPrefillBM);
  CUDA_CHECK_LAUNCH("attention_prep");
  // Upper bound on the tiles (sum over sequences of ceil(rows / BM)); surplus blocks exit.
  const int64_t grid_x = (static_cast<int64_t>(p.num_tokens) * G + kPrefillBM - 1) / kPrefillBM + p.num_seqs;
  if (sm90) {
    launch_prefill_sm90(a, grid_x, stream);
    if (a.splits > 1) launch_combine<D>(p, a, stream);
    return;
  }
  allow_dynamic_smem(attention_prefill_kernel<D, BN>, smem);
  attention_prefill_kernel<D, BN>
      <<<static_cast<unsigned>(grid_x * p.n_kv_heads), kPrefillThreads, smem, stream>>>(a);
  CUDA_CHECK_LAUNCH("attention_prefill");
}

bool prefill_kernel_head_dim(int d) { return d == 64 || d == 128; }

}  // namespace

bool attention_supported_head_dim(int d) { return d == 32 || d == 64 || d == 128 || d == 256; }  // as CudaBackend::attention_head_dims

size_t attention_workspace_bytes(const AttentionParams& p) { return workspace_layout(p, choose_splits(p)).end; }

bool attention_uses_split_keys(const AttentionParams& p) { return use_split_keys(p); }
bool attention_prefill_sm90_available() { return attn::prefill_sm90_available(); }
int attention_splits(const AttentionParams& p) { return choose_splits(p); }

// The prefill kernels take launches with a sequence of >= kPrefillBM query rows. The mma.sync
// one only where the grid fills 3 waves without splitting the keys (below that the generic
// kernel splits them); the wgmma one at any grid, splitting the keys as the generic kernel
// would where the grid is smaller. Measured against the generic kernel with splits (H200,
// bench_attention_cuda, runs 234-238): docs/cuda-notes.md, session 41.
bool attention_uses_prefill_kernel(const AttentionParams& p) {
  if (!prefill_kernel_head_dim(p.head_dim) || p.n_kv_heads <= 0 || use_split_keys(p)) return false;
  const int64_t rows = static_cast<int64_t>(p.max_seqlen_q) * (p.n_q_heads / p.n_kv_heads);
  return rows >= kPrefillBM && (choose_splits(p) == 1 || prefill_sm90_available());
}

void attention_with_kernel(const AttentionParams& p, AttentionKernel kernel, cudaStream_t stream) {
  if (p.num_tokens == 0 || p.num_seqs == 0) return;
  TLLM_CHECK(p.n_kv_heads > 0 && p.n_q_heads % p.n_kv_heads == 0, "attention: n_q_heads ", p.n_q_heads,
             " must be a multiple of n_kv_heads ", p.n_kv_heads);
  if (kernel == AttentionKernel::kAuto) {
    // (attention_uses_prefill_kernel implies head_dim 64 or 128, which both prefill kernels take.)
    kernel = !attention_uses_prefill_kernel(p) ? AttentionKernel::kGeneric
             : prefill_sm90_available()        ? AttentionKernel::kPrefillSm90
                                               : AttentionKernel::kPrefill;
  }
  if (kernel == AttentionKernel::kPrefillSm90)
    TLLM_CHECK(prefill_sm90_available(), "cuda attention: the wgmma prefill kernel needs an sm_90 GPU and a build ",
               "with sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a), and TLLM_ATTN_SM90 not 0");
  if (kernel == AttentionKernel::kPrefill || kernel == AttentionKernel::kPrefillN32 ||
      kernel == AttentionKernel::kPrefillSm90) {
    const bool n32 = kernel == AttentionKernel::kPrefillN32, sm90 = kernel == AttentionKernel::kPrefillSm90;
    switch (p.head_dim) {
      case 64: return n32 ? launch_prefill<64, 32>(p, false, stream) : launch_prefill<64, kPrefillBN>(p, sm90, stream);
      case 128:
        return n32 ? launch_prefill<128, 32>(p, false, stream) : launch_prefill<128, kPrefillBN>(p, sm90, stream);
      default:
        TLLM_THROW("cuda attention: the prefill kernels support head_dim 64 and 128, not ", p.head_dim);
    }
  }
  switch (p.head_dim) {
    case 32: return launch_dim<32>(p, stream);
    case 64: return launch_dim<64>(p, stream);
    case 128: return launch_dim<128>(p, stream);
    case 256: return launch_dim<256>(p, stream);
    default:
      TLLM_THROW("cuda attention: head_dim ", p.head_dim, " unsupported (supported: 32, 64, 128, 256)");
  }
}

void attention(const AttentionParams& p, cudaStream_t stream) {
  attention_with_kernel(p, AttentionKernel::kAuto, stream);
}

}  // namespace tllm::cuda
