#include "tokenizer/files.h"

#include <filesystem>

namespace tllm::tok {

namespace fs = std::filesystem;

bool path_present(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

}  // namespace tllm::tok
