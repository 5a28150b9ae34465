// What the route handlers share: the engine (once loaded), the tokenizer view, metrics,
// and the Generation driver that runs one API request as one or more engine requests.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "engine/async_engine.h"
#include "server/background_jobs.h"
#include "server/chat_output.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/protocol.h"
#include "server/response_store.h"
#include "server/tokenization.h"

namespace httplib {
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace tllm {

class ClientConnection;
class ChunkWriter;

struct ServingState {
  explicit ServingState(ServerOptions opts);

  ServerOptions options;
  std::string model_name;  // the first served name
  ReasoningParser reasoning_parser = ReasoningParser::None;  // from options.reasoning_parser
  ToolCallParser tool_call_parser = ToolCallParser::Hermes;  // from options.tool_call_parser
  ServerMetrics metrics;
  ResponseStore responses;  // /v1/responses stored for previous_response_id
  int64_t start_time = 0;   // unix seconds

  // Set once by set_engine(); read without a lock after `ready` is seen true.
  std::unique_ptr<AsyncEngine> engine;
  std::unique_ptr<ServingTokenizer> tokenizer;  // null when the model has no tokenizer
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
  // Background responses' generations. Declared after what they use (engine, responses), so
  // the destructor joins them first.
  BackgroundJobs background;

  // 503 while loading; 404 when `model` names another model.
  void check_ready() const;
  void check_model(const std::optional<std::string>& model) const;
  const ServingTokenizer& require_tokenizer(const char* what) const;
  // 400 naming the runner when the model serves embeddings (generation routes) or generates
  // text (/v1/embeddings).
  void require_runner(bool pooling, const char* route) const;
};

// Random request ids: "<prefix>-<32 hex digits>".
std::string make_request_id(const std::string& prefix);
// `],"usage":{"prompt_tokens","total_tokens"}}`, closing a pooling route's list response
// (opened with append_response_head(..., "list", ..., "data"); serving_embeddings.cpp).
void close_list_response(std::string& out, int64_t prompt_tokens);
int64_t unix_time();

// One engine request's accumulated state, as the response builders need it.
struct ChoiceState {
  int index = 0;
  int prompt_index = 0;
  std::vector<int32_t> token_ids;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  std::optional<std::vector<std::optional<TokenLogprob>>> prompt_logprobs;
  FinishReason finish_reason = FinishReason::None;
  std::optional<std::variant<std::string, int32_t>> stop_reason;  // a stop string or a stop token id
  std::string error;
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;
  bool finished = false;
  bool started = false;  // a token has arrived
  double first_token_time = 0, last_token_time = 0;
  double queued_time = 0, scheduled_time = 0;  // the engine's (RequestOutput)
  std::vector<float> embedding;  // a pooling model's output
};

struct PromptPlan {
  std::vector<int32_t> token_ids;
  SamplingParams params;
};

// A chat request's prompt: rendered with the model's chat template, tokenized, truncated as
// asked, with its sampling settings (a forced or strict tool call's output format included);
// `prompt_param` names the conversation field in errors (serving_chat.cpp).
// With tool_choice "auto" and a structured output, the reply is that or tool calls; under a
// reasoning parser the structured output starts after the reasoning (chat_output.h).
PromptPlan chat_prompt_plan(const LLMEngine& engine, const ServingTokenizer& tok, const ChatRequest& r,
                            const std::string& prompt_param, ToolCallParser format, ReasoningParser reasoning);

// Runs prompts x n choices through the AsyncEngine (ids "<id>-<choice>", seeds offset per
// choice when the request has one), records metrics, and aborts every unfinished choice
// when destroyed (a handler that returns early, a client that left).
class Generation {
 public:
  // Submits; throws ApiError (400 for InvalidArgument, 503 for a full queue).
  Generation(ServingState& state, std::string id, std::vector<PromptPlan> prompts, int n);
  // Choices computed elsewhere (beam search), all finished: the response builders format them
  // as a generation's; nothing is submitted.
  Generation(ServingState& state, std::string id, std::vector<PromptPlan> prompts, std::vector<ChoiceState> finished);
  ~Generation();

  const std::string& id() const { return id_; }
  std::vector<ChoiceState>& choices() { return choices_; }
  const std::vector<ChoiceState>& choices() const { return choices_; }
  const std::vector<PromptPlan>& prompts() const { return prompts_; }
  bool done() const { return finished_ == static_cast<int>(choices_.size()); }

  // Waits up to timeout for outputs, folds them into choices() and calls on_output(choice,
  // output) for each. Returns false when nothing arrived.
  using OutputFn = std::function<void(ChoiceState&, const RequestOutput&)>;
  bool pump(double timeout_seconds, const OutputFn& on_output = nullptr);
  void abort();

  // Totals for "usage": prompt tokens once per prompt, cached tokens likewise (the
  // smallest count among a prompt's choices), completion tokens over every choice.
  int prompt_tokens() const;
  int cached_tokens() const;
  int completion_tokens() const;
  // The first engine error among the choices ("" when none).
  std::string error() const;

 private:
  ServingState& state_;
  std::string id_;
  std::vector<PromptPlan> prompts_;
  std::vector<ChoiceState> choices_;
  std::vector<std::string> engine_ids_;
  // --enable-log-requests: one line per prompt (server/http_server.h, ServerOptions).
  void log_request(int n) const;
  // The metrics of a choice that has just finished (and of the request, once all have).
  void observe_finished(const ChoiceState& c, double now);
  std::shared_ptr<RequestStream> stream_;
  std::vector<RequestOutput> buffer_;
  double start_time_;
  int finished_ = 0;
};

// Blocks until gen is done, aborting it (and returning false) when the client leaves.
bool wait_for_completion(Generation& gen, const ClientConnection& conn);

// best_of > n (completions): of the finished best_of samples of each prompt (generated with
// their tokens' logprobs), the n with the highest mean logprob per token, as the finished
// choices of a Generation (best first; usage counts those).
std::shared_ptr<Generation> best_of_choices(ServingState& state, const Generation& samples,
                                            const GenerationRequest& r);

// use_beam_search (server/beam_search.h, serving_beam_search.cpp): each prompt's best n beams
// as the finished choices of a Generation (index prompt x n + rank), searched through engine
// requests of one token; null when the client left. Throws a 500 on an engine error.
std::shared_ptr<Generation> beam_search_generation(ServingState& state, const std::string& id,
                                                   std::vector<PromptPlan> plans, const GenerationRequest& r,
                                                   const ClientConnection& conn);

// Streams gen as server-sent events: first `initial`, then what format() appends for each
// output (written at once, one write per batch of outputs), then finish()'s text and
// [DONE] (unless done_marker is false). A failed write or a closed connection aborts gen and
// returns false; an engine error ends the stream with an error event, or what
// on_error(out, message) appends when given.
using ChunkFormatter = std::function<void(ChoiceState&, const RequestOutput&, std::string& out)>;
bool stream_generation(Generation& gen, const ClientConnection& conn, httplib::DataSink& sink,
                       std::string initial, const ChunkFormatter& format,
                       const std::function<void(std::string&)>& finish,
                       const std::function<void(std::string&, const std::string&)>& on_error = nullptr,
                       bool done_marker = true);
// Maps an engine error message to the error event / response of a failed request.
std::string engine_error_body(const std::string& message);

// Non-streaming: waits for gen (aborting it when the client leaves) and answers with
// build()'s JSON, or a 500 naming the engine's error.
void respond_when_done(Generation& gen, const ClientConnection& conn, httplib::Response& res,
                       const std::function<std::string()>& build);
// `,"finish_reason":...,"stop_reason":...` of a choice (null while it runs); `reason`, when
// given, replaces the engine's finish reason (chat's "tool_calls").
void append_finish(std::string& out, const ChoiceState& c, const char* reason = nullptr);
// `,"<name>":[ids...]` (vLLM's return_token_ids fields: prompt_token_ids, token_ids).
void append_token_ids(std::string& out, std::string_view name, std::span<const int32_t> ids);
// `],"usage":{...}}`, closing a full response opened with append_response_head.
// `fields` (",\"name\":value..." or "") go between the choices and the usage.
void append_response_tail(std::string& out, const Generation& gen, const std::string& fields = "");

// The final usage chunk of a stream (choices empty).
void append_usage_chunk(std::string& out, const ChunkWriter& writer, const Generation& gen);
// A streamed choice's usage so far (stream_options.continuous_usage_stats): its prompt, its
// tokens, its cached prompt tokens; "" when the request did not ask for it.
std::string choice_usage(const GenerationRequest& r, const Generation& gen, const ChoiceState& c);

// Appends the usage object.
void append_usage(std::string& out, int prompt_tokens, int completion_tokens, int cached_tokens);

// Route handlers (serving_completions.cpp, serving_chat.cpp, tokenize.cpp, serving_embeddings.cpp, serving_score.cpp,
// serving_responses.cpp).
void handle_completions(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_chat_completions(ServingState& state, const httplib::Request& req, httplib::Response& res);
// The same three routes on a body already parsed, the server ready (POST /invocations picks
// the route by the body).
void serve_completions(ServingState& state, const httplib::Request& req, httplib::Response& res, const RequestJson& body);
void serve_chat_completions(ServingState& state, const httplib::Request& req, httplib::Response& res,
                            const RequestJson& body);
void serve_embeddings(ServingState& state, const httplib::Request& req, httplib::Response& res, const RequestJson& body);
void handle_tokenize(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_detokenize(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_embeddings(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_score(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_rerank(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_responses(ServingState& state, const httplib::Request& req, httplib::Response& res);
void handle_get_response(ServingState& state, const httplib::Request& req, httplib::Response& res);
// GET /v1/responses/{id}/input_items: a page (limit, order, after, before) of the stored input items.
void handle_response_input_items(ServingState& state, const httplib::Request& req, httplib::Response& res);
// POST /v1/responses/{id}/cancel: ends a background response; its cancelled form.
void handle_cancel_response(ServingState& state, const httplib::Request& req, httplib::Response& res);
// DELETE /v1/responses/{id}: the id from the path itself (a DELETE without a body is answered
// before httplib routes it: http_server.cpp).
void handle_delete_response(ServingState& state, const httplib::Request& req, httplib::Response& res);

}  // namespace tllm
