// POST /v1/responses: OpenAI's Responses API over the chat machinery; GET and DELETE
// /v1/responses/{id} of a stored one, GET /v1/responses/{id}/input_items, and POST
// /v1/responses/{id}/cancel of a background one. The request becomes a chat request
// (server/responses_request.h), after the stored conversation it continues, rendered with the
// model's chat template and generated as one choice; its text splits as a chat reply's does
// (reasoning with --reasoning-parser, content, tool calls) into output items
// (server/responses_output.h), whole, as events, or (background) stored for GET to poll, its
// events kept for GET ?stream=true to replay and follow (server/response_event_log.h).
#include <algorithm>
#include <optional>

#include <httplib.h>

#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/response_event_log.h"
#include "server/responses_output.h"
#include "server/responses_request.h"
#include "server/serving.h"

namespace tllm {
namespace {

struct ResponsesContext {
  ResponsesRequest request;
  ReasoningParser reasoning = ReasoningParser::None;
  ToolCallParser tool_format = ToolCallParser::Hermes;
  std::unique_ptr<ResponseWriter> writer;
};

// Usage; reasoning tokens counted by encoding the reasoning text again.
ResponseUsage usage_of(const Generation& gen, const ServingTokenizer& tok, const std::optional<std::string>& reasoning) {
  ResponseUsage u;
  u.input_tokens = gen.prompt_tokens();
  u.cached_tokens = gen.cached_tokens();
  u.output_tokens = gen.completion_tokens();
  if (reasoning && !reasoning->empty())
    u.reasoning_tokens = std::min(u.output_tokens, static_cast<int>(tok.encode(*reasoning, false).size()));
  return u;
}

// Ends a streamed response with response.completed / response.incomplete and its usage (the
// reasoning tokens counted from the streamed reasoning items); returns the response object.
std::string finish_events(ResponseEventStream& events, const Generation& gen, const ServingTokenizer& tok,
                          std::string& out) {
  std::optional<std::string> reasoning;
  for (const ResponseItem& i : events.items())
    if (i.kind == ResponseItem::Kind::Reasoning) reasoning = reasoning.value_or("") + i.text;
  return events.finish(gen.choices()[0].finish_reason == FinishReason::Length, usage_of(gen, tok, reasoning), out);
}

// truncation "auto": drops the oldest messages (after the instructions' system message) while
// the rendered conversation leaves no room for an output token; the last message always stays
// (a prompt still too long is then refused as with "disabled").
void fit_to_context(ChatRequest& chat, const LLMEngine& engine, const ServingTokenizer& tok, bool has_instructions) {
  const size_t first = has_instructions ? 1 : 0;
  const size_t bound = tok.max_input_bytes_per_token();
  auto too_long = [&] {
    const std::string text = tok.render_chat(chat);
    if (fewest_tokens(text.size(), bound) >= static_cast<size_t>(engine.max_model_len()))
      return true;  // too long at the fewest tokens it can encode to: no need to tokenize it
    return static_cast<int>(tok.encode(text, chat.add_special_tokens).size()) >= engine.max_model_len();
  };
  while (chat.messages.size() > first + 1 && too_long())
    chat.messages.erase(chat.messages.begin() + static_cast<std::ptrdiff_t>(first));
}

// The stored response `id` of a GET / cancel route, or a 404 naming it.
std::shared_ptr<const ResponseStore::Entry> stored_response(ServingState& state, const std::string& id) {
  auto entry = state.responses.get(id);
  if (!entry) throw not_found("Response with id '" + sanitize_utf8(id) + "' not found", "response_id");
  return entry;
}

// A query parameter of a GET, when given once (a 400 when given twice).
std::optional<std::string> query_param(const httplib::Request& req, const char* key) {
  const size_t n = req.get_param_value_count(key);
  if (n == 0) return std::nullopt;
  if (n > 1) throw bad_request(std::string("Query parameter '") + key + "' is given more than once", key);
  return req.get_param_value(key);
}

// The events of a background response's log from index `next` on, as server-sent events,
// until the log closes or the client leaves (the job runs on either way).
void stream_event_log(httplib::Response& res, std::shared_ptr<const ResponseEventLog> log, size_t next,
                      std::shared_ptr<ClientConnection> conn) {
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream", [log, next, conn](size_t, httplib::DataSink& sink) mutable {
    std::string buf;
    for (;;) {
      buf.clear();
      const bool more = log->read(next, buf, 0.05);
      if (!buf.empty() && !(conn->found() ? conn->write_chunk(buf) : sink.write(buf.data(), buf.size()))) return false;
      if (!more) break;
      if (buf.empty() && conn->closed()) return false;
    }
    sink.done();
    return true;
  });
}

}  // namespace

void handle_responses(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  state.require_runner(false, "/v1/responses");
  auto ctx = std::make_shared<ResponsesContext>();
  const RequestJson body = parse_json_body(req.body);
  RequestJson history = RequestJson::array();
  RequestJson items = RequestJson::array();  // what the model reads, as input items
  if (const auto previous = previous_response_id(body)) {
    const auto entry = state.responses.get(*previous);
    if (!entry)
      throw not_found("Previous response with id '" + sanitize_utf8(*previous) + "' not found" +
                          (state.responses.capacity() == 0 ? " (this server stores none: --responses-store-size 0)" : ""),
                      "previous_response_id");
    if (!entry->finished)
      throw bad_request("Previous response with id '" + sanitize_utf8(*previous) +
                            "' is still in progress in the background: continue it once it has completed",
                        "previous_response_id");
    history = entry->conversation;
    items = entry->input_items;
    const RequestJson response = RequestJson::parse(entry->response);
    for (const RequestJson& item : response.at("output")) items.push_back(item);
  }
  ctx->request = parse_responses_request(body, history);
  for (RequestJson& item : ctx->request.input_items) items.push_back(std::move(item));
  const ChatRequest& r = ctx->request.chat;
  state.check_model(r.model);
  const LLMEngine& engine = state.engine->engine();
  const ServingTokenizer& tok = state.require_tokenizer("responses");

  if (ctx->request.truncate_auto) fit_to_context(ctx->request.chat, engine, tok, ctx->request.instructions.has_value());
  PromptPlan plan;
  try {
    plan = chat_prompt_plan(engine, tok, r, "input", state.tool_call_parser, state.reasoning_parser);
  } catch (const ApiError& e) {
    throw responses_error(e);
  }
  ctx->reasoning = state.reasoning_parser;
  ctx->tool_format = state.tool_call_parser;
  LogprobStyle style;
  style.table = &tok.table();
  style.tokens_as_ids = r.return_tokens_as_token_ids;
  const float temperature = plan.params.temperature, top_p = plan.params.top_p;
  std::vector<PromptPlan> plans;
  plans.push_back(std::move(plan));

  const std::string id = response_item_id("resp");  // OpenAI's "resp_<hex>"
  const bool store = ctx->request.store && state.responses.capacity() > 0;
  if (ctx->request.background && !store)
    throw bad_request("'background' needs a stored response, and this server stores none (--responses-store-size 0)",
                      "background");
  auto gen = std::make_shared<Generation>(state, id, std::move(plans), 1);
  ctx->writer = std::make_unique<ResponseWriter>(ctx->request, id, state.model_name, unix_time(), temperature, top_p,
                                                 style, store);
  // A finished response, kept for previous_response_id and GET /v1/responses/{id}.
  auto keep = [&state, ctx, store, input = items](const std::vector<ResponseItem>& items, std::string response) {
    if (!store) return;
    ResponseStore::Entry e{ctx->request.conversation, std::move(response), input};
    e.conversation.push_back(assistant_turn(items));
    state.responses.put(ctx->writer->id(), std::move(e));
  };
  const bool tools = r.parses_tool_calls();

  if (ctx->request.background) {
    // Answered at once with the queued response, or (stream) with the events of the log
    // that a thread of its own writes as it generates. The thread stores each state
    // (in_progress at the first token, then the end) for GET to poll.
    auto log = std::make_shared<ResponseEventLog>();
    auto events = std::make_shared<ResponseEventStream>(*ctx->writer);
    std::string first;
    events->start(first, /*queued=*/true);
    log->append(first);
    auto entry = [ctx, log, input = items](std::string response, bool finished) {
      return ResponseStore::Entry{ctx->request.conversation, std::move(response), input, finished, log};
    };
    auto snapshot = [&state, ctx, entry](std::string_view status) {
      std::string out;
      ResponseWriter::Outcome o;
      o.status = status;
      ctx->writer->append_response(out, {}, {}, o);
      state.responses.put(ctx->writer->id(), entry(out, false));
      return out;
    };
    const std::string queued = snapshot("queued");
    auto job = [&state, ctx, gen, log, events, entry, snapshot, tools, &tok](const std::atomic<bool>& cancelled) {
      struct Closer {  // readers of the log stop, however the job ends
        ResponseEventLog& log;
        ~Closer() { log.close(); }
      } closer{*log};
      ChatOutputStream splitter(ctx->reasoning, tools, ctx->tool_format);
      if (!ctx->request.parallel_tool_calls) splitter.limit_calls(1);
      bool started = false;
      std::string error, buf;
      while (!gen->done() && !cancelled.load() && error.empty()) {
        gen->pump(0.05, [&](ChoiceState& c, const RequestOutput& out) {
          if (!out.error.empty()) {
            if (error.empty()) error = out.error;
            return;
          }
          if (!started) {
            started = true;
            snapshot("in_progress");
            events->in_progress(buf);
          }
          events->push(splitter.push(c.text, out.finished), out.new_logprobs, buf);
        });
        if (!buf.empty()) log->append(buf);
        buf.clear();
      }
      if (error.empty()) error = gen->error();
      std::vector<ResponseItem> items;
      std::string out;
      if (!error.empty()) {
        gen->abort();
        out = events->fail("The engine failed this request: " + error, buf);
        items = events->items();
      } else if (!gen->done()) {  // cancelled: what was generated so far, and no more events
        gen->abort();
        const ChoiceState& c = gen->choices()[0];
        ChatMessageParts parts = split_chat_output(c.text, ctx->reasoning, tools, ctx->tool_format);
        if (!ctx->request.parallel_tool_calls) keep_first_calls(parts, 1);
        const ResponseUsage usage = usage_of(*gen, tok, parts.reasoning);
        items = response_items(parts);
        ResponseWriter::Outcome o;
        o.status = "cancelled";
        o.usage = &usage;
        ctx->writer->append_response(out, items, c.logprobs, o);
      } else {
        if (!started) events->in_progress(buf);
        out = finish_events(*events, *gen, tok, buf);
        items = events->items();
      }
      if (!buf.empty()) log->append(buf);
      // Stored before the log closes: a reader that saw the last event GETs the final response.
      ResponseStore::Entry e = entry(std::move(out), true);
      e.conversation.push_back(assistant_turn(items));
      state.responses.put(ctx->writer->id(), std::move(e));
    };
    if (!state.background.start(id, std::move(job))) {
      state.responses.erase(id);
      throw ApiError(503, "The server is shutting down", "server_error");
    }
    if (r.stream) stream_event_log(res, log, 0, std::make_shared<ClientConnection>(req));
    else res.set_content(queued, "application/json");
    return;
  }

  auto conn = std::make_shared<ClientConnection>(req);

  if (!r.stream) {
    respond_when_done(*gen, *conn, res, [&] {
      const ChoiceState& c = gen->choices()[0];
      ChatMessageParts parts = split_chat_output(c.text, ctx->reasoning, tools, ctx->tool_format);
      if (!ctx->request.parallel_tool_calls) keep_first_calls(parts, 1);
      const ResponseUsage usage = usage_of(*gen, tok, parts.reasoning);
      std::vector<ResponseItem> items = response_items(parts);
      const bool incomplete = c.finish_reason == FinishReason::Length;
      items.back().incomplete = incomplete;
      std::string out;
      ctx->writer->append_response(out, items, c.logprobs, ResponseWriter::ended(incomplete, usage));
      keep(items, out);
      return out;
    });
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [ctx, gen, conn, tools, &tok, keep](size_t, httplib::DataSink& sink) {
        ResponseEventStream events(*ctx->writer);
        ChatOutputStream splitter(ctx->reasoning, tools, ctx->tool_format);
        if (!ctx->request.parallel_tool_calls) splitter.limit_calls(1);
        std::string initial;
        events.start(initial);
        auto format = [&](ChoiceState& c, const RequestOutput& out, std::string& buf) {
          events.push(splitter.push(c.text, out.finished), out.new_logprobs, buf);
        };
        auto finish = [&](std::string& buf) {
          keep(events.items(), finish_events(events, *gen, tok, buf));
        };
        auto on_error = [&](std::string& buf, const std::string& error) {
          events.fail("The engine failed this request: " + error, buf);
        };
        return stream_generation(*gen, *conn, sink, std::move(initial), format, finish, on_error,
                                 /*done_marker=*/false);
      });
}

void handle_delete_response(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  const std::string prefix = "/v1/responses/";
  const std::string id = req.path.size() > prefix.size() ? req.path.substr(prefix.size()) : std::string();
  state.background.cancel(id);  // a running background response ends first (it would store itself again)
  if (!state.responses.erase(id))
    throw not_found("Response with id '" + sanitize_utf8(id) + "' not found", "response_id");
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"response.deleted\",\"deleted\":true}";
  res.set_content(out, "application/json");
}

// GET /v1/responses/{id}: the stored response; with stream=true (a background response's),
// its events after starting_after (from the first without), then the live ones until it ends.
void handle_get_response(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  const auto entry = stored_response(state, id);
  const std::string stream = query_param(req, "stream").value_or("false");
  if (stream != "true" && stream != "false")
    throw bad_request("'stream' must be true or false, got '" + sanitize_utf8(stream) + "'", "stream");
  const auto after = query_param(req, "starting_after");
  if (stream == "false") {
    if (after) throw bad_request("'starting_after' applies to stream=true only", "starting_after");
    res.set_content(entry->response, "application/json");
    return;
  }
  if (!entry->events)
    throw bad_request("Response '" + sanitize_utf8(id) +
                          "' was not created with \"background\": true: only background responses can be streamed",
                      "stream");
  size_t next = 0;
  if (after) {
    const bool digits = !after->empty() && after->size() <= 12 && after->find_first_not_of("0123456789") == std::string::npos;
    if (!digits)
      throw bad_request("'starting_after' must be a sequence number (an integer >= 0), got '" + sanitize_utf8(*after) + "'",
                        "starting_after");
    next = std::stoull(*after) + 1;
  }
  stream_event_log(res, entry->events, next, std::make_shared<ClientConnection>(req));
}

void handle_response_input_items(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  int limit = 20;
  if (const auto v = query_param(req, "limit")) {
    const bool digits = !v->empty() && v->size() <= 3 && v->find_first_not_of("0123456789") == std::string::npos;
    limit = digits ? std::stoi(*v) : 0;
    if (limit < 1 || limit > 100)
      throw bad_request("'limit' must be an integer in [1, 100], got '" + sanitize_utf8(*v) + "'", "limit");
  }
  const std::string order = query_param(req, "order").value_or("desc");
  if (order != "asc" && order != "desc")
    throw bad_request("'order' must be \"asc\" or \"desc\", got '" + sanitize_utf8(order) + "'", "order");
  const auto entry = stored_response(state, id);
  std::vector<const RequestJson*> list;
  for (const RequestJson& item : entry->input_items) list.push_back(&item);
  if (order == "desc") std::reverse(list.begin(), list.end());
  // after / before: a page starts past the item `after` names and ends before the one `before` names.
  auto position = [&](const char* key) -> std::optional<size_t> {
    const auto cursor = query_param(req, key);
    if (!cursor) return std::nullopt;
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i]->value("id", "") == *cursor) return i;
    throw bad_request("'" + std::string(key) + "': no input item of response '" + sanitize_utf8(id) + "' has the id '" +
                          sanitize_utf8(*cursor) + "'", key);
  };
  const auto after = position("after"), before = position("before");
  const size_t begin = after ? *after + 1 : 0, end = before ? *before : list.size();
  RequestJson data = RequestJson::array();
  for (size_t i = begin; i < end && data.size() < static_cast<size_t>(limit); ++i) data.push_back(*list[i]);
  const bool has_more = begin + data.size() < end;
  RequestJson out = {{"object", "list"}, {"data", data}, {"first_id", nullptr}, {"last_id", nullptr}, {"has_more", has_more}};
  if (!data.empty()) {
    out["first_id"] = data.front().value("id", "");
    out["last_id"] = data.back().value("id", "");
  }
  res.set_content(out.dump(-1, ' ', false, RequestJson::error_handler_t::replace), "application/json");
}

void handle_cancel_response(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  state.background.cancel(id);  // false when it is not running (any more), or unknown
  const auto entry = stored_response(state, id);
  const RequestJson response = RequestJson::parse(entry->response);
  const std::string status = response.value("status", "");
  // A cancelled response cancels again as itself (OpenAI's cancel is idempotent).
  if (!response.value("background", false))
    throw bad_request("Response '" + sanitize_utf8(id) + "' is not a background response: only those can be cancelled",
                      "response_id");
  if (status != "cancelled")
    throw bad_request("Response '" + sanitize_utf8(id) + "' has already ended (status " + status +
                          "): it cannot be cancelled", "response_id");
  res.set_content(entry->response, "application/json");
}

}  // namespace tllm
