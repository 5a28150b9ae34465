// Tree-walking evaluator for a parsed template. Internal to the jinja folder: use template.h.
//
// Scoping follows jinja2: each for-loop iteration, macro call and {% with %} gets its own scope
// (so {% set %} inside a loop does not leak out, which is why templates use namespace()), while
// {% if %} does not. Runtime errors become tllm::Error "template error at L:C: ..." naming the
// innermost expression; raise_exception() throws tllm::InvalidArgument with its message as is.
#pragma once

#include <memory>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace tllm::jinja {

// Thrown by value operations and builtins; the interpreter adds the line:column.
class TemplateFault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every string or list a render builds, and the rendered output itself, is capped at 256 MiB
// (lists at 256 MiB of Values), so a template cannot run the host out of memory or spin for
// minutes filling a buffer; the same cap as `*` repetition. Prompts are far smaller.
constexpr uint64_t kMaxResultBytes = uint64_t{1} << 28;
// Throws "<what> result is too large" when `bytes` (or `items` Values) exceed the cap.
void check_string_size(uint64_t bytes, const char* what);
void check_list_size(uint64_t items, const char* what);

// Values nest through lists, dicts and namespaces; repr, ==, <, and tojson recurse through them.
// Deeper values (only a template loop can build them: JSON input stops at 256) are an error, as
// Python's RecursionError, instead of a stack overflow.
constexpr int kMaxValueDepth = 1000;

struct RenderOptions {
  // "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS" pins strftime_now(); when unset, the environment
  // variable TLLM_FIXED_DATE does, else the local clock is used.
  std::optional<std::string> fixed_now;
};

struct Scope {
  explicit Scope(std::shared_ptr<Scope> p = nullptr) : parent(std::move(p)) {}
  const Value* lookup(const std::string& name) const;
  void set(const std::string& name, Value v) { vars[name] = std::move(v); }

  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
 public:
  Interpreter(const std::string& source, const RenderOptions& opts) : source_(source), opts_(opts) {}

  std::string render(const Body& body, ScopePtr globals);

  // Used by builtins (filters, tests, methods, globals).
  Value call(const Value& callee, Args& args);
  Value apply_filter(const std::string& name, const Value& input, Args& args);
  bool apply_test(const std::string& name, const Value& input, Args& args);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  const RenderOptions& options() const { return opts_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const ScopePtr& scope);
  Flow exec(const Stmt& s, const ScopePtr& scope);
  void exec_for(const ForStmt& s, const ScopePtr& scope);
  void assign(const Target& t, Value v, const ScopePtr& scope, uint32_t offset);
  Value make_macro(const std::vector<MacroParam>* params, const Body* body, const std::string& name,
                   bool catch_varargs, const ScopePtr& closure);
  std::string capture(const Body& body, const ScopePtr& scope);

  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Args eval_args(const CallArgs& a, const ScopePtr& scope);
  Value binary(const std::string& op, const Value& l, const Value& r);
  bool compare(const std::string& op, const Value& l, const Value& r);

  [[noreturn]] void fail(uint32_t offset, const std::string& msg) const;

  const std::string& source_;
  const RenderOptions& opts_;
  std::string* out_ = nullptr;
  void emit(std::string_view text);  // appends to *out_, within kMaxResultBytes for the render
  uint64_t emitted_ = 0;

  int loop_depth_ = 0;
  int call_depth_ = 0;  // macro recursion, bounded like Python's recursion limit
  // Nesting of eval/exec frames across macro calls. The parser bounds one template's nesting at
  // 500, but macro recursion (200 deep) multiplies it; this one budget keeps the whole render's
  // stack well inside the 8 MiB of a server worker thread. See kMaxRenderDepth.
  int render_depth_ = 0;
  struct DepthScope;
  std::vector<ScopePtr> closures_;  // scopes that define macros, alive until the render ends
};

// Python-style errors for misuse of Undefined (jinja2's UndefinedError).
[[noreturn]] void throw_undefined(const Value& v);
// Python's str % args (printf-style: %s %r %d %i %f %e %g %x %o %c %%), used by `%` and |format.
std::string percent_format(const std::string& fmt, const Value& args);
// Python sequence iteration: list/tuple items, dict keys, string characters; Undefined -> empty.
List iterate(const Value& v);

}  // namespace tllm::jinja
