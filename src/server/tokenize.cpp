// POST /tokenize and /detokenize in vLLM's shapes:
//   /tokenize   {"prompt": "..."} or {"messages": [...]} -> {"count", "max_model_len", "tokens", "token_strs"}
//   /detokenize {"tokens": [...]}                        -> {"prompt": "..."}
#include <httplib.h>

#include "server/errors.h"
#include "server/json_text.h"
#include "server/serving.h"

namespace tllm {

void handle_tokenize(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  const TokenizeRequest r = parse_tokenize_request(parse_json_body(req.body));
  state.check_model(r.model);
  const ServingTokenizer& tok = state.require_tokenizer("/tokenize");
  const std::string text = r.chat ? tok.render_chat(*r.chat) : *r.prompt;
  const std::vector<int32_t> ids = tok.encode(text, r.add_special_tokens);

  std::string out = "{\"count\":";
  append_json_number(out, static_cast<int64_t>(ids.size()));
  out += ",\"max_model_len\":";
  append_json_number(out, static_cast<int64_t>(state.engine->engine().max_model_len()));
  out += ",\"tokens\":[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    append_json_number(out, static_cast<int64_t>(ids[i]));
  }
  out += "],\"token_strs\":";
  if (r.return_token_strs) {
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(',');
      append_json_string(out, tok.piece(ids[i]));
    }
    out.push_back(']');
  } else {
    out += "null";
  }
  out += "}";
  res.set_content(out, "application/json");
}

void handle_detokenize(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  const DetokenizeRequest r = parse_detokenize_request(parse_json_body(req.body));
  state.check_model(r.model);
  const ServingTokenizer& tok = state.require_tokenizer("/detokenize");
  check_token_ids(r.tokens, state.engine->engine().vocab_size(), "tokens");
  std::string out = "{\"prompt\":";
  append_json_string(out, tok.decode(r.tokens, /*skip_special_tokens=*/false));
  out += "}";
  res.set_content(out, "application/json");
}

}  // namespace tllm
