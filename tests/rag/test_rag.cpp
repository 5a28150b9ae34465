// Retrieval-augmented generation (rag/): the chunker against the tokenizer's own counts and the
// document's bytes; the vector index against a float64 brute-force ranking, through its file
// and with damaged files; the pipeline on the shipped demo model as the embedder (last-token
// pooling): a chunk's own text finds that chunk first.
#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../server/test_util.h"
#include "core/error.h"
#include "engine/engine.h"
#include "rag/chunker.h"
#include "rag/pipeline.h"
#include "rag/vector_index.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Paragraphs of short sentences, one line far longer than a chunk, a word longer than a chunk,
// non-ASCII text and blank lines.
std::string sample_document() {
  std::mt19937 rng(7);
  const std::vector<std::string> words = {"the", "keeper", "lit", "lamp", "ships", "passed", "strait", "gulls",
                                          "nested", "on", "rocks", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "and"};
  std::string d;
  for (int p = 0; p < 6; ++p) {
    for (int s = 0; s < 5; ++s) {
      const int n = 3 + static_cast<int>(rng() % 9);
      for (int w = 0; w < n; ++w) d += (w ? " " : "") + words[rng() % words.size()];
      d += s % 2 ? ". " : "! ";
    }
    d += "\n\n";
  }
  for (int w = 0; w < 120; ++w) d += words[rng() % words.size()] + " ";  // a line without sentence ends
  d += "\n";
  for (int k = 0; k < 60; ++k) d += "xq\xC3\xA9";  // one long word with 2-byte characters
  d += "\n\n   \n";
  return d;
}

TEST(RagChunker, ChunksCoverTheTextInOrderWithinTheLimit) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto tok = Tokenizer::load(dir);
  const std::string doc = sample_document();
  for (const auto& [max, overlap] : std::vector<std::pair<int, int>>{{8, 0}, {16, 4}, {40, 10}, {64, 0}, {300, 32}}) {
    SCOPED_TRACE(std::to_string(max) + "/" + std::to_string(overlap));
    const std::vector<Chunk> chunks = chunk_text(doc, *tok, {max, overlap});
    ASSERT_FALSE(chunks.empty());
    std::vector<uint8_t> covered(doc.size(), 0);
    for (size_t i = 0; i < chunks.size(); ++i) {
      const Chunk& c = chunks[i];
      ASSERT_EQ(c.text, doc.substr(c.begin, c.end - c.begin));
      ASSERT_EQ(c.tokens, static_cast<int>(tok->encode(c.text).size()));
      EXPECT_LE(c.tokens, max) << c.text;
      EXPECT_EQ(tok::valid_utf8_prefix(c.text), c.text.size());
      EXPECT_FALSE(std::isspace(static_cast<unsigned char>(c.text.front())) ||
                   std::isspace(static_cast<unsigned char>(c.text.back())));
      if (i > 0) {
        EXPECT_GT(c.begin, chunks[i - 1].begin);
        if (overlap == 0) {
          EXPECT_GE(c.begin, chunks[i - 1].end);
        }
      }
      for (size_t b = c.begin; b < c.end; ++b) covered[b] = 1;
    }
    for (size_t b = 0; b < doc.size(); ++b)
      ASSERT_TRUE(covered[b] || std::isspace(static_cast<unsigned char>(doc[b]))) << "byte " << b << " in no chunk";
    if (overlap > 0) {  // some chunk starts inside its predecessor
      bool any = false;
      for (size_t i = 1; i < chunks.size(); ++i) any |= chunks[i].begin < chunks[i - 1].end;
      EXPECT_TRUE(any);
    }
  }
  // Sentences that fit end chunks at sentence ends or line ends.
  for (const Chunk& c : chunk_text(doc.substr(0, doc.find("\n\n") + 2), *tok, {40, 0}))
    EXPECT_TRUE(c.text.back() == '.' || c.text.back() == '!') << c.text;
  EXPECT_TRUE(chunk_text(" \n\t\n", *tok, {16, 0}).empty());
}

TEST(RagChunker, RefusesBadOptionsAndText) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto tok = Tokenizer::load(dir);
  EXPECT_NE(error_of([&] { chunk_text("a b", *tok, {4, 0}); }).find("at least 8 tokens"), std::string::npos);
  EXPECT_NE(error_of([&] { chunk_text("a b", *tok, {16, 16}); }).find("chunk overlap must be in [0, 16)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { chunk_text("ok \xFF", *tok, {16, 0}); }).find("not valid UTF-8 (at byte 3)"),
            std::string::npos);
}

// Top-k of random vectors against a float64 ranking by cosine; the file round trip gives the
// same answers bit for bit.
TEST(RagIndex, SearchMatchesAFloat64RankingAndSurvivesItsFile) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int dim = 37, n = 500;
  VectorIndex index(dim, {{"model", "random"}});
  std::vector<std::vector<float>> raw;
  for (int i = 0; i < n; ++i) {
    std::vector<float> v(dim);
    for (float& x : v) x = g(rng) * (1.0f + static_cast<float>(i % 5));  // scales differ: cosine ignores them
    raw.push_back(v);
    index.add(v, {"doc" + std::to_string(i % 7) + ".txt", uint64_t(i), uint64_t(i + 1), "chunk " + std::to_string(i)});
  }
  const fs::path file = fs::temp_directory_path() / ("tllm_test_rag_" + std::to_string(::getpid()) + ".idx");
  index.save(file.string());
  const VectorIndex loaded = VectorIndex::load(file.string());
  ASSERT_EQ(loaded.size(), index.size());
  EXPECT_EQ(loaded.meta()["model"], "random");
  for (int t = 0; t < 20; ++t) {
    std::vector<float> q(dim);
    for (float& x : q) x = g(rng);
    std::vector<std::pair<double, size_t>> ref;
    for (size_t i = 0; i < raw.size(); ++i) {
      double dot = 0, a = 0, b = 0;
      for (int j = 0; j < dim; ++j) dot += double(raw[i][j]) * q[j], a += double(raw[i][j]) * raw[i][j], b += double(q[j]) * q[j];
      ref.push_back({-dot / std::sqrt(a * b), i});
    }
    std::sort(ref.begin(), ref.end());
    const auto hits = index.search(q, 10), again = loaded.search(q, 10);
    ASSERT_EQ(hits.size(), 10u);
    for (size_t r = 0; r < hits.size(); ++r) {
      EXPECT_EQ(hits[r].id, ref[r].second) << "rank " << r;
      EXPECT_NEAR(hits[r].score, -ref[r].first, 1e-5);
      EXPECT_EQ(again[r].id, hits[r].id);
      EXPECT_EQ(again[r].score, hits[r].score);
    }
    EXPECT_EQ(loaded.entry(hits[0].id).text, "chunk " + std::to_string(hits[0].id));
  }
  EXPECT_EQ(index.search(raw[3], 1000).size(), static_cast<size_t>(n));  // k beyond the size: all
  EXPECT_NE(error_of([&] { index.search(std::vector<float>(5, 1.0f), 3); }).find("dimension 37"), std::string::npos);
  EXPECT_NE(error_of([&] { index.add(std::vector<float>(dim, 0.0f), {}); }).find("zero"), std::string::npos);

  // Damaged files are refused naming what is wrong.
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const fs::path bad = fs::temp_directory_path() / ("tllm_test_rag_bad_" + std::to_string(::getpid()) + ".idx");
  auto load_bytes = [&](const std::string& b) {
    std::ofstream(bad, std::ios::binary) << b;
    return error_of([&] { VectorIndex::load(bad.string()); });
  };
  EXPECT_NE(load_bytes("NOTANIDX" + bytes.substr(8)).find("no TLLMRAG1 header"), std::string::npos);
  EXPECT_NE(load_bytes(bytes.substr(0, 20)).find("cut short (the header"), std::string::npos);
  EXPECT_NE(load_bytes(bytes.substr(0, bytes.size() / 2)).find("cut short (the vectors"), std::string::npos);
  EXPECT_NE(load_bytes(bytes.substr(0, bytes.size() - 10)).find("cut short (document store"), std::string::npos);
  EXPECT_NE(load_bytes(bytes + "x").find("bytes after the document store"), std::string::npos);
  EXPECT_NE(error_of([&] { VectorIndex::load("/nonexistent/x.idx"); }).find("cannot read the index"), std::string::npos);
  fs::remove(file);
  fs::remove(bad);
}

// The demo model as the embedder: every chunk's own text retrieves that chunk first, with a
// cosine of 1 (the same tokens give the same vector); the checks on documents and dimensions.
TEST(RagPipeline, AChunksOwnTextFindsItFirst) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const fs::path root = fs::temp_directory_path() / ("tllm_test_rag_docs_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "sub");
  std::ofstream(root / "a.txt") << sample_document();
  std::ofstream(root / "sub" / "b.md") << "# Bread\nMix flour, water and salt. Knead the dough for ten minutes.\n"
                                          "Let it rise for two hours, then bake it in a hot oven.\n";
  std::ofstream(root / "sub" / "c.bin") << "not text";
  const std::vector<std::string> docs = collect_documents({root.string()});
  ASSERT_EQ(docs, (std::vector<std::string>{(root / "a.txt").string(), (root / "sub" / "b.md").string()}));
  EngineConfig c;
  c.model_dir = dir;
  c.device = "cpu";
  c.threads = 2;
  c.kv_cache_memory = 64u << 20;
  c.runner = "pooling";
  LLMEngine embedder(c);
  IndexOptions o;
  o.chunk = {32, 8};
  o.model = dir;
  const VectorIndex index = build_index(embedder, docs, o);
  ASSERT_GT(index.size(), 8u);
  for (size_t i = 0; i < index.size(); ++i) {
    const auto hits = retrieve(embedder, index, index.entry(i).text, 3);
    ASSERT_FALSE(hits.empty());
    // First at cosine 1: this chunk, or (the long word's pieces) the first chunk of the same text.
    size_t first_same = 0;
    while (index.entry(first_same).text != index.entry(i).text) ++first_same;
    EXPECT_EQ(hits[0].id, first_same) << index.entry(i).text;
    EXPECT_NEAR(hits[0].score, 1.0f, 1e-4f);
  }
  const std::string msgs = rag_messages(index, retrieve(embedder, index, "bread", 2), "How long?").dump();
  EXPECT_NE(msgs.find("[1] ("), std::string::npos);
  EXPECT_NE(msgs.find("Question: How long?"), std::string::npos);
  VectorIndex other(7, {{"model", "x"}});
  other.add(std::vector<float>(7, 1.0f), {"x", 0, 1, "x"});
  EXPECT_NE(error_of([&] { retrieve(embedder, other, "q", 1); }).find("holds vectors of 7 values"), std::string::npos);
  EXPECT_NE(error_of([&] { collect_documents({(root / "missing").string()}); }).find("no such file"), std::string::npos);
  fs::create_directories(root / "empty");
  EXPECT_NE(error_of([&] { collect_documents({(root / "empty").string()}); }).find("holds no text files"),
            std::string::npos);
  o.chunk = {4000, 0};
  EXPECT_NE(error_of([&] { build_index(embedder, docs, o); }).find("do not fit the embedding model"), std::string::npos);
  fs::remove_all(root);
}

}  // namespace
}  // namespace tllm
