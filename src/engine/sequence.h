// A request as the scheduler and block manager see it: its tokens, how many of them have
// K/V in the cache, and the blocks that hold them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampling_params.h"

namespace tllm {

enum class SequenceStatus { Waiting, Running, Finished };

struct Sequence {
  std::string id;
  uint64_t arrival = 0;            // admission order; lower runs first, is preempted last
  std::vector<int32_t> tokens;     // prompt followed by output tokens
  int num_prompt_tokens = 0;
  int num_computed_tokens = 0;     // tokens whose K/V is in the cache
  // Speculative decoding (engine/speculative.h): tokens whose K/V the draft model has in its
  // own cache, which shares this block table. Reset with the blocks.
  int num_draft_computed = 0;
  int num_cached_tokens = 0;       // prompt tokens served by the prefix cache (first schedule)
  bool prefix_lookup_done = false; // cache lookup happens once per (re)admission
  std::vector<int32_t> block_table;
  std::vector<uint64_t> block_hashes;  // chained hashes of the full blocks of `tokens`
  SequenceStatus status = SequenceStatus::Waiting;
  SamplingParams params;
  uint64_t seed = 0;
  int num_preemptions = 0;
  // now_seconds() when the engine took the request, and when it was first scheduled (0 until
  // then): vLLM's QUEUED and SCHEDULED events, for the server's queue / prefill / decode /
  // inference time metrics.
  double queued_time = 0, scheduled_time = 0;
  // Async scheduling (engine.cpp): output tokens drawn but not yet seen by the host are
  // placeholders -1 - row (row of their draw); `hold` keeps the scheduler from running the
  // sequence again (it has all its tokens, or is finished and waits for an in-flight step).
  bool hold = false;

  int num_tokens() const { return static_cast<int>(tokens.size()); }
  // The KV cache slot of position t: its place in the block that block_table gives it.
  int64_t slot(int t, int block_size) const {
    return static_cast<int64_t>(block_table[t / block_size]) * block_size + t % block_size;
  }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  // Prompt logprobs need logits at every prompt position, so those requests skip the
  // prefix cache (cached positions produce no logits) until they have gone out with the first
  // output; a sequence preempted after that recomputes its prompt without them (their table
  // was handed over: writing it again crashed the server).
  bool prompt_logprobs_sent = false;
  bool wants_prompt_logprobs() const { return params.prompt_logprobs >= 0 && !prompt_logprobs_sent; }
};

}  // namespace tllm
