// The HTTP server's connection threads. cpp-httplib runs each connection as one job for the
// connection's whole life (every keep-alive request on it, every SSE stream), so a fixed pool
// of N threads stops answering anything, /health and /metrics included, once N clients hold
// connections open: 320 concurrent streams against 320 threads, or a benchmark whose client
// pool keeps idle connections. WorkerPool keeps `base` threads and starts another whenever a
// connection arrives with no thread idle, up to `cap`; threads above `base` end after
// `idle_timeout` without work. Past `cap`, connections wait in arrival order, as in a fixed
// pool.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace tllm {

class WorkerPool : public httplib::TaskQueue {
 public:
  WorkerPool(size_t base, size_t cap, std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void enqueue(std::function<void()> fn) override;
  // Runs every queued job, then joins every thread.
  void shutdown() override;

  size_t threads() const;  // alive now
  size_t peak_threads() const;

 private:
  void start_thread_locked();
  void work(size_t id);
  void join_retired(std::unique_lock<std::mutex>& lock);

  const size_t base_;
  const size_t cap_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<size_t, std::thread> threads_;  // by the pool's own id
  std::vector<std::thread> retired_;       // ended above base, to be joined
  size_t next_id_ = 0;
  size_t idle_ = 0;
  size_t peak_ = 0;
  bool shutdown_ = false;
};

}  // namespace tllm
