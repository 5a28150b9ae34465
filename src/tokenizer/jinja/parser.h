// Recursive-descent parser from tokens to the syntax tree, following jinja2's grammar and
// operator precedence (note: ** is left-associative in jinja2, unlike Python).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace tllm::jinja {

// Parses a whole template; throws tllm::Error "template syntax error at L:C: ..." on bad input.
Body parse_template(const std::string& source, std::string* normalized_source);

}  // namespace tllm::jinja
