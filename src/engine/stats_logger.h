// The serving loop's periodic stats line, as vLLM logs it (--disable-log-stats turns it off):
// prompt and generation throughput over the interval, running and waiting requests, KV cache
// usage, the interval's prefix-cache hit rate and, with speculative decoding, the drafts'
// mean acceptance length and counts.
#pragma once

#include <optional>
#include <string>

#include "engine/engine.h"

namespace tllm {

class StatsLogger {
 public:
  explicit StatsLogger(double interval_s) : interval_(interval_s) {}
  // The line(s) to log at time `now` (seconds): once `interval` has passed since the last
  // line, and only when tokens were processed in between or requests are still running or
  // waiting; nullopt otherwise. After more than two intervals without a call (the serving loop
  // slept for want of work) the interval starts afresh instead.
  std::optional<std::string> update(const EngineStats& s, double now);

 private:
  double interval_;
  double last_ = -1;
  EngineStats prev_;
};

}  // namespace tllm
