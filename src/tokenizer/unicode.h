// UTF-8 and Unicode helpers for the tokenizer: decoding, lossy repair of invalid input,
// the character classes HuggingFace `tokenizers` uses (Rust's char predicates), and
// normalization forms through utf8proc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tllm::tok {

// Length in bytes of the UTF-8 sequence starting with lead byte b (1 for invalid leads).
inline int utf8_len(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
inline char32_t next_cp(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  unsigned char b = p[0];
  if (b < 0x80) { i += 1; return b; }
  if ((b & 0xE0) == 0xC0) { i += 2; return char32_t(((b & 0x1F) << 6) | (p[1] & 0x3F)); }
  if ((b & 0xF0) == 0xE0) {
    i += 3;
    return char32_t(((b & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F));
  }
  i += 4;
  return char32_t(((b & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F));
}

// Decodes the code point that ends at s[i) (s valid UTF-8) and moves i back to its start.
inline char32_t prev_cp(std::string_view s, size_t& i) {
  size_t j = i - 1;
  while (j > 0 && (static_cast<unsigned char>(s[j]) & 0xC0) == 0x80) --j;
  size_t k = j;
  char32_t c = next_cp(s, k);
  i = j;
  return c;
}

void append_utf8(std::string& out, char32_t c);

// A UTF-8 lead byte (Unicode table 3-7, RFC 3629): how many continuation bytes follow (1-3)
// and the range the first of them must fall in (no overlongs, no surrogates, nothing above
// U+10FFFF; the later ones are 0x80-0xBF). False for ASCII and bytes that cannot lead.
struct Utf8Lead {
  int continuation;
  unsigned char lo, hi;
};
bool utf8_lead(unsigned char b, Utf8Lead& lead);

// Length of the longest prefix of s that is valid UTF-8.
size_t valid_utf8_prefix(std::string_view s);

// Returns s with every maximal invalid subsequence replaced by U+FFFD, the rule of the
// Unicode standard ("substitution of maximal subparts") that both Python's
// bytes.decode(errors="replace") and Rust's String::from_utf8_lossy follow.
std::string utf8_lossy(std::string_view s);
// Same, appending to out.
void append_utf8_lossy(std::string& out, std::string_view s);

// Rust char::is_whitespace (Unicode White_Space property).
bool is_whitespace(char32_t c);
// Rust regex `\w` (Unicode TR18 word: Alphabetic, M, Nd, Pc, Join_Control).
bool is_word_char(char32_t c);
// Rust char::is_numeric (general categories Nd, Nl, No).
bool is_numeric(char32_t c);
// HF's punctuation test: ASCII punctuation or general category P*.
bool is_punctuation(char32_t c);

enum class NormForm { NFC, NFD, NFKC, NFKD };
// True when s is certainly already NFC (every code point is in ranges that NFC leaves alone
// and that never compose with their neighbour); false means "run the full algorithm".
bool is_nfc_fast(std::string_view s);
// s must be valid UTF-8. ASCII input is returned unchanged without calling utf8proc.
std::string normalize_form(std::string_view s, NormForm form);

// s with every non-overlapping occurrence of from (left to right) replaced by to.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);

// Rust str::to_lowercase applied char by char (as HF's Lowercase normalizer does).
std::string to_lowercase(std::string_view s);

}  // namespace tllm::tok
