// Defaults of the optional quantized-weight ops of Backend (backend.h): a backend that does
// not implement them fails with a message naming the op and itself.
#include "kernels/backend.h"

namespace tllm {

LinearWeight Backend::pack_quantized(const QuantizedMatrix&, bool) {
  TLLM_THROW("quantized weights (int8/int4) are not supported by backend ", name(),
             " (op pack_quantized); load the model without quantization");
}

void Backend::embedding_quantized(Tensor&, const LinearWeight&, const Tensor&) {
  TLLM_THROW("op embedding_quantized not supported by backend ", name());
}

}  // namespace tllm
