#include "tokenizer/normalizers.h"

#include <utf8proc.h>
#include <vector>

#include "tokenizer/byte_level.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace tllm::tok {

char32_t get_char(const json& obj, const char* key, char32_t fallback, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  TLLM_CHECK_ARG(it->is_string(), "tokenizer.json: ", where, ".", key, " must be a string");
  std::string s = it->get<std::string>();
  TLLM_CHECK_ARG(!s.empty() && valid_utf8_prefix(s) == s.size(), "tokenizer.json: ", where, ".",
                 key, " must be one character, got '", s, "'");
  size_t i = 0;
  char32_t c = next_cp(s, i);
  TLLM_CHECK_ARG(i == s.size(), "tokenizer.json: ", where, ".", key,
                 " must be one character, got '", s, "'");
  return c;
}

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormForm form) : form_(form) {}
  void apply(std::string& s, bool*) const override {
    bool ascii = true;
    for (unsigned char b : s) ascii = ascii && b < 0x80;
    if (ascii || (form_ == NormForm::NFC && is_nfc_fast(s))) return;
    s = normalize_form(s, form_);
  }
  // NFC composes at most 3 bytes into 1: a Hangul L + V + T jamo run (9 bytes) is one
  // syllable (3); Latin / Greek letters with marks and the singletons shrink less.
  int max_shrink() const override { return form_ == NormForm::NFC ? 3 : 0; }

 private:
  NormForm form_;
};

class Lowercase final : public Normalizer {
 public:
  void apply(std::string& s, bool*) const override { s = to_lowercase(s); }
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void apply(std::string& s, bool* dropped_leading) const override {
    size_t b = 0, e = s.size();
    if (left_) {
      while (b < e) {
        size_t j = b;
        if (!is_whitespace(next_cp(s, j))) break;
        b = j;
      }
    }
    if (right_) {
      while (e > b) {
        size_t j = e;
        if (!is_whitespace(prev_cp(s, j))) break;
        e = j;
      }
    }
    if (b > 0 && dropped_leading) *dropped_leading = true;
    s = s.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

// Removes non-spacing marks (Mn), as HF's StripAccents does (meant to follow NFD).
class StripAccents final : public Normalizer {
 public:
  void apply(std::string& s, bool*) const override {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
      size_t start = i;
      char32_t c = next_cp(s, i);
      if (c >= 0x80 && utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_MN) {
        continue;
      }
      out.append(s, start, i - start);
    }
    s = std::move(out);
  }
};

class Replace final : public Normalizer {
 public:
  Replace(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(std::string& s, bool*) const override { s = pattern_.replace_all(s, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : p_(std::move(p)) {}
  void apply(std::string& s, bool*) const override {
    if (!s.empty()) s.insert(0, p_);
  }
  int max_shrink() const override { return 1; }

 private:
  std::string p_;
};

class Append final : public Normalizer {
 public:
  explicit Append(std::string a) : a_(std::move(a)) {}
  void apply(std::string& s, bool*) const override {
    if (!s.empty()) s += a_;
  }
  int max_shrink() const override { return 1; }

 private:
  std::string a_;
};

class ByteLevelNormalizer final : public Normalizer {
 public:
  void apply(std::string& s, bool*) const override {
    const auto& t = byte_level_table();
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char b : s) out += t.byte_to_utf8[b];
    s = std::move(out);
  }
  int max_shrink() const override { return 1; }
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> items)
      : items_(std::move(items)) {}
  void apply(std::string& s, bool* dropped_leading) const override {
    for (const auto& n : items_) n->apply(s, dropped_leading);
  }
  int max_shrink() const override {
    int f = 1;
    for (const auto& n : items_) f *= n->max_shrink();
    return f;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> items_;
};

}  // namespace

Pattern Pattern::read(const json& j, const std::string& where) {
  const json& p = field(j, "pattern", where);
  TLLM_CHECK_ARG(p.is_object() && p.size() == 1 && (p.contains("String") || p.contains("Regex")),
                 "tokenizer.json: ", where, ".pattern must be {\"String\": ...} or {\"Regex\": ...}, got ",
                 p.dump());
  Pattern out;
  if (p.contains("String")) {
    out.literal = get_string(p, "String", where + ".pattern");
  } else {
    out.regex = std::make_unique<Regex>(get_string(p, "Regex", where + ".pattern"), where + ".pattern");
  }
  return out;
}

std::string Pattern::replace_all(std::string_view s, std::string_view content) const {
  if (!regex) return tok::replace_all(s, literal, content);
  std::string out;
  size_t last = 0;
  regex->for_each_match(s, [&](size_t b, size_t e) {
    out.append(s, last, b - last);
    out.append(content);
    last = e;
  });
  out.append(s, last, std::string_view::npos);
  return out;
}

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = get_type(j, where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormForm::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Strip") {
    return std::make_unique<Strip>(get_bool_or(j, "strip_left", true, where),
                                   get_bool_or(j, "strip_right", true, where));
  }
  if (type == "Prepend") return std::make_unique<Prepend>(get_string(j, "prepend", where));
  if (type == "Append") return std::make_unique<Append>(get_string(j, "append", where));
  if (type == "Replace") return std::make_unique<Replace>(Pattern::read(j, where), get_string(j, "content", where));
  if (type == "Sequence") {
    return std::make_unique<SequenceNormalizer>(make_list<Normalizer>(j, "normalizers", where, make_normalizer));
  }
  TOK_FAIL("tokenizer.json: ", where, ": unsupported normalizer type '", type,
                 "' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, "
                 "Prepend, Append, ByteLevel, Sequence)");
}

}  // namespace tllm::tok
