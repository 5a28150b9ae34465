// Speculative decoding with a draft model (vLLM's draft-model method). A small model of the
// same vocabulary proposes the next k tokens of a decoding sequence one at a time; the target
// model then computes all k + 1 positions in one forward (its decode is bound by reading its
// weights, so k + 1 tokens cost about what one does) and keeps the drafts up to the first one
// it would not have drawn itself, plus its own token after them.
//
// Verification is by equal draws, not by rejection sampling: the sampler's draw is a function
// of (seed, offset, logits) (kernels/backend.h, sampling_uniform), so the target draws the
// token of position n + i with the offset it would use without drafts, and a draft is kept
// when it is exactly that token. The output is therefore the plain decode's, token for token
// for the same seed (up to the float rounding of a (k+1)-token forward against a 1-token one),
// whatever the sampling settings. The draft draws with the same seeds and offsets, which
// couples the two draws (the same exponential race over each model's probabilities), so it
// agrees with the target about as often as rejection sampling would accept.
//
// The draft keeps its own paged KV cache with the target's block size and block count,
// addressed through the target's block tables (one allocation for both). It computes every
// token of a sequence itself, the prefix-cached ones too, catching up when the sequence
// first decodes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/sequence.h"
#include "kernels/backend.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace tllm {

constexpr int kDefaultSpeculativeTokens = 4;
constexpr int kMaxSpeculativeTokens = 16;
constexpr int kMaxPromptLookup = 64;

// Parses vLLM's --speculative-config JSON: {"model": DIR, "num_speculative_tokens": k,
// "method": "draft_model" | "ngram", "prompt_lookup_max": n, "prompt_lookup_min": n,
// "disable_by_batch_size": b}; throws InvalidArgument naming the field.
SpeculativeConfig parse_speculative_config(const std::string& text);
// Fills the defaults (method from the model, k, the n-gram lengths; "[ngram]" as the model is
// vLLM's old spelling of method ngram) and throws InvalidArgument naming what is out of range.
void check_speculative_config(SpeculativeConfig& c);

// Proposes the drafts of a step's decoding sequences.
class Proposer {
 public:
  virtual ~Proposer() = default;
  int num_tokens() const { return k_; }

  // A decoding sequence of this step: its tokens end with the one the target computes next;
  // it may take up to `max_drafts` drafts.
  struct Item {
    Sequence* seq = nullptr;
    int max_drafts = 0;
  };
  // The draw parameters of the given rows: rows[j] draws the token that follows its sequence's
  // tokens and the first ahead[j] of *drafts[j] (null when ahead[j] is 0), over a vocabulary of
  // `vocab` ids.
  using SampleRowsFn = std::function<SampleBatch(const std::vector<const Sequence*>& rows, const std::vector<int>& ahead,
                                                 const std::vector<const std::vector<int32_t>*>& drafts, int vocab)>;
  // result[i]: item i's drafts, at most its max_drafts (none is fine), ids of the target's
  // vocabulary.
  virtual std::vector<std::vector<int32_t>> propose(const std::vector<Item>& items, const SampleRowsFn& rows,
                                                    int target_vocab) = 0;
  // After verification: `accepted` of the sequence's `num_drafts` drafts were kept (its tokens
  // now end with them and the target's next token).
  virtual void accepted(Sequence& /*seq*/, int /*num_drafts*/, int /*accepted*/) {}

 protected:
  explicit Proposer(int num_tokens) : k_(num_tokens) {}

 private:
  int k_;
};

// vLLM's draft_model method: a small model of the same tokenizer draws the drafts.
class DraftModelProposer final : public Proposer {
 public:
  // `model` runs on the target's backend; `kv` has the target's block size and block count.
  DraftModelProposer(std::unique_ptr<CausalLM> model, KVCache kv, int num_tokens, int max_batched_tokens);

  // Catches each item's draft cache up to its last token (as far as the step's token budget
  // reaches) and draws its drafts with the rows' seeds and offsets (empty for an item that
  // could not be caught up this step).
  std::vector<std::vector<int32_t>> propose(const std::vector<Item>& items, const SampleRowsFn& rows,
                                            int target_vocab) override;
  // The draft cache holds the drafts it computed (all but the last): the kept ones stay.
  void accepted(Sequence& seq, int num_drafts, int accepted) override;

 private:
  std::unique_ptr<CausalLM> model_;
  KVCache kv_;
  int max_batched_;
};

// vLLM's ngram method (prompt lookup decoding): the drafts are the tokens that followed the
// latest earlier occurrence of the sequence's last n tokens (n from prompt_lookup_max down to
// prompt_lookup_min), in its prompt or its output. No model: it pays where text repeats its
// context (quoting, editing code, extraction, retrieval-augmented answers).
class NgramProposer final : public Proposer {
 public:
  NgramProposer(int num_tokens, int min_n, int max_n);
  std::vector<std::vector<int32_t>> propose(const std::vector<Item>& items, const SampleRowsFn& rows,
                                            int target_vocab) override;
  // The drafts for `tokens` (at most `max` of them).
  std::vector<int32_t> lookup(const std::vector<int32_t>& tokens, int max) const;

 private:
  int min_n_, max_n_;
};

}  // namespace tllm
