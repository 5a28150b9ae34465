#include "engine/json_mode.h"

#include <algorithm>

#include "tokenizer/token_bytes.h"
#include "tokenizer/tokenizer.h"

namespace tllm {

JsonTokenFilter::JsonTokenFilter(const Tokenizer& tokenizer, int vocab_size)
    : bytes_(static_cast<size_t>(vocab_size)), never_(static_cast<size_t>(vocab_size), 1) {
  const int known = std::min(vocab_size, static_cast<int>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < known; ++id) {
    if (tokenizer.is_special(id)) continue;
    bytes_[static_cast<size_t>(id)] = token_bytes(tokenizer, id);
    never_[static_cast<size_t>(id)] = bytes_[static_cast<size_t>(id)].empty();
  }
}

const std::vector<int32_t>& JsonTokenFilter::banned(const JsonPrefix& state) {
  const std::string key = state.key();
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= kMaxCached) cache_.clear();
  std::vector<int32_t> out;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    bool ok = !never_[id];
    if (ok) {
      JsonPrefix s = state;
      ok = s.feed(bytes_[id]);
    }
    if (!ok) out.push_back(static_cast<int32_t>(id));
  }
  return cache_.emplace(key, std::move(out)).first->second;
}

}  // namespace tllm
