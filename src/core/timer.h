#pragma once
#include <chrono>

namespace tllm {
// Wall-clock seconds since an arbitrary epoch (steady).
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace tllm
