#include "kernels/reference/quant_reference.h"

#include <algorithm>
#include <cmath>

#include "core/dtype.h"

namespace tllm::ref {

Tensor dequantize(const QuantizedMatrix& m) {
  Tensor w = Tensor::empty({m.rows, m.cols}, DType::F32);
  const int64_t G = m.groups();
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) {
      const int64_t g = m.group_of(c);
      const float s = m.scales.data<float>()[r * G + g], o = m.offsets.data<float>()[r * G + g];
      const uint8_t q = m.codes.data<uint8_t>()[r * m.cols + c];
      const float prod = s * (m.fp8 ? fp8_e4m3_to_f32(q) : static_cast<float>(q));
      w.data<float>()[r * m.cols + c] = m.fp8 ? prod : prod + o;  // FP8: no offset (keeps -0)
    }
  return w;
}

void quant_linear(Tensor& out, const Tensor& x, const QuantizedMatrix& m, const Tensor& bias, Tensor* abs_out) {
  const Tensor w = dequantize(m);
  const int64_t K = m.cols, N = m.rows, T = x.numel() / K;
  out = Tensor::empty({T, N}, DType::F32);
  if (abs_out) *abs_out = Tensor::empty({T, N}, DType::F32);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = bias.defined() ? bias.data<float>()[n] : 0.0, a = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double p = static_cast<double>(x.data<float>()[t * K + k]) * w.data<float>()[n * K + k];
        s += p;
        a += std::fabs(p);
      }
      out.data<float>()[t * N + n] = static_cast<float>(s);
      if (abs_out) abs_out->data<float>()[t * N + n] = static_cast<float>(a);
    }
}

Tensor round_activations_int8(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::F32);
  const int64_t K = x.dim(-1), T = x.numel() / K;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      const int64_t k1 = std::min(K, k0 + 32);
      float amax = 0.0f;
      for (int64_t k = k0; k < k1; ++k) amax = std::max(amax, std::fabs(x.data<float>()[t * K + k]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f, d = amax / 127.0f;
      for (int64_t k = k0; k < k1; ++k)
        out.data<float>()[t * K + k] = d * std::nearbyint(x.data<float>()[t * K + k] * inv);
    }
  return out;
}

}  // namespace tllm::ref
