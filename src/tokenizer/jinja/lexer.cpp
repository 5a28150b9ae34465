#include "tokenizer/jinja/lexer.h"

#include <cstring>

#include "core/error.h"
#include "tokenizer/jinja/utf8.h"

namespace tllm::jinja {

namespace {

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Python's str.rstrip(): strips Unicode whitespace from the end.
void rstrip_unicode(std::string& s) {
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!utf8::is_space(utf8::decode(s, i))) break;
    s.resize(start);
  }
}

// Python's regex \s*: skips Unicode whitespace from pos.
size_t skip_unicode_space(const std::string& s, size_t pos) {
  while (pos < s.size()) {
    size_t i = pos;
    if (!utf8::is_space(utf8::decode(s, i))) break;
    pos = i;
  }
  return pos;
}

bool all_unicode_space(const std::string& s, size_t from) {
  if (from >= s.size()) return false;  // `\s+` needs at least one character
  for (size_t i = from; i < s.size();)
    if (!utf8::is_space(utf8::decode(s, i))) return false;
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

SourcePos source_position(const std::string& source, uint32_t offset) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  int column = 1 + static_cast<int>(utf8::length(std::string_view(source).substr(line_start, offset - line_start)));
  return {line, column};
}

Lexer::Lexer(std::string source) {
  // jinja2 normalizes \r\n and \r to \n and, without keep_trailing_newline, drops one final newline.
  src_.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      src_ += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      src_ += source[i];
    }
  }
  if (!src_.empty() && src_.back() == '\n') src_.pop_back();
}

SourcePos Lexer::position(uint32_t offset) const { return source_position(src_, offset); }

void Lexer::fail(uint32_t offset, const std::string& msg) const {
  SourcePos p = position(offset);
  throw Error(detail::concat("template syntax error at ", p.line, ":", p.column, ": ", msg));
}

std::vector<Token> Lexer::tokenize() {
  std::vector<Token> out;
  auto emit_text = [&](std::string text, size_t offset) {
    if (!text.empty()) out.push_back({Tok::Text, std::move(text), static_cast<uint32_t>(offset)});
  };
  // Applies `-` (strip all) or lstrip_blocks to the text before a tag.
  auto strip_before = [&](std::string& text, char sign, bool lstrip_applies) {
    if (sign == '-') {
      rstrip_unicode(text);
    } else if (sign != '+' && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_unicode_space(text, l_pos)) text.resize(l_pos);
    }
  };

  while (pos_ < src_.size()) {
    size_t tag = src_.find('{', pos_);
    while (tag != std::string::npos && tag + 1 < src_.size() && src_[tag + 1] != '{' && src_[tag + 1] != '%' &&
           src_[tag + 1] != '#')
      tag = src_.find('{', tag + 1);
    if (tag == std::string::npos || tag + 1 >= src_.size()) {
      emit_text(src_.substr(pos_), pos_);
      pos_ = src_.size();
      break;
    }
    std::string text = src_.substr(pos_, tag - pos_);
    char kind = src_[tag + 1];
    size_t after = tag + 2;
    char sign = 0;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];

    if (kind == '%') {  // {% raw %} ... {% endraw %}: copied verbatim
      size_t p = after;
      while (p < src_.size() && is_ascii_space(src_[p])) ++p;
      if (src_.compare(p, 3, "raw") == 0 && (p + 3 >= src_.size() || !is_name_char(src_[p + 3]))) {
        size_t q = p + 3;
        while (q < src_.size() && is_ascii_space(src_[q])) ++q;
        bool strip_after = false;
        if (src_.compare(q, 3, "-%}") == 0) {
          strip_after = true;
          q += 3;
        } else if (src_.compare(q, 2, "%}") == 0) {
          q += 2;
        } else {
          fail(static_cast<uint32_t>(tag), "expected '%}' after 'raw'");
        }
        strip_before(text, sign, true);
        emit_text(std::move(text), pos_);
        size_t body = strip_after ? skip_unicode_space(src_, q) : q;
        line_starting_ = body > 0 && src_[body - 1] == '\n';
        // Find {%[-+]?\s*endraw\s*(+%}|-%}|%})
        size_t search = body;
        while (true) {
          size_t e = src_.find("{%", search);
          if (e == std::string::npos) fail(static_cast<uint32_t>(tag), "missing end of raw directive");
          size_t r = e + 2;
          char esign = 0;
          if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) esign = src_[r++];
          while (r < src_.size() && is_ascii_space(src_[r])) ++r;
          if (src_.compare(r, 6, "endraw") != 0) {
            search = e + 2;
            continue;
          }
          r += 6;
          while (r < src_.size() && is_ascii_space(src_[r])) ++r;
          std::string raw = src_.substr(body, e - body);
          strip_before(raw, esign, true);
          emit_text(std::move(raw), body);
          if (src_.compare(r, 3, "+%}") == 0) {
            r += 3;
          } else if (src_.compare(r, 3, "-%}") == 0) {
            r = skip_unicode_space(src_, r + 3);
          } else if (src_.compare(r, 2, "%}") == 0) {
            r += 2;
            if (r < src_.size() && src_[r] == '\n') ++r;  // trim_blocks
          } else {
            fail(static_cast<uint32_t>(e), "expected '%}' after 'endraw'");
          }
          pos_ = r;
          line_starting_ = src_[r - 1] == '\n';
          break;
        }
        continue;
      }
    }

    strip_before(text, sign, kind != '{');
    emit_text(std::move(text), pos_);

    if (kind == '#') {
      size_t end = src_.find("#}", after);
      if (end == std::string::npos) fail(static_cast<uint32_t>(tag), "missing end of comment tag");
      char esign = end > after ? src_[end - 1] : 0;
      size_t r = end + 2;
      if (esign == '-') {
        r = skip_unicode_space(src_, r);
      } else if (esign != '+') {
        if (r < src_.size() && src_[r] == '\n') ++r;  // trim_blocks also applies to comments
      }
      pos_ = r;
      line_starting_ = src_[r - 1] == '\n';
      continue;
    }

    bool is_block = kind == '%';
    out.push_back({is_block ? Tok::BlockBegin : Tok::VarBegin, "", static_cast<uint32_t>(tag)});
    pos_ = after;
    lex_tag(is_block, out);
  }
  out.push_back({Tok::End, "", static_cast<uint32_t>(src_.size())});
  return out;
}

void Lexer::lex_tag(bool is_block, std::vector<Token>& out) {
  int depth = 0;  // open ( [ { inside the tag: their closers are not tag ends
  const uint32_t tag_start = static_cast<uint32_t>(pos_);
  while (true) {
    while (pos_ < src_.size() && is_ascii_space(src_[pos_])) ++pos_;
    if (pos_ >= src_.size()) fail(tag_start, is_block ? "unexpected end of template, expected '%}'"
                                                      : "unexpected end of template, expected '}}'");
    const uint32_t at = static_cast<uint32_t>(pos_);
    if (depth == 0) {
      const char* close = is_block ? "%}" : "}}";
      char sign = 0;
      size_t p = pos_;
      if ((src_[p] == '-' || (is_block && src_[p] == '+')) && src_.compare(p + 1, 2, close) == 0) sign = src_[p++];
      if (src_.compare(p, 2, close) == 0) {
        p += 2;
        if (sign == '-') {
          p = skip_unicode_space(src_, p);
        } else if (is_block && sign != '+' && p < src_.size() && src_[p] == '\n') {
          ++p;  // trim_blocks
        }
        out.push_back({is_block ? Tok::BlockEnd : Tok::VarEnd, "", at});
        pos_ = p;
        line_starting_ = src_[p - 1] == '\n';
        return;
      }
    }
    char c = src_[pos_];
    if (is_digit(c)) {
      size_t p = pos_;
      auto digits = [&](auto pred) {
        size_t start = p;
        while (p < src_.size() && (pred(src_[p]) || (src_[p] == '_' && p > start && p + 1 < src_.size() &&
                                                     pred(src_[p + 1]))))
          ++p;
        return p > start;
      };
      if (c == '0' && p + 1 < src_.size() && std::strchr("xXoObB", src_[p + 1])) {
        char base_ch = src_[p + 1];
        int base = (base_ch == 'x' || base_ch == 'X') ? 16 : (base_ch == 'o' || base_ch == 'O') ? 8 : 2;
        p += 2;
        size_t start = p;
        digits([&](char d) { int v = hex_value(d); return v >= 0 && v < base; });
        std::string text;
        for (size_t k = start; k < p; ++k)
          if (src_[k] != '_') text += src_[k];
        if (text.empty()) fail(at, "invalid integer literal");
        int64_t v = 0;
        for (char d : text)
          if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, hex_value(d), &v))
            fail(at, "integer literal " + src_.substr(pos_, p - pos_) + " is out of range (integers are 64-bit)");
        out.push_back({Tok::Int, std::to_string(v), at});
        pos_ = p;
        continue;
      }
      digits(is_digit);
      bool is_float = false;
      if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
        ++p;
        digits(is_digit);
        is_float = true;
      }
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (q < src_.size() && is_digit(src_[q])) {
          p = q;
          digits(is_digit);
          is_float = true;
        }
      }
      std::string text;
      for (size_t k = pos_; k < p; ++k)
        if (src_[k] != '_') text += src_[k];
      out.push_back({is_float ? Tok::Float : Tok::Int, text, at});
      pos_ = p;
      continue;
    }
    if (is_name_start(c)) {
      size_t p = pos_;
      while (p < src_.size() && is_name_char(src_[p])) ++p;
      out.push_back({Tok::Name, src_.substr(pos_, p - pos_), at});
      pos_ = p;
      continue;
    }
    if (c == '\'' || c == '"') {
      // Python unicode-escape decoding of the literal body.
      std::string value;
      size_t p = pos_ + 1;
      while (true) {
        if (p >= src_.size()) fail(at, "unterminated string literal");
        char d = src_[p];
        if (d == c) break;
        if (d != '\\') {
          value += d;
          ++p;
          continue;
        }
        if (p + 1 >= src_.size()) fail(at, "unterminated string literal");
        char e = src_[p + 1];
        p += 2;
        switch (e) {
          case '\n': break;  // line continuation
          case '\\': value += '\\'; break;
          case '\'': value += '\''; break;
          case '"': value += '"'; break;
          case 'a': value += '\a'; break;
          case 'b': value += '\b'; break;
          case 'f': value += '\f'; break;
          case 'n': value += '\n'; break;
          case 'r': value += '\r'; break;
          case 't': value += '\t'; break;
          case 'v': value += '\v'; break;
          case 'x':
          case 'u':
          case 'U': {
            int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            char32_t cp = 0;
            for (int k = 0; k < n; ++k) {
              int h = p + k < src_.size() ? hex_value(src_[p + k]) : -1;
              if (h < 0) fail(at, std::string("truncated \\") + e + " escape in string literal");
              cp = cp * 16 + static_cast<char32_t>(h);
            }
            p += n;
            // A surrogate pair written as two \u escapes becomes one code point.
            if (cp >= 0xD800 && cp < 0xDC00 && src_.compare(p, 2, "\\u") == 0 && p + 6 <= src_.size()) {
              char32_t lo = 0;
              bool ok = true;
              for (int k = 0; k < 4; ++k) {
                int h = hex_value(src_[p + 2 + k]);
                if (h < 0) ok = false;
                lo = lo * 16 + static_cast<char32_t>(h < 0 ? 0 : h);
              }
              if (ok && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
              }
            }
            utf8::append(value, cp);
            break;
          }
          default:
            if (e >= '0' && e <= '7') {  // octal, up to three digits
              int v = e - '0';
              for (int k = 0; k < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++k)
                v = v * 8 + (src_[p++] - '0');
              utf8::append(value, static_cast<char32_t>(v));
            } else {  // unknown escapes stay as written
              value += '\\';
              value += e;
            }
        }
      }
      out.push_back({Tok::String, std::move(value), at});
      pos_ = p + 1;
      continue;
    }
    static const char* const kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    bool matched = false;
    for (const char* op : kOps2) {
      if (src_.compare(pos_, 2, op) == 0) {
        out.push_back({Tok::Op, op, at});
        pos_ += 2;
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (std::strchr("+-/*%~[](){}.,:|=<>;", c)) {
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) fail(at, std::string("unexpected '") + c + "'");
        --depth;
      }
      out.push_back({Tok::Op, std::string(1, c), at});
      ++pos_;
      continue;
    }
    size_t i = pos_;
    char32_t cp = utf8::decode(src_, i);
    std::string ch;
    utf8::append(ch, cp);
    fail(at, "unexpected character '" + ch + "'");
  }
}

}  // namespace tllm::jinja
