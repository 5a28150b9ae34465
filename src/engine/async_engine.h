// AsyncEngine: runs LLMEngine::step() on its own thread and hands each request's outputs
// to a per-request stream that HTTP handler threads read. Requests are admitted through a
// bounded queue (max_queue); a full queue is reported to the caller, not blocked on.
// Outputs reach the streams through a delivery thread: waking the reader of every request
// of a batch (a futex call each, 64 per step at 64 concurrent requests) would otherwise sit
// on the engine thread between two steps.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "engine/engine.h"

namespace tllm {

// Outputs of one request, in order. next() blocks until an output arrives or the timeout
// passes (returns nullopt then). After an output with finished == true nothing follows.
//
// A stream made by submit_many() carries the outputs of several requests (n > 1 choices,
// batched prompts), interleaved in the order the engine produced them; tell them apart by
// RequestOutput::request_id. It is done after every one of them has finished.
class RequestStream {
 public:
  std::optional<RequestOutput> next(double timeout_seconds);
  // Moves every queued output into `out` (appending), waiting up to timeout_seconds for
  // the first one. Returns false when nothing arrived. Cheaper than next() per token.
  bool drain(std::vector<RequestOutput>& out, double timeout_seconds);
  const std::string& id() const { return id_; }
  // True once every request of the stream has delivered its finished output.
  bool done() const;

 private:
  friend class AsyncEngine;
  void push(RequestOutput out);
  std::string id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  int num_requests_ = 1;
  int num_finished_ = 0;  // pushed with finished == true
};

class AsyncEngine {
 public:
  // Takes ownership; starts the loop thread. log_stats_interval > 0: a stats line (StatsLogger)
  // at most that often, in seconds, while there is work. step_pause > 0 (a test hook, from
  // `tinyllm serve`'s TINYLLM_DEBUG_STEP_PAUSE_S): the loop sleeps that long after each step,
  // so that a test can hold a request running while it fills the queue behind it.
  AsyncEngine(std::unique_ptr<LLMEngine> engine, int max_queue = 1024, double log_stats_interval = 0,
              double step_pause = 0);
  ~AsyncEngine();

  // Validates and queues the request (throws InvalidArgument for client mistakes, and
  // QueueFull when max_queue requests are already waiting). Thread-safe.
  std::shared_ptr<RequestStream> submit(const std::string& request_id, std::vector<int32_t> prompt,
                                        const SamplingParams& params);
  struct Submission {
    std::string request_id;
    std::vector<int32_t> prompt;
    SamplingParams params;
  };
  // Queues all of them or none (same checks as submit, QueueFull when they do not all
  // fit, InvalidArgument when they are more than max_queue); their outputs share one
  // stream, whose id() is stream_id.
  std::shared_ptr<RequestStream> submit_many(const std::string& stream_id,
                                             std::vector<Submission> requests);
  // Thread-safe; the stream then ends with finish_reason abort (delivered at once; the
  // engine frees the request's KV blocks before its next step). Unknown or finished ids
  // are ignored. A stream that every holder has dropped is aborted the same way.
  void abort(const std::string& request_id);
  // Thread-safe snapshot of the engine after its last step; num_waiting also counts the
  // requests submitted since, which the engine has not stepped yet.
  EngineStats stats() const;
  const LLMEngine& engine() const { return *engine_; }  // immutable parts only (config, tokenizer)
  void shutdown();

  class QueueFull : public Error {
   public:
    using Error::Error;
  };

 private:
  using Delivery = std::pair<std::shared_ptr<RequestStream>, RequestOutput>;
  void loop();
  void deliver_loop();
  // Queues outputs for the delivery thread; the caller holds mu_, so that the order of the
  // engine's outputs and of abort()'s final outputs is the order in which readers see them.
  void post_locked(std::vector<Delivery>& outputs);
  void check_submission(const Submission& s) const;
  // Requests not yet running: queued for the loop, being added by it, or waiting in the
  // engine as of its last step. Both the queue limit and stats() count this one number.
  int num_waiting_locked() const;
  std::unique_ptr<LLMEngine> engine_;
  int max_queue_;
  double log_stats_interval_;
  double step_pause_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  struct Pending {
    std::string id;
    std::vector<int32_t> prompt;
    SamplingParams params;
  };
  std::deque<Pending> incoming_;
  std::vector<std::string> aborts_;
  std::map<std::string, std::weak_ptr<RequestStream>> streams_;
  EngineStats stats_;
  int admitting_ = 0;  // taken from incoming_ by the loop, not yet in stats_
  bool stop_ = false;
  std::mutex out_mu_;  // after mu_ when both are held
  std::condition_variable out_cv_;
  std::vector<Delivery> outbox_;
  bool out_stop_ = false;
  std::thread delivery_;
  std::thread thread_;
};

}  // namespace tllm
