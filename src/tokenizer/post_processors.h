// Post-processors of tokenizer.json ("post_processor" field), applied when
// add_special_tokens is true: TemplateProcessing (single-sequence template), RobertaProcessing,
// BertProcessing, ByteLevel (offsets only: no change to ids), Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.h"

namespace tllm::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids) const = 0;
};

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& where);

// BOS/EOS around the sequence ($A), as transformers' LlamaTokenizerFast installs.
std::unique_ptr<PostProcessor> make_bos_eos_template(std::vector<int32_t> prefix, std::vector<int32_t> suffix);

}  // namespace tllm::tok
