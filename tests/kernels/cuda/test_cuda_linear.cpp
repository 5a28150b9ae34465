// linear: the skinny-GEMM kernel (T <= 16) and cuBLASLt, bf16 and f32 outputs, with and
// without bias, at odd shapes.
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
                                               {1000, 896}, {300, 3584}, {65, 4104}, {17, 40}};
  for (int T : {1, 2, 3, 5, 8, 9, 13, 16})
    for (auto [N, K] : nk) run_case(*this, be(), rng, T, N, K, T % 2 == 1, DType::BF16, Path::Gemv, 8e-3);
  for (int T : {1, 11}) run_case(*this, be(), rng, T, 513, 256, true, DType::F32, Path::Gemv, 1e-4);
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

TEST_F(CudaLinear, AutoRoutesEveryShape) {
  std::mt19937_64 rng(13);
  for (int T : {1, 4, 16, 17, 100})
    for (auto [N, K] : std::vector<std::pair<int, int>>{{64, 64}, {77, 37}, {512, 1536}})
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
