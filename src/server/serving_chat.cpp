// POST /v1/chat/completions: messages rendered with the model's chat template, n choices,
// logprobs in the chat shape, streaming deltas with the role first. The output splits into
// reasoning_content (with --reasoning-parser), content and tool_calls (with tools in the
// request; finish reason "tool_calls"), as server/chat_output.h says.
#include <httplib.h>

#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/logprobs.h"
#include "server/serving.h"
#include "server/streaming.h"
#include "server/chat_output.h"
#include "server/tool_calls.h"

namespace tllm {
namespace {

struct ChatContext {
  ChatRequest request;
  LogprobStyle style;
  ReasoningParser reasoning = ReasoningParser::None;
  ToolCallParser tool_format = ToolCallParser::Hermes;
};

// The finish reason of a choice with tool calls: "tool_calls" when the model ended its turn
// after them (a call cut by max_tokens keeps "length": its arguments are incomplete); null for
// the engine's own.
const char* calls_finish(const ChoiceState& c, bool has_calls) {
  return has_calls && c.finish_reason == FinishReason::Stop ? "tool_calls" : nullptr;
}

std::string full_response(const ChatContext& ctx, Generation& gen, int64_t created, const std::string& model) {
  std::string out;
  append_response_head(out, gen.id(), "chat.completion", created, model);
  for (size_t i = 0; i < gen.choices().size(); ++i) {
    const ChoiceState& c = gen.choices()[i];
    if (i) out.push_back(',');
    out += "{\"index\":";
    append_json_number(out, static_cast<int64_t>(c.index));
    out += ",\"message\":{\"role\":\"assistant\",";
    ChatMessageParts parsed = split_chat_output(c.text, ctx.reasoning, ctx.request.parses_tool_calls(), ctx.tool_format);
    if (!ctx.request.parallel_tool_calls) keep_first_calls(parsed, 1);
    if (ctx.reasoning != ReasoningParser::None) {
      out += "\"reasoning_content\":";
      if (parsed.reasoning) append_json_string(out, *parsed.reasoning);
      else out += "null";
      out.push_back(',');
    }
    out += "\"content\":";
    if (parsed.calls.empty() || !parsed.content.empty()) {
      append_json_string(out, parsed.content);
    } else {
      out += "null";
    }
    if (!parsed.calls.empty()) {
      out.push_back(',');
      append_tool_calls(out, parsed.calls);
    }
    out += "},\"logprobs\":";
    if (ctx.request.logprobs >= 0) append_chat_logprobs(out, c.logprobs, ctx.request.logprobs, ctx.style);
    else out += "null";
    append_finish(out, c, calls_finish(c, !parsed.calls.empty()));
    if (ctx.request.return_token_ids) append_token_ids(out, "token_ids", c.token_ids);
    out += "}";
  }
  std::string fields;  // vLLM: one prompt_logprobs list for the response (the choices share the prompt)
  if (ctx.request.prompt_logprobs >= 0) {
    const ChoiceState& c0 = gen.choices().front();
    fields = ",\"prompt_logprobs\":";
    if (c0.prompt_logprobs) append_prompt_logprobs(fields, *c0.prompt_logprobs, ctx.request.prompt_logprobs, ctx.style);
    else fields += "null";
  }
  if (ctx.request.return_token_ids) append_token_ids(fields, "prompt_token_ids", gen.prompts().front().token_ids);
  append_response_tail(out, gen, fields);
  return out;
}

}  // namespace

PromptPlan chat_prompt_plan(const LLMEngine& engine, const ServingTokenizer& tok, const ChatRequest& r,
                            const std::string& prompt_param, ToolCallParser format, ReasoningParser reasoning) {
  PromptPlan plan;
  const std::string text = tok.render_chat(r);
  if (!r.truncate_prompt_tokens)
    check_text_fits(text.size(), tok.max_input_bytes_per_token(), engine.max_model_len() - 1, engine.max_model_len(),
                    prompt_param);
  plan.token_ids = tok.encode(text, r.add_special_tokens);
  truncate_prompt(plan.token_ids, r, engine.max_model_len());
  plan.params = make_sampling_params(r, engine.generation_config(), static_cast<int>(plan.token_ids.size()),
                                     engine.max_model_len(), prompt_param);
  plan.params.bad_words_ids = tok.bad_word_sequences(r.bad_words);
  if (r.force_tool_call) {
    plan.params.output_format = forced_tool_call_format(r.tools, r.forced_tool, format);
  } else if (!plan.params.output_format.empty() && r.parses_tool_calls()) {
    plan.params.output_format = format_or_tool_calls(std::move(plan.params.output_format), r.tools, format);
  } else if (plan.params.output_format.empty() && r.parses_tool_calls() && has_strict_tool(r.tools)) {
    // With llama3_json a reply is a call or text from its first byte; the strict form (free
    // text, then calls at a tag) has no tag to wait for.
    if (format != ToolCallParser::Hermes)
      throw bad_request("'strict' tools with tool_choice 'auto' are enforced with --tool-call-parser hermes only; "
                        "use tool_choice 'required' or a named function, or drop 'strict'",
                        "tools");
    plan.params.output_format = strict_tool_call_format(r.tools);
  }
  plan.params.output_format = format_after_reasoning(std::move(plan.params.output_format), reasoning);
  return plan;
}

void handle_chat_completions(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  serve_chat_completions(state, req, res, parse_json_body(req.body));
}

void serve_chat_completions(ServingState& state, const httplib::Request& req, httplib::Response& res,
                            const RequestJson& body) {
  state.require_runner(false, "/v1/chat/completions");
  auto ctx = std::make_shared<ChatContext>();
  ctx->request = parse_chat_request(body);
  ChatRequest& r = ctx->request;
  state.check_model(r.model);
  const LLMEngine& engine = state.engine->engine();
  const ServingTokenizer& tok = state.require_tokenizer("chat completions");

  PromptPlan plan = chat_prompt_plan(engine, tok, r, "messages", state.tool_call_parser, state.reasoning_parser);
  ctx->style.table = &tok.table();
  ctx->style.tokens_as_ids = r.return_tokens_as_token_ids;
  ctx->reasoning = state.reasoning_parser;
  ctx->tool_format = state.tool_call_parser;
  std::vector<PromptPlan> plans;
  plans.push_back(std::move(plan));

  const int64_t created = unix_time();
  auto conn = std::make_shared<ClientConnection>(req);
  if (r.use_beam_search) {
    // A forced or strict tool call constrains the text, which the search does not.
    if (!plans[0].params.output_format.empty())
      throw bad_request("'tool_choice' forcing a call (or a strict tool) cannot be combined with 'use_beam_search'",
                        "tool_choice");
    const auto beams = beam_search_generation(state, make_request_id("chatcmpl"), std::move(plans), r, *conn);
    if (beams) res.set_content(full_response(*ctx, *beams, created, state.model_name), "application/json");
    return;
  }
  auto gen = std::make_shared<Generation>(state, make_request_id("chatcmpl"), std::move(plans), r.n);

  if (!r.stream) {
    respond_when_done(*gen, *conn, res, [&] { return full_response(*ctx, *gen, created, state.model_name); });
    return;
  }

  auto writer = std::make_shared<ChunkWriter>(gen->id(), "chat.completion.chunk", created, state.model_name);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [ctx, gen, conn, writer](size_t, httplib::DataSink& sink) {
        const ChatRequest& r = ctx->request;
        // The role comes first, in a chunk of its own per choice, before any token.
        // return_token_ids: the prompt's ids ride on the role chunks (vLLM: the first chunk, top level).
        std::string initial, choice, prompt_ids;
        if (r.return_token_ids) append_token_ids(prompt_ids, "prompt_token_ids", gen->prompts().front().token_ids);
        for (const ChoiceState& c : gen->choices()) {
          choice = "{\"index\":";
          append_json_number(choice, static_cast<int64_t>(c.index));
          choice += ",\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}";
          writer->append_choice_event(initial, choice, choice_usage(r, *gen, c), prompt_ids);
        }
        std::vector<size_t> ids_sent(gen->choices().size(), 0);  // return_token_ids: ids streamed per choice
        // Each choice's text through its splitter: reasoning, content, and tool calls as they come.
        std::vector<ChatOutputStream> splitters(gen->choices().size(), ChatOutputStream(ctx->reasoning, r.parses_tool_calls(), ctx->tool_format));
        if (!r.parallel_tool_calls)
          for (ChatOutputStream& s : splitters) s.limit_calls(1);
        auto format = [&](ChoiceState& c, const RequestOutput& out, std::string& buf) {
          const bool with_logprobs = r.logprobs >= 0 && !out.new_logprobs.empty();
          ChatOutputStream& splitter = splitters[static_cast<size_t>(c.index)];
          const ChatOutputStream::Delta parsed = splitter.push(c.text, out.finished);
          const std::string& text = parsed.content;
          if (text.empty() && parsed.reasoning.empty() && parsed.calls.empty() && !with_logprobs && !out.finished) return;
          choice = "{\"index\":";
          append_json_number(choice, static_cast<int64_t>(c.index));
          choice += ",\"delta\":{";
          bool comma = false;
          if (!parsed.reasoning.empty()) {
            choice += "\"reasoning_content\":";
            append_json_string(choice, parsed.reasoning);
            comma = true;
          }
          if (!text.empty() || (!out.finished && parsed.reasoning.empty() && parsed.calls.empty())) {
            if (comma) choice.push_back(',');
            choice += "\"content\":";
            append_json_string(choice, text);
            comma = true;
          }
          if (!parsed.calls.empty()) {
            if (comma) choice.push_back(',');
            append_tool_call_deltas(choice, parsed.calls);
          }
          choice += "},\"logprobs\":";
          if (with_logprobs) append_chat_logprobs(choice, out.new_logprobs, r.logprobs, ctx->style);
          else choice += "null";
          append_finish(choice, c, calls_finish(c, splitter.has_calls()));
          if (r.return_token_ids) {
            const size_t from = ids_sent[static_cast<size_t>(c.index)];
            append_token_ids(choice, "token_ids", std::span(c.token_ids).subspan(from));
            ids_sent[static_cast<size_t>(c.index)] = c.token_ids.size();
          }
          choice += "}";
          writer->append_choice_event(buf, choice, choice_usage(r, *gen, c));
        };
        auto finish = [&](std::string& buf) {
          if (r.include_usage) append_usage_chunk(buf, *writer, *gen);
        };
        return stream_generation(*gen, *conn, sink, std::move(initial), format, finish);
      });
}

}  // namespace tllm
