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

std::string error_body(const ApiError& e) {
  using json = nlohmann::ordered_json;  // keys in OpenAI's order
  json err = {{"message", e.what()},
              {"type", e.type},
              {"param", e.param.empty() ? json() : json(e.param)},
              {"code", e.code.empty() ? json() : json(e.code)}};
  return json({{"error", std::move(err)}})
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tllm
