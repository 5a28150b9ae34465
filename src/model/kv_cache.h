// Paged KV cache storage: per layer, k and v [num_blocks, block_size, n_kv_heads, head_dim]
// on the backend's device. Which blocks belong to which sequence is the engine's
// business (engine/block_manager.h); the model only reads and writes through block tables.
#pragma once

#include <vector>

#include "core/tensor.h"

namespace tllm {

class Backend;
struct ModelConfig;

struct KVCache {
  int num_blocks = 0;
  int block_size = 16;
  DType dtype = DType::F32;
  std::vector<Tensor> k;  // [num_layers]
  std::vector<Tensor> v;

  // Bytes one block takes over all layers (k and v).
  static size_t bytes_per_block(const ModelConfig& cfg, int block_size, DType dtype);
  static KVCache allocate(Backend& backend, const ModelConfig& cfg, int num_blocks, int block_size,
                          DType dtype);
};

}  // namespace tllm
