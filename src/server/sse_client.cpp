#include "server/sse_client.h"

#include <httplib.h>

#include "core/error.h"

namespace tllm {

void parse_base_url(const std::string& url, std::string& host, int& port) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  TLLM_CHECK_ARG(rest.rfind("https://", 0) != 0, "https is not supported: ", url);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  TLLM_CHECK_ARG(colon != std::string::npos && colon > 0 && colon + 1 < rest.size(),
                 "expected http://HOST:PORT, got '", url, "'");
  host = rest.substr(0, colon);
  try {
    size_t used = 0;
    port = std::stoi(rest.substr(colon + 1), &used);
    TLLM_CHECK_ARG(used == rest.size() - colon - 1 && port > 0 && port < 65536, "bad port");
  } catch (const std::exception&) {
    TLLM_CHECK_ARG(false, "expected http://HOST:PORT, got '", url, "'");
  }
}

SseClient::SseClient(const std::string& base_url, double timeout_seconds) {
  std::string host;
  int port = 0;
  parse_base_url(base_url, host, port);
  client_ = std::make_unique<httplib::Client>(host, port);
  const auto t = std::chrono::duration<double>(timeout_seconds);
  client_->set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  client_->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  client_->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(t));
  client_->set_keep_alive(true);
  client_->set_tcp_nodelay(true);
}

SseClient::~SseClient() = default;

SseResponse SseClient::post(const std::string& path, const std::string& json_body,
                            const std::function<bool(std::string_view data)>& on_data) {
  SseResponse out;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = json_body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  if (!token_.empty()) req.set_header("Authorization", "Bearer " + token_);

  bool is_sse = false;
  std::string pending;  // bytes after the last complete event
  req.response_handler = [&](const httplib::Response& res) {
    out.status = res.status;
    is_sse = res.get_header_value("Content-Type").rfind("text/event-stream", 0) == 0;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (!is_sse) {
      out.body.append(data, len);
      return true;
    }
    pending.append(data, len);
    size_t start = 0;
    for (;;) {
      const size_t end = pending.find("\n\n", start);
      if (end == std::string::npos) break;
      std::string_view event(pending.data() + start, end - start);
      start = end + 2;
      // An event may have several lines; only `data:` lines carry payloads here.
      size_t line_start = 0;
      while (line_start <= event.size()) {
        size_t line_end = event.find('\n', line_start);
        if (line_end == std::string_view::npos) line_end = event.size();
        std::string_view line = event.substr(line_start, line_end - line_start);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.rfind("data:", 0) == 0) {
          line.remove_prefix(5);
          if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
          if (!on_data(line)) {
            out.stopped = true;
            return false;
          }
        }
        line_start = line_end + 1;
      }
    }
    pending.erase(0, start);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  const bool ok = client_->send(req, res, err);
  if (!ok && !out.stopped) out.error = httplib::to_string(err);
  if (out.status == 0) out.status = res.status;
  return out;
}

}  // namespace tllm
