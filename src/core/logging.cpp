#include "core/logging.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tllm {

LogLevel log_level() {
  static const LogLevel level = [] {
    const char* e = std::getenv("TLLM_LOG");
    if (!e || !*e || !std::strcmp(e, "info")) return LogLevel::Info;
    if (!std::strcmp(e, "debug")) return LogLevel::Debug;
    if (!std::strcmp(e, "warn")) return LogLevel::Warn;
    if (!std::strcmp(e, "error")) return LogLevel::Error;
    // Read inside the logger, where an exception has no place to go: say so once instead.
    std::fprintf(stderr, "[tinyllm warn] TLLM_LOG='%s' is not debug, info, warn or error; logging at info\n", e);
    return LogLevel::Info;
  }();
  return level;
}

void log_message(LogLevel level, const std::string& msg) {
  static std::mutex mu;
  static const char* names[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[tinyllm %s] %s\n", names[static_cast<int>(level)], msg.c_str());
}

}  // namespace tllm
