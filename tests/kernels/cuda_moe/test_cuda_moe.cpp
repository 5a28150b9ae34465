// The MoE ops of CudaBackend against the double-precision references
// (kernels/reference/moe_reference.h): the router (ties, renormalisation, f32 and bf16
// logits), the experts on the decode path (T <= 32) and the grouped-GEMM path (T > 32) at
// several shapes incl. Qwen3-30B-A3B's and Qwen1.5-MoE's layer sizes, duplicate and
// out-of-range ids, replay of a captured CUDA graph over new routing, and the two MoE test
// models run on the GPU through the engine against the HF goldens (bf16 tolerance).
// Every test skips when no GPU is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/reference/moe_reference.h"
#include "kernels/reference/quant_reference.h"
#include "quant/quant_test_util.h"

namespace tllm {
namespace {

Tensor randn(const Shape& shape, std::mt19937_64& rng, float std = 1.0f, float mean = 0.0f) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::normal_distribution<float> d(mean, std);
  // Values exactly representable in bf16, so host reference and device see the same inputs.
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = bf16_to_f32(f32_to_bf16(d(rng)));
  return t;
}

// Uniform in [-std sqrt3, std sqrt3] (standard deviation std), bf16-exact, from a splitmix64
// stream: ~1 ns a value where randn costs ~15, for the GB-sized real-layer expert weights.
Tensor rand_fast(const Shape& shape, std::mt19937_64& rng, float std) {
  Tensor t = Tensor::empty(shape, DType::F32);
  uint64_t state = rng();
  const double scale = std * std::sqrt(3.0) * 2.0 / 9007199254740992.0;  // 2^53
  float* v = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    v[i] = bf16_to_f32(f32_to_bf16(static_cast<float>(static_cast<double>(z >> 11) * scale - std * std::sqrt(3.0))));
  }
  return t;
}

// Rows `rows` of a host tensor [T, ...] (4-byte elements: F32, I32).
Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor r = Tensor::empty(shape, t.dtype());
  const int64_t width = t.numel() / t.dim(0);
  for (size_t i = 0; i < rows.size(); ++i)
    std::memcpy(static_cast<char*>(r.raw()) + i * width * 4, static_cast<const char*>(t.raw()) + rows[i] * width * 4,
                width * 4);
  return r;
}

// The tokens whose output the real-size tests check against the double reference (which
// costs ~40 M double MACs a token there): first, middle, last. Every other row still runs on
// the device, so every kernel path and tile of the full T is exercised.
std::vector<int64_t> sampled_rows(int64_t T) {
  std::vector<int64_t> rows = {0};
  if (T > 2) rows.push_back(T / 2);
  if (T > 1) rows.push_back(T - 1);
  return rows;
}

// Sets an environment variable for a scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

double value(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

// ||got - want|| / ||want||; +inf on NaN or size mismatch.
double rel_err(const Tensor& got, const Tensor& want) {
  if (got.numel() != want.numel()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double a = value(got, i), b = value(want, i);
    if (!std::isfinite(a) || !std::isfinite(b)) return std::numeric_limits<double>::infinity();
    num += (a - b) * (a - b);
    den += b * b;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

class MoeCuda : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cuda_available() && !be_) be_ = make_cuda_backend({});
  }
  static void TearDownTestSuite() { be_.reset(); }
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: CUDA MoE tests skipped";
  }
  void TearDown() override {
    if (be_) be_->synchronize();
  }
  Backend& be() { return *be_; }
  Tensor dev(const Tensor& h, DType dt) { return be_->upload(h, dt); }
  Tensor dev_nan(const Shape& shape, DType dt) {
    Tensor h = Tensor::empty(shape, DType::F32);
    for (int64_t i = 0; i < h.numel(); ++i) h.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
    return be_->upload(h, dt);
  }
  Tensor ints(const std::vector<int32_t>& v, Shape shape) {
    Tensor h = Tensor::empty(std::move(shape), DType::I32);
    std::copy(v.begin(), v.end(), h.data<int32_t>());
    return be_->upload(h, DType::I32);
  }

  struct HostExperts {
    MoeExperts host, dev;
  };
  HostExperts experts(int E, int H, int I, int S, std::mt19937_64& rng) {
    HostExperts w;
    MoeExperts& h = w.host;
    h.num_experts = E;
    h.hidden = H;
    h.inter = I;
    h.gate_up.weight = rand_fast({int64_t{E} * 2 * I, H}, rng, 1.0f / std::sqrt(float(H)));
    h.down.weight = rand_fast({int64_t{E} * H, I}, rng, 1.0f / std::sqrt(float(I)));
    if (S > 0) {
      h.shared_inter = S;
      h.shared_gate_up.weight = rand_fast({2 * S, H}, rng, 1.0f / std::sqrt(float(H)));
      h.shared_down.weight = rand_fast({H, S}, rng, 1.0f / std::sqrt(float(S)));
      h.shared_gate = randn({H}, rng, 1.0f / std::sqrt(float(H)));
    }
    MoeExperts& d = w.dev;
    d = h;
    d.gate_up.weight = dev(h.gate_up.weight, DType::BF16);
    d.down.weight = dev(h.down.weight, DType::BF16);
    if (S > 0) {
      d.shared_gate_up.weight = dev(h.shared_gate_up.weight, DType::BF16);
      d.shared_down.weight = dev(h.shared_down.weight, DType::BF16);
      d.shared_gate = dev(h.shared_gate, DType::F32);
    }
    for (LinearWeight* lw : {&h.gate_up, &h.down, &h.shared_gate_up, &h.shared_down, &d.gate_up, &d.down,
                             &d.shared_gate_up, &d.shared_down})
      if (lw->weight.defined()) {
        lw->out_features = lw->weight.dim(0);
        lw->in_features = lw->weight.dim(1);
      }
    return w;
  }

  // Quantized experts (int8 / int4, or FP8 e4m3 for bits 0; group `group`, f16 or f32 scales;
  // the shared expert too): dev packed by the backend, host the dequantized f32 weights the
  // reference runs on.
  HostExperts quant_experts(int bits, int group, bool f16, int E, int H, int I, int S, std::mt19937_64& rng) {
    HostExperts w;
    test::quantized_experts(
        *be_, E, H, I, S, false,
        [&](int64_t rows, int64_t cols) {
          return bits ? test::random_quantized(rows, cols, bits, group, f16, rng)
                      : test::random_fp8(rows, cols, group, f16, rng);
        },
        w.dev, w.host);
    if (S > 0) {
      w.host.shared_gate = randn({H}, rng, 1.0f / std::sqrt(float(H)));
      w.dev.shared_gate = dev(w.host.shared_gate, DType::F32);
    }
    return w;
  }

  // Runs moe_experts on the device and the reference on the host; returns the relative error
  // over all rows, or over `rows` only (the reference then runs on those rows alone).
  double check_experts(const HostExperts& w, const Tensor& x, const Tensor& ids_h, const Tensor& wts_h,
                       const std::vector<int64_t>& rows = {}) {
    const int64_t T = x.dim(0), H = w.host.hidden;
    Tensor xd = dev(x, DType::BF16), out = dev_nan({T, H}, DType::BF16);
    Tensor ids = be().upload(ids_h, DType::I32), wts = dev(wts_h, DType::F32);
    be().moe_experts(out, xd, ids, wts, w.dev);
    Tensor got = be().download(out);
    if (!rows.empty()) {
      Tensor got_f32 = Tensor::empty({T, H}, DType::F32);
      for (int64_t i = 0; i < T * H; ++i) got_f32.data<float>()[i] = static_cast<float>(value(got, i));
      Tensor want = Tensor::empty({static_cast<int64_t>(rows.size()), H}, DType::F32);
      ref::moe_experts(want, take_rows(x, rows), take_rows(ids_h, rows), take_rows(wts_h, rows), w.host);
      return rel_err(take_rows(got_f32, rows), want);
    }
    Tensor want = Tensor::empty({T, H}, DType::F32);
    ref::moe_experts(want, x, ids_h, wts_h, w.host);
    return rel_err(got, want);
  }

  static inline std::unique_ptr<Backend> be_;
};

struct Routing {
  Tensor ids, weights;  // host
};

// f() once, or for a batch above the quantized decode path (T > 16) once per path of
// quantized experts (TLLM_MOE_QUANT forces each; by default such a batch takes the grouped
// GEMM over the codes, or for long batches the dequantized experts): the decode kernels (more
// passes of an expert's tokens), the grouped GEMM over the codes, and the experts dequantized
// to bf16 with the bf16 grouped GEMM.
template <typename F>
void for_each_prefill_path(int T, F&& f) {
  if (T <= 16) return f();  // kMoeQuantGemvMaxTokens (kernels/cuda/moe_ops.h)
  for (const char* path : {"decode", "fused", "dequant"}) {
    SCOPED_TRACE(path);
    ScopedEnv env("TLLM_MOE_QUANT", path);
    f();
  }
}
// f() once per choice of kernels for bf16 experts (TLLM_MOE_GEMM, moe_ops.h): the decode
// kernels up to 32 tokens (decode), the mma.sync grouped GEMM at every T (mma), and the
// default (auto: on Hopper the sm_90a grouped GEMM above 8 tokens).
template <typename F>
void for_each_bf16_path(F&& f) {
  for (const char* kernel : {"decode", "mma", "auto"}) {
    SCOPED_TRACE(kernel);
    ScopedEnv env("TLLM_MOE_GEMM", kernel);
    f();
  }
}
Routing route_host(const Tensor& logits, int k, bool renorm) {
  Routing r{Tensor::empty({logits.dim(0), k}, DType::I32), Tensor::empty({logits.dim(0), k}, DType::F32)};
  ref::moe_route(r.ids, r.weights, logits, renorm);
  return r;
}

TEST_F(MoeCuda, RouterMatchesReference) {
  std::mt19937_64 rng(1);
  for (auto [T, E, k] : std::vector<std::array<int, 3>>{
           {1, 8, 2}, {5, 60, 4}, {33, 128, 8}, {1000, 128, 8}, {7, 257, 9}, {3, 1, 1}, {2, 2048, 32}}) {
    for (DType dt : {DType::F32, DType::BF16})
      for (bool renorm : {false, true}) {
        SCOPED_TRACE(testing::Message() << "T=" << T << " E=" << E << " k=" << k << " " << dtype_name(dt)
                                        << " renorm=" << renorm);
        Tensor logits = randn({T, E}, rng, 2.0f);  // bf16-exact: both dtypes carry the same values
        Tensor ids = be().upload(Tensor::zeros({T, k}, DType::I32), DType::I32);
        Tensor wts = dev_nan({T, k}, DType::F32);
        be().moe_route(ids, wts, dev(logits, dt), renorm);
        Tensor got_ids = be().download(ids), got_w = be().download(wts);
        Routing want = route_host(logits, k, renorm);
        for (int64_t i = 0; i < T * k; ++i) {
          ASSERT_EQ(got_ids.data<int32_t>()[i], want.ids.data<int32_t>()[i]) << "at " << i;
          ASSERT_NEAR(got_w.data<float>()[i], want.weights.data<float>()[i], 1e-5 * want.weights.data<float>()[i] + 1e-9)
              << "at " << i;
        }
      }
  }
}

TEST_F(MoeCuda, RouterBreaksTiesByLowerExpertId) {
  Tensor logits = Tensor::empty({3, 8}, DType::F32);
  const std::vector<float> v = {1, 3, 3, 2, 3, 0, 3, 1, 5, 0, 4, 4, 1, 4, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0};
  std::copy(v.begin(), v.end(), logits.data<float>());
  for (bool renorm : {false, true}) {
    Tensor ids = be().upload(Tensor::zeros({3, 3}, DType::I32), DType::I32), wts = dev_nan({3, 3}, DType::F32);
    be().moe_route(ids, wts, dev(logits, DType::BF16), renorm);
    Tensor got = be().download(ids);
    EXPECT_EQ(std::vector<int32_t>(got.data<int32_t>(), got.data<int32_t>() + 9),
              (std::vector<int32_t>{1, 2, 4, 0, 2, 3, 0, 1, 2}));
  }
}

struct ExpertCase {
  int T, E, k, H, I, S;
};

TEST_F(MoeCuda, ExpertsMatchReferenceOnBothPaths) {
  std::mt19937_64 rng(2);
  // Every bf16 path (for_each_bf16_path): the decode kernels (NT = 1, 2, 4) up to T = 32, the
  // mma.sync grouped GEMM (partial tiles, partial column blocks when I % 64 or H % 128 != 0,
  // K tails when H or I % 32 != 0), and the default choice (on Hopper the sm_90a GEMM above
  // T = 8 where H, I >= 64).
  const std::vector<ExpertCase> cases = {
      {1, 8, 2, 64, 48, 0},     {2, 8, 2, 64, 48, 96},   {5, 60, 4, 128, 176, 256}, {8, 128, 8, 256, 96, 0},
      {9, 16, 4, 72, 40, 0},    {16, 8, 8, 64, 48, 32},  {17, 60, 4, 136, 88, 0},   {32, 128, 8, 128, 64, 0},
      {33, 8, 2, 64, 48, 96},   {33, 8, 8, 64, 48, 0},   {64, 60, 4, 200, 104, 0},  {100, 128, 8, 256, 96, 64},
      {257, 16, 2, 96, 136, 0}, {130, 4, 4, 48, 24, 0},
  };
  for (const ExpertCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " E=" << c.E << " k=" << c.k << " H=" << c.H << " I=" << c.I
                                    << " S=" << c.S);
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    Tensor x = randn({c.T, c.H}, rng);
    Routing r = route_host(randn({c.T, c.E}, rng, 2.0f), c.k, c.T % 2 == 1);
    for_each_bf16_path([&] { EXPECT_LT(check_experts(w, x, r.ids, r.weights), 8e-3); });
  }
}

TEST_F(MoeCuda, QuantizedExpertsMatchTheDequantizedReference) {
  std::mt19937_64 rng(12);
  // int4 / int8 codes, group sizes 32 / 64 / 128 / one group per row, f16 and f32 scales;
  // T <= 16: the quantized decode kernels (NT = 1, 2); T > 16: every path
  // (for_each_prefill_path), the decode kernels with NT = 4 and several passes of one expert's
  // tokens among them. K tails: H = 208 and I = 80 are not multiples of the 128- (int4) or
  // 64-column (int8) tiles; I = 80 and H = 208 leave the last column blocks of the grouped GEMM
  // partial.
  struct Case {
    int bits, group;
    bool f16;
    int T, E, k, H, I, S;
  };
  const std::vector<Case> cases = {
      {4, 32, true, 1, 8, 2, 64, 48, 0},      {4, 64, false, 3, 16, 4, 128, 64, 96},
      {4, 128, true, 9, 60, 4, 256, 176, 0},  {4, 0, true, 17, 8, 2, 208, 80, 0},
      {8, 0, true, 1, 8, 2, 64, 48, 0},       {8, 32, false, 8, 16, 4, 208, 80, 32},
      {8, 64, true, 40, 8, 8, 128, 64, 0},    {4, 32, true, 64, 8, 8, 128, 64, 0},
      {4, 64, true, 65, 16, 4, 128, 96, 0},   {8, 0, false, 200, 16, 2, 208, 80, 48},
      // FP8 (bits 0): e4m3 experts through the same kernels.
      {0, 128, false, 1, 8, 2, 256, 176, 0},  {0, 64, true, 9, 16, 4, 208, 80, 32},
      {0, 0, false, 40, 8, 8, 128, 64, 0},    {0, 32, false, 200, 16, 2, 128, 96, 48},
  };
  for (const Case& c : cases) {
    const int group = c.group ? c.group : 1 << 20;  // 0: one group per row
    SCOPED_TRACE(testing::Message() << (c.bits ? "int" + std::to_string(c.bits) : std::string("fp8")) << " group "
                                    << c.group << (c.f16 ? " f16" : " f32")
                                    << " T=" << c.T << " E=" << c.E << " k=" << c.k << " H=" << c.H << " I=" << c.I
                                    << " S=" << c.S);
    HostExperts w = quant_experts(c.bits, group, c.f16, c.E, c.H, c.I, c.S, rng);
    be().moe_reserve(256, c.k, w.dev);
    Tensor x = randn({c.T, c.H}, rng, 0.5f);
    Routing r = route_host(randn({c.T, c.E}, rng, 2.0f), c.k, c.T % 2 == 1);
    for_each_prefill_path(c.T, [&] { EXPECT_LT(check_experts(w, x, r.ids, r.weights), 8e-3); });
  }
  // Repeated ids: 16 pairs of T = 2 tokens on one expert (two passes of the NT = 1 kernel),
  // ids outside [0, E) contributing nothing; then at T = 70 (prefill), where one expert's
  // positions span several 64-position tiles and hold the same token more than once.
  for (int T : {2, 70}) {
    HostExperts w = quant_experts(4, 32, true, 6, 64, 32, 0, rng);
    Tensor x = randn({T, 64}, rng);
    Tensor ids = Tensor::empty({T, 8}, DType::I32), wts = randn({T, 8}, rng, 0.2f, 0.3f);
    for (int i = 0; i < T * 8; ++i) ids.data<int32_t>()[i] = (i % 11 == 5) ? -1 : (i % 13 == 7) ? 6 : (i % 3 == 0) ? 3 : i % 6;
    be().moe_reserve(256, 8, w.dev);
    for_each_prefill_path(T, [&] { EXPECT_LT(check_experts(w, x, ids, wts), 8e-3) << "repeated ids, T=" << T; });
  }
}

TEST_F(MoeCuda, QuantizedExpertsAtRealLayerSizes) {
  std::mt19937_64 rng(13);
  // Qwen3-30B-A3B's expert shapes (H 2048, I 768, top-8; 32 of its 128 experts) in int4 g128
  // and int8, at a decode batch and a prefill chunk; the reference on sampled rows.
  for (int bits : {4, 8, 0}) {  // 0: FP8 (Qwen3-30B-A3B-FP8's 128 x 128 blocks)
    HostExperts w = quant_experts(bits, 128, bits != 0, 32, 2048, 768, 0, rng);
    be().moe_reserve(256, 8, w.dev);
    for (int T : {1, 12, 100, 300}) {
      SCOPED_TRACE(testing::Message() << "int" << bits << " T=" << T);
      Tensor x = randn({T, 2048}, rng, 0.5f);
      Routing r = route_host(randn({T, 32}, rng, 2.0f), 8, true);
      for_each_prefill_path(T, [&] { EXPECT_LT(check_experts(w, x, r.ids, r.weights, sampled_rows(T)), 8e-3); });
    }
  }
  // int4 in groups of 32 at T = 24 (the decode kernels' 32-column form, whose partials take
  // 16.9 KB of static shared memory): the gate|up launch stages 32 KB of scales, under 48 KB
  // alone but not beside the static arrays, so it needs the opt-in too.
  HostExperts w = quant_experts(4, 32, true, 32, 2048, 768, 0, rng);
  be().moe_reserve(256, 8, w.dev);
  Tensor x = randn({24, 2048}, rng, 0.5f);
  Routing r = route_host(randn({24, 32}, rng, 2.0f), 8, true);
  for_each_prefill_path(24, [&] { EXPECT_LT(check_experts(w, x, r.ids, r.weights, sampled_rows(24)), 8e-3) << "int4 g32 T=24"; });
}

TEST_F(MoeCuda, ExpertsAtRealLayerSizes) {
  std::mt19937_64 rng(3);
  // Qwen3-30B-A3B (H 2048, I 768, 128 experts, top-8) and Qwen1.5-MoE-A2.7B (H 2048, I 1408,
  // 60 experts, top-4, shared expert 5632) at decode (NT = 1, 4 of the grouped GEMV) and
  // prefill batch sizes, on every bf16 path; one weight set per layer, the reference on sampled rows only (the
  // full double reference took 125 s on the H200 host).
  struct Layer {
    int E, k, H, I, S;
    std::vector<int> Ts;
  };
  for (const Layer& c : std::vector<Layer>{{128, 8, 2048, 768, 0, {1, 24, 48}}, {60, 4, 2048, 1408, 5632, {3, 40}}}) {
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    for (int T : c.Ts) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " E=" << c.E << " k=" << c.k << " I=" << c.I << " S=" << c.S);
      Tensor x = randn({T, c.H}, rng);
      Routing r = route_host(randn({T, c.E}, rng, 2.0f), c.k, c.S == 0);
      for_each_bf16_path([&] { EXPECT_LT(check_experts(w, x, r.ids, r.weights, sampled_rows(T)), 8e-3); });
    }
  }
}

// The sm_90a grouped GEMM (moe_gemm_sm90.cu, TMA + wgmma) forced by TLLM_MOE_GEMM=wgmma (at
// T = 20 in place of the decode kernels): against the double reference (every row, or sampled rows at the real layer sizes) and on
// every row against the mma.sync kernel (TLLM_MOE_GEMM=mma). Its units are 128 positions of
// one expert over moe_align's 64-position tiles, so the cases have experts with 1 to ~600
// positions (several units, the last one partial, a unit's rows running on into the next
// expert's or past the routed pairs), partial column blocks (I % 128, H % 256 != 0), K tails
// (H, I % 64 != 0), ids outside [0, E) and repeated ids, a shared expert, and the Qwen3-30B-A3B
// and Qwen1.5-MoE-A2.7B layer shapes. Then the clear error where it cannot run (H < 64).
TEST_F(MoeCuda, Sm90GroupedGemmMatchesTheReferenceAndTheMmaKernel) {
  if (!cuda::sm90a_available()) GTEST_SKIP() << "no sm_90 device or no sm_90a code in this build";
  std::mt19937_64 rng(21);
  auto run = [&](const HostExperts& w, const Tensor& x, const Tensor& ids, const Tensor& wts, bool sampled) {
    const int64_t T = x.dim(0);
    Tensor xd = dev(x, DType::BF16), a = dev_nan({T, w.host.hidden}, DType::BF16);
    Tensor b = dev_nan({T, w.host.hidden}, DType::BF16);
    Tensor ids_d = be().upload(ids, DType::I32), wts_d = dev(wts, DType::F32);
    {
      ScopedEnv env("TLLM_MOE_GEMM", "wgmma");
      EXPECT_LT(check_experts(w, x, ids, wts, sampled ? sampled_rows(T) : std::vector<int64_t>{}), 8e-3);
      be().moe_experts(a, xd, ids_d, wts_d, w.dev);
    }
    {
      ScopedEnv env("TLLM_MOE_GEMM", "mma");
      be().moe_experts(b, xd, ids_d, wts_d, w.dev);
    }
    EXPECT_LT(rel_err(be().download(a), be().download(b)), 5e-3) << "wgmma against mma, every row";
  };
  const std::vector<ExpertCase> cases = {
      {20, 8, 2, 64, 64, 0},       {33, 8, 2, 64, 64, 0},      {70, 2, 2, 64, 64, 0},      {300, 8, 4, 200, 136, 0},
      {513, 4, 2, 72, 264, 96},    {257, 60, 4, 136, 88, 0},   {1000, 16, 8, 128, 128, 0},
  };
  for (const ExpertCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " E=" << c.E << " k=" << c.k << " H=" << c.H << " I=" << c.I
                                    << " S=" << c.S);
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    be().moe_reserve(c.T, c.k, w.dev);
    Tensor x = randn({c.T, c.H}, rng);
    Routing r = route_host(randn({c.T, c.E}, rng, 2.0f), c.k, c.T % 2 == 1);
    run(w, x, r.ids, r.weights, false);
  }
  {  // repeated ids and ids outside [0, E): most pairs on expert 3 (several units), some on 6 (= E)
    const int T = 150;
    HostExperts w = experts(6, 64, 96, 0, rng);
    Tensor x = randn({T, 64}, rng);
    Tensor ids = Tensor::empty({T, 8}, DType::I32), wts = randn({T, 8}, rng, 0.2f, 0.3f);
    for (int i = 0; i < T * 8; ++i) ids.data<int32_t>()[i] = (i % 11 == 5) ? -1 : (i % 13 == 7) ? 6 : (i % 3 == 0) ? 3 : i % 6;
    be().moe_reserve(T, 8, w.dev);
    run(w, x, ids, wts, false);
  }
  struct Layer {
    int E, k, H, I, S, T;
  };
  for (const Layer& c : std::vector<Layer>{{128, 8, 2048, 768, 0, 600}, {60, 4, 2048, 1408, 5632, 300}}) {
    SCOPED_TRACE(testing::Message() << "T=" << c.T << " E=" << c.E << " k=" << c.k << " I=" << c.I << " S=" << c.S);
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    be().moe_reserve(c.T, c.k, w.dev);
    Tensor x = randn({c.T, c.H}, rng);
    Routing r = route_host(randn({c.T, c.E}, rng, 2.0f), c.k, c.S == 0);
    run(w, x, r.ids, r.weights, true);
  }
  {  // where it cannot run: a clear error naming the sizes, not a wrong answer
    HostExperts w = experts(8, 48, 64, 0, rng);
    Tensor x = dev(randn({40, 48}, rng), DType::BF16), out = be().empty({40, 48}, DType::BF16);
    Routing r = route_host(randn({40, 8}, rng, 2.0f), 2, false);
    Tensor ids = be().upload(r.ids, DType::I32), wts = dev(r.weights, DType::F32);
    ScopedEnv env("TLLM_MOE_GEMM", "wgmma");
    try {
      be().moe_experts(out, x, ids, wts, w.dev);
      ADD_FAILURE() << "TLLM_MOE_GEMM=wgmma with H = 48 ran";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find("H = 48"), std::string::npos) << e.what();
    }
  }
}

TEST_F(MoeCuda, ExpertsHandleDuplicateAndOutOfRangeIds) {
  std::mt19937_64 rng(4);
  // T = 2, k = 8 all on expert 3: 16 pairs for one expert, beyond one 8-token chunk of the
  // decode kernel; plus ids outside [0, E) that must contribute nothing. Then the same on the
  // GEMM path (T = 40).
  for (int T : {2, 40}) {
    HostExperts w = experts(6, 64, 32, 0, rng);
    Tensor x = randn({T, 64}, rng);
    Tensor ids = Tensor::empty({T, 8}, DType::I32), wts = randn({T, 8}, rng, 0.2f, 0.3f);
    for (int i = 0; i < T * 8; ++i) ids.data<int32_t>()[i] = (i % 11 == 5) ? -1 : (i % 13 == 7) ? 6 : 3;
    EXPECT_LT(check_experts(w, x, ids, wts), 8e-3) << "T=" << T;
  }
}

TEST_F(MoeCuda, CapturedGraphReplaysNewRouting) {
  std::mt19937_64 rng(5);
  const int T = 4, E = 16, k = 4, H = 128, I = 64;
  HostExperts w = experts(E, H, I, 96, rng);
  be().moe_reserve(64, k, w.dev);
  Tensor xd = be().empty({T, H}, DType::BF16), logits_d = be().empty({T, E}, DType::BF16);
  Tensor ids = be().empty({T, k}, DType::I32), wts = be().empty({T, k}, DType::F32), out = be().empty({T, H}, DType::BF16);
  auto load_inputs = [&](const Tensor& x, const Tensor& logits) {
    Tensor a = dev(x, DType::BF16), b = dev(logits, DType::BF16);
    be().copy(xd, a);
    be().copy(logits_d, b);
    be().synchronize();
  };
  Tensor x0 = randn({T, H}, rng), l0 = randn({T, E}, rng, 2.0f);
  load_inputs(x0, l0);
  auto graph = be().capture([&] {
    be().moe_route(ids, wts, logits_d, false);
    be().moe_experts(out, xd, ids, wts, w.dev);
  });
  ASSERT_NE(graph, nullptr);
  for (int rep = 0; rep < 3; ++rep) {
    Tensor x = randn({T, H}, rng), logits = randn({T, E}, rng, 2.0f);
    load_inputs(x, logits);
    graph->replay();
    be().synchronize();
    Routing r = route_host(logits, k, false);
    Tensor want = Tensor::empty({T, H}, DType::F32);
    ref::moe_experts(want, x, r.ids, r.weights, w.host);
    EXPECT_LT(rel_err(be().download(out), want), 8e-3) << "replay " << rep;
  }
}

TEST_F(MoeCuda, UnsupportedShapesAreClearErrors) {
  std::mt19937_64 rng(6);
  HostExperts w = experts(4, 60, 32, 0, rng);  // H = 60: not a multiple of 8
  Tensor x = dev(randn({2, 60}, rng), DType::BF16), out = be().empty({2, 60}, DType::BF16);
  Tensor ids = ints({0, 1, 2, 3}, {2, 2}), wts = dev(randn({2, 2}, rng), DType::F32);
  try {
    be().moe_experts(out, x, ids, wts, w.dev);
    ADD_FAILURE() << "no error for H = 60";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 8"), std::string::npos) << e.what();
  }
}

// --- the fused decode block (Backend::moe_block: router GEMV + top-k, gate|up, down + combine) ---

// Router logits in double, rounded to bf16 as the device stores them: [T, E] f32 (bf16-exact).
Tensor router_logits_host(const Tensor& x, const Tensor& router) {
  const int64_t T = x.dim(0), E = router.dim(0), H = x.dim(1);
  Tensor l = Tensor::empty({T, E}, DType::F32);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 0; e < E; ++e) {
      double d = 0;
      for (int64_t h = 0; h < H; ++h) d += double(x.data<float>()[t * H + h]) * router.data<float>()[e * H + h];
      l.data<float>()[t * E + e] = bf16_to_f32(f32_to_bf16(static_cast<float>(d)));
    }
  return l;
}

struct BlockResult {
  Tensor out, logits, ids, weights;  // host
};

class MoeBlockCuda : public MoeCuda {
 protected:
  LinearWeight router_dev(const Tensor& router_h) {
    LinearWeight r;
    r.weight = dev(router_h, DType::BF16);
    r.out_features = r.weight.dim(0);
    r.in_features = r.weight.dim(1);
    return r;
  }
  // One moe_block call (fused when T <= 16 and E <= 256; `unfused` forces the three-op sequence).
  BlockResult run_block(const HostExperts& w, const LinearWeight& router, const Tensor& x, int k, bool renorm,
                        DType logits_dtype = DType::BF16, bool unfused = false) {
    const int64_t T = x.dim(0), E = w.host.num_experts, H = w.host.hidden;
    Tensor xd = dev(x, DType::BF16), out = dev_nan({T, H}, DType::BF16), logits = dev_nan({T, E}, logits_dtype);
    Tensor ids = be().upload(Tensor::zeros({T, k}, DType::I32), DType::I32), wts = dev_nan({T, k}, DType::F32);
    if (unfused) be().Backend::moe_block(out, xd, router, w.dev, logits, ids, wts, renorm);
    else be().moe_block(out, xd, router, w.dev, logits, ids, wts, renorm);
    return {be().download(out), be().download(logits), be().download(ids), be().download(wts)};
  }
  // The block against the double references. Logits: within one bf16 rounding of the double
  // dot product. Routing: exactly ref::moe_route of the device's own logits (so a rounding
  // difference in a logit cannot flake the test). Output: ref::moe_experts of that routing.
  // `sampled`: the output reference on sampled_rows(T) only (real layer sizes).
  void check_block(const HostExperts& w, const Tensor& router_h, const Tensor& x, int k, bool renorm,
                   DType logits_dtype = DType::BF16, bool sampled = false) {
    const int64_t T = x.dim(0), E = router_h.dim(0), H = x.dim(1);
    BlockResult got = run_block(w, router_dev(router_h), x, k, renorm, logits_dtype);
    Tensor want_logits = router_logits_host(x, router_h);
    for (int64_t i = 0; i < T * E; ++i) {
      const double a = value(got.logits, i), b = want_logits.data<float>()[i];
      // One bf16 ulp (2^-7 relative at most), plus f32-vs-double summation error near 0.
      ASSERT_LE(std::fabs(a - b), std::fabs(b) * (1.0 / 128) + 1e-4) << "logit " << i;
    }
    Tensor logits_f32 = Tensor::empty({T, E}, DType::F32);
    for (int64_t i = 0; i < T * E; ++i) logits_f32.data<float>()[i] = static_cast<float>(value(got.logits, i));
    Routing r = route_host(logits_f32, k, renorm);
    for (int64_t i = 0; i < T * k; ++i) {
      ASSERT_EQ(got.ids.data<int32_t>()[i], r.ids.data<int32_t>()[i]) << "pair " << i;
      ASSERT_NEAR(got.weights.data<float>()[i], r.weights.data<float>()[i], 1e-5 * r.weights.data<float>()[i] + 1e-9)
          << "pair " << i;
    }
    if (sampled) {
      const std::vector<int64_t> rows = sampled_rows(T);
      Tensor got_f32 = Tensor::empty({T, H}, DType::F32);
      for (int64_t i = 0; i < T * H; ++i) got_f32.data<float>()[i] = static_cast<float>(value(got.out, i));
      Tensor want = Tensor::empty({static_cast<int64_t>(rows.size()), H}, DType::F32);
      ref::moe_experts(want, take_rows(x, rows), take_rows(r.ids, rows), take_rows(r.weights, rows), w.host);
      EXPECT_LT(rel_err(take_rows(got_f32, rows), want), 8e-3);
      return;
    }
    Tensor want = Tensor::empty({T, H}, DType::F32);
    ref::moe_experts(want, x, r.ids, r.weights, w.host);
    EXPECT_LT(rel_err(got.out, want), 8e-3);
  }
};

TEST_F(MoeBlockCuda, FusedBlockMatchesReference) {
  std::mt19937_64 rng(11);
  // The fused block up to its own limit (16 tokens), also where the sm_90a GEMM takes T > 8.
  ScopedEnv decode("TLLM_MOE_GEMM", "decode");
  // (E, k, H, I, S): small shapes with K tails (H, I not multiples of 32, H not of 16), few
  // and many experts, k up to 16, the shared expert; T = 1, 2, 8, 16 on the fused path and
  // 17, 40 through the fallback of the same call.
  struct Shape5 {
    int E, k, H, I, S;
  };
  for (const Shape5& c : std::vector<Shape5>{{8, 2, 64, 48, 0},
                                             {16, 4, 72, 40, 96},
                                             {60, 4, 128, 176, 256},
                                             {128, 8, 256, 96, 0},
                                             {256, 16, 136, 88, 0},
                                             {5, 5, 64, 32, 64}}) {
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    Tensor router = randn({c.E, c.H}, rng, 2.0f / std::sqrt(float(c.H)));
    for (int T : {1, 2, 8, 16, 17, 40})
      for (bool renorm : {false, true}) {
        SCOPED_TRACE(testing::Message() << "T=" << T << " E=" << c.E << " k=" << c.k << " H=" << c.H << " I=" << c.I
                                        << " S=" << c.S << " renorm=" << renorm);
        check_block(w, router, randn({T, c.H}, rng), c.k, renorm);
        if (HasFatalFailure()) return;
      }
  }
  // f32 router logits.
  HostExperts w = experts(32, 64, 48, 0, rng);
  Tensor router = randn({32, 64}, rng, 0.25f);
  check_block(w, router, randn({3, 64}, rng), 4, true, DType::F32);
}

TEST_F(MoeBlockCuda, FusedRouterWithQuantizedExperts) {
  std::mt19937_64 rng(14);
  // Quantized experts behind the fused router (T <= 16: router, the quantized decode kernels,
  // moe_combine) and the three-op sequence (T = 17, 70: the grouped GEMM over the codes), with
  // and without a quantized shared expert.
  struct Case {
    int bits, group, E, k, H, I, S;
  };
  for (const Case& c : std::vector<Case>{{4, 32, 16, 4, 128, 64, 96}, {8, 64, 60, 4, 256, 176, 0},
                                         {4, 128, 128, 8, 256, 96, 0}}) {
    HostExperts w = quant_experts(c.bits, c.group, true, c.E, c.H, c.I, c.S, rng);
    be().moe_reserve(128, c.k, w.dev);
    Tensor router = randn({c.E, c.H}, rng, 2.0f / std::sqrt(float(c.H)));
    for (int T : {1, 5, 16, 17, 70}) {
      SCOPED_TRACE(testing::Message() << "int" << c.bits << " g" << c.group << " T=" << T << " E=" << c.E
                                      << " k=" << c.k << " H=" << c.H << " I=" << c.I << " S=" << c.S);
      check_block(w, router, randn({T, c.H}, rng, 0.5f), c.k, T % 2 == 0);
      if (HasFatalFailure()) return;
    }
  }
}

TEST_F(MoeBlockCuda, FusedBlockAtRealLayerSizes) {
  std::mt19937_64 rng(12);
  // Qwen3-30B-A3B (128 experts top-8, norm_topk_prob) and Qwen1.5-MoE-A2.7B (60 top-4 +
  // shared expert 5632, no renormalisation) at decode batch sizes.
  struct Layer {
    int E, k, H, I, S;
    bool renorm;
  };
  for (const Layer& c : std::vector<Layer>{{128, 8, 2048, 768, 0, true}, {60, 4, 2048, 1408, 5632, false}}) {
    HostExperts w = experts(c.E, c.H, c.I, c.S, rng);
    Tensor router = randn({c.E, c.H}, rng, 1.0f / std::sqrt(float(c.H)));
    for (int T : {1, 8, 16}) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " E=" << c.E << " k=" << c.k << " S=" << c.S);
      check_block(w, router, randn({T, c.H}, rng), c.k, c.renorm, DType::BF16, /*sampled=*/true);
    }
  }
}

TEST_F(MoeBlockCuda, RouterTiesGoToTheLowerExpertId) {
  std::mt19937_64 rng(13);
  // Rows e and e + 8 of the router are equal, so every logit appears twice (bit-identical on
  // the device: the same row sums in the same order); k = 5 splits a tied pair at the
  // boundary. Top-k must take the lower id first, as the reference does.
  const int E = 16, H = 128, k = 5;
  HostExperts w = experts(E, H, 64, 0, rng);
  Tensor router = randn({E, H}, rng, 0.2f);
  for (int e = 0; e < 8; ++e)
    for (int h = 0; h < H; ++h) router.data<float>()[(e + 8) * H + h] = router.data<float>()[e * H + h];
  for (int T : {1, 4, 16})
    for (bool renorm : {false, true}) {
      SCOPED_TRACE(testing::Message() << "T=" << T << " renorm=" << renorm);
      Tensor x = randn({T, H}, rng);
      check_block(w, router, x, k, renorm);
      BlockResult got = run_block(w, router_dev(router), x, k, renorm);
      for (int t = 0; t < T; ++t) {
        // The tie partner of every chosen id < 8 that is not itself chosen comes later.
        for (int j = 0; j < k; ++j) {
          const int id = got.ids.data<int32_t>()[t * k + j];
          if (id >= 8) {
            bool lower_first = false;
            for (int i = 0; i < j; ++i) lower_first |= got.ids.data<int32_t>()[t * k + i] == id - 8;
            EXPECT_TRUE(lower_first) << "token " << t << ": expert " << id << " chosen before its tie " << id - 8;
          }
        }
      }
    }
}

TEST_F(MoeBlockCuda, FusedRouterMatchesMoeRouteBitForBitWithTiesAndNaN) {
  std::mt19937_64 rng(16);
  // The fused router's rank-based top-k against moe_route's k arg-max rounds on the logits
  // the fused kernel stored: ids and weight bits must agree exactly (the two share the
  // softmax code and sum the renormalisation in the same order). E not a multiple of 32
  // (40: a cluster of 3 blocks; 200: 8 blocks, warps with two rows); rows e and e + E/2 of
  // the router equal (ties between bit-identical logits); one token's x holds a NaN, so all
  // its logits and probabilities are NaN (ids 0..k-1 as torch orders NaN, NaN weights).
  const int H = 64, k = 6, nan_token = 2;
  for (int E : {40, 200}) {
    HostExperts w = experts(E, H, 32, 0, rng);
    Tensor router_h = randn({E, H}, rng, 0.2f);
    for (int e = 0; e < E / 2; ++e)
      for (int h = 0; h < H; ++h) router_h.data<float>()[(e + E / 2) * H + h] = router_h.data<float>()[e * H + h];
    const LinearWeight router = router_dev(router_h);
    for (int T : {3, 8, 16})
      for (DType dt : {DType::BF16, DType::F32})
        for (bool renorm : {false, true}) {
          SCOPED_TRACE(testing::Message() << "E=" << E << " T=" << T << " " << dtype_name(dt) << " renorm=" << renorm);
          Tensor x = randn({T, H}, rng);
          x.data<float>()[nan_token * H + 5] = std::numeric_limits<float>::quiet_NaN();
          BlockResult got = run_block(w, router, x, k, renorm, dt);
          Tensor ids = be().upload(Tensor::zeros({T, k}, DType::I32), DType::I32), wts = dev_nan({T, k}, DType::F32);
          be().moe_route(ids, wts, be().upload(got.logits, dt), renorm);
          Tensor want_ids = be().download(ids), want_w = be().download(wts);
          ASSERT_EQ(std::memcmp(got.ids.raw(), want_ids.raw(), T * k * 4), 0);
          for (int i = 0; i < T * k; ++i) {  // bits equal, or both NaN
            const float a = got.weights.data<float>()[i], b = want_w.data<float>()[i];
            ASSERT_TRUE(std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b))) << "pair " << i << ": " << a
                                                                                          << " vs " << b;
          }
          for (int j = 0; j < k; ++j) {
            EXPECT_EQ(got.ids.data<int32_t>()[nan_token * k + j], j);
            EXPECT_TRUE(std::isnan(got.weights.data<float>()[nan_token * k + j]));
          }
          // The other tokens: routing and output as the reference (the grouping metadata is
          // what gate|up and down_combine read).
          std::vector<int64_t> rows;
          for (int t = 0; t < T; ++t)
            if (t != nan_token) rows.push_back(t);
          Tensor logits_f32 = Tensor::empty({T, E}, DType::F32);
          for (int64_t i = 0; i < T * E; ++i) logits_f32.data<float>()[i] = static_cast<float>(value(got.logits, i));
          Routing r = route_host(take_rows(logits_f32, rows), k, renorm);
          Tensor got_ids = take_rows(got.ids, rows);
          for (int64_t i = 0; i < got_ids.numel(); ++i)
            ASSERT_EQ(got_ids.data<int32_t>()[i], r.ids.data<int32_t>()[i]) << "pair " << i;
          Tensor got_f32 = Tensor::empty({T, H}, DType::F32);
          for (int64_t i = 0; i < T * H; ++i) got_f32.data<float>()[i] = static_cast<float>(value(got.out, i));
          Tensor want = Tensor::empty({static_cast<int64_t>(rows.size()), H}, DType::F32);
          ref::moe_experts(want, take_rows(x, rows), r.ids, r.weights, w.host);
          EXPECT_LT(rel_err(take_rows(got_f32, rows), want), 8e-3);
        }
  }
}

TEST_F(MoeBlockCuda, FusedAgreesWithUnfusedAndIsDeterministic) {
  std::mt19937_64 rng(14);
  // The fused block up to its own limit (16 tokens), also where the sm_90a GEMM takes T > 8.
  ScopedEnv decode("TLLM_MOE_GEMM", "decode");
  const int E = 64, H = 256, I = 128, k = 8;
  HostExperts w = experts(E, H, I, 192, rng);
  Tensor router_h = randn({E, H}, rng, 1.0f / std::sqrt(float(H)));
  LinearWeight router = router_dev(router_h);
  for (int T : {1, 5, 16}) {
    Tensor x = randn({T, H}, rng);
    BlockResult a = run_block(w, router, x, k, true), b = run_block(w, router, x, k, true);
    BlockResult u = run_block(w, router, x, k, true, DType::BF16, /*unfused=*/true);
    for (int64_t i = 0; i < a.out.numel(); ++i)
      ASSERT_EQ(a.out.data<uint16_t>()[i], b.out.data<uint16_t>()[i]) << "T=" << T << ": run-to-run diff at " << i;
    // Same routing as the three-op path (its router linear may round a logit differently,
    // which could only matter at a near-tie; random logits have none at this size).
    for (int64_t i = 0; i < T * k; ++i) EXPECT_EQ(a.ids.data<int32_t>()[i], u.ids.data<int32_t>()[i]) << "T=" << T;
    EXPECT_LT(rel_err(a.out, u.out), 4e-3) << "T=" << T;
  }
}

TEST_F(MoeBlockCuda, CapturedGraphOfSeveralBlocksReplays) {
  std::mt19937_64 rng(15);
  // The fused block up to its own limit (16 tokens), also where the sm_90a GEMM takes T > 8.
  ScopedEnv decode("TLLM_MOE_GEMM", "decode");
  // Three blocks in one graph (as layers of a decode step), sharing the scratch and the
  // router's done counter; replays over new inputs must match the reference each time.
  const int E = 32, H = 128, I = 64, k = 4, S = 96;
  for (int T : {1, 16}) {
    HostExperts w = experts(E, H, I, S, rng);
    Tensor router_h = randn({E, H}, rng, 1.0f / std::sqrt(float(H)));
    LinearWeight router = router_dev(router_h);
    be().moe_reserve(T, k, w.dev);
    Tensor x0 = be().empty({T, H}, DType::BF16), x1 = be().empty({T, H}, DType::BF16);
    Tensor x2 = be().empty({T, H}, DType::BF16), x3 = be().empty({T, H}, DType::BF16);
    Tensor logits = be().empty({T, E}, DType::BF16), ids = be().empty({T, k}, DType::I32);
    Tensor wts = be().empty({T, k}, DType::F32);
    auto graph = be().capture([&] {
      be().moe_block(x1, x0, router, w.dev, logits, ids, wts, true);
      be().moe_block(x2, x1, router, w.dev, logits, ids, wts, true);
      be().moe_block(x3, x2, router, w.dev, logits, ids, wts, true);
    });
    ASSERT_NE(graph, nullptr);
    for (int rep = 0; rep < 3; ++rep) {
      Tensor x = randn({T, H}, rng);
      Tensor xd = dev(x, DType::BF16);
      be().copy(x0, xd);
      graph->replay();
      be().synchronize();
      // Reference of the chain, each block's input the device's previous output (bf16).
      Tensor in = x;
      Tensor got;
      for (Tensor* y : {&x1, &x2, &x3}) {
        got = be().download(*y);
        Routing r = route_host(router_logits_host(in, router_h), k, true);
        Tensor want = Tensor::empty({T, H}, DType::F32);
        ref::moe_experts(want, in, r.ids, r.weights, w.host);
        EXPECT_LT(rel_err(got, want), 8e-3) << "T=" << T << " replay " << rep;
        in = Tensor::empty({T, H}, DType::F32);
        for (int64_t i = 0; i < T * H; ++i) in.data<float>()[i] = static_cast<float>(value(got, i));
      }
    }
  }
}

// --- the MoE test models on the GPU ----------------------------------------------------

namespace fs = std::filesystem;

// The checkout's root: $TLLM_TEST_SOURCE_DIR, else the build-time source dir, else the
// working directory (the device machine runs these binaries from a copy of the checkout).
fs::path source_dir() {
  if (const char* env = std::getenv("TLLM_TEST_SOURCE_DIR")) return env;
  if (fs::exists(fs::path(TLLM_SOURCE_DIR) / "tests/data/models")) return TLLM_SOURCE_DIR;
  return fs::current_path();
}

TEST_F(MoeCuda, TestModelsFollowTheGoldensInBf16) {
  // bf16 activations and weights against HF float32 goldens. Near-ties (in the router as in
  // the logits) may flip in bf16, so the checks are statistical: the mean difference of the
  // golden's top-5 log-probs over all prompt positions is small (a wrong expert or weight
  // gives differences of order 1 everywhere), and the greedy tokens agree up to the first
  // step where the golden's margin over the runner-up is not clear (> 0.5).
  for (const std::string name : {"qwen3_moe_hd64"}) {  // head_dim 64: the CUDA attention head dims
    const fs::path dir = source_dir() / "tests/data/models" / name;
    std::ifstream f(dir / "golden.json");
    ASSERT_TRUE(f.good()) << dir;
    const nlohmann::json g = nlohmann::json::parse(f);
    EngineConfig c;
    c.model_dir = dir.string();
    c.device = "cuda";
    c.skip_tokenizer_init = true;
    c.num_kv_blocks = 256;
    c.enable_prefix_caching = false;
    LLMEngine engine(c);
    for (const auto& cs : g["cases"]) {
      const std::vector<int32_t> prompt = cs["prompt"].get<std::vector<int32_t>>();
      const std::vector<int32_t> greedy = cs["greedy"].get<std::vector<int32_t>>();
      SamplingParams p;
      p.temperature = 0.0f;
      p.max_tokens = static_cast<int>(greedy.size());
      p.ignore_eos = true;
      p.prompt_logprobs = 20;
      p.detokenize = false;
      auto out = engine.generate({prompt}, {p});
      size_t agree = 0;
      while (agree < greedy.size() && out[0].token_ids[agree] == greedy[agree]) ++agree;
      // Greedy steps while the golden's margin over the runner-up is clear (one sequence:
      // its decode steps run through the one-kernel decoder stack where the backend takes it).
      for (size_t st = 0; st < greedy.size(); ++st) {
        const auto& top = cs["steps"][st]["top"];
        if (top[0][1].get<double>() - top[1][1].get<double>() <= 0.5) break;
        ASSERT_LT(st, out[0].token_ids.size());
        EXPECT_EQ(out[0].token_ids[st], greedy[st]) << name << " prompt of " << prompt.size() << " step " << st;
      }
      double sum = 0, worst = 0;
      int n = 0;
      const auto& pl = *out[0].prompt_logprobs;
      for (size_t j = 1; j < prompt.size(); ++j) {
        const auto& ref_top = cs["prompt_top"][j - 1]["top"];
        std::map<int32_t, float> mine;
        for (auto& [id, lp] : pl[j]->top) mine[id] = lp;
        for (int i = 0; i < 5; ++i) {
          const int32_t id = ref_top[i][0].get<int32_t>();
          const double d = mine.count(id) ? std::fabs(mine[id] - ref_top[i][1].get<double>()) : 1.0;
          sum += d;
          worst = std::max(worst, d);
          ++n;
        }
      }
      // Relative to HF's own bf16 error on this model (recorded in the goldens); random tiny
      // models have large logits, so bf16 errors of ~0.1 are normal there.
      const double hf_mean = cs.contains("hf_bf16_err") ? cs["hf_bf16_err"]["mean"].get<double>() : 0.066;
      EXPECT_LT(sum / n, 1.5 * hf_mean + 0.01)
          << name << " prompt of " << prompt.size() << ": mean top-5 prompt log-prob difference";
      std::printf("[moe cuda] %s prompt %zu: %zu/%zu greedy tokens agree; top-5 prompt logprob diff mean %.4f worst %.4f\n",
                  name.c_str(), prompt.size(), agree, greedy.size(), sum / n, worst);
    }
  }
}

TEST_F(MoeCuda, QuantizedTestModelAgreesWithTheCpu) {
  // The Qwen3-MoE test model quantized on load (every linear and the experts; int8, and int4
  // in groups of 32) on the GPU (bf16 activations) against the same codes on the CPU with f32
  // activations: the golden prompts (18 and 40 tokens) and a 100-token one (their prefills take
  // the grouped GEMM over the codes, the decode steps the quantized decode kernels).
  const fs::path dir = source_dir() / "tests/data/models/qwen3_moe_hd64";
  std::ifstream f(dir / "golden.json");
  ASSERT_TRUE(f.good()) << dir;
  const nlohmann::json g = nlohmann::json::parse(f);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& cs : g["cases"]) prompts.push_back(cs["prompt"].get<std::vector<int32_t>>());
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt.push_back(3 + (i * 37 + i * i) % 380);
  prompts.push_back(long_prompt);
  const double hf_mean = g["cases"][0].contains("hf_bf16_err") ? g["cases"][0]["hf_bf16_err"]["mean"].get<double>() : 0.066;
  for (const std::string q : {"int8", "int4"}) {
    auto run = [&](const std::string& device) {
      EngineConfig c;
      c.model_dir = dir.string();
      c.device = device;
      if (device == "cpu") c.dtype = "float32";
      c.quantization = q;
      c.quant_group_size = 32;
      c.skip_tokenizer_init = true;
      c.num_kv_blocks = 256;
      c.enable_prefix_caching = false;
      LLMEngine engine(c);
      std::vector<SamplingParams> ps(prompts.size());
      for (SamplingParams& p : ps) {
        p.temperature = 0.0f;
        p.max_tokens = 4;
        p.ignore_eos = true;
        p.prompt_logprobs = 20;
        p.logprobs = 2;
        p.detokenize = false;
      }
      return engine.generate(prompts, ps);
    };
    const auto cpu = run("cpu"), gpu = run("cuda");
    ASSERT_EQ(cpu.size(), prompts.size());
    ASSERT_EQ(gpu.size(), prompts.size());
    // Per prompt position (teacher-forced: the same context on both), the mean difference of
    // the CPU's top-5 log-probs. Activations in bf16 against f32 move a router logit by a
    // bf16 step; where two experts are that close the other one is chosen, and in these tiny
    // random models that moves the position's log-probs, and through its keys every later
    // position's, by up to ~2-5 (H200, run 212: one of the six prompt / width pairs had a
    // quarter of its positions beyond 0.5). So the checks pool every prompt of a width: the
    // median position at bf16 level (as HF's own bf16 error) and 90% of positions within
    // 0.5; wrong codes, scales or experts move every position of every prompt.
    std::vector<double> diffs;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto& pc = *cpu[i].prompt_logprobs;
      const auto& pg = *gpu[i].prompt_logprobs;
      double worst = 0;
      for (size_t j = 1; j < prompts[i].size(); ++j) {
        std::map<int32_t, float> mine(pg[j]->top.begin(), pg[j]->top.end());
        double sum = 0;
        int n = 0;
        for (const auto& [id, lp] : pc[j]->top) {
          if (n == 5) break;
          sum += mine.count(id) ? std::fabs(mine[id] - lp) : 1.0;
          ++n;
        }
        diffs.push_back(sum / std::max(n, 1));
        worst = std::max(worst, diffs.back());
      }
      // The first generated token (the same context on both) where the CPU's margin is clear.
      ASSERT_FALSE(cpu[i].logprobs.empty());
      ASSERT_FALSE(gpu[i].token_ids.empty());
      const auto& top = cpu[i].logprobs[0].top;
      if (top.size() >= 2 && top[0].second - top[1].second > 0.5) {
        EXPECT_EQ(gpu[i].token_ids[0], cpu[i].token_ids[0]) << q << " prompt of " << prompts[i].size()
                                                            << ": first generated token";
      }
      std::printf("[moe cuda %s] prompt %zu: worst position's top-5 prompt logprob diff %.4f\n", q.c_str(),
                  prompts[i].size(), worst);
    }
    ASSERT_FALSE(diffs.empty());
    std::vector<double> sorted = diffs;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    const double close = static_cast<double>(std::count_if(diffs.begin(), diffs.end(), [](double d) { return d <= 0.5; })) /
                         static_cast<double>(diffs.size());
    EXPECT_LT(median, 1.5 * hf_mean + 0.01) << q << ": median position's top-5 log-prob difference, GPU against CPU";
    EXPECT_GE(close, 0.9) << q << ": share of prompt positions within 0.5";
    std::printf("[moe cuda %s] %zu positions: median %.4f, %.1f%% within 0.5\n", q.c_str(), diffs.size(), median,
                100 * close);
  }
}

}  // namespace
}  // namespace tllm
