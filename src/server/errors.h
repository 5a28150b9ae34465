// API errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
// Request handling throws ApiError; the route wrapper turns it (and InvalidArgument from
// lower layers) into the JSON body and status. Anything else becomes a 500.
#pragma once

#include <string>

#include "core/error.h"

namespace tllm {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = "",
           std::string code = "")
      : Error(message), status(status), message(std::move(message)), type(std::move(type)),
        param(std::move(param)), code(std::move(code)) {}

  int status;
  std::string message;  // whole: what() ends at a NUL that a quoted client value can hold
  std::string type;   // "invalid_request_error", "server_error", ...
  std::string param;  // the request field at fault ("" -> null)
  std::string code;   // machine-readable code ("" -> null)
};

// 400 invalid_request_error naming `param`.
ApiError bad_request(const std::string& message, const std::string& param = "");
ApiError not_found(const std::string& message, const std::string& param = "",
                   const std::string& code = "");
ApiError unauthorized();
ApiError service_unavailable(const std::string& message, const std::string& code = "");
ApiError internal_error(const std::string& message);

// {"error": {...}} as compact JSON text. A message longer than kMaxErrorMessageBytes (it can
// quote a client's key, or a 20,000-deep schema path) keeps its start and end around a note of
// what was left out; so does a param longer than kMaxErrorParamBytes.
inline constexpr size_t kMaxErrorMessageBytes = 4096, kMaxErrorParamBytes = 256;
std::string error_body(const ApiError& e);
// text, or its first two thirds and last third of max_bytes around " ... [N bytes left out] ... ",
// cut at UTF-8 character boundaries.
std::string shorten_for_error(const std::string& text, size_t max_bytes);

}  // namespace tllm
