// Normalizers of tokenizer.json ("normalizer" field): NFC/NFD/NFKC/NFKD, Lowercase, Strip,
// StripAccents, Replace, Prepend, Append, ByteLevel, Sequence.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/json_util.h"
#include "tokenizer/regex.h"

namespace tllm::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes s in place. Sets *dropped_leading when characters at the start of s were
  // removed (HF then no longer maps the result to original offset 0, which Metaspace's
  // prepend_scheme "first" looks at).
  virtual void apply(std::string& s, bool* dropped_leading) const = 0;
  // An upper bound on the input bytes behind one byte of apply()'s output, or 0 where none is
  // known (Strip, Replace, Lowercase, the compatibility forms: they may remove or fold text).
  virtual int max_shrink() const { return 0; }
};

// Builds the normalizer described by j (null allowed: returns nullptr). where names the field.
std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where);

// The "pattern" field of Replace and Split: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string literal;          // when regex is null
  std::unique_ptr<Regex> regex;
  static Pattern read(const json& j, const std::string& where);
  // HF NormalizedString::replace: every match (left to right, non-overlapping) becomes content.
  std::string replace_all(std::string_view s, std::string_view content) const;
};

}  // namespace tllm::tok
