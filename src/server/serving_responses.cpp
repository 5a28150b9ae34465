// POST /v1/responses: OpenAI's Responses API over the chat machinery, and GET
// /v1/responses/{id} of a stored one. The request becomes a chat request
// (server/responses_request.h), after the stored conversation it continues, rendered with the
// model's chat template and generated as one choice; its text splits as a chat reply's does
// (reasoning with --reasoning-parser, content, tool calls) into output items
// (server/responses_output.h), whole or as events.
#include <httplib.h>

#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/responses_output.h"
#include "server/responses_request.h"
#include "server/serving.h"

namespace tllm {
namespace {

struct ResponsesContext {
  ResponsesRequest request;
  ReasoningParser reasoning = ReasoningParser::None;
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

}  // namespace

void handle_responses(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  state.require_runner(false, "/v1/responses");
  auto ctx = std::make_shared<ResponsesContext>();
  const RequestJson body = parse_json_body(req.body);
  RequestJson history = RequestJson::array();
  if (const auto previous = previous_response_id(body)) {
    const auto entry = state.responses.get(*previous);
    if (!entry)
      throw not_found("Previous response with id '" + sanitize_utf8(*previous) + "' not found" +
                          (state.responses.capacity() == 0 ? " (this server stores none: --responses-store-size 0)" : ""),
                      "previous_response_id");
    history = entry->conversation;
  }
  ctx->request = parse_responses_request(body, history);
  const ChatRequest& r = ctx->request.chat;
  state.check_model(r.model);
  const LLMEngine& engine = state.engine->engine();
  const ServingTokenizer& tok = state.require_tokenizer("responses");

  PromptPlan plan;
  try {
    plan = chat_prompt_plan(engine, tok, r, "input");
  } catch (const ApiError& e) {
    throw responses_error(e);
  }
  ctx->reasoning = state.reasoning_parser;
  LogprobStyle style;
  style.table = &tok.table();
  style.tokens_as_ids = r.return_tokens_as_token_ids;
  const float temperature = plan.params.temperature, top_p = plan.params.top_p;
  std::vector<PromptPlan> plans;
  plans.push_back(std::move(plan));

  const std::string id = response_item_id("resp");  // OpenAI's "resp_<hex>"
  auto gen = std::make_shared<Generation>(state, id, std::move(plans), 1);
  const bool store = ctx->request.store && state.responses.capacity() > 0;
  ctx->writer = std::make_unique<ResponseWriter>(ctx->request, id, state.model_name, unix_time(), temperature, top_p,
                                                 style, store);
  // A finished response, kept for previous_response_id and GET /v1/responses/{id}.
  auto keep = [&state, ctx, store](const std::vector<ResponseItem>& items, std::string response) {
    if (!store) return;
    ResponseStore::Entry e{ctx->request.conversation, std::move(response)};
    e.conversation.push_back(assistant_turn(items));
    state.responses.put(ctx->writer->id(), std::move(e));
  };
  auto conn = std::make_shared<ClientConnection>(req);
  const bool tools = !r.tools.is_null();

  if (!r.stream) {
    respond_when_done(*gen, *conn, res, [&] {
      const ChoiceState& c = gen->choices()[0];
      const ChatMessageParts parts = split_chat_output(c.text, ctx->reasoning, tools);
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
        ChatOutputStream splitter(ctx->reasoning, tools);
        std::string initial;
        events.start(initial);
        auto format = [&](ChoiceState& c, const RequestOutput& out, std::string& buf) {
          events.push(splitter.push(c.text, out.finished), out.new_logprobs, buf);
        };
        auto finish = [&](std::string& buf) {
          const ChoiceState& c = gen->choices()[0];
          std::optional<std::string> reasoning;
          for (const ResponseItem& i : events.items())
            if (i.kind == ResponseItem::Kind::Reasoning) reasoning = reasoning.value_or("") + i.text;
          keep(events.items(), events.finish(c.finish_reason == FinishReason::Length, usage_of(*gen, tok, reasoning), buf));
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
  if (!state.responses.erase(id))
    throw not_found("Response with id '" + sanitize_utf8(id) + "' not found", "response_id");
  std::string out = "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":\"response.deleted\",\"deleted\":true}";
  res.set_content(out, "application/json");
}

void handle_get_response(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  const std::string id = req.matches[1];
  const auto entry = state.responses.get(id);
  if (!entry) throw not_found("Response with id '" + sanitize_utf8(id) + "' not found", "response_id");
  res.set_content(entry->response, "application/json");
}

}  // namespace tllm
