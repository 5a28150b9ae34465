// embedding, rms_norm, add_rms_norm, silu_mul, gather_rows, upload/download conversions.
#include "kernels/cuda/cuda_test_util.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

using CudaElementwise = CudaTest;

TEST_F(CudaElementwise, EmbeddingMatchesReference) {
  std::mt19937_64 rng(1);
  for (DType table_dt : {DType::BF16, DType::F32, DType::F16})
    for (int H : {64, 3584, 17, 8}) {
      const int V = 1000, T = 37;
      Tensor table = randn({V, H}, rng, table_dt);
      std::vector<int32_t> ids(T);
      std::uniform_int_distribution<int> d(0, V - 1);
      for (int& i : ids) i = d(rng);
      ids[3] = V - 1;
      ids[5] = 0;
      Tensor out = dev_poisoned({T, H}, DType::BF16);
      be().embedding(out, dev(table), dev(ints(ids)));
      Tensor want = Tensor::empty({T, H}, DType::F32);
      ref::embedding(want, table, ints(ids));
      EXPECT_LT(rel_err(host(out), want), 4e-3) << dtype_name(table_dt) << " H=" << H;
    }
}

TEST_F(CudaElementwise, RmsNormMatchesReference) {
  std::mt19937_64 rng(2);
  for (DType wdt : {DType::F32, DType::BF16})
    for (int H : {64, 896, 3584, 4100, 17, 8192, 12})
      for (int T : {1, 5, 64}) {
        Tensor x = randn({T, H}, rng, DType::BF16, 2.0f, 0.5f);
        Tensor w = randn({H}, rng, wdt, 0.2f, 1.0f);
        Tensor out = dev_poisoned({T, H}, DType::BF16);
        be().rms_norm(out, dev(x), dev(w), 1e-6f);
        Tensor want = Tensor::empty({T, H}, DType::F32);
        ref::rms_norm(want, x, w, 1e-6f);
        EXPECT_LT(rel_err(host(out), want), 5e-3) << "H=" << H << " T=" << T << " w " << dtype_name(wdt);
      }
}

TEST_F(CudaElementwise, RmsNormInPlace) {
  std::mt19937_64 rng(3);
  const int T = 7, H = 1024;
  Tensor x = randn({T, H}, rng, DType::BF16);
  Tensor w = randn({H}, rng, DType::F32, 0.1f, 1.0f);
  Tensor dx = dev(x);
  be().rms_norm(dx, dx, dev(w), 1e-5f);
  Tensor want = Tensor::empty({T, H}, DType::F32);
  ref::rms_norm(want, x, w, 1e-5f);
  EXPECT_LT(rel_err(host(dx), want), 5e-3);
}

TEST_F(CudaElementwise, AddRmsNormMatchesReference) {
  std::mt19937_64 rng(4);
  for (int H : {64, 3584, 4100, 17, 5120})
    for (int T : {1, 3, 33}) {
      Tensor res = randn({T, H}, rng, DType::BF16, 3.0f);
      Tensor x = randn({T, H}, rng, DType::BF16);
      Tensor w = randn({H}, rng, DType::BF16, 0.2f, 1.0f);
      Tensor dres = dev(res);
      Tensor out = dev_poisoned({T, H}, DType::BF16);
      be().add_rms_norm(dres, dev(x), out, dev(w), 1e-6f);
      Tensor want_res = as_f32(res), want_out = Tensor::empty({T, H}, DType::F32);
      ref::add_rms_norm(want_res, x, want_out, w, 1e-6f);
      EXPECT_LT(rel_err(host(dres), want_res), 4e-3) << "H=" << H << " T=" << T;
      EXPECT_LT(rel_err(host(out), want_out), 6e-3) << "H=" << H << " T=" << T;
    }
}

TEST_F(CudaElementwise, SiluMulMatchesReference) {
  std::mt19937_64 rng(5);
  for (int I : {8, 4864, 18944, 13, 1})
    for (int T : {1, 3, 64}) {
      Tensor gu = randn({T, 2 * I}, rng, DType::BF16, 2.0f);
      Tensor out = dev_poisoned({T, I}, DType::BF16);
      be().silu_mul(out, dev(gu));
      Tensor want = Tensor::empty({T, I}, DType::F32);
      ref::silu_mul(want, gu);
      EXPECT_LT(rel_err(host(out), want), 5e-3) << "I=" << I << " T=" << T;
    }
}

TEST_F(CudaElementwise, GatherRowsMatchesReference) {
  std::mt19937_64 rng(6);
  for (DType dt : {DType::BF16, DType::F32})
    for (int H : {3584, 7, 1}) {
      const int rows = 50, n = 23;
      Tensor x = randn({rows, H}, rng, dt);
      std::vector<int32_t> idx(n);
      std::uniform_int_distribution<int> d(0, rows - 1);
      for (int& i : idx) i = d(rng);
      idx[0] = idx[1];  // repeats are fine
      Tensor out = dev_poisoned({n, H}, dt);
      be().gather_rows(out, dev(x), dev(ints(idx)));
      Tensor want = Tensor::empty({n, H}, dt);
      ref::gather_rows(want, x, ints(idx));
      Tensor got = host(out);
      EXPECT_EQ(rel_err(got, want), 0.0) << dtype_name(dt) << " H=" << H;
    }
}

TEST_F(CudaElementwise, UploadConvertsAndRoundTrips) {
  std::mt19937_64 rng(7);
  // Larger than one 32 MiB staging chunk, so the chunked double-buffered path runs.
  for (int64_t n : {int64_t{5}, int64_t{1} << 20, int64_t{9} << 20 | 3}) {
    Tensor h32 = randn({n}, rng, DType::F32);
    Tensor d16 = be().upload(h32, DType::BF16);
    Tensor back = host(d16);
    Tensor want = h32.clone();
    ref::round_to(want, DType::BF16);
    EXPECT_EQ(rel_err(back, want), 0.0) << "f32->bf16 n=" << n;
    Tensor hf16 = randn({n}, rng, DType::F16);
    Tensor dbf = be().upload(hf16, DType::BF16);
    Tensor want2 = as_f32(hf16);
    ref::round_to(want2, DType::BF16);
    EXPECT_EQ(rel_err(host(dbf), want2), 0.0) << "f16->bf16 n=" << n;
    Tensor hb = randn({n}, rng, DType::BF16);
    Tensor df = be().upload(hb, DType::F32);
    EXPECT_EQ(rel_err(host(df), as_f32(hb)), 0.0) << "bf16->f32 n=" << n;
  }
  std::vector<int32_t> iv(1000);
  for (size_t i = 0; i < iv.size(); ++i) iv[i] = static_cast<int32_t>(i * 7919 % 100003) - 5000;
  Tensor di = dev(ints(iv));
  Tensor hi = host(di);
  ASSERT_EQ(hi.dtype(), DType::I32);
  for (size_t i = 0; i < iv.size(); ++i) ASSERT_EQ(hi.data<int32_t>()[i], iv[i]);
}

TEST_F(CudaElementwise, ManySmallUploadsThroughTheRing) {
  // More than the 16 MiB pinned ring in total: regions are recycled only after their copy.
  std::vector<Tensor> devs;
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 80; ++i) {
    std::vector<int32_t> v(100000);
    for (size_t j = 0; j < v.size(); ++j) v[j] = static_cast<int32_t>(i * 1000003 + j);
    devs.push_back(dev(ints(v)));
    want.push_back(std::move(v));
  }
  for (int i = 0; i < 80; ++i) {
    Tensor h = host(devs[i]);
    ASSERT_EQ(std::memcmp(h.raw(), want[i].data(), want[i].size() * 4), 0) << "upload " << i;
  }
}

}  // namespace
}  // namespace tllm::test
