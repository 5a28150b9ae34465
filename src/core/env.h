// Settings read from the environment (the A/B switches and debug knobs of the CUDA paths).
// A value that is not one of the accepted spellings is an error naming the variable, not a
// silent default: TLLM_FUSED_ROPE=off or TLLM_DECODER_STACK=yes would otherwise measure the
// wrong build without a word.
#pragma once

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace tllm {

// An on-by-default switch: unset, empty or "1" is on, "0" is off.
inline bool env_switch_on(const char* name) {
  const char* e = std::getenv(name);
  if (!e || !*e || std::strcmp(e, "1") == 0) return true;
  if (std::strcmp(e, "0") == 0) return false;
  throw InvalidArgument(detail::concat("environment variable ", name, "='", e, "': expected 0 or 1"));
}

// An off-by-default switch: unset, empty or "0" is off, "1" is on.
inline bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  if (!e || !*e || std::strcmp(e, "0") == 0) return false;
  if (std::strcmp(e, "1") == 0) return true;
  throw InvalidArgument(detail::concat("environment variable ", name, "='", e, "': expected 0 or 1"));
}

// A whole decimal number (optional sign); unset or empty gives `fallback`.
inline int env_int(const char* name, int fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(e, &end, 10);
  if (*end != '\0' || end == e || errno == ERANGE || v < INT_MIN || v > INT_MAX)
    throw InvalidArgument(detail::concat("environment variable ", name, "='", e, "': expected an integer"));
  return static_cast<int>(v);
}

}  // namespace tllm
