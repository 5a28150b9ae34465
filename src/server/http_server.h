// The OpenAI-compatible HTTP server. It listens before the model loads (/health answers
// 503 until set_engine()), so orchestrators can tell "loading" from "down".
//
// Routes: GET /health, /ping, /version, /metrics, /v1/models; POST /v1/completions,
// /v1/chat/completions, /tokenize, /detokenize; GET /debug/engine when enabled.
// cpp-httplib runs one connection per thread (a pool that grows under load: worker_pool.h);
// the engine loop runs on AsyncEngine's own thread. Another method on one of these paths is a
// 405; a body without Content-Length (or chunked encoding) a 411.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tllm {

class AsyncEngine;
struct ServingState;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                              // 0: any free port (see HttpServer::port())
  std::vector<std::string> served_model_names;  // empty: the model directory as given
  std::string model_dir;
  std::string api_key;                          // non-empty: /v1/* need "Authorization: Bearer <key>"
  // Connection threads kept ready (0: 128); more start when every one is busy, up to
  // max(4x this, 1024), and end after 30 s idle (server/worker_pool.h).
  int http_threads = 0;
  bool enable_debug_endpoints = false;          // GET /debug/engine (EngineStats as JSON)
  std::string reasoning_parser;                 // "", "qwen3", "deepseek_r1" (server/chat_output.h)
  std::string tool_call_parser = "hermes";      // "hermes", "llama3_json" (server/tool_calls.h)
  size_t max_body_bytes = 64u << 20;
  size_t responses_store_size = 256;            // /v1/responses kept for previous_response_id (0: none)
  // vLLM's --enable-log-requests: a log line per request as it reaches the engine (its
  // prompt, cut to max_log_len characters and ids when > 0, and its sampling settings).
  bool log_requests = false;
  int max_log_len = 0;
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a background thread; throws Error when the address
  // cannot be bound. Returns the port (the chosen one when options.port == 0).
  int start();
  int port() const { return port_; }
  // The engine is loaded: from now on /health says 200 and /v1/* serve. Takes ownership.
  void set_engine(std::unique_ptr<AsyncEngine> engine);
  // Stops accepting, ends in-flight streams (their requests are aborted), joins.
  void stop();

 private:
  ServerOptions options_;
  std::unique_ptr<ServingState> state_;
  struct Listener;
  std::unique_ptr<Listener> listener_;
  std::thread thread_;
  int port_ = 0;
  std::map<std::string, std::string> routes_;  // path -> its "Allow" header (the 405 of other methods)
};

}  // namespace tllm
