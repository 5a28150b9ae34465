// Rotary position embedding tables, bit-for-bit as transformers computes them.
//
// transformers builds `inv_freq` once (rope_utils `_compute_*_parameters`) with float32 torch
// ops, then per forward takes freqs = f32(inv_freq * f32(position)), and cos/sin of that f32
// angle times attention_scaling, in float32 even when the model runs in bf16 or float64.
// At position 40,000 one ulp of inv_freq moves the angle by ~2e-3, so every float32
// rounding of that recipe is reproduced here step by step (each op computed in double and
// rounded to float, which equals the float32 op; pow in double, rounded).
//
// Row layout, as the kernels consume it (RopeSpec, rotate_half convention):
//   row[0 .. d/2)  = cos(freq_i) * attention_scaling
//   row[d/2 .. d)  = sin(freq_i) * attention_scaling,   d = rotary_dim()
//
// Dynamic NTK ("dynamic") depends on the sequence: transformers' dynamic_rope_update
// recomputes inv_freq with seq_len = max(position_ids) + 1 whenever it exceeds
// max_position_embeddings, and uses the original inv_freq otherwise. We do that statelessly
// per sequence, which equals transformers for a sequence that grows step by step (its
// cache only resets when seq_len drops below max_position_embeddings again). That
// recompute runs on the forward's device (the GPU for our goldens); its f32 steps follow
// the CUDA kernels (division by a Python scalar is a multiply by its f32 reciprocal).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace tllm {

class RopeTable {
 public:
  explicit RopeTable(const ModelConfig& cfg);

  int rotary_dim() const { return rotary_dim_; }  // head_dim for Qwen
  bool depends_on_seq_len() const { return type_ == RopeType::Dynamic; }
  // yarn's attention factor (1 otherwise), as the f32 factor the rows are multiplied by.
  float attention_scaling() const { return attention_scaling_; }

  // Row for `position` of a sequence whose length in this forward is `seq_len` (max
  // position + 1; only read by "dynamic"): out[rotary_dim()] as described above.
  void row(int64_t position, int64_t seq_len, float* out) const;
  // Rows for positions 0..n-1: host f32 [n, rotary_dim()]. Not for "dynamic".
  Tensor table(int64_t n) const;

  // transformers' inv_freq buffer for a forward with this seq_len: [rotary_dim() / 2] f32.
  std::vector<float> inv_freq(int64_t seq_len = 0) const;
  // Row from explicit inverse frequencies (used by row(); exposed for tests).
  void row_from_inv_freq(const float* inv_freq, int64_t position, float* out) const;

 private:
  std::vector<float> dynamic_inv_freq(int64_t seq_len) const;

  RopeType type_ = RopeType::Default;
  int rotary_dim_ = 0;
  double rope_theta_ = 10000.0;
  double factor_ = 1.0;
  int max_position_embeddings_ = 0;
  float attention_scaling_ = 1.0f;
  std::vector<float> inv_freq_;  // static types, and dynamic while seq_len <= max_position_embeddings

  // Last dynamic inv_freq, shared by copies (a batch's tokens mostly share a seq_len).
  struct DynamicCache;
  std::shared_ptr<DynamicCache> cache_;
};

}  // namespace tllm
