// Chat templates of HuggingFace checkpoints, rendered as transformers'
// tokenizer.apply_chat_template(messages, tools=..., add_generation_prompt=..., tokenize=False,
// **kwargs) renders them, byte for byte (tests/data/chat/chat_goldens.json checks it).
//
// The template sees: the tokenizer's special tokens (bos_token, eos_token, unk_token, pad_token,
// additional_special_tokens, where set), then messages, tools (None when absent), documents
// (None), add_generation_prompt, and every extra kwarg (which may override the special tokens).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

namespace tllm {

class ChatTemplate {
 public:
  // From a model dir: chat_template.jinja if present, else tokenizer_config.json "chat_template"
  // (a string, or a list of {"name", "template"}: `name` when given, else "tool_use" when tools
  // are passed and it exists, else "default", as transformers picks). Reads the special tokens
  // (a string or an {"content": ...} object) from tokenizer_config.json.
  static std::unique_ptr<ChatTemplate> load(const std::string& dir, const std::string& name = "");
  // vLLM's --chat-template: `source` is a file, or the template itself when it holds `{`, `}` or
  // a newline (anything else that is not a file is an error naming it); the special tokens come
  // from dir's tokenizer_config.json, as with load().
  static std::unique_ptr<ChatTemplate> load_override(const std::string& dir, const std::string& source);
  // An empty bos/eos leaves that variable undefined, as transformers does for a None token.
  static std::unique_ptr<ChatTemplate> from_string(std::string source, std::string bos_token = "",
                                                   std::string eos_token = "");

  // messages: OpenAI-style list; tools: list or null; extra_kwargs: object of extra variables
  // (e.g. {"enable_thinking": false}). Throws tllm::InvalidArgument for bad inputs and for the
  // template's raise_exception(msg) (message as is), tllm::Error for other template errors.
  std::string render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                     bool add_generation_prompt, const nlohmann::ordered_json& extra_kwargs = {}) const;

  // Names of the templates (one unnamed "default" for a plain string template).
  std::vector<std::string> names() const;
  const nlohmann::ordered_json& special_tokens() const { return special_tokens_; }
  // Pins strftime_now() ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS"); TLLM_FIXED_DATE does it too.
  void set_fixed_date(std::string date) { opts_.fixed_now = std::move(date); }

 private:
  ChatTemplate() = default;
  const jinja::Template& pick(bool has_tools) const;

  std::vector<std::pair<std::string, std::unique_ptr<jinja::Template>>> templates_;
  std::string requested_name_;
  std::string origin_;  // where the template came from, for error messages
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
  jinja::RenderOptions opts_;
};

}  // namespace tllm
