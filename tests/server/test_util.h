// Helpers shared by the server tests: where the shipped tiny model is.
#pragma once

#include <filesystem>
#include <string>

namespace tllm::testing {

// models/tiny-qwen2-demo in the checkout, else ../shared/models/tiny-qwen2-demo; "" if neither.
inline std::string tiny_model_dir() {
  namespace fs = std::filesystem;
  for (const fs::path& p : {fs::path(TLLM_SOURCE_DIR) / "models" / "tiny-qwen2-demo",
                           fs::path(TLLM_SOURCE_DIR) / ".." / "shared" / "models" / "tiny-qwen2-demo"})
    if (fs::exists(p / "config.json")) return fs::weakly_canonical(p).string();
  return "";
}

}  // namespace tllm::testing

#define TLLM_REQUIRE_TINY_MODEL(dir)                                                          \
  const std::string dir = ::tllm::testing::tiny_model_dir();                                  \
  if (dir.empty()) GTEST_SKIP() << "tiny-qwen2-demo not found (models/ or ../shared/models/)"
