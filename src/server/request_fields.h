// Readers of request JSON fields shared by the request parsers (protocol.cpp,
// responses_request.cpp): absent or null -> nullopt; a value of the wrong type -> a 400
// naming the field. A namespace of their own, as `find` and `fmt` are common names.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>

#include "server/protocol.h"

namespace tllm::request_fields {

// "null", "a boolean", "a string", "an array", "an object", "a float", "an integer".
const char* type_name(const RequestJson& v);
// The field's value, or null when it is absent or JSON null.
const RequestJson* find(const RequestJson& body, const std::string& key);
std::optional<double> get_number(const RequestJson& body, const std::string& key);
// An integer in [lo, hi] (10.0 is taken as 10).
std::optional<int64_t> get_integer(const RequestJson& body, const std::string& key,
                                   int64_t lo = std::numeric_limits<int32_t>::min(),
                                   int64_t hi = std::numeric_limits<int32_t>::max());
std::optional<int> get_int(const RequestJson& body, const std::string& key);
std::optional<bool> get_bool(const RequestJson& body, const std::string& key);
std::optional<std::string> get_string(const RequestJson& body, const std::string& key);
// A number as JSON writes it.
std::string fmt(double v);
// 400 unless v is absent or in the range (lo excluded when lo_open); `range` is its text.
void check_range(const std::optional<double>& v, const std::string& key, double lo, bool lo_open,
                 double hi, const char* range);
// Fields that must be absent, null or empty because the feature is not served.
void reject_unsupported(const RequestJson& body, const std::string& key, const char* why);
// 400 "Unrecognized request argument supplied: <key>" for a key outside `known`.
void check_known_fields(const RequestJson& body, const std::set<std::string>& known);

// Message content as text: a string, or a list of parts {"type": t, ...} joined by newlines,
// each of a type in `fields` (type -> the field holding its text); another type is refused as
// not text, `taken` saying what is (" (this server takes text only)"). Errors name `path`
// ('messages[2].content[1]') and `param`.
struct TextPart {
  const char* type;
  const char* field;
};
std::string content_parts_text(const RequestJson& content, const std::string& path, const std::string& param,
                               std::initializer_list<TextPart> fields, const char* taken);

}  // namespace tllm::request_fields
