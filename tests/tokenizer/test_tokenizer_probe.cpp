// Corners found by probing the tokenizer against HF `tokenizers` 0.23.2: regexes that match the
// empty string, added tokens that are whitespace with lstrip/rstrip, the bytes a token adds
// mid-text for byte-fallback (Llama-2-style) vocabularies, streaming when decoding is not
// monotonic or ends in U+FFFD for a long time, and token ids of the post-processor.
// probe_goldens.json is written by scripts/goldens/tokenizer_probe_goldens.js (HF's own Rust
// library through its Node binding); the other expectations are stated per test.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace tllm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json synthetic(const std::string& name) {
  return json::parse(test::slurp(test::tokenizer_data_dir() / "synthetic" / name / "tokenizer.json"));
}

// The cases of probe_goldens.json: the base tokenizer.json with the case's fields replaced and
// its added tokens appended (ids after the largest one, as the script numbers them).
TEST(ProbeGoldens, EncodeMatchesHF) {
  const json golden = json::parse(test::slurp(test::source_dir() / "tests" / "tokenizer" / "probe_goldens.json"));
  const json base = json::parse(test::slurp(test::source_dir() / golden["meta"]["base"].get<std::string>()));
  ASSERT_GE(golden["cases"].size(), 6u);
  for (const json& c : golden["cases"]) {
    json j = base;
    for (auto it = c["patch"].begin(); it != c["patch"].end(); ++it) j[it.key()] = it.value();
    int64_t next = 0;
    for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it)
      next = std::max(next, it.value().get<int64_t>() + 1);
    for (const json& a : j["added_tokens"]) next = std::max(next, a["id"].get<int64_t>() + 1);
    for (json a : c["added"]) {
      a["id"] = next++;
      j["added_tokens"].push_back(a);
    }
    auto tok = Tokenizer::from_json_text(j.dump(), "");
    for (size_t i = 0; i < c["texts"].size(); ++i) {
      const std::string text = c["texts"][i];
      EXPECT_EQ(tok->encode(text), c["ids"][i].get<std::vector<int32_t>>())
          << c["name"].get<std::string>() << ": " << json(text).dump();
    }
  }
}

// gpt2_bytelevel with two added tokens appended: "\t" (lstrip + rstrip) and "<n>" (lstrip).
std::unique_ptr<Tokenizer> whitespace_strip_tokenizer(int32_t* tab_id) {
  json j = synthetic("gpt2_bytelevel");
  const int32_t tab = 660;  // after the file's largest id, 659
  j["added_tokens"].push_back({{"id", tab}, {"content", "\t"}, {"single_word", false}, {"lstrip", true},
                               {"rstrip", true}, {"normalized", false}, {"special", true}});
  j["added_tokens"].push_back({{"id", tab + 1}, {"content", "<n>"}, {"single_word", false}, {"lstrip", true},
                               {"rstrip", false}, {"normalized", false}, {"special", true}});
  *tab_id = tab;
  return Tokenizer::from_json_text(j.dump(), "");
}

// HF: the first "\t" of " \t \t ..." takes all the whitespace around it (lstrip back to 0,
// rstrip to the end); every later "\t" falls inside it and gives an empty split, which HF
// drops. One token, as probe_goldens.json shows for " \t \t \t". Scanning the rest of the run
// again for every later match made this quadratic (a 160 kB run took 43 s).
TEST(AddedTokens, WhitespaceRunOfStripTokensIsOneTokenInLinearTime) {
  int32_t tab = -1;
  auto tok = whitespace_strip_tokenizer(&tab);
  std::string run;
  for (int i = 0; i < 100000; ++i) run += " \t";
  EXPECT_EQ(tok->encode(run), std::vector<int32_t>{tab});
  EXPECT_EQ(tok->encode("a" + run + "b"), (std::vector<int32_t>{tok->encode("a")[0], tab, tok->encode("b")[0]}));
}

// Tokenizer::max_input_bytes_per_token: no text encodes to fewer than bytes / bound tokens.
// Texts built to need few tokens per byte: long runs of one character (the vocabularies'
// longest entries are runs of spaces, dashes, '='), Hangul jamo that NFC composes three
// characters (9 bytes) into one syllable (3), a letter with combining marks, added tokens
// back to back. Byte-level tokenizers (the real Qwen / Llama-3 / DeepSeek-V3 ones where
// fetched, the demo model's, GPT-2's synthetic one) and Metaspace with an unfused unk token
// get a bound, with no normalizer or NFC; those that may drop or fold text get none.
TEST(InputBytesBound, NoTextEncodesToFewerTokens) {
  std::vector<std::pair<std::string, std::unique_ptr<Tokenizer>>> toks;
  toks.emplace_back("split_contiguous", Tokenizer::from_json_text(synthetic("split_contiguous").dump(), ""));
  // Without their NFKD / NFKC and the added tokens that strip whitespace, then under NFC.
  for (const char* name : {"gpt2_bytelevel", "metaspace_unk"})
    for (const json& norm : {json(nullptr), json{{"type", "NFC"}}}) {
      json j = synthetic(name);
      j["normalizer"] = norm;
      json kept = json::array();
      for (const json& a : j["added_tokens"])
        if (!a["lstrip"].get<bool>() && !a["rstrip"].get<bool>()) kept.push_back(a);
      j["added_tokens"] = kept;
      toks.emplace_back(std::string(name) + (norm.is_null() ? "" : " + NFC"), Tokenizer::from_json_text(j.dump(), ""));
    }
  for (const char* name : {"qwen3", "llama3", "deepseek_v3"}) {
    const fs::path dir = test::tokenizer_folder(name, "real");
    if (!dir.empty()) toks.emplace_back(name, Tokenizer::from_json_text(test::slurp(dir / "tokenizer.json"), ""));
  }
  const fs::path demo = test::tokenizer_folder("demo", "demo");
  if (!demo.empty()) toks.emplace_back("demo", Tokenizer::from_json_text(test::slurp(demo / "tokenizer.json"), ""));
  ASSERT_GE(toks.size(), 5u);
  std::vector<std::string> texts;
  for (const char* unit : {" ", "\n", "-", "=", "a", "\t", "  \n", "\xE3\x80\x80"})
    texts.push_back([&] { std::string t; for (int i = 0; i < 20000; ++i) t += unit; return t; }());
  std::string jamo, marks, added;
  for (int i = 0; i < 3000; ++i) jamo += "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8";  // U+1100 U+1161 U+11A8
  for (int i = 0; i < 3000; ++i) marks += "e\xCC\x81\xCC\xA3";  // e + acute + dot below
  for (int i = 0; i < 2000; ++i) added += "<|im_start|><|endoftext|>";
  texts.push_back(jamo);
  texts.push_back(marks);
  texts.push_back(added);
  for (const auto& [name, tok] : toks) {
    const size_t bound = tok->max_input_bytes_per_token();
    EXPECT_GT(bound, 0u) << name;
    EXPECT_LE(bound, 3u * 1024u) << name;
    if (bound == 0) continue;
    for (const std::string& t : texts) {
      const size_t n = tok->encode(t, false).size();
      EXPECT_GE(n * bound, t.size()) << name << ": " << t.size() << " bytes in " << n << " tokens, bound " << bound
                                     << ", text starting " << json(t.substr(0, 12)).dump();
    }
  }
}

TEST(InputBytesBound, NoneWhereTextMayVanish) {
  // An added token that strips the whitespace beside it (" \t" x 100,000 is one token, above),
  // on a tokenizer that has a bound without it.
  json lstrip = synthetic("gpt2_bytelevel");
  lstrip["normalizer"] = nullptr;
  EXPECT_GT(Tokenizer::from_json_text(lstrip.dump(), "")->max_input_bytes_per_token(), 0u);
  lstrip["added_tokens"].push_back({{"id", 660}, {"content", "<n>"}, {"single_word", false}, {"lstrip", true},
                                    {"rstrip", false}, {"normalized", false}, {"special", true}});
  EXPECT_EQ(Tokenizer::from_json_text(lstrip.dump(), "")->max_input_bytes_per_token(), 0u);
  // Pre-tokenizers that remove text; NFKD / NFKC (gpt2_bytelevel, metaspace_unk as stored);
  // Replace and a fused unk token (spm_byte_fallback).
  for (const char* name : {"whitespace", "whitespace_split", "split_removed", "split_invert_removed", "gpt2_bytelevel",
                           "metaspace_unk", "spm_byte_fallback"})
    EXPECT_EQ(Tokenizer::from_json_text(synthetic(name).dump(), "")->max_input_bytes_per_token(), 0u) << name;
  json strip = synthetic("gpt2_bytelevel");
  strip["normalizer"] = {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}};
  EXPECT_EQ(Tokenizer::from_json_text(strip.dump(), "")->max_input_bytes_per_token(), 0u);
  json nfc = synthetic("gpt2_bytelevel");
  nfc["normalizer"] = nullptr;
  const size_t plain = Tokenizer::from_json_text(nfc.dump(), "")->max_input_bytes_per_token();
  nfc["normalizer"] = {{"type", "NFC"}};
  EXPECT_EQ(Tokenizer::from_json_text(nfc.dump(), "")->max_input_bytes_per_token(), 3 * plain);
}

// Concatenating token_bytes over the ids of a text gives the text: the independent reference
// is the text itself (with the leading space the tokenizer adds: Llama-2's Prepend "▁"
// normalizer, GPT-2's add_prefix_space).
TEST(TokenBytes, ConcatenationOverEncodedTextIsTheText) {
  const std::string text = "The quick brown fox, the lazy dog \xE2\x82\xAC 100 \xE4\xBD\xA0\xE5\xA5\xBD\n!";
  for (const char* name : {"spm_byte_fallback", "gpt2_bytelevel"}) {
    auto tok = Tokenizer::from_json_text(synthetic(name).dump(), "");
    std::string joined;
    for (int32_t id : tok->encode(text)) joined += token_bytes(*tok, id);
    EXPECT_EQ(joined, " " + text) << name;
  }
}

// Llama-2-style vocabulary: "▁x" adds " x" mid-text (its decode alone drops the space at the
// start of a text), "<0xHH>" adds byte HH even where that is no whole character.
TEST(TokenBytes, ByteFallbackVocabulary) {
  auto tok = Tokenizer::from_json_text(synthetic("spm_byte_fallback").dump(), "");
  auto bytes = [&](const char* piece) { return token_bytes(*tok, *tok->piece_to_id(piece)); };
  EXPECT_EQ(bytes("\u2581"), " ");
  EXPECT_EQ(bytes("\u2581the"), " the");
  EXPECT_EQ(bytes("h"), "h");
  EXPECT_EQ(bytes("<0x20>"), " ");
  EXPECT_EQ(bytes("<0x0A>"), "\n");
  EXPECT_EQ(bytes("<0xE4>"), "\xE4");
  EXPECT_EQ(bytes("<0xBD>"), "\xBD");
}

// ByteFallback turns a whole run of byte tokens into one U+FFFD per byte once the run is not
// valid UTF-8, so a "\n" from <0x0A> that was already streamed becomes U+FFFD in decode(all).
// The stream cannot take it back; it must go on with the text after it (it used to emit
// nothing more, ever). Each emitted part is HF's decode of its ids.
TEST(IncrementalDetokenizer, ByteFallbackRunThatTurnsInvalidKeepsStreaming) {
  auto tok = Tokenizer::from_json_text(synthetic("spm_byte_fallback").dump(), "");
  std::vector<int32_t> rest = {*tok->piece_to_id("<0xB0>")};
  for (int32_t id : tok->encode("the quick brown fox jumps over the lazy dog")) rest.push_back(id);
  const int32_t newline = *tok->piece_to_id("<0x0A>");
  IncrementalDetokenizer d(*tok);
  std::string out = d.push(newline);
  EXPECT_EQ(out, "\n");
  for (int32_t id : rest) out += d.push(id);
  out += d.flush();
  EXPECT_EQ(out, "\n" + tok->decode(rest));
  EXPECT_EQ(tok->decode(rest), "\uFFFD the quick brown fox jumps over the lazy dog");
}

// A byte-level vocabulary of the 256 byte characters plus "ï¿½" (U+FFFD's bytes EF BF BD).
std::unique_ptr<Tokenizer> replacement_char_tokenizer() {
  json vocab = json::object();
  int32_t n = 0;
  char32_t next = 256;  // GPT-2's byte -> character table
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    char32_t cp = printable ? static_cast<char32_t>(b) : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[s] = n++;
  }
  vocab["\u00EF\u00BF"] = n++;
  vocab["\u00EF\u00BF\u00BD"] = n++;
  json j = {{"model",
             {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"\u00EF \u00BF", "\u00EF\u00BF \u00BD"}}}},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}}};
  return Tokenizer::from_json_text(j.dump(), "");
}

// The model writing U+FFFD itself, many times: the text ends in U+FFFD after every id, yet no
// character is cut short. The stream used to hold all of it until flush() and re-decode the
// growing window on every id (quadratic); it streams now, holds only what is cut short (the
// three bytes of 你 one by one, the lone lead byte at the end), and still equals decode(all).
TEST(IncrementalDetokenizer, RunOfReplacementCharactersStreams) {
  auto tok = replacement_char_tokenizer();
  const std::vector<int32_t> fffd = tok->encode("\uFFFD");
  ASSERT_EQ(fffd.size(), 1u);
  const std::vector<int32_t> ni = tok->encode("\xE4\xBD\xA0");  // 你 as three byte tokens
  ASSERT_EQ(ni.size(), 3u);
  std::vector<int32_t> ids(3000, fffd[0]);
  ids.insert(ids.end(), ni.begin(), ni.end());
  ids.insert(ids.end(), 20, fffd[0]);
  ids.push_back(ni[0]);  // a cut-off character at the end
  IncrementalDetokenizer d(*tok);
  std::string streamed;
  size_t pushes_with_text = 0;
  for (int32_t id : ids) {
    std::string piece = d.push(id);
    pushes_with_text += !piece.empty();
    streamed += piece;
  }
  EXPECT_EQ(streamed.size(), 3000u * 3 + 3 + 20 * 3);
  EXPECT_EQ(pushes_with_text, 3000u + 1 + 20);
  streamed += d.flush();
  EXPECT_EQ(streamed, tok->decode(ids));
}

// HF reads post-processor ids as u32 and refuses the file otherwise; get<int32_t>() used to wrap
// 2^32 + 5 to 5, another token, without a word.
TEST(MalformedTokenizerJson, PostProcessorIdsMustBeTokenIds) {
  for (const json& bad : {json(4294967301ull), json(-1), json(2147483647)}) {
    json j = synthetic("gpt2_bytelevel");
    j["post_processor"]["special_tokens"]["<|endoftext|>"]["ids"] = {bad};
    try {
      Tokenizer::from_json_text(j.dump(), "");
      ADD_FAILURE() << "accepted id " << bad.dump();
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("is not a token id"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("special_tokens.<|endoftext|>.ids"), std::string::npos) << e.what();
    }
  }
  json j = synthetic("gpt2_bytelevel");
  j["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 4294967296ull}}};
  EXPECT_THROW(Tokenizer::from_json_text(j.dump(), ""), InvalidArgument);
}

// A SentencePiece-style decoder (Llama 2's: Replace ▁, ByteFallback, Fuse, Strip one leading
// space) drops the leading space of the first token it decodes. Primed with the
// end of the prompt, the stream keeps the space of the first generated word (decode(prompt +
// output) minus decode(prompt), as vLLM streams it); unprimed it would read "brown fox".
TEST(IncrementalDetokenizer, PrimedWithThePromptKeepsTheFirstSpace) {
  auto tok = Tokenizer::from_json_text(synthetic("spm_byte_fallback").dump(), "");
  const std::vector<int32_t> prompt = tok->encode("the quick"), all = tok->encode("the quick brown fox");
  ASSERT_GT(all.size(), prompt.size());
  ASSERT_TRUE(std::equal(prompt.begin(), prompt.end(), all.begin()));
  const std::vector<int32_t> out(all.begin() + static_cast<std::ptrdiff_t>(prompt.size()), all.end());
  const std::string want = tok->decode(all).substr(tok->decode(prompt).size());
  EXPECT_EQ(want, " brown fox");
  for (size_t k : {size_t{1}, size_t{2}, prompt.size()}) {
    IncrementalDetokenizer d(*tok);
    d.prime(std::span<const int32_t>(prompt).subspan(prompt.size() - std::min(k, prompt.size())));
    std::string streamed;
    for (int32_t id : out) streamed += d.push(id);
    streamed += d.flush();
    EXPECT_EQ(streamed, want) << k << " context ids";
  }
  IncrementalDetokenizer unprimed(*tok);
  std::string plain;
  for (int32_t id : out) plain += unprimed.push(id);
  plain += unprimed.flush();
  EXPECT_EQ(plain, "brown fox");  // what the first generated token lost
  // A context that ends inside a character is not taken: the stream starts empty.
  auto bl = Tokenizer::from_json_text(synthetic("gpt2_bytelevel").dump(), "");
  const std::vector<int32_t> ni = bl->encode("\xE4\xBD\xA0");
  if (ni.size() >= 2) {
    IncrementalDetokenizer d(*bl);
    d.prime(std::span<const int32_t>(ni).first(1));
    std::string s;
    for (size_t i = 1; i < ni.size(); ++i) s += d.push(ni[i]);
    s += d.flush();
    EXPECT_EQ(s, bl->decode(std::span<const int32_t>(ni).subspan(1)));
  }
}

}  // namespace
}  // namespace tllm
