#include "server/background_jobs.h"

#include <vector>

#include "core/error.h"
#include "core/logging.h"

namespace tllm {

void BackgroundJobs::reap() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (!it->second.done) {
      ++it;
      continue;
    }
    it->second.thread.join();  // done: the thread takes mu_ no more
    it = jobs_.erase(it);
  }
}

bool BackgroundJobs::start(const std::string& id, Job job) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return false;
  reap();
  TLLM_CHECK(!jobs_.count(id), "BackgroundJobs: a job '", id, "' is already running");
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  Slot& slot = jobs_[id];
  slot.cancelled = cancelled;
  slot.thread = std::thread([this, id, cancelled, job = std::move(job)] {
    try {
      job(*cancelled);
    } catch (const std::exception& e) {
      TLLM_LOG(Error, "background job ", id, " failed: ", e.what());
    }
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.at(id).done = true;
    ended_.notify_all();
  });
  return true;
}

bool BackgroundJobs::cancel(const std::string& id) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.done) return false;
  it->second.cancelled->store(true);
  ended_.wait(lock, [&] { return jobs_.at(id).done; });
  return true;
}

size_t BackgroundJobs::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [id, slot] : jobs_) n += slot.done ? 0 : 1;
  return n;
}

void BackgroundJobs::shutdown() {
  std::unique_lock<std::mutex> lock(mu_);
  stopped_ = true;
  for (auto& [id, slot] : jobs_) slot.cancelled->store(true);
  ended_.wait(lock, [&] {
    for (const auto& [id, slot] : jobs_)
      if (!slot.done) return false;
    return true;
  });
  reap();
}

}  // namespace tllm
