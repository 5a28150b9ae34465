// Finding the tokenizer's files (tokenizer.json, tokenizer_config.json, chat_template.jinja);
// they are read with io's read_file, whose errors name the path and what is wrong with it.
#pragma once

#include <string>

namespace tllm::tok {

// Whether something is at `path` (a broken symlink counts, so that reading it fails loudly
// instead of the file being taken as absent).
bool path_present(const std::string& path);

}  // namespace tllm::tok
