#include "tokenizer/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tllm::tok {

namespace fs = std::filesystem;

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  TLLM_CHECK_ARG(!ec || ec == std::errc::no_such_file_or_directory, "cannot read ", path, ": ", ec.message());
  TLLM_CHECK_ARG(fs::exists(st), "cannot read ", path, ": ",
                 fs::is_symlink(fs::symlink_status(path, ec)) ? "a broken symbolic link" : "no such file");
  TLLM_CHECK_ARG(fs::is_regular_file(st), "cannot read ", path, ": not a regular file",
                 fs::is_directory(st) ? " (a directory)" : "");
  std::ifstream in(path, std::ios::binary);
  TLLM_CHECK_ARG(in.good(), "cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  TLLM_CHECK_ARG(!in.bad(), "error while reading ", path);
  return ss.str();
}

bool path_present(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

}  // namespace tllm::tok
