// The whole decoder stack of a one-token decode step as one persistent kernel
// (decoder_stack.cu): raw pointers and sizes, filled by CudaBackend::decoder_stack.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace tllm::cuda {

// One dense layer's weights on the device: bf16 projections [out, in], f32 norm weights and
// biases (null: none), the layer's bf16 KV cache [num_slots, n_kv, head_dim].
struct StackLayerPtrs {
  const bf16* w_qkv = nullptr;  // [(n_q + 2 n_kv) D, H]
  const float* b_qkv = nullptr;
  const bf16* w_o = nullptr;  // [H, n_q D]
  const float* b_o = nullptr;
  const bf16* w_gate_up = nullptr;  // [2 I, H]: gate rows, then up rows
  const bf16* w_down = nullptr;     // [H, I]
  const float* input_norm = nullptr;
  const float* post_norm = nullptr;
  const float* q_norm = nullptr;  // [D] (Qwen3) or null
  const float* k_norm = nullptr;
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
};

struct DecoderStackParams {
  const StackLayerPtrs* layers = nullptr;  // device array [n_layers]
  int n_layers = 0;
  bf16* x = nullptr;  // [H] residual stream: the embedded token in, the last layer's out
  bf16* h = nullptr;  // [H] out: final_norm(x)
  const float* final_norm = nullptr;
  int H = 0, I = 0, n_q = 0, n_kv = 0, D = 0;
  const float* cos_sin = nullptr;       // [positions, D] (cos | sin halves), rotary_dim == D
  const int32_t* rope_rows = nullptr;   // [1]: the token's row of cos_sin
  const int64_t* slot_mapping = nullptr;  // [1]: the token's cache slot (< 0: not written)
  int64_t num_slots = 0;
  const int32_t* seq_lens_k = nullptr;  // [1]: keys after this step (the token is the last)
  const int32_t* block_tables = nullptr;  // [max_blocks]: the sequence's cache blocks
  int block_size = 0;
  float scale = 0, eps = 0;
  // Optional: globaltimer (ns) of block 0 at entry and after each grid barrier, 5 n_layers + 1
  // stamps; stamp k + 1 - stamp k is phase k % 5 of layer k / 5 (decoder_stack.cu).
  unsigned long long* timing = nullptr;
  // Scratch (decoder_stack_workspace_bytes): qkv, attn, act, attention partials, counters.
  void* workspace = nullptr;
};

// Whether the kernel takes this shape on the current device (head_dim 64 or 128, sizes
// multiples of 8, the shared-memory vector fits, a cooperative launch of one block per SM).
bool decoder_stack_supported(int H, int I, int n_q, int n_kv, int D, int num_sms);
size_t decoder_stack_workspace_bytes(int I, int n_q, int n_kv, int D, int num_sms);
// Zeroes the kernel's counters and launches it (one cooperative block per SM) for a shape
// decoder_stack_supported accepted. False, with nothing but the zeroing issued, when the
// device refuses the cooperative launch (not every SM free: MPS, another context).
bool decoder_stack(const DecoderStackParams& p, int num_sms, cudaStream_t stream);

}  // namespace tllm::cuda
