// Retrieval-augmented generation, step 2: the chunks' vectors and the chunks themselves (the
// document store) in one file, searched exactly. Vectors are L2-normalised when added, so a
// search ranks by cosine similarity: a flat scan (n x dim multiply-adds, a few ms for 100k
// chunks of 1,024 values), ties broken by insertion order.
//
// File (little-endian): "TLLMRAG1", u32 version, u32 dim, u64 count, u64 meta bytes, meta JSON
// ({"model": ..., "chunk": {...}}), count x dim f32 vectors, u64 store bytes, store JSON (an
// array of {"source", "begin", "end", "text"}). load() checks every size against the file's, the
// vectors' unit length and the entries' fields, and says what is wrong.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tllm {

struct IndexEntry {
  std::string source;          // the document's path as given
  uint64_t begin = 0, end = 0;  // the chunk's bytes in it
  std::string text;
};

class VectorIndex {
 public:
  VectorIndex(int dim, nlohmann::json meta);

  // v: dim values (any scale; stored normalised). Throws on a wrong size or a zero vector.
  void add(std::span<const float> v, IndexEntry entry);

  struct Hit {
    size_t id;
    float score;  // cosine similarity
  };
  // The k best entries for q (dim values), best first.
  std::vector<Hit> search(std::span<const float> q, int k) const;

  void save(const std::string& path) const;
  static VectorIndex load(const std::string& path);

  int dim() const { return dim_; }
  size_t size() const { return entries_.size(); }
  const IndexEntry& entry(size_t i) const { return entries_[i]; }
  const nlohmann::json& meta() const { return meta_; }

 private:
  int dim_;
  nlohmann::json meta_;
  std::vector<float> vectors_;  // [size][dim]
  std::vector<IndexEntry> entries_;
};

}  // namespace tllm
