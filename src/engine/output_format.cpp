#include "engine/output_format.h"

#include <algorithm>

#include "engine/json_schema.h"
#include "engine/regex.h"
#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace {

// A piece that takes no text: nothing in it, or a regular expression or grammar that matches
// only "".
bool empty_piece(const OutputPiece& p) {
  if (p.regex) return p.regex->finished(p.regex->start());
  if (p.grammar) return p.grammar->start().finished();
  if (p.either)
    return std::all_of(p.either->begin(), p.either->end(), [](const std::vector<OutputPiece>& f) {
      return std::all_of(f.begin(), f.end(), empty_piece);
    });
  return !p.json && p.one_of.empty() && p.literal.empty() && p.until.empty();
}

// A piece that may take no text, so that the output may end before it: empty, a choice with
// "", a regex or grammar whose start may end, free text that may end anywhere, a choice of
// formats one of which may take none.
bool nullable_piece(const OutputPiece& p) {
  if (p.regex) return p.regex->accepting(p.regex->start());
  if (p.grammar) return p.grammar->start().complete();
  if (p.json) return false;
  if (p.either)
    return std::any_of(p.either->begin(), p.either->end(), [](const std::vector<OutputPiece>& f) {
      return std::all_of(f.begin(), f.end(), nullable_piece);
    });
  if (!p.until.empty()) return !p.once;
  if (!p.one_of.empty()) return std::find(p.one_of.begin(), p.one_of.end(), "") != p.one_of.end();
  return p.literal.empty();
}

// What a format is, for FormatPrefix::key (equal texts: equal formats).
void describe(const std::vector<OutputPiece>& pieces, std::string& k) {
  for (const OutputPiece& p : pieces) {
    k += p.regex ? 'R' : p.grammar ? 'G' : p.json ? 'J' : p.either ? 'E' : !p.until.empty() ? 'U' : p.one_of.empty() ? 'L' : 'A';
    if (p.json) k += p.json->fingerprint();
    if (p.regex) k += p.regex->pattern();
    if (p.grammar) k += p.grammar->source();
    k += p.literal;
    k += p.until;
    if (p.once) k += '1';
    for (const std::string& o : p.one_of) (k += o).push_back('\1');
    if (p.either) {
      k += p.repeat ? "*(" : "(";
      for (const std::vector<OutputPiece>& f : *p.either) {
        describe(f, k);
        k.push_back('\2');
      }
      k.push_back(')');
    }
    k.push_back('\0');
  }
}

// The longest prefix of `trigger` that ends `text` (a KMP step, done plainly: triggers are short).
size_t trigger_match(const std::string& trigger, const std::string& text) {
  for (size_t k = std::min(trigger.size(), text.size()); k > 0; --k)
    if (text.compare(text.size() - k, k, trigger, 0, k) == 0) return k;
  return 0;
}

}  // namespace

OutputPiece OutputPiece::object() { return value(JsonSchema::any_object()); }

FormatPrefix::FormatPrefix(const std::vector<OutputPiece>* pieces) : pieces_(pieces) { skip_empty_pieces(); }

void FormatPrefix::skip_empty_pieces() {
  while (piece_ < pieces_->size() && empty_piece((*pieces_)[piece_])) ++piece_;
  json_.reset();
  if (piece_ < pieces_->size() && (*pieces_)[piece_].json) json_.emplace((*pieces_)[piece_].json.get());
  if (piece_ < pieces_->size() && (*pieces_)[piece_].regex) re_ = (*pieces_)[piece_].regex->start();
  grammar_.reset();
  if (piece_ < pieces_->size() && (*pieces_)[piece_].grammar) grammar_ = (*pieces_)[piece_].grammar->start();
  branches_.clear();
  if (piece_ < pieces_->size() && (*pieces_)[piece_].either)
    for (const std::vector<OutputPiece>& f : *(*pieces_)[piece_].either) branches_.emplace_back(&f);
}

void FormatPrefix::next_piece() {
  ++piece_;
  if (piece_ == pieces_->size() && repeats()) piece_ = 0;
  pos_ = 0;
  got_.clear();
  re_ = 0;
  skip_empty_pieces();
}

bool FormatPrefix::piece_may_end() const {
  const OutputPiece& p = (*pieces_)[piece_];
  if (p.regex) return p.regex->accepting(re_);
  if (grammar_) return grammar_->complete();
  if (json_) return json_->complete();
  if (p.either) return std::any_of(branches_.begin(), branches_.end(), [](const FormatPrefix& b) { return b.complete(); });
  return std::find(p.one_of.begin(), p.one_of.end(), got_) != p.one_of.end();
}

bool FormatPrefix::repeats() const {
  return !pieces_->empty() && !(*pieces_)[0].until.empty() && !(*pieces_)[0].once;
}

// The filter's shortcuts (in_free_text, grammar_loops, in_plain_string) hold for a choice only
// where one format is live and no other can start (not repeated): then every byte steps that
// format alone, as the shortcut assumes. Where several are live, one's shortcut would take
// tokens another refuses, or a format the cap (kMaxBranches) drops; the filter walks instead.
const FormatPrefix* FormatPrefix::only_branch() const {
  if (piece_ == pieces_->size() || !(*pieces_)[piece_].either || (*pieces_)[piece_].repeat || branches_.size() != 1)
    return nullptr;
  return &branches_[0];
}

bool FormatPrefix::in_free_text(unsigned char* first) const {
  if (const FormatPrefix* b = only_branch()) return b->in_free_text(first);
  if (piece_ == pieces_->size() || (*pieces_)[piece_].until.empty() || pos_ != 0) return false;
  *first = static_cast<unsigned char>((*pieces_)[piece_].until[0]);
  return true;
}

bool FormatPrefix::grammar_loops(CodePointRanges& out) const {
  if (const FormatPrefix* b = only_branch()) return b->grammar_loops(out);
  return grammar_ && grammar_->loops(out);
}

bool FormatPrefix::complete() const {
  if (piece_ == pieces_->size()) return true;
  // Free text may end anywhere, except where its trigger must come (once).
  if (!(*pieces_)[piece_].until.empty() && !(*pieces_)[piece_].once) return true;
  for (size_t i = piece_ + 1; i < pieces_->size(); ++i)
    if (!nullable_piece((*pieces_)[i])) return false;
  // A number, or a choice that a longer one extends, may end here or go on.
  return piece_may_end();
}

bool FormatPrefix::step(unsigned char c) {
  if (piece_ == pieces_->size()) return false;
  const OutputPiece& p = (*pieces_)[piece_];
  if (!p.until.empty()) {
    std::string seen = p.until.substr(0, pos_);
    seen.push_back(static_cast<char>(c));
    pos_ = trigger_match(p.until, seen);
    if (pos_ == p.until.size()) next_piece();
    return true;
  }
  if (p.regex) {
    if (const int n = p.regex->next(re_, c); n != Regex::kDead) {
      re_ = n;
      if (p.regex->finished(n)) next_piece();
      return true;
    }
  } else if (grammar_) {
    if (grammar_->feed(c)) {
      if (grammar_->finished()) next_piece();
      return true;
    }
  } else if (p.json) {
    if (json_->feed(c)) {
      if (json_->closed()) next_piece();
      return true;
    }
  } else if (p.either) {
    bool could_end = false;  // as piece_may_end() before c (the branches may have changed)
    if (step_branches(p, c, &could_end)) return true;
    if (!could_end) return false;
    next_piece();
    return step(c);
  } else if (!p.one_of.empty()) {
    got_.push_back(static_cast<char>(c));
    bool exact = false, longer = false;
    for (const std::string& o : p.one_of) {
      if (o == got_) {
        exact = true;
      } else if (o.size() > got_.size() && o.compare(0, got_.size(), got_) == 0) {
        longer = true;
      }
    }
    if (exact && !longer) {
      next_piece();
      return true;
    }
    if (exact || longer) return true;
    got_.pop_back();
  } else {
    if (c != static_cast<unsigned char>(p.literal[pos_])) return false;
    if (++pos_ == p.literal.size()) next_piece();
    return true;
  }
  // A piece that may end here and cannot take c (a number, a choice): c begins the next one.
  if (!piece_may_end()) return false;
  next_piece();
  return step(c);
}

// Every live format that takes c goes on; with `repeat`, a format that has ended may also be
// followed by a new one that c begins. A format that takes c keeps the choice open even where
// the choice could end and c begin the next piece (choices end their formats). On false the
// branches are unspecified; *could_end says whether one had ended before c.
bool FormatPrefix::step_branches(const OutputPiece& p, unsigned char c, bool* could_end) {
  if (branches_.size() == 1 && !p.repeat) {
    // One live format, most of a choice's life: stepped in place (the filter copies a state
    // per trie node; a copy per step of the branch as well doubled the cost).
    *could_end = branches_[0].complete();
    return branches_[0].step(c);
  }
  // Formats in the same state are one (a repeated format that restarts beside itself would
  // otherwise double at every byte); past kMaxBranches distinct ones the later are dropped.
  std::vector<FormatPrefix> next;
  std::vector<std::string> keys;
  const auto keep = [&](FormatPrefix&& t) {
    std::string k;
    t.branch_key(p, JsonPrefix::kExactKey, k);
    if (next.size() < kMaxBranches && std::find(keys.begin(), keys.end(), k) == keys.end()) {
      keys.push_back(std::move(k));
      next.push_back(std::move(t));
    }
  };
  bool again = false;
  for (const FormatPrefix& b : branches_) {
    const bool ended = b.complete();
    *could_end |= ended;
    again |= p.repeat && ended;
    FormatPrefix t = b;
    if (t.step(c)) keep(std::move(t));
  }
  if (again)
    for (const std::vector<OutputPiece>& f : *p.either) {
      FormatPrefix t(&f);
      if (t.step(c)) keep(std::move(t));
    }
  if (next.empty()) return false;
  branches_ = std::move(next);
  return true;
}

bool FormatPrefix::in_plain_string(uint32_t* room) const {
  if (const FormatPrefix* b = only_branch()) return b->in_plain_string(room);
  return json_ && json_->in_plain_string(room);
}

bool FormatPrefix::feed(std::string_view s) {
  for (char c : s)
    if (!step(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string FormatPrefix::key(uint32_t horizon) const {
  std::string k;
  describe(*pieces_, k);
  state_key(horizon, k);
  return k;
}

void FormatPrefix::state_key(uint32_t horizon, std::string& k) const {
  k += std::to_string(piece_) + ':' + std::to_string(pos_) + ':' + std::to_string(re_) + ':' + got_ + '\0';
  if (json_) k += json_->key(horizon);
  if (grammar_) k += grammar_->key();
  for (const FormatPrefix& b : branches_) b.branch_key((*pieces_)[piece_], horizon, k);
}

void FormatPrefix::branch_key(const OutputPiece& choice, uint32_t horizon, std::string& k) const {
  k += '[' + std::to_string(pieces_ - choice.either->data()) + ':';  // which of the choice's formats
  state_key(horizon, k);
  k += ']';
}

namespace {

// Whole UTF-8 characters without '"', '\\' or control bytes: how many (0: not such text).
uint32_t plain_chars(const std::string& b) {
  if (tok::valid_utf8_prefix(b) != b.size()) return 0;
  uint32_t chars = 0;
  for (unsigned char c : b) {
    if (c < 0x20 || c == '"' || c == '\\') return 0;
    chars += (c & 0xC0) != 0x80;
  }
  return chars;
}

}  // namespace

OutputFilter::OutputFilter(const Tokenizer& tokenizer, int vocab_size)
    : bytes_(static_cast<size_t>(vocab_size)),
      never_(static_cast<size_t>(vocab_size), 1),
      plain_(static_cast<size_t>(vocab_size), 0) {
  const int known = std::min(vocab_size, static_cast<int>(tokenizer.vocab_size()));
  const TokenBytes bytes_of(tokenizer);
  for (int32_t id = 0; id < known; ++id) {
    if (tokenizer.is_special(id)) continue;
    std::string& b = bytes_[static_cast<size_t>(id)];
    b = bytes_of(id);
    if (b.empty()) continue;
    never_[static_cast<size_t>(id)] = 0;
    plain_[static_cast<size_t>(id)] = plain_chars(b);
    longest_ = std::max(longest_, static_cast<uint32_t>(b.size()));
    sorted_.push_back(id);
  }
  // std::string orders bytes as unsigned char (char_traits<char>), as walk() groups them.
  std::sort(sorted_.begin(), sorted_.end(),
            [&](int32_t a, int32_t b) { return bytes_[static_cast<size_t>(a)] < bytes_[static_cast<size_t>(b)]; });
  for (int32_t id : sorted_)
    if (!plain_[static_cast<size_t>(id)]) rest_.push_back(id);
}

void OutputFilter::index_code_points() {
  if (!cp_at_.empty()) return;
  cp_at_.reserve(bytes_.size() + 1);
  for (const std::string& b : bytes_) {
    cp_at_.push_back(static_cast<uint32_t>(code_points_.size()));
    if (tok::valid_utf8_prefix(b) != b.size()) continue;
    for (size_t i = 0; i < b.size();) code_points_.push_back(static_cast<uint32_t>(tok::next_cp(b, i)));
  }
  cp_at_.push_back(static_cast<uint32_t>(code_points_.size()));
}

void OutputFilter::walk(const std::vector<int32_t>& sorted, size_t lo, size_t hi, size_t d, const FormatPrefix& s,
                        std::vector<uint8_t>& ok) const {
  size_t i = lo;
  for (; i < hi && bytes_[static_cast<size_t>(sorted[i])].size() == d; ++i) ok[static_cast<size_t>(sorted[i])] = 1;
  while (i < hi) {
    const auto byte_at = [&](int32_t id) { return static_cast<unsigned char>(bytes_[static_cast<size_t>(id)][d]); };
    const unsigned char b = byte_at(sorted[i]);
    const size_t j = static_cast<size_t>(
        std::partition_point(sorted.begin() + static_cast<std::ptrdiff_t>(i), sorted.begin() + static_cast<std::ptrdiff_t>(hi),
                             [&](int32_t id) { return byte_at(id) <= b; }) -
        sorted.begin());
    FormatPrefix next = s;
    const char c = static_cast<char>(b);
    if (next.feed(std::string_view(&c, 1))) walk(sorted, i, j, d + 1, next, ok);
    i = j;
  }
}

bool TokenSet::contains(int32_t id) const { return std::binary_search(ids.begin(), ids.end(), id) == allowed; }

const TokenSet& OutputFilter::next(const FormatPrefix& state) {
  // States that take or refuse every token alike share an answer: a long string's character
  // count, say, matters only within a token's length of its limits.
  const std::string key = state.key(longest_);
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCached) cache_.clear();
  ++computed_;
  std::vector<uint8_t>& ok = ok_;  // reused: a fresh 152k-entry vector per state costs page faults
  ok.assign(bytes_.size(), 0);
  if (unsigned char first = 0; state.in_free_text(&first)) {
    // Text without the trigger's first byte leaves free text as it is; the rest is simulated.
    for (int32_t id : sorted_) {
      const std::string& b = bytes_[static_cast<size_t>(id)];
      if (b.find(static_cast<char>(first)) == std::string::npos) {
        ok[static_cast<size_t>(id)] = 1;
      } else {
        FormatPrefix s = state;
        ok[static_cast<size_t>(id)] = s.feed(b);
      }
    }
  } else if (state.grammar_loops(loops_)) {
    // Tokens of whole characters that each leave the grammar's state as it is are taken;
    // the rest walked as their own trie.
    index_code_points();
    others_.clear();
    for (int32_t id : sorted_) {
      const auto i = static_cast<size_t>(id);
      bool loop = cp_at_[i] < cp_at_[i + 1];
      for (uint32_t k = cp_at_[i]; loop && k < cp_at_[i + 1]; ++k) loop = ranges_contain(loops_, code_points_[k]);
      if (loop) ok[i] = 1;
      else others_.push_back(id);
    }
    walk(others_, 0, others_.size(), 0, state, ok);
  } else if (uint32_t room = 0; state.in_plain_string(&room)) {
    // Plain string text is taken while it fits; the rest (quotes, escapes, pieces of UTF-8
    // characters) walked as their own trie.
    for (int32_t id : sorted_)
      if (const uint32_t chars = plain_[static_cast<size_t>(id)]; chars > 0) ok[static_cast<size_t>(id)] = chars <= room;
    walk(rest_, 0, rest_.size(), 0, state, ok);
  } else {
    walk(sorted_, 0, sorted_.size(), 0, state, ok);
  }
  TokenSet out;
  const size_t n_ok = static_cast<size_t>(std::count(ok.begin(), ok.end(), uint8_t{1}));
  out.allowed = n_ok <= ok.size() / 2;
  out.ids.reserve(out.allowed ? n_ok : ok.size() - n_ok);
  for (size_t id = 0; id < ok.size(); ++id)
    if ((ok[id] != 0) == out.allowed) out.ids.push_back(static_cast<int32_t>(id));
  return cache_.emplace(key, std::move(out)).first->second;
}

}  // namespace tllm
