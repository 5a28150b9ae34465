#include "rag/chunker.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

void ChunkOptions::validate() const {
  TLLM_CHECK_ARG(max_tokens >= 8, "chunk size must be at least 8 tokens, got ", max_tokens);
  TLLM_CHECK_ARG(overlap_tokens >= 0 && overlap_tokens < max_tokens, "chunk overlap must be in [0, ", max_tokens,
                 "), got ", overlap_tokens);
}

namespace {

struct Span {
  size_t begin, end;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Units: each ends after a newline, or after . ! ? followed by whitespace (which it keeps).
std::vector<Span> sentence_units(std::string_view t) {
  std::vector<Span> out;
  size_t start = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const bool end_line = t[i] == '\n';
    const bool end_sentence = (t[i] == '.' || t[i] == '!' || t[i] == '?') && i + 1 < t.size() && is_space(t[i + 1]);
    if (!end_line && !end_sentence) continue;
    size_t j = i + 1;
    while (j < t.size() && is_space(t[j]) && t[j] != '\n') ++j;  // the spaces after a sentence
    if (end_line || (j < t.size() && t[j] == '\n')) {
      while (j < t.size() && is_space(t[j])) ++j;  // blank lines too
    }
    out.push_back({start, j});
    start = j;
    i = j - 1;
  }
  if (start < t.size()) out.push_back({start, t.size()});
  return out;
}

class Chunker {
 public:
  Chunker(std::string_view text, const Tokenizer& tok, const ChunkOptions& o) : t_(text), tok_(tok), o_(o) {}

  std::vector<Chunk> run() {
    std::vector<Span> units;
    for (const Span& u : sentence_units(t_)) split_to_fit(u, units);
    std::vector<int> counts;
    for (const Span& u : units) counts.push_back(count(u));
    size_t a = 0;
    while (a < units.size()) {
      // The longest run [a, b) whose text fits.
      size_t b = a + 1;
      int sum = counts[a];
      while (b < units.size() && sum + counts[b] <= o_.max_tokens) sum += counts[b++];
      while (b > a + 1 && count({units[a].begin, units[b - 1].end}) > o_.max_tokens) --b;  // merges across units
      emit({units[a].begin, units[b - 1].end});
      if (b == units.size()) break;
      // The next chunk begins with the last units of this one that fit the overlap (never at a).
      size_t s = b;
      int over = 0;
      while (s > a + 1 && over + counts[s - 1] <= o_.overlap_tokens) over += counts[--s];
      a = s;
    }
    return std::move(out_);
  }

 private:
  int count(Span s) const { return static_cast<int>(tok_.encode(t_.substr(s.begin, s.end - s.begin)).size()); }

  // u as units of at most max_tokens: whole, or cut after spaces, or between characters.
  void split_to_fit(Span u, std::vector<Span>& out) const {
    if (count(u) <= o_.max_tokens) return out.push_back(u);
    std::vector<Span> words;  // each word with the spaces after it
    size_t s = u.begin;
    for (size_t i = u.begin; i < u.end; ++i)
      if (is_space(t_[i]) && (i + 1 == u.end || !is_space(t_[i + 1]))) words.push_back({s, i + 1}), s = i + 1;
    if (s < u.end) words.push_back({s, u.end});
    if (words.size() > 1) {
      std::vector<int> wc;
      for (const Span& w : words) wc.push_back(count(w));
      size_t a = 0;
      while (a < words.size()) {  // the words' counts summed, then the run's own count checked
        size_t b = a + 1;
        int sum = wc[a];
        while (b < words.size() && sum + wc[b] <= o_.max_tokens) sum += wc[b++];
        while (b > a + 1 && count({words[a].begin, words[b - 1].end}) > o_.max_tokens) --b;
        if (b == a + 1) split_chars(words[a], out);
        else out.push_back({words[a].begin, words[b - 1].end});
        a = b;
      }
      return;
    }
    split_chars(u, out);
  }

  // A single word: the longest prefixes of whole characters that fit, one after another. Each
  // is found by galloping from its first character (windows of 1, 2, 4, ... characters) and
  // then bisecting the last window, so a piece costs tokenizations of about its own length: a
  // search over the whole rest of the word for every piece made a long word (a base64 blob, a
  // minified line) quadratic, minutes for a few hundred kilobytes.
  void split_chars(Span u, std::vector<Span>& out) const {
    if (count(u) <= o_.max_tokens) return out.push_back(u);
    const auto fits = [&](size_t begin, size_t end) { return count({begin, end}) <= o_.max_tokens; };
    size_t s = u.begin;
    std::vector<size_t> ends;  // character ends after s, as far as the search has looked
    while (s < u.end) {
      ends.clear();
      const auto reach = [&](size_t n) {  // ends[0 .. n) where the unit has that many characters
        size_t i = ends.empty() ? s : ends.back();
        while (ends.size() < n && i < u.end) {
          i = std::min(u.end, i + static_cast<size_t>(tok::utf8_len(static_cast<unsigned char>(t_[i]))));
          ends.push_back(i);
        }
      };
      reach(1);
      size_t lo = 0, hi = 0;  // ends[lo] fits (the first always does); ends[hi] does not, or hi is past the last
      for (size_t step = 1;; step *= 2) {
        reach(lo + step + 1);
        const size_t probe = std::min(lo + step, ends.size() - 1);
        if (probe == lo) {
          hi = lo + 1;
          break;
        }
        if (!fits(s, ends[probe])) {
          hi = probe;
          break;
        }
        lo = probe;
      }
      while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (fits(s, ends[mid])) lo = mid;
        else hi = mid;
      }
      out.push_back({s, ends[lo]});
      s = ends[lo];
    }
  }

  void emit(Span s) {
    while (s.begin < s.end && is_space(t_[s.begin])) ++s.begin;
    while (s.end > s.begin && is_space(t_[s.end - 1])) --s.end;
    if (s.begin == s.end) return;
    Chunk c;
    c.begin = s.begin;
    c.end = s.end;
    c.text = std::string(t_.substr(s.begin, s.end - s.begin));
    c.tokens = count(s);
    out_.push_back(std::move(c));
  }

  std::string_view t_;
  const Tokenizer& tok_;
  const ChunkOptions& o_;
  std::vector<Chunk> out_;
};

}  // namespace

std::vector<Chunk> chunk_text(std::string_view text, const Tokenizer& tok, const ChunkOptions& opts) {
  opts.validate();
  TLLM_CHECK_ARG(tok::valid_utf8_prefix(text) == text.size(), "the document is not valid UTF-8 (at byte ",
                 tok::valid_utf8_prefix(text), ")");
  return Chunker(text, tok, opts).run();
}

}  // namespace tllm
