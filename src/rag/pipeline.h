// Retrieval-augmented generation, end to end: documents -> chunks (rag/chunker.h) -> vectors
// from an embedding model (an LLMEngine with the pooling runner) -> a VectorIndex file; a
// question -> its vector -> the k nearest chunks -> a prompt that hands them to a generating
// model with the question. `tinyllm rag index | query | ask` drive it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rag/chunker.h"
#include "rag/vector_index.h"

namespace tllm {

class LLMEngine;

// The documents under `inputs`: files as given, directories searched recursively for text files
// (.txt .md .markdown .rst .text), sorted. Throws naming an input that does not exist or a
// directory without text files.
std::vector<std::string> collect_documents(const std::vector<std::string>& inputs);

struct IndexOptions {
  ChunkOptions chunk;
  std::string document_prefix;  // put before each chunk when embedding it (an instruction some models want)
  std::string model;            // recorded in the index's metadata (the embedding model's path)
};

// Chunks every document and embeds the chunks with `embedder` (a pooling engine).
VectorIndex build_index(LLMEngine& embedder, const std::vector<std::string>& documents, const IndexOptions& opts);

// The k chunks nearest to `query` (with query_prefix before it, e.g. Qwen3-Embedding's
// "Instruct: ...\nQuery: "), best first. Throws when the embedder's vectors have another
// dimension than the index's, or are pooled another way (the index's metadata records the
// pooling it was built with).
std::vector<VectorIndex::Hit> retrieve(LLMEngine& embedder, const VectorIndex& index, const std::string& query,
                                       int k, const std::string& query_prefix = "");

// Chat messages that give the retrieved chunks (numbered, with their sources) and the question.
nlohmann::ordered_json rag_messages(const VectorIndex& index, const std::vector<VectorIndex::Hit>& hits,
                                    const std::string& question);
// The same as plain text, for a model without a chat template.
std::string rag_plain_prompt(const VectorIndex& index, const std::vector<VectorIndex::Hit>& hits,
                             const std::string& question);

}  // namespace tllm
