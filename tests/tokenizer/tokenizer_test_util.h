// Shared helpers for the tokenizer tests: where goldens and tokenizer folders live.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tllm::test {

inline std::filesystem::path source_dir() { return std::filesystem::path(TLLM_SOURCE_DIR); }
inline std::filesystem::path tokenizer_data_dir() { return source_dir() / "tests" / "data" / "tokenizer"; }
inline std::filesystem::path assets_dir() { return source_dir() / ".cache" / "assets" / "tokenizers"; }

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Folder holding the tokenizer.json a golden file was made from ("" if not present here).
inline std::filesystem::path tokenizer_folder(const std::string& name, const std::string& kind) {
  namespace fs = std::filesystem;
  fs::path dir;
  if (kind == "real") {
    dir = assets_dir() / name;
  } else if (kind == "demo") {
    dir = source_dir() / "models" / "tiny-qwen2-demo";
    if (!fs::exists(dir / "tokenizer.json")) dir = source_dir() / ".." / "shared" / "models" / "tiny-qwen2-demo";
  } else {
    dir = tokenizer_data_dir() / "synthetic" / name.substr(std::string("synthetic_").size());
  }
  return fs::exists(dir / "tokenizer.json") ? dir : fs::path();
}

}  // namespace tllm::test
