// The whole decoder stack of a one-token decode step as one persistent kernel
// (decoder_stack.cu): raw pointers and sizes, filled by CudaBackend::decoder_stack.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

// A quantized projection in the CUDA layout of kernels/quant_layout.h: codes [panels of 16
// rows][ktiles][1024], scales and offsets [panels][groups][16] (f16 or f32, StackQuantDims;
// offsets null for FP8). Its sizes are the same in every layer (StackQuantDims).
struct StackQuantPtrs {
  const uint8_t* codes = nullptr;
  const void* scales = nullptr;
  const void* offsets = nullptr;
};

// One layer's weights on the device: bf16 projections [out, in], f32 norm weights and
// biases (null: none), the layer's bf16 KV cache [num_slots, n_kv, head_dim]. A sparse MoE
// layer has w_router, and w_gate_up / w_down are then its stacked experts (MoeExperts). In a
// quantized stack (StackQuantDims::bits != 16) q_qkv, q_o, q_gate_up and q_down replace the
// four bf16 projections (the router stays bf16).
struct StackLayerPtrs {
  const bf16* w_qkv = nullptr;  // [(n_q + 2 n_kv) D, H]
  const float* b_qkv = nullptr;
  const bf16* w_o = nullptr;  // [H, n_q D]
  const float* b_o = nullptr;
  const bf16* w_gate_up = nullptr;  // [2 I, H]: gate rows, then up rows; MoE: [E 2 Im, H]
  const bf16* w_down = nullptr;     // [H, I]; MoE: [E H, Im]
  const bf16* w_router = nullptr;   // MoE: [E, H]; null: a dense MLP
  const float* input_norm = nullptr;
  const float* post_norm = nullptr;
  const float* q_norm = nullptr;  // [D] (Qwen3) or null
  const float* k_norm = nullptr;
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
  StackQuantPtrs q_qkv, q_o, q_gate_up, q_down;
};

// The k-tiling and scale groups of one quantized projection (by its input width K).
struct StackQuantK {
  int ktiles = 0;      // padded K / the tile (128 columns for 4 bits, 64 for 8)
  int groups = 1;      // scale groups of a row
  int group_size = 0;  // K when groups == 1
};
// A stack's weights: bf16 (bits 16), or every projection quantized alike: 4- or 8-bit codes
// (kStackFp8: FP8 e4m3 bytes, scales only), scales f16 or f32. The projections' output widths
// (q|k|v, H, I, the experts' I) must be multiples of 16 (whole panels).
constexpr int kStackFp8 = 0xE4;  // = qk::kE4M3
struct StackQuantDims {
  int bits = 16;
  bool scales_f16 = false;
  StackQuantK qkv, o, gate_up, down, edown;  // K = H, n_q D, H (dense and experts), I, the experts' I
};

// The sparse MoE layers of a model (all alike): E experts of intermediate size I, top-k
// routing with the weights renormalised to sum 1 when `renormalize` (norm_topk_prob).
struct MoeDims {
  int E = 0, k = 0, I = 0;
  bool renormalize = false;
};
constexpr int kStackMaxExperts = 256;
constexpr int kStackMaxTopK = 16;

struct DecoderStackParams {
  const StackLayerPtrs* layers = nullptr;  // device array [n_layers]
  int n_layers = 0;
  bf16* x = nullptr;  // [H] residual stream: the embedded token in, the last layer's out
  bf16* h = nullptr;  // [H] out: final_norm(x)
  const float* final_norm = nullptr;
  int H = 0, I = 0, n_q = 0, n_kv = 0, D = 0;  // I: the dense layers' intermediate size (0: none)
  MoeDims moe;                                  // the MoE layers' (E = 0: none)
  StackQuantDims quant;                         // bits 16: bf16 projections
  const float* cos_sin = nullptr;       // [positions, D] (cos | sin halves), rotary_dim == D
  const int32_t* rope_rows = nullptr;   // [1]: the token's row of cos_sin
  const int64_t* slot_mapping = nullptr;  // [1]: the token's cache slot (< 0: not written)
  int64_t num_slots = 0;
  const int32_t* seq_lens_k = nullptr;  // [1]: keys after this step (the token is the last)
  const int32_t* block_tables = nullptr;  // [max_blocks]: the sequence's cache blocks
  int block_size = 0;
  float scale = 0, eps = 0;
  // Optional: globaltimer (ns) of block 0 at entry and after each grid barrier, 6 n_layers + 1
  // stamps; stamp k + 1 - stamp k is phase k % 6 of layer k / 6 (kStackPhases).
  unsigned long long* timing = nullptr;
  // Scratch (decoder_stack_workspace_bytes): qkv, attn, act, attention partials, counters.
  void* workspace = nullptr;
  // Optional (a diagnostic, TLLM_STACK_TRACE): globaltimer (ns) of every block at each event
  // of layers trace_layer and trace_layer + 1, [kStackTraceSlots][gridDim.x]; events in
  // program order: barrier arrival, barrier pass, GEMV input ready, thread 0's GEMV loop done,
  // the block's loops done, GEMV epilogue done, attention done. Launches a traced build of
  // the kernel (bf16 weights only: a quantized stack ignores it).
  unsigned long long* trace = nullptr;
  int trace_layer = 0;
};

// The phases of a layer, in the order of the timing stamps (a dense layer's router phase
// takes no time).
constexpr int kStackPhases = 6;
constexpr int kStackTraceSlots = 80;
constexpr const char* kStackPhaseNames[kStackPhases] = {"qkv", "attention", "o", "router", "gate_up", "down"};

// Whether the kernel takes this shape on the current device (head_dim 64 or 128, sizes
// multiples of 8, at most kStackMaxExperts experts and kStackMaxTopK of them per token, the
// shared-memory vectors fit, a cooperative launch of one block per SM).
bool decoder_stack_supported(int H, int I, int n_q, int n_kv, int D, const MoeDims& moe, const StackQuantDims& quant,
                             int num_sms);
size_t decoder_stack_workspace_bytes(int I, int n_q, int n_kv, int D, const MoeDims& moe, int num_sms);
// Bytes at the start of the workspace that hold the kernel's counters (grid barrier, per-head
// splits, exits): zero them once in new memory; every launch leaves them 0.
size_t decoder_stack_sync_bytes(int n_q);
// Launches the kernel (one cooperative block per SM) for a shape decoder_stack_supported
// accepted; the workspace's first decoder_stack_sync_bytes must be 0, and the kernel leaves
// them 0. False, with nothing issued, when the device refuses the cooperative launch (not
// every SM free: MPS, another context).
bool decoder_stack(const DecoderStackParams& p, int num_sms, cudaStream_t stream);

}  // namespace tllm::cuda
