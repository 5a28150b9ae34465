#include "tokenizer/post_processors.h"

#include <climits>
#include <cstdint>
#include <map>
#include <sstream>

namespace tllm::tok {

namespace {

// A token id of the file: a non-negative integer that fits int32 (HF reads a u32 and refuses
// the file otherwise; get<int32_t>() would wrap 2^32 + 5 to 5, a different token).
int32_t token_id(const json& id, const std::string& where) {
  TLLM_CHECK_ARG(id.is_number_integer(), "tokenizer.json: ", where, " must hold integer token ids, got ", id.dump());
  const bool fits = id.is_number_unsigned() ? id.get<uint64_t>() < static_cast<uint64_t>(INT32_MAX)
                                            : id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX;
  TLLM_CHECK_ARG(fits, "tokenizer.json: ", where, ": ", id.dump(), " is not a token id (0 .. ", INT32_MAX - 1, ")");
  return static_cast<int32_t>(id.get<int64_t>());
}

// Ids before and after the sequence.
class Template final : public PostProcessor {
 public:
  Template(std::vector<int32_t> prefix, std::vector<int32_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }

 private:
  std::vector<int32_t> prefix_, suffix_;
};

class Identity final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : items_) p->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> items_;
};

std::unique_ptr<PostProcessor> make_template(const json& j, const std::string& where) {
  // special_tokens: name -> ids
  std::map<std::string, std::vector<int32_t>> specials;
  auto st = j.find("special_tokens");
  if (st != j.end() && !st->is_null()) {
    TLLM_CHECK_ARG(st->is_object(), "tokenizer.json: ", where, ".special_tokens must be an object");
    for (auto it = st->begin(); it != st->end(); ++it) {
      const json& ids = field(it.value(), "ids", where + ".special_tokens." + it.key());
      TLLM_CHECK_ARG(ids.is_array(), "tokenizer.json: ", where, ".special_tokens.", it.key(),
                     ".ids must be an array");
      std::vector<int32_t> v;
      for (const json& id : ids) v.push_back(token_id(id, where + ".special_tokens." + it.key() + ".ids"));
      specials[it.key()] = std::move(v);
    }
  }
  // single: [{"SpecialToken": {"id": name}} | {"Sequence": {"id": "A"}}] or "name $A name".
  const json& single = field(j, "single", where);
  std::vector<std::pair<bool, std::string>> items;  // (is_sequence, special name)
  if (single.is_string()) {
    std::istringstream in(single.get<std::string>());
    std::string piece;
    while (in >> piece) {
      std::string name = piece.substr(0, piece.rfind(':') == std::string::npos ? piece.size() : piece.rfind(':'));
      if (!name.empty() && name[0] == '$') {
        items.push_back({true, ""});
      } else {
        items.push_back({false, name});
      }
    }
  } else {
    TLLM_CHECK_ARG(single.is_array(), "tokenizer.json: ", where, ".single must be an array or a string");
    for (const json& item : single) {
      if (item.contains("Sequence")) {
        items.push_back({true, ""});
      } else if (item.contains("SpecialToken")) {
        items.push_back({false, get_string(item["SpecialToken"], "id", where + ".single")});
      } else {
        TOK_FAIL("tokenizer.json: ", where, ".single: unknown template piece ", item.dump());
      }
    }
  }
  std::vector<int32_t> prefix, suffix;
  bool seen_sequence = false;
  for (const auto& [is_seq, name] : items) {
    if (is_seq) {
      TLLM_CHECK_ARG(!seen_sequence, "tokenizer.json: ", where, ".single uses the sequence twice");
      seen_sequence = true;
      continue;
    }
    auto it = specials.find(name);
    TLLM_CHECK_ARG(it != specials.end(), "tokenizer.json: ", where, ".single names special token '", name,
                   "' missing from special_tokens");
    auto& dst = seen_sequence ? suffix : prefix;
    dst.insert(dst.end(), it->second.begin(), it->second.end());
  }
  return std::make_unique<Template>(std::move(prefix), std::move(suffix));
}

int32_t token_pair_id(const json& j, const char* key, const std::string& where) {
  const json& p = field(j, key, where);
  TLLM_CHECK_ARG(p.is_array() && p.size() == 2 && p[1].is_number_integer(), "tokenizer.json: ", where, ".",
                 key, " must be [token, id]");
  return token_id(p[1], where + "." + key);
}

}  // namespace

std::unique_ptr<PostProcessor> make_bos_eos_template(std::vector<int32_t> prefix, std::vector<int32_t> suffix) {
  return std::make_unique<Template>(std::move(prefix), std::move(suffix));
}

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  std::string type = get_type(j, where);
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "ByteLevel") return std::make_unique<Identity>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    return std::make_unique<Template>(std::vector<int32_t>{token_pair_id(j, "cls", where)},
                                      std::vector<int32_t>{token_pair_id(j, "sep", where)});
  }
  if (type == "Sequence") {
    return std::make_unique<SequenceProcessor>(make_list<PostProcessor>(j, "processors", where, make_post_processor));
  }
  TOK_FAIL("tokenizer.json: ", where, ": unsupported post-processor type '", type,
           "' (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)");
}

}  // namespace tllm::tok
