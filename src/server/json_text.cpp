#include "server/json_text.h"

#include <charconv>
#include <cmath>

#include "tokenizer/unicode.h"

namespace tllm {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // Copy the run of plain ASCII at once.
      size_t j = i + 1;
      while (j < s.size()) {
        const unsigned char d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') break;
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
      }
      ++i;
      continue;
    }
    // A run of non-ASCII bytes, repaired as one (maximal invalid subparts -> U+FFFD).
    size_t j = i + 1;
    while (j < s.size() && static_cast<unsigned char>(s[j]) >= 0x80) ++j;
    tok::append_utf8_lossy(out, s.substr(i, j - i));
    i = j;
  }
  out.push_back('"');
}

void append_json_number(std::string& out, double v) {
  if (!std::isfinite(v)) v = -9999.0;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
  // Keep floats recognizable as floats ("-1.0", not "-1"), as Python's json does.
  if (std::string_view(buf, r.ptr - buf).find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void append_json_number(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

std::string sanitize_utf8(std::string_view s) { return tok::utf8_lossy(s); }

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : sanitize_utf8(s)) n += (c & 0xC0) != 0x80;
  return n;
}

bool is_valid_utf8(std::string_view s) { return tok::valid_utf8_prefix(s) == s.size(); }

}  // namespace tllm
