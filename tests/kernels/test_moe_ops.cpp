// The CPU mixture-of-experts ops (Backend::moe_route, Backend::moe_experts) against the
// double-precision references of kernels/reference/moe_reference.h, on every CPU
// instruction-set variant this machine runs: random routers at several (T, E, k), exact
// tie handling (lower expert id first, as torch.topk's stable order and vLLM), norm_topk_prob
// on and off, expert MLPs with and without the shared expert at odd sizes, f32 and bf16
// weights, duplicate and out-of-range ids, and clear errors for malformed inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "kernel_test_util.h"
#include "kernels/reference/moe_reference.h"

namespace tllm::test {
namespace {

Tensor floats(const std::vector<float>& v, Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

struct Routed {
  Tensor ids, weights;
};

Routed route(Backend& be, const Tensor& logits, int k, bool renorm) {
  const int64_t T = logits.dim(0);
  Routed r{Tensor::empty({T, k}, DType::I32), Tensor::empty({T, k}, DType::F32)};
  poison(r.weights);
  be.moe_route(r.ids, r.weights, logits, renorm);
  return r;
}

Routed route_ref(const Tensor& logits, int k, bool renorm) {
  const int64_t T = logits.dim(0);
  Routed r{Tensor::empty({T, k}, DType::I32), Tensor::empty({T, k}, DType::F32)};
  ref::moe_route(r.ids, r.weights, logits, renorm);
  return r;
}

std::vector<int32_t> ids_of(const Tensor& t) { return {t.data<int32_t>(), t.data<int32_t>() + t.numel()}; }

class MoeCpu : public ::testing::TestWithParam<cpu::Isa> {
 protected:
  std::unique_ptr<CpuBackend> be = make_cpu_backend_isa({2}, GetParam());
};

TEST_P(MoeCpu, RouterMatchesReference) {
  std::mt19937_64 rng(11);
  for (auto [T, E, k] : std::vector<std::array<int, 3>>{{1, 8, 2}, {5, 8, 3}, {17, 60, 4}, {3, 128, 8}, {9, 7, 7},
                                                        {2, 1, 1}, {4, 1500, 16}}) {
    for (bool renorm : {false, true}) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " E=" << E << " k=" << k << " renorm=" << renorm);
      Tensor logits = randn({T, E}, rng, DType::F32, 2.0f);
      Routed got = route(*be, logits, k, renorm), want = route_ref(logits, k, renorm);
      EXPECT_EQ(ids_of(got.ids), ids_of(want.ids));
      for (int64_t i = 0; i < got.weights.numel(); ++i)
        EXPECT_NEAR(got.weights.data<float>()[i], want.weights.data<float>()[i],
                    2e-6 * std::fabs(want.weights.data<float>()[i]) + 1e-9);
      if (renorm)
        for (int t = 0; t < T; ++t) {
          double s = 0;
          for (int j = 0; j < k; ++j) s += got.weights.data<float>()[t * k + j];
          EXPECT_NEAR(s, 1.0, 1e-6);
        }
    }
  }
}

TEST_P(MoeCpu, RouterBreaksTiesByLowerExpertId) {
  // Row 0: three experts tie for first place; row 1: a tie at the k-th place; row 2: all equal.
  Tensor logits = floats({1, 3, 3, 2, 3, 0, 3, 1,  //
                          5, 0, 4, 4, 1, 4, 2, 4,  //
                          0, 0, 0, 0, 0, 0, 0, 0},
                         {3, 8});
  for (bool renorm : {false, true}) {
    Routed got = route(*be, logits, 3, renorm);
    EXPECT_EQ(ids_of(got.ids), (std::vector<int32_t>{1, 2, 4, 0, 2, 3, 0, 1, 2})) << "renorm " << renorm;
    Routed want = route_ref(logits, 3, renorm);
    EXPECT_EQ(ids_of(got.ids), ids_of(want.ids));
    const float* w = got.weights.data<float>();
    EXPECT_EQ(w[0], w[1]);
    EXPECT_EQ(w[1], w[2]);
    EXPECT_EQ(w[4], w[5]);
    if (renorm) {
      EXPECT_NEAR(w[6], 1.0f / 3, 1e-7);
    } else {
      EXPECT_NEAR(w[6], 1.0f / 8, 1e-7);
    }
  }
}

TEST_P(MoeCpu, RouterWeightsAreSoftmaxProbabilities) {
  // norm_topk_prob false: the weights are the full-softmax probabilities (Qwen2-MoE); true:
  // renormalised over the chosen k (Qwen3-MoE).
  Tensor logits = floats({0.0f, 1.0f, 2.0f, 3.0f}, {1, 4});
  const double z = 1 + std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  Routed raw = route(*be, logits, 2, false);
  EXPECT_EQ(ids_of(raw.ids), (std::vector<int32_t>{3, 2}));
  EXPECT_NEAR(raw.weights.data<float>()[0], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(raw.weights.data<float>()[1], std::exp(2.0) / z, 1e-7);
  Routed norm = route(*be, logits, 2, true);
  EXPECT_NEAR(norm.weights.data<float>()[0], std::exp(3.0) / (std::exp(3.0) + std::exp(2.0)), 1e-7);
  EXPECT_NEAR(norm.weights.data<float>()[1], std::exp(2.0) / (std::exp(3.0) + std::exp(2.0)), 1e-7);
}

TEST_P(MoeCpu, RouterAcceptsBf16Logits) {
  std::mt19937_64 rng(3);
  Tensor logits = randn({6, 16}, rng, DType::BF16, 2.0f);
  Routed got = route(*be, logits, 4, true), want = route_ref(logits, 4, true);
  EXPECT_EQ(ids_of(got.ids), ids_of(want.ids));
}

MoeExperts random_experts(int E, int H, int I, int S, DType wd, std::mt19937_64& rng) {
  MoeExperts w;
  w.num_experts = E;
  w.hidden = H;
  w.inter = I;
  const float sh = 1.0f / std::sqrt(static_cast<float>(H)), si = 1.0f / std::sqrt(static_cast<float>(I));
  w.gate_up.weight = randn({int64_t{E} * 2 * I, H}, rng, wd, sh);
  w.gate_up.out_features = int64_t{E} * 2 * I;
  w.gate_up.in_features = H;
  w.down.weight = randn({int64_t{E} * H, I}, rng, wd, si);
  w.down.out_features = int64_t{E} * H;
  w.down.in_features = I;
  if (S > 0) {
    w.shared_inter = S;
    w.shared_gate_up.weight = randn({2 * S, H}, rng, wd, sh);
    w.shared_down.weight = randn({H, S}, rng, wd, 1.0f / std::sqrt(static_cast<float>(S)));
    w.shared_gate = randn({H}, rng, DType::F32, sh);
  }
  return w;
}

double run_experts(Backend& be, const Tensor& x, const Tensor& ids, const Tensor& weights, const MoeExperts& w) {
  Tensor out = Tensor::empty(x.shape(), DType::F32), want = Tensor::empty(x.shape(), DType::F32);
  poison(out);
  be.moe_experts(out, x, ids, weights, w);
  ref::moe_experts(want, x, ids, weights, w);
  return nmse(out, want);
}

TEST_P(MoeCpu, ExpertsMatchReference) {
  std::mt19937_64 rng(21);
  struct Shape6 {
    int T, E, k, H, I, S;
  };
  for (const Shape6& s : std::vector<Shape6>{{1, 8, 2, 64, 48, 0},
                                             {3, 8, 2, 64, 48, 96},
                                             {7, 4, 4, 24, 20, 0},  // every expert chosen by every token
                                             {17, 60, 4, 40, 28, 36},
                                             {33, 16, 8, 17, 9, 0},
                                             {2, 128, 8, 32, 16, 0}}) {
    for (DType wd : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(testing::Message() << "T=" << s.T << " E=" << s.E << " k=" << s.k << " H=" << s.H << " I=" << s.I
                                      << " S=" << s.S << " w=" << dtype_name(wd));
      MoeExperts w = random_experts(s.E, s.H, s.I, s.S, wd, rng);
      Tensor x = randn({s.T, s.H}, rng, DType::F32);
      Routed r = route(*be, randn({s.T, s.E}, rng, DType::F32, 2.0f), s.k, s.T % 2 == 0);
      EXPECT_LT(run_experts(*be, x, r.ids, r.weights, w), 1e-11);
    }
  }
}

TEST_P(MoeCpu, ExpertsHandleDuplicateAndOutOfRangeIds) {
  std::mt19937_64 rng(8);
  MoeExperts w = random_experts(6, 32, 24, 16, DType::F32, rng);
  Tensor x = randn({4, 32}, rng, DType::F32);
  Tensor ids = Tensor::empty({4, 3}, DType::I32);
  const std::vector<int32_t> v = {2, 2, 5, -1, 0, 6, 3, 3, 3, 99, -7, 1};
  std::copy(v.begin(), v.end(), ids.data<int32_t>());
  Tensor weights = randn({4, 3}, rng, DType::F32, 0.3f, 0.5f);
  EXPECT_LT(run_experts(*be, x, ids, weights, w), 1e-11);
}

TEST_P(MoeCpu, MalformedInputsAreClearErrors) {
  std::mt19937_64 rng(9);
  MoeExperts w = random_experts(4, 16, 8, 0, DType::F32, rng);
  Tensor x = randn({2, 16}, rng, DType::F32), out = Tensor::empty({2, 16}, DType::F32);
  Tensor ids = Tensor::zeros({2, 2}, DType::I32), weights = Tensor::zeros({2, 2}, DType::F32);
  auto expect_error = [&](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning \"" << needle << "\"";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Tensor bad_ids = Tensor::zeros({3, 2}, DType::I32);
  expect_error([&] { be->moe_experts(out, x, bad_ids, weights, w); }, "topk_ids");
  Tensor bad_x = randn({2, 15}, rng, DType::F32);
  expect_error([&] { be->moe_experts(out, bad_x, ids, weights, w); }, "x ");
  MoeExperts bad_w = w;
  bad_w.inter = 9;
  expect_error([&] { be->moe_experts(out, x, ids, weights, bad_w); }, "gate_up");
  expect_error([&] { be->moe_experts(x, x, ids, weights, w); }, "alias");
  Tensor logits = randn({2, 4}, rng, DType::F32);
  Tensor ids5 = Tensor::empty({2, 5}, DType::I32), w5 = Tensor::empty({2, 5}, DType::F32);
  expect_error([&] { be->moe_route(ids5, w5, logits, false); }, "k = 5");
}

INSTANTIATE_TEST_SUITE_P(Isa, MoeCpu, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(cpu::isa_name(info.param)); });

}  // namespace
}  // namespace tllm::test
