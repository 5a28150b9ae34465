// Structured output: the text a request must produce, as a sequence of pieces, each a literal
// text, one of several texts, a JSON value under a schema (engine/json_prefix.h), text a regular
// expression matches (engine/regex.h), a sentence of a grammar (engine/grammar.h), free text
// up to a trigger, or one of several formats (a reply that is a JSON value or tool calls;
// reasoning up to "</think>", then the format). JSON mode is one object, response_format
// json_schema one value, guided_choice one of several texts; a forced tool call is
//   "<tool_call>\n" call "\n</tool_call>"
// with `call` a JSON value of the union over the eligible tools of {"name": const, "arguments":
// the tool's parameters}; with strict tools under tool_choice "auto" the same call follows free
// text up to "<tool_call>" (a format that starts with free text repeats: more text, more calls).
// FormatPrefix follows the output byte by byte; OutputFilter says which tokens may come next:
// those whose bytes it takes; never special tokens (their text is not what a client sees);
// the ids that end a sequence (eos, stop_token_ids) only once the format is complete, which the
// engine adds per request. Per new state the filter walks the vocabulary sorted by bytes as a
// trie, feeding each shared prefix once and dropping every token under a refused one; inside a
// string, where most tokens are taken, tokens of plain text (whole UTF-8 characters, no quote,
// backslash or control byte) are taken without simulation while they fit the string's length
// limit, and the others walked as a trie of their own. Results are cached by state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/grammar.h"
#include "engine/json_prefix.h"
#include "engine/sampling_params.h"

namespace tllm {

class Tokenizer;

class FormatPrefix {
 public:
  // Distinct live formats a choice of formats keeps (the later ones past it are dropped).
  static constexpr size_t kMaxBranches = 16;
  // pieces must outlive the prefix (the request's SamplingParams hold them).
  explicit FormatPrefix(const std::vector<OutputPiece>* pieces);
  // Feeds s; false (state unspecified) at the first byte refused.
  bool feed(std::string_view s);
  // The output may end here.
  bool complete() const;
  // In a JSON string value, between characters, `room` more allowed (JsonPrefix::in_plain_string).
  bool in_plain_string(uint32_t* room) const;
  // In free text with no part of its trigger written: any text without the trigger's first
  // byte (`first`) is taken and leaves the state as it is.
  bool in_free_text(unsigned char* first) const;
  // In a grammar piece, the characters that leave the state as it is (Grammar::State::loops).
  bool grammar_loops(CodePointRanges& out) const;
  // Equal keys: equal formats and states; with a horizon, states that take or refuse every
  // text of up to `horizon` bytes alike (JsonPrefix::key).
  std::string key(uint32_t horizon = JsonPrefix::kExactKey) const;

 private:
  bool step(unsigned char c);
  void next_piece();
  void skip_empty_pieces();
  bool piece_may_end() const;  // the current piece is whole (more may still extend it)
  bool repeats() const;        // the format starts with free text, and goes back to it at its end
  bool step_branches(const OutputPiece& p, unsigned char c, bool* could_end);  // step() in a choice
  void state_key(uint32_t horizon, std::string& k) const;    // key() without the format
  // state_key() of this format of `choice`, with which of its formats it follows.
  void branch_key(const OutputPiece& choice, uint32_t horizon, std::string& k) const;

  const std::vector<OutputPiece>* pieces_;
  size_t piece_ = 0, pos_ = 0;
  std::optional<JsonPrefix> json_;  // the current piece's, when it is a JSON value
  std::string got_;  // a one_of piece's bytes so far
  int re_ = 0;       // a regex piece's automaton state
  std::optional<Grammar::State> grammar_;  // the current piece's, when it is a grammar
  // The current piece's live formats, when it is a choice of formats (OutputPiece::either); a
  // repeated choice's formats that end start it again. Formats in one state are kept once, at
  // most kMaxBranches of them (the server's choices have two or three).
  std::vector<FormatPrefix> branches_;
  const FormatPrefix* only_branch() const;  // the one live format whose shortcuts hold for the choice
};

// The tokens that may come next, as whichever list is shorter: the allowed ids (most states of
// a structure allow a few hundred) or the banned ones (inside strings most tokens are allowed).
struct TokenSet {
  bool allowed = false;       // ids lists the allowed tokens (else the banned ones)
  std::vector<int32_t> ids;   // sorted
  bool contains(int32_t id) const;  // whether id may come next
};

class OutputFilter {
 public:
  // vocab_size: the model's (ids the tokenizer does not know are never drawn).
  OutputFilter(const Tokenizer& tokenizer, int vocab_size);

  // What may come after `state`, end ids aside (never allowed here: the engine adds them
  // once the format is complete).
  const TokenSet& next(const FormatPrefix& state);
  // States computed so far (cache misses), for tests and benchmarks.
  size_t states_computed() const { return computed_; }
  // The bytes token id adds to the output ("" for special and unknown ids).
  const std::string& bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }

 private:
  static constexpr size_t kMaxCached = 256;
  std::vector<std::string> bytes_;
  uint32_t longest_ = 0;         // bytes of the longest token: the horizon of the cache's keys
  std::vector<uint8_t> never_;  // special or unknown: always banned
  std::vector<uint32_t> plain_;  // characters of plain string text (see in_plain_string); 0: not plain
  std::vector<int32_t> sorted_;  // the drawable tokens, by their bytes
  std::vector<int32_t> rest_;    // those of them that are not plain string text, by their bytes
  // Each token's characters (for grammar states that loop on some), filled on first use:
  // token id's code points are code_points_[cp_at_[id], cp_at_[id + 1]); none when its
  // bytes are not whole UTF-8 characters.
  std::vector<uint32_t> code_points_, cp_at_;
  void index_code_points();
  CodePointRanges loops_;        // next()'s scratch
  std::vector<int32_t> others_;  // next()'s scratch
  // Marks in ok the tokens of sorted[lo, hi) (which share their first d bytes, fed to s) that s
  // takes whole.
  void walk(const std::vector<int32_t>& sorted, size_t lo, size_t hi, size_t d, const FormatPrefix& s,
            std::vector<uint8_t>& ok) const;
  std::unordered_map<std::string, TokenSet> cache_;
  size_t computed_ = 0;
  std::vector<uint8_t> ok_;  // next()'s scratch
};

}  // namespace tllm
