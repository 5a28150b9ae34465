// JSON mode (response_format {"type": "json_object"}): a byte-level recognizer of the prefixes
// of JSON texts (RFC 8259) whose top-level value is an object, as OpenAI's JSON mode produces.
// feed() takes the output's bytes one at a time and refuses (returning false, state unchanged)
// a byte after which no completion to such a text exists; complete() says the object is closed.
// Strings are checked as JSON and as UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
// U+10FFFF; \u escapes pair their surrogates), numbers as JSON's grammar.
//
// Limits keep generation from wandering, all stricter than JSON itself: no whitespace before the
// object or after it (the sequence can only end there), at most kMaxWhitespace whitespace bytes
// in a row between tokens (room for a newline and indentation; a model in JSON mode can
// otherwise emit whitespace forever, as OpenAI's documentation warns), at most kMaxDepth nested
// containers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tllm {

class JsonPrefix {
 public:
  static constexpr int kMaxDepth = 32;
  static constexpr int kMaxWhitespace = 20;

  // False, leaving the state as it was, when c cannot come next.
  bool feed(unsigned char c);
  // Feeds s; false (state unspecified) at the first byte refused.
  bool feed(std::string_view s);
  // The top-level object is closed (nothing may follow).
  bool complete() const { return st_ == St::Done; }
  // Equal keys: equal states (every later byte is taken or refused alike).
  std::string key() const;
  // Inside a string, between characters: any run of whole UTF-8 characters without '"', '\\'
  // or control bytes is taken and leaves the state as it is.
  bool in_plain_string() const { return st_ == St::Str; }

 private:
  enum class St : uint8_t {
    TopStart,    // before the top-level object: '{'
    ObjFirst,    // after '{': whitespace, '"' (a key) or '}'
    ObjKey,      // after ',' in an object: whitespace or '"'
    Colon,       // after a key: whitespace or ':'
    Value,       // after ':' or ',' in an array: whitespace or a value
    ArrFirst,    // after '[': whitespace, a value or ']'
    AfterValue,  // after a value in a container: whitespace, ',' or its closer
    Done,        // the top-level object closed: nothing may follow
    Str,         // in a string
    StrEsc,      // after '\'
    StrHex,      // in \uXXXX (hex_ digits read)
    LowBs,       // after a high surrogate escape: '\' must follow
    LowU,        // then 'u'
    Utf8,        // in a multi-byte character (cont_ bytes to go, the next one in [lo_, hi_])
    NumMinus,    // '-'
    NumZero,     // an integer part "0"
    NumInt,      // an integer part [1-9][0-9]*
    NumDot,      // '.'
    NumFrac,     // fraction digits
    NumE,        // 'e' / 'E'
    NumESign,    // exponent sign
    NumExp,      // exponent digits
    Lit,         // in true / false / null (lit_ is the word, pos_ the bytes read)
  };

  bool step(unsigned char c);
  bool begin_value(unsigned char c);
  bool after_value(unsigned char c);
  void end_value();
  bool push(char closer);

  St st_ = St::TopStart;
  std::string stack_;        // the open containers' closers, '}' or ']'
  bool key_ = false;         // the string being read is an object key
  bool low_ = false;         // the \u escape being read must be a low surrogate
  bool high_ = false;        // the \u escape being read is a high surrogate
  uint8_t hex_ = 0;          // hex digits read of the \u escape
  uint8_t hex_first_ = 0;    // its first digit's value (surrogate checks)
  uint8_t cont_ = 0;         // UTF-8 continuation bytes still to come
  uint8_t lo_ = 0x80, hi_ = 0xBF;
  const char* lit_ = nullptr;
  uint8_t pos_ = 0;
  int ws_ = 0;               // whitespace bytes in a row
};

}  // namespace tllm
