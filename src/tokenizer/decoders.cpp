#include "tokenizer/decoders.h"

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tllm::tok {

namespace {

// Maps every token's characters back to bytes (a token with a character outside the table
// contributes its UTF-8 as is) and decodes all bytes at once, lossily: invalid sequences
// become U+FFFD (Rust String::from_utf8_lossy).
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const auto& table = byte_level_table();
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t mark = bytes.size();
      bool ok = true;
      size_t i = 0;
      while (i < t.size()) {
        char32_t c = next_cp(t, i);
        int b = table.byte_of(c);
        if (b < 0) { ok = false; break; }
        bytes.push_back(static_cast<char>(b));
      }
      if (!ok) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend) : prepend_(prepend) {
    append_utf8(rep_, replacement);
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = replace_all(tokens[i], rep_, (i == 0 && prepend_) ? "" : " ");
    }
  }

 private:
  std::string rep_;
  bool prepend_;
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&]() {
      if (pending.empty()) return;
      if (valid_utf8_prefix(pending) == pending.size()) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<std::pair<size_t, char32_t>> chars;  // (byte offset, code point)
      size_t i = 0;
      while (i < t.size()) {
        size_t at = i;
        chars.push_back({at, next_cp(t, i)});
      }
      size_t start_cut = 0;
      for (size_t k = 0; k < chars.size() && k < start_; ++k) {
        if (chars[k].second != content_) break;
        start_cut = k + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t k = 0; k < std::min(stop_, chars.size() - start_cut); ++k) {
        size_t idx = chars.size() - k - 1;
        if (chars[idx].second != content_) break;
        stop_cut = idx;
      }
      size_t b = start_cut < chars.size() ? chars[start_cut].first : t.size();
      size_t e = stop_cut < chars.size() ? chars[stop_cut].first : t.size();
      t = t.substr(b, e > b ? e - b : 0);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = pattern_.replace_all(t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// HF WordPiece decoder: "##" continuation joins, other tokens get a space; optional clean-up.
class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) t = cleanup(t);
    }
  }
  static std::string cleanup(const std::string& s) {
    static const std::pair<const char*, const char*> kRules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    std::string out = s;
    for (const auto& [from, to] : kRules) out = replace_all(out, from, to);
    return out;
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeDecoder final : public Decoder {
 public:
  explicit BpeDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (suffix_.empty()) continue;
      tokens[i] = replace_all(tokens[i], suffix_, (i + 1 == tokens.size()) ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> items_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = get_type(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    char32_t rep = get_char(j, "replacement", U'\u2581', where);
    bool prepend = true;
    auto it = j.find("prepend_scheme");
    if (it != j.end() && !it->is_null()) {
      prepend = get_string(j, "prepend_scheme", where) != "never";
    } else {
      prepend = get_bool_or(j, "add_prefix_space", true, where);
    }
    return std::make_unique<MetaspaceDecoder>(rep, prepend);
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    int64_t start = get_int_or(j, "start", 0, where), stop = get_int_or(j, "stop", 0, where);
    TLLM_CHECK_ARG(start >= 0 && stop >= 0, "tokenizer.json: ", where, ": start/stop must be >= 0");
    return std::make_unique<StripDecoder>(get_char(j, "content", U' ', where), static_cast<size_t>(start),
                                          static_cast<size_t>(stop));
  }
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(Pattern::read(j, where), get_string(j, "content", where));
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(get_string_or(j, "prefix", "##", where),
                                              get_bool_or(j, "cleanup", true, where));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeDecoder>(get_string_or(j, "suffix", "</w>", where));
  if (type == "Sequence") {
    return std::make_unique<SequenceDecoder>(make_list<Decoder>(j, "decoders", where, make_decoder));
  }
  TOK_FAIL("tokenizer.json: ", where, ": unsupported decoder type '", type,
           "' (supported: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, WordPiece, "
           "BPEDecoder, Sequence)");
}

}  // namespace tllm::tok
