// Retrieval-augmented generation (rag/): the chunker against the tokenizer's own counts and the
// document's bytes; the vector index against a float64 brute-force ranking, through its file
// and with damaged files; the pipeline on the shipped demo model as the embedder (last-token
// pooling): a chunk's own text finds that chunk first.
#include <unistd.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
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
  } catch (const std::exception& e) {
    return std::string("not a tinyllm error: ") + e.what();
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

// A document that is one long word (a base64 blob, a minified line): its pieces are found by
// galloping from each piece's start, not by searching the whole rest of the word for every
// piece (quadratic: ~40 s of tokenizing for these 600 KB before, well under a second now).
TEST(RagChunker, ALongWordIsCutInLinearTime) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const auto tok = Tokenizer::load(dir);
  std::mt19937 rng(5);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string word;
  while (word.size() < 600000) word += rng() % 50 ? std::string(1, alphabet[rng() % alphabet.size()]) : "\xC3\xA9";
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<Chunk> chunks = chunk_text(word, *tok, {64, 0});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(chunks.empty());
  size_t at = 0;
  for (const Chunk& c : chunks) {
    ASSERT_EQ(c.begin, at);  // back to back, whole characters
    ASSERT_EQ(tok::valid_utf8_prefix(c.text), c.text.size());
    ASSERT_LE(c.tokens, 64);
    at = c.end;
  }
  EXPECT_EQ(at, word.size());
  // Each piece is the longest that fits: one more character would not.
  for (size_t i = 0; i + 1 < chunks.size() && i < 50; ++i) {
    const size_t next = chunks[i].end + static_cast<size_t>(tok::utf8_len(static_cast<unsigned char>(word[chunks[i].end])));
    EXPECT_GT(tok->encode(word.substr(chunks[i].begin, next - chunks[i].begin)).size(), 64u) << i;
  }
  EXPECT_LT(s, 10.0) << chunks.size() << " pieces";
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

// An index file whose sizes are right but whose contents are damaged: a vector that is NaN (no
// ranking can order it: it was loaded and came out as "score": null, and sorting with it is
// undefined) or not of unit length, a document store entry whose offsets are not byte offsets
// (a string threw nlohmann's own "type must be number", naming no file; -1 wrapped to 2^64 - 1),
// metadata that is not an object. Each is refused naming the file and what is wrong.
TEST(RagIndex, DamagedContentsAreRefusedByName) {
  const int dim = 4;
  VectorIndex index(dim, {{"model", "m"}});
  index.add(std::vector<float>{1, 2, 3, 4}, {"a.txt", 0, 5, "alpha"});
  index.add(std::vector<float>{4, 3, 2, 1}, {"b.txt", 2, 9, "beta"});
  const fs::path file = fs::temp_directory_path() / ("tllm_test_rag_dmg_" + std::to_string(::getpid()) + ".idx");
  index.save(file.string());
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  uint64_t meta_len = 0;
  std::memcpy(&meta_len, bytes.data() + 24, 8);
  const size_t vectors = 32 + meta_len, store = vectors + 2 * dim * sizeof(float);
  uint64_t store_len = 0;
  std::memcpy(&store_len, bytes.data() + store, 8);
  const nlohmann::json entries = nlohmann::json::parse(bytes.substr(store + 8, store_len));
  ASSERT_EQ(entries.size(), 2u);
  const auto with_vector_value = [&](size_t at, float x) {
    std::string b = bytes;
    std::memcpy(b.data() + vectors + at * sizeof(float), &x, sizeof x);
    return b;
  };
  const auto with_store = [&](const nlohmann::json& st) {
    const std::string js = st.dump();
    const uint64_t n = js.size();
    return bytes.substr(0, store) + std::string(reinterpret_cast<const char*>(&n), 8) + js;
  };
  const auto with_meta = [&](const std::string& m) {
    const uint64_t n = m.size();
    return bytes.substr(0, 24) + std::string(reinterpret_cast<const char*>(&n), 8) + m + bytes.substr(vectors);
  };
  const auto error_loading = [&](const std::string& b) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << b;
    return error_of([&] { VectorIndex::load(file.string()); });
  };
  EXPECT_EQ(error_loading(bytes), "no error");
  EXPECT_EQ(error_loading(with_store(entries)), "no error");  // the patching itself keeps a good file good
  const std::string name = file.string() + ": ";
  EXPECT_EQ(error_loading(with_vector_value(1, std::nanf(""))), name + "vector 0 is not finite (a damaged file)");
  EXPECT_EQ(error_loading(with_vector_value(5, 3.0f)), name + "vector 1 does not have unit length (a damaged file)");
  for (const nlohmann::json& begin : {nlohmann::json("x"), nlohmann::json(-1), nlohmann::json(1.5), nlohmann::json(nullptr)}) {
    nlohmann::json st = entries;
    st[1]["begin"] = begin;
    EXPECT_NE(error_loading(with_store(st)).find(name + "a document store entry is malformed"), std::string::npos)
        << begin.dump() << ": " << error_loading(with_store(st));
  }
  nlohmann::json st = entries;
  st[0].erase("end");
  EXPECT_NE(error_loading(with_store(st)).find("a document store entry is malformed"), std::string::npos);
  st = entries;
  st[0]["begin"] = 7;  // after its end
  EXPECT_NE(error_loading(with_store(st)).find("a document store entry is malformed"), std::string::npos);
  EXPECT_EQ(error_loading(with_meta("[1, 2]")), name + "its metadata is not a JSON object");
  EXPECT_EQ(error_loading(with_meta("{\"model\": 5}")), "no error");  // a field of another type is no damage
  fs::remove(file);
}

// Paths are bytes, JSON is UTF-8: a document (or model) path that is not UTF-8 is saved with
// U+FFFD for its bad bytes (saving threw nlohmann's "invalid UTF-8 byte", after the embedding).
TEST(RagIndex, ANonUtf8PathIsSavedReplaced) {
  VectorIndex index(3, {{"model", "/models/caf\xE9"}});
  index.add(std::vector<float>{1, 0, 0}, {"docs/bad\xFFname.txt", 0, 4, "text"});
  const fs::path file = fs::temp_directory_path() / ("tllm_test_rag_utf8_" + std::to_string(::getpid()) + ".idx");
  EXPECT_EQ(error_of([&] { index.save(file.string()); }), "no error");
  const VectorIndex loaded = VectorIndex::load(file.string());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.entry(0).source, "docs/bad\xEF\xBF\xBDname.txt");
  EXPECT_EQ(loaded.entry(0).text, "text");
  EXPECT_EQ(loaded.meta()["model"], "/models/caf\xEF\xBF\xBD");
  fs::remove(file);
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
  // Metadata naming its model with another type (a foreign or damaged file): the same error.
  VectorIndex odd(7, {{"model", 5}});
  odd.add(std::vector<float>(7, 1.0f), {"x", 0, 1, "x"});
  EXPECT_NE(error_of([&] { retrieve(embedder, odd, "q", 1); }).find("holds vectors of 7 values (built with ?)"),
            std::string::npos)
      << error_of([&] { retrieve(embedder, odd, "q", 1); });
  EXPECT_NE(error_of([&] { collect_documents({(root / "missing").string()}); }).find("no such file"), std::string::npos);
  fs::create_directories(root / "empty");
  EXPECT_NE(error_of([&] { collect_documents({(root / "empty").string()}); }).find("holds no text files"),
            std::string::npos);
  o.chunk = {4000, 0};
  EXPECT_NE(error_of([&] { build_index(embedder, docs, o); }).find("do not fit the embedding model"), std::string::npos);
  fs::remove_all(root);
}

// The index records the pooling that made its vectors ("pooling" in its metadata); a query
// embedded another way (an index built with --pooling-type mean, queried without it) is refused
// by name instead of ranked by vectors that are not comparable. A query may fill the embedding
// model's whole context, as any pooling request may (one token less was refused).
TEST(RagPipeline, TheIndexRecordsItsPoolingAndAQueryMayFillTheContext) {
  TLLM_REQUIRE_TINY_MODEL(dir);
  const fs::path root = fs::temp_directory_path() / ("tllm_test_rag_pool_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  std::ofstream(root / "b.md") << "Mix flour, water and salt. Knead the dough for ten minutes.\n"
                                  "Let it rise for two hours, then bake it in a hot oven.\n";
  const auto engine = [&](const std::string& pooling) {
    EngineConfig c;
    c.model_dir = dir;
    c.threads = 2;
    c.kv_cache_memory = 16u << 20;
    c.max_model_len = 48;
    c.runner = "pooling";
    c.pooling_type = pooling;
    return std::make_unique<LLMEngine>(c);
  };
  auto mean = engine("mean"), last = engine("auto");
  IndexOptions o;
  o.chunk = {16, 0};
  const VectorIndex index = build_index(*mean, {(root / "b.md").string()}, o);
  EXPECT_EQ(index.meta()["pooling"], "mean");
  EXPECT_EQ(build_index(*last, {(root / "b.md").string()}, o).meta()["pooling"], "last");
  const std::string text = index.entry(0).text;
  const auto hits = retrieve(*mean, index, text, 1);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].id, 0u);
  EXPECT_NEAR(hits[0].score, 1.0f, 1e-4f);
  EXPECT_EQ(error_of([&] { retrieve(*last, index, text, 1); }),
            "the index was built with mean pooling but this embedding model pools last: query with --pooling-type mean");
  // An index without the record (written before it was kept) is taken as it is.
  VectorIndex old(index.dim(), {{"model", "m"}});
  old.add(std::vector<float>(static_cast<size_t>(index.dim()), 1.0f), {"x", 0, 1, "x"});
  EXPECT_EQ(retrieve(*last, old, text, 1).size(), 1u);
  // A query of exactly max_model_len (48) tokens, then one of 49.
  std::string q = text;
  const Tokenizer& tok = *mean->tokenizer();
  while (tok.encode(q, true).size() < 48) q += " dough";
  while (tok.encode(q, true).size() > 48) q.pop_back();
  ASSERT_EQ(tok.encode(q, true).size(), 48u);
  EXPECT_EQ(error_of([&] { retrieve(*mean, index, q, 1); }), "no error");
  q += " dough";
  ASSERT_GT(tok.encode(q, true).size(), 48u);
  EXPECT_NE(error_of([&] { retrieve(*mean, index, q, 1); }).find("do not fit the embedding model's 48-token context"),
            std::string::npos);
  // An empty query is said to be one (it reached the engine as "request gen-0-0: the prompt is empty").
  EXPECT_EQ(error_of([&] { retrieve(*mean, index, "", 1); }), "the query is empty: there is nothing to search for");
  fs::remove_all(root);
}

}  // namespace
}  // namespace tllm
