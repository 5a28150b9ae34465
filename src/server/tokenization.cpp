#include "server/tokenization.h"

#include <algorithm>

#include "server/errors.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

ServingTokenizer::ServingTokenizer(const Tokenizer& tokenizer, const ChatTemplate* chat, int model_vocab_size)
    : tokenizer_(tokenizer),
      chat_(chat),
      bytes_of_(tokenizer),
      table_(std::max(model_vocab_size, static_cast<int>(tokenizer.vocab_size())),
             [this](int32_t id) { return token_bytes(id); }) {}

std::vector<int32_t> ServingTokenizer::encode(const std::string& text, bool add_special_tokens) const {
  return tokenizer_.encode(text, add_special_tokens);
}

size_t ServingTokenizer::max_input_bytes_per_token() const { return tokenizer_.max_input_bytes_per_token(); }

std::string ServingTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return tokenizer_.decode(ids, skip_special_tokens);
}

std::string ServingTokenizer::piece(int32_t id) const {
  try {
    return tokenizer_.id_to_piece(id);
  } catch (const Error&) {
    return "";
  }
}

std::string ServingTokenizer::token_bytes(int32_t id) const { return bytes_of_(id); }

namespace {

// continue_final_message as transformers' apply_chat_template does it (vLLM renders through
// it): the prompt ends right after the last message's text, so the model continues that text
// (the end-of-turn marker the template wrote is dropped). The text is the content, or the last
// text part of a list. It is found by its stripped form (templates that trim it, as Llama 3's
// does, still match), and the cut keeps trailing whitespace only where the template kept the
// whole text as given.
void cut_after_final_message(std::string& text, const RequestJson& content) {
  std::string last;
  bool found = content.is_string();
  if (found) last = content.get<std::string>();
  if (content.is_array())
    for (auto it = content.rbegin(); it != content.rend() && !found; ++it)
      if (it->is_object() && it->contains("text") && (*it)["text"].is_string()) {
        last = (*it)["text"].get<std::string>();
        found = true;
      }
  if (!found)
    throw bad_request("continue_final_message: the final message has no text to continue", "continue_final_message");
  // Python's str.strip() (Unicode whitespace), as the template's own |trim strips it.
  const std::string stripped = jinja::python_strip(last, nullptr, true, true);
  const bool leading = jinja::python_strip(last, nullptr, true, false).size() != last.size();
  const size_t pos = text.rfind(stripped);
  if (pos == std::string::npos)
    throw bad_request("continue_final_message: the final message's content does not appear in the rendered "
                      "prompt", "continue_final_message");
  const bool kept = !leading && text.compare(pos, last.size(), last) == 0;  // transformers' test, as it is
  text.resize(pos + (kept ? last.size() : stripped.size()));
}

}  // namespace

std::string ServingTokenizer::render_chat(const ChatRequest& r) const {
  if (!chat_)
    throw bad_request("This model has no chat template (tokenizer_config.json has no chat_template); "
                      "use /v1/completions instead", "messages");
  std::string text;
  try {
    text = chat_->render(r.messages, r.tools, r.add_generation_prompt, r.chat_template_kwargs);
  } catch (const Error& e) {
    // raise_exception() in a template reports a conversation the template does not accept.
    throw bad_request(std::string("The chat template could not render these messages: ") + e.what(), "messages");
  }
  if (r.continue_final_message) cut_after_final_message(text, r.messages.back()["content"]);
  return text;
}

std::vector<std::vector<int32_t>> ServingTokenizer::bad_word_sequences(const std::vector<std::string>& words) const {
  std::vector<std::vector<int32_t>> out;
  for (const std::string& word : words) {
    const std::string bare = word.substr(std::min(word.find_first_not_of(" \t\n\r"), word.size()));
    std::vector<int32_t> alone = encode(bare, false);
    if (alone.empty()) continue;
    std::vector<int32_t> spaced = encode(" " + bare, false);
    // vLLM also asks for as many tokens; a BPE vocabulary often has " word" as one token where
    // "word" alone takes two, and that is the form a word takes inside a text.
    const std::string first = spaced.empty() ? std::string() : decode({spaced.front()}, false);
    const bool merged = first.find_first_not_of(" \t\n\r") != std::string::npos;
    const bool distinct = merged && spaced.front() != alone.front();
    out.push_back(std::move(alone));
    if (distinct) out.push_back(std::move(spaced));
  }
  return out;
}

}  // namespace tllm
