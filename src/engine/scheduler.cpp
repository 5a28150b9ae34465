#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace tllm {

Scheduler::Scheduler(const SchedulerConfig& config, BlockManager& blocks) : config_(config), blocks_(blocks) {
  TLLM_CHECK(config.max_num_seqs > 0 && config.max_num_batched_tokens > 0,
             "scheduler needs max_num_seqs and max_num_batched_tokens > 0");
}

void Scheduler::add(std::unique_ptr<Sequence> seq) {
  TLLM_CHECK(find(seq->id) == nullptr, "duplicate request id \"", seq->id, "\"");
  seq->arrival = next_arrival_++;
  seq->status = SequenceStatus::Waiting;
  waiting_.push_back(seq.get());
  owned_.push_back(std::move(seq));
}

Sequence* Scheduler::find(const std::string& id) {
  for (auto& s : owned_)
    if (s->id == id) return s.get();
  return nullptr;
}

std::unique_ptr<Sequence> Scheduler::remove(const std::string& id) {
  auto it = std::find_if(owned_.begin(), owned_.end(), [&](const auto& s) { return s->id == id; });
  if (it == owned_.end()) return nullptr;
  Sequence* seq = it->get();
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), seq), waiting_.end());
  running_.erase(std::remove(running_.begin(), running_.end(), seq), running_.end());
  blocks_.release(*seq);
  seq->status = SequenceStatus::Finished;
  std::unique_ptr<Sequence> out = std::move(*it);
  owned_.erase(it);
  return out;
}

void Scheduler::preempt(Sequence* seq) {
  running_.erase(std::remove(running_.begin(), running_.end(), seq), running_.end());
  blocks_.release(*seq);
  seq->status = SequenceStatus::Waiting;
  seq->prefix_lookup_done = false;
  ++seq->num_preemptions;
  ++preemptions_;
  // Back to the front, keeping admission order among preempted sequences.
  auto pos = std::find_if(waiting_.begin(), waiting_.end(), [&](Sequence* w) { return w->arrival > seq->arrival; });
  waiting_.insert(pos, seq);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int budget = config_.max_num_batched_tokens;

  // 1. Running sequences, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int n = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    if (n <= 0 || seq->hold) {
      ++i;
      continue;
    }
    bool ok = blocks_.allocate(*seq, n);
    while (!ok) {
      // Preempt the most recently admitted sequence that is not already in this step (nor
      // held: a held sequence is finishing).
      Sequence* victim = nullptr;
      for (auto it = running_.rbegin(); it != running_.rend() && !victim; ++it)
        if (!(*it)->hold) victim = *it;
      if (victim == seq || victim == nullptr) break;
      out.preempted.push_back(victim);
      preempt(victim);
      ok = blocks_.allocate(*seq, n);
    }
    if (!ok) {  // not even alone does it fit: preempt itself and stop
      out.preempted.push_back(seq);
      preempt(seq);
      break;
    }
    out.scheduled.push_back({seq, n, seq->num_computed_tokens});
    budget -= n;
    ++i;
  }

  // 2. Waiting sequences, if nothing was preempted this step.
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < config_.max_num_seqs) {
      Sequence* seq = waiting_.front();
      if (!seq->prefix_lookup_done) blocks_.acquire_cached_prefix(*seq);
      const int n = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
      if (!blocks_.allocate(*seq, n)) {
        // Give back the cached prefix so its blocks stay evictable while we wait.
        blocks_.release(*seq);
        seq->prefix_lookup_done = false;
        break;
      }
      waiting_.pop_front();
      seq->status = SequenceStatus::Running;
      running_.push_back(seq);
      out.scheduled.push_back({seq, n, seq->num_computed_tokens});
      budget -= n;
    }
  }
  out.num_batched_tokens = config_.max_num_batched_tokens - budget;
  return out;
}

void Scheduler::update_after_step(const SchedulerOutput& out) {
  for (const ScheduledSequence& s : out.scheduled) {
    s.seq->num_computed_tokens = s.first_token + s.num_new_tokens;
    blocks_.commit_computed(*s.seq);
  }
}

}  // namespace tllm
