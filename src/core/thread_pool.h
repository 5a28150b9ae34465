// A small fork-join pool for CPU kernels. Workers spin briefly after each job and then
// sleep on a futex (std::atomic::wait), so back-to-back kernel launches during decode cost
// a few hundred nanoseconds instead of a condition-variable wake-up each.
// A job is n_threads tasks that threads claim from a counter, the caller included: when a
// worker is descheduled (a shared machine, another process), the caller runs its task
// instead of waiting for it to be scheduled again. Only tasks already started are waited on.
// The pool is an object owned by the CPU backend; nothing here is global.
#pragma once

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace tllm {

class ThreadPool {
 public:
  // n_threads counts the calling thread; 0 means one per available core.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, n_threads) once for every task in [0, n_threads) and returns when all
  // calls have returned. Tasks run concurrently on the pool's threads, but one thread may
  // run several tasks one after another, so tasks must not wait for each other. `task`
  // indexes per-task scratch. Not re-entrant: kernels must not nest runs.
  template <typename F>
  void run(F&& fn) {
    if (n_threads_ == 1) {
      fn(0, 1);
      return;
    }
    auto tramp = [](void* ctx, int i, int n) { (*static_cast<std::remove_reference_t<F>*>(ctx))(i, n); };
    dispatch(tramp, &fn);
  }

  // Splits [0, n) into one contiguous range per thread (ranges of at least `grain`
  // items, so small problems use fewer threads) and calls fn(begin, end).
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t max_chunks = (n + grain - 1) / grain;
    const int use = static_cast<int>(std::min<int64_t>(n_threads_, max_chunks));
    if (use <= 1) {
      fn(int64_t{0}, n);
      return;
    }
    run([&](int t, int) {
      if (t >= use) return;
      const int64_t b = n * t / use, e = n * (t + 1) / use;
      if (b < e) fn(b, e);
    });
  }

  // Splits [0, n) into one contiguous share per task; each task works through its own share
  // in chunks of `chunk` items taken from that share's counter, then through the other
  // shares the same way. fn(begin, end, task), with begin..end inside one share. Each thread
  // streams one contiguous range (what hardware prefetchers follow), and a thread that starts
  // late (descheduled on a shared machine) leaves the rest of its share to the others.
  template <typename F>
  void parallel_for_shares(int64_t n, int64_t chunk, F&& fn) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    if (n_threads_ == 1) {
      for (int64_t b = 0; b < n; b += chunk) fn(b, std::min(n, b + chunk), 0);
      return;
    }
    struct alignas(64) Share {
      std::atomic<int64_t> next;
      int64_t end;
    };
    std::unique_ptr<Share[]> shares(new Share[n_threads_]);
    for (int i = 0; i < n_threads_; ++i) {
      shares[i].next.store(n * i / n_threads_, std::memory_order_relaxed);
      shares[i].end = n * (i + 1) / n_threads_;
    }
    run([&](int t, int nt) {
      for (int k = 0; k < nt; ++k) {
        Share& sh = shares[(t + k) % nt];
        for (int64_t b; (b = sh.next.fetch_add(chunk, std::memory_order_relaxed)) < sh.end;)
          fn(b, std::min(sh.end, b + chunk), t);
      }
    });
  }

  // Hands out items [0, n) one at a time from a shared counter; for uneven work
  // (attention over sequences of different lengths). fn(item, thread_index).
  template <typename F>
  void parallel_for_dynamic(int64_t n, F&& fn) {
    if (n <= 0) return;
    if (n_threads_ == 1 || n == 1) {
      for (int64_t i = 0; i < n; ++i) fn(i, 0);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int t, int) {
      for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
           i = next.fetch_add(1, std::memory_order_relaxed))
        fn(i, t);
    });
  }

 private:
  using Trampoline = void (*)(void*, int, int);
  void dispatch(Trampoline fn, void* ctx);
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  void run_tasks();  // claims and runs tasks of the current job until none is left

  Trampoline job_fn_ = nullptr;
  void* job_ctx_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> next_task_{0};   // next task index to claim
  std::atomic<int> done_tasks_{0};  // tasks finished
  std::atomic<bool> open_{false};   // workers may join the current job
  std::atomic<int> active_{0};      // workers inside the current job
  std::atomic<bool> stop_{false};
};

}  // namespace tllm
