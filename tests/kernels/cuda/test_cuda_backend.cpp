// Backend plumbing: graph capture and replay, the caching allocator's steady state,
// copies, and clear errors for bad tensors.
#include <cstring>

#include "kernels/cuda/cuda_test_util.h"
#include "kernels/cuda/device_allocator.h"
#include "kernels/reference/reference.h"

namespace tllm::test {
namespace {

using CudaBackendTest = CudaTest;

TEST_F(CudaBackendTest, NameAndMemoryInfo) {
  EXPECT_NE(be().name().find("cuda:0"), std::string::npos) << be().name();
  auto [free_b, total_b] = be().memory_info();
  EXPECT_GT(total_b, size_t{0});
  EXPECT_LE(free_b, total_b);
  EXPECT_EQ(be().activation_dtype(), DType::BF16);
}

TEST_F(CudaBackendTest, CapturedGraphReplaysOverNewInputs) {
  std::mt19937_64 rng(101);
  const int T = 4, H = 512, N = 1024;
  Tensor x = dev_poisoned({T, H}, DType::BF16);
  Tensor normed = dev_poisoned({T, H}, DType::BF16);
  Tensor y = dev_poisoned({T, N}, DType::BF16);
  Tensor act = dev_poisoned({T, N / 2}, DType::BF16);
  Tensor w_norm = dev(randn({H}, rng, DType::F32, 0.1f, 1.0f));
  LinearWeight hw;
  hw.weight = randn({N, H}, rng, DType::BF16, 0.05f);
  LinearWeight dw = hw;
  dw.weight = dev(hw.weight);
  auto graph = be().capture([&] {
    be().rms_norm(normed, x, w_norm, 1e-6f);
    be().linear(y, normed, dw);
    be().silu_mul(act, y);
  });
  ASSERT_NE(graph, nullptr);
  for (int round = 0; round < 3; ++round) {
    Tensor hx = randn({T, H}, rng, DType::BF16);
    be().copy(x, hx);
    graph->replay();
    Tensor got = host(act);
    // The same ops run directly.
    Tensor n2 = dev_poisoned({T, H}, DType::BF16), y2 = dev_poisoned({T, N}, DType::BF16),
           a2 = dev_poisoned({T, N / 2}, DType::BF16);
    be().rms_norm(n2, dev(hx), w_norm, 1e-6f);
    be().linear(y2, n2, dw);
    be().silu_mul(a2, y2);
    EXPECT_EQ(rel_err(got, host(a2)), 0.0) << "round " << round;
  }
}

TEST_F(CudaBackendTest, SynchronousOpsRefuseCapture) {
  std::mt19937_64 rng(102);
  Tensor logits = dev(randn({1, 10}, rng, DType::F32));
  SampleBatch batch;
  batch.rows.resize(1);
  EXPECT_THROW(be().capture([&] { be().sample(logits, batch); }), Error);
  // Small uploads from the host ride in kernel parameters: captured, the graph would replay
  // the bytes of the capture, so they refuse too.
  Tensor h = randn({4}, rng, DType::F32);
  Tensor d = be().empty({4}, DType::F32);
  EXPECT_THROW(be().capture([&] { be().copy(d, h); }), Error);
  EXPECT_THROW(be().capture([&] { be().upload(h, DType::F32); }), Error);
  // The stream is usable afterwards.
  EXPECT_EQ(be().sample(logits, batch).tokens.size(), 1u);
  be().copy(d, h);
  EXPECT_EQ(rel_err(host(d), h), 0.0);
}

TEST_F(CudaBackendTest, AllocatorSteadyStateDoesNotMalloc) {
  auto& alloc = cuda::DeviceCachingAllocator::for_device(0);
  auto step = [&] {
    for (int64_t n : {1000, 4096 * 3584, 17, 1 << 20}) {
      Tensor a = be().empty({n}, DType::BF16);
      Tensor b = be().empty({n}, DType::F32);
      be().fill_zero(a);
      be().fill_zero(b);
    }
  };
  step();
  const size_t before = alloc.stats().num_device_mallocs;
  for (int i = 0; i < 10; ++i) step();
  EXPECT_EQ(alloc.stats().num_device_mallocs, before);
}

TEST_F(CudaBackendTest, CopyBetweenDevices) {
  std::mt19937_64 rng(103);
  Tensor h = randn({3, 5}, rng, DType::F32);
  Tensor d = be().empty({3, 5}, DType::F32);
  be().copy(d, h);
  Tensor d2 = be().empty({3, 5}, DType::F32);
  be().copy(d2, d);
  Tensor back = Tensor::empty({3, 5}, DType::F32);
  be().copy(back, d2);
  EXPECT_EQ(rel_err(back, h), 0.0);
  Tensor wrong = be().empty({4, 5}, DType::F32);
  EXPECT_THROW(be().copy(wrong, h), Error);
}

// Small uploads ride in kernel parameters (up to 8,000 bytes, 4,000 per kernel), larger ones
// through the pinned ring, the largest through cudaMemcpy: every size around those limits
// lands whole, in stream order (all into one buffer, the last upload wins), and the host's
// buffer is free for reuse as soon as copy returns.
TEST_F(CudaBackendTest, UploadsOfEverySizeLandInOrder) {
  std::mt19937_64 rng(105);
  const int64_t sizes[] = {1, 3, 3999, 4000, 4001, 7999, 8000, 8001, 12345, (1 << 20) - 1, 1 << 20, (1 << 20) + 7};
  Tensor d = be().empty({(1 << 20) + 7}, DType::U8);
  for (int64_t n : sizes) {
    std::vector<uint8_t> want(static_cast<size_t>(n));
    for (auto& b : want) b = static_cast<uint8_t>(rng());
    std::vector<uint8_t> buf = want;
    for (int round = 0; round < 3; ++round) {  // three uploads into one place: the third must win
      if (round == 2) buf = want;
      Tensor dst = d.slice_rows(0, n);
      be().copy(dst, Tensor::wrap(buf.data(), {n}, DType::U8, Device::CPU));
      for (auto& b : buf) b = static_cast<uint8_t>(b + 1);  // reused at once
    }
    Tensor back = Tensor::empty({n}, DType::U8);
    be().copy(back, d.slice_rows(0, n));
    EXPECT_EQ(std::memcmp(back.raw(), want.data(), static_cast<size_t>(n)), 0) << n << " bytes";
  }
}

// upload() hands a weight to whatever kernel comes next, and the decode GEMVs read their bias
// (like their weights) before griddepcontrol.wait, while the previous kernels may still run.
// Each round uploads a new bias and two more small tensors right before the GEMV, with x = 0
// so that the output is exactly bf16(bias): a GEMV that started before the bias landed
// would give the previous round's values. (H200 run 168: 2,000 rounds passed with the early
// release too; PDL allows the stale read, the timing did not produce it there.)
TEST_F(CudaBackendTest, UploadedBiasIsWhatTheNextGemvReads) {
  std::mt19937_64 rng(106);
  const int N = 1000, K = 896;
  LinearWeight w;
  w.weight = dev(randn({N, K}, rng, DType::BF16, 0.05f));
  Tensor x0 = Tensor::empty({1, K}, DType::BF16);
  std::memset(x0.raw(), 0, x0.nbytes());
  be().synchronize();
  for (int round = 0; round < 200; ++round) {
    Tensor b = randn({N}, rng, DType::F32, 1.0f);
    w.bias = be().upload(b, DType::F32);
    Tensor dx = be().upload(x0, DType::BF16);
    Tensor out = dev_poisoned({1, N}, DType::BF16);
    be().linear_gemv(out, dx, w);
    const Tensor got = host(out);  // f32 on the host
    int bad = 0;
    std::string first;
    for (int n = 0; n < N; ++n) {
      const float g = got.data<float>()[n];
      const float want = __bfloat162float(__float2bfloat16_rn(b.data<float>()[n]));
      if (g != want && ++bad <= 3)
        first += " [" + std::to_string(n) + "] " + std::to_string(g) + " want " + std::to_string(want);
    }
    ASSERT_EQ(bad, 0) << "round " << round << ": " << bad << " of " << N << " outputs differ from the bias:" << first;
  }
}

TEST_F(CudaBackendTest, ClearErrorsForBadTensors) {
  std::mt19937_64 rng(104);
  Tensor x_host = randn({2, 64}, rng, DType::BF16);
  Tensor w = dev(randn({64}, rng, DType::F32));
  Tensor out = dev_poisoned({2, 64}, DType::BF16);
  try {
    be().rms_norm(out, x_host, w, 1e-6f);
    FAIL() << "host tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA tensor"), std::string::npos) << e.what();
  }
  Tensor x32 = dev(randn({2, 64}, rng, DType::F32));
  EXPECT_THROW(be().rms_norm(out, x32, w, 1e-6f), Error);
  Tensor w_bad = dev(randn({63}, rng, DType::F32));
  EXPECT_THROW(be().rms_norm(out, dev(x_host), w_bad, 1e-6f), Error);
}

}  // namespace
}  // namespace tllm::test
