// The server's view of the tokenizer and chat template: prompt encoding, chat rendering
// (tools, chat_template_kwargs, add_generation_prompt, continue_final_message), decoding
// for echo and /detokenize, and the raw bytes of single tokens for logprobs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/logprobs.h"
#include "server/protocol.h"
#include "tokenizer/token_bytes.h"

namespace tllm {

class Tokenizer;
class ChatTemplate;

class ServingTokenizer {
 public:
  // chat may be null (the model has no chat template); model_vocab_size sizes the token
  // table (the model's vocabulary can be larger than the tokenizer's).
  ServingTokenizer(const Tokenizer& tokenizer, const ChatTemplate* chat, int model_vocab_size);

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const;
  size_t max_input_bytes_per_token() const;  // Tokenizer::max_input_bytes_per_token
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const;
  std::string piece(int32_t id) const;  // vocab string as stored ("Ġthe"); "" if unknown
  // vLLM's bad_words as token sequences (SamplingParams::bad_words_ids): each word, leading
  // whitespace stripped, as it would start the text and, where the space merges into another
  // first token, as it would follow a space (vLLM takes that form only when it has as many
  // tokens, so "Moses" = M + oses would not ban " Moses").
  std::vector<std::vector<int32_t>> bad_word_sequences(const std::vector<std::string>& words) const;
  // The chat prompt; 400 when the model has no template or the template raises.
  std::string render_chat(const ChatRequest& request) const;
  const TokenTable& table() const { return table_; }

  // Raw bytes of one token (tokenizer/token_bytes.h: a partial UTF-8 character stays partial).
  std::string token_bytes(int32_t id) const;

 private:
  const Tokenizer& tokenizer_;
  const ChatTemplate* chat_;
  TokenBytes bytes_of_;  // before table_, which reads through it
  TokenTable table_;
};

}  // namespace tllm
