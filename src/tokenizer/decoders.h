// Decoders of tokenizer.json ("decoder" field): ByteLevel, Metaspace, ByteFallback, Fuse,
// Strip, Replace, WordPiece, BPEDecoder, Sequence. Each maps the list of token strings to a
// new list (HF decode_chain); the text is the concatenation of the final list.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.h"

namespace tllm::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where);

}  // namespace tllm::tok
