// Retrieval-augmented generation, step 1: documents cut into chunks an embedding model reads
// whole. A chunk is a run of whole sentences or lines of at most max_tokens tokens (the
// tokenizer's count of its text, checked), starting with up to overlap_tokens tokens of the
// previous chunk's last units so that a fact cut by a boundary is whole in one of the two. A
// unit longer than a chunk is cut between words, and a word longer than that between UTF-8
// characters.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tllm {

class Tokenizer;

struct ChunkOptions {
  int max_tokens = 256;
  int overlap_tokens = 32;
  void validate() const;  // throws InvalidArgument naming the bad value
};

struct Chunk {
  size_t begin = 0, end = 0;  // bytes [begin, end) of the document (whitespace trimmed)
  std::string text;
  int tokens = 0;
};

// The chunks of `text` (valid UTF-8), in order; none for text that is only whitespace.
std::vector<Chunk> chunk_text(std::string_view text, const Tokenizer& tok, const ChunkOptions& opts);

}  // namespace tllm
