// Quantized experts (int8 / int4, the packed layouts of Backend::pack_quantized) through
// the CPU backend's moe_experts, against the double-precision MoE reference run on the
// dequantized weights (ref::dequantize): exact with f32 activations, within the int8
// activation rounding of the fast path otherwise. The stacked [E*2I, H] / [E*H, I] weights
// are packed once and sliced by expert, as the model loads them.
// Compiled only where the quantized-weight work (Backend::pack_quantized, ref::dequantize) is
// present in the tree.
#if __has_include("kernels/reference/quant_reference.h")
#include <gtest/gtest.h>

#include <cmath>

#include "kernel_test_util.h"
#include "kernels/reference/moe_reference.h"
#include "kernels/reference/quant_reference.h"
#include "quant/quant_test_util.h"

namespace tllm::test {
namespace {

QuantizedMatrix random_quantized(int bits, int group, int64_t rows, int64_t cols, std::mt19937_64& rng) {
  QuantizedMatrix m;
  m.bits = bits;
  m.group_size = group;
  m.rows = rows;
  m.cols = cols;
  m.codes = Tensor::empty({rows, cols}, DType::U8);
  const int levels = 1 << bits;
  for (int64_t i = 0; i < m.codes.numel(); ++i) m.codes.data<uint8_t>()[i] = static_cast<uint8_t>(rng() % levels);
  const int64_t G = m.groups();
  m.scales = Tensor::empty({rows, G}, DType::F32);
  m.offsets = Tensor::empty({rows, G}, DType::F32);
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  const float base = 2.0f / (levels * std::sqrt(static_cast<float>(cols)));
  for (int64_t i = 0; i < rows * G; ++i) {
    const float s = base * u(rng);
    m.scales.data<float>()[i] = s;
    m.offsets.data<float>()[i] = -s * (levels / 2) + s * (u(rng) - 1.0f);
  }
  return m;
}

struct Pair {
  MoeExperts quantized, dense;
};

Pair make_experts(CpuBackend& be, int bits, int group, int E, int H, int I, int S, bool f32_act,
                  std::mt19937_64& rng) {
  Pair p;
  quantized_experts(
      be, E, H, I, S, f32_act, [&](int64_t rows, int64_t cols) { return random_quantized(bits, group, rows, cols, rng); },
      p.quantized, p.dense);
  if (S > 0) p.quantized.shared_gate = p.dense.shared_gate = randn({H}, rng, DType::F32, 0.1f);
  return p;
}

class MoeQuantCpu : public ::testing::TestWithParam<cpu::Isa> {
 protected:
  std::unique_ptr<CpuBackend> be = make_cpu_backend_isa({2}, GetParam());
};

TEST_P(MoeQuantCpu, QuantizedExpertsMatchTheirDequantizedForm) {
  std::mt19937_64 rng(31);
  struct Case {
    int bits, group, T, E, k, H, I, S;
  };
  for (const Case& c : std::vector<Case>{{8, 64, 1, 8, 2, 64, 64, 0},
                                         {4, 32, 5, 8, 2, 64, 64, 64},
                                         {8, 32, 17, 16, 4, 96, 32, 0},
                                         {4, 64, 3, 4, 4, 128, 64, 32}}) {
    for (bool f32_act : {true, false}) {
      SCOPED_TRACE(testing::Message() << "int" << c.bits << " group " << c.group << " T=" << c.T << " E=" << c.E
                                      << " k=" << c.k << " H=" << c.H << " I=" << c.I << " S=" << c.S
                                      << (f32_act ? " f32 activations" : " int8 activations"));
      Pair w = make_experts(*be, c.bits, c.group, c.E, c.H, c.I, c.S, f32_act, rng);
      Tensor x = randn({c.T, c.H}, rng, DType::F32);
      Tensor ids = Tensor::empty({c.T, c.k}, DType::I32), wts = Tensor::empty({c.T, c.k}, DType::F32);
      be->moe_route(ids, wts, randn({c.T, c.E}, rng, DType::F32, 2.0f), true);
      Tensor out = Tensor::empty({c.T, c.H}, DType::F32), want = Tensor::empty({c.T, c.H}, DType::F32);
      poison(out);
      be->moe_experts(out, x, ids, wts, w.quantized);
      ref::moe_experts(want, x, ids, wts, w.dense);
      EXPECT_LT(nmse(out, want), f32_act ? 1e-10 : 1e-3);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, MoeQuantCpu, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(cpu::isa_name(info.param)); });

}  // namespace
}  // namespace tllm::test
#endif
