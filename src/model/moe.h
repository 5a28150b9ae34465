// The sparse mixture-of-experts MLP of Qwen2-MoE / Qwen3-MoE layers: router, top-k
// experts per token, optional shared expert with a sigmoid gate. The dense forward
// (qwen2.cpp) calls forward() in place of the dense MLP on the layers that have one.
#pragma once

#include <memory>
#include <string>

#include "core/tensor.h"

namespace tllm {

class Backend;
class WeightLoader;
struct ModelConfig;
struct DecoderStackLayer;

class MoeBlock {
 public:
  virtual ~MoeBlock() = default;
  // Weights of `prefix` ("model.layers.3.mlp."): gate.weight, experts.{e}.{gate,up,down}_proj.weight,
  // shared_expert.{gate,up,down}_proj.weight and shared_expert_gate.weight when present.
  static std::unique_ptr<MoeBlock> load(WeightLoader& loader, const ModelConfig& cfg,
                                        const std::string& prefix, int max_tokens);
  // out[T, H] = MoE(x[T, H]).
  virtual void forward(Tensor& out, const Tensor& x) = 0;
  virtual size_t active_weight_bytes_per_token() const = 0;
  // Points the layer's MoE fields (router, experts, top_k, renormalize) at this block, for
  // Backend::decoder_stack.
  virtual void describe(DecoderStackLayer& layer) const = 0;
};

}  // namespace tllm
