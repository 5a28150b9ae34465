// Scheduler: decides which tokens run in the next forward. Each step has a token budget
// (max_num_batched_tokens) and a sequence cap (max_num_seqs). Running sequences go first,
// in admission order: one token each in decode, or the next chunk of a prompt that did not
// fit earlier (chunked prefill). Waiting sequences then start with what budget is left, so
// prefill chunks and decode tokens share one forward. When the KV pool runs out, the most
// recently admitted running sequence is preempted: its blocks are freed and it returns to
// the front of the queue to be recomputed later (its outputs so far are kept).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/block_manager.h"
#include "engine/sequence.h"

namespace tllm {

struct SchedulerConfig {
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 2048;
};

struct ScheduledSequence {
  Sequence* seq = nullptr;
  int num_new_tokens = 0;  // tokens of seq->tokens computed in this step, from num_computed_tokens
  int first_token = 0;     // == num_computed_tokens when scheduled
  // True when this chunk reaches the end of the known tokens, so a token is sampled.
  bool samples() const { return first_token + num_new_tokens == seq->num_tokens(); }
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;
  std::vector<Sequence*> preempted;  // preempted during this step
  int num_batched_tokens = 0;
  bool empty() const { return scheduled.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockManager& blocks);

  void add(std::unique_ptr<Sequence> seq);
  Sequence* find(const std::string& id);
  // Removes the sequence from the queues, frees its blocks and hands it back (nullptr if
  // unknown).
  std::unique_ptr<Sequence> remove(const std::string& id);
  SchedulerOutput schedule();
  // After the forward: advances num_computed_tokens of every scheduled sequence and
  // registers newly full blocks in the prefix cache.
  void update_after_step(const SchedulerOutput& out);

  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  bool has_unfinished() const { return !waiting_.empty() || !running_.empty(); }
  uint64_t num_preemptions() const { return preemptions_; }
  const std::vector<Sequence*>& running() const { return running_; }

 private:
  void preempt(Sequence* seq);

  SchedulerConfig config_;
  BlockManager& blocks_;
  std::vector<std::unique_ptr<Sequence>> owned_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // admission order
  uint64_t next_arrival_ = 0;
  uint64_t preemptions_ = 0;
};

}  // namespace tllm
