#include "engine/output_format.h"

#include <algorithm>

#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tllm {

namespace {

bool empty_piece(const OutputPiece& p) { return !p.json_object && p.one_of.empty() && p.literal.empty(); }

}  // namespace

FormatPrefix::FormatPrefix(const std::vector<OutputPiece>* pieces) : pieces_(pieces) { skip_empty_pieces(); }

void FormatPrefix::skip_empty_pieces() {
  while (piece_ < pieces_->size() && empty_piece((*pieces_)[piece_])) ++piece_;
}

void FormatPrefix::next_piece() {
  ++piece_;
  pos_ = 0;
  json_ = JsonPrefix();
  got_.clear();
  skip_empty_pieces();
}

bool FormatPrefix::step(unsigned char c) {
  if (complete()) return false;
  const OutputPiece& p = (*pieces_)[piece_];
  if (p.json_object) {
    const char b = static_cast<char>(c);
    if (!json_.feed(std::string_view(&b, 1))) return false;
    if (json_.complete()) next_piece();
    return true;
  }
  if (!p.one_of.empty()) {
    got_.push_back(static_cast<char>(c));
    bool open = false;
    for (const std::string& o : p.one_of) {
      if (o == got_) {
        next_piece();
        return true;
      }
      open |= o.compare(0, got_.size(), got_) == 0;
    }
    return open;
  }
  if (c != static_cast<unsigned char>(p.literal[pos_])) return false;
  if (++pos_ == p.literal.size()) next_piece();
  return true;
}

bool FormatPrefix::in_plain_string() const {
  return !complete() && (*pieces_)[piece_].json_object && json_.in_plain_string();
}

bool FormatPrefix::feed(std::string_view s) {
  for (char c : s)
    if (!step(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string FormatPrefix::key() const {
  std::string k;
  for (const OutputPiece& p : *pieces_) {
    k += p.json_object ? 'O' : p.one_of.empty() ? 'L' : 'A';
    k += p.literal;
    for (const std::string& o : p.one_of) (k += o).push_back('\1');
    k.push_back('\0');
  }
  k += std::to_string(piece_) + ':' + std::to_string(pos_) + ':' + got_ + '\0';
  if (!complete() && (*pieces_)[piece_].json_object) k += json_.key();
  return k;
}

namespace {

// Whole UTF-8 characters without '"', '\\' or control bytes.
bool plain_text(const std::string& b) {
  if (tok::valid_utf8_prefix(b) != b.size()) return false;
  for (unsigned char c : b)
    if (c < 0x20 || c == '"' || c == '\\') return false;
  return true;
}

}  // namespace

OutputFilter::OutputFilter(const Tokenizer& tokenizer, int vocab_size)
    : bytes_(static_cast<size_t>(vocab_size)),
      never_(static_cast<size_t>(vocab_size), 1),
      plain_(static_cast<size_t>(vocab_size), 0) {
  const int known = std::min(vocab_size, static_cast<int>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < known; ++id) {
    if (tokenizer.is_special(id)) continue;
    std::string& b = bytes_[static_cast<size_t>(id)];
    b = token_bytes(tokenizer, id);
    if (b.empty()) continue;
    never_[static_cast<size_t>(id)] = 0;
    plain_[static_cast<size_t>(id)] = plain_text(b);
    sorted_.push_back(id);
  }
  // std::string orders bytes as unsigned char (char_traits<char>), as walk() groups them.
  std::sort(sorted_.begin(), sorted_.end(),
            [&](int32_t a, int32_t b) { return bytes_[static_cast<size_t>(a)] < bytes_[static_cast<size_t>(b)]; });
}

void OutputFilter::walk(size_t lo, size_t hi, size_t d, const FormatPrefix& s, std::vector<uint8_t>& ok) const {
  size_t i = lo;
  for (; i < hi && bytes_[static_cast<size_t>(sorted_[i])].size() == d; ++i) ok[static_cast<size_t>(sorted_[i])] = 1;
  while (i < hi) {
    const auto byte_at = [&](int32_t id) { return static_cast<unsigned char>(bytes_[static_cast<size_t>(id)][d]); };
    const unsigned char b = byte_at(sorted_[i]);
    const size_t j = static_cast<size_t>(
        std::partition_point(sorted_.begin() + static_cast<std::ptrdiff_t>(i), sorted_.begin() + static_cast<std::ptrdiff_t>(hi),
                             [&](int32_t id) { return byte_at(id) <= b; }) -
        sorted_.begin());
    FormatPrefix next = s;
    const char c = static_cast<char>(b);
    if (next.feed(std::string_view(&c, 1))) walk(i, j, d + 1, next, ok);
    i = j;
  }
}

const std::vector<int32_t>& OutputFilter::banned(const FormatPrefix& state) {
  const std::string key = state.key();
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCached) cache_.clear();
  std::vector<uint8_t>& ok = ok_;  // reused: a fresh 152k-entry vector per state costs page faults
  ok.assign(bytes_.size(), 0);
  if (state.in_plain_string()) {
    for (int32_t id : sorted_) {
      if (plain_[static_cast<size_t>(id)]) {
        ok[static_cast<size_t>(id)] = 1;
      } else {
        FormatPrefix s = state;
        ok[static_cast<size_t>(id)] = s.feed(bytes_[static_cast<size_t>(id)]);
      }
    }
  } else {
    walk(0, sorted_.size(), 0, state, ok);
  }
  std::vector<int32_t> out;
  out.reserve(ok.size() - static_cast<size_t>(std::count(ok.begin(), ok.end(), uint8_t{1})));
  for (size_t id = 0; id < ok.size(); ++id)
    if (!ok[id]) out.push_back(static_cast<int32_t>(id));
  return cache_.emplace(key, std::move(out)).first->second;
}

}  // namespace tllm
