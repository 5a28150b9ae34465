#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace tllm::tok {

namespace {

// Oniguruma's Unicode `\w` (inside a class): Alphabetic, Mark, Decimal_Number and
// Connector_Punctuation; below U+0100 it reads its Latin-1 table, which also counts the
// superscript digits and vulgar fractions (U+00B2, U+00B3, U+00B9, U+00BC..U+00BE) as word
// characters. The listed So ranges are the non-mark Other_Alphabetic code points.
constexpr const char* kWordClassBody =
    "\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}\\x{24B6}-\\x{24E9}"
    "\\x{1F130}-\\x{1F149}\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}";
constexpr const char* kSpaceClassBody = "\\s\\x{85}";

}  // namespace

std::string translate_onig_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      bool in_class = class_depth > 0;
      switch (n) {
        case 's':
          out += in_class ? std::string(kSpaceClassBody) : "[" + std::string(kSpaceClassBody) + "]";
          break;
        case 'S':
          // Inside a class a negated set cannot be spliced in; leave PCRE2's \S there.
          out += in_class ? std::string("\\S") : "[^" + std::string(kSpaceClassBody) + "]";
          break;
        case 'w':
          out += in_class ? std::string(kWordClassBody) : "[" + std::string(kWordClassBody) + "]";
          break;
        case 'W':
          out += in_class ? std::string("\\W") : "[^" + std::string(kWordClassBody) + "]";
          break;
        case 'h':
          out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
          break;
        case 'H':
          out += in_class ? "\\x{0}-/:-@G-`g-\\x{10FFFF}" : "[^0-9a-fA-F]";
          break;
        default:
          out += c;
          out += n;
          // Keep \p{..}, \x{..} and similar braces verbatim.
          if ((n == 'p' || n == 'P' || n == 'x') && i + 2 < p.size() && p[i + 2] == '{') {
            size_t close = p.find('}', i + 2);
            if (close != std::string_view::npos) {
              out.append(p.substr(i + 2, close - (i + 2) + 1));
              i = close;
              continue;
            }
          }
          break;
      }
      ++i;
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') { out += '^'; ++i; }
      if (i + 1 < p.size() && p[i + 1] == ']') { out += "\\]"; ++i; }
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

Regex::Regex(std::string_view pattern, std::string_view where) : pattern_(pattern) {
  std::string translated = translate_onig_pattern(pattern);
  int err = 0;
  PCRE2_SIZE err_off = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &err_off, nullptr);
  if (!code_) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    TLLM_THROW("tokenizer.json: ", where, ": regex ", '"', std::string(pattern), '"',
               " does not compile (PCRE2: ", reinterpret_cast<const char*>(msg), " at offset ",
               err_off, ")");
  }
  // JIT failure (e.g. unsupported platform) leaves the interpreter in place, which is correct.
  pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() { pcre2_code_free(code_); }

namespace {

// One match-data block per thread, big enough for the whole-match pair we read.
struct MatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~MatchData() { pcre2_match_data_free(md); }
};

}  // namespace

bool Regex::find(std::string_view subject, size_t start, size_t* mstart, size_t* mend) const {
  thread_local MatchData data;
  int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                       PCRE2_NO_UTF_CHECK, data.md, nullptr);
  if (rc < 0) {
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof(msg));
    TLLM_THROW("tokenizer: regex ", '"', pattern_, '"', " failed to match: ",
               reinterpret_cast<const char*>(msg));
  }
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
  *mstart = ov[0];
  *mend = ov[1];
  return true;
}

}  // namespace tllm::tok
