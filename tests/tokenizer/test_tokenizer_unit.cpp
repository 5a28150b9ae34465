// Tokenizer behaviour beyond the corpus goldens: invalid UTF-8 in and out, streaming of
// split characters, special-token metadata, and clear errors for malformed tokenizer.json.
// Expected values come from HF `tokenizers` 0.23.2 (noted per test) or the Unicode standard.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/regex.h"
#include "tokenizer/scratch.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace tllm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_asset(const std::string& name) {
  auto dir = test::tokenizer_folder(name, "real");
  if (dir.empty()) return nullptr;
  return Tokenizer::load(dir.string());
}

#define LOAD_OR_SKIP(var, name)                                                              \
  auto var = load_asset(name);                                                               \
  if (!var) GTEST_SKIP() << name << " tokenizer not found; run scripts/fetch_assets.sh"

// Unicode 15 §3.9, Table 3-8: U+FFFD for each maximal subpart of an ill-formed sequence.
TEST(Utf8, LossyFollowsMaximalSubparts) {
  std::string bad = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  EXPECT_EQ(tok::utf8_lossy(bad), "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd");
  EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(tok::utf8_lossy("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");  // > U+10FFFF
  EXPECT_EQ(tok::utf8_lossy("\xC0\xAF"), "\uFFFD\uFFFD");  // overlong
  EXPECT_EQ(tok::utf8_lossy("\xE4\xBD"), "\uFFFD");        // truncated
  EXPECT_EQ(tok::utf8_lossy("ok \xE4\xBD\xA0"), "ok \xE4\xBD\xA0");
}

// Invalid input is encoded as its U+FFFD-repaired form (Python errors="replace").
// HF ids for "a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd".
TEST(InvalidUtf8, EncodeReplacesLikePython) {
  LOAD_OR_SKIP(qwen, "qwen3");
  std::string bad = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  std::vector<int32_t> hf = {64, 57332, 65, 5691, 66, 9973, 67};
  EXPECT_EQ(qwen->encode(bad), hf);
  EXPECT_EQ(qwen->encode("a\uFFFD\uFFFD\uFFFDb\uFFFDc\uFFFD\uFFFDd"), hf);
  LOAD_OR_SKIP(llama, "llama3");
  EXPECT_EQ(llama->encode(bad), (std::vector<int32_t>{64, 58432, 65, 5809, 66, 10178, 67}));
}

// Ids whose bytes are not valid UTF-8 decode as HF's ByteLevel decoder does.
TEST(InvalidUtf8, DecodeByteLevelLikeHF) {
  LOAD_OR_SKIP(qwen, "qwen3");
  auto ids = [&](std::vector<std::string> pieces) {
    std::vector<int32_t> out;
    for (const auto& p : pieces) out.push_back(*qwen->piece_to_id(p));
    return out;
  };
  EXPECT_EQ(qwen->decode(ids({"ä½"})), "\uFFFD");
  EXPECT_EQ(qwen->decode(ids({"ä½", "ł"})), "你");
  EXPECT_EQ(qwen->decode(ids({"a", "ä½", "b"})), "a\uFFFDb");
  EXPECT_EQ(qwen->decode(ids({"ð", "Ł", "ĺ"})), "\uFFFD");
  EXPECT_EQ(qwen->decode(ids({"ÿ"})), "\uFFFD");
  EXPECT_EQ(qwen->decode(ids({"Ģ", "ä", "ł"})), "\uFFFD\uFFFD");
}

TEST(InvalidUtf8, DecodeByteFallbackLikeHF) {
  auto dir = test::tokenizer_data_dir() / "synthetic" / "spm_byte_fallback";
  auto tok = Tokenizer::from_json_text(test::slurp(dir / "tokenizer.json"), "");
  auto ids = [&](std::vector<std::string> pieces) {
    std::vector<int32_t> out;
    for (const auto& p : pieces) out.push_back(*tok->piece_to_id(p));
    return out;
  };
  EXPECT_EQ(tok->decode(ids({"<0xE4>", "<0xBD>"})), "\uFFFD\uFFFD");
  EXPECT_EQ(tok->decode(ids({"<0xE4>", "<0xBD>", "<0xA0>"})), "你");
  EXPECT_EQ(tok->decode(ids({"\u2581a", "<0xE4>", "\u2581b"})), "a\uFFFD b");
}

TEST(IncrementalDetokenizer, HoldsBackSplitCharacters) {
  LOAD_OR_SKIP(qwen, "qwen3");
  IncrementalDetokenizer d(*qwen);
  EXPECT_EQ(d.push(*qwen->piece_to_id("a")), "a");
  EXPECT_EQ(d.push(*qwen->piece_to_id("ä½")), "");
  EXPECT_EQ(d.push(*qwen->piece_to_id("ł")), "你");
  EXPECT_EQ(d.push(*qwen->piece_to_id("ä½")), "");
  // A cut-off character at the end of the stream is flushed as HF decode shows it.
  EXPECT_EQ(d.flush(), "\uFFFD");
  // After flush the stream starts over.
  EXPECT_EQ(d.push(*qwen->piece_to_id("Ġworld")), " world");
}

TEST(IncrementalDetokenizer, LongStreamEqualsDecode) {
  LOAD_OR_SKIP(qwen, "qwen3");
  std::string text;
  for (int i = 0; i < 800; ++i) text += "Token " + std::to_string(i) + " 你好😀 <|im_end|>\n";
  auto ids = qwen->encode(text);
  for (bool skip : {false, true}) {
    IncrementalDetokenizer d(*qwen, skip);
    std::string out;
    for (int32_t id : ids) out += d.push(id);
    out += d.flush();
    EXPECT_EQ(out, qwen->decode(ids, skip));
  }
}

// encode() from several threads at once (shared word cache) gives the single-thread ids.
TEST(Threads, ConcurrentEncodeMatchesSerial) {
  LOAD_OR_SKIP(qwen, "qwen3");
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) {
    texts.push_back("line " + std::to_string(i) + ": the quick brown fox 你好 " + std::string(i % 7, ' ') + "jumps");
  }
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(qwen->encode(t));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w]() {
      for (int rep = 0; rep < 5; ++rep) {
        for (size_t i = 0; i < texts.size(); ++i) {
          size_t k = (i * 7 + static_cast<size_t>(w) * 13 + static_cast<size_t>(rep)) % texts.size();
          if (qwen->encode(texts[k]) != want[k]) ++bad[w];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

// Values from the files' tokenizer_config.json / added_tokens.
TEST(SpecialTokens, FromConfig) {
  LOAD_OR_SKIP(qwen, "qwen3");
  EXPECT_EQ(qwen->vocab_size(), 151669);
  EXPECT_EQ(qwen->eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen->eos_token_id(), 151645);
  EXPECT_EQ(qwen->pad_token_id(), 151643);
  EXPECT_EQ(qwen->bos_token(), "");
  EXPECT_FALSE(qwen->bos_token_id().has_value());
  EXPECT_TRUE(qwen->is_special(151644));
  EXPECT_FALSE(qwen->is_special(151667));  // <think> is an added, non-special token
  EXPECT_FALSE(qwen->is_special(9707));
  EXPECT_EQ(qwen->id_to_piece(151644), "<|im_start|>");
  EXPECT_EQ(qwen->piece_to_id("Ġthe"), 279);
  EXPECT_FALSE(qwen->piece_to_id("no such piece").has_value());
  EXPECT_THROW(qwen->id_to_piece(10'000'000), InvalidArgument);
  LOAD_OR_SKIP(ds, "deepseek_v3");
  EXPECT_EQ(ds->bos_token(), "<\uff5cbegin\u2581of\u2581sentence\uff5c>");
  EXPECT_EQ(ds->bos_token_id(), 0);
  EXPECT_EQ(ds->eos_token_id(), 1);
}

TEST(SpecialTokens, DemoModel) {
  auto dir = test::tokenizer_folder("tiny_qwen2_demo", "demo");
  if (dir.empty()) GTEST_SKIP() << "demo model not found";
  auto tok = Tokenizer::load(dir.string());
  EXPECT_EQ(tok->vocab_size(), 4096);
  EXPECT_EQ(tok->eos_token_id(), 4093);
  EXPECT_EQ(tok->encode("<|im_start|>"), std::vector<int32_t>{4094});
}

// Errors name what is wrong.
std::string error_of(const std::string& tokenizer_json) {
  try {
    Tokenizer::from_json_text(tokenizer_json, "");
  } catch (const InvalidArgument& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no error";
}

json minimal() {
  return json::parse(R"({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
    "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
}

TEST(MalformedTokenizerJson, ErrorsNameTheProblem) {
  EXPECT_EQ(Tokenizer::from_json_text(minimal().dump(), "")->encode("abba"), (std::vector<int32_t>{2, 1, 0}));

  EXPECT_NE(error_of("{\"model\": ").find("not valid JSON"), std::string::npos);

  json j = minimal();
  j["model"]["type"] = "WordPiece";
  std::string e = error_of(j.dump());
  EXPECT_NE(e.find("model.type 'WordPiece' is not supported"), std::string::npos) << e;

  j = minimal();
  j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [{"type": "FancySplit"}]})");
  e = error_of(j.dump());
  EXPECT_NE(e.find("pre_tokenizer.pretokenizers[0]: unsupported pre-tokenizer type 'FancySplit'"), std::string::npos)
      << e;

  j = minimal();
  j["model"].erase("vocab");
  e = error_of(j.dump());
  EXPECT_NE(e.find("model is missing field 'vocab'"), std::string::npos) << e;

  j = minimal();
  j.erase("model");
  e = error_of(j.dump());
  EXPECT_NE(e.find("missing field 'model'"), std::string::npos) << e;

  j = minimal();
  j["normalizer"] = json::parse(R"({"type": "Precompiled", "precompiled_charsmap": ""})");
  e = error_of(j.dump());
  EXPECT_NE(e.find("unsupported normalizer type 'Precompiled'"), std::string::npos) << e;

  j = minimal();
  j["decoder"] = json::parse(R"({"type": "CTC"})");
  e = error_of(j.dump());
  EXPECT_NE(e.find("unsupported decoder type 'CTC'"), std::string::npos) << e;

  j = minimal();
  j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})");
  e = error_of(j.dump());
  EXPECT_NE(e.find("(unclosed"), std::string::npos) << e;
  EXPECT_NE(e.find("does not compile"), std::string::npos) << e;

  j = minimal();
  j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})");
  e = error_of(j.dump());
  EXPECT_NE(e.find("behavior 'Sideways'"), std::string::npos) << e;

  j = minimal();
  j["model"]["merges"] = json::array({"a c"});
  e = error_of(j.dump());
  EXPECT_NE(e.find("model.merges[0]: token 'c' is not in model.vocab"), std::string::npos) << e;

  j = minimal();
  j["model"]["unk_token"] = "<unk>";
  e = error_of(j.dump());
  EXPECT_NE(e.find("unk_token '<unk>' is not in model.vocab"), std::string::npos) << e;

  j = minimal();
  j["model"]["vocab"] = json::object();
  e = error_of(j.dump());
  EXPECT_NE(e.find("model.vocab is empty"), std::string::npos) << e;

  // One stray id used to size the id table (2^31 - 2: std::bad_alloc; 5e7: 1.7 GB).
  j = minimal();
  j["model"]["vocab"]["zz"] = 2147483646;
  e = error_of(j.dump());
  EXPECT_NE(e.find("model.vocab['zz'] has id 2147483646, but the vocabulary has"), std::string::npos) << e;
  j = minimal();
  j["added_tokens"] = json::parse(R"([{"id": 50000000, "content": "<x>", "special": true}])");
  e = error_of(j.dump());
  EXPECT_NE(e.find("an added token has id 50000000"), std::string::npos) << e;

  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer/dir"), InvalidArgument);
}

// Files that are there but wrong: a directory where tokenizer.json or tokenizer_config.json
// should be (an ifstream opens one; its size read -1: std::bad_alloc), a tokenizer_class that
// is not a string (a raw nlohmann type error).
TEST(MalformedTokenizerJson, FilesAndConfigFieldsAreNamed) {
  const fs::path dir = fs::temp_directory_path() / ("tok_files_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "tokenizer.json");
  std::string e;
  try {
    Tokenizer::load(dir.string());
  } catch (const InvalidArgument& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("tokenizer.json: it is a directory"), std::string::npos) << e;
  fs::remove(dir / "tokenizer.json");
  std::ofstream(dir / "tokenizer.json") << minimal().dump();
  fs::create_directories(dir / "tokenizer_config.json");
  e.clear();
  try {
    Tokenizer::load(dir.string());
  } catch (const InvalidArgument& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("tokenizer_config.json: it is a directory"), std::string::npos) << e;
  fs::remove(dir / "tokenizer_config.json");
  e.clear();
  try {
    Tokenizer::from_json_text(minimal().dump(), R"({"tokenizer_class": 7})");
  } catch (const InvalidArgument& x) {
    e = x.what();
  }
  EXPECT_NE(e.find("tokenizer_config.json.tokenizer_class must be a string, got number"), std::string::npos) << e;
  EXPECT_NO_THROW(Tokenizer::from_json_text(minimal().dump(), R"({"tokenizer_class": null})"));
  fs::remove_all(dir);
}

// The pieces of Oniguruma syntax that PCRE2 reads differently are rewritten.
TEST(Regex, OnigurumaClassesTranslated) {
  tok::Regex space("\\s+", "test");
  size_t b = 0, e = 0;
  ASSERT_TRUE(space.find("x\u0085y", 0, &b, &e));  // U+0085 is White_Space for Oniguruma
  EXPECT_EQ(b, 1u);
  EXPECT_EQ(e, 3u);
  tok::Regex not_space("[^\\s]+", "test");
  ASSERT_TRUE(not_space.find("\u0085ab", 0, &b, &e));
  EXPECT_EQ(b, 2u);
  tok::Regex hex("\\h+", "test");
  ASSERT_TRUE(hex.find("xyzBEEFg", 0, &b, &e));
  EXPECT_EQ(std::string("xyzBEEFg").substr(b, e - b), "BEEF");
  tok::Regex contraction("(?i:'s|'t)", "test");
  ASSERT_TRUE(contraction.find("it'S", 0, &b, &e));
  EXPECT_EQ(b, 2u);
}

}  // namespace
}  // namespace tllm

// The tokenizer's thread-local scratch keeps small capacity between calls and frees a buffer
// that one large input grew past 1 MiB (a server's hundreds of worker threads kept ~300 MB
// each after one 20 MB prompt).
TEST(Scratch, TrimFreesOnlyLargeBuffers) {
  std::vector<int32_t> small(1000), large(1 << 20);
  small.clear();
  large.clear();
  tllm::tok::trim_scratch(small);
  tllm::tok::trim_scratch(large);
  EXPECT_GE(small.capacity(), 1000u);
  EXPECT_EQ(large.capacity(), 0u);
}
