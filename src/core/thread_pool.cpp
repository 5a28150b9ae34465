#include "core/thread_pool.h"

#include <immintrin.h>

namespace tllm {

namespace {
inline void cpu_relax() { _mm_pause(); }
constexpr int kSpinIters = 1 << 14;  // ~50-100 us of spinning before sleeping
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks() {
  for (int t = next_task_.fetch_add(1, std::memory_order_acq_rel); t < n_threads_;
       t = next_task_.fetch_add(1, std::memory_order_acq_rel)) {
    job_fn_(job_ctx_, t, n_threads_);
    done_tasks_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::dispatch(Trampoline fn, void* ctx) {
  job_fn_ = fn;
  job_ctx_ = ctx;
  next_task_.store(0, std::memory_order_relaxed);
  done_tasks_.store(0, std::memory_order_relaxed);
  open_.store(true, std::memory_order_seq_cst);  // publishes the job fields above
  generation_.fetch_add(1, std::memory_order_seq_cst);
  generation_.notify_all();
  run_tasks();
  // Wait for the tasks other threads started; unstarted ones were run above.
  int spins = 0;
  while (done_tasks_.load(std::memory_order_acquire) != n_threads_) {
    if (++spins < kSpinIters) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  // Close the job, then wait for workers that joined it to leave: after this no worker
  // touches job_fn_ / job_ctx_ (the caller's stack) any more.
  open_.store(false, std::memory_order_seq_cst);
  while (active_.load(std::memory_order_seq_cst) != 0) cpu_relax();
}

void ThreadPool::worker(int) {
  uint32_t seen = 0;  // the generation at construction; a late-starting thread must not skip job 1
  for (;;) {
    int spins = 0;
    uint32_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIters) {
        cpu_relax();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    // Join the job that is open now (if any); a dispatcher cannot return while we are in.
    active_.fetch_add(1, std::memory_order_seq_cst);
    if (open_.load(std::memory_order_seq_cst)) run_tasks();
    active_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace tllm
