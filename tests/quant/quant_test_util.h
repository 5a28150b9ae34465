// Random quantized matrices for the quantization tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "kernels/reference/quant_reference.h"

namespace tllm::test {

// A host f32 / bf16 / f16 tensor's values as f32.
inline std::vector<float> f32_values(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = t.dtype() == DType::F32    ? t.data<float>()[i]
           : t.dtype() == DType::BF16 ? bf16_to_f32(t.data<uint16_t>()[i])
                                      : f16_to_f32(t.data<uint16_t>()[i]);
  return v;
}

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

// FP8 encoding written here from the formats' definitions: the nearest finite code (the
// first of two equally near), and the f32 value each code stands for.
inline float fp8_value(DType t, uint8_t c) { return t == DType::F8E4M3 ? fp8_e4m3_to_f32(c) : fp8_e5m2_to_f32(c); }
inline uint8_t fp8_nearest(DType t, float x) {
  int best = 0;
  float err = INFINITY;
  for (int c = 0; c < 256; ++c) {
    if (!fp8_is_finite(t, static_cast<uint8_t>(c))) continue;
    const float e = std::fabs(fp8_value(t, static_cast<uint8_t>(c)) - x);
    if (e < err) err = e, best = c;
  }
  return static_cast<uint8_t>(best);
}

// FP8 block quantization as transformers' Fp8Quantize does it (scale = amax / fp8 max per
// block of br x bc, partial blocks at the edges; a dimension 0 spans the matrix), returning the FP8
// weight, the scales [ceil(N / br), ceil(K / bc)] and the dequantized f32 weights.
struct Fp8Packed {
  Tensor weight, scale;
  std::vector<float> deq;
};
inline Fp8Packed fp8_quantize(const std::vector<float>& w, int64_t N, int64_t K, DType t, int64_t br, int64_t bc) {
  if (br == 0) br = N;  // 0: the block spans the matrix that way
  if (bc == 0) bc = K;
  const int64_t sr = (N + br - 1) / br, sc = (K + bc - 1) / bc;
  const float fmax = t == DType::F8E4M3 ? 448.0f : 57344.0f;
  Fp8Packed p{Tensor::empty({N, K}, t), Tensor::empty({sr, sc}, DType::F32), std::vector<float>(N * K)};
  for (int64_t i = 0; i < sr; ++i)
    for (int64_t j = 0; j < sc; ++j) {
      float amax = 0;
      for (int64_t r = i * br; r < std::min(N, (i + 1) * br); ++r)
        for (int64_t c = j * bc; c < std::min(K, (j + 1) * bc); ++c) amax = std::max(amax, std::fabs(w[r * K + c]));
      const float s = amax > 0 ? amax / fmax : 1.0f;
      p.scale.data<float>()[i * sc + j] = s;
      for (int64_t r = i * br; r < std::min(N, (i + 1) * br); ++r)
        for (int64_t c = j * bc; c < std::min(K, (j + 1) * bc); ++c) {
          const uint8_t q = fp8_nearest(t, w[r * K + c] / s);
          p.weight.data<uint8_t>()[r * K + c] = q;
          p.deq[r * K + c] = fp8_value(t, q) * s;
        }
    }
  return p;
}

// A random FP8 matrix as the loader decodes an e4m3 checkpoint (QuantizedMatrix::fp8): finite
// codes of every kind (subnormals, both signs, the largest), a scale per row and group in
// [0.001, 0.01) (f16 values when `f16`), offsets 0.
inline QuantizedMatrix random_fp8(int64_t N, int64_t K, int group, bool f16, std::mt19937_64& rng) {
  QuantizedMatrix m = random_quantized(N, K, 8, group, f16, rng);
  m.fp8 = true;
  for (int64_t i = 0; i < N * K; ++i) {
    uint8_t& c = m.codes.data<uint8_t>()[i];
    if ((c & 0x7f) == 0x7f) c ^= 1;  // NaN -> the largest finite code of that sign
  }
  for (int64_t i = 0; i < m.scales.numel(); ++i) {
    m.scales.data<float>()[i] *= 0.2f;
    if (f16) m.scales.data<float>()[i] = f16_to_f32(f32_to_f16(m.scales.data<float>()[i]));
    m.offsets.data<float>()[i] = 0.0f;
  }
  return m;
}

}  // namespace tllm::test
