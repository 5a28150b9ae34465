// POST /score and /v1/score (vLLM's score API), /rerank, /v1/rerank and /v2/rerank (Jina /
// Cohere's rerank shape, as vLLM serves it) on an embedding model (--runner pooling): every text
// is embedded once and a pair scores the cosine similarity of its two vectors.
#include <httplib.h>

#include <algorithm>

#include "engine/pooling.h"
#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/serving.h"
#include "server/streaming.h"

namespace tllm {
namespace {

// One plan per (text, the field it came from), in order.
std::vector<PromptPlan> plans_of(ServingState& state, const std::vector<std::pair<std::string, std::string>>& texts,
                                 std::optional<int> truncate) {
  const LLMEngine& engine = state.engine->engine();
  std::vector<PromptPlan> plans;
  for (const auto& [text, param] : texts) {
    PromptPlan plan;
    plan.token_ids = state.require_tokenizer("text inputs").encode(text, /*add_special_tokens=*/true);
    keep_last_tokens(plan.token_ids, truncate, engine.max_model_len());
    if (plan.token_ids.empty()) throw bad_request("a text in '" + param + "' has no tokens", param);
    if (static_cast<int>(plan.token_ids.size()) > engine.max_model_len())
      throw bad_request("a text in '" + param + "' has " + std::to_string(plan.token_ids.size()) +
                            " tokens, beyond the model's context of " + std::to_string(engine.max_model_len()) +
                            " (truncate_prompt_tokens cuts it)",
                        param);
    plan.params.detokenize = false;
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace

void handle_score(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  state.require_runner(true, "/score");
  const ScoreRequest r = parse_score_request(parse_json_body(req.body));
  state.check_model(r.model);
  std::vector<std::pair<std::string, std::string>> texts;
  for (const std::string& t : r.text_1) texts.push_back({t, "text_1"});
  for (const std::string& t : r.text_2) texts.push_back({t, "text_2"});
  Generation gen(state, make_request_id("score"), plans_of(state, texts, r.truncate_prompt_tokens), 1);
  ClientConnection conn(req);
  respond_when_done(gen, conn, res, [&] {
    const size_t n1 = r.text_1.size(), pairs = r.text_2.size();
    std::string out;
    append_response_head(out, gen.id(), "list", unix_time(), state.model_name, "data");
    for (size_t i = 0; i < pairs; ++i) {
      const std::vector<float>& a = gen.choices()[n1 == 1 ? 0 : i].embedding;
      const std::vector<float>& b = gen.choices()[n1 + i].embedding;
      if (i) out += ',';
      out += "{\"index\":";
      append_json_number(out, static_cast<int64_t>(i));
      out += ",\"object\":\"score\",\"score\":";
      append_json_number(out, cosine_similarity(a, b));
      out += '}';
    }
    close_list_response(out, static_cast<int64_t>(gen.prompt_tokens()));
    return out;
  });
}

void handle_rerank(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  state.require_runner(true, "/rerank");
  const RerankRequest r = parse_rerank_request(parse_json_body(req.body));
  state.check_model(r.model);
  std::vector<std::pair<std::string, std::string>> texts = {{r.query, "query"}};
  for (const std::string& d : r.documents) texts.push_back({d, "documents"});
  Generation gen(state, make_request_id("rerank"), plans_of(state, texts, r.truncate_prompt_tokens), 1);
  ClientConnection conn(req);
  respond_when_done(gen, conn, res, [&] {
    std::vector<std::pair<double, size_t>> ranked;  // best first; ties in document order
    for (size_t i = 0; i < r.documents.size(); ++i)
      ranked.push_back({cosine_similarity(gen.choices()[0].embedding, gen.choices()[1 + i].embedding), i});
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    if (r.top_n && static_cast<size_t>(*r.top_n) < ranked.size()) ranked.resize(static_cast<size_t>(*r.top_n));
    std::string out = "{\"id\":";
    append_json_string(out, gen.id());
    out += ",\"model\":";
    append_json_string(out, state.model_name);
    out += ",\"usage\":{\"total_tokens\":";
    append_json_number(out, static_cast<int64_t>(gen.prompt_tokens()));
    out += "},\"results\":[";
    for (size_t k = 0; k < ranked.size(); ++k) {
      if (k) out += ',';
      out += "{\"index\":";
      append_json_number(out, static_cast<int64_t>(ranked[k].second));
      if (r.return_documents) {
        out += ",\"document\":{\"text\":";
        append_json_string(out, r.documents[ranked[k].second]);
        out += '}';
      }
      out += ",\"relevance_score\":";
      append_json_number(out, ranked[k].first);
      out += '}';
    }
    out += "]}";
    return out;
  });
}

}  // namespace tllm
