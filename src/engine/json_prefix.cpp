#include "engine/json_prefix.h"

#include "tokenizer/unicode.h"

namespace tllm {
namespace {

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool JsonPrefix::feed(unsigned char c) {
  const JsonPrefix before = *this;
  if (step(c)) return true;
  *this = before;
  return false;
}

bool JsonPrefix::feed(std::string_view s) {
  for (char c : s)
    if (!step(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string JsonPrefix::key() const {
  std::string k;
  k.reserve(stack_.size() + 16);
  k.push_back(static_cast<char>(st_));
  k.push_back(static_cast<char>(key_ | low_ << 1 | high_ << 2));
  k.push_back(static_cast<char>(hex_));
  k.push_back(static_cast<char>(hex_first_));
  k.push_back(static_cast<char>(cont_));
  k.push_back(static_cast<char>(lo_));
  k.push_back(static_cast<char>(hi_));
  k.push_back(lit_ ? lit_[0] : '-');
  k.push_back(static_cast<char>(pos_));
  k.push_back(static_cast<char>(ws_));
  k += stack_;
  return k;
}

bool JsonPrefix::push(char closer) {
  if (static_cast<int>(stack_.size()) >= kMaxDepth) return false;
  stack_.push_back(closer);
  return true;
}

void JsonPrefix::end_value() { st_ = stack_.empty() ? St::Done : St::AfterValue; }

bool JsonPrefix::begin_value(unsigned char c) {
  switch (c) {
    case '{':
      if (!push('}')) return false;
      st_ = St::ObjFirst;
      return true;
    case '[':
      if (!push(']')) return false;
      st_ = St::ArrFirst;
      return true;
    case '"':
      key_ = false;
      st_ = St::Str;
      return true;
    case '-':
      st_ = St::NumMinus;
      return true;
    case '0':
      st_ = St::NumZero;
      return true;
    case 't':
    case 'f':
    case 'n':
      lit_ = c == 't' ? "true" : c == 'f' ? "false" : "null";
      pos_ = 1;
      st_ = St::Lit;
      return true;
    default:
      if (c >= '1' && c <= '9') {
        st_ = St::NumInt;
        return true;
      }
      return false;
  }
}

// A number ends at the first byte that cannot continue it; that byte then follows the value.
bool JsonPrefix::after_value(unsigned char c) {
  end_value();
  return step(c);
}

bool JsonPrefix::step(unsigned char c) {
  switch (st_) {
    case St::ObjFirst:
    case St::ObjKey:
    case St::Colon:
    case St::Value:
    case St::ArrFirst:
    case St::AfterValue:
      if (is_ws(c)) {
        if (ws_ >= kMaxWhitespace) return false;
        ++ws_;
        return true;
      }
      ws_ = 0;
      break;
    default:
      break;
  }
  switch (st_) {
    case St::TopStart:
      if (c != '{' || !push('}')) return false;
      st_ = St::ObjFirst;
      return true;
    case St::ObjFirst:
    case St::ObjKey:
      if (c == '"') {
        key_ = true;
        st_ = St::Str;
        return true;
      }
      if (st_ == St::ObjFirst && c == '}') {
        stack_.pop_back();
        end_value();
        return true;
      }
      return false;
    case St::Colon:
      if (c != ':') return false;
      st_ = St::Value;
      return true;
    case St::ArrFirst:
      if (c == ']') {
        stack_.pop_back();
        end_value();
        return true;
      }
      return begin_value(c);
    case St::Value:
      return begin_value(c);
    case St::AfterValue:
      if (c == ',') {
        st_ = stack_.back() == '}' ? St::ObjKey : St::Value;
        return true;
      }
      if (c != static_cast<unsigned char>(stack_.back())) return false;
      stack_.pop_back();
      end_value();
      return true;
    case St::Done:
      return false;
    case St::Str:
      if (c == '"') {
        if (key_) {
          st_ = St::Colon;
        } else {
          end_value();
        }
        return true;
      }
      if (c == '\\') {
        st_ = St::StrEsc;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c < 0x80) return true;
      {
        tok::Utf8Lead lead;
        if (!tok::utf8_lead(c, lead)) return false;
        cont_ = static_cast<uint8_t>(lead.continuation);
        lo_ = lead.lo;
        hi_ = lead.hi;
      }
      st_ = St::Utf8;
      return true;
    case St::Utf8:
      if (c < lo_ || c > hi_) return false;
      lo_ = 0x80;
      hi_ = 0xBF;
      if (--cont_ == 0) st_ = St::Str;
      return true;
    case St::StrEsc:
      if (c == 'u') {
        hex_ = 0;
        low_ = false;
        st_ = St::StrHex;
        return true;
      }
      if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't') return false;
      st_ = St::Str;
      return true;
    case St::LowBs:
      if (c != '\\') return false;
      st_ = St::LowU;
      return true;
    case St::LowU:
      if (c != 'u') return false;
      hex_ = 0;
      low_ = true;
      st_ = St::StrHex;
      return true;
    case St::StrHex: {
      const int v = hex_value(c);
      if (v < 0) return false;
      if (hex_ == 0) {
        if (low_ && v != 0xD) return false;  // the escape after a high surrogate: DC00-DFFF
        hex_first_ = static_cast<uint8_t>(v);
      } else if (hex_ == 1) {
        const bool surrogate = hex_first_ == 0xD && v >= 0x8;
        if (low_ && v < 0xC) return false;
        if (!low_ && surrogate && v >= 0xC) return false;  // a low surrogate without its high one
        high_ = !low_ && surrogate;
      }
      if (++hex_ == 4) {
        st_ = high_ ? St::LowBs : St::Str;
        high_ = false;
        low_ = false;
      }
      return true;
    }
    case St::NumMinus:
      if (c == '0') {
        st_ = St::NumZero;
        return true;
      }
      if (c >= '1' && c <= '9') {
        st_ = St::NumInt;
        return true;
      }
      return false;
    case St::NumZero:
    case St::NumInt:
      if (st_ == St::NumInt && is_digit(c)) return true;
      if (c == '.') {
        st_ = St::NumDot;
        return true;
      }
      if (c == 'e' || c == 'E') {
        st_ = St::NumE;
        return true;
      }
      return after_value(c);
    case St::NumDot:
      if (!is_digit(c)) return false;
      st_ = St::NumFrac;
      return true;
    case St::NumFrac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') {
        st_ = St::NumE;
        return true;
      }
      return after_value(c);
    case St::NumE:
      if (c == '+' || c == '-') {
        st_ = St::NumESign;
        return true;
      }
      if (!is_digit(c)) return false;
      st_ = St::NumExp;
      return true;
    case St::NumESign:
      if (!is_digit(c)) return false;
      st_ = St::NumExp;
      return true;
    case St::NumExp:
      if (is_digit(c)) return true;
      return after_value(c);
    case St::Lit:
      if (c != static_cast<unsigned char>(lit_[pos_])) return false;
      if (lit_[++pos_] == '\0') end_value();
      return true;
  }
  return false;
}

}  // namespace tllm
