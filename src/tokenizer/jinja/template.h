// A Jinja template compiled once and rendered many times, with the semantics transformers'
// apply_chat_template uses: jinja2 in a sandbox with trim_blocks=True, lstrip_blocks=True, the
// loopcontrols extension ({% break %}, {% continue %}), {% generation %} blocks, a tojson that
// matches json.dumps(ensure_ascii=False), and the raise_exception/strftime_now globals.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/value.h"

namespace tllm::jinja {

class Template {
 public:
  // Throws tllm::Error "template syntax error at L:C: ..." on bad syntax.
  explicit Template(std::string source);

  // `context` is a dict of variables (keys are names). Throws tllm::Error "template error at
  // L:C: ..." on runtime errors, tllm::InvalidArgument with its message for raise_exception().
  std::string render(const Value& context, const RenderOptions& opts = {}) const;

 private:
  std::string source_;  // normalized (newlines), for line:column
  Body body_;
};

// JSON -> interpreter value: objects keep key order, integers stay ints, floats stay floats.
Value from_json(const nlohmann::ordered_json& j);

}  // namespace tllm::jinja
