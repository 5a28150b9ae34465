// dtype conversion of rows (weights to f32, f32 to the KV-cache dtype), scalar variant.
#include <cstring>

#include "kernels/cpu/isa_kernels.h"

namespace tllm::cpu::scalar {

void to_f32(float* out, const void* src, DType src_dtype, int64_t n) {
  if (src_dtype == DType::F32) {
    std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
  } else if (src_dtype == DType::BF16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(s[i]);
  } else if (src_dtype == DType::F16) {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(s[i]);
  }
}

void from_f32(void* dst, DType dst_dtype, const float* src, int64_t n) {
  if (dst_dtype == DType::F32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else if (dst_dtype == DType::BF16) {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  } else if (dst_dtype == DType::F16) {
    uint16_t* d = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
  }
}

}  // namespace tllm::cpu::scalar
