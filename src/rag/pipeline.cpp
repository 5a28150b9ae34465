#include "rag/pipeline.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "engine/engine.h"
#include "io/json.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace fs = std::filesystem;

namespace {

bool text_file(const fs::path& p) {
  static const std::set<std::string> ext = {".txt", ".md", ".markdown", ".rst", ".text"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext.count(e) > 0;
}

std::string read_document(const std::string& path) {
  const std::string s = read_file(path);
  TLLM_CHECK_ARG(tok::valid_utf8_prefix(s) == s.size(), "the document ", path, " is not valid UTF-8 (at byte ",
                 tok::valid_utf8_prefix(s), ")");
  return s;
}

std::vector<int32_t> encode(LLMEngine& e, const std::string& text) {
  TLLM_CHECK_ARG(e.tokenizer() != nullptr, "the embedding model has no tokenizer (tokenizer.json)");
  return e.tokenizer()->encode(text, /*add_special_tokens=*/true);
}

std::string context_block(const VectorIndex& index, const std::vector<VectorIndex::Hit>& hits) {
  std::string c;
  for (size_t i = 0; i < hits.size(); ++i) {
    const IndexEntry& e = index.entry(hits[i].id);
    c += "[" + std::to_string(i + 1) + "] (" + e.source + ")\n" + e.text + "\n\n";
  }
  return c;
}

// A string field of the index's metadata, or `fallback` when it has none (or another type).
std::string meta_string(const VectorIndex& index, const char* key, const std::string& fallback) {
  const auto it = index.meta().find(key);
  return it != index.meta().end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace

std::vector<std::string> collect_documents(const std::vector<std::string>& inputs) {
  TLLM_CHECK_ARG(!inputs.empty(), "no documents given");
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    const fs::file_status st = fs::status(in, ec);
    TLLM_CHECK_ARG(!ec && fs::exists(st), "no such file or directory: ", in);
    if (fs::is_regular_file(st)) {
      out.push_back(in);
      continue;
    }
    TLLM_CHECK_ARG(fs::is_directory(st), in, " is neither a file nor a directory");
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied))
      if (e.is_regular_file() && text_file(e.path())) found.push_back(e.path().string());
    TLLM_CHECK_ARG(!found.empty(), "the directory ", in, " holds no text files (.txt .md .markdown .rst .text)");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

VectorIndex build_index(LLMEngine& embedder, const std::vector<std::string>& documents, const IndexOptions& opts) {
  TLLM_CHECK_ARG(embedder.pooling(), "building an index needs an embedding model (the pooling runner)");
  TLLM_CHECK_ARG(embedder.tokenizer() != nullptr, "the embedding model has no tokenizer (tokenizer.json)");
  opts.chunk.validate();
  const int prefix = static_cast<int>(encode(embedder, opts.document_prefix).size());
  TLLM_CHECK_ARG(opts.chunk.max_tokens + prefix + 2 <= embedder.max_model_len(), "chunks of ", opts.chunk.max_tokens,
                 " tokens (+ ", prefix, " of prefix) do not fit the embedding model's ", embedder.max_model_len(),
                 "-token context");
  nlohmann::json meta = {{"model", opts.model},
                         {"chunk_tokens", opts.chunk.max_tokens},
                         {"chunk_overlap", opts.chunk.overlap_tokens},
                         {"document_prefix", opts.document_prefix},
                         {"pooling", embedder.pooling_type()}};
  VectorIndex index(embedder.hidden_size(), meta);
  constexpr size_t kBatch = 64;  // chunks embedded per engine call
  std::vector<std::vector<int32_t>> prompts;
  std::vector<IndexEntry> pending;
  auto flush = [&] {
    if (prompts.empty()) return;
    const std::vector<std::vector<float>> v = embedder.embed(prompts);
    for (size_t i = 0; i < v.size(); ++i) index.add(v[i], std::move(pending[i]));
    prompts.clear();
    pending.clear();
  };
  for (const std::string& path : documents) {
    const std::string text = read_document(path);
    for (Chunk& c : chunk_text(text, *embedder.tokenizer(), opts.chunk)) {
      prompts.push_back(encode(embedder, opts.document_prefix + c.text));
      pending.push_back({path, c.begin, c.end, std::move(c.text)});
      if (prompts.size() == kBatch) flush();
    }
  }
  flush();
  TLLM_CHECK_ARG(index.size() > 0, "the documents hold no text to index");
  return index;
}

std::vector<VectorIndex::Hit> retrieve(LLMEngine& embedder, const VectorIndex& index, const std::string& query,
                                       int k, const std::string& query_prefix) {
  TLLM_CHECK_ARG(embedder.pooling(), "retrieval needs an embedding model (the pooling runner)");
  TLLM_CHECK_ARG(embedder.hidden_size() == index.dim(), "the index holds vectors of ", index.dim(),
                 " values (built with ", meta_string(index, "model", "?"), ") but this model's have ",
                 embedder.hidden_size(), ": query with the model that built it");
  // Vectors pooled another way than the index's rank by nothing meaningful (an index written
  // before the pooling was recorded is taken as it is).
  const std::string built = meta_string(index, "pooling", ""), now = embedder.pooling_type();
  TLLM_CHECK_ARG(built.empty() || built == now, "the index was built with ", built,
                 " pooling but this embedding model pools ", now, ": query with --pooling-type ", built);
  TLLM_CHECK_ARG(tok::valid_utf8_prefix(query) == query.size(), "the query is not valid UTF-8");
  const std::vector<int32_t> ids = encode(embedder, query_prefix + query);
  TLLM_CHECK_ARG(!ids.empty(), "the query is empty: there is nothing to search for");
  TLLM_CHECK_ARG(static_cast<int>(ids.size()) <= embedder.max_model_len(), "the query's ", ids.size(),
                 " tokens do not fit the embedding model's ", embedder.max_model_len(), "-token context");
  const std::vector<std::vector<float>> v = embedder.embed({ids});
  return index.search(v[0], k);
}

nlohmann::ordered_json rag_messages(const VectorIndex& index, const std::vector<VectorIndex::Hit>& hits,
                                    const std::string& question) {
  return nlohmann::ordered_json::array(
      {{{"role", "system"},
        {"content", "Answer the question using the numbered passages below when they are relevant; cite them as [n]."}},
       {{"role", "user"}, {"content", "Passages:\n\n" + context_block(index, hits) + "Question: " + question}}});
}

std::string rag_plain_prompt(const VectorIndex& index, const std::vector<VectorIndex::Hit>& hits,
                             const std::string& question) {
  return context_block(index, hits) + "Question: " + question + "\nAnswer:";
}

}  // namespace tllm
