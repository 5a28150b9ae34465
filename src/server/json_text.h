// Cheap JSON text building for the per-token path (stream chunks, logprobs), where a
// nlohmann::json tree per token would cost more than the token itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tllm {

// Appends s as a quoted JSON string. Invalid UTF-8 (a token that ends inside a multi-byte
// character) is replaced by U+FFFD per maximal invalid subsequence, so the output is
// always valid JSON text.
void append_json_string(std::string& out, std::string_view s);

// Shortest round-trip decimal; non-finite values become -9999.0 (vLLM's stand-in for -inf
// logprobs), since JSON has no infinities.
void append_json_number(std::string& out, double v);
void append_json_number(std::string& out, int64_t v);

// s with invalid UTF-8 replaced by U+FFFD.
std::string sanitize_utf8(std::string_view s);
// Number of Unicode code points in valid UTF-8 text (invalid bytes count one each).
size_t utf8_length(std::string_view s);
bool is_valid_utf8(std::string_view s);

}  // namespace tllm
