// Server-sent events: `data: {json}\n\n` per chunk, `data: [DONE]\n\n` at the end. Chunk
// JSON is written by hand from a prefix fixed per request (id, object, created, model),
// so the per-token cost is one string append, not a JSON tree.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tllm {

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Appends `data: <json>\n\n`.
void append_sse_event(std::string& out, std::string_view json);

// Appends `{"id":...,"object":...,"created":...,"model":...,"<list>":[`, the start of a
// response or of a chunk ("choices"; the pooling routes' "data").
void append_response_head(std::string& out, std::string_view id, std::string_view object, int64_t created,
                          std::string_view model, std::string_view list = "choices");

class ChunkWriter {
 public:
  // object: "chat.completion.chunk" or "text_completion".
  ChunkWriter(std::string_view id, std::string_view object, int64_t created, std::string_view model);
  // Appends one SSE event whose body is {<prefix>,"choices":[<choice_json>]}, with
  // ,"usage":<usage_json> after the choices when usage_json is not empty, then `fields`
  // (",\"name\":value..." or empty: top-level fields such as chat's prompt_token_ids).
  void append_choice_event(std::string& out, std::string_view choice_json, std::string_view usage_json = {},
                           std::string_view fields = {}) const;
  // Appends the final usage event: {<prefix>,"choices":[],"usage":<usage_json>}.
  void append_usage_event(std::string& out, std::string_view usage_json) const;
  // Appends an error event ({"error": {...}}) for failures after the stream started.
  static void append_error_event(std::string& out, std::string_view error_json);

 private:
  std::string prefix_;  // `data: {"id":...,"object":...,"created":...,"model":...,"choices":[`
};

}  // namespace tllm
