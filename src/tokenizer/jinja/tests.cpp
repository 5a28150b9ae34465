// jinja2 3.1's builtin tests (`x is defined`, `x is divisibleby 3`, ...).
#include <unordered_map>

#include "tokenizer/jinja/builtins.h"

namespace tllm::jinja {

namespace {

const Value& one_arg(Args& args, const char* name) {
  if (args.pos.size() != 1 || !args.kw.empty())
    throw TemplateFault(std::string("test '") + name + "' takes exactly one argument");
  return args.pos[0];
}

void no_arg(Args& args, const char* name) {
  if (!args.pos.empty() || !args.kw.empty()) throw TemplateFault(std::string("test '") + name + "' takes no arguments");
}

int64_t int_for_parity(const Value& v, const char* name) {
  if (v.is_int()) return v.as_int();
  if (v.is_bool()) return v.as_bool();
  throw TemplateFault(std::string("test '") + name + "' needs an integer, got '" + v.type_name() + "'");
}

bool identical(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::List:
    case Kind::Tuple: return a.list_ptr() == b.list_ptr();
    case Kind::Dict:
    case Kind::Namespace: return a.dict_ptr() == b.dict_ptr();
    default: return py_equal(a, b);
  }
}


const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> m = {
      {"defined", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "defined"); return !v.is_undefined(); }},
      {"undefined", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "undefined"); return v.is_undefined(); }},
      {"none", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "none"); return v.is_none(); }},
      {"boolean", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "boolean"); return v.is_bool(); }},
      {"true", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "true"); return v.is_bool() && v.as_bool(); }},
      {"false", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "false"); return v.is_bool() && !v.as_bool(); }},
      {"integer", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "integer"); return v.is_int(); }},
      {"float", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "float"); return v.is_float(); }},
      {"number", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "number"); return v.is_number(); }},
      {"string", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "string"); return v.is_string(); }},
      {"mapping", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "mapping"); return v.is_dict(); }},
      // Python: anything with __len__ and __getitem__ (jinja2's Undefined has both).
      {"sequence", [](Interpreter&, const Value& v, Args& a) {
         no_arg(a, "sequence");
         return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
       }},
      {"iterable", [](Interpreter&, const Value& v, Args& a) {
         no_arg(a, "iterable");
         return v.is_string() || v.is_sequence() || v.is_dict() || v.is_undefined();
       }},
      {"callable", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "callable"); return v.is_callable(); }},
      {"escaped", [](Interpreter&, const Value&, Args& a) { no_arg(a, "escaped"); return false; }},
      {"odd", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "odd"); return (int_for_parity(v, "odd") & 1) != 0; }},
      {"even", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "even"); return (int_for_parity(v, "even") & 1) == 0; }},
      {"divisibleby", [](Interpreter&, const Value& v, Args& a) {
         const Value& n = one_arg(a, "divisibleby");
         int64_t d = int_for_parity(n, "divisibleby");
         if (d == 0) throw TemplateFault("integer division or modulo by zero");
         return int_for_parity(v, "divisibleby") % d == 0;
       }},
      {"lower", [](Interpreter& in, const Value& v, Args& a) {
         no_arg(a, "lower");
         Args none;
         return in.call(bound_method(Value(v.str()), "islower"), none).truthy();
       }},
      {"upper", [](Interpreter& in, const Value& v, Args& a) {
         no_arg(a, "upper");
         Args none;
         return in.call(bound_method(Value(v.str()), "isupper"), none).truthy();
       }},
      {"sameas", [](Interpreter&, const Value& v, Args& a) { return identical(v, one_arg(a, "sameas")); }},
      {"in", [](Interpreter&, const Value& v, Args& a) {
         const Value& seq = one_arg(a, "in");
         if (seq.is_string()) {
           if (!v.is_string()) throw TemplateFault("'in <string>' requires string as left operand");
           return seq.as_string().find(v.as_string()) != std::string::npos;
         }
         if (seq.is_dict()) return seq.dict_ref().find(v) != nullptr;
         for (const auto& x : iterate(seq))
           if (py_equal(x, v)) return true;
         return false;
       }},
      {"eq", [](Interpreter&, const Value& v, Args& a) { return py_equal(v, one_arg(a, "eq")); }},
      {"equalto", [](Interpreter&, const Value& v, Args& a) { return py_equal(v, one_arg(a, "equalto")); }},
      {"==", [](Interpreter&, const Value& v, Args& a) { return py_equal(v, one_arg(a, "==")); }},
      {"ne", [](Interpreter&, const Value& v, Args& a) { return !py_equal(v, one_arg(a, "ne")); }},
      {"!=", [](Interpreter&, const Value& v, Args& a) { return !py_equal(v, one_arg(a, "!=")); }},
      {"lt", [](Interpreter&, const Value& v, Args& a) { return py_less(v, one_arg(a, "lt")); }},
      {"lessthan", [](Interpreter&, const Value& v, Args& a) { return py_less(v, one_arg(a, "lessthan")); }},
      {"<", [](Interpreter&, const Value& v, Args& a) { return py_less(v, one_arg(a, "<")); }},
      {"le", [](Interpreter&, const Value& v, Args& a) { const Value& o = one_arg(a, "le"); return py_less(v, o) || py_equal(v, o); }},
      {"<=", [](Interpreter&, const Value& v, Args& a) { const Value& o = one_arg(a, "<="); return py_less(v, o) || py_equal(v, o); }},
      {"gt", [](Interpreter&, const Value& v, Args& a) { return py_less(one_arg(a, "gt"), v); }},
      {"greaterthan", [](Interpreter&, const Value& v, Args& a) { return py_less(one_arg(a, "greaterthan"), v); }},
      {">", [](Interpreter&, const Value& v, Args& a) { return py_less(one_arg(a, ">"), v); }},
      {"ge", [](Interpreter&, const Value& v, Args& a) { const Value& o = one_arg(a, "ge"); return py_less(o, v) || py_equal(v, o); }},
      {">=", [](Interpreter&, const Value& v, Args& a) { const Value& o = one_arg(a, ">="); return py_less(o, v) || py_equal(v, o); }},
      {"filter", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "filter"); return v.is_string() && find_filter(v.as_string()) != nullptr; }},
      {"test", [](Interpreter&, const Value& v, Args& a) { no_arg(a, "test"); return v.is_string() && find_test(v.as_string()) != nullptr; }},
  };
  return m;
}

}  // namespace

TestFn find_test(const std::string& name) {
  auto it = tests().find(name);
  return it == tests().end() ? nullptr : it->second;
}

}  // namespace tllm::jinja
