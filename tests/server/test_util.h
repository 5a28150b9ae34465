// Helpers shared by the server tests: where the shipped tiny model is.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace tllm::testing {

// models/tiny-qwen2-demo in the checkout ($TLLM_TEST_SOURCE_DIR where set: the GPU machine runs
// binaries built in another folder), else ../shared/models/tiny-qwen2-demo; "" if neither.
inline std::string tiny_model_dir() {
  namespace fs = std::filesystem;
  const char* env = std::getenv("TLLM_TEST_SOURCE_DIR");
  const fs::path root = env && *env ? fs::path(env) : fs::path(TLLM_SOURCE_DIR);
  for (const fs::path& p : {root / "models" / "tiny-qwen2-demo",
                           root / ".." / "shared" / "models" / "tiny-qwen2-demo"})
    if (fs::exists(p / "config.json")) return fs::weakly_canonical(p).string();
  return "";
}

}  // namespace tllm::testing

#define TLLM_REQUIRE_TINY_MODEL(dir)                                                          \
  const std::string dir = ::tllm::testing::tiny_model_dir();                                  \
  if (dir.empty()) GTEST_SKIP() << "tiny-qwen2-demo not found (models/ or ../shared/models/)"
