#include "engine/stats_logger.h"

#include <cstdio>

namespace tllm {

std::optional<std::string> StatsLogger::update(const EngineStats& s, double now) {
  if (last_ < 0) {
    last_ = now;
    prev_ = s;
    return std::nullopt;
  }
  const double dt = now - last_;
  if (dt < interval_) return std::nullopt;
  if (dt > 2 * interval_) {
    // The loop slept (no work): averages over the sleep would read near zero. Start afresh.
    last_ = now;
    prev_ = s;
    return std::nullopt;
  }
  const uint64_t prompt = s.prompt_tokens_total - prev_.prompt_tokens_total;
  const uint64_t generated = s.generation_tokens_total - prev_.generation_tokens_total;
  const bool active = s.num_running > 0 || s.num_waiting > 0;
  if (prompt == 0 && generated == 0 && !active) {
    last_ = now;
    prev_ = s;
    return std::nullopt;
  }
  const uint64_t queries = s.prefix_cache_queries - prev_.prefix_cache_queries;
  const uint64_t hits = s.prefix_cache_hits - prev_.prefix_cache_hits;
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "Avg prompt throughput: %.1f tokens/s, Avg generation throughput: %.1f tokens/s, Running: %d reqs, "
                "Waiting: %d reqs, KV cache usage: %.1f%%, Prefix cache hit rate: %.1f%%",
                prompt / dt, generated / dt, s.num_running, s.num_waiting, 100.0 * s.kv_usage(),
                queries ? 100.0 * static_cast<double>(hits) / static_cast<double>(queries) : 0.0);
  std::string line = buf;
  const uint64_t drafts = s.spec_num_drafts - prev_.spec_num_drafts;
  if (drafts > 0) {
    const uint64_t drafted = s.spec_num_draft_tokens - prev_.spec_num_draft_tokens;
    const uint64_t accepted = s.spec_num_accepted_tokens - prev_.spec_num_accepted_tokens;
    std::snprintf(buf, sizeof(buf),
                  "; SpecDecoding metrics: Mean acceptance length: %.2f, Accepted throughput: %.1f tokens/s, "
                  "Drafted throughput: %.1f tokens/s, Accepted: %llu tokens, Drafted: %llu tokens",
                  1.0 + static_cast<double>(accepted) / static_cast<double>(drafts), accepted / dt, drafted / dt,
                  static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(drafted));
    line += buf;
  }
  last_ = now;
  prev_ = s;
  return line;
}

}  // namespace tllm
