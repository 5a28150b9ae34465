#include "model/moe.h"

#include "core/error.h"

namespace tllm {

// Placeholder until the MoE issue lands: loading a MoE checkpoint is a clear error.
std::unique_ptr<MoeBlock> MoeBlock::load(WeightLoader&, const ModelConfig&, const std::string& prefix, int) {
  TLLM_THROW("mixture-of-experts layers (", prefix, ") are not supported yet");
}

}  // namespace tllm
