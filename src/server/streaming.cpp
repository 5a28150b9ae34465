#include "server/streaming.h"

#include "server/json_text.h"

namespace tllm {

void append_sse_event(std::string& out, std::string_view json) {
  out += "data: ";
  out += json;
  out += "\n\n";
}

void append_response_head(std::string& out, std::string_view id, std::string_view object, int64_t created,
                          std::string_view model, std::string_view list) {
  out += "{\"id\":";
  append_json_string(out, id);
  out += ",\"object\":";
  append_json_string(out, object);
  out += ",\"created\":";
  append_json_number(out, created);
  out += ",\"model\":";
  append_json_string(out, model);
  out += ',';
  append_json_string(out, list);
  out += ":[";
}

ChunkWriter::ChunkWriter(std::string_view id, std::string_view object, int64_t created,
                         std::string_view model) {
  prefix_ = "data: ";
  append_response_head(prefix_, id, object, created, model);
}

void ChunkWriter::append_choice_event(std::string& out, std::string_view choice_json, std::string_view usage_json,
                                      std::string_view fields) const {
  out += prefix_;
  out += choice_json;
  out += "]";
  if (!usage_json.empty()) {
    out += ",\"usage\":";
    out += usage_json;
  }
  out += fields;
  out += "}\n\n";
}

void ChunkWriter::append_usage_event(std::string& out, std::string_view usage_json) const {
  out += prefix_;
  out += "],\"usage\":";
  out += usage_json;
  out += "}\n\n";
}

void ChunkWriter::append_error_event(std::string& out, std::string_view error_json) {
  append_sse_event(out, error_json);
}

}  // namespace tllm
