// Speculative decoding on CUDA (bf16) with the demo model and its draft. The CPU tests
// (test_speculative.cpp) require the plain decode's tokens exactly; here the verification's
// (k+1)-token forward and the plain decode's one-token forward (the persistent stack kernel)
// round differently in bf16, so a speculative run must follow the plain one for as long as
// the plain run's top-1 / top-2 log-prob gap exceeds 0.05 (after a near-tie the two may
// legitimately part, as in test_gpu_parity.cpp). The books must balance, and with the target
// as its own draft nearly every draft must be kept. Skips without a GPU.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../server/test_util.h"
#include "engine_cases.h"
#include "engine/engine.h"
#include "kernels/backend.h"
#include "tokenizer/tokenizer.h"

namespace tllm {
namespace {

EngineConfig config(int k, const std::string& draft = "") {
  EngineConfig c;
  c.model_dir = ::tllm::testing::tiny_model_dir();
  c.device = "cuda";
  c.num_kv_blocks = 256;
  if (k > 0) {
    c.speculative.model_dir = draft.empty() ? ::tllm::testing::tiny_draft_dir() : draft;
    c.speculative.num_tokens = k;
  }
  return c;
}

SamplingParams params(int max_tokens, float temperature = 0.0f, uint64_t seed = 1) {
  SamplingParams p = ::tllm::testing::test_params(max_tokens, temperature, seed);
  p.logprobs = 2;  // the plain run's top-2 gap where the runs part
  return p;
}

// The speculative run follows the plain one up to the first position where they part, and
// there the plain run's two best tokens were within 0.05.
void expect_follows(const LLMEngine::Completion& plain, const LLMEngine::Completion& spec, const std::string& where) {
  ASSERT_EQ(plain.token_ids.size(), spec.token_ids.size()) << where;
  for (size_t j = 0; j < plain.token_ids.size(); ++j) {
    if (plain.token_ids[j] == spec.token_ids[j]) continue;
    const auto& top = plain.logprobs[j].top;
    ASSERT_GE(top.size(), 2u);
    EXPECT_LT(top[0].second - top[1].second, 0.05) << where << ": parted at token " << j << " of "
                                                   << plain.token_ids.size() << " without a near-tie";
    return;
  }
}

TEST(GpuSpeculative, FollowsThePlainDecode) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  if (::tllm::testing::tiny_draft_dir().empty()) GTEST_SKIP() << "tiny-qwen2-demo-draft not found";
  std::vector<SamplingParams> ps = {params(60), params(60, 0.8f, 3), params(40, 1.0f, 7)};
  ps[1].top_p = 0.9f;
  LLMEngine plain(config(0));
  const Tokenizer& tok = *plain.tokenizer();
  std::vector<std::vector<int32_t>> p;
  for (const char* s : {"And the LORD said unto Moses,", "A computer", "In the beginning"}) p.push_back(tok.encode(s));
  for (size_t i = 0; i < p.size(); ++i) {
    // One request at a time: batch 1 is where the plain decode runs the stack kernel.
    const auto want = plain.generate({p[i]}, {ps[i]});
    for (int k : {1, 4}) {
      LLMEngine spec(config(k));
      const auto got = spec.generate({p[i]}, {ps[i]});
      expect_follows(want[0], got[0], "prompt " + std::to_string(i) + ", k = " + std::to_string(k));
      const EngineStats s = spec.stats();
      EXPECT_GT(s.spec_num_drafts, 0u);
      EXPECT_EQ(s.num_free_kv_blocks + s.num_cached_free_blocks, s.num_kv_blocks);
    }
  }
  // Several at once (drafts in a batched verification).
  LLMEngine spec(config(3));
  const auto got = spec.generate(p, ps);
  const auto want = plain.generate(p, ps);
  for (size_t i = 0; i < p.size(); ++i) expect_follows(want[i], got[i], "batched, prompt " + std::to_string(i));
}

TEST(GpuSpeculative, TheTargetAsItsOwnDraftKeepsNearlyEveryDraft) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU";
  LLMEngine spec(config(5, ::tllm::testing::tiny_model_dir()));
  const Tokenizer& tok = *spec.tokenizer();
  spec.generate({tok.encode("And the LORD said unto Moses,"), tok.encode("A computer")}, {params(80)});
  const EngineStats s = spec.stats();
  EXPECT_GT(s.spec_num_draft_tokens, 50u);
  EXPECT_GE(s.spec_num_accepted_tokens * 100, s.spec_num_draft_tokens * 90)
      << s.spec_num_accepted_tokens << " of " << s.spec_num_draft_tokens;
}

}  // namespace
}  // namespace tllm
