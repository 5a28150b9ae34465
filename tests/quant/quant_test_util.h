// Random quantized matrices for the quantization tests.
#pragma once

#include <random>

#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/reference/quant_reference.h"

namespace tllm::test {

// Codes uniform in [0, 2^bits); scales in [0.005, 0.05) and offsets in [-0.4, 0.4), rounded
// to f16 when `f16` (so the packed layouts store them as f16), else arbitrary f32.
inline QuantizedMatrix random_quantized(int64_t N, int64_t K, int bits, int group, bool f16, std::mt19937_64& rng) {
  QuantizedMatrix m;
  m.bits = bits;
  m.group_size = group;
  m.rows = N;
  m.cols = K;
  m.codes = Tensor::empty({N, K}, DType::U8);
  std::uniform_int_distribution<int> code(0, (1 << bits) - 1);
  for (int64_t i = 0; i < N * K; ++i) m.codes.data<uint8_t>()[i] = static_cast<uint8_t>(code(rng));
  const int64_t G = m.groups();
  m.scales = Tensor::empty({N, G}, DType::F32);
  m.offsets = Tensor::empty({N, G}, DType::F32);
  std::uniform_real_distribution<float> sd(0.005f, 0.05f), od(-0.4f, 0.4f);
  for (int64_t i = 0; i < N * G; ++i) {
    float s = sd(rng), o = od(rng);
    if (f16) {
      s = f16_to_f32(f32_to_f16(s));
      o = f16_to_f32(f32_to_f16(o));
    } else {
      s += 1e-9f;  // not an f16
    }
    m.scales.data<float>()[i] = s;
    m.offsets.data<float>()[i] = o;
  }
  return m;
}

// Stacked MoE experts from random quantized matrices made by make(rows, cols): `quantized`
// packed by `be` (f32_act: pack_quantized's flag), `dense` the dequantized f32 weights that the
// references run on. gate_up [E * 2I, H], down [E * H, I] and, with S > 0, the shared
// expert's [2S, H] / [H, S] (its shared_gate is the caller's).
template <typename Make>
void quantized_experts(Backend& be, int E, int64_t H, int64_t I, int64_t S, bool f32_act, Make make,
                       MoeExperts& quantized, MoeExperts& dense) {
  for (MoeExperts* w : {&quantized, &dense}) {
    w->num_experts = E;
    w->hidden = H;
    w->inter = I;
    w->shared_inter = S;
  }
  auto both = [&](int64_t rows, int64_t cols, LinearWeight& q, LinearWeight& d) {
    const QuantizedMatrix m = make(rows, cols);
    q = be.pack_quantized(m, f32_act);
    d.weight = ref::dequantize(m);
    d.out_features = rows;
    d.in_features = cols;
  };
  both(int64_t{E} * 2 * I, H, quantized.gate_up, dense.gate_up);
  both(int64_t{E} * H, I, quantized.down, dense.down);
  if (S > 0) {
    both(2 * S, H, quantized.shared_gate_up, dense.shared_gate_up);
    both(H, S, quantized.shared_down, dense.shared_down);
  }
}

}  // namespace tllm::test
