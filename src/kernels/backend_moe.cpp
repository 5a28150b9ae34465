// Defaults of the optional mixture-of-experts ops of Backend (backend.h): a backend that
// does not implement them fails with a message naming the op and itself.
#include "kernels/backend.h"

namespace tllm {

void Backend::moe_route(Tensor&, Tensor&, const Tensor&, bool) {
  TLLM_THROW("op moe_route not supported by backend ", name());
}

void Backend::moe_experts(Tensor&, const Tensor&, const Tensor&, const Tensor&, const MoeExperts&) {
  TLLM_THROW("op moe_experts not supported by backend ", name());
}

}  // namespace tllm
