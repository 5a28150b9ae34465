#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

using namespace tllm;

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 1000, 4097}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 50; ++rep) {
        pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 50) << threads << " " << n << " " << i;
    }
  }
}

TEST(ThreadPool, DynamicAndRunEveryThread) {
  ThreadPool pool(4);
  std::vector<int> seen(4, 0);
  pool.run([&](int t, int n) {
    EXPECT_EQ(n, 4);
    seen[t]++;
  });
  EXPECT_EQ(seen, std::vector<int>(4, 1));
  std::vector<std::atomic<int>> hits(333);
  pool.parallel_for_dynamic(333, [&](int64_t i, int) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, SharesCoverEveryIndexOnceInContiguousChunks) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 1000, 4097}) {
      for (int64_t chunk : {1, 3, 8}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<bool> bad{false};
        pool.parallel_for_shares(n, chunk, [&](int64_t b, int64_t e, int task) {
          // A chunk stays inside one task's share and is at most `chunk` long.
          int share = 0;  // the share holding b: [n * i / threads, n * (i + 1) / threads)
          while (b >= n * (share + 1) / threads) ++share;
          if (e <= b || e - b > chunk || b < n * share / threads || e > n * (share + 1) / threads ||
              task < 0 || task >= threads)
            bad = true;
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
        EXPECT_FALSE(bad.load()) << threads << " " << n << " " << chunk;
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << threads << " " << n << " " << i;
      }
    }
  }
}

TEST(Tensor, ViewsShareMemoryAndCheckShapes) {
  Tensor t = Tensor::zeros({4, 6}, DType::F32);
  Tensor rows = t.slice_rows(1, 3);
  rows.data<float>()[0] = 5.f;
  EXPECT_EQ(t.data<float>()[6], 5.f);
  EXPECT_EQ(rows.shape(), (Shape{2, 6}));
  EXPECT_THROW(t.view({5, 5}), Error);
  EXPECT_THROW(t.slice_rows(3, 5), Error);
  Tensor v = t.view({24});
  EXPECT_EQ(v.data<float>(), t.data<float>());
  EXPECT_EQ(t.str(), "f32[4, 6]@cpu");
}

TEST(ThreadPool, EveryTaskRunsOnceUnderOversubscription) {
  // More threads than cores: workers are often descheduled, and the caller takes over
  // their unstarted tasks. Each task must still run exactly once per job.
  ThreadPool pool(6);
  std::vector<int> counts(6, 0);
  for (int rep = 0; rep < 20000; ++rep) {
    pool.run([&](int t, int n) {
      ASSERT_EQ(n, 6);
      counts[t]++;  // each task index is owned by exactly one call per job
    });
  }
  for (int c : counts) EXPECT_EQ(c, 20000);
}
