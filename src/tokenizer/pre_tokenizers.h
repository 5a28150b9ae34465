// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): Split, ByteLevel, Digits,
// Metaspace, Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer, CharDelimiterSplit,
// Sequence. Each turns a list of pieces into a finer list, as HF's PreTokenizedString::split
// does (empty pieces are dropped).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_util.h"

namespace tllm::tok {

struct Piece {
  std::string_view text;
  // True when the piece starts at byte 0 of the original input (HF offsets_original().0 == 0),
  // which Metaspace's prepend_scheme "first" tests.
  bool at_origin = false;
};

// Owns the strings of pieces that a pre-tokenizer rewrote (pieces are views).
using PieceArena = std::deque<std::string>;

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces pieces with their split (and possibly rewritten) form.
  virtual void apply(std::vector<Piece>& pieces, PieceArena& arena) const = 0;
  // Whether every byte of the input stays in some piece (no Removed behaviour, no
  // whitespace dropped): then the pieces' tokens cover the whole input.
  virtual bool keeps_all_text() const { return false; }
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where);

// If the last step of p (looking inside Sequences) is ByteLevel, turns off its byte -> char
// mapping and returns true: the BPE model then maps bytes itself, which is the same result
// without building the mapped strings.
bool take_over_final_byte_level(PreTokenizer* p);

}  // namespace tllm::tok
