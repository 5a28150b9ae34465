// Reading the tokenizer's files (tokenizer.json, tokenizer_config.json, chat_template.jinja):
// errors name the path and say what is wrong with it, since these are user input.
#pragma once

#include <string>

namespace tllm::tok {

// The whole file. Throws InvalidArgument when the path does not exist, is not a regular file
// (a directory, say: an ifstream opens one and reports a size of -1), or cannot be read.
std::string read_text_file(const std::string& path);

// Whether something is at `path` (a broken symlink counts, so that reading it fails loudly
// instead of the file being taken as absent).
bool path_present(const std::string& path);

}  // namespace tllm::tok
