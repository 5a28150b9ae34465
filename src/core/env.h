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

// A switch: "1" is on, "0" is off, unset or empty is `fallback`.
inline bool env_switch(const char* name, bool fallback) {
  const char* e = std::getenv(name);
  if (!e || !*e) return fallback;
  if (std::strcmp(e, "1") == 0) return true;
  if (std::strcmp(e, "0") == 0) return false;
  throw InvalidArgument(detail::concat("environment variable ", name, "='", e, "': expected 0 or 1"));
}
// On by default (the A/B switches of the CUDA paths) / off by default (timing and profiling).
inline bool env_switch_on(const char* name) { return env_switch(name, true); }
inline bool env_flag(const char* name) { return env_switch(name, false); }

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
