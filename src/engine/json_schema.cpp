#include "engine/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/json_prefix.h"
#include "engine/regex.h"

namespace tllm {

using nlohmann::json;

namespace {

// Keywords that constrain values in ways the recognizer does not enforce: refused, never ignored.
const std::set<std::string>& refused_keywords() {
  static const std::set<std::string> k = {
      "patternProperties", "propertyNames", "multipleOf", "minProperties", "maxProperties",
      "uniqueItems", "contains",
      "minContains", "maxContains", "dependentRequired", "dependentSchemas", "dependencies", "if",
      "then", "else", "not", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef",
      "contentSchema"};
  return k;
}

// Keywords that make a schema more than a reference or a union (beside $ref / anyOf / allOf).
bool constrains(const std::string& key) {
  static const std::set<std::string> k = {
      "type", "enum", "const", "properties", "required", "additionalProperties", "propertyOrdering", "items",
      "prefixItems", "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "anyOf", "oneOf",
      "allOf", "$ref", "nullable"};
  return k.count(key) > 0;
}

void add_first(JsonSchema::Node& n, unsigned char c) { n.first[c >> 6] |= uint64_t{1} << (c & 63); }

const char* const kBounds[] = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};

bool has_bounds(const json& s) {
  for (const char* k : kBounds)
    if (s.contains(k)) return true;
  return false;
}

// The first (lower) or last admitted integer of an integer bound, exactly: whole numbers as
// the request wrote them (read through a double, 9007199254740993 would become ...992), a
// decimal rounded toward the inside. A decimal above 2^53 has lost its units, and a bound
// whose inside lies beyond int64 cannot be met by the int64 range the recognizer bounds:
// both refused, as clamping them produced integers that break the bound.
__int128 integer_end(const json& v, bool lower, bool exclusive, const std::string& path, const char* key) {
  const auto outside = [&] {
    TLLM_CHECK_ARG(false, path, ": '", key, "' ", v.dump(),
                   " is outside the integers this engine can bound (whole numbers within 64 bits, decimals up to "
                   "2^53)");
  };
  __int128 x;
  if (v.is_number_unsigned()) {
    x = v.get<uint64_t>();
    if (exclusive) x += lower ? 1 : -1;
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
    if (exclusive) x += lower ? 1 : -1;
  } else {
    const double d = v.get<double>();
    if (!(std::fabs(d) <= 9007199254740992.0)) outside();
    const double e = lower ? (exclusive ? std::floor(d) + 1 : std::ceil(d))
                           : (exclusive ? std::ceil(d) - 1 : std::floor(d));
    x = static_cast<__int128>(e);
  }
  if (lower ? x > std::numeric_limits<int64_t>::max() : x < std::numeric_limits<int64_t>::min()) outside();
  return x;
}

// A string schema's "pattern" as an automaton over the whole string: JSON Schema searches the
// pattern (ECMA-262), so an end without its anchor (^ at the start, $ at the end) matches any
// text there.
std::shared_ptr<const Regex> pattern_of(const json& s, const std::string& path) {
  const json& p = s["pattern"];
  TLLM_CHECK_ARG(p.is_string(), path, ": 'pattern' must be a string");
  TLLM_CHECK_ARG(!s.contains("minLength") && !s.contains("maxLength"), path,
                 ": 'pattern' together with 'minLength' / 'maxLength' is not supported (put the length in the pattern, "
                 "e.g. {2,8})");
  std::string body = p.get<std::string>();
  const bool head = !body.empty() && body[0] == '^';
  size_t slashes = 0;  // backslashes before a final '$': an even number leaves it an anchor
  for (size_t i = body.size() >= 2 ? body.size() - 1 : 0; i-- > 0 && body[i] == '\\';) ++slashes;
  const bool tail = body.size() > (head ? 1u : 0u) && body.back() == '$' && slashes % 2 == 0;
  if (head) body.erase(0, 1);
  if (tail) body.pop_back();
  if (head || tail) {  // ^a|b$ anchors each branch on one side only: not what stripping them gives
    int depth = 0;
    bool in_class = false;
    for (size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      if (c == '\\') ++i;
      else if (in_class) in_class = c != ']';
      else if (c == '[') {
        in_class = true;
        if (i + 1 < body.size() && body[i + 1] == '^') ++i;
        if (i + 1 < body.size() && body[i + 1] == ']') ++i;  // a leading ']' is a member
      } else if (c == '(') ++depth;
      else if (c == ')') --depth;
      else if (c == '|' && depth == 0)
        TLLM_CHECK_ARG(false, path, ": 'pattern' anchors a top-level alternation with ^ / $ (only its first or last "
                       "branch would be anchored): group it, as ^(a|b)$");
    }
  }
  const std::string any = "[\\s\\S]*";
  try {
    Regex::compile(body);  // its errors' offsets are the pattern's (after a leading ^)
    return Regex::compile((head ? "" : any) + "(?:" + body + ")" + (tail ? "" : any));
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(path + ": 'pattern': " + e.what());
  }
}

// A schema's bound keywords, read once: inclusive and exclusive limits (draft 4's boolean
// exclusiveMinimum / exclusiveMaximum turn minimum / maximum exclusive).
struct NumberBounds {
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;
  // The same as written, for integers(): which key, and whether a draft 4 flag made it exclusive.
  struct Raw {
    const json* value = nullptr;
    const char* key = "";
    bool exclusive = false;
  };
  Raw lows[2], highs[2];

  NumberBounds(const json& s, const std::string& path) {
    const auto number = [&](const char* key) -> std::optional<double> {
      auto it = s.find(key);
      if (it == s.end() || it->is_boolean()) return std::nullopt;
      TLLM_CHECK_ARG(it->is_number(), path, ".", key, " must be a number, got ", it->dump());
      return it->get<double>();
    };
    const auto flag = [&](const char* key) { return s.contains(key) && s[key].is_boolean() && s[key].get<bool>(); };
    minimum = number("minimum");
    maximum = number("maximum");
    exclusive_minimum = number("exclusiveMinimum");
    exclusive_maximum = number("exclusiveMaximum");
    if (minimum && flag("exclusiveMinimum")) exclusive_minimum = std::max(*minimum, exclusive_minimum.value_or(*minimum));
    if (maximum && flag("exclusiveMaximum")) exclusive_maximum = std::min(*maximum, exclusive_maximum.value_or(*maximum));
    if (flag("exclusiveMinimum")) minimum.reset();
    if (flag("exclusiveMaximum")) maximum.reset();
    const auto raw = [&](const char* key, bool exclusive) {
      auto it = s.find(key);
      return it == s.end() || it->is_boolean() ? Raw{} : Raw{&*it, key, exclusive};
    };
    lows[0] = raw("minimum", flag("exclusiveMinimum"));
    lows[1] = raw("exclusiveMinimum", true);
    highs[0] = raw("maximum", flag("exclusiveMaximum"));
    highs[1] = raw("exclusiveMaximum", true);
  }
  bool admits(double x) const {
    return !(minimum && x < *minimum) && !(maximum && x > *maximum) && !(exclusive_minimum && x <= *exclusive_minimum) &&
           !(exclusive_maximum && x >= *exclusive_maximum);
  }
  // The integers [lo, hi] admitted, from the bounds as written (integer_end() refuses those
  // it cannot take exactly).
  void integers(int64_t& lo, int64_t& hi, const std::string& path) const {
    __int128 l = std::numeric_limits<int64_t>::min(), h = std::numeric_limits<int64_t>::max();
    for (const Raw& r : lows)
      if (r.value) l = std::max(l, integer_end(*r.value, true, r.exclusive, path, r.key));
    for (const Raw& r : highs)
      if (r.value) h = std::min(h, integer_end(*r.value, false, r.exclusive, path, r.key));
    lo = static_cast<int64_t>(l);  // integer_end() keeps a lower end at most, an upper at least, int64's
    hi = static_cast<int64_t>(h);
  }
};

}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(const json& root, bool any_whitespace) : root_(root) { out_.any_whitespace_ = any_whitespace; }

  std::shared_ptr<const JsonSchema> run() {
    out_.root_ = compile(root_, "schema");
    finish();
    const JsonSchema::Node& r = out_.nodes_[static_cast<size_t>(out_.root_)];
    TLLM_CHECK_ARG(r.min_depth != JsonSchema::kNoFit, "schema: no JSON value satisfies this schema");
    TLLM_CHECK_ARG(r.min_depth <= JsonPrefix::kMaxDepth, "schema: every value it allows nests more than ",
                   JsonPrefix::kMaxDepth, " containers deep");
    out_.fingerprint_ = (out_.any_whitespace_ ? "ws:" : "compact:") + root_.dump();
    return std::make_shared<const JsonSchema>(std::move(out_));
  }

 private:
  using Kind = JsonSchema::Kind;
  using Node = JsonSchema::Node;

  int reserve() {
    out_.nodes_.emplace_back();
    return static_cast<int>(out_.nodes_.size()) - 1;
  }
  Node& at(int i) { return out_.nodes_[static_cast<size_t>(i)]; }

  // Any JSON value: one node per compile, shared.
  int any() {
    if (any_ >= 0) return any_;
    any_ = reserve();
    const int obj = reserve(), arr = reserve(), str = reserve(), num = reserve(), lit = reserve();
    at(obj).kind = Kind::Object;
    at(obj).additional = any_;
    at(arr).kind = Kind::Array;
    at(arr).items = any_;
    at(str).kind = Kind::String;
    at(num).kind = Kind::Number;
    at(lit).kind = Kind::Literals;
    at(lit).texts = {"false", "null", "true"};
    at(any_).alts = {obj, arr, str, num, lit};
    return any_;
  }

  int compile(const json& s, const std::string& path) {
    // Schemas nest by recursion here: a bound keeps a hostile request from the stack's end.
    struct Depth {
      int& d;
      explicit Depth(int& depth) : d(depth) { ++d; }
      ~Depth() { --d; }
    } depth(depth_);
    TLLM_CHECK_ARG(depth_ <= kMaxSchemaDepth, path, ": the schema nests more than ", kMaxSchemaDepth,
                   " schemas deep");
    TLLM_CHECK_ARG(out_.nodes_.size() < kMaxNodes, "schema: more than ", kMaxNodes, " schemas in one");
    if (s.is_boolean()) {
      if (s.get<bool>()) return any();
      return reserve();  // an AnyOf of nothing: no value
    }
    TLLM_CHECK_ARG(s.is_object(), path, " must be a schema object or a boolean, got ", s.type_name());
    for (auto it = s.begin(); it != s.end(); ++it)
      TLLM_CHECK_ARG(!refused_keywords().count(it.key()), path, ": '", it.key(),
                     "' is not supported by structured output here (supported: type, properties, required, "
                     "additionalProperties, items, prefixItems, minItems, maxItems, minLength, maxLength, "
                     "minimum / maximum on integers, enum, const, anyOf, oneOf, $ref)");
    if (auto r = s.find("$ref"); r != s.end()) {
      only(s, path, "$ref");
      return ref(*r, path);
    }
    if (auto a = s.find("allOf"); a != s.end()) {
      only(s, path, "allOf");
      TLLM_CHECK_ARG(a->is_array() && a->size() == 1, path,
                     ": 'allOf' is supported with one schema only (merging several is not)");
      return compile((*a)[0], path + ".allOf[0]");
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (auto a = s.find(key); a != s.end()) {
        only(s, path, key);
        TLLM_CHECK_ARG(a->is_array() && !a->empty(), path, ": '", key, "' must be a non-empty list of schemas");
        const int n = reserve();
        for (size_t i = 0; i < a->size(); ++i) {
          const int alt = compile((*a)[i], path + "." + key + "[" + std::to_string(i) + "]");
          at(n).alts.push_back(alt);
        }
        return n;
      }
    }
    const int n = reserve();
    compile_typed(n, s, path);
    return n;
  }

  // Beside $ref / allOf / anyOf / oneOf only annotations may stand.
  static void only(const json& s, const std::string& path, const char* key) {
    for (auto it = s.begin(); it != s.end(); ++it)
      TLLM_CHECK_ARG(it.key() == key || !constrains(it.key()), path, ": '", it.key(), "' beside '", key,
                     "' is not supported (put it inside)");
  }

  int ref(const json& r, const std::string& path) {
    TLLM_CHECK_ARG(r.is_string(), path, ".$ref must be a string");
    const std::string target = r.get<std::string>();
    if (auto it = refs_.find(target); it != refs_.end()) return it->second;
    const bool local = target == "#" || target.rfind("#/$defs/", 0) == 0 || target.rfind("#/definitions/", 0) == 0;
    TLLM_CHECK_ARG(local, path, ".$ref \"", target,
                   "\" is not supported (only \"#\", \"#/$defs/...\" and \"#/definitions/...\")");
    const json* t = &root_;
    if (target != "#") {
      json::json_pointer ptr;
      try {
        ptr = json::json_pointer(target.substr(1));
      } catch (const json::exception&) {
        TLLM_CHECK_ARG(false, path, ".$ref \"", target, "\" is not a valid JSON pointer");
      }
      TLLM_CHECK_ARG(root_.contains(ptr), path, ".$ref \"", target, "\" names no schema in this document");
      t = &root_.at(ptr);
    }
    // A placeholder first, so that the target may refer to itself; it becomes a one-way union.
    const int n = reserve();
    refs_[target] = n;
    const int body = compile(*t, target);
    at(n).alts = {body};
    return n;
  }

  void compile_typed(int n, const json& s, const std::string& path) {
    static const std::vector<std::string> kTypes = {"object", "array", "string", "number", "integer", "boolean", "null"};
    std::vector<std::string> types;
    if (auto t = s.find("type"); t != s.end()) {
      const auto add = [&](const json& v) {
        TLLM_CHECK_ARG(v.is_string() && std::count(kTypes.begin(), kTypes.end(), v.get<std::string>()), path,
                       ".type: ", v.dump(), " is not a JSON Schema type");
        if (!std::count(types.begin(), types.end(), v.get<std::string>())) types.push_back(v.get<std::string>());
      };
      if (t->is_array()) {
        TLLM_CHECK_ARG(!t->empty(), path, ".type must not be an empty list");
        for (const json& v : *t) add(v);
      } else {
        add(*t);
      }
    }
    if (auto nb = s.find("nullable"); nb != s.end() && nb->is_boolean() && nb->get<bool>() && !types.empty() &&
                                       !std::count(types.begin(), types.end(), "null"))
      types.push_back("null");

    const bool has_enum = s.contains("enum") || s.contains("const");
    if (has_enum) {
      literals(n, s, path, types);
      return;
    }
    if (types.empty()) {
      for (const char* k : kBounds)
        TLLM_CHECK_ARG(!s.contains(k), path, ": '", k, "' needs \"type\": \"integer\" (bounds are enforced on integers only)");
      // No type: the keywords say which one is meant; none says any value.
      const auto has = [&](std::initializer_list<const char*> keys) {
        for (const char* k : keys)
          if (s.contains(k)) return true;
        return false;
      };
      if (has({"properties", "required", "additionalProperties"})) types.push_back("object");
      if (has({"items", "prefixItems", "minItems", "maxItems", "additionalItems"})) types.push_back("array");
      if (has({"minLength", "maxLength", "pattern"})) types.push_back("string");
      if (types.empty()) {
        at(n).alts = {any()};
        return;
      }
    }
    if (types.size() == 1) {
      fill(n, types[0], s, path);
      return;
    }
    for (const std::string& t : types) {
      const int alt = reserve();
      fill(alt, t, s, path);
      at(n).alts.push_back(alt);
    }
  }

  void literals(int n, const json& s, const std::string& path, const std::vector<std::string>& types) {
    std::vector<json> values;
    if (auto c = s.find("const"); c != s.end()) values.push_back(*c);
    if (auto e = s.find("enum"); e != s.end()) {
      TLLM_CHECK_ARG(e->is_array() && !e->empty(), path, ".enum must be a non-empty list");
      if (values.empty()) {
        values.assign(e->begin(), e->end());
      } else {  // const and enum: the const, if the enum has it
        if (std::find(e->begin(), e->end(), values[0]) == e->end()) values.clear();
      }
    }
    const auto type_of = [](const json& v) -> std::string {
      if (v.is_object()) return "object";
      if (v.is_array()) return "array";
      if (v.is_string()) return "string";
      if (v.is_boolean()) return "boolean";
      if (v.is_null()) return "null";
      if (v.is_number_float()) return "number";
      return "integer";
    };
    // The keywords beside them drop the values that break them; those about what is inside an
    // array or object would need the values validated against subschemas: refused, never ignored.
    for (const char* k : {"properties", "additionalProperties", "items", "prefixItems", "additionalItems"})
      TLLM_CHECK_ARG(!s.contains(k), path, ": '", k,
                     "' beside 'enum' / 'const' is not supported (list only the values that satisfy it)");
    const NumberBounds bounds(s, path);
    const uint32_t min_length = count_of(s, "minLength", path, 0);
    const uint32_t max_length = count_of(s, "maxLength", path, JsonSchema::kUnbounded);
    const uint32_t min_items = count_of(s, "minItems", path, 0);
    const uint32_t max_items = count_of(s, "maxItems", path, JsonSchema::kUnbounded);
    const std::shared_ptr<const Regex> pattern = s.contains("pattern") ? pattern_of(s, path) : nullptr;
    const json* required = nullptr;
    if (auto r = s.find("required"); r != s.end()) {
      TLLM_CHECK_ARG(r->is_array(), path, ".required must be a list of property names");
      required = &*r;
    }
    const auto satisfies = [&](const json& v) {
      if (v.is_number()) return bounds.admits(v.get<double>());
      if (v.is_string()) {
        const std::string& text = v.get_ref<const std::string&>();
        uint32_t chars = 0;  // code points: UTF-8 lead bytes
        for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
        return chars >= min_length && chars <= max_length && (!pattern || pattern->full_match(text));
      }
      if (v.is_array()) return v.size() >= min_items && v.size() <= max_items;
      if (v.is_object() && required) {
        for (const json& k : *required)
          if (!k.is_string() || !v.contains(k.get<std::string>())) return false;
      }
      return true;
    };
    Node& node = at(n);
    node.kind = Kind::Literals;
    for (const json& v : values) {
      const std::string t = type_of(v);
      const bool typed = types.empty() || std::count(types.begin(), types.end(), t) ||
                         (t == "integer" && std::count(types.begin(), types.end(), "number"));
      if (typed && satisfies(v)) node.texts.push_back(v.dump());
    }
    std::sort(node.texts.begin(), node.texts.end());
    node.texts.erase(std::unique(node.texts.begin(), node.texts.end()), node.texts.end());
    TLLM_CHECK_ARG(!node.texts.empty(), path,
                   ": no value of 'enum' / 'const' satisfies the schema's other keywords (its type, bounds, lengths, "
                   "pattern, item counts, required properties)");
  }

  static uint32_t count_of(const json& s, const char* key, const std::string& path, uint32_t dflt) {
    auto it = s.find(key);
    if (it == s.end()) return dflt;
    TLLM_CHECK_ARG(it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0), path, ".",
                   key, " must be a non-negative integer, got ", it->dump());
    return static_cast<uint32_t>(std::min<uint64_t>(it->get<uint64_t>(), JsonSchema::kUnbounded - 1));
  }

  void fill(int n, const std::string& type, const json& s, const std::string& path) {
    if (type == "boolean" || type == "null") {
      at(n).kind = Kind::Literals;
      at(n).texts = type == "null" ? std::vector<std::string>{"null"} : std::vector<std::string>{"false", "true"};
    } else if (type == "number") {
      for (const char* k : kBounds)
        TLLM_CHECK_ARG(!s.contains(k), path, ": '", k,
                       "' is not supported on \"type\": \"number\" (bounds are enforced on integers only)");
      at(n).kind = Kind::Number;
    } else if (type == "integer") {
      at(n).kind = Kind::Integer;
      if (has_bounds(s)) {
        at(n).bounded = true;
        NumberBounds(s, path).integers(at(n).min_value, at(n).max_value, path);
      }
    } else if (type == "string") {
      at(n).kind = Kind::String;
      at(n).min_count = count_of(s, "minLength", path, 0);
      at(n).max_count = count_of(s, "maxLength", path, JsonSchema::kUnbounded);
      if (s.contains("pattern")) at(n).pattern = pattern_of(s, path);
    } else if (type == "array") {
      array(n, s, path);
    } else {
      object(n, s, path);
    }
  }

  void array(int n, const json& s, const std::string& path) {
    std::vector<int> prefix;
    int items = -2;  // -2: any
    const auto tuple = [&](const json& list, const std::string& key) {
      TLLM_CHECK_ARG(list.is_array(), path, ".", key, " must be a list of schemas");
      for (size_t i = 0; i < list.size(); ++i)
        prefix.push_back(compile(list[i], path + "." + key + "[" + std::to_string(i) + "]"));
    };
    if (auto p = s.find("prefixItems"); p != s.end()) tuple(*p, "prefixItems");
    if (auto it = s.find("items"); it != s.end()) {
      if (it->is_array()) {  // draft 4-7 tuples: items as a list, additionalItems after it
        TLLM_CHECK_ARG(!s.contains("prefixItems"), path, ": 'items' as a list beside 'prefixItems'");
        tuple(*it, "items");
        if (auto a = s.find("additionalItems"); a != s.end())
          items = a->is_boolean() && !a->get<bool>() ? -1 : compile(*a, path + ".additionalItems");
      } else {
        items = it->is_boolean() && !it->get<bool>() ? -1 : compile(*it, path + ".items");
      }
    }
    if (items == -2) items = any();
    const uint32_t lo = count_of(s, "minItems", path, 0), hi = count_of(s, "maxItems", path, JsonSchema::kUnbounded);
    Node& node = at(n);
    node.kind = Kind::Array;
    node.prefix = std::move(prefix);
    node.items = items;
    node.min_count = lo;
    node.max_count = hi;
    if (items < 0) node.max_count = std::min<uint32_t>(node.max_count, static_cast<uint32_t>(node.prefix.size()));
  }

  void object(int n, const json& s, const std::string& path) {
    std::map<std::string, int> props;  // name -> schema
    if (auto p = s.find("properties"); p != s.end()) {
      TLLM_CHECK_ARG(p->is_object(), path, ".properties must be an object");
      for (auto it = p->begin(); it != p->end(); ++it)
        props[it.key()] = compile(it.value(), path + ".properties." + it.key());
    }
    int additional = -1;
    if (auto a = s.find("additionalProperties"); a != s.end()) {
      if (!(a->is_boolean() && !a->get<bool>())) additional = compile(*a, path + ".additionalProperties");
    } else if (!s.contains("properties")) {
      additional = any();
    }
    std::set<std::string> required;
    if (auto r = s.find("required"); r != s.end()) {
      TLLM_CHECK_ARG(r->is_array(), path, ".required must be a list of property names");
      for (const json& name : *r) {
        TLLM_CHECK_ARG(name.is_string(), path, ".required must be a list of property names, found ", name.dump());
        const std::string k = name.get<std::string>();
        if (!props.count(k)) {
          TLLM_CHECK_ARG(additional >= 0, path, ": required property \"", k,
                         "\" is not in 'properties' and no other keys are allowed");
          props[k] = additional;
        }
        required.insert(k);
      }
    }
    TLLM_CHECK_ARG(static_cast<int>(props.size()) <= JsonSchema::kMaxProperties, path, " has ", props.size(),
                   " properties; structured output takes at most ", JsonSchema::kMaxProperties, " per object");
    std::vector<std::pair<std::string, int>> sorted;
    for (const auto& [name, value] : props) sorted.emplace_back(json(name).dump(), value);
    std::sort(sorted.begin(), sorted.end());
    // propertyOrdering (as Gemini's API): the declared properties in the order they must come.
    std::vector<uint64_t> before;
    if (auto o = s.find("propertyOrdering"); o != s.end()) {
      const std::string where = path + ".propertyOrdering";
      TLLM_CHECK_ARG(o->is_array() && o->size() == props.size(), where, " must list each of the ", props.size(),
                     " declared properties once");
      std::vector<size_t> rank_of_sorted(sorted.size(), sorted.size());
      for (size_t r = 0; r < o->size(); ++r) {
        const json& name = (*o)[r];
        TLLM_CHECK_ARG(name.is_string(), where, " must be a list of property names, found ", name.dump());
        const auto it = std::find_if(sorted.begin(), sorted.end(),
                                     [&](const auto& e) { return e.first == name.dump(); });
        TLLM_CHECK_ARG(it != sorted.end(), where, ": \"", name.get<std::string>(), "\" is not a declared property");
        size_t& rank = rank_of_sorted[static_cast<size_t>(it - sorted.begin())];
        TLLM_CHECK_ARG(rank == sorted.size(), where, " lists \"", name.get<std::string>(), "\" twice");
        rank = r;
      }
      for (size_t i = 0; i < sorted.size(); ++i) {
        uint64_t m = 0;
        for (size_t j = 0; j < sorted.size(); ++j)
          if (rank_of_sorted[j] < rank_of_sorted[i]) m |= uint64_t{1} << j;
        before.push_back(m);
      }
    }
    Node& node = at(n);
    node.kind = Kind::Object;
    node.additional = additional;
    node.before = std::move(before);
    for (size_t i = 0; i < sorted.size(); ++i) {
      node.keys.push_back(sorted[i].first);
      node.values.push_back(sorted[i].second);
      if (required.count(json::parse(sorted[i].first).get<std::string>())) node.required |= uint64_t{1} << i;
    }
  }

  // Unions flattened (no alternative is a union), then first bytes and depths.
  void finish() {
    std::vector<Node>& nodes = out_.nodes_;
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i].kind != Kind::AnyOf) continue;
      std::vector<int> flat, todo(nodes[i].alts.rbegin(), nodes[i].alts.rend());
      std::set<int> seen = {static_cast<int>(i)};
      while (!todo.empty()) {
        const int a = todo.back();
        todo.pop_back();
        if (!seen.insert(a).second) continue;
        if (nodes[static_cast<size_t>(a)].kind == Kind::AnyOf) {
          todo.insert(todo.end(), nodes[static_cast<size_t>(a)].alts.rbegin(), nodes[static_cast<size_t>(a)].alts.rend());
        } else {
          flat.push_back(a);
        }
      }
      nodes[i].alts = std::move(flat);
    }
    for (Node& n : nodes) {
      switch (n.kind) {
        case Kind::Object: add_first(n, '{'); break;
        case Kind::Array: add_first(n, '['); break;
        case Kind::String: add_first(n, '"'); break;
        case Kind::Number:
        case Kind::Integer:
          add_first(n, '-');
          for (char c = '0'; c <= '9'; ++c) add_first(n, static_cast<unsigned char>(c));
          break;
        case Kind::Literals:
          for (const std::string& t : n.texts) add_first(n, static_cast<unsigned char>(t[0]));
          break;
        case Kind::AnyOf: break;
      }
    }
    for (Node& n : nodes)
      if (n.kind == Kind::AnyOf)
        for (int a : n.alts)
          for (int w = 0; w < 4; ++w) n.first[w] |= nodes[static_cast<size_t>(a)].first[w];
    // Least depths by iteration to a fixed point (recursive schemas included).
    const auto depth = [&](int i) { return i < 0 ? JsonSchema::kNoFit : nodes[static_cast<size_t>(i)].min_depth; };
    for (bool changed = true; changed;) {
      changed = false;
      for (Node& n : nodes) {
        int d = JsonSchema::kNoFit;
        switch (n.kind) {
          case Kind::Number: d = 0; break;
          case Kind::Integer: d = n.bounded && n.min_value > n.max_value ? JsonSchema::kNoFit : 0; break;
          case Kind::String: d = n.min_count <= n.max_count ? 0 : JsonSchema::kNoFit; break;
          case Kind::Literals: d = n.texts.empty() ? JsonSchema::kNoFit : 0; break;
          case Kind::Object:
            d = 1;
            for (size_t p = 0; p < n.keys.size(); ++p)
              if ((n.required >> p) & 1) d = std::max(d, 1 + depth(n.values[p]));
            break;
          case Kind::Array:
            d = n.min_count <= n.max_count ? 1 : JsonSchema::kNoFit;
            // Items past the prefix share one schema: one of them stands for all.
            for (uint32_t k = 0; k < n.min_count && k <= n.prefix.size() && d < JsonSchema::kNoFit; ++k)
              d = std::max(d, 1 + depth(n.item(k)));
            break;
          case Kind::AnyOf:
            for (int a : n.alts) d = std::min(d, depth(a));
            break;
        }
        d = std::min(d, JsonSchema::kNoFit);
        if (d < n.min_depth) {
          n.min_depth = d;
          changed = true;
        }
      }
    }
  }

  static constexpr int kMaxSchemaDepth = 64;
  static constexpr size_t kMaxNodes = 20000;
  const json& root_;
  int depth_ = 0;
  JsonSchema out_;
  std::map<std::string, int> refs_;
  int any_ = -1;
};

std::shared_ptr<const JsonSchema> JsonSchema::compile(const nlohmann::json& schema, bool any_whitespace) {
  return SchemaCompiler(schema, any_whitespace).run();
}

std::shared_ptr<const JsonSchema> JsonSchema::any_object(bool any_whitespace) {
  return compile(json{{"type", "object"}}, any_whitespace);
}

}  // namespace tllm
