// Switches read from the environment.
#pragma once

#include <cstdlib>
#include <cstring>

namespace tllm {

// An on-by-default switch: false only when the variable `name` is set to "0" (the A/B
// switches of the CUDA paths, TLLM_FUSED_ROPE=0 and the like).
inline bool env_switch_on(const char* name) {
  const char* e = std::getenv(name);
  return !(e && std::strcmp(e, "0") == 0);
}

}  // namespace tllm
