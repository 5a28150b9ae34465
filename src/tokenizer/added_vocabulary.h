// Added tokens ("added_tokens" of tokenizer.json): found in the text before pre-tokenization,
// leftmost-longest like HF's AddedVocabulary (Aho-Corasick, MatchKind::LeftmostLongest), with
// the single_word / lstrip / rstrip rules applied to each match. Tokens with normalized=false
// are matched in the raw text, the others in the normalized text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tllm::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A run of the text: either an added token (id >= 0) or plain text (id == -1).
struct TextSplit {
  size_t b, e;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  // patterns[i] is matched for tokens[i] (the content, or its normalized form).
  void build(std::vector<const AddedToken*> tokens, std::vector<std::string> patterns);
  bool empty() const { return tokens_.empty(); }
  // Splits text into added-token matches and the text between them (HF find_matches).
  void split(std::string_view text, std::vector<TextSplit>& out) const;

 private:
  // Longest pattern that matches at text[pos]; returns its index or -1 and sets *len.
  int longest_at(std::string_view text, size_t pos, size_t* len) const;

  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t pattern = -1;
  };
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace tllm::tok
