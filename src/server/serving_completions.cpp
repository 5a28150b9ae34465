// POST /v1/completions: prompts as text or token ids, n choices each, echo, legacy logprobs.
#include <algorithm>

#include <httplib.h>

#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/logprobs.h"
#include "server/serving.h"
#include "server/streaming.h"

namespace tllm {
namespace {

struct CompletionContext {
  CompletionRequest request;
  std::vector<std::string> echo_texts;  // per prompt, when echo
  LogprobStyle style;
};

std::string full_response(const CompletionContext& ctx, Generation& gen, int64_t created,
                          const std::string& model) {
  std::string out;
  append_response_head(out, gen.id(), "text_completion", created, model);
  for (size_t i = 0; i < gen.choices().size(); ++i) {
    const ChoiceState& c = gen.choices()[i];
    if (i) out.push_back(',');
    out += "{\"index\":";
    append_json_number(out, static_cast<int64_t>(c.index));
    out += ",\"text\":";
    append_json_string(out, ctx.request.echo ? ctx.echo_texts[c.prompt_index] + c.text : c.text);
    out += ",\"logprobs\":";
    if (ctx.request.logprobs >= 0) {
      LegacyLogprobs lp(ctx.style);
      if (ctx.request.echo)
        lp.add_prompt(gen.prompts()[c.prompt_index].token_ids,
                      c.prompt_logprobs ? with_top_n(*c.prompt_logprobs, ctx.request.logprobs)
                                        : std::vector<std::optional<TokenLogprob>>{});
      for (const auto& t : c.logprobs) lp.add(t);
      lp.append_json(out);
    } else {
      out += "null";
    }
    append_finish(out, c);
    if (ctx.request.return_token_ids) {
      append_token_ids(out, "token_ids", c.token_ids);
      append_token_ids(out, "prompt_token_ids", gen.prompts()[c.prompt_index].token_ids);
    }
    if (ctx.request.prompt_logprobs >= 0) {
      out += ",\"prompt_logprobs\":";
      if (c.prompt_logprobs) append_prompt_logprobs(out, *c.prompt_logprobs, ctx.request.prompt_logprobs, ctx.style);
      else out += "null";
    }
    out += "}";
  }
  append_response_tail(out, gen);
  return out;
}

}  // namespace

void handle_completions(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  serve_completions(state, req, res, parse_json_body(req.body));
}

void serve_completions(ServingState& state, const httplib::Request& req, httplib::Response& res, const RequestJson& body) {
  state.require_runner(false, "/v1/completions");
  auto ctx = std::make_shared<CompletionContext>();
  ctx->request = parse_completion_request(body);
  CompletionRequest& r = ctx->request;
  state.check_model(r.model);
  const LLMEngine& engine = state.engine->engine();
  if (!r.stop.empty()) state.require_tokenizer("stop strings");
  if (r.echo) state.require_tokenizer("echo");

  std::vector<PromptPlan> plans;
  // The bad words' token sequences are the same for every prompt.
  const std::vector<std::vector<int32_t>> bad_words =
      r.bad_words.empty() ? std::vector<std::vector<int32_t>>{}
                          : state.require_tokenizer("bad_words").bad_word_sequences(r.bad_words);
  for (const PromptInput& prompt : r.prompts) {
    PromptPlan plan;
    std::string echo;
    if (const auto* text = std::get_if<std::string>(&prompt)) {
      const ServingTokenizer& tok = state.require_tokenizer("text prompts");
      if (!r.truncate_prompt_tokens)
        check_text_fits(text->size(), tok.max_input_bytes_per_token(), engine.max_model_len() - 1, engine.max_model_len(),
                        "prompt");
      plan.token_ids = tok.encode(*text, r.add_special_tokens);
      echo = *text;
    } else {
      plan.token_ids = std::get<std::vector<int32_t>>(prompt);
      check_token_ids(plan.token_ids, engine.vocab_size(), "prompt");
    }
    // The echo is what the model saw: the prompt as given, or its kept tokens when truncated.
    const size_t given = plan.token_ids.size();
    truncate_prompt(plan.token_ids, r, engine.max_model_len());
    if (r.echo && (plan.token_ids.size() != given || std::holds_alternative<std::vector<int32_t>>(prompt)))
      echo = state.tokenizer->decode(plan.token_ids, /*skip_special_tokens=*/false);
    plan.params = make_sampling_params(r, engine.generation_config(), static_cast<int>(plan.token_ids.size()),
                                       engine.max_model_len(), "prompt");
    plan.params.detokenize = state.tokenizer != nullptr;
    plan.params.bad_words_ids = bad_words;
    if (r.echo && r.logprobs >= 0) plan.params.prompt_logprobs = std::max(plan.params.prompt_logprobs, r.logprobs);
    ctx->echo_texts.push_back(std::move(echo));
    plans.push_back(std::move(plan));
  }
  ctx->style.table = state.tokenizer ? &state.tokenizer->table() : nullptr;
  ctx->style.tokens_as_ids = r.return_tokens_as_token_ids;

  const int64_t created = unix_time();
  auto conn = std::make_shared<ClientConnection>(req);
  if (r.use_beam_search) {
    const auto beams = beam_search_generation(state, make_request_id("cmpl"), std::move(plans), r, *conn);
    if (beams) res.set_content(full_response(*ctx, *beams, created, state.model_name), "application/json");
    return;
  }
  if (r.best_of > r.n) {
    for (PromptPlan& p : plans) p.params.logprobs = std::max(p.params.logprobs, 0);  // the ranking needs them
    Generation samples(state, make_request_id("cmpl"), std::move(plans), r.best_of);
    respond_when_done(samples, *conn, res, [&] {
      return full_response(*ctx, *best_of_choices(state, samples, r), created, state.model_name);
    });
    return;
  }
  auto gen = std::make_shared<Generation>(state, make_request_id("cmpl"), std::move(plans), r.n);

  if (!r.stream) {
    respond_when_done(*gen, *conn, res, [&] { return full_response(*ctx, *gen, created, state.model_name); });
    return;
  }

  auto writer = std::make_shared<ChunkWriter>(gen->id(), "text_completion", created, state.model_name);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [ctx, gen, conn, writer](size_t, httplib::DataSink& sink) {
        const CompletionRequest& r = ctx->request;
        std::vector<LegacyLogprobs> lps(gen->choices().size(), LegacyLogprobs(ctx->style));
        std::vector<char> sent_echo(gen->choices().size(), 0);
        // return_token_ids: the ids each choice has streamed (held-back text holds them back too).
        std::vector<size_t> ids_sent(gen->choices().size(), 0);
        std::vector<char> sent_prompt_ids(gen->choices().size(), 0);
        std::string choice;
        auto format = [&](ChoiceState& c, const RequestOutput& out, std::string& buf) {
          std::string text;
          if (r.echo && !sent_echo[c.index]) {
            sent_echo[c.index] = 1;
            text = ctx->echo_texts[c.prompt_index];
            if (r.logprobs >= 0)
              lps[c.index].add_prompt(gen->prompts()[c.prompt_index].token_ids,
                                      out.prompt_logprobs ? *out.prompt_logprobs
                                                          : std::vector<std::optional<TokenLogprob>>{});
          }
          text += out.new_text;
          for (const auto& t : out.new_logprobs) lps[c.index].add(t);
          // Text held back (an incomplete UTF-8 sequence, a possible stop string) waits for the
          // next step. Without a tokenizer (a dummy-weights benchmark shape) there is no text to
          // wait for: every step with new tokens makes a chunk, so clients see tokens arrive.
          const bool has_text = ctx->style.table != nullptr;
          if (text.empty() && lps[c.index].empty() && !out.finished && (has_text || out.new_token_ids.empty())) return;
          choice = "{\"index\":";
          append_json_number(choice, static_cast<int64_t>(c.index));
          choice += ",\"text\":";
          append_json_string(choice, text);
          choice += ",\"logprobs\":";
          if (r.logprobs >= 0) {
            lps[c.index].append_json(choice);
            lps[c.index].clear();
          } else {
            choice += "null";
          }
          append_finish(choice, c);
          if (r.return_token_ids) {
            const size_t from = ids_sent[c.index];
            append_token_ids(choice, "token_ids", std::span(c.token_ids).subspan(from));
            ids_sent[c.index] = c.token_ids.size();
            if (!sent_prompt_ids[c.index]) {  // vLLM: in the choice's first chunk
              sent_prompt_ids[c.index] = 1;
              append_token_ids(choice, "prompt_token_ids", gen->prompts()[c.prompt_index].token_ids);
            }
          }
          choice += "}";
          writer->append_choice_event(buf, choice, choice_usage(r, *gen, c));
        };
        auto finish = [&](std::string& buf) {
          if (r.include_usage) append_usage_chunk(buf, *writer, *gen);
        };
        return stream_generation(*gen, *conn, sink, "", format, finish);
      });
}

}  // namespace tllm
