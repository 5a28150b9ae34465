// Paged KV cache bookkeeping: a pool of fixed-size blocks with reference counts, a free
// list in LRU order, and prefix caching: every full block is keyed by a hash chained to
// the hash of the block before it (so equal hashes mean equal prefixes), and blocks whose
// last user finished stay cached until the pool needs them (evicted least recently used).
// A request's cache_salt starts its chain, so only requests with the same salt share blocks.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/sequence.h"

namespace tllm {

class BlockManager {
 public:
  BlockManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  int block_size() const { return block_size_; }
  // Blocks that allocation can take: free ones, cached or not.
  int num_free_blocks() const { return static_cast<int>(free_list_.size()); }
  // Free blocks that still hold a reusable prefix.
  int num_cached_free_blocks() const { return cached_free_; }
  bool prefix_caching() const { return prefix_caching_; }

  // First admission of `seq` (empty block table): takes references on the cached blocks
  // of its longest cached prefix and sets num_computed_tokens / num_cached_tokens. At
  // least one token is always left to compute. Returns the number of cached tokens.
  int acquire_cached_prefix(Sequence& seq);
  // Makes room for `num_new_tokens` more tokens after num_computed_tokens. False (and no
  // change) when the pool has too few free blocks.
  bool allocate(Sequence& seq, int num_new_tokens);
  // Registers the blocks that became full and computed, so later requests can reuse them.
  void commit_computed(Sequence& seq);
  // Drops the sequence's references; its blocks go to the free list (cached ones stay
  // reusable until evicted). Clears the block table and resets num_computed_tokens (and
  // num_draft_computed).
  void release(Sequence& seq);

  uint64_t prefix_queries() const { return queries_; }  // prompt tokens looked up
  uint64_t prefix_hits() const { return hits_; }        // of those, found in the cache

  // Chained hash of a full block of tokens following the block with hash `prev`.
  static uint64_t hash_block(uint64_t prev, const int32_t* tokens, int n);
  // What the first block's hash chains to: 0 without a salt (SamplingParams::cache_salt).
  static uint64_t salt_hash(const std::string& salt);

 private:
  struct Block {
    int ref_count = 0;
    uint64_t hash = 0;
    bool has_hash = false;
    std::vector<int32_t> tokens;  // the block's tokens when hashed (guards against collisions)
    std::list<int>::iterator free_pos;
    bool in_free_list = false;
  };
  int take_free_block();   // pops the LRU free block, evicting its cache entry
  void push_free(int id);  // appends to the free list (most recently used end)
  void compute_hashes(Sequence& seq, int full_blocks) const;

  int block_size_;
  bool prefix_caching_;
  std::vector<Block> blocks_;
  std::list<int> free_list_;  // front = least recently used
  std::unordered_map<uint64_t, int> cached_;  // hash -> block
  int cached_free_ = 0;
  uint64_t queries_ = 0, hits_ = 0;
};

}  // namespace tllm
