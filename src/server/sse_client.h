// A minimal HTTP client for server-sent events (bench-serve and the tests): POSTs a JSON
// body and hands each `data:` payload to a callback as it arrives.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace httplib {
class Client;
}

namespace tllm {

struct SseResponse {
  int status = 0;        // HTTP status; 0 when the request failed before a response
  std::string error;     // transport error ("" when the exchange completed)
  std::string body;      // the raw body when the response was not an event stream
  bool stopped = false;  // the callback asked to stop (the client disconnected)
};

class SseClient {
 public:
  // base_url: "http://host:port"; timeout applies to connect, read and write.
  explicit SseClient(const std::string& base_url, double timeout_seconds = 600.0);
  ~SseClient();

  void set_bearer_token(const std::string& token) { token_ = token; }

  // on_data returns false to stop reading; the connection is then closed mid-stream.
  SseResponse post(const std::string& path, const std::string& json_body,
                   const std::function<bool(std::string_view data)>& on_data);

 private:
  std::unique_ptr<httplib::Client> client_;
  std::string token_;
};

// Splits "host:port" or "http://host:port" (a trailing slash allowed) into its parts;
// throws InvalidArgument for anything else.
void parse_base_url(const std::string& url, std::string& host, int& port);

}  // namespace tllm
