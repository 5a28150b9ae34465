// Dummy weights (--load-format dummy): the parallel fill cuts exactly the chunks of the
// serial definition, and a fused weight filled in place holds the bytes of its parts stacked.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "model/weights.h"

namespace tllm {
namespace {

// The definition, one element at a time: chunks from `offset` mod the pool size to the pool's
// end (or the tensor's), then the offset moves past the chunk plus 7919.
std::vector<uint16_t> reference_fill(int64_t n, const std::vector<uint16_t>& pool, size_t& offset) {
  std::vector<uint16_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n;) {
    size_t off = offset % pool.size();
    int64_t len = 0;
    while (i < n && off < pool.size()) {
      out[static_cast<size_t>(i++)] = pool[off++];
      ++len;
    }
    offset += static_cast<size_t>(len) + 7919;
  }
  return out;
}

TEST(DummyWeights, ParallelFillIsTheSerialDefinition) {
  std::mt19937 rng(3);
  std::vector<uint16_t> pool(size_t{3} << 20);  // 3 Mi elements: chunks cut into several pieces
  for (uint16_t& v : pool) v = static_cast<uint16_t>(rng());
  ThreadPool three(3);
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{7} << 20}) {
    for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &three}) {
      size_t off = 12345, ref_off = 12345;
      std::vector<uint16_t> got(static_cast<size_t>(n), 0xffff);
      fill_from_pool(got.data(), n, pool, off, tp);
      const std::vector<uint16_t> want = reference_fill(n, pool, ref_off);
      EXPECT_EQ(off, ref_off) << n;
      EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 2), 0) << n << " elements, "
                                                                         << (tp ? "3 threads" : "serial");
    }
  }
}

TEST(DummyWeights, FusedWeightIsItsPartsStacked) {
  auto be = make_cpu_backend(CpuBackendOptions{2});
  WeightLoader fused(nullptr, *be, DType::BF16), parts(nullptr, *be, DType::BF16);
  const LinearWeight w = fused.linear({"a.weight", "b.weight", "c.weight"}, {3, 1000, 5}, 4096);
  const Tensor a = parts.host("a.weight", {3, 4096}), b = parts.host("b.weight", {1000, 4096}),
               c = parts.host("c.weight", {5, 4096});
  const Tensor want = concat_rows({a, b, c});
  ASSERT_EQ(w.weight.dtype(), DType::BF16);
  ASSERT_EQ(w.weight.nbytes(), want.nbytes());
  EXPECT_EQ(std::memcmp(w.weight.raw(), want.raw(), want.nbytes()), 0);
  EXPECT_EQ(w.out_features, 1008);
  // Another fused weight after it continues the same sequence.
  const LinearWeight w2 = fused.linear({"d.weight", "e.weight"}, {2, 2}, 64);
  const Tensor want2 = concat_rows({parts.host("d.weight", {2, 64}), parts.host("e.weight", {2, 64})});
  EXPECT_EQ(std::memcmp(w2.weight.raw(), want2.raw(), want2.nbytes()), 0);
}

}  // namespace
}  // namespace tllm
