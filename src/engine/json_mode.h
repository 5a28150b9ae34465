// JSON mode's token filter: after the output so far (a JsonPrefix state), a token may be drawn
// when the recognizer takes all of its bytes. Special tokens never (their text is not what a
// client sees); the ids that end a sequence (eos, stop_token_ids) only once the object is
// complete, which the engine adds per request. One pass over the vocabulary per new state
// (~1 M recognizer steps for a 152k vocabulary); results are cached by state, and inside a
// string the state repeats from token to token.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/json_prefix.h"

namespace tllm {

class Tokenizer;

class JsonTokenFilter {
 public:
  // vocab_size: the model's (ids the tokenizer does not know are never drawn).
  JsonTokenFilter(const Tokenizer& tokenizer, int vocab_size);

  // Sorted ids that must not come after `state`, end ids aside.
  const std::vector<int32_t>& banned(const JsonPrefix& state);
  // The bytes token id adds to the output ("" for special and unknown ids).
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

 private:
  static constexpr size_t kMaxCached = 256;
  std::vector<std::string> bytes_;
  std::vector<uint8_t> never_;  // special or unknown: always banned
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace tllm
