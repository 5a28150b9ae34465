// The bytes one token adds to a text, in the middle of it: decode([anchor, id]) less
// decode([anchor]) for an anchor token such as "a", so that a SentencePiece-style leading '▁'
// counts as the space it becomes there (decode([id]) alone drops it: the Metaspace decoder and
// Llama-2's Strip decoder remove a leading space at the start of a text). Where that text is
// not whole characters (U+FFFD), the token's raw bytes: a byte-fallback piece "<0xHH>" that
// the decoder turns into its byte gives that byte, and a byte-level piece gives the bytes of
// its byte-level alphabet. Exact for byte-level BPE vocabularies (Qwen, Llama-3, DeepSeek-V3)
// and for byte-fallback ones (Llama-2, Mistral, TinyLlama).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace tllm {

class Tokenizer;

// token_bytes of many ids of one tokenizer: the anchor is looked up once.
class TokenBytes {
 public:
  explicit TokenBytes(const Tokenizer& tokenizer);
  std::string operator()(int32_t id) const;

 private:
  const Tokenizer& tokenizer_;
  std::optional<std::pair<int32_t, std::string>> anchor_;  // its id and its own text
};

// One id: TokenBytes(tokenizer)(id).
std::string token_bytes(const Tokenizer& tokenizer, int32_t id);

}  // namespace tllm
