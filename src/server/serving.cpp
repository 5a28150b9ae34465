#include "server/serving.h"

#include <algorithm>
#include <chrono>
#include <random>

#include <httplib.h>

#include "core/logging.h"
#include "core/timer.h"
#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/streaming.h"

namespace tllm {

ServingState::ServingState(ServerOptions opts)
    : options(std::move(opts)),
      model_name(options.served_model_names.empty() ? options.model_dir : options.served_model_names[0]),
      reasoning_parser(reasoning_parser_from_name(options.reasoning_parser)),
      tool_call_parser(tool_call_parser_from_name(options.tool_call_parser)),
      metrics(model_name),
      responses(options.responses_store_size),
      start_time(unix_time()) {}

void ServingState::check_ready() const {
  if (stopping.load()) throw service_unavailable("The server is shutting down.", "shutting_down");
  if (!ready.load(std::memory_order_acquire))
    throw service_unavailable("The model is still loading; retry when /health returns 200.", "model_loading");
}

void ServingState::check_model(const std::optional<std::string>& model) const {
  if (!model) return;  // vLLM serves the default model when none is named
  if (*model == model_name) return;
  for (const auto& name : options.served_model_names)
    if (*model == name) return;
  throw not_found("The model `" + *model + "` does not exist. This server serves `" + model_name + "`.",
                  "model", "model_not_found");
}

const ServingTokenizer& ServingState::require_tokenizer(const char* what) const {
  if (!tokenizer)
    throw bad_request(std::string(what) + " need a tokenizer, and this model was loaded without one "
                      "(send token ids instead)");
  return *tokenizer;
}

void ServingState::require_runner(bool pooling, const char* route) const {
  if (engine->engine().pooling() == pooling) return;
  if (pooling)
    throw bad_request(std::string(route) + " needs an embedding model; this server generates text (serve an "
                      "embedding model with --runner pooling)");
  throw bad_request(std::string(route) + " generates text; this server runs an embedding model (--runner pooling): "
                    "use /v1/embeddings");
}

std::string make_request_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd() ^
           uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
  }());
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = prefix + "-";
  for (int half = 0; half < 2; ++half) {
    uint64_t v = rng();
    for (int i = 0; i < 16; ++i, v >>= 4) id.push_back(hex[v & 15]);
  }
  return id;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- Generation -------------------------------------------------------------------------

Generation::Generation(ServingState& state, std::string id, std::vector<PromptPlan> prompts, int n)
    : state_(state), id_(std::move(id)), prompts_(std::move(prompts)), start_time_(now_seconds()) {
  std::vector<AsyncEngine::Submission> subs;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    for (int i = 0; i < n; ++i) {
      ChoiceState c;
      c.index = static_cast<int>(p) * n + i;
      c.prompt_index = static_cast<int>(p);
      c.num_prompt_tokens = static_cast<int>(prompts_[p].token_ids.size());
      choices_.push_back(std::move(c));
      SamplingParams sp = prompts_[p].params;
      if (sp.seed) sp.seed = *sp.seed + static_cast<uint64_t>(i);  // n choices must differ
      engine_ids_.push_back(id_ + "-" + std::to_string(choices_.back().index));
      subs.push_back({engine_ids_.back(), prompts_[p].token_ids, std::move(sp)});
    }
  }
  if (state_.options.log_requests) log_request(n);
  try {
    stream_ = state_.engine->submit_many(id_, std::move(subs));
  } catch (const AsyncEngine::QueueFull& e) {
    throw service_unavailable(std::string("The server is overloaded: ") + e.what(), "queue_full");
  } catch (const InvalidArgument& e) {
    throw bad_request(e.what(), e.param());
  }
}

Generation::Generation(ServingState& state, std::string id, std::vector<PromptPlan> prompts,
                       std::vector<ChoiceState> finished)
    : state_(state), id_(std::move(id)), prompts_(std::move(prompts)), choices_(std::move(finished)),
      start_time_(now_seconds()) {
  for (ChoiceState& c : choices_) c.finished = true;
  finished_ = static_cast<int>(choices_.size());
}

Generation::~Generation() {
  if (stream_ && !done()) abort();
}

void Generation::abort() {
  for (size_t i = 0; i < choices_.size(); ++i) {
    if (choices_[i].finished) continue;
    // Counted before the engine hears of it: whoever sees the engine idle sees the count.
    state_.metrics.count_finished(FinishReason::Abort);
    state_.engine->abort(engine_ids_[i]);
    choices_[i].finished = true;
    choices_[i].finish_reason = FinishReason::Abort;
    ++finished_;
  }
}

void Generation::log_request(int n) const {
  const int cap = state_.options.max_log_len;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    const PromptPlan& plan = prompts_[p];
    const size_t shown = cap > 0 ? std::min(plan.token_ids.size(), static_cast<size_t>(cap)) : plan.token_ids.size();
    std::string ids = "[";
    for (size_t i = 0; i < shown; ++i) ids += (i ? ", " : "") + std::to_string(plan.token_ids[i]);
    ids += shown < plan.token_ids.size() ? ", ...]" : "]";
    std::string text;
    if (state_.tokenizer) {
      text = state_.tokenizer->decode(std::vector<int32_t>(plan.token_ids.begin(), plan.token_ids.begin() + shown), false);
      if (cap > 0 && text.size() > static_cast<size_t>(cap)) text.resize(static_cast<size_t>(cap));
    }
    const SamplingParams& sp = plan.params;
    std::string quoted;
    append_json_string(quoted, text);  // a character cut in two becomes U+FFFD there
    TLLM_LOG(Info, "Received request ", id_, prompts_.size() > 1 ? " prompt " + std::to_string(p) : std::string(),
             ": prompt: ", quoted, ", params: n=", n, ", temperature=", sp.temperature, ", top_p=", sp.top_p,
             ", top_k=", sp.top_k, ", min_p=", sp.min_p, ", max_tokens=", sp.max_tokens,
             ", seed=", sp.seed ? std::to_string(*sp.seed) : std::string("None"), ", stop=", sp.stop.size(),
             " strings, prompt_token_ids (", plan.token_ids.size(), "): ", ids);
  }
}

void Generation::observe_finished(const ChoiceState& c, double now) {
  ServerMetrics& m = state_.metrics;
  m.e2e_request_latency.observe(now - start_time_);
  m.count_finished(c.error.empty() ? c.finish_reason : FinishReason::None);
  if (c.scheduled_time > 0) {  // it ran (an abort or a refusal may come before that)
    if (c.queued_time > 0) m.request_queue_time.observe(c.scheduled_time - c.queued_time);
    const double last = c.started ? c.last_token_time : now;
    m.request_inference_time.observe(std::max(0.0, last - c.scheduled_time));
    if (c.started) {
      m.request_prefill_time.observe(std::max(0.0, c.first_token_time - c.scheduled_time));
      m.request_decode_time.observe(c.last_token_time - c.first_token_time);
    }
  }
  m.request_prompt_tokens.observe(c.num_prompt_tokens);
  m.request_generation_tokens.observe(static_cast<double>(c.token_ids.size()));
  m.request_params_max_tokens.observe(prompts_[static_cast<size_t>(c.prompt_index)].params.max_tokens);
  if (done()) m.request_params_n.observe(static_cast<double>(choices_.size() / std::max<size_t>(1, prompts_.size())));
}

bool Generation::pump(double timeout_seconds, const OutputFn& on_output) {
  buffer_.clear();
  if (!stream_->drain(buffer_, timeout_seconds)) return false;
  const double now = now_seconds();
  for (RequestOutput& out : buffer_) {
    // Engine ids are "<id>-<choice index>".
    const size_t dash = out.request_id.rfind('-');
    const size_t index = dash == std::string::npos ? 0 : std::strtoul(out.request_id.c_str() + dash + 1, nullptr, 10);
    if (index >= choices_.size()) continue;
    ChoiceState& c = choices_[index];
    if (c.finished) continue;
    if (!out.new_token_ids.empty()) {
      // The engine's stamp, so that events drained in one batch keep their spacing (clamped
      // to the request's start, which the handler took just before submitting it).
      const double t = out.token_time > 0 ? std::max(out.token_time, start_time_) : now;
      if (!c.started) {
        state_.metrics.time_to_first_token.observe(t - start_time_);
        c.started = true;
        c.first_token_time = t;
      } else {
        state_.metrics.inter_token_latency.observe(std::max(0.0, t - c.last_token_time) / out.new_token_ids.size());
      }
      c.last_token_time = t;
      c.token_ids.insert(c.token_ids.end(), out.new_token_ids.begin(), out.new_token_ids.end());
    }
    c.text += out.new_text;
    c.logprobs.insert(c.logprobs.end(), out.new_logprobs.begin(), out.new_logprobs.end());
    if (!out.embedding.empty()) c.embedding = out.embedding;
    if (out.prompt_logprobs) c.prompt_logprobs = out.prompt_logprobs;
    if (out.num_prompt_tokens > 0) c.num_prompt_tokens = out.num_prompt_tokens;
    c.num_cached_tokens = std::max(c.num_cached_tokens, out.num_cached_tokens);
    if (out.queued_time > 0) c.queued_time = out.queued_time;
    if (out.scheduled_time > 0) c.scheduled_time = out.scheduled_time;
    if (out.finished) {
      c.finished = true;
      c.finish_reason = out.finish_reason;
      c.stop_reason = out.stop_reason;
      c.error = out.error;
      ++finished_;
      observe_finished(c, now);
    }
    if (on_output) on_output(c, out);
  }
  return true;
}

int Generation::prompt_tokens() const {
  int total = 0;
  for (const auto& c : choices_)
    if (c.index == 0 || c.prompt_index != choices_[c.index - 1].prompt_index) total += c.num_prompt_tokens;
  return total;
}

int Generation::cached_tokens() const {
  int total = 0;
  for (size_t p = 0; p < prompts_.size(); ++p) {
    int least = -1;
    for (const auto& c : choices_)
      if (c.prompt_index == static_cast<int>(p)) least = least < 0 ? c.num_cached_tokens : std::min(least, c.num_cached_tokens);
    total += std::max(least, 0);
  }
  return total;
}

int Generation::completion_tokens() const {
  int total = 0;
  for (const auto& c : choices_) total += static_cast<int>(c.token_ids.size());
  return total;
}

std::string Generation::error() const {
  for (const auto& c : choices_)
    if (!c.error.empty()) return c.error;
  return "";
}

std::shared_ptr<Generation> best_of_choices(ServingState& state, const Generation& samples,
                                            const GenerationRequest& r) {
  auto mean = [](const ChoiceState& c) {
    double sum = 0.0;
    for (const TokenLogprob& t : c.logprobs) sum += t.logprob;
    return c.logprobs.empty() ? 0.0 : sum / static_cast<double>(c.logprobs.size());
  };
  std::vector<ChoiceState> chosen;
  for (size_t p = 0; p < samples.prompts().size(); ++p) {
    std::vector<ChoiceState> mine;
    for (const ChoiceState& c : samples.choices())
      if (c.prompt_index == static_cast<int>(p)) mine.push_back(c);
    std::stable_sort(mine.begin(), mine.end(), [&](const ChoiceState& a, const ChoiceState& b) { return mean(a) > mean(b); });
    for (int i = 0; i < r.n && i < static_cast<int>(mine.size()); ++i) {
      ChoiceState c = std::move(mine[static_cast<size_t>(i)]);
      c.index = static_cast<int>(chosen.size());
      if (r.logprobs < 0) c.logprobs.clear();
      chosen.push_back(std::move(c));
    }
  }
  return std::make_shared<Generation>(state, samples.id(), samples.prompts(), std::move(chosen));
}

bool wait_for_completion(Generation& gen, const ClientConnection& conn) {
  // Poll the socket every 50 ms: a client that gave up must not keep its KV blocks.
  constexpr double kCheckInterval = 0.05;
  double next_check = now_seconds() + kCheckInterval;
  while (!gen.done()) {
    gen.pump(kCheckInterval);
    const double now = now_seconds();
    if (now >= next_check) {
      if (conn.closed()) {
        gen.abort();
        return false;
      }
      next_check = now + kCheckInterval;
    }
  }
  return true;
}

std::string engine_error_body(const std::string& message) {
  return error_body(internal_error("The engine failed this request: " + message));
}

bool stream_generation(Generation& gen, const ClientConnection& conn, httplib::DataSink& sink,
                       std::string initial, const ChunkFormatter& format,
                       const std::function<void(std::string&)>& finish,
                       const std::function<void(std::string&, const std::string&)>& on_error, bool done_marker) {
  constexpr double kCheckInterval = 0.05;
  // One chunk per batch of outputs, written straight to the socket when it was found
  // (one syscall), else through httplib's sink (two poll()s and a send).
  auto write = [&](const std::string& b) {
    return conn.found() ? conn.write_chunk(b) : sink.write(b.data(), b.size());
  };
  std::string buf = std::move(initial);
  if (!buf.empty() && !write(buf)) {
    gen.abort();
    return false;
  }
  buf.clear();
  double next_check = now_seconds() + kCheckInterval;
  std::string error;
  while (!gen.done()) {
    const bool got = gen.pump(kCheckInterval, [&](ChoiceState& c, const RequestOutput& out) {
      if (!out.error.empty()) {
        if (error.empty()) error = out.error;
        return;
      }
      format(c, out, buf);
    });
    if (!error.empty()) break;
    if (!buf.empty()) {
      if (!write(buf)) {
        gen.abort();
        return false;
      }
      buf.clear();
    }
    const double now = now_seconds();
    if (!got || now >= next_check) {
      if (conn.closed()) {
        gen.abort();
        return false;
      }
      next_check = now + kCheckInterval;
    }
  }
  if (!error.empty()) {
    gen.abort();
    if (on_error) on_error(buf, error);
    else append_sse_event(buf, engine_error_body(error));
  } else {
    finish(buf);
  }
  if (done_marker) buf += kSseDone;
  if (!write(buf)) return false;
  sink.done();
  return true;
}

void respond_when_done(Generation& gen, const ClientConnection& conn, httplib::Response& res,
                       const std::function<std::string()>& build) {
  if (!wait_for_completion(gen, conn)) return;  // the client left; nobody reads this
  if (const std::string err = gen.error(); !err.empty()) {
    res.status = 500;
    res.set_content(engine_error_body(err), "application/json");
    return;
  }
  res.set_content(build(), "application/json");
}

void append_finish(std::string& out, const ChoiceState& c, const char* reason) {
  out += ",\"finish_reason\":";
  if (c.finished) append_json_string(out, reason ? reason : finish_reason_name(c.finish_reason));
  else out += "null";
  out += ",\"stop_reason\":";
  if (!c.finished || !c.stop_reason) out += "null";
  else if (const int32_t* id = std::get_if<int32_t>(&*c.stop_reason)) out += std::to_string(*id);  // as vLLM: a number
  else append_json_string(out, std::get<std::string>(*c.stop_reason));
}

void append_token_ids(std::string& out, std::string_view name, std::span<const int32_t> ids) {
  out += ",\"";
  out += name;
  out += "\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    append_json_number(out, static_cast<int64_t>(ids[i]));
  }
  out.push_back(']');
}

void append_response_tail(std::string& out, const Generation& gen, const std::string& fields) {
  out += "]";
  out += fields;
  out += ",\"usage\":";
  append_usage(out, gen.prompt_tokens(), gen.completion_tokens(), gen.cached_tokens());
  out += "}";
}

std::string choice_usage(const GenerationRequest& r, const Generation& gen, const ChoiceState& c) {
  std::string usage;
  if (!r.continuous_usage) return usage;
  append_usage(usage, static_cast<int>(gen.prompts()[c.prompt_index].token_ids.size()),
               static_cast<int>(c.token_ids.size()), c.num_cached_tokens);
  return usage;
}

void append_usage_chunk(std::string& out, const ChunkWriter& writer, const Generation& gen) {
  std::string usage;
  append_usage(usage, gen.prompt_tokens(), gen.completion_tokens(), gen.cached_tokens());
  writer.append_usage_event(out, usage);
}

void append_usage(std::string& out, int prompt_tokens, int completion_tokens, int cached_tokens) {
  out += "{\"prompt_tokens\":";
  append_json_number(out, static_cast<int64_t>(prompt_tokens));
  out += ",\"total_tokens\":";
  append_json_number(out, static_cast<int64_t>(prompt_tokens + completion_tokens));
  out += ",\"completion_tokens\":";
  append_json_number(out, static_cast<int64_t>(completion_tokens));
  out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
  append_json_number(out, static_cast<int64_t>(cached_tokens));
  out += "}}";
}

}  // namespace tllm
