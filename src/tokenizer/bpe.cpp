#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <queue>

#include "tokenizer/byte_level.h"
#include "tokenizer/scratch.h"
#include "tokenizer/unicode.h"

namespace tllm::tok {

bool WordCache::get(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
  if (word.size() > kMaxKeyBytes) return false;
  Shard& sh = shards_[hash % kShards];
  std::unique_lock lock(sh.mu, std::try_to_lock);
  if (!lock.owns_lock()) return false;
  const Slot& s = sh.slots[(hash >> 8) % kSlotsPerShard];
  if (!s.used || s.hash != hash || s.key != word) return false;
  out.insert(out.end(), s.ids.begin(), s.ids.end());
  return true;
}

void WordCache::put(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) const {
  if (word.size() > kMaxKeyBytes) return;
  Shard& sh = shards_[hash % kShards];
  std::unique_lock lock(sh.mu, std::try_to_lock);
  if (!lock.owns_lock()) return;
  Slot& s = sh.slots[(hash >> 8) % kSlotsPerShard];
  s.hash = hash;
  s.key.assign(word);
  s.ids.assign(ids, ids + n);
  s.used = true;
}

namespace {

// SAX handler: forwards every event to nlohmann's DOM builder, except the contents of
// model.vocab (object) and model.merges (array), which it collects into BpeTables.
class TokenizerJsonSax final : public nlohmann::json_sax<json> {
 public:
  TokenizerJsonSax(json& result, BpeTables* tables) : dom_(result, true), tables_(tables) {}

  bool null() override { return capture_ ? bad_value("null") : dom_.null(); }
  bool boolean(bool v) override { return capture_ ? bad_value("a boolean") : dom_.boolean(v); }
  bool number_integer(number_integer_t v) override {
    if (capture_ == Capture::Vocab && depth_ == 0) return vocab_id(v);
    return capture_ ? bad_value("a number") : dom_.number_integer(v);
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (capture_ == Capture::Vocab && depth_ == 0) return vocab_id(static_cast<int64_t>(v));
    return capture_ ? bad_value("a number") : dom_.number_unsigned(v);
  }
  bool number_float(number_float_t v, const string_t& s) override {
    return capture_ ? bad_value("a float") : dom_.number_float(v, s);
  }
  bool binary(binary_t& b) override { return capture_ ? bad_value("binary") : dom_.binary(b); }
  bool string(string_t& v) override {
    if (capture_ == Capture::Merges) {
      if (depth_ == 0) {  // "a b"
        size_t sp = v.find(' ');
        TLLM_CHECK_ARG(sp != std::string::npos && sp > 0 && sp + 1 < v.size(), "tokenizer.json: model.merges[",
                       tables_->merges.size(), "] = '", v, "' is not of the form 'a b'");
        tables_->merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
        return true;
      }
      if (depth_ == 1) {  // ["a", "b"]
        pair_.push_back(std::move(v));
        return true;
      }
    }
    return capture_ ? bad_value("a string") : dom_.string(v);
  }
  bool start_object(std::size_t n) override {
    if (capture_) {
      if (capture_ == Capture::Vocab) return bad_value("an object");
      return bad_value("an object");
    }
    if (at("vocab")) {
      capture_ = Capture::Vocab;
      tables_->has_vocab = true;
      return true;
    }
    frames_.push_back({true, {}});
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    if (capture_ == Capture::Vocab) {
      key_ = std::move(k);
      return true;
    }
    frames_.back().key = k;
    return dom_.key(k);
  }
  bool end_object() override {
    if (capture_ == Capture::Vocab) {
      capture_ = Capture::None;
      return dom_.null();  // placeholder value for model.vocab
    }
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (capture_ == Capture::Merges) {
      if (depth_ != 0) return bad_value("a nested array");
      depth_ = 1;
      pair_.clear();
      return true;
    }
    if (capture_) return bad_value("an array");
    if (at("merges")) {
      capture_ = Capture::Merges;
      tables_->has_merges = true;
      depth_ = 0;
      return true;
    }
    frames_.push_back({false, {}});
    return dom_.start_array(n);
  }
  bool end_array() override {
    if (capture_ == Capture::Merges) {
      if (depth_ == 1) {
        TLLM_CHECK_ARG(pair_.size() == 2, "tokenizer.json: model.merges[", tables_->merges.size(),
                       "] must be [\"a\", \"b\"]");
        tables_->merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
        depth_ = 0;
        return true;
      }
      capture_ = Capture::None;
      return dom_.null();  // placeholder value for model.merges
    }
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t pos, const std::string& last, const nlohmann::detail::exception& e) override {
    TOK_FAIL("tokenizer.json: not valid JSON: ", e.what());
    (void)pos;
    (void)last;
  }

 private:
  enum Capture { None = 0, Vocab, Merges };
  struct Frame {
    bool is_object;
    std::string key;
  };
  // True when the value about to start is model.<name>.
  bool at(const char* name) const {
    return frames_.size() == 2 && frames_[0].is_object && frames_[0].key == "model" && frames_[1].is_object &&
           frames_[1].key == name;
  }
  bool vocab_id(int64_t id) {
    tables_->vocab.emplace_back(std::move(key_), id);
    return true;
  }
  bool bad_value(const char* what) {
    if (capture_ == Capture::Vocab) {
      TOK_FAIL("tokenizer.json: model.vocab['", key_, "'] must be an integer id, got ", what);
    }
    TOK_FAIL("tokenizer.json: model.merges[", tables_->merges.size(), "] must be \"a b\" or [\"a\", \"b\"], got ",
             what);
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  BpeTables* tables_;
  std::vector<Frame> frames_;
  Capture capture_ = Capture::None;
  int depth_ = 0;
  std::string key_;
  std::vector<std::string> pair_;
};

}  // namespace

json parse_tokenizer_json(const std::string& text, BpeTables* tables) {
  json result;
  TokenizerJsonSax sax(result, tables);
  json::sax_parse(text, &sax);
  return result;
}

std::unique_ptr<BpeModel> BpeModel::from_json(const json& j, BpeTables tables) {
  const std::string where = "model";
  std::unique_ptr<BpeModel> m(new BpeModel());
  if (!tables.has_vocab) {
    const json& vocab = field(j, "vocab", where);
    TLLM_CHECK_ARG(vocab.is_object(), "tokenizer.json: model.vocab must be an object of token -> id, got ",
                   vocab.type_name());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      TLLM_CHECK_ARG(it.value().is_number_integer(), "tokenizer.json: model.vocab['", it.key(),
                     "'] must be an integer id");
      tables.vocab.emplace_back(it.key(), it.value().get<int64_t>());
    }
  }
  if (!tables.has_merges) {
    const json& merges = field(j, "merges", where);
    TLLM_CHECK_ARG(merges.is_array(), "tokenizer.json: model.merges must be an array, got ", merges.type_name());
    for (size_t r = 0; r < merges.size(); ++r) {
      const json& e = merges[r];
      if (e.is_string()) {
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        TLLM_CHECK_ARG(sp != std::string::npos && sp > 0 && sp + 1 < s.size(), "tokenizer.json: model.merges[",
                       r, "] = '", s, "' is not of the form 'a b'");
        tables.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        tables.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        TOK_FAIL("tokenizer.json: model.merges[", r, "] must be \"a b\" or [\"a\", \"b\"], got ", e.dump());
      }
    }
  }
  TLLM_CHECK_ARG(!tables.vocab.empty(), "tokenizer.json: model.vocab is empty");
  m->vocab_.reserve(tables.vocab.size());
  int64_t max_id = -1;
  for (const auto& [token, id] : tables.vocab) {
    TLLM_CHECK_ARG(id >= 0 && id < INT32_MAX, "tokenizer.json: model.vocab['", token, "'] has id ", id,
                   " out of range");
    max_id = std::max(max_id, id);
  }
  // The id table has max_id + 1 rows: one stray id of 2^31 - 2 asked for 2^31 strings. Real
  // vocabularies are dense; allow holes, not a table many times the size of the vocabulary.
  const int64_t id_limit = 2 * static_cast<int64_t>(tables.vocab.size()) + 1024;
  if (max_id >= id_limit)
    for (const auto& [token, id] : tables.vocab)
      TLLM_CHECK_ARG(id < id_limit, "tokenizer.json: model.vocab['", token, "'] has id ", id, ", but the vocabulary has ",
                     tables.vocab.size(), " entries (ids must stay below ", id_limit, ")");
  m->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  m->has_id_.assign(static_cast<size_t>(max_id + 1), false);
  for (auto& [token, id64] : tables.vocab) {
    int32_t id = static_cast<int32_t>(id64);
    m->vocab_.set(token, id);
    m->has_id_[id] = true;
    m->id_to_token_[id] = std::move(token);
  }

  // A Python-side dropout is a training-time regularizer; inference ignores it (documented).
  m->fuse_unk_ = get_bool_or(j, "fuse_unk", false, where);
  m->byte_fallback_ = get_bool_or(j, "byte_fallback", false, where);
  m->ignore_merges_ = get_bool_or(j, "ignore_merges", false, where);
  m->prefix_ = get_string_or(j, "continuing_subword_prefix", "", where);
  m->suffix_ = get_string_or(j, "end_of_word_suffix", "", where);
  std::string unk = get_string_or(j, "unk_token", "", where);
  if (!unk.empty()) {
    m->unk_id_ = m->vocab_.find(unk);
    TLLM_CHECK_ARG(m->unk_id_ >= 0, "tokenizer.json: model.unk_token '", unk, "' is not in model.vocab");
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_fallback_ids_[b] = m->vocab_.find(name);
    m->byte_level_ids_[b] = m->vocab_.find(byte_level_table().byte_to_utf8[b]);
  }

  m->merges_.reserve(tables.merges.size());
  std::string merged;
  for (size_t r = 0; r < tables.merges.size(); ++r) {
    const std::string& a = tables.merges[r].first;
    const std::string& b = tables.merges[r].second;
    int32_t ia = m->vocab_.find(a), ib = m->vocab_.find(b);
    TLLM_CHECK_ARG(ia >= 0, "tokenizer.json: model.merges[", r, "]: token '", a, "' is not in model.vocab");
    TLLM_CHECK_ARG(ib >= 0, "tokenizer.json: model.merges[", r, "]: token '", b, "' is not in model.vocab");
    size_t strip = m->prefix_.size();
    TLLM_CHECK_ARG(b.size() >= strip, "tokenizer.json: model.merges[", r, "]: '", b,
                   "' is shorter than continuing_subword_prefix");
    merged.assign(a);
    merged.append(b, strip, std::string::npos);
    int32_t inew = m->vocab_.find(merged);
    TLLM_CHECK_ARG(inew >= 0, "tokenizer.json: model.merges[", r, "]: merged token '", merged,
                   "' is not in model.vocab");
    m->merges_.set(ia, ib, MergeInfo{static_cast<int32_t>(r), inew});
  }
  return m;
}

// Adds the symbol(s) for one character (HF BPE::merge_word): the vocab entry (with the
// continuing-subword prefix / end-of-word suffix), else its <0xXX> bytes, else unk (fused
// with a preceding unk when fuse_unk), else nothing.
void BpeModel::add_unit(std::string_view unit, bool first, bool last, std::vector<int32_t>& syms,
                        int32_t& pending_unk) const {
  thread_local std::string s;
  std::string_view key = unit;
  if ((!first && !prefix_.empty()) || (last && !suffix_.empty())) {
    s.clear();
    if (!first) s += prefix_;
    s += unit;
    if (last) s += suffix_;
    key = s;
  }
  int32_t id = vocab_.find(key);
  if (id >= 0) {
    if (pending_unk >= 0) {
      syms.push_back(pending_unk);
      pending_unk = -1;
    }
    syms.push_back(id);
    return;
  }
  if (byte_fallback_) {
    bool all = true;
    for (unsigned char b : key) all = all && byte_fallback_ids_[b] >= 0;
    if (all) {
      // HF adds these without flushing a pending unk first.
      for (unsigned char b : key) syms.push_back(byte_fallback_ids_[b]);
      return;
    }
  }
  if (unk_id_ >= 0) {
    if (pending_unk >= 0 && !fuse_unk_) syms.push_back(pending_unk);
    pending_unk = unk_id_;
  }
}

void BpeModel::symbols_for(std::string_view word, bool byte_mode, std::vector<int32_t>& syms) const {
  syms.clear();
  if (byte_mode && prefix_.empty() && suffix_.empty()) {
    bool all = true;
    for (unsigned char b : word) {
      int32_t id = byte_level_ids_[b];
      if (id < 0) { all = false; break; }
      syms.push_back(id);
    }
    if (all) return;
    syms.clear();
  }
  int32_t pending_unk = -1;
  if (byte_mode) {
    const auto& table = byte_level_table();
    for (size_t i = 0; i < word.size(); ++i) {
      add_unit(table.byte_to_utf8[static_cast<unsigned char>(word[i])], i == 0, i + 1 == word.size(), syms,
               pending_unk);
    }
  } else {
    size_t i = 0;
    while (i < word.size()) {
      size_t start = i;
      i += utf8_len(static_cast<unsigned char>(word[i]));
      if (i > word.size()) i = word.size();
      add_unit(word.substr(start, i - start), start == 0, i == word.size(), syms, pending_unk);
    }
  }
  if (pending_unk >= 0) syms.push_back(pending_unk);
}

// Lowest rank first, leftmost among equal ranks. Keeps the rank of every adjacent pair and
// updates only the two pairs a merge touches.
void BpeModel::merge(std::vector<int32_t>& syms) const {
  size_t n = syms.size();
  if (n < 2) return;
  if (n > 96) {
    merge_heap(syms);
    return;
  }
  int32_t ranks[96];
  int32_t news[96];
  for (size_t i = 0; i + 1 < n; ++i) {
    MergeInfo mi = merges_.find(syms[i], syms[i + 1]);
    ranks[i] = mi.rank < 0 ? INT32_MAX : mi.rank;
    news[i] = mi.new_id;
  }
  while (n > 1) {
    int32_t best = INT32_MAX;
    size_t pos = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (ranks[i] < best) {
        best = ranks[i];
        pos = i;
      }
    }
    if (best == INT32_MAX) break;
    syms[pos] = news[pos];
    // Remove symbol pos+1 and pair pos+1.
    for (size_t i = pos + 1; i + 1 < n; ++i) syms[i] = syms[i + 1];
    for (size_t i = pos + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      news[i] = news[i + 1];
    }
    --n;
    if (pos > 0) {
      MergeInfo mi = merges_.find(syms[pos - 1], syms[pos]);
      ranks[pos - 1] = mi.rank < 0 ? INT32_MAX : mi.rank;
      news[pos - 1] = mi.new_id;
    }
    if (pos + 1 < n) {
      MergeInfo mi = merges_.find(syms[pos], syms[pos + 1]);
      ranks[pos] = mi.rank < 0 ? INT32_MAX : mi.rank;
      news[pos] = mi.new_id;
    }
  }
  syms.resize(n);
}

// Same order for long words, in O(n log n): symbols in a linked list, candidate pairs in a
// min-heap keyed by (rank, position); entries whose pair changed since are skipped.
void BpeModel::merge_heap(std::vector<int32_t>& syms) const {
  const size_t n = syms.size();
  thread_local std::vector<int32_t> prev, next;
  thread_local std::vector<uint8_t> alive;
  prev.resize(n);
  next.resize(n);
  alive.assign(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = (i + 1 < n) ? static_cast<int32_t>(i + 1) : -1;
  }
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Cand> heap_buf;  // min-heap via std::*_heap with greater<>
  heap_buf.clear();
  auto push = [](Cand c) {
    heap_buf.push_back(c);
    std::push_heap(heap_buf.begin(), heap_buf.end(), std::greater<Cand>());
  };
  for (size_t i = 0; i + 1 < n; ++i) {
    MergeInfo mi = merges_.find(syms[i], syms[i + 1]);
    if (mi.rank >= 0) push({mi.rank, static_cast<int32_t>(i), mi.new_id});
  }
  while (!heap_buf.empty()) {
    std::pop_heap(heap_buf.begin(), heap_buf.end(), std::greater<Cand>());
    Cand c = heap_buf.back();
    heap_buf.pop_back();
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    int32_t r = next[c.pos];
    MergeInfo cur = merges_.find(syms[c.pos], syms[r]);
    if (cur.rank != c.rank || cur.new_id != c.new_id) continue;
    syms[c.pos] = c.new_id;
    alive[r] = 0;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    if (prev[c.pos] >= 0) {
      MergeInfo mi = merges_.find(syms[prev[c.pos]], syms[c.pos]);
      if (mi.rank >= 0) push({mi.rank, prev[c.pos], mi.new_id});
    }
    if (next[c.pos] >= 0) {
      MergeInfo mi = merges_.find(syms[c.pos], syms[next[c.pos]]);
      if (mi.rank >= 0) push({mi.rank, c.pos, mi.new_id});
    }
  }
  size_t k = 0;
  for (size_t i = 0; i < n; ++i) {
    if (alive[i]) syms[k++] = syms[i];
  }
  syms.resize(k);
  trim_scratch(prev);
  trim_scratch(next);
  trim_scratch(alive);
  trim_scratch(heap_buf);
}

void BpeModel::tokenize(std::string_view word, bool byte_mode, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  uint64_t h = hash_bytes(word);
  if (cache_.get(word, h, out)) return;
  if (ignore_merges_) {
    int32_t id = -1;
    if (byte_mode) {
      thread_local std::string mapped;
      mapped.clear();
      const auto& table = byte_level_table();
      for (unsigned char b : word) mapped += table.byte_to_utf8[b];
      id = vocab_.find(mapped);
    } else {
      id = vocab_.find(word);
    }
    if (id >= 0) {
      out.push_back(id);
      cache_.put(word, h, &id, 1);
      return;
    }
  }
  thread_local std::vector<int32_t> syms;
  symbols_for(word, byte_mode, syms);
  merge(syms);
  out.insert(out.end(), syms.begin(), syms.end());
  cache_.put(word, h, syms.data(), syms.size());
  trim_scratch(syms);
}

}  // namespace tllm::tok
