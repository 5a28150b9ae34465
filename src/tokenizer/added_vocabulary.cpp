#include "tokenizer/added_vocabulary.h"

#include "tokenizer/unicode.h"

namespace tllm::tok {

void AddedTokenMatcher::build(std::vector<const AddedToken*> tokens, std::vector<std::string> patterns) {
  tokens_.clear();
  nodes_.assign(1, Node{});
  first_byte_.fill(false);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& p = patterns[i];
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char c : p) {
      int32_t child = -1;
      for (auto& [ch, idx] : nodes_[node].children) {
        if (ch == c) { child = idx; break; }
      }
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        nodes_[node].children.push_back({c, child});
        nodes_.push_back(Node{});
      }
      node = child;
    }
    // Equal patterns: the first one wins, as in Aho-Corasick.
    if (nodes_[node].pattern < 0) {
      nodes_[node].pattern = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(tokens[i]);
      first_byte_[static_cast<unsigned char>(p[0])] = true;
    }
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t* len) const {
  int32_t node = 0;
  int best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [ch, idx] : nodes_[node].children) {
      if (ch == c) { child = idx; break; }
    }
    if (child < 0) break;
    node = child;
    if (nodes_[node].pattern >= 0) {
      best = nodes_[node].pattern;
      *len = i + 1 - pos;
    }
  }
  return best;
}

namespace {

bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size();
  return is_word_char(prev_cp(s, i));
}

bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return is_word_char(next_cp(s, i));
}

}  // namespace

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSplit>& out) const {
  size_t start_offset = 0;
  size_t pos = 0;
  const size_t n = text.size();
  // The last rstrip scan: from rstrip_from the whitespace runs to rstrip_to. A later scan that
  // starts inside that run ends at the same place (this keeps a run of whitespace tokens with
  // rstrip linear, not quadratic).
  size_t rstrip_from = 1, rstrip_to = 0;
  while (pos < n) {
    // Leftmost position where some pattern matches, then its longest pattern.
    size_t len = 0;
    int k = -1;
    while (pos < n) {
      if (first_byte_[static_cast<unsigned char>(text[pos])]) {
        k = longest_at(text, pos, &len);
        if (k >= 0) break;
      }
      ++pos;
    }
    if (k < 0) break;
    size_t start = pos, stop = pos + len;
    pos = stop;  // the next search starts after this match, even if it is discarded below
    const AddedToken& t = *tokens_[k];
    if (t.single_word) {
      bool start_space = start == 0 || !ends_with_word(text.substr(0, start));
      bool stop_space = stop == n || !starts_with_word(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      // HF scans back to the first non-whitespace character, then keeps out of the previous
      // match (max with start_offset); stopping the scan at start_offset gives the same start.
      size_t s = start;
      while (s > start_offset) {
        size_t j = s;
        if (!is_whitespace(prev_cp(text, j))) break;
        s = j;
      }
      start = std::max(s, start_offset);
    }
    if (t.rstrip) {
      if (rstrip_from <= stop && stop <= rstrip_to) {
        stop = rstrip_to;
      } else {
        rstrip_from = stop;
        while (stop < n) {
          size_t j = stop;
          if (!is_whitespace(next_cp(text, j))) break;
          stop = j;
        }
        rstrip_to = stop;
      }
    }
    // A match inside the whitespace that the previous token's rstrip took: HF drops the empty
    // split (start == stop) and panics on start > stop ("AddedVocabulary bad split"); both
    // leave the token out.
    if (start >= stop) continue;
    if (start_offset < start) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, t.id});
    start_offset = stop;
  }
  if (start_offset < n) out.push_back({start_offset, n, -1});
}

}  // namespace tllm::tok
