// Regular expressions for structured output (vLLM's guided_regex / structured_outputs.regex):
// a pattern compiled into a deterministic automaton over UTF-8 bytes that the whole output
// must match. FormatPrefix (engine/output_format.h) walks it byte by byte; the automaton keeps
// only states from which a match can still be reached, so a prefix it takes always has a
// completion.
//
// Syntax (Python's re / ECMAScript, the common part): literals; `.` (any character but a
// newline); classes `[a-z_]`, `[^...]` with ranges and escapes; \d \D \w \W \s \S (ASCII
// classes, as xgrammar's); escapes \n \r \t \f \v \0, \xHH, \uHHHH, \u{H...}, and \ before any
// punctuation; groups `( )`, `(?: )`, `(?P<name> )` / `(?<name> )`; alternation `|`;
// quantifiers * + ? {n} {n,} {n,m} {,m} (Python's {0,m}; a lazy or possessive suffix ? / + is
// accepted: it changes what a search finds, not what a full match allows); `^` at the start
// and `$` where nothing can follow it (the end, of the pattern or of a branch or group that
// ends it; the match is whole anyway). Refused by name: backreferences, lookaround, \b \B \A \Z,
// inline flags. Characters are Unicode code points (surrogates excluded), matched as their
// UTF-8 bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tllm {

class Regex {
 public:
  static constexpr int kMaxStates = 50000;      // automaton states, after which a pattern is refused
  static constexpr int kMaxRepeat = 1000;       // the largest bound of {n,m}
  static constexpr int kDead = -1;

  // Throws InvalidArgument naming the offset and what is wrong (unsupported syntax, a pattern
  // no text matches, one too large: more than kMaxStates states, or more work than a bound on
  // the states' NFA sets, which nested counted repeats reach long before, counted as it goes).
  static std::shared_ptr<const Regex> compile(std::string_view pattern);

  int start() const { return 0; }
  // The state after byte c, or kDead when no match begins with what was read and c.
  int next(int state, unsigned char c) const {
    return trans_[static_cast<size_t>(state) * classes_ + class_of_[c]];
  }
  bool accepting(int state) const { return accept_[static_cast<size_t>(state)] != 0; }
  // Accepting, and no byte may follow: the match is over.
  bool finished(int state) const { return finished_[static_cast<size_t>(state)] != 0; }
  int num_states() const { return static_cast<int>(accept_.size()); }
  const std::string& pattern() const { return pattern_; }
  // Whether all of `text` matches.
  bool full_match(std::string_view text) const;

 private:
  std::string pattern_;
  uint8_t class_of_[256] = {};  // bytes no transition tells apart share a class
  size_t classes_ = 0;
  std::vector<int32_t> trans_;  // [state][class]
  std::vector<uint8_t> accept_, finished_;
};

}  // namespace tllm
