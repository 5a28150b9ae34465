#include "engine/async_engine.h"
#include "engine/stats_logger.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

#include "core/env.h"
#include "core/logging.h"
#include "core/timer.h"

namespace tllm {

namespace {

RequestOutput final_output(const std::string& id, FinishReason reason, std::string error = "") {
  RequestOutput out;
  out.request_id = id;
  out.finished = true;
  out.finish_reason = reason;
  out.error = std::move(error);
  return out;
}

// TLLM_STEP_TIMING=1: the engine thread's time between consecutive steps (picking up new
// requests and aborts, handing the outputs to the delivery thread), median printed when the
// loop ends. LLMEngine prints the phases inside step().
class LoopGap {
 public:
  LoopGap() {
    enabled_ = env_flag("TLLM_STEP_TIMING");
  }
  ~LoopGap() {
    if (!enabled_ || gaps_.empty()) return;
    std::nth_element(gaps_.begin(), gaps_.begin() + gaps_.size() / 2, gaps_.end());
    std::fprintf(stderr, "[step timing] serving loop: %zu steps back to back, median %.1f us between steps\n",
                 gaps_.size(), gaps_[gaps_.size() / 2] * 1e6);
  }
  // consecutive: the previous iteration also ran a step (the loop did not wait for work).
  void begin_step(bool consecutive) {
    if (!enabled_) return;
    const double t = now_seconds();
    if (consecutive && last_end_ > 0) gaps_.push_back(t - last_end_);
  }
  void end_step() {
    if (enabled_) last_end_ = now_seconds();
  }

 private:
  bool enabled_ = false;
  double last_end_ = 0;
  std::vector<double> gaps_;
};

}  // namespace

// ---- RequestStream ----------------------------------------------------------------------

void RequestStream::push(RequestOutput out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (out.finished) ++num_finished_;
    queue_.push_back(std::move(out));
  }
  cv_.notify_one();
}

std::optional<RequestOutput> RequestStream::next(double timeout_seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                    [&] { return !queue_.empty(); }))
    return std::nullopt;
  RequestOutput out = std::move(queue_.front());
  queue_.pop_front();
  return out;
}

bool RequestStream::drain(std::vector<RequestOutput>& out, double timeout_seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::duration<double>(timeout_seconds),
                    [&] { return !queue_.empty(); }))
    return false;
  for (auto& o : queue_) out.push_back(std::move(o));
  queue_.clear();
  return true;
}

bool RequestStream::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return num_finished_ >= num_requests_ && queue_.empty();
}

// ---- AsyncEngine ------------------------------------------------------------------------

AsyncEngine::AsyncEngine(std::unique_ptr<LLMEngine> engine, int max_queue, double log_stats_interval, double step_pause)
    : engine_(std::move(engine)), max_queue_(max_queue), log_stats_interval_(log_stats_interval), step_pause_(step_pause) {
  TLLM_CHECK_ARG(engine_, "AsyncEngine: no engine given");
  TLLM_CHECK_ARG(max_queue_ >= 1, "AsyncEngine: max_queue must be at least 1, got ", max_queue_);
  stats_ = engine_->stats();
  delivery_ = std::thread([this] { deliver_loop(); });
  thread_ = std::thread([this] { loop(); });
}

AsyncEngine::~AsyncEngine() { shutdown(); }

void AsyncEngine::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    out_stop_ = true;
  }
  out_cv_.notify_all();
  if (delivery_.joinable()) delivery_.join();  // after delivering what the loop left
}

void AsyncEngine::post_locked(std::vector<Delivery>& outputs) {
  if (outputs.empty()) return;
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    for (auto& d : outputs) outbox_.push_back(std::move(d));
  }
  outputs.clear();
  out_cv_.notify_one();
}

void AsyncEngine::deliver_loop() {
  std::vector<Delivery> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(out_mu_);
      out_cv_.wait(lock, [&] { return out_stop_ || !outbox_.empty(); });
      if (outbox_.empty()) return;  // stopping, and everything was delivered
      batch.swap(outbox_);
    }
    for (auto& [s, out] : batch) s->push(std::move(out));
    batch.clear();
  }
}

void AsyncEngine::check_submission(const Submission& s) const {
  TLLM_CHECK_ARG(!s.request_id.empty(), "request id must not be empty");
  engine_->check_request(s.request_id, s.prompt, s.params);
}

std::shared_ptr<RequestStream> AsyncEngine::submit(const std::string& request_id,
                                                   std::vector<int32_t> prompt,
                                                   const SamplingParams& params) {
  std::vector<Submission> one;
  one.push_back({request_id, std::move(prompt), params});
  return submit_many(request_id, std::move(one));
}

std::shared_ptr<RequestStream> AsyncEngine::submit_many(const std::string& stream_id,
                                                        std::vector<Submission> requests) {
  TLLM_CHECK_ARG(!requests.empty(), "submit_many: no requests");
  for (const auto& r : requests) check_submission(r);
  auto stream = std::make_shared<RequestStream>();
  stream->id_ = stream_id;
  stream->num_requests_ = static_cast<int>(requests.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    TLLM_CHECK(!stop_, "the engine is shutting down");
    const int64_t waiting = num_waiting_locked();
    const int64_t k = static_cast<int64_t>(requests.size());
    // One submission larger than the whole queue was admitted while the queue was empty: 1,000
    // prompts x n = 128 queued 128,000 sequences, and every later request met a full queue for
    // minutes. It is refused whole instead, as a request to split.
    TLLM_CHECK_ARG(k <= max_queue_, "this request asks for ", k, " sequences (its prompts times n), more than the ",
                   max_queue_, " the engine queues (--max-queue); send it in parts");
    if (waiting > 0 && waiting + k > max_queue_)
      throw QueueFull(detail::concat("the admission queue is full (", waiting, " requests waiting, limit ",
                                     max_queue_, "); retry later"));
    std::unordered_set<std::string> ids;
    for (const auto& r : requests) {
      TLLM_CHECK_ARG(ids.insert(r.request_id).second && !streams_.count(r.request_id),
                     "request id ", r.request_id, " is already in use");
    }
    for (auto& r : requests) {
      streams_[r.request_id] = stream;
      incoming_.push_back({std::move(r.request_id), std::move(r.prompt), std::move(r.params)});
    }
  }
  cv_.notify_one();
  return stream;
}

void AsyncEngine::abort(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(request_id);
    if (it == streams_.end()) return;
    std::vector<Delivery> final;
    if (auto stream = it->second.lock()) final.emplace_back(std::move(stream), final_output(request_id, FinishReason::Abort));
    streams_.erase(it);
    bool was_incoming = false;
    for (auto p = incoming_.begin(); p != incoming_.end(); ++p) {
      if (p->id == request_id) {
        incoming_.erase(p);
        was_incoming = true;
        break;
      }
    }
    if (!was_incoming) aborts_.push_back(request_id);
    post_locked(final);
  }
  cv_.notify_one();
}

int AsyncEngine::num_waiting_locked() const {
  return stats_.num_waiting + static_cast<int>(incoming_.size()) + admitting_;
}

EngineStats AsyncEngine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.num_waiting = num_waiting_locked();
  return s;
}

void AsyncEngine::loop() {
  LoopGap gap;
  std::optional<StatsLogger> stats_log;
  if (log_stats_interval_ > 0) stats_log.emplace(log_stats_interval_);
  std::vector<Pending> batch;
  std::vector<std::string> aborts;
  std::vector<Delivery> deliveries;
  bool busy = false;
  for (;;) {
    batch.clear();
    aborts.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || busy || !incoming_.empty() || !aborts_.empty(); });
      if (stop_) break;
      for (auto& p : incoming_) batch.push_back(std::move(p));
      incoming_.clear();
      admitting_ = static_cast<int>(batch.size());
      aborts.swap(aborts_);
      // Requests whose every reader is gone (a handler that died without aborting).
      for (auto it = streams_.begin(); it != streams_.end();) {
        if (it->second.expired()) {
          aborts.push_back(it->first);
          it = streams_.erase(it);
        } else {
          ++it;
        }
      }
    }

    for (const auto& id : aborts) engine_->abort_request(id);
    for (auto& p : batch) {
      try {
        engine_->add_request(p.id, std::move(p.prompt), p.params);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = streams_.find(p.id);
        if (it != streams_.end()) {
          std::vector<Delivery> final;
          if (auto stream = it->second.lock()) final.emplace_back(std::move(stream), final_output(p.id, FinishReason::None, e.what()));
          streams_.erase(it);
          post_locked(final);
        }
      }
    }

    std::vector<RequestOutput> outputs;
    std::string step_error;
    if (engine_->has_unfinished_requests()) {
      try {
        gap.begin_step(busy);
        outputs = engine_->step();
        if (step_pause_ > 0) std::this_thread::sleep_for(std::chrono::duration<double>(step_pause_));  // as a slower step
        gap.end_step();
      } catch (const std::exception& e) {
        step_error = e.what();
        TLLM_LOG(Error, "engine step failed: ", step_error, "; failing every active request");
      }
    }

    // Stats first, so that a client who has its final output sees counters that include it.
    const EngineStats st = engine_->stats();
    if (stats_log)
      if (auto line = stats_log->update(st, now_seconds())) TLLM_LOG(Info, *line);
    deliveries.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_ = st;
      admitting_ = 0;
      if (!step_error.empty()) {
        for (auto& [id, weak] : streams_) {
          bool queued = false;
          for (const auto& p : incoming_) queued |= p.id == id;
          if (queued) continue;
          if (auto s = weak.lock()) deliveries.emplace_back(s, final_output(id, FinishReason::None, step_error));
        }
        for (auto& d : deliveries) streams_.erase(d.second.request_id);
      }
      for (auto& out : outputs) {
        auto it = streams_.find(out.request_id);
        if (it == streams_.end()) continue;  // aborted: its final output was already sent
        auto s = it->second.lock();
        if (out.finished) streams_.erase(it);
        if (s) deliveries.emplace_back(std::move(s), std::move(out));
      }
      if (step_error.empty()) post_locked(deliveries);
    }
    if (!step_error.empty()) {
      for (auto& d : deliveries)
        if (d.second.finished && d.second.finish_reason == FinishReason::None)
          try {
            engine_->abort_request(d.second.request_id);
          } catch (const std::exception&) {
          }
      const EngineStats after = engine_->stats();  // the failed requests were aborted
      std::lock_guard<std::mutex> lock(mu_);
      stats_ = after;
      post_locked(deliveries);  // their streams were unmapped above: nothing can come between
    }
    busy = engine_->has_unfinished_requests();
  }

  // Shutdown: end every open stream (shutdown() then stops the delivery thread once it has
  // delivered these).
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, weak] : streams_) {
    try {
      engine_->abort_request(id);
    } catch (const std::exception&) {
    }
    if (auto s = weak.lock()) deliveries.emplace_back(std::move(s), final_output(id, FinishReason::Abort, "the server is shutting down"));
  }
  streams_.clear();
  incoming_.clear();
  post_locked(deliveries);
}

}  // namespace tllm
