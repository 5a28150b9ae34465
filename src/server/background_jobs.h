// Jobs that outlive their HTTP request: /v1/responses with "background": true runs its
// generation on a thread of its own, which stores the response when it ends. A job polls
// its `cancelled` flag; cancel() sets it and waits until the job has ended (so the caller then
// reads what the job stored). Finished threads are joined at the next start() and at
// shutdown(), which cancels and joins every job (the destructor calls it). Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace tllm {

class BackgroundJobs {
 public:
  using Job = std::function<void(const std::atomic<bool>& cancelled)>;

  BackgroundJobs() = default;
  BackgroundJobs(const BackgroundJobs&) = delete;
  BackgroundJobs& operator=(const BackgroundJobs&) = delete;
  ~BackgroundJobs() { shutdown(); }

  // Runs job on a new thread under `id` (ids are unique: a second start with a running id
  // throws). After shutdown() a job is not started: false.
  bool start(const std::string& id, Job job);
  // Cancels job `id` and returns once it has ended; false when no job of that id is running.
  bool cancel(const std::string& id);
  // Jobs still running.
  size_t running() const;
  void shutdown();

 private:
  struct Slot {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> cancelled;
    bool done = false;
  };
  void reap();  // joins the finished jobs' threads; mu_ held

  mutable std::mutex mu_;
  std::condition_variable ended_;
  std::map<std::string, Slot> jobs_;
  bool stopped_ = false;
};

}  // namespace tllm
