#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoders.h"
#include "io/json.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processors.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/scratch.h"
#include "tokenizer/unicode.h"

namespace tllm {

using tok::json;

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  bool byte_mode = false;  // the model maps raw bytes to byte-level characters itself

  std::vector<tok::AddedToken> added;              // in file order
  std::unordered_map<int32_t, size_t> added_by_id;  // id -> index in added
  tok::StringIdMap added_by_content;
  tok::StringIdMap special_contents;
  tok::AddedTokenMatcher raw_matcher;   // normalized == false
  tok::AddedTokenMatcher norm_matcher;  // normalized == true, matched on normalized text
  int32_t vocab_size = 0;
  size_t max_input_bytes = 0;  // Tokenizer::max_input_bytes_per_token

  std::string bos, eos, pad;

  std::optional<int32_t> find_id(std::string_view piece) const {
    int32_t id = added_by_content.find(piece);
    if (id >= 0) return id;
    id = model->token_to_id(piece);
    if (id >= 0) return id;
    return std::nullopt;
  }

  void encode_text(std::string_view run, bool at_origin, std::vector<int32_t>& ids) const;
  void encode_normalized(std::string_view text, bool at_origin, std::vector<int32_t>& ids) const;
  size_t input_bytes_bound(const std::vector<std::string>& normalized_patterns) const;
};

namespace {

// tokenizer_config.json stores special tokens as "text" or {"content": "text", ...}.
std::string config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  TOK_FAIL("tokenizer_config.json: ", key, " must be a string or an object with \"content\", got ",
           it->dump());
}

}  // namespace

void Tokenizer::Impl::encode_normalized(std::string_view text, bool at_origin, std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  if (!pre_tokenizer) {
    model->tokenize(text, byte_mode, ids);
    return;
  }
  thread_local std::vector<tok::Piece> pieces;
  thread_local tok::PieceArena arena;
  pieces.clear();
  pieces.push_back({text, at_origin});
  pre_tokenizer->apply(pieces, arena);
  for (const tok::Piece& p : pieces) model->tokenize(p.text, byte_mode, ids);
  pieces.clear();
  tok::trim_scratch(pieces);
  if (arena.size() > 1024) tok::PieceArena().swap(arena);  // deque::clear may keep its block map
  arena.clear();
}

// One run of raw text between added tokens: normalize, cut out normalized added tokens,
// pre-tokenize and encode the rest.
void Tokenizer::Impl::encode_text(std::string_view run, bool at_origin, std::vector<int32_t>& ids) const {
  std::string_view text = run;
  std::string normalized;
  if (normalizer) {
    normalized.assign(run);
    bool dropped_leading = false;
    normalizer->apply(normalized, &dropped_leading);
    if (dropped_leading) at_origin = false;
    text = normalized;
  }
  if (norm_matcher.empty()) {
    encode_normalized(text, at_origin, ids);
    return;
  }
  std::vector<tok::TextSplit> splits;
  norm_matcher.split(text, splits);
  for (const tok::TextSplit& s : splits) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      encode_normalized(text.substr(s.b, s.e - s.b), at_origin && s.b == 0, ids);
    }
  }
}

// Tokenizer::max_input_bytes_per_token. A token's vocabulary entry covers at most its own
// bytes of normalized text (byte-level entries: one character per input byte, so their
// character count; other entries their UTF-8 length, which only overcounts a Metaspace
// replacement or a "<0xXX>" fallback); the normalizer's shrink factor turns that into input
// bytes. An unfused unknown token stands for one character (4 bytes at most). Added tokens:
// their contents, and the normalized ones as the matcher takes them (normalized_patterns:
// NFC may lengthen them).
size_t Tokenizer::Impl::input_bytes_bound(const std::vector<std::string>& normalized_patterns) const {
  const int shrink = normalizer ? normalizer->max_shrink() : 1;
  if (shrink <= 0 || (pre_tokenizer && !pre_tokenizer->keeps_all_text()) || model->fuses_unk()) return 0;
  size_t longest = model->has_unk() ? 4 : 1;
  for (int32_t id = 0; id <= model->max_id(); ++id) {
    const std::string* piece = model->id_to_token(id);
    if (!piece) continue;
    size_t n = piece->size();
    if (byte_mode) n = static_cast<size_t>(std::count_if(piece->begin(), piece->end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // characters: one per input byte
    }));
    longest = std::max(longest, n);
  }
  for (const tok::AddedToken& a : added) {
    if (a.lstrip || a.rstrip) return 0;  // takes any run of whitespace beside it
    longest = std::max(longest, a.content.size());
  }
  for (const std::string& p : normalized_patterns) longest = std::max(longest, p.size());
  return longest * static_cast<size_t>(shrink);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& dir) {
  std::string tok_path = dir + "/tokenizer.json";
  std::string cfg_path = dir + "/tokenizer_config.json";
  std::string tok_text = read_file(tok_path);
  std::string cfg_text;
  if (path_present(cfg_path)) cfg_text = read_file(cfg_path);
  try {
    return from_json_text(tok_text, cfg_text);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(std::string(e.what()) + " (in " + dir + ")");
  }
}

std::unique_ptr<Tokenizer> Tokenizer::from_json_text(const std::string& tokenizer_json,
                                                     const std::string& tokenizer_config_json_or_empty) {
  tok::BpeTables tables;
  json j = tok::parse_tokenizer_json(tokenizer_json, &tables);
  TLLM_CHECK_ARG(j.is_object(), "tokenizer.json: top level must be an object, got ", j.type_name());
  auto impl = std::make_unique<Impl>();

  const json& model = tok::field(j, "model", "tokenizer.json top level");
  TLLM_CHECK_ARG(model.is_object(), "tokenizer.json: model must be an object, got ", model.type_name());
  // Old files omit model.type; HF then infers BPE from the presence of merges.
  std::string type = model.contains("type") ? tok::get_string(model, "type", "model")
                                            : (model.contains("merges") ? "BPE" : "");
  TLLM_CHECK_ARG(type == "BPE", "tokenizer.json: model.type '", type,
                 "' is not supported (supported: BPE)");
  impl->model = tok::BpeModel::from_json(model, std::move(tables));

  auto get = [&](const char* key) -> const json& {
    static const json kNull;
    auto it = j.find(key);
    return it == j.end() ? kNull : *it;
  };
  impl->normalizer = tok::make_normalizer(get("normalizer"), "normalizer");
  impl->pre_tokenizer = tok::make_pre_tokenizer(get("pre_tokenizer"), "pre_tokenizer");
  if (impl->pre_tokenizer) impl->byte_mode = tok::take_over_final_byte_level(impl->pre_tokenizer.get());
  impl->post_processor = tok::make_post_processor(get("post_processor"), "post_processor");
  impl->decoder = tok::make_decoder(get("decoder"), "decoder");

  int32_t max_id = impl->model->max_id();
  const json& added = get("added_tokens");
  if (!added.is_null()) {
    TLLM_CHECK_ARG(added.is_array(), "tokenizer.json: added_tokens must be an array");
    for (size_t i = 0; i < added.size(); ++i) {
      const json& a = added[i];
      std::string where = "added_tokens[" + std::to_string(i) + "]";
      tok::AddedToken t;
      t.content = tok::get_string(a, "content", where);
      int64_t id = tok::get_int_or(a, "id", -1, where);
      TLLM_CHECK_ARG(id >= 0 && id < INT32_MAX, "tokenizer.json: ", where, " ('", t.content,
                     "') needs a non-negative integer id");
      t.special = tok::get_bool_or(a, "special", false, where);
      t.lstrip = tok::get_bool_or(a, "lstrip", false, where);
      t.rstrip = tok::get_bool_or(a, "rstrip", false, where);
      t.single_word = tok::get_bool_or(a, "single_word", false, where);
      t.normalized = tok::get_bool_or(a, "normalized", !t.special, where);
      if (t.content.empty()) continue;
      // HF gives a token that is already in the model vocab the vocab's id.
      int32_t vocab_id = impl->model->token_to_id(t.content);
      t.id = vocab_id >= 0 ? vocab_id : static_cast<int32_t>(id);
      if (impl->added_by_content.find(t.content) >= 0) continue;
      impl->added_by_content.set(t.content, t.id);
      if (t.special) impl->special_contents.set(t.content, t.id);
      max_id = std::max(max_id, t.id);
      impl->added_by_id[t.id] = impl->added.size();
      impl->added.push_back(std::move(t));
    }
  }
  // As for model.vocab: ids may leave holes, but not make the id space many times the tokens.
  const int64_t tokens = static_cast<int64_t>(impl->model->vocab_count() + impl->added.size());
  TLLM_CHECK_ARG(max_id < 2 * tokens + 1024, "tokenizer.json: an added token has id ", max_id, ", but there are ",
                 tokens, " tokens (ids must stay below ", 2 * tokens + 1024, ")");
  impl->vocab_size = max_id + 1;

  // Matchers: HF lists special tokens first, then the others, each in file order.
  std::vector<const tok::AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& t : impl->added) {
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        std::string p = t.content;
        if (impl->normalizer) impl->normalizer->apply(p, nullptr);
        norm.push_back(&t);
        norm_pat.push_back(std::move(p));
      } else {
        raw.push_back(&t);
        raw_pat.push_back(t.content);
      }
    }
  }
  impl->max_input_bytes = impl->input_bytes_bound(norm_pat);
  impl->raw_matcher.build(raw, raw_pat);
  impl->norm_matcher.build(norm, norm_pat);

  if (!tokenizer_config_json_or_empty.empty()) {
    json cfg;
    try {
      cfg = json::parse(tokenizer_config_json_or_empty);
    } catch (const json::parse_error& e) {
      TOK_FAIL("tokenizer_config.json: not valid JSON: ", e.what());
    }
    TLLM_CHECK_ARG(cfg.is_object(), "tokenizer_config.json: top level must be an object");
    impl->bos = config_token(cfg, "bos_token");
    impl->eos = config_token(cfg, "eos_token");
    impl->pad = config_token(cfg, "pad_token");
    const std::string cls = tok::get_string_or(cfg, "tokenizer_class", "", "tokenizer_config.json");
    static const char* kLlamaLike[] = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                                       "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"};
    if (std::find(std::begin(kLlamaLike), std::end(kLlamaLike), cls) != std::end(kLlamaLike)) {
      bool add_bos = tok::get_bool_or(cfg, "add_bos_token", true, "tokenizer_config.json");
      bool add_eos = tok::get_bool_or(cfg, "add_eos_token", false, "tokenizer_config.json");
      std::vector<int32_t> prefix, suffix;
      if (add_bos) {
        auto id = impl->find_id(impl->bos);
        TLLM_CHECK_ARG(id, "tokenizer_config.json: add_bos_token is true but bos_token '", impl->bos,
                       "' is not a token");
        prefix.push_back(*id);
      }
      if (add_eos) {
        auto id = impl->find_id(impl->eos);
        TLLM_CHECK_ARG(id, "tokenizer_config.json: add_eos_token is true but eos_token '", impl->eos,
                       "' is not a token");
        suffix.push_back(*id);
      }
      impl->post_processor = tok::make_bos_eos_template(std::move(prefix), std::move(suffix));
    }
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& im = *impl_;
  std::string repaired;
  if (tok::valid_utf8_prefix(text) != text.size()) {
    repaired = tok::utf8_lossy(text);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (im.raw_matcher.empty()) {
    im.encode_text(text, true, ids);
  } else {
    std::vector<tok::TextSplit> splits;
    im.raw_matcher.split(text, splits);
    for (const tok::TextSplit& s : splits) {
      if (s.id >= 0) {
        ids.push_back(s.id);
      } else {
        im.encode_text(text.substr(s.b, s.e - s.b), s.b == 0, ids);
      }
    }
  }
  if (add_special_tokens && im.post_processor) im.post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto it = im.added_by_id.find(id);
    const std::string* s = nullptr;
    if (it != im.added_by_id.end()) {
      s = &im.added[it->second].content;
    } else {
      s = im.model->id_to_token(id);
    }
    if (!s) continue;
    if (skip_special_tokens && im.special_contents.find(*s) >= 0) continue;
    tokens.push_back(*s);
  }
  if (im.decoder) {
    im.decoder->decode_chain(tokens);
    std::string out;
    for (const auto& t : tokens) out += t;
    return out;
  }
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (i) out += ' ';
    out += tokens[i];
  }
  return out;
}

std::string Tokenizer::id_to_piece(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  if (it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  const std::string* s = impl_->model->id_to_token(id);
  TLLM_CHECK_ARG(s, "tokenizer: id ", id, " is not in the vocabulary (vocab_size ", impl_->vocab_size, ")");
  return *s;
}

std::optional<int32_t> Tokenizer::piece_to_id(std::string_view piece) const { return impl_->find_id(piece); }

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
size_t Tokenizer::max_input_bytes_per_token() const { return impl_->max_input_bytes; }

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::optional<int32_t> Tokenizer::bos_token_id() const {
  return impl_->bos.empty() ? std::nullopt : impl_->find_id(impl_->bos);
}
std::optional<int32_t> Tokenizer::eos_token_id() const {
  return impl_->eos.empty() ? std::nullopt : impl_->find_id(impl_->eos);
}
std::optional<int32_t> Tokenizer::pad_token_id() const {
  return impl_->pad.empty() ? std::nullopt : impl_->find_id(impl_->pad);
}
std::string Tokenizer::bos_token() const { return impl_->bos; }
std::string Tokenizer::eos_token() const { return impl_->eos; }

// ---------------------------------------------------------------------------------------

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_(skip_special_tokens), bytes_of_(tok) {}

namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

}  // namespace

std::string IncrementalDetokenizer::decode_window(size_t begin, size_t end) const {
  return tok_.decode(std::span<const int32_t>(ids_.data() + begin, end - begin), skip_special_);
}

// decode(window) normally starts with prefix_text_ (the text of the window's emitted ids). It
// does not when decoding is not monotonic: ByteFallback turns a whole run of byte tokens into
// U+FFFD while the run is not valid UTF-8 (an emitted "\n" from <0x0A> included; for good once
// a byte can no longer be completed), and BPEDecoder writes the end-of-word suffix of the last
// token differently. Emitted text cannot be taken back, so the window restarts one id before
// the unemitted ids, else at them (as vLLM resets its decode stream), instead of holding
// everything that follows forever. Returns the text of the window, which then starts with
// prefix_text_.
std::string IncrementalDetokenizer::rewindow(std::string text) {
  while (text.compare(0, prefix_text_.size(), prefix_text_) != 0) {
    prefix_offset_ = prefix_offset_ + 1 < read_offset_ ? read_offset_ - 1 : read_offset_;
    prefix_text_ = decode_window(prefix_offset_, read_offset_);
    text = decode_window(prefix_offset_, ids_.size());
  }
  return text;
}

// True when the bytes of the window end in a character cut short (a lead byte and fewer
// continuation bytes than it announces), which a later id may complete. A text that ends in
// U+FFFD otherwise ends in a real U+FFFD or in bytes that no id can mend: final. (Holding every
// text that ends in U+FFFD, as vLLM does, re-decodes an ever longer window while the model
// writes U+FFFD, quadratic, with nothing streamed.) The last 3 bytes decide; token_bytes gives
// the raw bytes of byte-level and byte-fallback pieces.
bool IncrementalDetokenizer::ends_incomplete() const {
  std::string tail;
  for (size_t k = ids_.size(); k > prefix_offset_ && tail.size() < 3;) {
    const int32_t id = ids_[--k];
    if (skip_special_ && tok_.is_special(id)) continue;
    tail.insert(0, bytes_of_(id));
  }
  const size_t n = tail.size();
  for (size_t i = n > 3 ? n - 3 : 0; i < n; ++i) {
    tok::Utf8Lead lead;
    if (!tok::utf8_lead(static_cast<unsigned char>(tail[i]), lead)) continue;
    if (n - i > static_cast<size_t>(lead.continuation)) continue;  // complete (or broken) already
    bool prefix_ok = true;
    for (size_t j = i + 1; j < n; ++j) {
      const auto c = static_cast<unsigned char>(tail[j]);
      const unsigned char lo = j == i + 1 ? lead.lo : 0x80, hi = j == i + 1 ? lead.hi : 0xBF;
      prefix_ok = prefix_ok && c >= lo && c <= hi;
    }
    if (prefix_ok) return true;
  }
  return false;
}

void IncrementalDetokenizer::prime(std::span<const int32_t> context) {
  TLLM_CHECK(ids_.empty(), "IncrementalDetokenizer::prime: the stream has begun");
  if (context.empty()) return;
  std::string text = tok_.decode(context, skip_special_);
  if (ends_with_replacement(text)) return;
  ids_.assign(context.begin(), context.end());
  prefix_offset_ = 0;
  read_offset_ = ids_.size();
  prefix_text_ = std::move(text);
}

std::string IncrementalDetokenizer::push(int32_t id) {
  ids_.push_back(id);
  std::string text = decode_window(prefix_offset_, ids_.size());
  // With ByteFallback the whole run of byte tokens reads as U+FFFD while a character is cut
  // short, emitted bytes included: hold it all then.
  if (ends_with_replacement(text) && ends_incomplete()) return "";
  text = rewindow(std::move(text));
  if (text.size() <= prefix_text_.size()) return "";  // nothing new yet
  return advance(ids_.size(), text);
}

// Emits text (the decode of ids[prefix_offset_, end)) beyond prefix_text_ and moves the window.
std::string IncrementalDetokenizer::advance(size_t end, const std::string& text) {
  std::string delta = text.substr(prefix_text_.size());
  prefix_offset_ = read_offset_;
  read_offset_ = end;
  prefix_text_ = decode_window(prefix_offset_, read_offset_);
  // Keep the id buffer short: what lies before the window is never decoded again.
  if (prefix_offset_ > 4096) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return delta;
}

std::string IncrementalDetokenizer::flush() {
  std::string text = rewindow(decode_window(prefix_offset_, ids_.size()));
  std::string delta = text.substr(prefix_text_.size());
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  prefix_text_.clear();
  return delta;
}

}  // namespace tllm
