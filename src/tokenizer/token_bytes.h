// The bytes one token adds to a text: decode([id]) for whole characters; for a token that holds
// part of a multi-byte character (decode gives U+FFFD there), its raw bytes from the byte-level
// alphabet of its piece. Exact for byte-level BPE vocabularies (Qwen, Llama-3, DeepSeek-V3).
#pragma once

#include <cstdint>
#include <string>

namespace tllm {

class Tokenizer;

std::string token_bytes(const Tokenizer& tokenizer, int32_t id);

}  // namespace tllm
