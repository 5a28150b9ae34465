#include "server/worker_pool.h"

#include <algorithm>
#include <utility>

namespace tllm {

WorkerPool::WorkerPool(size_t base, size_t cap, std::chrono::milliseconds idle_timeout)
    : base_(std::max<size_t>(base, 1)), cap_(std::max(cap, base_)), idle_timeout_(idle_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < base_; ++i) start_thread_locked();
}

WorkerPool::~WorkerPool() { shutdown(); }

// A thread counts as idle from its start: it takes a queued job as soon as it runs.
void WorkerPool::start_thread_locked() {
  const size_t id = next_id_++;
  ++idle_;
  threads_.emplace(id, std::thread([this, id] { work(id); }));
  peak_ = std::max(peak_, threads_.size());
}

void WorkerPool::join_retired(std::unique_lock<std::mutex>& lock) {
  if (retired_.empty()) return;
  std::vector<std::thread> done;
  done.swap(retired_);
  lock.unlock();
  for (auto& t : done) t.join();
  lock.lock();
}

void WorkerPool::enqueue(std::function<void()> fn) {
  std::unique_lock<std::mutex> lock(mu_);
  join_retired(lock);
  if (shutdown_) return;  // httplib stops accepting before it shuts its queue down
  jobs_.push_back(std::move(fn));
  if (jobs_.size() > idle_ && threads_.size() < cap_) start_thread_locked();
  cv_.notify_one();
}

void WorkerPool::work(size_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return shutdown_ || !jobs_.empty(); };
  for (;;) {
    bool timed_out = false;
    if (threads_.size() > base_) {
      timed_out = !cv_.wait_for(lock, idle_timeout_, ready);
    } else {
      cv_.wait(lock, ready);
    }
    if (jobs_.empty()) {
      if (shutdown_) break;
      if (timed_out && threads_.size() > base_) {
        // Above base and idle for idle_timeout: end, leaving the handle to be joined.
        --idle_;
        auto self = threads_.find(id);
        retired_.push_back(std::move(self->second));
        threads_.erase(self);
        return;
      }
      continue;
    }
    std::function<void()> fn = std::move(jobs_.front());
    jobs_.pop_front();
    --idle_;
    lock.unlock();
    fn();
    fn = nullptr;  // the connection's state goes before the thread counts as idle
    lock.lock();
    ++idle_;
  }
  --idle_;
}

void WorkerPool::shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
  while (!threads_.empty() || !retired_.empty()) {
    std::vector<std::thread> all;
    for (auto& [id, t] : threads_) all.push_back(std::move(t));
    threads_.clear();
    for (auto& t : retired_) all.push_back(std::move(t));
    retired_.clear();
    lock.unlock();
    for (auto& t : all) t.join();
    lock.lock();
  }
}

size_t WorkerPool::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threads_.size();
}

size_t WorkerPool::peak_threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

}  // namespace tllm
