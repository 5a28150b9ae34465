#include "server/http_server.h"

#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <thread>

#include <httplib.h>

#include "core/logging.h"
#include "engine/async_engine.h"
#include "server/errors.h"
#include "server/json_text.h"
#include "server/serving.h"
#include "server/worker_pool.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

// httplib::Server with a larger accept backlog: its built-in 5 drops connections when
// dozens of clients connect at once (each drop costs the client a 1 s SYN retry).
struct HttpServer::Listener : httplib::Server {
  void raise_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

namespace {

constexpr size_t kMinThreadCap = 1024;
constexpr const char* kFormType = "application/x-www-form-urlencoded";  // connection threads the pool may grow to, at least

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
}

using RouteFn = void (*)(ServingState&, const httplib::Request&, httplib::Response&);

constexpr const char* kResponsePath = R"(/v1/responses/([^/]+))";
constexpr const char* kResponseInputItemsPath = R"(/v1/responses/([^/]+)/input_items)";

// A request no route takes: 405 with the methods of its path when the path is known (as
// FastAPI, i.e. vLLM, answers), else 404. A path is known when it is a route's, or matches a
// route's pattern (/v1/responses/{id}).
void send_unrouted(const std::map<std::string, std::string>& routes, const httplib::Request& req,
                   httplib::Response& res) {
  auto allowed = routes.find(req.path);
  for (auto it = routes.begin(); allowed == routes.end() && it != routes.end(); ++it)
    if (it->first.find('(') != std::string::npos && std::regex_match(req.path, std::regex(it->first))) allowed = it;
  if (allowed == routes.end()) {
    send_error(res, not_found("Route not found: " + req.method + " " + req.path));
    return;
  }
  res.set_header("Allow", allowed->second);
  send_error(res, ApiError(405, "Method Not Allowed: " + req.method + " " + req.path + " (allowed: " +
                                    allowed->second + ")", "invalid_request_error"));
}

// What is wrong with how a request delimits its body (a 411 or a 400), if anything. Methods that
// carry a body need Content-Length (decimal digits only) or chunked encoding.
std::optional<ApiError> body_framing_error(const httplib::Request& req) {
  if (req.method != "POST" && req.method != "PUT" && req.method != "PATCH" && req.method != "DELETE") return {};
  auto error = [](int status, const std::string& message) {
    return std::optional<ApiError>(ApiError(status, message, "invalid_request_error"));
  };
  if (req.has_header("Transfer-Encoding")) {
    // httplib decodes chunked bodies; any other coding it would read until the connection closes.
    const std::string te = req.get_header_value("Transfer-Encoding");
    if (te == "chunked") return {};
    return error(400, "Unsupported Transfer-Encoding \"" + sanitize_utf8(te) + "\" (only chunked)");
  }
  if (!req.has_header("Content-Length"))
    return error(411, "Length Required: a " + req.method + " request needs a Content-Length header");
  if (req.get_header_value_count("Content-Length") != 1) return error(400, "More than one Content-Length header");
  const std::string v = req.get_header_value("Content-Length");
  const bool digits = !v.empty() && v.size() <= 18 && v.find_first_not_of("0123456789") == std::string::npos;
  if (digits) return {};
  return error(400, "Invalid Content-Length \"" + sanitize_utf8(v.substr(0, 40)) + "\" (not a byte count)");
}

// Every route runs inside this: client mistakes become 4xx bodies, nothing else escapes.
httplib::Server::Handler route(ServingState& state, RouteFn fn) {
  return [&state, fn](const httplib::Request& req, httplib::Response& res) {
    try {
      fn(state, req, res);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const InvalidArgument& e) {
      send_error(res, bad_request(e.what(), e.param()));
    } catch (const nlohmann::json::exception& e) {
      // Only request data reaches nlohmann here: a shape we did not anticipate is still
      // the client's mistake.
      send_error(res, bad_request(std::string("Malformed request: ") + e.what()));
    } catch (const std::exception& e) {
      TLLM_LOG(Error, req.method, " ", req.path, " failed: ", e.what());
      send_error(res, internal_error(e.what()));
    }
    state.metrics.count_http(res.status < 0 ? 200 : res.status);  // httplib fills in 200 later
#ifdef __GLIBC__
    // A large body's temporaries (its text, pieces and token ids) came from this worker
    // thread's malloc arena, which glibc keeps at its peak: ~65 MB per worker after one 20 MB
    // prompt, and a server has hundreds of workers. Give the free pages back after such a
    // request (the tokenizer's own thread-local scratch trims itself: tokenizer/scratch.h).
    if (req.body.size() > (size_t{1} << 20)) malloc_trim(0);
#endif
  };
}

void handle_health(ServingState& state, const httplib::Request&, httplib::Response& res) {
  state.check_ready();
  res.status = 200;
}

// POST /invocations (SageMaker's route, as vLLM serves it): the body's shape picks the route:
// "messages" a chat completion, "prompt" a completion, "input" embeddings. The body is parsed
// once, here.
void handle_invocations(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  const RequestJson body = parse_json_body(req.body);
  if (!body.is_object()) throw bad_request("The request body must be a JSON object");
  if (body.contains("messages")) return serve_chat_completions(state, req, res, body);
  if (body.contains("prompt")) return serve_completions(state, req, res, body);
  if (body.contains("input")) return serve_embeddings(state, req, res, body);
  throw bad_request("/invocations takes a chat completion (\"messages\"), a completion (\"prompt\") or an "
                    "embeddings request (\"input\"), and this body has none of those fields");
}

void handle_version(ServingState&, const httplib::Request&, httplib::Response& res) {
  res.set_content("{\"version\":\"0.1.0\"}", "application/json");
}

std::vector<std::string> served_names(const ServingState& state) {
  std::vector<std::string> names = state.options.served_model_names;
  if (names.empty()) names.push_back(state.model_name);
  return names;
}

// One served name as OpenAI's model object (with vLLM's root and max_model_len).
void append_model(std::string& out, const ServingState& state, const std::string& name) {
  out += "{\"id\":";
  append_json_string(out, name);
  out += ",\"object\":\"model\",\"created\":";
  append_json_number(out, state.start_time);
  out += ",\"owned_by\":\"tinyllm\",\"root\":";
  append_json_string(out, state.options.model_dir);
  out += ",\"parent\":null,\"max_model_len\":";
  append_json_number(out, static_cast<int64_t>(state.engine->engine().max_model_len()));
  out += ",\"permission\":[]}";
}

void handle_models(ServingState& state, const httplib::Request&, httplib::Response& res) {
  state.check_ready();
  const std::vector<std::string> names = served_names(state);
  std::string out = "{\"object\":\"list\",\"data\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out.push_back(',');
    append_model(out, state, names[i]);
  }
  out += "]}";
  res.set_content(out, "application/json");
}

// GET /v1/models/{model} (OpenAI's retrieve): a served name, which may hold slashes.
void handle_model(ServingState& state, const httplib::Request& req, httplib::Response& res) {
  state.check_ready();
  const std::string name = req.matches[1];
  const std::vector<std::string> names = served_names(state);
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw not_found("The model '" + sanitize_utf8(name) + "' does not exist", "model", "model_not_found");
  std::string out;
  append_model(out, state, name);
  res.set_content(out, "application/json");
}

void handle_metrics(ServingState& state, const httplib::Request&, httplib::Response& res) {
  std::optional<EngineStats> stats;
  if (state.ready.load(std::memory_order_acquire)) stats = state.engine->stats();
  res.set_content(state.metrics.render(stats ? &*stats : nullptr), "text/plain; version=0.0.4; charset=utf-8");
}

void handle_debug_engine(ServingState& state, const httplib::Request&, httplib::Response& res) {
  state.check_ready();
  const EngineStats s = state.engine->stats();
  nlohmann::ordered_json j = {{"num_running", s.num_running},
                              {"num_waiting", s.num_waiting},
                              {"num_kv_blocks", s.num_kv_blocks},
                              {"num_free_kv_blocks", s.num_free_kv_blocks},
                              {"num_cached_free_blocks", s.num_cached_free_blocks},
                              {"num_used_kv_blocks", s.num_kv_blocks - s.num_free_kv_blocks - s.num_cached_free_blocks},
                              {"kv_usage", s.kv_usage()},
                              {"prefix_cache_queries", s.prefix_cache_queries},
                              {"prefix_cache_hits", s.prefix_cache_hits},
                              {"prompt_tokens_total", s.prompt_tokens_total},
                              {"generation_tokens_total", s.generation_tokens_total},
                              {"num_preemptions", s.num_preemptions},
                              {"nonfinite_logit_rows", s.nonfinite_logit_rows}};
  res.set_content(j.dump(), "application/json");
}

}  // namespace

HttpServer::HttpServer(ServerOptions options)
    : options_(std::move(options)), state_(std::make_unique<ServingState>(options_)),
      listener_(std::make_unique<Listener>()) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start() {
  // A client that disconnects mid-write must cost an EPIPE, not the process.
  signal(SIGPIPE, SIG_IGN);
  Listener& srv = *listener_;
  // Connections beyond the threads kept ready get threads of their own (worker_pool.h), so
  // /health still answers with every kept thread held by a stream or an idle keep-alive client.
  const size_t threads = static_cast<size_t>(options_.http_threads > 0 ? options_.http_threads : 128);
  const size_t max_threads = std::max<size_t>(4 * threads, kMinThreadCap);
  srv.new_task_queue = [threads, max_threads] { return new WorkerPool(threads, max_threads); };
  srv.set_tcp_nodelay(true);
  srv.set_payload_max_length(options_.max_body_bytes);
  srv.set_keep_alive_max_count(1000);

  ServingState& st = *state_;
  srv.set_pre_routing_handler([this, &st](const httplib::Request& req, httplib::Response& res) {
    // Runs before httplib reads a body. A body's length must be said: without Content-Length
    // or chunked encoding httplib would read until the client closes or the read timeout
    // (10 s) passes, and a malformed length (e.g. -5) read as a huge number, i.e. a 413.
    // A DELETE without either has no body (as fetch and the OpenAI clients send it): it is
    // answered here, before httplib would wait for one.
    const bool bodiless_delete =
        req.method == "DELETE" && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding");
    if (!bodiless_delete) {
      if (const std::optional<ApiError> e = body_framing_error(req)) {
        send_error(res, *e);
        st.metrics.count_http(res.status);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // CORS preflights carry no credentials; only /v1 is guarded, as in vLLM.
    const bool open = st.options.api_key.empty() || req.method == "OPTIONS" || req.path.rfind("/v1/", 0) != 0 ||
                      req.get_header_value("Authorization") == "Bearer " + st.options.api_key;
    if (!open) {
      send_error(res, unauthorized());
      st.metrics.count_http(res.status);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!bodiless_delete) return httplib::Server::HandlerResponse::Unhandled;
    static const std::regex response_path(kResponsePath);
    if (std::regex_match(req.path, response_path)) {
      route(st, handle_delete_response)(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    send_unrouted(routes_, req, res);
    st.metrics.count_http(res.status);
    return httplib::Server::HandlerResponse::Handled;
  });
  srv.set_error_handler([this, &st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_unrouted(routes_, req, res);
    } else if (res.status == 413 && req.get_header_value("Content-Type").rfind(kFormType, 0) == 0) {
      // httplib refuses form bodies over 8 KiB whatever the payload limit: say so, since it
      // is what `curl -d @request.json` sends without -H.
      send_error(res, ApiError(413, std::string("A body sent as ") + kFormType + " is limited to 8 KiB; send the JSON "
                                        "with \"Content-Type: application/json\" (curl: -H \"Content-Type: application/json\")",
                               "invalid_request_error"));
    } else if (res.status == 413) {
      send_error(res, ApiError(413, "The request body is too large (the limit is " +
                                        std::to_string(st.options.max_body_bytes) + " bytes)",
                               "invalid_request_error"));
    } else if (res.status >= 400 && res.status < 500) {
      send_error(res, ApiError(res.status, "Bad request: " + req.method + " " + req.path, "invalid_request_error"));
    } else {
      send_error(res, internal_error("Internal server error"));
    }
    st.metrics.count_http(res.status);
  });
  srv.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, internal_error(what));
  });
  srv.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    TLLM_LOG(Debug, req.method, " ", req.path, " -> ", res.status);
  });

  // CORS as vLLM's defaults allow it (any origin), so browser clients can call the API.
  srv.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  srv.Options(".*", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
    res.status = 204;
  });
  // routes_ remembers each path's methods, for the 405 of the others.
  auto add = [&](const char* method, const std::string& path, RouteFn fn) {
    const std::string m = method;
    if (m == "GET") {
      srv.Get(path, route(st, fn));
    } else if (m == "DELETE") {
      srv.Delete(path, route(st, fn));
    } else {
      srv.Post(path, route(st, fn));
    }
    std::string& allowed = routes_[path];
    allowed = allowed.empty() ? m + ", OPTIONS" : m + ", " + allowed;
  };
  add("GET", "/health", handle_health);
  add("GET", "/ping", handle_health);
  add("GET", "/version", handle_version);
  add("GET", "/metrics", handle_metrics);
  add("GET", "/v1/models", handle_models);
  add("GET", R"(/v1/models/(.+))", handle_model);
  add("POST", "/v1/completions", handle_completions);
  add("POST", "/v1/chat/completions", handle_chat_completions);
  add("POST", "/v1/responses", handle_responses);
  add("GET", kResponsePath, handle_get_response);
  add("DELETE", kResponsePath, handle_delete_response);
  add("GET", kResponseInputItemsPath, handle_response_input_items);
  add("POST", R"(/v1/responses/([^/]+)/cancel)", handle_cancel_response);
  add("POST", "/v1/embeddings", handle_embeddings);
  for (const char* path : {"/score", "/v1/score"}) add("POST", path, handle_score);
  for (const char* path : {"/rerank", "/v1/rerank", "/v2/rerank"}) add("POST", path, handle_rerank);
  add("POST", "/invocations", handle_invocations);
  add("POST", "/tokenize", handle_tokenize);
  add("POST", "/detokenize", handle_detokenize);
  if (options_.enable_debug_endpoints) add("GET", "/debug/engine", handle_debug_engine);

  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, with which a second server
  // bound the same port without an error and the kernel split the connections between them.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (options_.port == 0) {
    port_ = srv.bind_to_any_port(options_.host);
    TLLM_CHECK(port_ > 0, "could not bind ", options_.host, " to a free port");
  } else {
    TLLM_CHECK(srv.bind_to_port(options_.host, options_.port), "could not bind ", options_.host, ":",
               options_.port, " (in use, or not an address of this machine?)");
    port_ = options_.port;
  }
  srv.raise_backlog(1024);
  auto returned = std::make_shared<std::atomic<bool>>(false);
  thread_ = std::thread([this, returned] {
    listener_->listen_after_bind();
    returned->store(true);
  });
  // Return only once the accept loop runs: httplib's stop() does nothing before that, so a
  // stop() right after start() (a model that fails to load at once) would leave the
  // listener running and stop() blocked in join forever.
  while (!srv.is_running()) {
    if (returned->load()) {
      thread_.join();
      TLLM_THROW("could not listen on ", options_.host, ":", port_);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return port_;
}

void HttpServer::set_engine(std::unique_ptr<AsyncEngine> engine) {
  TLLM_CHECK(engine && !state_->ready.load(), "HttpServer::set_engine: called twice or with no engine");
  const LLMEngine& e = engine->engine();
  if (e.tokenizer())
    state_->tokenizer = std::make_unique<ServingTokenizer>(*e.tokenizer(), e.chat_template(), e.vocab_size());
  state_->metrics.set_cache_config(e.config(), engine->stats().num_kv_blocks);
  state_->engine = std::move(engine);
  state_->ready.store(true, std::memory_order_release);
}

void HttpServer::stop() {
  if (!listener_) return;
  state_->stopping.store(true);
  // End in-flight requests first (their streams get an abort), so handler threads finish.
  if (state_->engine) state_->engine->shutdown();
  state_->background.shutdown();
  listener_->stop();
  if (thread_.joinable()) thread_.join();
  listener_.reset();
}

}  // namespace tllm
