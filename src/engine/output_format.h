// Structured output: the text a request must produce, as a sequence of pieces, each a literal
// text, one of several texts, or a JSON object (engine/json_prefix.h). JSON mode is one object;
// a forced tool call is the Hermes call around its arguments object, its name fixed or one of
// the request's tools:
//   "<tool_call>\n{\"name\": \"" one of {"f\"", "g\""} ", \"arguments\": " object "}\n</tool_call>"
// FormatPrefix follows the output byte by byte; OutputFilter says which tokens may come next:
// those whose bytes it takes; never special tokens (their text is not what a client sees);
// the ids that end a sequence (eos, stop_token_ids) only once the format is complete, which the
// engine adds per request. Per new state the filter walks the vocabulary sorted by bytes as a
// trie, feeding each shared prefix once and dropping every token under a refused one; inside a
// string, where most tokens are taken, tokens of plain text (whole UTF-8 characters, no quote,
// backslash or control byte) are taken without simulation and the others simulated. Results
// are cached by state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/json_prefix.h"
#include "engine/sampling_params.h"

namespace tllm {

class Tokenizer;

class FormatPrefix {
 public:
  // pieces must outlive the prefix (the request's SamplingParams hold them).
  explicit FormatPrefix(const std::vector<OutputPiece>* pieces);
  // Feeds s; false (state unspecified) at the first byte refused.
  bool feed(std::string_view s);
  bool complete() const { return piece_ == pieces_->size(); }
  // In a JSON object's string, between characters (JsonPrefix::in_plain_string).
  bool in_plain_string() const;
  // Equal keys: equal formats and states.
  std::string key() const;

 private:
  bool step(unsigned char c);
  void next_piece();
  void skip_empty_pieces();

  const std::vector<OutputPiece>* pieces_;
  size_t piece_ = 0, pos_ = 0;
  JsonPrefix json_;
  std::string got_;  // a one_of piece's bytes so far
};

class OutputFilter {
 public:
  // vocab_size: the model's (ids the tokenizer does not know are never drawn).
  OutputFilter(const Tokenizer& tokenizer, int vocab_size);

  // Sorted ids that must not come after `state`, end ids aside.
  const std::vector<int32_t>& banned(const FormatPrefix& state);
  // The bytes token id adds to the output ("" for special and unknown ids).
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

 private:
  static constexpr size_t kMaxCached = 256;
  std::vector<std::string> bytes_;
  std::vector<uint8_t> never_;  // special or unknown: always banned
  std::vector<uint8_t> plain_;  // plain string text (see in_plain_string)
  std::vector<int32_t> sorted_;  // the drawable tokens, by their bytes
  // Marks in ok the tokens of sorted_[lo, hi) (which share their first d bytes, fed to s) that s
  // takes whole.
  void walk(size_t lo, size_t hi, size_t d, const FormatPrefix& s, std::vector<uint8_t>& ok) const;
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
  std::vector<uint8_t> ok_;  // banned()'s scratch
};

}  // namespace tllm
