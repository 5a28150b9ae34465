// Test helper: the `event: <type>` + `data: <json>` blocks of a Responses API stream.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tllm::testing {

struct SseEvent {
  std::string type;
  nlohmann::json data;
};

// Splits `event: t\ndata: {...}\n\n` blocks; a block without both lines fails the test.
inline std::vector<SseEvent> parse_sse_events(const std::string& text) {
  std::vector<SseEvent> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << "unterminated event";
    if (end == std::string::npos) break;
    const std::string block = text.substr(at, end - at);
    at = end + 2;
    const size_t nl = block.find('\n');
    const bool shaped = block.rfind("event: ", 0) == 0 && nl != std::string::npos && block.compare(nl + 1, 6, "data: ") == 0;
    EXPECT_TRUE(shaped) << block;
    if (!shaped) break;
    out.push_back({block.substr(7, nl - 7), nlohmann::json::parse(block.substr(nl + 7))});
  }
  return out;
}

}  // namespace tllm::testing
