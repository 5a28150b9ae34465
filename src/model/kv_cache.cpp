#include "model/kv_cache.h"

#include <algorithm>
#include <string>

#include "kernels/backend.h"
#include "model/config.h"

namespace tllm {

size_t KVCache::bytes_per_block(const ModelConfig& cfg, int block_size, DType dtype) {
  return 2ull * cfg.num_layers * block_size * cfg.num_kv_heads * cfg.head_dim * dtype_size(dtype);
}

KVCache KVCache::allocate(Backend& backend, const ModelConfig& cfg, int num_blocks, int block_size,
                          DType dtype) {
  TLLM_CHECK(num_blocks > 0 && block_size > 0, "KV cache needs blocks (got ", num_blocks,
             " blocks of ", block_size, ")");
  const std::vector<int> dims = backend.attention_head_dims();
  if (!dims.empty() && std::find(dims.begin(), dims.end(), cfg.head_dim) == dims.end()) {
    std::string list;
    for (int d : dims) list += (list.empty() ? "" : ", ") + std::to_string(d);
    TLLM_THROW("head_dim ", cfg.head_dim, " is not supported by the attention of ", backend.name(), " (head dims ",
               list, ")");
  }
  KVCache kv;
  kv.num_blocks = num_blocks;
  kv.block_size = block_size;
  kv.dtype = dtype;
  const Shape shape = {num_blocks, block_size, cfg.num_kv_heads, cfg.head_dim};
  for (int l = 0; l < cfg.num_layers; ++l) {
    kv.k.push_back(backend.empty(shape, dtype));
    kv.v.push_back(backend.empty(shape, dtype));
    // On the GPU, zeroed so that padded rows of graph-captured decode read finite values.
    // On the CPU nothing reads a slot before it is written, and touching gigabytes of
    // fresh pages would only slow start-up.
    if (backend.device() != Device::CPU) {
      backend.fill_zero(kv.k.back());
      backend.fill_zero(kv.v.back());
    }
  }
  return kv;
}

}  // namespace tllm
