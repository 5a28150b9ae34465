// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}).
//
// Merging works on token ids: a word starts as one id per character (or per byte, for
// byte-level vocabularies), then the adjacent pair with the lowest merge rank is merged,
// leftmost first, until no pair has a merge -- the order HF's Word::merge_all produces.
// A bounded, sharded word -> ids cache sits in front.
#pragma once

#include <array>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/flat_map.h"
#include "tokenizer/json_util.h"

namespace tllm::tok {

class WordCache {
 public:
  // HF caches words shorter than 256 characters; longer ones are rare and re-merged.
  static constexpr size_t kMaxKeyBytes = 256;
  // Appends the cached ids of word to out; false on a miss (or a busy shard).
  bool get(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const;
  void put(std::string_view word, uint64_t hash, const int32_t* ids, size_t n) const;

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kSlotsPerShard = 1024;
  struct Slot {
    uint64_t hash = 0;
    std::string key;
    bool used = false;
    std::vector<int32_t> ids;
  };
  struct Shard {
    std::mutex mu;
    std::array<Slot, kSlotsPerShard> slots;
  };
  mutable std::array<Shard, kShards> shards_;
};

// model.vocab and model.merges, read straight from the JSON text by the loader's SAX handler
// (building a JSON DOM for 150k entries costs seconds).
struct BpeTables {
  std::deque<std::pair<std::string, int64_t>> vocab;  // deques: no relocation while growing
  std::deque<std::pair<std::string, std::string>> merges;
  bool has_vocab = false;
  bool has_merges = false;
};

// Streams tokenizer.json into a DOM, except model.vocab and model.merges which go into
// *tables (their DOM slots are left null). Throws InvalidArgument for malformed JSON.
json parse_tokenizer_json(const std::string& text, BpeTables* tables);

class BpeModel {
 public:
  // j is the "model" object; tables hold its vocab and merges when parse_tokenizer_json
  // captured them (else they are read from j).
  static std::unique_ptr<BpeModel> from_json(const json& j, BpeTables tables);

  // Appends the ids of one pre-tokenized word. In byte mode the word holds raw bytes that
  // stand for their GPT-2 byte-level characters (see take_over_final_byte_level).
  void tokenize(std::string_view word, bool byte_mode, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const { return vocab_.find(token); }
  // Vocab string for id, or nullptr.
  const std::string* id_to_token(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
    return &id_to_token_[id];
  }
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  size_t vocab_count() const { return vocab_.size(); }
  bool has_unk() const { return unk_id_ >= 0; }
  bool fuses_unk() const { return unk_id_ >= 0 && fuse_unk_; }  // one id for a whole run of unknown characters

 private:
  BpeModel() = default;
  void symbols_for(std::string_view word, bool byte_mode, std::vector<int32_t>& syms) const;
  void add_unit(std::string_view unit, bool first, bool last, std::vector<int32_t>& syms,
                int32_t& pending_unk) const;
  void merge(std::vector<int32_t>& syms) const;
  void merge_heap(std::vector<int32_t>& syms) const;

  StringIdMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  PairMap merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string prefix_;  // continuing_subword_prefix
  std::string suffix_;  // end_of_word_suffix
  std::array<int32_t, 256> byte_fallback_ids_{};  // ids of "<0xXX>", -1 if absent
  std::array<int32_t, 256> byte_level_ids_{};     // ids of the byte-level chars, -1 if absent
  WordCache cache_;
};

}  // namespace tllm::tok
