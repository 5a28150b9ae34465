// Regexes from tokenizer.json, run through PCRE2 (UTF + UCP, JIT-compiled).
//
// HF `tokenizers` runs these patterns with Oniguruma. The patterns real tokenizers ship
// (Qwen2, Llama-3, DeepSeek-V3, GPT-2) mean the same under PCRE2 except for the classes
// translated in translate_onig_pattern(): Oniguruma's `\s` includes U+0085 (White_Space)
// while PCRE2's does not, `\w` is Unicode "word" plus a few Latin-1 quirks, and `\h` means a hex digit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

struct pcre2_real_code_8;

namespace tllm::tok {

// Rewrites an Oniguruma pattern into one PCRE2 matches the same way (see above).
std::string translate_onig_pattern(std::string_view pattern);

class Regex {
 public:
  // pattern is Oniguruma syntax as stored in tokenizer.json; where names the JSON field for
  // error messages.
  Regex(std::string_view pattern, std::string_view where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Finds the next match at or after start; returns false if none. subject must be valid UTF-8.
  bool find(std::string_view subject, size_t start, size_t* mstart, size_t* mend) const;

  // Calls f(begin, end) for successive non-overlapping matches as the onig crate's find_iter
  // (HF's SysRegex) yields them: an empty match that ends where the previous match ended is
  // skipped (so "e?" in "er" gives "e" and the empty match at the end, not one between
  // "e" and "r"), and the search then resumes one character further on.
  template <typename F>
  void for_each_match(std::string_view subject, F&& f) const {
    size_t pos = 0, b = 0, e = 0;
    bool matched = false;
    size_t last_end = 0;
    while (pos <= subject.size() && find(subject, pos, &b, &e)) {
      if (e == b && matched && e == last_end) {
        if (pos >= subject.size()) break;
        ++pos;
        while (pos < subject.size() && (static_cast<unsigned char>(subject[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      f(b, e);
      matched = true;
      last_end = e;
      pos = e;
    }
  }

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace tllm::tok
