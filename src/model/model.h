// CausalLM: a loaded model that runs the flat varlen batch (forward_batch.h) against a
// paged KV cache and returns logits. Chosen by a registry keyed by config.architecture.
#pragma once

#include <memory>
#include <string>

#include "core/tensor.h"
#include "model/config.h"
#include "model/forward_batch.h"
#include "model/kv_cache.h"

namespace tllm {

class Backend;
class Collective;

struct ModelLoadOptions {
  DType weight_dtype = DType::BF16;  // dense weights on the device (f32, bf16 or f16)
  int max_num_tokens = 2048;         // workspace rows: the most tokens one forward may carry
  int max_num_seqs = 256;            // the most sequences one forward may carry
  int max_model_len = 0;             // 0: max_position_embeddings
  std::string quantization;          // "", "int8", "int4" (quantize on load)
  int quant_group_size = 64;
  bool dummy_weights = false;
  bool cuda_graphs = true;           // capture decode steps into CUDA graphs (CUDA only)
  // Pooling (embedding) model: no lm_head is loaded and forward() returns the final-normed
  // hidden states of the requested rows instead of logits.
  bool pooling = false;
  // Tensor parallelism (dist/tensor_parallel.h): this model is rank `collective->rank()` of
  // `collective->size()`, loaded with the config shard_config() gives for that size; null: the
  // whole model on one backend.
  Collective* collective = nullptr;
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual const ModelConfig& config() const = 0;
  virtual Backend& backend() = 0;
  // Logits [batch.logits_indices.size(), vocab] f32 on the backend's device (a pooling model:
  // the final-normed hidden states [rows, hidden] in the activation dtype); valid until the
  // next forward.
  virtual Tensor forward(const ForwardBatch& batch, KVCache& kv) = 0;
  // Bytes of weights resident on the device (for the bench roofline and memory sizing).
  virtual size_t weight_bytes() const = 0;
  // The KV cache forward() runs against: bytes of one block on each device, and the cache
  // itself. A tensor-parallel model keeps one cache per rank, each with its share of the KV
  // heads, and hands back a KVCache that only names the blocks' count, size and dtype.
  virtual size_t kv_bytes_per_block(int block_size, DType dtype) const {
    return KVCache::bytes_per_block(config(), block_size, dtype);
  }
  virtual KVCache allocate_kv_cache(int num_blocks, int block_size, DType dtype) {
    return KVCache::allocate(backend(), config(), num_blocks, block_size, dtype);
  }
};

// Loads `dir` (config.json + safetensors) onto `backend`, validating every weight's name,
// shape and dtype. The backend must outlive the model.
std::unique_ptr<CausalLM> load_model(const std::string& dir, Backend& backend,
                                     const ModelLoadOptions& opts);
// The same with config.json already parsed (the engine reads it before choosing dtypes).
std::unique_ptr<CausalLM> load_model(const std::string& dir, ModelConfig config, Backend& backend,
                                     const ModelLoadOptions& opts);

}  // namespace tllm
