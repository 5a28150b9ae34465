#include "tokenizer/jinja/template.h"

#include <limits>
#include <new>
#include <stdexcept>

#include "core/error.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"

namespace tllm::jinja {

Template::Template(std::string source) {
  try {
    body_ = parse_template(source, &source_);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // Only a bug or memory running out gets here; still a tllm::Error naming the template.
    throw Error(std::string("template syntax error: ") +
                (dynamic_cast<const std::bad_alloc*>(&e) ? "out of memory while parsing" : e.what()));
  }
}

std::string Template::render(const Value& context, const RenderOptions& opts) const {
  if (!context.is_dict()) throw InvalidArgument("template context must be a dict of variables");
  auto globals = std::make_shared<Scope>();
  install_globals(*globals, opts);
  auto top = std::make_shared<Scope>(globals);
  for (const auto& [k, v] : context.dict_ref().entries) {
    if (!k.is_string()) throw InvalidArgument("template context keys must be strings, got " + k.repr());
    top->set(k.as_string(), v);
  }
  Interpreter interp(source_, opts);
  try {
    return interp.render(body_, top);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // The interpreter turns exceptions into "template error at L:C" where a statement or
    // expression is running; anything else (std::out_of_range, std::bad_alloc from a bug or
    // memory running out) must still reach the caller as a tllm::Error, not as a bare "stoll"
    // that the server would answer with a 500.
    throw Error(std::string("template error: ") +
                (dynamic_cast<const std::bad_alloc*>(&e) ? "out of memory while rendering" : e.what()));
  }
}

namespace {

// Request JSON (messages, tools, chat_template_kwargs) reaches templates through here; a
// client can nest it arbitrarily deep, and converting it by recursion overflowed the stack
// at ~20,000 levels (a remote crash of the server). Templates never need more than a few.
constexpr int kMaxJsonDepth = 256;

Value from_json_at(const nlohmann::ordered_json& j, int depth) {
  using T = nlohmann::ordered_json::value_t;
  if (depth > kMaxJsonDepth && (j.is_array() || j.is_object()))
    throw InvalidArgument("template input is nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  switch (j.type()) {
    case T::null: return Value::none();
    case T::boolean: return Value(j.get<bool>());
    case T::number_integer: return Value(j.get<int64_t>());
    case T::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw InvalidArgument("integer " + std::to_string(u) + " is too large for a template value (max 2^63-1)");
      return Value(static_cast<int64_t>(u));
    }
    case T::number_float: return Value(j.get<double>());
    case T::string: return Value(j.get<std::string>());
    case T::array: {
      List items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json_at(x, depth + 1));
      return Value::list(std::move(items));
    }
    case T::object: {
      auto d = std::make_shared<Dict>();
      d->entries.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it)
        d->entries.emplace_back(Value(it.key()), from_json_at(it.value(), depth + 1));
      return Value::dict(d);
    }
    default: throw InvalidArgument(std::string("unsupported JSON value of type ") + j.type_name() + " in template input");
  }
}

}  // namespace

Value from_json(const nlohmann::ordered_json& j) { return from_json_at(j, 1); }

}  // namespace tllm::jinja
