// Free functions of the CUDA mixture-of-experts ops (see Backend::moe_route / moe_experts in
// backend.h); CudaBackend (moe_backend.cu) validates tensors, lays out the scratch and
// calls these in order:
//
//   moe_route         logits [T, E] -> topk_ids [T, k], topk_weights [T, k]   (warp per token)
//   moe_align         topk_ids -> the (token, slot) pairs grouped by expert: offsets, the
//                     list of active experts and of BM-row tiles, pos <-> pair maps   (1 block)
//   decode (T <= 32): moe_gemv gate|up (+SiLU) then down, a block per (16 weight rows,
//                     active expert): only the active experts' weights are read, once
//   prefill:          moe_gemm gate|up (+SiLU) then down, a block per (column block, tile of
//                     BM pairs of one expert), A rows gathered from x by token
//   moe_combine       out[t] = sum_j w[t,j] y[pos(t,j)] (+ sigmoid(x.g) shared[t])
//
// Fused decode block (T <= kMoeFusedMaxTokens; CudaBackend::moe_block), three kernels:
//   moe_router_topk   router GEMV (warp per expert row) + softmax/top-k (rank per expert) +
//                     the grouping of moe_align; on sm_90+ one thread block cluster that
//                     gathers through distributed shared memory, before that the last block
//                     to finish doing the routing (a done-counter)
//   moe_gemv gate|up  as above, SiLU*mul in its epilogue
//   moe_down_combine  a block per 16 rows of H over all active experts: y = act down_e^T,
//                     rounded to bf16, then out[t] = sum_j w[t,j] y[t,j] (+ shared) in j order
//                     (the arithmetic of moe_combine), no y scratch, no atomics: deterministic
// All three are launched with PDL: the router issues its weight loads and down_combine its
// first expert weight loads before griddepcontrol.wait (the routing is known by then, see
// moe_gemv.cu). A shared expert (Qwen2-MoE) runs as linear, silu_mul, linear between the
// router and gate|up.
//
// Every grid is sized from T, k and E alone (a fixed capacity: at most min(E, T*k) active
// experts, ceil(T*k/BM) + min(E, T*k) tiles); blocks past the routed count, which only the
// device knows, exit at once. Nothing synchronises with the host, so the whole op can be
// captured in a CUDA graph.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#ifdef __CUDACC__
#include "kernels/cuda/cuda_common.cuh"
#endif

namespace tllm::cuda {

using bf16 = __nv_bfloat16;

constexpr int kMoeMaxExperts = 2048;  // smem of the router and align kernels
constexpr int kMoeTileRows = 64;      // BM of the grouped GEMM (rows of one expert per tile)
constexpr int kMoeGemvMaxTokens = 32; // T up to which the decode path runs

// router_logits [T, E] in f32 or bf16.
void moe_route(const void* router_logits, DType logits_dtype, int T, int E, int k, bool renormalize, int32_t* ids,
               float* weights, cudaStream_t stream);

// Routing metadata in device memory, laid out by moe_meta_layout (int32 everywhere).
struct MoeMeta {
  int32_t* offsets = nullptr;      // [E+1] pairs of expert e are positions [offsets[e], offsets[e+1])
  int32_t* active = nullptr;       // [E] experts with >= 1 pair, ascending; count in counts[0]
  int32_t* tile_expert = nullptr;  // [max_tiles] expert of tile i
  int32_t* tile_start = nullptr;   // [max_tiles] first position of tile i (<= BM rows, same expert)
  int32_t* unit_tile = nullptr;    // [max_units] the tiles that start a 2 BM-row unit of their expert
                                   // (its first, third, ... tile): moe_gemm_sm90's work list
  int32_t* counts = nullptr;       // [3] n_active, n_tiles, n_units
  int32_t* sorted_pair = nullptr;  // [P] position -> pair index (pair = t * k + j)
  int32_t* pair_pos = nullptr;     // [P] pair -> position, -1 when its id is outside [0, E)
  int max_tiles = 0;
};
inline int moe_max_tiles(int64_t P, int E) {
  return static_cast<int>((P + kMoeTileRows - 1) / kMoeTileRows + (P < E ? P : E));
}
inline int moe_max_units(int64_t P, int E) {
  return static_cast<int>((P + 2 * kMoeTileRows - 1) / (2 * kMoeTileRows) + (P < E ? P : E));
}
// Bytes for the metadata of P pairs over E experts, and the views into `base` (256-aligned).
size_t moe_meta_bytes(int64_t P, int E);
MoeMeta moe_meta_layout(void* base, int64_t P, int E);

// Groups the P = T*k pairs of `ids` by expert (order within an expert is unspecified; every
// pair's result is independent of it).
void moe_align(const int32_t* ids, int64_t P, int E, const MoeMeta& meta, cudaStream_t stream);

struct MoeExpertParams {
  const bf16* x = nullptr;        // [T, H]
  const bf16* gate_up = nullptr;  // [E * 2I, H]
  const bf16* down = nullptr;     // [E * H, I]
  bf16* act = nullptr;            // [P, I] scratch, by position
  bf16* y = nullptr;              // [P, H] scratch, by position
  int T = 0, k = 0, E = 0, H = 0, I = 0;
  int num_sms = 0;  // the device's (the sm_90a GEMM's persistent grid)
  MoeMeta meta;
};
// act = silu(x gate_e^T) * (x up_e^T) and y = act down_e^T for every routed pair.
// decode: T <= kMoeGemvMaxTokens; otherwise the grouped GEMM.
void moe_experts_decode(const MoeExpertParams& p, cudaStream_t stream);
void moe_experts_prefill(const MoeExpertParams& p, cudaStream_t stream);
// Sets the shared-memory limits of the GEMM kernels and probes for the sm_90a one (once; call
// before graph capture).
void moe_gemm_init();

// The grouped GEMMs on Hopper (moe_gemm_sm90.cu: TMA + wgmma, 128 positions of one expert per
// unit, x gathered into expert order in the y scratch first), where supported (an sm_90
// device with sm_90a code in this build, H and I multiples of 8 and >= 64, 16-byte aligned
// buffers). There bf16 experts take the decode kernels and the fused decode block only up to
// kMoeSm90DecodeMaxTokens tokens and these GEMMs above (H200 run 250, one 30B-A3B block in a
// graph: T = 8 fused 159 us against 169; T = 12 311 against 210, T = 32 457 against 300).
// TLLM_MOE_GEMM=mma|wgmma forces a grouped GEMM (wgmma where unsupported is an error) for
// bf16 experts at any T (no decode kernels, no fused block), and for the dequantized copy of
// quantized ones; TLLM_MOE_GEMM=decode keeps the decode kernels and the fused block up to
// their own limits (kMoeGemvMaxTokens, kMoeFusedMaxTokens) on Hopper too (tests).
constexpr int kMoeSm90DecodeMaxTokens = 8;
enum class MoeGemmKernel { Auto, Mma, Wgmma, Decode };
MoeGemmKernel moe_gemm_forced();
bool moe_gemm_sm90_init();
bool moe_gemm_sm90_supported(const MoeExpertParams& p);
void moe_experts_prefill_sm90(const MoeExpertParams& p, cudaStream_t stream);

// --- quantized experts (int8 / int4 codes in the CUDA layout of kernels/quant_layout.h) ---
// T up to which the quantized decode path runs; above it the grouped GEMM over the codes is
// faster (H200, run 246, a 30B-A3B layer at T = 32: fp8 633 -> 411 us, int4 1,123 -> 528, int8
// 1,291 -> 505; at T = 16 the two are within 10% either way, at T = 8 decode is 1.6-2.4x faster).
constexpr int kMoeQuantGemvMaxTokens = 16;

// One stacked expert weight [E * rows, K]: expert e's rows are whole 16-row panels.
struct MoeQuantWeight {
  const uint8_t* codes = nullptr;  // [panels][ktiles][1024]
  const void* scales = nullptr;    // [panels][groups][16], f16 or f32
  const void* offsets = nullptr;
  bool scales_f16 = false;
  int bits = 4;
  bool fp8 = false;  // e4m3 bytes (bits 8): no offsets
  int K = 0, ktiles = 0, groups = 1;
  int group_size = 0;  // K when groups == 1
};
struct MoeQuantExpertParams {
  const bf16* x = nullptr;  // [T, H]
  MoeQuantWeight gate_up;   // [E * 2I, H]
  MoeQuantWeight down;      // [E * H, I]
  bf16* act = nullptr;      // [P, I] scratch, by position
  bf16* y = nullptr;        // [P, H] scratch, by position
  int T = 0, k = 0, E = 0, H = 0, I = 0;  // H, I multiples of 16
  MoeMeta meta;             // after moe_align
};
// act = silu(x gate_e^T) * (x up_e^T) and y = act down_e^T for every routed pair, reading
// only the active experts' codes (moe_quant.cu); T <= kMoeQuantGemvMaxTokens. Larger T:
// moe_quant_experts_prefill below, or for very long batches (CudaBackend::moe_experts) the
// experts dequantized (quant_dequantize) and moe_experts_prefill.
void moe_quant_experts_decode(const MoeQuantExpertParams& p, cudaStream_t stream);
// The same for prefill-sized batches without a bf16 copy of the experts: quant_gemm's MMA
// kernel over moe_align's tiles (<= 64 positions of one expert; x rows gathered by token), the
// codes and activations staged in shared memory (quant_gemm.cu): gate|up with SiLU into act,
// then down into y. Needs the grouping's tile list (meta.tile_expert / tile_start / counts).
void moe_quant_experts_prefill(const MoeQuantExpertParams& p, cudaStream_t stream);

// --- fused decode block ---
constexpr int kMoeFusedMaxTokens = 16;   // T up to which moe_block takes the fused path
constexpr int kMoeFusedMaxExperts = 256; // static smem of the router's routing block
constexpr int kMoeFusedMaxTopK = 16;

struct MoeDecodeParams {
  const bf16* x = nullptr;          // [T, H]
  const bf16* router = nullptr;     // [E, H]
  void* logits = nullptr;           // [T, E] in logits_dtype (f32 or bf16), written
  DType logits_dtype = DType::BF16;
  int32_t* ids = nullptr;           // [T, k] written
  float* weights = nullptr;         // [T, k] written
  bool renormalize = false;
  unsigned* done = nullptr;         // zero between launches (the last router block resets it; before sm_90)
  const bf16* gate_up = nullptr;    // [E * 2I, H]
  const bf16* down = nullptr;       // [E * H, I]
  bf16* act = nullptr;              // [P, I] scratch, by position
  bf16* out = nullptr;              // [T, H]
  const bf16* shared_y = nullptr;   // [T, H] shared expert output, or null
  const float* shared_gate = nullptr; // [H] with shared_y
  int T = 0, k = 0, E = 0, H = 0, I = 0;
  MoeMeta meta;                     // only offsets, active, counts[0], sorted_pair, pair_pos are used
};
// Whether the fused path takes this shape (otherwise use linear + moe_route + moe_experts).
inline bool moe_fused_supported(int T, int E, int k) {
  return T >= 1 && T <= kMoeFusedMaxTokens && E >= 1 && E <= kMoeFusedMaxExperts && k >= 1 && k <= E &&
         k <= kMoeFusedMaxTopK;
}
// Kernel 1: logits, ids, weights and the routing metadata (all launched with PDL).
void moe_router_topk(const MoeDecodeParams& p, cudaStream_t stream);
// Kernel 2: act = silu(x gate_e^T) * (x up_e^T) per routed pair.
void moe_decode_gate_up(const MoeDecodeParams& p, cudaStream_t stream);
// Kernel 3: out = sum_j w[t,j] (act down_e^T) (+ sigmoid(x . shared_gate) shared_y).
void moe_decode_down_combine(const MoeDecodeParams& p, cudaStream_t stream);

// out[t] = bf16(sum_j weights[t, j] * y[pair_pos[t*k + j]] + sigmoid(x[t] . shared_gate) * shared_y[t]);
// shared_y / shared_gate null: no shared expert. All rows [.., H], H % 8 == 0.
void moe_combine(bf16* out, const bf16* y, const int32_t* pair_pos, const float* weights, int T, int k, int H,
                 const bf16* x, const bf16* shared_y, const float* shared_gate, cudaStream_t stream);

}  // namespace tllm::cuda
