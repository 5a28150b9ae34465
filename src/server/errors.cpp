#include "server/errors.h"

#include <nlohmann/json.hpp>

namespace tllm {

ApiError bad_request(const std::string& message, const std::string& param) {
  return ApiError(400, message, "invalid_request_error", param);
}

ApiError not_found(const std::string& message, const std::string& param, const std::string& code) {
  return ApiError(404, message, "invalid_request_error", param, code);
}

ApiError unauthorized() {
  return ApiError(401, "Incorrect API key provided: send it as 'Authorization: Bearer <key>'.",
                  "invalid_request_error", "", "invalid_api_key");
}

ApiError service_unavailable(const std::string& message, const std::string& code) {
  return ApiError(503, message, "server_error", "", code);
}

ApiError internal_error(const std::string& message) {
  return ApiError(500, message, "server_error");
}

std::string shorten_for_error(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  // Cut points moved back to the start of a UTF-8 character (never inside one).
  auto boundary = [&](size_t i) {
    while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
    return i;
  };
  const size_t head = boundary(max_bytes * 2 / 3), tail = boundary(text.size() - max_bytes / 3);
  return text.substr(0, head) + " ... [" + std::to_string(tail - head) + " bytes left out] ... " + text.substr(tail);
}

std::string error_body(const ApiError& e) {
  using json = nlohmann::ordered_json;  // keys in OpenAI's order
  json err = {{"message", shorten_for_error(e.message, kMaxErrorMessageBytes)},
              {"type", e.type},
              {"param", e.param.empty() ? json() : json(shorten_for_error(e.param, kMaxErrorParamBytes))},
              {"code", e.code.empty() ? json() : json(e.code)}};
  return json({{"error", std::move(err)}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tllm
