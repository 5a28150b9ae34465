// AsyncEngine: runs LLMEngine::step() on its own thread and hands each request's outputs
// to a per-request stream that HTTP handler threads read. Requests are admitted through a
// bounded queue (max_queue); a full queue is reported to the caller, not blocked on.
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

#include "engine/engine.h"

namespace tllm {

// Outputs of one request, in order. next() blocks until an output arrives or the timeout
// passes (returns nullopt then). After an output with finished == true nothing follows.
class RequestStream {
 public:
  std::optional<RequestOutput> next(double timeout_seconds);
  const std::string& id() const { return id_; }

 private:
  friend class AsyncEngine;
  void push(RequestOutput out);
  std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
};

class AsyncEngine {
 public:
  // Takes ownership; starts the loop thread.
  AsyncEngine(std::unique_ptr<LLMEngine> engine, int max_queue = 1024);
  ~AsyncEngine();

  // Validates and queues the request (throws InvalidArgument for client mistakes, and
  // QueueFull when max_queue requests are already waiting). Thread-safe.
  std::shared_ptr<RequestStream> submit(const std::string& request_id, std::vector<int32_t> prompt,
                                        const SamplingParams& params);
  // Thread-safe; the stream then ends with finish_reason abort.
  void abort(const std::string& request_id);
  EngineStats stats() const;  // thread-safe snapshot
  const LLMEngine& engine() const { return *engine_; }  // immutable parts only (config, tokenizer)
  void shutdown();

  class QueueFull : public Error {
   public:
    using Error::Error;
  };

 private:
  void loop();
  std::unique_ptr<LLMEngine> engine_;
  int max_queue_;
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
  int waiting_in_engine_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tllm
