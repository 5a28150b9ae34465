#include "engine/block_manager.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tllm {

BlockManager::BlockManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : block_size_(block_size), prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  TLLM_CHECK(num_blocks > 0 && block_size > 0, "block manager needs blocks (", num_blocks, " of ",
             block_size, " tokens)");
  for (int i = 0; i < num_blocks; ++i) push_free(i);
}

uint64_t BlockManager::hash_block(uint64_t prev, const int32_t* tokens, int n) {
  // FNV-1a over the bytes, then a splitmix finaliser; chained through `prev`.
  uint64_t h = 0xcbf29ce484222325ull ^ (prev * 0x9E3779B97F4A7C15ull);
  const auto* bytes = reinterpret_cast<const unsigned char*>(tokens);
  for (size_t i = 0; i < static_cast<size_t>(n) * sizeof(int32_t); ++i) {
    h ^= bytes[i];
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint64_t BlockManager::salt_hash(const std::string& salt) {
  if (salt.empty()) return 0;
  // FNV-1a over the salt's bytes, then hash_block's finaliser (an empty block after it).
  uint64_t h = 0x5a17ull + salt.size();
  for (const char c : salt) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return hash_block(h, nullptr, 0);
}

void BlockManager::compute_hashes(Sequence& seq, int full_blocks) const {
  while (static_cast<int>(seq.block_hashes.size()) < full_blocks) {
    const size_t i = seq.block_hashes.size();
    const uint64_t prev = i == 0 ? salt_hash(seq.params.cache_salt) : seq.block_hashes[i - 1];
    seq.block_hashes.push_back(hash_block(prev, seq.tokens.data() + i * block_size_, block_size_));
  }
}

void BlockManager::push_free(int id) {
  Block& b = blocks_[id];
  TLLM_ASSERT(!b.in_free_list && b.ref_count == 0);
  b.free_pos = free_list_.insert(free_list_.end(), id);
  b.in_free_list = true;
  if (b.has_hash) ++cached_free_;
}

int BlockManager::take_free_block() {
  TLLM_ASSERT(!free_list_.empty());
  const int id = free_list_.front();
  free_list_.pop_front();
  Block& b = blocks_[id];
  b.in_free_list = false;
  if (b.has_hash) {  // evict its prefix-cache entry
    --cached_free_;
    auto it = cached_.find(b.hash);
    if (it != cached_.end() && it->second == id) cached_.erase(it);
    b.has_hash = false;
    b.tokens.clear();
  }
  b.ref_count = 1;
  return id;
}

int BlockManager::acquire_cached_prefix(Sequence& seq) {
  TLLM_ASSERT(seq.block_table.empty() && seq.num_computed_tokens == 0);
  seq.prefix_lookup_done = true;
  if (!prefix_caching_ || seq.wants_prompt_logprobs()) {
    seq.num_cached_tokens = 0;
    return 0;
  }
  const int n = seq.num_tokens();
  const int full = n / block_size_;
  compute_hashes(seq, full);
  int hit_blocks = 0;
  for (int i = 0; i < full; ++i) {
    auto it = cached_.find(seq.block_hashes[i]);
    if (it == cached_.end()) break;
    const Block& b = blocks_[it->second];
    if (!std::equal(b.tokens.begin(), b.tokens.end(), seq.tokens.begin() + static_cast<int64_t>(i) * block_size_))
      break;  // hash collision: treat as a miss
    ++hit_blocks;
  }
  // Leave at least one token to compute: its logits are needed to sample.
  if (hit_blocks * block_size_ >= n) --hit_blocks;
  for (int i = 0; i < hit_blocks; ++i) {
    const int id = cached_.at(seq.block_hashes[i]);
    Block& b = blocks_[id];
    if (b.ref_count == 0) {
      TLLM_ASSERT(b.in_free_list);
      free_list_.erase(b.free_pos);
      b.in_free_list = false;
      --cached_free_;
    }
    ++b.ref_count;
    seq.block_table.push_back(id);
  }
  const int cached_tokens = hit_blocks * block_size_;
  queries_ += static_cast<uint64_t>(n);
  hits_ += static_cast<uint64_t>(cached_tokens);
  seq.num_computed_tokens = cached_tokens;
  if (seq.num_preemptions == 0) seq.num_cached_tokens = cached_tokens;  // report the first admission
  return cached_tokens;
}

bool BlockManager::allocate(Sequence& seq, int num_new_tokens) {
  const int total = seq.num_computed_tokens + num_new_tokens;
  const int needed = (total + block_size_ - 1) / block_size_ - static_cast<int>(seq.block_table.size());
  if (needed <= 0) return true;
  if (needed > num_free_blocks()) return false;
  for (int i = 0; i < needed; ++i) seq.block_table.push_back(take_free_block());
  return true;
}

void BlockManager::commit_computed(Sequence& seq) {
  if (!prefix_caching_) return;
  const int full = std::min(seq.num_computed_tokens / block_size_, static_cast<int>(seq.block_table.size()));
  compute_hashes(seq, full);
  for (int i = 0; i < full; ++i) {
    Block& b = blocks_[seq.block_table[i]];
    if (b.has_hash) continue;
    const uint64_t h = seq.block_hashes[i];
    if (cached_.count(h)) continue;  // another block already holds this prefix
    b.has_hash = true;
    b.hash = h;
    b.tokens.assign(seq.tokens.begin() + static_cast<int64_t>(i) * block_size_,
                    seq.tokens.begin() + static_cast<int64_t>(i + 1) * block_size_);
    cached_[h] = seq.block_table[i];
  }
}

void BlockManager::release(Sequence& seq) {
  // Reverse order: the tail of a sequence is evicted before its (more shareable) head.
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) {
    Block& b = blocks_[*it];
    TLLM_ASSERT(b.ref_count > 0);
    if (--b.ref_count == 0) push_free(*it);
  }
  seq.block_table.clear();
  seq.num_computed_tokens = 0;
  seq.num_draft_computed = 0;
}

}  // namespace tllm
