#include "io/json.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"

namespace tllm {

using nlohmann::json;

std::string read_file(const std::string& path) {
  struct stat st;
  TLLM_CHECK_ARG(::stat(path.c_str(), &st) == 0, "cannot read ", path, ": ", std::strerror(errno));
  TLLM_CHECK_ARG(!S_ISDIR(st.st_mode), "cannot read ", path, ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  TLLM_CHECK_ARG(in.good(), "cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  TLLM_CHECK_ARG(!in.bad(), "error while reading ", path);
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool path_present(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

int json_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

json parse_json(std::string_view text, const std::string& source) {
  const int depth = json_depth(text);
  TLLM_CHECK_ARG(depth <= kMaxJsonDepth, source, ": invalid JSON: arrays and objects nest ", depth,
                 " levels deep (at most ", kMaxJsonDepth, ")");
  // nlohmann stops at a NUL byte as if the input ended there; JSON allows none.
  const size_t nul = text.find('\0');
  TLLM_CHECK_ARG(nul == std::string_view::npos, source, ": invalid JSON: NUL byte at offset ", nul);
  // One set of keys per open object (nullptr entries for arrays) so that a duplicate key
  // anywhere is caught; `path` holds the key under which each open container sits.
  std::vector<std::set<std::string>> keys;
  std::vector<bool> is_object;
  std::vector<std::string> path;
  std::string pending_key;
  auto path_str = [&]() {
    std::string p;
    for (const auto& s : path) {
      if (s.empty()) continue;
      if (!p.empty()) p += '.';
      p += s;
    }
    return p;
  };
  json::parser_callback_t cb = [&](int /*depth*/, json::parse_event_t event, json& parsed) -> bool {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        path.push_back(is_object.empty() ? std::string() : (is_object.back() ? pending_key : "[]"));
        is_object.push_back(event == json::parse_event_t::object_start);
        keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!is_object.empty()) {
          is_object.pop_back();
          keys.pop_back();
          path.pop_back();
        }
        break;
      case json::parse_event_t::key: {
        std::string k = parsed.get<std::string>();
        if (!keys.empty() && !keys.back().insert(k).second) {
          const std::string where = path_str();
          TLLM_CHECK_ARG(false, source, ": invalid JSON: duplicate key \"", k, "\"",
                         where.empty() ? std::string(" at the top level") : " in object '" + where + "'");
        }
        pending_key = std::move(k);
        break;
      }
      case json::parse_event_t::value:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    TLLM_CHECK_ARG(false, source, ": invalid JSON: ", json_error_text(e));
  }
  return json();
}

std::string json_error_text(const std::exception& e) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : std::string_view(e.what())) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

json read_json_file(const std::string& path) { return parse_json(read_file(path), path); }

namespace {

// Appends v as compact JSON to out until out holds more than kMax bytes. Containers go
// element by element and stop at depth 8, so that neither the size nor the nesting of a
// user's file matters (dump() recursed through every level: a header of 100,000 nested
// arrays overflowed the stack while an error message was being written).
void brief_into(const json& v, std::string& out, size_t kMax, int depth) {
  if (out.size() > kMax) return;
  if (!v.is_structured()) {
    out += v.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
    return;
  }
  const bool obj = v.is_object();
  out += obj ? '{' : '[';
  if (depth >= 8 && !v.empty()) {
    out += "...";
  } else {
    bool first = true;
    for (auto it = v.begin(); it != v.end() && out.size() <= kMax; ++it) {
      if (!first) out += ',';
      first = false;
      if (obj) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ':';
      brief_into(*it, out, kMax, depth + 1);
    }
  }
  out += obj ? '}' : ']';
}

}  // namespace

std::string json_brief(const json& v) {
  constexpr size_t kMax = 120;
  std::string s;
  brief_into(v, s, kMax, 0);
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

JsonFields::JsonFields(const json& obj, std::string source, std::string prefix)
    : obj_(&obj), source_(std::move(source)), prefix_(std::move(prefix)) {
  TLLM_CHECK_ARG(obj.is_object(), source_, ": ", prefix_.empty() ? std::string("the file") : "field '" + prefix_ + "'",
                 " must be a JSON object, got ", json_brief(obj));
}

const json* JsonFields::find(std::string_view key) const {
  auto it = obj_->find(key);
  if (it == obj_->end() || it->is_null()) return nullptr;
  return &*it;
}

std::string JsonFields::field(std::string_view key) const {
  return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
}

void JsonFields::fail(std::string_view key, const std::string& what) const {
  auto it = obj_->find(key);
  if (it == obj_->end()) throw InvalidArgument(detail::concat(source_, ": field '", field(key), "': ", what));
  throw InvalidArgument(detail::concat(source_, ": field '", field(key), "' = ", json_brief(*it), ": ", what));
}

namespace {
std::optional<int64_t> as_int(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    // Some tools write integral values as 4096.0; accept those, reject 0.5.
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}
}  // namespace

std::optional<int64_t> JsonFields::get_int(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  auto i = as_int(*v);
  if (!i) fail(key, "expected an integer");
  return i;
}

std::optional<int> JsonFields::get_int_in(std::string_view key, int64_t lo, int64_t hi) const {
  auto i = get_int(key);
  if (!i) return std::nullopt;
  if (*i < lo || *i > hi) {
    // The open-ended ranges (hi = INT_MAX): name the side that was crossed.
    if (hi == std::numeric_limits<int>::max())
      fail(key, *i < lo ? detail::concat("must be >= ", lo) : detail::concat("is too large (at most ", hi, ")"));
    fail(key, detail::concat("must be in [", lo, ", ", hi, "]"));
  }
  return static_cast<int>(*i);
}

std::optional<double> JsonFields::get_number(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) fail(key, "expected a number");
  return v->get<double>();
}

std::optional<bool> JsonFields::get_bool(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) fail(key, "expected true or false");
  return v->get<bool>();
}

std::optional<std::string> JsonFields::get_string(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(key, "expected a string");
  return v->get<std::string>();
}

std::optional<std::vector<int64_t>> JsonFields::get_int_list(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) fail(key, "expected a list of integers");
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (const auto& e : *v) {
    auto i = as_int(e);
    if (!i) fail(key, "expected a list of integers, found element " + json_brief(e));
    out.push_back(*i);
  }
  return out;
}

std::optional<std::vector<int64_t>> JsonFields::get_int_or_int_list(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_array()) return get_int_list(key);
  auto i = as_int(*v);
  if (!i) fail(key, "expected an integer or a list of integers");
  return std::vector<int64_t>{*i};
}

std::optional<std::vector<std::string>> JsonFields::get_string_list(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) fail(key, "expected a list of strings");
  std::vector<std::string> out;
  out.reserve(v->size());
  for (const auto& e : *v) {
    if (!e.is_string()) fail(key, "expected a list of strings, found element " + json_brief(e));
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<JsonFields> JsonFields::get_object(std::string_view key) const {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_object()) fail(key, "expected a JSON object");
  return JsonFields(*v, source_, field(key));
}

int64_t JsonFields::require_int(std::string_view key) const {
  auto i = get_int(key);
  if (!i) fail(key, "required field is missing");
  return *i;
}

int JsonFields::require_int_in(std::string_view key, int64_t lo, int64_t hi) const {
  auto i = get_int_in(key, lo, hi);
  if (!i) fail(key, "required field is missing");
  return *i;
}

std::string JsonFields::require_string(std::string_view key) const {
  auto s = get_string(key);
  if (!s) fail(key, "required field is missing");
  return *s;
}

}  // namespace tllm
