// WorkerPool: jobs that block (as connections do) get threads of their own up to the cap,
// later ones wait and run once a thread is free, threads above the base end when idle, and
// shutdown runs what was queued before it joins.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/worker_pool.h"

namespace tllm {
namespace {

using namespace std::chrono_literals;

// A latch the jobs wait on, and a count of the jobs running now / at most.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int running = 0, most = 0, done = 0;

  void job() {
    std::unique_lock<std::mutex> lock(mu);
    most = std::max(most, ++running);
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    --running;
    ++done;
    cv.notify_all();
  }
  // Waits (up to 10 s) until `pred` holds under the lock.
  template <typename P>
  bool wait(P pred) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 10s, pred);
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(WorkerPool, BlockedJobsGetThreadsUpToTheCap) {
  WorkerPool pool(2, 5, 100ms);
  EXPECT_EQ(pool.threads(), 2u);
  Gate gate;
  for (int i = 0; i < 8; ++i) pool.enqueue([&] { gate.job(); });
  // Five run at once (two kept threads and three started); three wait for a free thread.
  ASSERT_TRUE(gate.wait([&] { return gate.running == 5; }));
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    EXPECT_EQ(gate.running, 5);
    EXPECT_EQ(gate.done, 0);
  }
  EXPECT_EQ(pool.threads(), 5u);
  gate.release();
  ASSERT_TRUE(gate.wait([&] { return gate.done == 8; }));
  EXPECT_EQ(gate.most, 5);
  EXPECT_EQ(pool.peak_threads(), 5u);
  // Idle beyond the timeout, the started threads end and the kept two stay.
  for (int i = 0; i < 200 && pool.threads() > 2; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(pool.threads(), 2u);
  // And the pool grows again on the next burst.
  Gate again;
  for (int i = 0; i < 4; ++i) pool.enqueue([&] { again.job(); });
  ASSERT_TRUE(again.wait([&] { return again.running == 4; }));
  again.release();
  ASSERT_TRUE(again.wait([&] { return again.done == 4; }));
}

TEST(WorkerPool, AnIdleThreadTakesTheJobWithoutAStart) {
  WorkerPool pool(3, 10, 1s);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) {
    pool.enqueue([&] { ++ran; });
    while (ran.load() <= i) std::this_thread::yield();  // one at a time: one thread suffices
  }
  EXPECT_EQ(pool.peak_threads(), 3u);
}

TEST(WorkerPool, ShutdownRunsWhatWasQueued) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1, 1);
    Gate gate;
    pool.enqueue([&] { gate.job(); });
    for (int i = 0; i < 10; ++i) pool.enqueue([&] { ++ran; });
    ASSERT_TRUE(gate.wait([&] { return gate.running == 1; }));
    EXPECT_EQ(ran.load(), 0);  // one thread, held by the first job
    std::thread opener([&] {
      std::this_thread::sleep_for(50ms);
      gate.release();
    });
    pool.shutdown();
    opener.join();
  }
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace tllm
