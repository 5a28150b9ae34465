// Helpers of the CUDA kernel tests: the shared backend, device upload of poisoned outputs,
// relative error ||got - want|| / ||want|| (NaN -> inf).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/kernel_test_util.h"

namespace tllm::test {

class CudaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cuda_available() && !backend_) backend_ = std::make_unique<cuda::CudaBackend>(CudaBackendOptions{});
  }
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: CUDA kernel tests skipped";
  }
  void TearDown() override {
    if (backend_) backend_->synchronize();  // surfaces asynchronous kernel errors in the test that caused them
  }
  cuda::CudaBackend& be() { return *backend_; }
  Tensor dev(const Tensor& host) { return backend_->upload(host, host.dtype()); }
  Tensor dev(const Tensor& host, DType dt) { return backend_->upload(host, dt); }
  // A device tensor full of NaN (f32/bf16/f16), so unwritten elements fail the comparison.
  Tensor dev_poisoned(const Shape& shape, DType dt) {
    Tensor h = Tensor::empty(shape, dt);
    poison(h);
    return backend_->upload(h, dt);
  }
  Tensor host(const Tensor& d) { return backend_->download(d); }

  static inline std::unique_ptr<cuda::CudaBackend> backend_;
};

// Device tensors a and b hold the same bytes.
inline void expect_same_bits(cuda::CudaBackend& be, const Tensor& a, const Tensor& b, const std::string& what) {
  const Tensor ha = be.download(a), hb = be.download(b);
  ASSERT_EQ(ha.nbytes(), hb.nbytes()) << what;
  EXPECT_EQ(std::memcmp(ha.raw(), hb.raw(), ha.nbytes()), 0) << what;
}

// ||got - want|| / ||want|| (||got - want|| where want is 0); +inf on NaN/inf or a size mismatch.
inline double rel_err(const Tensor& got, const Tensor& want) { return std::sqrt(nmse(got, want)); }

inline Tensor as_f32(const Tensor& t) {
  Tensor o = Tensor::empty(t.shape(), DType::F32);
  for (int64_t i = 0; i < t.numel(); ++i) o.data<float>()[i] = static_cast<float>(value_at(t, i));
  return o;
}

}  // namespace tllm::test
