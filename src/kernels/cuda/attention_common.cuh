// Pieces shared by the paged-attention kernels (attention.cu: generic and mma.sync prefill;
// attention_prefill_sm90.cu: the wgmma prefill): launch arguments, the tile work list and
// small device helpers.
#pragma once

#include <cstdint>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda::attn {

constexpr float kLog2e = 1.4426950408889634f;

struct KernelArgs {
  AttentionParams p;
  const int* tile_cu;  // [B+1]
  float* o_part;       // [splits, T, n_q, D] (splits > 1)
  float* lse_part;     // [splits, T, n_q]
  int splits;
  float scale_log2;
  bool early_loads;  // split-keys decode: earlier steps' keys loaded before griddepcontrol.wait
};

// Sequence of a work-list tile: the last b with tile_cu[b] <= tile.
__device__ __forceinline__ int tile_sequence(const int* tile_cu, int B, int tile) {
  int lo = 0, hi = B - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (tile_cu[mid] <= tile) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// The query-row tile of a prefill block (both prefill kernels): blockIdx.x = tile-rank *
// n_kv + kv head, so the heavy (late) tiles of every kv head are dispatched first and the
// light ones fill the tail. Rows row0.. of sequence b; [k_begin, k_end) are the keys any of
// them sees. valid is false for surplus blocks and empty sequences.
struct PrefillTile {
  bool valid;
  int b, kvh, G, q_start, kv_len, row0, rows_total, ctx0, last_row, k_begin, k_end;
};
__device__ __forceinline__ PrefillTile prefill_tile(const KernelArgs& args, int bm) {
  const AttentionParams& p = args.p;
  PrefillTile t{};
  const int tile = args.tile_cu[p.num_seqs] - 1 - static_cast<int>(blockIdx.x) / p.n_kv_heads;
  t.kvh = static_cast<int>(blockIdx.x) % p.n_kv_heads;
  if (tile < 0) return t;
  t.b = tile_sequence(args.tile_cu, p.num_seqs, tile);
  t.G = p.n_q_heads / p.n_kv_heads;
  t.q_start = p.cu_seqlens_q[t.b];
  const int q_len = p.cu_seqlens_q[t.b + 1] - t.q_start;
  t.kv_len = p.seq_lens_k[t.b];
  t.row0 = (tile - args.tile_cu[t.b]) * bm;
  t.rows_total = q_len * t.G;
  t.ctx0 = t.kv_len - q_len;  // position of query 0
  if (t.rows_total == 0) return t;
  t.last_row = min(t.row0 + bm, t.rows_total) - 1;
  const int pos_lo = t.ctx0 + t.row0 / t.G, pos_hi = t.ctx0 + t.last_row / t.G;
  t.k_begin = p.sliding_window > 0 ? max(0, pos_lo - p.sliding_window + 1) : 0;
  t.k_end = min(t.kv_len, pos_hi + 1);
  t.valid = true;
  return t;
}

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx.ftz: -inf -> +0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The wgmma prefill kernel (attention_prefill_sm90.cu) for a launch whose work list
// (a.tile_cu, tiles of kSm90BM rows) is built. prefill_sm90_available():
// the current device is sm_90 and this binary carries sm_90a code.
constexpr int kSm90BM = 128;
bool prefill_sm90_available();
void launch_prefill_sm90(const KernelArgs& a, int64_t tiles_upper_bound, cudaStream_t stream);

}  // namespace tllm::cuda::attn
