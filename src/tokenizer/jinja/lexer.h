// Splits a template into text and tag tokens with jinja2's whitespace rules as transformers
// configures them: trim_blocks (drop the first newline after a block or comment tag),
// lstrip_blocks (drop spaces/tabs before a block or comment tag that starts a line), the
// `-` markers that strip all whitespace on that side, `+` markers that disable either rule,
// raw blocks, newline normalization and dropping one trailing newline (keep_trailing_newline=False).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tllm::jinja {

enum class Tok : uint8_t {
  Text,        // literal template text (already whitespace-processed)
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // value is the decoded string
  Int,
  Float,
  Op,          // value is the operator text: + - * / // % ** ~ ( ) [ ] { } . , : | = == != < <= > >=
  End,
};

struct Token {
  Tok type;
  std::string value;
  uint32_t offset;  // byte offset in the normalized source, for line:column
};

struct SourcePos {
  int line;
  int column;
};

class Lexer {
 public:
  explicit Lexer(std::string source);
  std::vector<Token> tokenize();
  const std::string& source() const { return src_; }
  SourcePos position(uint32_t offset) const;

 private:
  void lex_tag(bool is_block, std::vector<Token>& out);
  [[noreturn]] void fail(uint32_t offset, const std::string& msg) const;

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;
};

// Turns a byte offset into 1-based line:column of `source`.
SourcePos source_position(const std::string& source, uint32_t offset);

}  // namespace tllm::jinja
