#include "engine/output_format.h"

#include <algorithm>

#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

namespace {

bool empty_piece(const OutputPiece& p) { return !p.json_object && p.one_of.empty() && p.literal.empty(); }

}  // namespace

FormatPrefix::FormatPrefix(const std::vector<OutputPiece>* pieces) : pieces_(pieces) {
  while (piece_ < pieces_->size() && empty_piece((*pieces_)[piece_])) ++piece_;
}

void FormatPrefix::next_piece() {
  ++piece_;
  pos_ = 0;
  json_ = JsonPrefix();
  got_.clear();
  while (piece_ < pieces_->size() && empty_piece((*pieces_)[piece_])) ++piece_;
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

OutputFilter::OutputFilter(const Tokenizer& tokenizer, int vocab_size)
    : bytes_(static_cast<size_t>(vocab_size)), never_(static_cast<size_t>(vocab_size), 1) {
  const int known = std::min(vocab_size, static_cast<int>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < known; ++id) {
    if (tokenizer.is_special(id)) continue;
    bytes_[static_cast<size_t>(id)] = token_bytes(tokenizer, id);
    never_[static_cast<size_t>(id)] = bytes_[static_cast<size_t>(id)].empty();
  }
}

const std::vector<int32_t>& OutputFilter::banned(const FormatPrefix& state) {
  const std::string key = state.key();
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCached) cache_.clear();
  std::vector<int32_t> out;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    bool ok = !never_[id];
    if (ok) {
      FormatPrefix s = state;
      ok = s.feed(bytes_[id]);
    }
    if (!ok) out.push_back(static_cast<int32_t>(id));
  }
  return cache_.emplace(key, std::move(out)).first->second;
}

}  // namespace tllm
