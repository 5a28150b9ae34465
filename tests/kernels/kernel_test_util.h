// Helpers of the kernel tests: random tensors, NaN poisoning, error metrics, and the list
// of CPU instruction-set variants this machine can run.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/cpu/cpu_backend.h"

namespace tllm::test {

inline std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> v;
  for (cpu::Isa i : {cpu::Isa::Scalar, cpu::Isa::Avx2, cpu::Isa::Avx512})
    if (cpu::isa_supported(i)) v.push_back(i);
  return v;
}

// f32 tensor of N(mean, std) values, then stored as `dtype`.
inline Tensor randn(const Shape& shape, std::mt19937_64& rng, DType dtype = DType::F32, float std = 1.0f,
                    float mean = 0.0f) {
  Tensor t = Tensor::empty(shape, dtype);
  std::normal_distribution<float> d(mean, std);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = d(rng);
    if (dtype == DType::F32) t.data<float>()[i] = v;
    else if (dtype == DType::BF16) t.data<uint16_t>()[i] = f32_to_bf16(v);
    else if (dtype == DType::F16) t.data<uint16_t>()[i] = f32_to_f16(v);
  }
  return t;
}

inline Tensor ints(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I32);
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(int32_t));
  return t;
}

inline Tensor ints64(const std::vector<int64_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::I64);
  if (!v.empty()) std::memcpy(t.raw(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

// Fills an output with NaN so that elements a kernel forgets to write fail the comparison.
inline void poison(Tensor& t) {
  if (t.dtype() == DType::F32) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  } else if (t.dtype() == DType::BF16) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<uint16_t>()[i] = 0x7fc0;
  } else if (t.dtype() == DType::F16) {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<uint16_t>()[i] = 0x7e00;
  }
}

inline double value_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    case DType::F16: return f16_to_f32(t.data<uint16_t>()[i]);
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

// Normalised mean squared error sum((a-b)^2) / sum(b^2), as llama.cpp's test-backend-ops;
// NaN anywhere (or a size mismatch) gives +inf.
inline double nmse(const Tensor& got, const Tensor& want) {
  if (got.numel() != want.numel()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = value_at(got, i), b = value_at(want, i);
    if (!std::isfinite(a) || !std::isfinite(b)) return std::numeric_limits<double>::infinity();
    num += (a - b) * (a - b);
    den += b * b;
  }
  return den == 0 ? num : num / den;
}

inline double max_abs_diff(const Tensor& got, const Tensor& want) {
  double m = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double d = std::fabs(value_at(got, i) - value_at(want, i));
    if (!(d <= m)) m = d;  // NaN propagates
  }
  return m;
}

// f32 [positions, rd] split-half RoPE table: row p = [cos(p f_i) for i < rd/2 | sin(p f_i)],
// f_i = theta^(-2i/rd).
inline Tensor cos_sin_table(int positions, int rd, double theta) {
  Tensor t = Tensor::empty({positions, rd}, DType::F32);
  for (int p = 0; p < positions; ++p)
    for (int i = 0; i < rd / 2; ++i) {
      const double f = p * std::pow(theta, -2.0 * i / rd);
      t.data<float>()[p * rd + i] = static_cast<float>(std::cos(f));
      t.data<float>()[p * rd + rd / 2 + i] = static_cast<float>(std::sin(f));
    }
  return t;
}

}  // namespace tllm::test
