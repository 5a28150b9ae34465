// Minimal leveled logging to stderr. Level comes from TLLM_LOG=debug|info|warn|error.
#pragma once

#include "core/error.h"

namespace tllm {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };
LogLevel log_level();
void log_message(LogLevel level, const std::string& msg);

}  // namespace tllm

#define TLLM_LOG(level, ...)                                                            \
  do {                                                                                  \
    if (::tllm::LogLevel::level >= ::tllm::log_level())                                 \
      ::tllm::log_message(::tllm::LogLevel::level, ::tllm::detail::concat(__VA_ARGS__)); \
  } while (0)
