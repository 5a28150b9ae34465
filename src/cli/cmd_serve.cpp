// tinyllm serve: the OpenAI-compatible HTTP server (flags spelled as `vllm serve` spells them).
// It listens first and loads the model second, so /health says 503 (loading) meanwhile;
// SIGINT/SIGTERM stop it cleanly (in-flight requests end with finish_reason "abort").
#include <pthread.h>
#include <unistd.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/logging.h"
#include "core/timer.h"
#include "engine/async_engine.h"
#include "server/http_server.h"

namespace tllm {
namespace {

struct ServeArgs {
  EngineOptions engine;
  ServerOptions server;
  int max_queue = 1024;
  bool disable_log_stats = false;
  bool enable_auto_tool_choice = false;  // vLLM's flag, accepted (see register_serve_command)
  bool disable_log_requests = false;  // vLLM's older default-restating flag
};

void run_serve(ServeArgs& a) {
  TLLM_CHECK_ARG(!(a.disable_log_requests && a.server.log_requests),
                 "give --enable-log-requests or --disable-log-requests, not both");
  const EngineConfig config = a.engine.resolve();
  // A hub repository id is the model's name in the API, as vLLM names it; "root" is its snapshot.
  if (a.server.served_model_names.empty() && config.model_dir != a.engine.config.model_dir)
    a.server.served_model_names.push_back(a.engine.config.model_dir);
  // Absolute, so that /v1/models "root" means the same folder to a client elsewhere on this machine.
  a.server.model_dir = std::filesystem::absolute(config.model_dir).lexically_normal().string();
  if (a.server.http_threads <= 0) a.server.http_threads = std::max(128, config.max_num_seqs + 64);
  TLLM_CHECK_ARG(a.max_queue >= 1, "--max-queue must be at least 1, got ", a.max_queue);
  config.check();  // what needs no model fails here, not after the server listens

  // Every thread started from here on inherits this mask; the main thread takes the
  // signals with sigwait, so no handler runs inside a request.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // the loader's "failed"
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  HttpServer server(a.server);
  const int port = server.start();
  std::printf("tinyllm serve: listening on http://%s:%d (loading %s)\n", a.server.host.c_str(), port,
              config.model_dir.c_str());
  std::fflush(stdout);

  std::atomic<bool> loaded{false};
  std::string load_error;
  std::thread loader([&] {
    try {
      const double t0 = now_seconds();
      // Test hook: stretch "loading" so tests can see /health answer 503.
      if (const char* delay = std::getenv("TINYLLM_DEBUG_LOAD_DELAY_S"))
        std::this_thread::sleep_for(std::chrono::duration<double>(std::atof(delay)));
      auto engine = std::make_unique<LLMEngine>(config);
      const EngineStats stats = engine->stats();
      const std::string backend = engine->backend_name();
      const int max_len = engine->max_model_len();
      // Test hook: slow every engine step, so tests can hold a request running.
      const char* pause = std::getenv("TINYLLM_DEBUG_STEP_PAUSE_S");
      server.set_engine(std::make_unique<AsyncEngine>(std::move(engine), a.max_queue, a.disable_log_stats ? 0.0 : 10.0,
                                                      pause ? std::atof(pause) : 0.0));
      loaded = true;
      std::printf("tinyllm serve: ready in %.1f s (%s, max_model_len %d, %d KV blocks of %d tokens)\n",
                  now_seconds() - t0, backend.c_str(), max_len, stats.num_kv_blocks, config.block_size);
      std::fflush(stdout);
    } catch (const std::exception& e) {
      load_error = e.what();
      kill(getpid(), SIGUSR1);
    }
  });

  int sig = 0;
  sigwait(&signals, &sig);
  if (sig == SIGUSR1) {
    loader.join();
    server.stop();
    throw Error("could not load the model: " + load_error);
  }
  if (!loaded) {
    // Interrupted while loading: there is nothing to drain, and the load cannot be cut short.
    std::fprintf(stderr, "tinyllm serve: interrupted while loading\n");
    std::fflush(stderr);
    std::_Exit(130);
  }
  loader.join();
  std::printf("tinyllm serve: stopping\n");
  std::fflush(stdout);
  server.stop();
}

}  // namespace

void register_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server");
  args->engine.add_to(cmd, /*model_positional=*/true);
  ServerOptions& s = args->server;
  s.host = "0.0.0.0";
  cmd->add_option("--host", s.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", s.port, "port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", s.api_key, "require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_flag("--disable-log-stats", args->disable_log_stats,
                "no stats line (throughput, requests, KV cache, drafts) every 10 s while serving");
  cmd->add_option("--served-model-name", s.served_model_names,
                  "model name(s) in the API (default: the --model path or hub repository id); the first is reported");
  cmd->add_option("--max-queue", args->max_queue, "requests waiting beyond this get HTTP 503")
      ->check(kNonNegativeInt)
      ->capture_default_str();
  cmd->add_option("--http-threads", s.http_threads, "HTTP connection threads kept ready (0: max(128, max-num-seqs + 64)); more start when all are busy, up to max(4x, 1024)")
      ->check(kNonNegativeInt);
  cmd->add_option("--responses-store-size", s.responses_store_size,
                  "/v1/responses kept in memory (within 256 MiB of text) for previous_response_id and GET "
                  "/v1/responses/ID, the least recently used dropped first (0: store none)")
      ->capture_default_str();
  cmd->add_flag("--enable-debug-endpoints", s.enable_debug_endpoints, "serve GET /debug/engine (engine stats)");
  cmd->add_flag("--enable-log-requests", s.log_requests,
                "log each request as it reaches the engine: prompt, token ids and sampling settings (as vLLM)");
  cmd->add_flag("--disable-log-requests", args->disable_log_requests,
                "vLLM's older flag: requests are not logged unless --enable-log-requests");
  cmd->add_option("--max-log-len", s.max_log_len,
                  "--enable-log-requests: characters of the prompt and token ids shown (0: all)")
      ->check(kNonNegativeInt);
  cmd->add_option("--reasoning-parser", s.reasoning_parser,
                  "split <think> reasoning into reasoning_content: qwen3 or deepseek_r1 (as vLLM)")
      ->check(CLI::IsMember({"qwen3", "deepseek_r1"}));
  // vLLM's tool-call flags, for its command lines: tool calls are always parsed (with tools in
  // the request), in the format --tool-call-parser names.
  cmd->add_flag("--enable-auto-tool-choice", args->enable_auto_tool_choice,
                "accepted for vLLM command lines: tool_choice \"auto\" always works here");
  cmd->add_option("--tool-call-parser", s.tool_call_parser,
                  "the format of the model's tool calls: hermes (<tool_call> JSON, as the Qwen templates "
                  "write it; the default) or llama3_json (a reply of {\"name\": ..., \"parameters\": ...} "
                  "objects, as the Llama 3.1 / 3.2 templates write it)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            if (v == "hermes" || v == "llama3_json") return "";
            return "\"" + v + "\" is not supported (supported: hermes, llama3_json)";
          },
          "hermes|llama3_json"));
  cmd->callback([args] { run_serve(*args); });
}

}  // namespace tllm
