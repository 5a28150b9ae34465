// Prometheus text exposition (format 0.0.4) of the server's metrics under vLLM's names,
// so dashboards built for `vllm serve` work unchanged. Engine counters and gauges come
// from an EngineStats snapshot at scrape time; latency histograms are observed by the
// request handlers as outputs arrive.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/request.h"

namespace tllm {

// Appends `<name>_bucket{le=...,labels}` (cumulative), `_count` and `_sum` lines (no HELP /
// TYPE) for per-bucket counts (counts[i]: values <= bounds[i] and above the bound before; the
// last entry: above every bound).
void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double sum,
                      uint64_t count);

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  // Appends `<name>_bucket{le=...,labels}`, `_sum` and `_count` lines (no HELP/TYPE).
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const;
  double sum() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last = +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

// vLLM's default bucket boundaries (vllm/v1/metrics/buckets.py).
std::vector<double> ttft_buckets();
std::vector<double> inter_token_latency_buckets();
std::vector<double> request_latency_buckets();
// vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to `max` (token counts). vLLM stops
// at the model's context; these go to 10^6 (the server's metrics exist before the model loads),
// so the buckets past the context just repeat the count.
std::vector<double> token_count_buckets(double max = 1e6);

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  Histogram time_to_first_token{ttft_buckets()};
  Histogram inter_token_latency{inter_token_latency_buckets()};
  Histogram e2e_request_latency{request_latency_buckets()};
  // Per finished request (choice), as vLLM's frontend records them from the engine's events:
  // queue = queued -> first scheduled, prefill = scheduled -> first token, decode = first ->
  // last token, inference = scheduled -> last token; its prompt and generated tokens and its
  // max_tokens; and per request its n.
  Histogram request_queue_time{request_latency_buckets()};
  Histogram request_prefill_time{request_latency_buckets()};
  Histogram request_decode_time{request_latency_buckets()};
  Histogram request_inference_time{request_latency_buckets()};
  Histogram request_prompt_tokens{token_count_buckets()};
  Histogram request_generation_tokens{token_count_buckets()};
  Histogram request_params_max_tokens{token_count_buckets()};
  Histogram request_params_n{{1, 2, 5, 10, 20}};

  void count_finished(FinishReason reason);  // vllm:request_success_total{finished_reason}
  void count_http(int status);               // tinyllm:http_responses_total{status class}

  // vllm:cache_config_info's labels, from the loaded engine's configuration; set once, before
  // the server reports ready (render reads it only with stats, i.e. once ready).
  void set_cache_config(const EngineConfig& config, int num_kv_blocks);

  // The whole exposition, given the engine's stats (nullopt while the model loads).
  std::string render(const EngineStats* stats) const;

 private:
  std::string model_name_;
  std::string labels_;  // model_name="..."
  std::string cache_labels_;  // vllm:cache_config_info's
  std::array<std::atomic<uint64_t>, 4> finished_{};  // stop, length, abort, error
  std::array<std::atomic<uint64_t>, 5> http_{};      // 1xx..5xx
};

}  // namespace tllm
