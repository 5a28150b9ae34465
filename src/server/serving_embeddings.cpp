// POST /v1/embeddings: OpenAI's embeddings API on a pooling model (--runner pooling): one
// vector per input (text or token ids), as floats or base64 of little-endian f32, optionally
// cut to its first `dimensions` values and renormalised (Matryoshka-trained models); vLLM's
// `normalize` asks for the vector L2-normalised or raw, whatever the model's files say.
#include <httplib.h>

#include <cstring>

#include "engine/pooling.h"
#include "server/client_connection.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/serving.h"
#include "server/streaming.h"

namespace tllm {
namespace {

std::string base64(const unsigned char* p, size_t n) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = static_cast<uint32_t>(p[i]) << 16 | (i + 1 < n ? static_cast<uint32_t>(p[i + 1]) << 8 : 0) |
                       (i + 2 < n ? p[i + 2] : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < n ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

// The first `dims` values of v, renormalised when the model's vectors are normalised.
std::vector<float> shorten(const std::vector<float>& v, size_t dims, bool renormalize) {
  std::vector<float> out(v.begin(), v.begin() + static_cast<long>(std::min(dims, v.size())));
  if (renormalize && out.size() < v.size()) l2_normalize(out);
  return out;
}

}  // namespace

void close_list_response(std::string& out, int64_t prompt_tokens) {
  out += "],\"usage\":{\"prompt_tokens\":";
  append_json_number(out, prompt_tokens);
  out += ",\"total_tokens\":";
  append_json_number(out, prompt_tokens);
  out += "}}";
}

void handle_embeddings(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  serve_embeddings(state, req, res, parse_json_body(req.body));
}

void serve_embeddings(ServingState& state, const httplib::Request& req, httplib::Response& res, const RequestJson& body) {
  state.require_runner(true, "/v1/embeddings");
  const EmbeddingRequest r = parse_embedding_request(body);
  state.check_model(r.model);
  const LLMEngine& engine = state.engine->engine();
  const int hidden = engine.hidden_size();
  if (r.dimensions && *r.dimensions > hidden)
    throw bad_request("'dimensions' (" + std::to_string(*r.dimensions) + ") exceeds the model's embedding size of " +
                          std::to_string(hidden),
                      "dimensions");
  std::vector<PromptPlan> plans;
  for (const PromptInput& input : r.inputs) {
    PromptPlan plan;
    if (const auto* text = std::get_if<std::string>(&input)) {
      const ServingTokenizer& tok = state.require_tokenizer("text inputs");
      if (!r.truncate_prompt_tokens)
        check_text_fits(text->size(), tok.max_input_bytes_per_token(), engine.max_model_len(), engine.max_model_len(),
                        "input");
      plan.token_ids = tok.encode(*text, r.add_special_tokens);
    } else {
      plan.token_ids = std::get<std::vector<int32_t>>(input);
      check_token_ids(plan.token_ids, engine.vocab_size(), "input");
    }
    keep_last_tokens(plan.token_ids, r.truncate_prompt_tokens, engine.max_model_len());
    if (plan.token_ids.empty()) throw bad_request("an input has no tokens", "input");
    plan.params.detokenize = false;
    plan.params.normalize = r.normalize;
    plans.push_back(std::move(plan));
  }
  Generation gen(state, make_request_id("embd"), std::move(plans), 1);
  const int64_t created = unix_time();
  ClientConnection conn(req);
  respond_when_done(gen, conn, res, [&] {
    std::string out;
    append_response_head(out, gen.id(), "list", created, state.model_name, "data");
    for (size_t i = 0; i < gen.choices().size(); ++i) {
      const ChoiceState& c = gen.choices()[i];
      const std::vector<float> v =
          shorten(c.embedding, r.dimensions ? static_cast<size_t>(*r.dimensions) : c.embedding.size(),
                  r.normalize.value_or(engine.pooling_normalizes()));
      if (i) out += ',';
      out += "{\"index\":";
      append_json_number(out, static_cast<int64_t>(i));
      out += ",\"object\":\"embedding\",\"embedding\":";
      if (r.encoding_format == "base64") {
        std::string bytes(v.size() * 4, '\0');
        std::memcpy(bytes.data(), v.data(), bytes.size());  // x86 / arm64: little-endian
        append_json_string(out, base64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
      } else {
        out += '[';
        for (size_t k = 0; k < v.size(); ++k) {
          if (k) out += ',';
          append_json_number(out, static_cast<double>(v[k]));
        }
        out += ']';
      }
      out += '}';
    }
    close_list_response(out, static_cast<int64_t>(gen.prompt_tokens()));
    return out;
  });
}

}  // namespace tllm
