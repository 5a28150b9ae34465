#include "tokenizer/unicode.h"

#include <cstdlib>
#include <utf8proc.h>

#include "core/error.h"

namespace tllm::tok {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid; on invalid, *maximal gets the
// length of the maximal subpart (>= 1) that one U+FFFD replaces (Unicode 15, table 3-7).
size_t check_seq(const unsigned char* p, size_t n, size_t* maximal) {
  unsigned char b = p[0];
  if (b < 0x80) return 1;
  Utf8Lead lead;
  if (!utf8_lead(b, lead)) {
    *maximal = 1;
    return 0;
  }
  const size_t need = static_cast<size_t>(lead.continuation) + 1;
  const unsigned char lo = lead.lo, hi = lead.hi;
  size_t k = 1;
  for (; k < need; ++k) {
    if (k >= n) break;
    unsigned char c = p[k];
    unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
    if (c < l || c > h) break;
  }
  if (k == need) return need;
  *maximal = k;
  return 0;
}

}  // namespace

bool utf8_lead(unsigned char b, Utf8Lead& lead) {
  lead = {0, 0x80, 0xBF};
  if (b >= 0xC2 && b <= 0xDF) {
    lead.continuation = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    lead.continuation = 2;
    if (b == 0xE0) lead.lo = 0xA0;
    if (b == 0xED) lead.hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    lead.continuation = 3;
    if (b == 0xF0) lead.lo = 0x90;
    if (b == 0xF4) lead.hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

size_t valid_utf8_prefix(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  while (i < n) {
    if (p[i] < 0x80) { ++i; continue; }
    size_t maximal = 0;
    size_t len = check_seq(p + i, n - i, &maximal);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

void append_utf8_lossy(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0, n = s.size();
  size_t run = 0;  // start of the current valid run
  while (i < n) {
    if (p[i] < 0x80) { ++i; continue; }
    size_t maximal = 0;
    size_t len = check_seq(p + i, n - i, &maximal);
    if (len) { i += len; continue; }
    out.append(s.data() + run, i - run);
    out.append("\xEF\xBF\xBD");
    i += maximal;
    run = i;
  }
  out.append(s.data() + run, n - run);
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  append_utf8_lossy(out, s);
  return out;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  if (c == 0x200C || c == 0x200D) return true;
  // Other_Alphabetic code points outside the M categories (circled / squared letters, So).
  if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
      (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189)) {
    return true;
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
      return true;
    default:
      return false;
  }
}

namespace {

// Code points that are NFC_Quick_Check=Yes with canonical combining class 0 and that never
// combine with a preceding character. A string made only of these is already in NFC.
// (Ranges chosen conservatively: marks, singletons, composition exclusions and
// second-in-composition characters fall outside them.)
bool nfc_inert(char32_t c) {
  if (c < 0x300) return true;  // ASCII, Latin-1, Latin Extended-A/B, IPA, spacing modifiers
  if (c >= 0x400 && c <= 0x482) return true;     // Cyrillic letters
  if (c >= 0x48A && c <= 0x52F) return true;     // Cyrillic letters
  if (c >= 0x621 && c <= 0x64A) return true;     // Arabic letters
  if (c >= 0x2010 && c <= 0x2027) return true;   // dashes, quotes, bullets
  if (c >= 0x2030 && c <= 0x205E) return true;   // per-mille, primes, punctuation
  if (c >= 0x3000 && c <= 0x3029) return true;   // CJK symbols and punctuation
  if (c >= 0x3030 && c <= 0x303F) return true;
  if (c >= 0x3041 && c <= 0x3096) return true;   // Hiragana
  if (c >= 0x30A1 && c <= 0x30FA) return true;   // Katakana
  if (c >= 0x4E00 && c <= 0x9FFF) return true;   // CJK Unified Ideographs
  if (c >= 0xAC00 && c <= 0xD7A3) return true;   // Hangul syllables (a following jamo is not inert)
  if (c >= 0xFF01 && c <= 0xFF5E) return true;   // fullwidth ASCII (compatibility only)
  if (c >= 0x1F300 && c <= 0x1FAFF) return true;  // emoji and pictographs
  return false;
}

}  // namespace

bool is_nfc_fast(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    if (!nfc_inert(next_cp(s, i))) return false;
  }
  return true;
}

namespace {

std::string utf8proc_form(std::string_view s, NormForm form) {
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormForm::NFC: options |= UTF8PROC_COMPOSE; break;
    case NormForm::NFD: options |= UTF8PROC_DECOMPOSE; break;
    case NormForm::NFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::NFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &out,
                                    static_cast<utf8proc_option_t>(options));
  TLLM_CHECK(n >= 0, "tokenizer: Unicode normalization failed: ", utf8proc_errmsg(n));
  std::string r(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

}  // namespace

std::string normalize_form(std::string_view s, NormForm form) {
  bool ascii = true;
  for (unsigned char b : s) {
    if (b >= 0x80) { ascii = false; break; }
  }
  if (ascii) return std::string(s);
  if (form != NormForm::NFC) return utf8proc_form(s, form);
  // NFC piecewise: an inert character never combines with what precedes it, so the text
  // splits into independent parts at inert characters. Only the stretches holding other
  // characters (with the inert character just before them, which may compose with them)
  // go through utf8proc.
  std::string out;
  out.reserve(s.size());
  size_t i = 0, copied = 0;
  size_t prev_start = 0;  // start of the previous character
  while (i < s.size()) {
    size_t start = i;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      prev_start = start;
      ++i;
      continue;
    }
    char32_t c = next_cp(s, i);
    if (nfc_inert(c)) {
      prev_start = start;
      continue;
    }
    // A stretch of non-inert characters from start; it begins one character earlier.
    size_t seg_begin = start > 0 ? prev_start : start;
    if (seg_begin < copied) seg_begin = copied;
    size_t seg_end = i;
    while (seg_end < s.size()) {
      size_t j = seg_end;
      if (static_cast<unsigned char>(s[j]) < 0x80) break;
      if (nfc_inert(next_cp(s, j))) break;
      seg_end = j;
    }
    out.append(s, copied, seg_begin - copied);
    out += utf8proc_form(s.substr(seg_begin, seg_end - seg_begin), NormForm::NFC);
    copied = seg_end;
    i = seg_end;
    prev_start = seg_end;  // unused until the next character sets it
  }
  out.append(s, copied, std::string_view::npos);
  return out;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t pos = 0, hit;
  while ((hit = s.find(from, pos)) != std::string_view::npos) {
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string_view::npos);
  return out;
}

std::string to_lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back((b >= 'A' && b <= 'Z') ? static_cast<char>(b + 32) : static_cast<char>(b));
      ++i;
      continue;
    }
    char32_t c = next_cp(s, i);
    if (c == 0x130) {  // the one unconditional multi-char lowercase mapping (SpecialCasing.txt)
      out.append("i\xCC\x87");
      continue;
    }
    append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
  return out;
}

}  // namespace tllm::tok
