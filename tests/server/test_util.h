// Helpers shared by the server tests: where the shipped tiny model is.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace tllm::testing {

// models/NAME in the checkout ($TLLM_TEST_SOURCE_DIR where set: the GPU machine runs binaries
// built in another folder), else ../shared/models/NAME; "" if neither.
inline std::string shipped_model_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const char* env = std::getenv("TLLM_TEST_SOURCE_DIR");
  const fs::path root = env && *env ? fs::path(env) : fs::path(TLLM_SOURCE_DIR);
  for (const fs::path& p : {root / "models" / name, root / ".." / "shared" / "models" / name})
    if (fs::exists(p / "config.json")) return fs::weakly_canonical(p).string();
  return "";
}
inline std::string tiny_model_dir() { return shipped_model_dir("tiny-qwen2-demo"); }
// Its draft model (speculative decoding), trained on the same text with the same tokenizer.
inline std::string tiny_draft_dir() { return shipped_model_dir("tiny-qwen2-demo-draft"); }

}  // namespace tllm::testing

#define TLLM_REQUIRE_TINY_MODEL(dir)                                                          \
  const std::string dir = ::tllm::testing::tiny_model_dir();                                  \
  if (dir.empty()) GTEST_SKIP() << "tiny-qwen2-demo not found (models/ or ../shared/models/)"
