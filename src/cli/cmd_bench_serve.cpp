// tinyllm bench-serve: a serving benchmark client in the manner of `vllm bench serve`.
// Random prompts of token ids (sent as ids, so the input length is exact) with ignore_eos
// (so is the output length), Poisson arrivals (--request-rate, inf: all at once) and/or a
// cap on requests in flight (--max-concurrency); each request streams over its own
// connection. Prints vLLM's result table; --result-file writes the numbers as JSON.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>
#include <semaphore>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/timer.h"
#include "server/sse_client.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;

struct BenchServeArgs {
  std::string base_url;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string model;      // served model name; when a folder, also where the vocabulary is read
  std::string tokenizer;  // folder with config.json / tokenizer.json (default: --model, or the server's root)
  std::string api_key;
  int num_prompts = 1000;
  int random_input_len = 1024;
  int random_output_len = 128;
  double random_range_ratio = 0.0;
  double request_rate = std::numeric_limits<double>::infinity();
  int max_concurrency = 0;
  uint64_t seed = 0;
  double temperature = 0.0;
  std::string result_file;
};

struct RequestResult {
  bool success = false;
  std::string error;
  int prompt_len = 0;
  int output_tokens = 0;
  double ttft = 0.0;     // seconds
  double latency = 0.0;  // seconds, request sent -> [DONE]
  std::vector<double> itl;
};

// Token ids safe to send: below the model's vocab_size and below the first added
// (special) token of tokenizer.json.
int32_t vocab_limit(const std::string& dir) {
  std::ifstream cfg(fs::path(dir) / "config.json");
  TLLM_CHECK_ARG(cfg.good(), "bench-serve: cannot read ", (fs::path(dir) / "config.json").string(),
                 "; pass --tokenizer DIR (the model folder) so random token ids stay in the vocabulary");
  const auto c = nlohmann::json::parse(cfg, nullptr, false);
  TLLM_CHECK_ARG(c.is_object() && c.contains("vocab_size") && c["vocab_size"].is_number_integer(),
                 "bench-serve: ", dir, "/config.json has no integer vocab_size");
  int32_t limit = c["vocab_size"].get<int32_t>();
  std::ifstream tj(fs::path(dir) / "tokenizer.json");
  if (tj.good()) {
    const auto t = nlohmann::json::parse(tj, nullptr, false);
    if (t.is_object() && t.contains("added_tokens") && t["added_tokens"].is_array())
      for (const auto& a : t["added_tokens"])
        if (a.contains("id") && a["id"].is_number_integer()) limit = std::min(limit, a["id"].get<int32_t>());
  }
  TLLM_CHECK_ARG(limit > 0, "bench-serve: no usable token ids in ", dir);
  return limit;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

RequestResult run_request(const std::string& base_url, const std::string& api_key, const std::string& body,
                          int prompt_len) {
  RequestResult r;
  r.prompt_len = prompt_len;
  SseClient client(base_url);
  if (!api_key.empty()) client.set_bearer_token(api_key);
  const double t0 = now_seconds();
  double last = t0;
  bool got_first = false, done = false;
  const SseResponse res = client.post("/v1/completions", body, [&](std::string_view data) {
    const double now = now_seconds();
    if (data == "[DONE]") {
      done = true;
      return true;
    }
    if (data.rfind("{\"error\"", 0) == 0) {
      r.error = std::string(data);
      return true;
    }
    if (data.find("\"choices\":[]") != std::string_view::npos) {  // the usage chunk
      const auto j = nlohmann::json::parse(data, nullptr, false);
      if (j.is_object() && j.contains("usage")) r.output_tokens = j["usage"].value("completion_tokens", 0);
      return true;
    }
    if (!got_first) {
      r.ttft = now - t0;
      got_first = true;
    } else {
      r.itl.push_back(now - last);
    }
    last = now;
    return true;
  });
  r.latency = now_seconds() - t0;
  if (res.status != 200) {
    r.error = "HTTP " + std::to_string(res.status) + " " + res.error + " " + res.body.substr(0, 300);
  } else if (!done && r.error.empty()) {
    r.error = "stream ended without [DONE] (" + res.error + ")";
  }
  r.success = r.error.empty() && got_first;
  return r;
}

void run_bench_serve(const BenchServeArgs& a) {
  TLLM_CHECK_ARG(a.num_prompts >= 1, "--num-prompts must be at least 1");
  TLLM_CHECK_ARG(a.random_input_len >= 1 && a.random_output_len >= 1, "--random-input-len and --random-output-len must be >= 1");
  TLLM_CHECK_ARG(a.random_range_ratio >= 0.0 && a.random_range_ratio < 1.0, "--random-range-ratio must be in [0, 1)");
  TLLM_CHECK_ARG(a.request_rate > 0.0, "--request-rate must be positive (inf: send all at once)");
  TLLM_CHECK_ARG(std::isfinite(a.temperature) && a.temperature >= 0.0, "--temperature must be a finite number >= 0, got ",
                 a.temperature);
  std::string base_url = a.base_url.empty() ? "http://" + a.host + ":" + std::to_string(a.port) : a.base_url;
  {
    std::string host;
    int port = 0;
    parse_base_url(base_url, host, port);
    base_url = "http://" + host + ":" + std::to_string(port);
  }

  // The served model (the first one when --model is not given) and where its vocabulary is.
  std::string model = a.model, root;
  {
    std::string host;
    int port = 0;
    parse_base_url(base_url, host, port);
    httplib::Client cli(host, port);
    httplib::Headers headers;
    if (!a.api_key.empty()) headers.emplace("Authorization", "Bearer " + a.api_key);
    auto res = cli.Get("/v1/models", headers);
    TLLM_CHECK(res && res->status == 200, "bench-serve: GET ", base_url, "/v1/models failed (",
               res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error()), ")");
    const auto j = nlohmann::json::parse(res->body, nullptr, false);
    TLLM_CHECK(j.is_object() && j.contains("data") && !j["data"].empty(), "bench-serve: /v1/models lists no model");
    if (model.empty()) model = j["data"][0].value("id", "");
    root = j["data"][0].value("root", "");
  }
  std::string vocab_dir = a.tokenizer;
  if (vocab_dir.empty()) vocab_dir = fs::is_directory(a.model) ? a.model : root;
  const int32_t vocab = vocab_limit(vocab_dir);

  std::mt19937_64 rng(a.seed);
  auto length = [&](int mean_len) {
    const int lo = std::max(1, static_cast<int>(std::floor(mean_len * (1.0 - a.random_range_ratio))));
    const int hi = std::max(lo, static_cast<int>(std::ceil(mean_len * (1.0 + a.random_range_ratio))));
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::vector<std::string> bodies(a.num_prompts);
  std::vector<int> prompt_lens(a.num_prompts);
  for (int i = 0; i < a.num_prompts; ++i) {
    const int in = length(a.random_input_len), out = length(a.random_output_len);
    std::vector<int32_t> ids(in);
    for (auto& t : ids) t = token(rng);
    nlohmann::json body = {{"model", model},   {"prompt", ids},       {"max_tokens", out},
                           {"ignore_eos", true}, {"temperature", a.temperature}, {"stream", true},
                           {"stream_options", {{"include_usage", true}}}};
    bodies[i] = body.dump();
    prompt_lens[i] = in;
  }

  std::printf("bench-serve: %d requests to %s (model %s), input %d, output %d, rate %s, max concurrency %s\n",
              a.num_prompts, base_url.c_str(), model.c_str(), a.random_input_len, a.random_output_len,
              std::isinf(a.request_rate) ? "inf" : std::to_string(a.request_rate).c_str(),
              a.max_concurrency > 0 ? std::to_string(a.max_concurrency).c_str() : "none");
  std::fflush(stdout);

  const int slots = a.max_concurrency > 0 ? a.max_concurrency : a.num_prompts;
  std::counting_semaphore<> in_flight(slots);
  std::vector<RequestResult> results(a.num_prompts);
  // A thread per request, detached so that a finished one gives its stack back at once (10,000
  // joinable threads kept 10,000 stacks until the end); the last one out wakes the main thread.
  std::mutex done_mu;
  std::condition_variable done_cv;
  int running = 0;
  std::exponential_distribution<double> gap(std::isinf(a.request_rate) ? 1.0 : a.request_rate);
  const double t_start = now_seconds();
  double next_arrival = t_start;
  for (int i = 0; i < a.num_prompts; ++i) {
    if (!std::isinf(a.request_rate)) {
      const double wait = next_arrival - now_seconds();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      next_arrival += gap(rng);
    }
    in_flight.acquire();
    {
      std::lock_guard<std::mutex> lock(done_mu);
      ++running;
    }
    std::thread([&, i] {
      try {
        results[i] = run_request(base_url, a.api_key, bodies[i], prompt_lens[i]);
      } catch (const std::exception& e) {
        results[i].error = e.what();
      }
      in_flight.release();
      std::lock_guard<std::mutex> lock(done_mu);  // held to the end: nothing is touched after it
      if (--running == 0) done_cv.notify_all();
    }).detach();
  }
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return running == 0; });
  }
  const double duration = now_seconds() - t_start;

  int completed = 0;
  long long total_in = 0, total_out = 0;
  std::vector<double> ttfts, tpots, itls, e2els;
  std::string first_error;
  for (const auto& r : results) {
    if (!r.success) {
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++completed;
    total_in += r.prompt_len;
    total_out += r.output_tokens;
    ttfts.push_back(r.ttft * 1e3);
    e2els.push_back(r.latency * 1e3);
    if (r.output_tokens > 1) tpots.push_back((r.latency - r.ttft) / (r.output_tokens - 1) * 1e3);
    for (double x : r.itl) itls.push_back(x * 1e3);
  }

  auto row = [](const char* name, double v, const char* fmt = "%-40s%-.2f\n") { std::printf(fmt, name, v); };
  std::printf("============ Serving Benchmark Result ============\n");
  std::printf("%-40s%-d\n", "Successful requests:", completed);
  if (completed < a.num_prompts) std::printf("%-40s%-d\n", "Failed requests:", a.num_prompts - completed);
  if (a.max_concurrency > 0) std::printf("%-40s%-d\n", "Maximum request concurrency:", a.max_concurrency);
  row("Benchmark duration (s):", duration);
  std::printf("%-40s%-lld\n", "Total input tokens:", total_in);
  std::printf("%-40s%-lld\n", "Total generated tokens:", total_out);
  row("Request throughput (req/s):", completed / duration);
  row("Output token throughput (tok/s):", total_out / duration);
  row("Total Token throughput (tok/s):", (total_in + total_out) / duration);
  std::printf("%s\n", "---------------Time to First Token----------------");
  row("Mean TTFT (ms):", mean(ttfts));
  row("Median TTFT (ms):", percentile(ttfts, 50));
  row("P99 TTFT (ms):", percentile(ttfts, 99));
  std::printf("%s\n", "-----Time per Output Token (excl. 1st token)------");
  row("Mean TPOT (ms):", mean(tpots));
  row("Median TPOT (ms):", percentile(tpots, 50));
  row("P99 TPOT (ms):", percentile(tpots, 99));
  std::printf("%s\n", "---------------Inter-token Latency----------------");
  row("Mean ITL (ms):", mean(itls));
  row("Median ITL (ms):", percentile(itls, 50));
  row("P99 ITL (ms):", percentile(itls, 99));
  std::printf("==================================================\n");
  if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
  std::fflush(stdout);

  if (!a.result_file.empty()) {
    nlohmann::ordered_json j = {
        {"base_url", base_url}, {"model", model}, {"num_prompts", a.num_prompts},
        {"completed", completed}, {"duration", duration}, {"total_input_tokens", total_in},
        {"total_output_tokens", total_out}, {"request_throughput", completed / duration},
        {"output_throughput", total_out / duration}, {"total_token_throughput", (total_in + total_out) / duration},
        {"mean_ttft_ms", mean(ttfts)}, {"median_ttft_ms", percentile(ttfts, 50)}, {"p99_ttft_ms", percentile(ttfts, 99)},
        {"mean_tpot_ms", mean(tpots)}, {"median_tpot_ms", percentile(tpots, 50)}, {"p99_tpot_ms", percentile(tpots, 99)},
        {"mean_itl_ms", mean(itls)}, {"median_itl_ms", percentile(itls, 50)}, {"p99_itl_ms", percentile(itls, 99)}};
    std::ofstream f(a.result_file);
    TLLM_CHECK_ARG(f.good(), "bench-serve: cannot write --result-file ", a.result_file);
    f << j.dump(2) << "\n";
  }
  TLLM_CHECK(completed > 0, "bench-serve: every request failed; first error: ", first_error);
}

}  // namespace

void register_bench_serve_command(CLI::App& app) {
  auto args = std::make_shared<BenchServeArgs>();
  BenchServeArgs& a = *args;
  CLI::App* cmd = app.add_subcommand("bench-serve", "serving benchmark client (like `vllm bench serve`)");
  cmd->add_option("--base-url", a.base_url, "server URL, e.g. http://127.0.0.1:8000 (overrides --host/--port)");
  cmd->add_option("--host", a.host)->capture_default_str();
  cmd->add_option("--port", a.port)->capture_default_str();
  cmd->add_option("--model", a.model, "served model name (default: the server's first)");
  cmd->add_option("--tokenizer", a.tokenizer, "model folder whose config.json bounds the random token ids");
  cmd->add_option("--api-key", a.api_key);
  cmd->add_option("--dataset-name", [](const CLI::results_t& r) { return r.size() == 1 && r[0] == "random"; },
                  "only 'random' is supported");
  cmd->add_option("--num-prompts", a.num_prompts)->capture_default_str();
  cmd->add_option("--random-input-len", a.random_input_len)->capture_default_str();
  cmd->add_option("--random-output-len", a.random_output_len)->capture_default_str();
  cmd->add_option("--random-range-ratio", a.random_range_ratio, "lengths uniform in [len*(1-r), len*(1+r)]")
      ->capture_default_str();
  cmd->add_option("--request-rate", a.request_rate, "requests per second, Poisson arrivals (default inf)");
  cmd->add_option("--max-concurrency", a.max_concurrency, "most requests in flight (0: no limit)")->capture_default_str();
  cmd->add_option("--seed", a.seed)->capture_default_str();
  cmd->add_option("--temperature", a.temperature)->capture_default_str();
  cmd->add_option("--result-file", a.result_file, "write the results as JSON here");
  cmd->callback([args] { run_bench_serve(*args); });
}

}  // namespace tllm
