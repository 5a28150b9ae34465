// Every golden made by HF `tokenizers` (scripts/goldens/tokenizer_goldens.py, or its Node twin
// that runs the same Rust library): ids with and without special tokens, pieces, decode with
// and without skip_special_tokens, and the incremental detokenizer against full decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace tllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<std::string> golden_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::tokenizer_data_dir())) {
    std::string n = e.path().filename().string();
    if (n.rfind("goldens_", 0) == 0 && e.path().extension() == ".json") out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string show(const std::string& s) { return json(s).dump(); }

std::string show_ids(const std::vector<int32_t>& v) { return json(v).dump(); }

class Goldens : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = json::parse(test::slurp(test::tokenizer_data_dir() / GetParam()));
    name_ = golden_["meta"]["name"].get<std::string>();
    kind_ = golden_["meta"]["kind"].get<std::string>();
    folder_ = test::tokenizer_folder(name_, kind_);
    if (folder_.empty()) {
      GTEST_SKIP() << "tokenizer files for '" << name_ << "' not found; run scripts/fetch_assets.sh";
    }
    tok_ = Tokenizer::from_json_text(test::slurp(folder_ / "tokenizer.json"), "");
  }
  json golden_;
  std::string name_, kind_;
  fs::path folder_;
  std::unique_ptr<Tokenizer> tok_;
};

constexpr int kMaxReports = 8;

TEST_P(Goldens, EncodeMatchesHF) {
  int bad = 0, n = 0;
  for (const json& c : golden_["cases"]) {
    std::string text = c["text"];
    auto want = c["ids"].get<std::vector<int32_t>>();
    auto want_sp = c["ids_special"].get<std::vector<int32_t>>();
    auto got = tok_->encode(text, false);
    auto got_sp = tok_->encode(text, true);
    ++n;
    if (got != want || got_sp != want_sp) {
      if (++bad <= kMaxReports) {
        ADD_FAILURE() << name_ << " text " << show(text) << "\n  want    " << show_ids(want) << "\n  got     "
                      << show_ids(got) << "\n  want_sp " << show_ids(want_sp) << "\n  got_sp  "
                      << show_ids(got_sp);
      }
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << n << " strings encode differently from HF";
}

TEST_P(Goldens, PiecesMatchHF) {
  int bad = 0;
  for (const json& c : golden_["cases"]) {
    if (!c.contains("pieces")) continue;
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto want = c["pieces"].get<std::vector<std::string>>();
    std::vector<std::string> got;
    for (int32_t id : ids) got.push_back(tok_->id_to_piece(id));
    if (got != want && ++bad <= kMaxReports) {
      ADD_FAILURE() << name_ << " text " << show(c["text"]) << " pieces " << json(got).dump() << " want "
                    << json(want).dump();
    }
    for (size_t i = 0; i < ids.size() && i < want.size(); ++i) {
      auto back = tok_->piece_to_id(want[i]);
      if (!back || *back != ids[i]) {
        if (++bad <= kMaxReports) ADD_FAILURE() << name_ << " piece_to_id(" << show(want[i]) << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(Goldens, DecodeMatchesHF) {
  int bad = 0;
  for (const json& c : golden_["cases"]) {
    auto ids = c["ids_special"].get<std::vector<int32_t>>();
    std::string want = c["decode"], want_skip = c["decode_skip"];
    std::string got = tok_->decode(ids, false), got_skip = tok_->decode(ids, true);
    if ((got != want || got_skip != want_skip) && ++bad <= kMaxReports) {
      ADD_FAILURE() << name_ << " text " << show(c["text"]) << "\n  decode      " << show(got) << "\n  want        "
                    << show(want) << "\n  decode_skip " << show(got_skip) << "\n  want        "
                    << show(want_skip);
    }
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(Goldens, IncrementalDetokenizerEqualsDecode) {
  int bad = 0;
  for (const json& c : golden_["cases"]) {
    auto ids = c["ids_special"].get<std::vector<int32_t>>();
    for (bool skip : {false, true}) {
      IncrementalDetokenizer detok(*tok_, skip);
      std::string streamed;
      for (int32_t id : ids) {
        std::string piece = detok.push(id);
        // Every emitted piece is complete UTF-8 on its own.
        size_t i = 0;
        while (i < piece.size()) {
          unsigned char b = static_cast<unsigned char>(piece[i]);
          size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : 4;
          if (i + len > piece.size()) ++bad;
          i += len;
        }
        streamed += piece;
      }
      streamed += detok.flush();
      std::string want = tok_->decode(ids, skip);
      if (streamed != want && ++bad <= kMaxReports) {
        ADD_FAILURE() << name_ << " text " << show(c["text"]) << " skip=" << skip << "\n  streamed " << show(streamed)
                      << "\n  decode   " << show(want);
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

// transformers' AutoTokenizer (present when the Python goldens were made on a machine with
// transformers): Tokenizer::load() applies tokenizer_config.json the same way.
TEST_P(Goldens, EncodeWithConfigMatchesTransformers) {
  if (golden_["cases"].empty() || !golden_["cases"][0].contains("tf_ids_special")) {
    GTEST_SKIP() << "goldens have no transformers fields (made without transformers)";
  }
  const json& meta = golden_["meta"];
  std::string tf_class = meta.value("tf_class", std::string());
  std::string tf_version = meta["transformers"].is_string() ? meta["transformers"].get<std::string>() : "";
  if (tf_class.rfind("Llama", 0) == 0 && !tf_version.empty() && tf_version[0] >= '5') {
    // transformers 5 rebuilds Llama-class tokenizers as SentencePiece-style Metaspace
    // pipelines from the vocab, ignoring tokenizer.json's pre-tokenizer (for DeepSeek-V3 it
    // drops every space); Tokenizer::load() keeps the file's pipeline and the transformers-4
    // add_bos_token rule, checked in BosFromConfig below.
    GTEST_SKIP() << "transformers " << tf_version << " " << tf_class << " does not use tokenizer.json's pipeline";
  }
  auto tok = Tokenizer::load(folder_.string());
  int bad = 0;
  for (const json& c : golden_["cases"]) {
    auto want = c["tf_ids_special"].get<std::vector<int32_t>>();
    auto got = tok->encode(c["text"].get<std::string>(), true);
    if (got != want && ++bad <= kMaxReports) {
      ADD_FAILURE() << name_ << " text " << show(c["text"]) << "\n  want " << show_ids(want) << "\n  got  "
                    << show_ids(got);
    }
  }
  EXPECT_EQ(bad, 0);
}

// tokenizer_config.json with a Llama-family class and add_bos_token: the HF ids with the BOS
// in front (transformers 4 LlamaTokenizerFast.update_post_processor).
TEST_P(Goldens, BosFromConfig) {
  if (!fs::exists(folder_ / "tokenizer_config.json")) GTEST_SKIP() << "no tokenizer_config.json";
  json cfg = json::parse(test::slurp(folder_ / "tokenizer_config.json"));
  std::string cls = cfg.value("tokenizer_class", std::string());
  if (cls != "LlamaTokenizerFast" && cls != "LlamaTokenizer") GTEST_SKIP() << "class " << cls;
  auto tok = Tokenizer::load(folder_.string());
  ASSERT_TRUE(tok->bos_token_id().has_value());
  int bad = 0;
  for (const json& c : golden_["cases"]) {
    auto want = c["ids"].get<std::vector<int32_t>>();
    if (cfg.value("add_bos_token", true)) want.insert(want.begin(), *tok->bos_token_id());
    if (cfg.value("add_eos_token", false)) want.push_back(*tok->eos_token_id());
    auto got = tok->encode(c["text"].get<std::string>(), true);
    if (got != want && ++bad <= kMaxReports) ADD_FAILURE() << name_ << " text " << show(c["text"]);
  }
  EXPECT_EQ(bad, 0);
}

INSTANTIATE_TEST_SUITE_P(HF, Goldens, ::testing::ValuesIn(golden_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param.substr(8, info.param.size() - 8 - 5);
                           for (char& ch : n) {
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace tllm
