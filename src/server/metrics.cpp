#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace tllm {
namespace {

// Prometheus sample values: Python's float repr style ("1.0", "0.25", "+Inf").
std::string prom_number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, r.ptr);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const char* name, const std::string& labels, double v) {
  out += name;
  out += '{';
  out += labels;
  out += "} ";
  out += prom_number(v);
  out += '\n';
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t b = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  std::lock_guard<std::mutex> lock(mu_);
  counts_[b] += 1;
  sum_ += v;
  count_ += 1;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

double Histogram::sum() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sum_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::vector<uint64_t> counts;
  double sum;
  uint64_t count;
  {
    std::lock_guard<std::mutex> lock(mu_);
    counts = counts_;
    sum = sum_;
    count = count_;
  }
  render_histogram(out, name, labels, bounds_, counts, sum, count);
}

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const std::vector<double>& bounds, const std::vector<uint64_t>& counts, double sum,
                      uint64_t count) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds.size(); ++i) {
    cumulative += counts[i];
    const double le = i < bounds.size() ? bounds[i] : INFINITY;
    out += name;
    out += "_bucket{le=\"";
    out += prom_number(le);
    out += "\",";
    out += labels;
    out += "} ";
    out += prom_number(static_cast<double>(cumulative));
    out += '\n';
  }
  out += name + "_count{" + labels + "} " + prom_number(static_cast<double>(count)) + "\n";
  out += name + "_sum{" + labels + "} " + prom_number(sum) + "\n";
}

std::vector<double> ttft_buckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> inter_token_latency_buckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> request_latency_buckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

std::vector<double> token_count_buckets(double max) {
  std::vector<double> out;
  for (double scale = 1; scale <= max; scale *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (m * scale <= max) out.push_back(m * scale);
  return out;
}

ServerMetrics::ServerMetrics(std::string model_name)
    : model_name_(std::move(model_name)),
      labels_("model_name=\"" + escape_label(model_name_) + "\"") {}

void ServerMetrics::set_cache_config(const EngineConfig& c, int num_kv_blocks) {
  // vLLM's labels are str() of CacheConfig's fields: Python's spelling of bools and floats.
  auto label = [](const char* k, const std::string& v) { return std::string(",") + k + "=\"" + escape_label(v) + "\""; };
  cache_labels_ = labels_ + label("block_size", std::to_string(c.block_size)) + label("cache_dtype", c.kv_cache_dtype) +
                  label("enable_prefix_caching", c.enable_prefix_caching ? "True" : "False") +
                  label("gpu_memory_utilization", prom_number(c.gpu_memory_utilization)) +
                  label("num_gpu_blocks", std::to_string(num_kv_blocks)) + label("device", c.device);
}

void ServerMetrics::count_finished(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop: finished_[0]++; break;
    case FinishReason::Length: finished_[1]++; break;
    case FinishReason::Abort: finished_[2]++; break;
    case FinishReason::None: finished_[3]++; break;
  }
}

void ServerMetrics::count_http(int status) {
  const int cls = status / 100 - 1;
  if (cls >= 0 && cls < 5) http_[cls]++;
}

std::string ServerMetrics::render(const EngineStats* stats) const {
  std::string out;
  out.reserve(8192);
  const EngineStats s = stats ? *stats : EngineStats{};

  header(out, "vllm:num_requests_running", "gauge", "Number of requests in model execution batches.");
  sample(out, "vllm:num_requests_running", labels_, s.num_running);
  header(out, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.");
  sample(out, "vllm:num_requests_waiting", labels_, s.num_waiting);
  header(out, "vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.");
  sample(out, "vllm:kv_cache_usage_perc", labels_, s.kv_usage());
  header(out, "tinyllm:kv_cache_blocks", "gauge",
         "KV-cache blocks by state (used, free, cached_free: free but holding a reusable prefix).");
  sample(out, "tinyllm:kv_cache_blocks", labels_ + ",state=\"used\"",
         s.num_kv_blocks - s.num_free_kv_blocks - s.num_cached_free_blocks);
  sample(out, "tinyllm:kv_cache_blocks", labels_ + ",state=\"free\"", s.num_free_kv_blocks);
  sample(out, "tinyllm:kv_cache_blocks", labels_ + ",state=\"cached_free\"", s.num_cached_free_blocks);

  header(out, "vllm:prefix_cache_queries_total", "counter",
         "Prefix cache queries, in terms of number of queried tokens.");
  sample(out, "vllm:prefix_cache_queries_total", labels_, double(s.prefix_cache_queries));
  header(out, "vllm:prefix_cache_hits_total", "counter",
         "Prefix cache hits, in terms of number of cached tokens.");
  sample(out, "vllm:prefix_cache_hits_total", labels_, double(s.prefix_cache_hits));
  header(out, "vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.");
  sample(out, "vllm:num_preemptions_total", labels_, double(s.num_preemptions));
  header(out, "tinyllm:nonfinite_logit_rows_total", "counter",
         "Tokens drawn from a logits row with no usable value (NaN or no finite logit): the model overflows.");
  sample(out, "tinyllm:nonfinite_logit_rows_total", labels_, double(s.nonfinite_logit_rows));
  header(out, "vllm:spec_decode_num_drafts_total", "counter",
         "Number of spec decoding drafts (verification steps of a sequence with drafted tokens).");
  sample(out, "vllm:spec_decode_num_drafts_total", labels_, double(s.spec_num_drafts));
  header(out, "vllm:spec_decode_num_draft_tokens_total", "counter", "Number of draft tokens.");
  sample(out, "vllm:spec_decode_num_draft_tokens_total", labels_, double(s.spec_num_draft_tokens));
  header(out, "vllm:spec_decode_num_accepted_tokens_total", "counter", "Number of accepted tokens.");
  sample(out, "vllm:spec_decode_num_accepted_tokens_total", labels_, double(s.spec_num_accepted_tokens));
  header(out, "vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.");
  sample(out, "vllm:prompt_tokens_total", labels_, double(s.prompt_tokens_total));
  header(out, "vllm:generation_tokens_total", "counter", "Number of generation tokens processed.");
  sample(out, "vllm:generation_tokens_total", labels_, double(s.generation_tokens_total));

  if (stats) {
    header(out, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
    sample(out, "vllm:cache_config_info", cache_labels_, 1.0);
  }
  header(out, "vllm:iteration_tokens_total", "histogram", "Histogram of number of tokens per engine_step.");
  render_histogram(out, "vllm:iteration_tokens_total", labels_,
                   std::vector<double>(kIterationTokenBounds.begin(), kIterationTokenBounds.end()),
                   std::vector<uint64_t>(s.iteration_tokens.begin(), s.iteration_tokens.end()),
                   double(s.iteration_tokens_sum), s.num_steps);

  header(out, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
  static const char* reasons[] = {"stop", "length", "abort", "error"};
  for (int i = 0; i < 4; ++i)
    sample(out, "vllm:request_success_total",
           labels_ + ",finished_reason=\"" + reasons[i] + "\"", double(finished_[i].load()));

  header(out, "vllm:time_to_first_token_seconds", "histogram",
         "Histogram of time to first token in seconds.");
  time_to_first_token.render(out, "vllm:time_to_first_token_seconds", labels_);
  header(out, "vllm:inter_token_latency_seconds", "histogram",
         "Histogram of inter-token latency in seconds.");
  inter_token_latency.render(out, "vllm:inter_token_latency_seconds", labels_);
  header(out, "vllm:e2e_request_latency_seconds", "histogram",
         "Histogram of e2e request latency in seconds.");
  e2e_request_latency.render(out, "vllm:e2e_request_latency_seconds", labels_);
  const struct {
    const Histogram& h;
    const char *name, *help;
  } per_request[] = {
      {request_queue_time, "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request."},
      {request_prefill_time, "vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request."},
      {request_decode_time, "vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request."},
      {request_inference_time, "vllm:request_inference_time_seconds",
       "Histogram of time spent in RUNNING phase for request."},
      {request_prompt_tokens, "vllm:request_prompt_tokens", "Number of prefill tokens processed."},
      {request_generation_tokens, "vllm:request_generation_tokens", "Number of generation tokens processed."},
      {request_params_max_tokens, "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter."},
      {request_params_n, "vllm:request_params_n", "Histogram of the n request parameter."},
  };
  for (const auto& m : per_request) {
    header(out, m.name, "histogram", m.help);
    m.h.render(out, m.name, labels_);
  }

  header(out, "tinyllm:http_responses_total", "counter", "HTTP responses by status class.");
  static const char* classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 5; ++i)
    sample(out, "tinyllm:http_responses_total", labels_ + ",status=\"" + classes[i] + "\"",
           double(http_[i].load()));
  return out;
}

}  // namespace tllm
