// linear: the skinny-GEMM kernel (T <= 32) and cuBLASLt, bf16 and f32 outputs, with and
// without bias, at odd shapes.
#include <cstring>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

using CudaLinear = CudaTest;

enum class Path { Auto, Gemv, Cublas };

void run_case(CudaTest& t, cuda::CudaBackend& be, std::mt19937_64& rng, int T, int N, int K, bool bias,
              DType out_dt, Path path, double tol) {
  Tensor x = randn({T, K}, rng, DType::BF16);
  LinearWeight hw;
  hw.weight = randn({N, K}, rng, DType::BF16, 1.0f / std::sqrt(static_cast<float>(K)));
  if (bias) hw.bias = randn({N}, rng, DType::F32, 0.5f);
  hw.out_features = N;
  hw.in_features = K;
  LinearWeight dw = hw;
  dw.weight = be.upload(hw.weight, DType::BF16);
  if (bias) dw.bias = be.upload(hw.bias, DType::F32);
  Tensor dx = be.upload(x, DType::BF16);
  Tensor out = Tensor::empty({T, N}, out_dt);
  poison(out);
  Tensor dout = be.upload(out, out_dt);
  switch (path) {
    case Path::Auto: be.linear(dout, dx, dw); break;
    case Path::Gemv: be.linear_gemv(dout, dx, dw); break;
    case Path::Cublas: be.linear_cublas(dout, dx, dw); break;
  }
  Tensor want = Tensor::empty({T, N}, DType::F32);
  ref::linear(want, x, hw);
  const double err = rel_err(be.download(dout), want);
  EXPECT_LT(err, tol) << "T=" << T << " N=" << N << " K=" << K << " bias=" << bias << " out "
                      << dtype_name(out_dt) << " path " << static_cast<int>(path);
}

TEST_F(CudaLinear, SkinnyGemmMatchesReference) {
  std::mt19937_64 rng(11);
  const std::vector<std::pair<int, int>> nk = {{1, 8},     {7, 64},    {33, 72},  {100, 136}, {257, 520},
                                               {1000, 896}, {300, 3584}, {65, 4104}, {17, 40},
                                               {4500, 520}, {4500, 3080}};  // >= 2 blocks per SM: 4-warp blocks at K >= 3072
  // T = 2..32 take the batched launch shapes (gemv.cu, gemv_cfg): x a group ahead, 16-warp
  // blocks for grids below the SM count, 2 and 4 token tiles.
  for (int T : {1, 2, 3, 5, 8, 9, 13, 16, 17, 24, 31, 32})
    for (auto [N, K] : nk) run_case(*this, be(), rng, T, N, K, T % 2 == 1, DType::BF16, Path::Gemv, 8e-3);
  for (int T : {1, 11, 29}) run_case(*this, be(), rng, T, 513, 256, true, DType::F32, Path::Gemv, 1e-4);
  // A vocabulary-sized grid at a short K (>= 32 blocks per SM on a 132-SM GPU: 4-warp blocks),
  // the logits' f32 output and bf16.
  for (int T : {1, 16}) run_case(*this, be(), rng, T, 68000, 896, false, DType::F32, Path::Gemv, 1e-4);
  run_case(*this, be(), rng, 8, 68000 + 9, 1544, true, DType::BF16, Path::Gemv, 8e-3);
}

TEST_F(CudaLinear, CublasMatchesReference) {
  std::mt19937_64 rng(12);
  const std::vector<std::pair<int, int>> nk = {{7, 64}, {33, 72}, {257, 520}, {1000, 896}, {13, 37}, {101, 101}};
  for (int T : {1, 5, 16, 17, 33, 128})
    for (auto [N, K] : nk) run_case(*this, be(), rng, T, N, K, T % 2 == 0, DType::BF16, Path::Cublas, 8e-3);
  for (int T : {3, 70}) {
    run_case(*this, be(), rng, T, 129, 200, true, DType::F32, Path::Cublas, 1e-4);
    run_case(*this, be(), rng, T, 129, 200, false, DType::F32, Path::Cublas, 1e-4);
  }
}

// The fused decoder ops must give exactly the bits of the unfused ones at every T (the
// fused paths: linear_silu_mul for T <= 8, linear_residual_norm for T <= 4; larger T falls
// back) and the float reference within bf16 rounding.
LinearWeight random_weight(cuda::CudaBackend& be, std::mt19937_64& rng, int N, int K, bool bias, LinearWeight& host) {
  host.weight = randn({N, K}, rng, DType::BF16, 1.0f / std::sqrt(static_cast<float>(K)));
  if (bias) host.bias = randn({N}, rng, DType::F32, 0.5f);
  host.out_features = N;
  host.in_features = K;
  LinearWeight dw = host;
  dw.weight = be.upload(host.weight, DType::BF16);
  if (bias) dw.bias = be.upload(host.bias, DType::F32);
  return dw;
}

// Prefill-sized GEMMs go through the autotuner (kernels/cuda/linear.h): the first call of a
// token bucket times cuBLASLt's candidates, later calls of the bucket reuse the winner. Every
// call matches the float reference, and a repeated call gives the same bits (the algorithm
// stays fixed once chosen), including for a second T of the same bucket (1,024 and 1,100 too:
// with TLLM_GEMM_NO_WORKSPACE_MIN_T=1024 their plans take algorithms without a workspace).
TEST_F(CudaLinear, AutotunedGemmMatchesReferenceAndRepeats) {
  std::mt19937_64 rng(13);
  for (auto [N, K] : std::vector<std::pair<int, int>>{{520, 896}, {264, 1544}}) {
    for (int T : {256, 300, 512, 1024, 1100}) {
      LinearWeight hw;
      LinearWeight dw = random_weight(be(), rng, N, K, T == 300 || T == 1100, hw);
      Tensor x = randn({T, K}, rng, DType::BF16);
      Tensor dx = be().upload(x, DType::BF16);
      Tensor a = dev_poisoned({T, N}, DType::BF16), b = dev_poisoned({T, N}, DType::BF16);
      be().linear_cublas(a, dx, dw);
      be().linear_cublas(b, dx, dw);
      Tensor want = Tensor::empty({T, N}, DType::F32);
      ref::linear(want, x, hw);
      EXPECT_LT(rel_err(be().download(a), want), 8e-3) << "T=" << T << " N=" << N << " K=" << K;
      expect_same_bits(be(), a, b, "repeat T=" + std::to_string(T));
    }
  }
}

TEST_F(CudaLinear, LinearSiluMulMatchesUnfused) {
  std::mt19937_64 rng(14);
  // (I, K): intermediate sizes of the 0.5B/7B shapes (scaled) and odd ones.
  const std::vector<std::pair<int, int>> ik = {{4864, 896}, {7, 64}, {33, 72}, {100, 136}, {1000, 3584}, {2200, 3080}};
  for (int T : {1, 2, 3, 8, 9, 16, 17, 32})
    for (auto [I, K] : ik) {
      const std::string what = "T=" + std::to_string(T) + " I=" + std::to_string(I) + " K=" + std::to_string(K);
      Tensor x = randn({T, K}, rng, DType::BF16, 2.0f);
      LinearWeight hw;
      LinearWeight dw = random_weight(be(), rng, 2 * I, K, T == 3, hw);
      Tensor dx = dev(x);
      Tensor gu1 = dev_poisoned({T, 2 * I}, DType::BF16), gu2 = dev_poisoned({T, 2 * I}, DType::BF16);
      Tensor a1 = dev_poisoned({T, I}, DType::BF16), a2 = dev_poisoned({T, I}, DType::BF16);
      be().linear_silu_mul(a1, dx, dw, gu1);
      be().linear(gu2, dx, dw);
      be().silu_mul(a2, gu2);
      expect_same_bits(be(), a1, a2, what);
      Tensor gu = Tensor::empty({T, 2 * I}, DType::F32), want = Tensor::empty({T, I}, DType::F32);
      ref::linear(gu, x, hw);
      ref::silu_mul(want, gu);
      EXPECT_LT(rel_err(host(a1), want), 1e-2) << what;
    }
}

// Prefill's gate|up GEMM with the activation in its epilogue (gemm_silu_sm90.cu, Hopper): the
// float reference within bf16 rounding, and the unfused path (cuBLASLt gate|up, then silu_mul)
// within the flips of a bf16 rounding that a different summation order makes. Odd shapes: I
// not a multiple of the 128-column tile (the gate rows then read into the up rows, masked),
// K not a multiple of the 64-wide k step (zero-filled), T not a multiple of 128 rows, and a
// grid with more tiles than SMs (persistent blocks, ring positions carried over tiles).
TEST_F(CudaLinear, GemmSiluSm90MatchesReference) {
  if (!cuda::sm90a_available()) GTEST_SKIP() << "no sm_90 device or no sm_90a code in this build";
  std::mt19937_64 rng(16);
  struct Case { int T, I, K; };
  for (const Case c : {Case{1, 128, 64}, Case{33, 200, 72}, Case{130, 256, 136}, Case{257, 1000, 896},
                       Case{300, 384, 1000}, Case{1100, 4864, 64}}) {
    const std::string what = "T=" + std::to_string(c.T) + " I=" + std::to_string(c.I) + " K=" + std::to_string(c.K);
    Tensor x = randn({c.T, c.K}, rng, DType::BF16, 2.0f);
    LinearWeight hw;
    LinearWeight dw = random_weight(be(), rng, 2 * c.I, c.K, false, hw);
    Tensor dx = dev(x);
    Tensor a1 = dev_poisoned({c.T, c.I}, DType::BF16), a2 = dev_poisoned({c.T, c.I}, DType::BF16);
    Tensor gu = dev_poisoned({c.T, 2 * c.I}, DType::BF16);
    ASSERT_TRUE(cuda::gemm_silu_sm90_supported(c.T, c.I, c.K, a1.raw(), dx.raw(), dw.weight.raw())) << what;
    cuda::gemm_silu_sm90(a1.data<cuda::bf16>(), dx.data<cuda::bf16>(), dw.weight.data<cuda::bf16>(), c.T, c.I, c.K, be().num_sms(),
                         be().stream());
    be().linear_cublas(gu, dx, dw);
    be().silu_mul(a2, gu);
    Tensor gu_ref = Tensor::empty({c.T, 2 * c.I}, DType::F32), want = Tensor::empty({c.T, c.I}, DType::F32);
    ref::linear(gu_ref, x, hw);
    ref::silu_mul(want, gu_ref);
    const Tensor got = host(a1);
    EXPECT_LT(rel_err(got, want), 1e-2) << what;
    EXPECT_LT(rel_err(got, as_f32(host(a2))), 5e-3) << what << ": against the unfused path";
  }
}

TEST_F(CudaLinear, LinearResidualNormMatchesUnfused) {
  std::mt19937_64 rng(15);
  // (N = hidden, K): the norm needs N % 8 == 0.
  // 5120 x 3072: a shape whose plain GEMV takes 4-warp blocks on a 132-SM GPU (the fused path
  // then steps aside, the bits stay those of the unfused ops).
  const std::vector<std::pair<int, int>> nk = {{64, 64}, {896, 4864}, {104, 136}, {3584, 1000}, {2048, 768}, {5120, 3072}};
  for (int T : {1, 2, 3, 4, 5, 8, 16, 24, 32})
    for (auto [N, K] : nk) {
      const std::string what = "T=" + std::to_string(T) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
      Tensor in = randn({T, K}, rng, DType::BF16, 2.0f);
      Tensor res = randn({T, N}, rng, DType::BF16, 1.0f);
      Tensor nw = randn({N}, rng, DType::F32, 1.0f);
      LinearWeight hw;
      LinearWeight dw = random_weight(be(), rng, N, K, T % 2 == 1, hw);
      Tensor din = dev(in), dnw = dev(nw);
      Tensor r1 = dev(res), r2 = dev(res);
      Tensor h1 = dev_poisoned({T, N}, DType::BF16), h2 = dev_poisoned({T, N}, DType::BF16);
      Tensor o1 = dev_poisoned({T, N}, DType::BF16), o2 = dev_poisoned({T, N}, DType::BF16);
      be().linear_residual_norm(o1, din, dw, {&r1, &h1, &dnw, 1e-6f});
      be().linear(o2, din, dw);
      be().add_rms_norm(r2, o2, h2, dnw, 1e-6f);
      expect_same_bits(be(), o1, o2, what + " out");
      expect_same_bits(be(), r1, r2, what + " residual");
      expect_same_bits(be(), h1, h2, what + " normed");
      // The fused kernel takes up to 4 rows (rows up to 1,024 wide a warp each: 64, 104, 896;
      // wider ones in groups of threads side by side: 2,048, 3,584) in 8-warp grids: those of
      // up to 128 blocks on any card of more than 64 SMs (5,120 takes 4-warp blocks on a
      // 132-SM card).
      if (T <= 4 && N <= 2048) {
        EXPECT_TRUE(cuda::gemv_norm_supported(T, N, K, be().num_sms())) << what;
      }
      Tensor want = Tensor::empty({T, N}, DType::F32);
      ref::linear(want, in, hw);
      EXPECT_LT(rel_err(host(o1), want), 1e-2) << what;
    }
  // Each fused call relies on the previous one leaving the grid counter at 0 (else no block
  // would see itself last and the normed rows would stay poisoned).
}

// The q|k|v projection with the rotation and the cache writes in its epilogue
// (linear_rope_kv_write; gemv.cu, ROPE) gives the bits of linear + qk_norm_rope_kv_write:
// qkv, every written cache slot and every slot it must leave alone, at the heads of the
// Qwen2.5 0.5B / 1.5B / 7B shapes (7B: 288 blocks, the 4-warp kernel) and small odd ones,
// T = 1..32 (every token tile and launch shape), with and without bias, i64 and i32 slots,
// skipped slots (-1). What the fused kernel does not take (q/k norms, partial or interleaved
// rotary, 7B above 16 tokens) goes through the unfused ops and is checked against the float
// reference. T = 33 takes cuBLASLt, which leaves the bias to the rotation kernel
// (QkNormRopeParams::bias) in every kernel form: the bits of linear's separate bias kernel.
TEST_F(CudaLinear, LinearRopeKvWriteMatchesUnfused) {
  struct Case {
    int n_q, n_kv, D, K;
    int rot;  // 0: head_dim
    bool interleaved, norm;
    bool fused;  // what rope_fusable must say wherever linear() takes the skinny GEMM
  };
  const std::vector<Case> cases = {
      {14, 2, 64, 896, 0, false, false, true},    {12, 2, 128, 1536, 0, false, false, true},
      {28, 4, 128, 3584, 0, false, false, true},  {3, 1, 16, 72, 0, false, false, true},
      {5, 5, 32, 136, 0, false, false, true},     {4, 2, 64, 256, 32, false, false, false},
      {4, 2, 64, 256, 0, true, false, false},     {4, 2, 64, 256, 0, false, true, false},
      {64, 8, 64, 520, 0, false, false, true}};  // 320 blocks at a short K: 2-step groups at T = 2..8
  std::mt19937_64 rng(16);
  const int rows = 50, num_blocks = 5, block_size = 16;
  for (const Case& c : cases)
    for (int T : {1, 2, 3, 8, 9, 16, 17, 32, 33}) {
      const bool bias = T % 2 == 1, i64 = T != 2;
      const std::string what = "heads " + std::to_string(c.n_q) + "/" + std::to_string(c.n_kv) + " D=" +
                               std::to_string(c.D) + " K=" + std::to_string(c.K) + " T=" + std::to_string(T);
      QKVLayout L{c.n_q, c.n_kv, c.D};
      const int N = static_cast<int>(L.row_stride()), rot = c.rot > 0 ? c.rot : c.D;
      Tensor x = randn({T, c.K}, rng, DType::BF16, 2.0f);
      LinearWeight hw;
      LinearWeight dw = random_weight(be(), rng, N, c.K, bias, hw);
      Tensor cos_sin = Tensor::empty({rows, rot}, DType::F32);
      for (int r = 0; r < rows; ++r)
        for (int i = 0; i < rot / 2; ++i) {
          const double a = (r * 37 % rows) * std::pow(10000.0, -2.0 * i / rot);
          cos_sin.data<float>()[r * rot + i] = static_cast<float>(std::cos(a));
          cos_sin.data<float>()[r * rot + rot / 2 + i] = static_cast<float>(std::sin(a));
        }
      std::vector<int32_t> rope_rows(T);
      std::vector<int64_t> slots(T);
      std::vector<int32_t> slots32(T);
      for (int t = 0; t < T; ++t) {
        rope_rows[t] = static_cast<int32_t>((t * 13 + 5 + T) % rows);
        slots[t] = t % 4 == 3 ? -1 : (t * 29 + 7 * T) % (num_blocks * block_size);
        slots32[t] = static_cast<int32_t>(slots[t]);
      }
      Tensor qn, kn;
      if (c.norm) {
        qn = randn({c.D}, rng, DType::F32, 0.2f, 1.0f);
        kn = randn({c.D}, rng, DType::F32, 0.2f, 1.0f);
      }
      Tensor kc = randn({num_blocks, block_size, c.n_kv, c.D}, rng, DType::BF16);
      Tensor vc = randn({num_blocks, block_size, c.n_kv, c.D}, rng, DType::BF16);
      const RopeSpec rope{rot, c.interleaved};
      Tensor dx = dev(x), dcs = dev(cos_sin), drows = dev(ints(rope_rows));
      Tensor dslots = i64 ? dev(ints64(slots)) : dev(ints(slots32));
      Tensor dqn = c.norm ? dev(qn) : Tensor(), dkn = c.norm ? dev(kn) : Tensor();
      Tensor q1 = dev_poisoned({T, N}, DType::BF16), q2 = dev_poisoned({T, N}, DType::BF16);
      Tensor k1 = dev(kc), k2 = dev(kc), v1 = dev(vc), v2 = dev(vc);
      const cuda::CudaBackend::RopeKvWrite r{&L, &dqn, &dkn, 1e-6f, &rope, &dcs, &drows, &dslots, &k1, &v1};
      // Fused wherever linear() takes the skinny GEMM: above 16 tokens up to 8 M weights, above
      // 32 nowhere.
      EXPECT_EQ(be().rope_fusable(dx, dw, r),
                c.fused && (T <= 16 || (T <= 32 && int64_t{N} * c.K <= (int64_t{8} << 20))))
          << what;
      be().linear_rope_kv_write(q1, dx, dw, r);
      be().linear(q2, dx, dw);
      be().qk_norm_rope_kv_write(q2, L, dqn, dkn, 1e-6f, rope, dcs, drows, dslots, k2, v2);
      expect_same_bits(be(), q1, q2, what + " qkv");
      expect_same_bits(be(), k1, k2, what + " k cache");
      expect_same_bits(be(), v1, v2, what + " v cache");
      // The float reference: projection, then bf16, then the rotation and the cache writes.
      Tensor want = Tensor::empty({T, N}, DType::F32);
      ref::linear(want, x, hw);
      Tensor want_kc = as_f32(kc), want_vc = as_f32(vc);
      ref::qk_norm_rope_kv_write(want, L, qn, kn, 1e-6f, rope, cos_sin, ints(rope_rows), ints64(slots), want_kc,
                                 want_vc);
      EXPECT_LT(rel_err(host(q1), want), 1e-2) << what;
      EXPECT_LT(rel_err(host(k1), want_kc), 1e-2) << what;
      EXPECT_LT(rel_err(host(v1), want_vc), 1e-2) << what;
    }
}

TEST_F(CudaLinear, AutoRoutesEveryShape) {
  std::mt19937_64 rng(13);
  for (int T : {1, 4, 16, 17, 32, 33, 100})
    for (auto [N, K] : std::vector<std::pair<int, int>>{{64, 64}, {77, 37}, {512, 1536}, {3000, 3072}})
      run_case(*this, be(), rng, T, N, K, true, DType::BF16, Path::Auto, 8e-3);
}

TEST_F(CudaLinear, RejectsQuantizedAndNonBf16Weights) {
  std::mt19937_64 rng(14);
  LinearWeight w;
  w.weight = dev(randn({8, 16}, rng, DType::F32));
  Tensor x = dev(randn({2, 16}, rng, DType::BF16));
  Tensor out = dev_poisoned({2, 8}, DType::BF16);
  EXPECT_THROW(be().linear(out, x, w), Error);
  w.weight = dev(randn({8, 16}, rng, DType::BF16));
  w.quant = QuantScheme::Int4Group;
  try {
    be().linear(out, x, w);
    FAIL() << "quantized weight accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("quantized"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tllm::test
